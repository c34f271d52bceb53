//! The S3-compatible [`Payloads`] backend, for deployments whose payloads outgrow one disk
//! or must survive the loss of one machine.
//!
//! Each piece an upload writes is one object, `<prefix><document id>/<offset>` (the offset
//! as 16 hex digits, so names sort in payload order); a piece is durable once its PUT
//! returned, so [`Payloads::sync`] has nothing left to do. The object store never decides
//! what is committed: the records' stored length does. Pieces past it (an upload cut
//! before its checkpoint) were never acknowledged; the next append at the stored length
//! deletes them before writing. Pieces of documents that no longer exist are removed by
//! the sweep ([`super::sweep_payloads`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

use super::{Id, PayloadStream, Payloads, S3Config, StoreError, StoreResult, PIECE_BYTES};

/// Payloads in an S3 bucket.
#[derive(Clone)]
pub struct S3Payloads {
    store: Arc<dyn ObjectStore>,
    /// Prepended to every object name (`""` or ending in `/`).
    prefix: String,
}

/// An object store error: not reachable (or not answering) is `Unavailable`, the rest a
/// backend failure.
fn os_error(e: object_store::Error) -> StoreError {
    match &e {
        object_store::Error::Generic { .. } => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

impl S3Payloads {
    /// A client for the bucket; checks that it answers (a list of nothing), so that a wrong
    /// endpoint, bucket or credential fails at start-up.
    pub async fn connect(config: &S3Config) -> StoreResult<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key)
            .with_secret_access_key(&config.secret_key)
            // object_store retries a failing request for up to 3 minutes by default; a
            // client waiting that long gives up first. Fail within about 20 s instead: the
            // request answers 503 and the client resumes (uploads) or asks again.
            .with_retry(object_store::RetryConfig {
                max_retries: 5,
                retry_timeout: std::time::Duration::from_secs(20),
                ..Default::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let payloads = Self {
            store: Arc::new(store),
            prefix: config.prefix.clone(),
        };
        let probe = Path::from(format!("{}coffre-probe", payloads.prefix));
        payloads
            .store
            .list(Some(&probe))
            .try_next()
            .await
            .map_err(os_error)?;
        Ok(payloads)
    }

    /// Writes one object `name` under the prefix (backups keep their records' snapshot
    /// so).
    pub async fn put_object(&self, name: &str, bytes: Bytes) -> StoreResult<()> {
        let path = Path::from(format!("{}{name}", self.prefix));
        self.store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(os_error)?;
        Ok(())
    }

    /// Reads object `name` under the prefix; `None` if there is none.
    pub async fn get_object(&self, name: &str) -> StoreResult<Option<Bytes>> {
        let path = Path::from(format!("{}{name}", self.prefix));
        match self.store.get(&path).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(os_error)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(os_error(e)),
        }
    }

    fn folder(&self, id: Id) -> Path {
        Path::from(format!("{}{id}", self.prefix))
    }

    fn piece(&self, id: Id, offset: u64) -> Path {
        Path::from(format!("{}{id}/{offset:016x}", self.prefix))
    }

    /// The pieces of a payload: offset → length.
    async fn pieces(&self, id: Id) -> StoreResult<BTreeMap<u64, u64>> {
        let folder = self.folder(id);
        let mut pieces = BTreeMap::new();
        let mut listing = self.store.list(Some(&folder));
        while let Some(meta) = listing.try_next().await.map_err(os_error)? {
            let name = meta.location.filename().unwrap_or_default();
            let offset = u64::from_str_radix(name, 16)
                .map_err(|_| StoreError::Backend(format!("unexpected object {}", meta.location)))?;
            pieces.insert(offset, meta.size);
        }
        Ok(pieces)
    }
}

#[async_trait]
impl Payloads for S3Payloads {
    async fn begin(&self, _id: Id) -> StoreResult<()> {
        // Nothing to prepare: the first piece makes the folder.
        Ok(())
    }

    async fn append(&self, id: Id, stored: u64, offset: u64, parts: Vec<Bytes>) -> StoreResult<()> {
        let len: usize = parts.iter().map(Bytes::len).sum();
        if len > PIECE_BYTES {
            return Err(StoreError::PieceTooLarge);
        }
        if offset < stored {
            return Err(StoreError::OffsetMismatch { stored });
        }
        if offset == stored {
            // Unacknowledged pieces of a cut upload go first, or a later read could mix
            // them with the new ones.
            for (stale, _) in self.pieces(id).await?.range(stored..) {
                self.store
                    .delete(&self.piece(id, *stale))
                    .await
                    .map_err(os_error)?;
            }
        }
        if len == 0 {
            return Ok(());
        }
        let payload: PutPayload = parts.into_iter().collect();
        self.store
            .put(&self.piece(id, offset), payload)
            .await
            .map_err(os_error)?;
        Ok(())
    }

    async fn sync(&self, _id: Id) -> StoreResult<()> {
        // Every PUT that returned is durable.
        Ok(())
    }

    async fn read(&self, id: Id, start: u64, end: u64) -> StoreResult<PayloadStream> {
        let pieces = self.pieces(id).await?;
        // The pieces that hold start..end, each with the part of it wanted.
        let mut wanted = Vec::new();
        let mut pos = start;
        for (&offset, &len) in &pieces {
            if pos >= end {
                break;
            }
            let piece_end = offset + len;
            if piece_end <= pos {
                continue;
            }
            if offset > pos {
                return Err(StoreError::Backend(format!(
                    "payload of {id} has no piece at {pos}"
                )));
            }
            let to = piece_end.min(end);
            wanted.push((offset, pos - offset, to - offset));
            pos = to;
        }
        if pos < end {
            return Err(StoreError::Backend(format!(
                "payload of {id} ends at {pos}, {end} wanted"
            )));
        }
        let this = self.clone();
        let stream = futures_util::stream::iter(wanted)
            .then(move |(offset, from, to)| {
                let this = this.clone();
                async move {
                    this.store
                        .get_range(&this.piece(id, offset), from..to)
                        .await
                        .map_err(os_error)
                }
            })
            .boxed();
        Ok(stream)
    }

    async fn delete(&self, id: Id) -> StoreResult<()> {
        for offset in self.pieces(id).await?.keys() {
            match self.store.delete(&self.piece(id, *offset)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(os_error(e)),
            }
        }
        Ok(())
    }

    async fn held_bytes(&self, id: Id) -> StoreResult<Option<u64>> {
        let pieces = self.pieces(id).await?;
        Ok((!pieces.is_empty()).then(|| pieces.values().sum()))
    }

    async fn list(&self) -> StoreResult<Vec<Id>> {
        // Every piece, not the folders: an engine may keep a folder whose pieces are gone
        // (SeaweedFS's filer does).
        let root = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let depth = root.as_ref().map_or(0, |r| r.parts().count());
        let mut ids = std::collections::BTreeSet::new();
        let mut listing = self.store.list(root.as_ref());
        while let Some(meta) = listing.try_next().await.map_err(os_error)? {
            if let Some(id) = meta
                .location
                .parts()
                .nth(depth)
                .and_then(|p| p.as_ref().parse::<Id>().ok())
            {
                ids.insert(id);
            }
        }
        Ok(ids.into_iter().collect())
    }
}
