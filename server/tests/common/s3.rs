//! An S3 bucket for the tests that run on the S3 payload backend: one SeaweedFS cluster
//! (see [`super::cluster::Seaweed`]) per test process, stopped by the harness's watchdog
//! when the process ends; each caller writes under a prefix of its own.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use coffre_server::store::{Id, S3Config, S3Payloads};

use super::cluster::Seaweed;

/// The bucket every caller shares.
pub const BUCKET: &str = "coffre-tests";

/// The SeaweedFS of this process, started on first use.
pub fn seaweed() -> &'static Seaweed {
    static WEED: OnceLock<Seaweed> = OnceLock::new();
    WEED.get_or_init(|| {
        let weed = Seaweed::start();
        weed.create_bucket(BUCKET);
        weed
    })
}

/// An S3 payload store under a fresh prefix of the shared bucket.
pub async fn fresh_payloads() -> S3Payloads {
    let weed = tokio::task::spawn_blocking(seaweed).await.unwrap();
    S3Payloads::connect(&S3Config {
        bucket: BUCKET.into(),
        endpoint: Some(weed.endpoint()),
        region: weed.region().into(),
        access_key: weed.access_key().into(),
        secret_key: weed.secret_key().into(),
        prefix: format!("test-{}/", Id::generate().unwrap()),
    })
    .await
    .unwrap()
}
