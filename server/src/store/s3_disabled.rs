//! [`S3Payloads`] in a build without the `s3` feature (e.g. the fuzz targets, which need
//! none of the object store client's dependency tree): a value of it cannot exist, and
//! [`S3Payloads::connect`] says that this build has no S3 backend.

use async_trait::async_trait;
use bytes::Bytes;

use super::{Id, PayloadStream, Payloads, S3Config, StoreError, StoreResult};

/// No S3 payloads in this build: the type has no values.
#[derive(Clone)]
pub struct S3Payloads {
    never: std::convert::Infallible,
}

impl S3Payloads {
    /// Always refuses: this coffre-server was built without the `s3` feature.
    pub async fn connect(config: &S3Config) -> StoreResult<Self> {
        Err(StoreError::Unavailable(format!(
            "s3://{}: this coffre-server was built without S3 support (cargo feature `s3`)",
            config.bucket
        )))
    }

    /// Cannot be called: no value of this type exists.
    pub async fn put_object(&self, _name: &str, _bytes: Bytes) -> StoreResult<()> {
        match self.never {}
    }

    /// Cannot be called: no value of this type exists.
    pub async fn get_object(&self, _name: &str) -> StoreResult<Option<Bytes>> {
        match self.never {}
    }
}

#[async_trait]
impl Payloads for S3Payloads {
    async fn begin(&self, _id: Id) -> StoreResult<()> {
        match self.never {}
    }
    async fn append(&self, _: Id, _: u64, _: u64, _: Vec<Bytes>) -> StoreResult<()> {
        match self.never {}
    }
    async fn sync(&self, _id: Id) -> StoreResult<()> {
        match self.never {}
    }
    async fn read(&self, _: Id, _: u64, _: u64) -> StoreResult<PayloadStream> {
        match self.never {}
    }
    async fn delete(&self, _id: Id) -> StoreResult<()> {
        match self.never {}
    }
    async fn list(&self) -> StoreResult<Vec<Id>> {
        match self.never {}
    }
    async fn held_bytes(&self, _id: Id) -> StoreResult<Option<u64>> {
        match self.never {}
    }
}
