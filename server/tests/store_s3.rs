//! The store conformance suite with payloads on SeaweedFS through its S3 gateway (three
//! volume servers, replicated) and records on PostgreSQL: the cluster backends together.
//! One SeaweedFS for the test binary; each case writes under a prefix of its own.
#![allow(clippy::unwrap_used)]

mod common;
#[macro_use]
mod conformance;

use std::sync::{Arc, OnceLock};

use coffre_server::store::{Id, PgRecords, S3Config, S3Payloads};
use common::cluster::Seaweed;
use conformance::Backend;

const BUCKET: &str = "conformance";

fn seaweed() -> &'static Seaweed {
    // Never dropped: the harness's watchdog stops it when this process ends.
    static WEED: OnceLock<Seaweed> = OnceLock::new();
    WEED.get_or_init(|| {
        let weed = Seaweed::start();
        weed.create_bucket(BUCKET);
        weed
    })
}

async fn cluster() -> Backend {
    let weed = tokio::task::spawn_blocking(seaweed).await.unwrap();
    let payloads = S3Payloads::connect(&S3Config {
        bucket: BUCKET.into(),
        endpoint: Some(weed.endpoint()),
        region: weed.region().into(),
        access_key: weed.access_key().into(),
        secret_key: weed.secret_key().into(),
        prefix: format!("case-{}/", Id::generate().unwrap()),
    })
    .await
    .unwrap();
    let url = common::pg::fresh_database().await;
    let records = PgRecords::connect(&url).await.unwrap();
    Backend {
        records: Arc::new(records),
        payloads: Arc::new(payloads),
        keep: Box::new(()),
    }
}

conformance_suite!(cluster);
