//! The store conformance suite with payloads on SeaweedFS through its S3 gateway (three
//! volume servers, replicated) and records on PostgreSQL: the cluster backends together.
//! One SeaweedFS for the test binary; each case writes under a prefix of its own
//! (`common::s3`).
#![allow(clippy::unwrap_used)]

mod common;
#[macro_use]
mod conformance;

use std::sync::Arc;

use coffre_server::store::PgRecords;
use conformance::Backend;

async fn cluster() -> Backend {
    let payloads = common::s3::fresh_payloads().await;
    let url = common::pg::fresh_database().await;
    let records = PgRecords::connect(&url).await.unwrap();
    Backend {
        records: Arc::new(records),
        payloads: Arc::new(payloads),
        keep: Box::new(()),
    }
}

conformance_suite!(cluster);
