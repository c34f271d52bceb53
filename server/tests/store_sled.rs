//! The store conformance suite against the embedded backend: sled records and payload
//! files in a fresh temporary directory per case.
#![allow(clippy::unwrap_used)]

mod common;
#[macro_use]
mod conformance;

use std::sync::Arc;

use conformance::Backend;

async fn sled() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let (records, payloads) =
        coffre_server::store::open_embedded(&dir.path().join("data"), 8 << 20).unwrap();
    Backend {
        records: Arc::new(records),
        payloads: Arc::new(payloads),
        keep: Box::new(dir),
    }
}

conformance_suite!(sled);
