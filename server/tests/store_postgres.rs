//! The store conformance suite against the PostgreSQL records backend (payloads in files
//! here; the object-store payloads have their own suite), each case on a fresh database
//! of one PostgreSQL started for this test binary.
#![allow(clippy::unwrap_used)]

mod common;
#[macro_use]
mod conformance;

use std::sync::Arc;

use coffre_server::store::{FilePayloads, PgRecords};
use conformance::Backend;

async fn pg() -> Backend {
    let url = common::pg::fresh_database().await;
    let records = PgRecords::connect(&url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let payloads = FilePayloads::open(&dir.path().join("payloads")).unwrap();
    Backend {
        records: Arc::new(records),
        payloads: Arc::new(payloads),
        keep: Box::new(dir),
    }
}

conformance_suite!(pg);
