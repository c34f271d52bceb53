//! The store conformance suite against the embedded backend: sled records and payload
//! files in a fresh temporary directory per case.
#![allow(clippy::unwrap_used, clippy::panic)]

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

mod restarts {
    use coffre_server::store::attempts::handle_key;
    use coffre_server::store::{open_embedded, AttemptPolicy, Records, Role, StoreError};

    use crate::common::seed;

    const NOW: u64 = 1_900_000_000;

    /// Counts until refused; returns the refusal's wait.
    async fn spend(records: &dyn Records, key: &[u8; 32]) -> u64 {
        let policy = AttemptPolicy::default();
        loop {
            match records.count_login_attempt(key, NOW, &policy).await {
                Ok(_) => {}
                Err(StoreError::Throttled { retry_after }) => return retry_after,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[tokio::test]
    async fn budgets_of_known_and_unknown_handles_survive_a_restart_alike() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let identity = coffre_core::Identity::generate().unwrap();
        let (known, unknown) = (handle_key("amina"), handle_key("nobody"));
        {
            let (records, _) = open_embedded(&data, 8 << 20).unwrap();
            let account = seed::stand_in_account(&identity, "amina", Role::Beneficiary, None, NOW);
            records.create_account(&account).await.unwrap();
            assert_eq!(
                spend(&records, &known).await,
                spend(&records, &unknown).await
            );
            records.close().await.unwrap();
        }
        let (records, _) = open_embedded(&data, 8 << 20).unwrap();
        let (k, u) = (
            records.login_budget(&known).await.unwrap().unwrap(),
            records.login_budget(&unknown).await.unwrap().unwrap(),
        );
        assert_eq!(k, u);
        assert_eq!(k.window_count, 3);
        assert_eq!(
            spend(&records, &known).await,
            spend(&records, &unknown).await
        );
    }

    #[tokio::test]
    async fn records_from_before_login_budgets_open() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let identity = coffre_core::Identity::generate().unwrap();
        let account = seed::stand_in_account(&identity, "amina", Role::Beneficiary, None, NOW);
        {
            let (records, _) = open_embedded(&data, 8 << 20).unwrap();
            records.create_account(&account).await.unwrap();
            records.close().await.unwrap();
        }
        // What an older version wrote: a lock on the account, a counter of an unknown handle.
        {
            let db = sled::open(&data).unwrap();
            let accounts = db.open_tree("accounts").unwrap();
            let mut value: serde_json::Value =
                serde_json::from_slice(&accounts.get(account.id.0).unwrap().unwrap()).unwrap();
            value["failed_logins"] = 10.into();
            value["locked"] = true.into();
            accounts
                .insert(account.id.0, serde_json::to_vec(&value).unwrap())
                .unwrap();
            db.open_tree("unknown_attempts")
                .unwrap()
                .insert([7u8; 32], &br#"{"attempts":3,"last_at":5}"#[..])
                .unwrap();
            db.flush().unwrap();
        }
        let (records, _) = open_embedded(&data, 8 << 20).unwrap();
        let read = records.account(account.id).await.unwrap().unwrap();
        assert_eq!(read.handle, "amina");
        assert_eq!(records.export().await.unwrap().accounts.len(), 1);
        records.close().await.unwrap();
        drop(records);
        let db = sled::open(&data).unwrap();
        assert!(
            !db.tree_names()
                .iter()
                .any(|n| n.as_ref() == b"unknown_attempts"),
            "the old counters are gone"
        );
    }
}
