//! The store conformance suite against the PostgreSQL records backend (payloads in files
//! here; the object-store payloads have their own suite), each case on a fresh database
//! of one PostgreSQL started for this test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

/// A database made by an earlier build (schema version 1, with records in it): this build
/// refuses to serve it until `migrate` brings it to the latest version, which keeps what
/// it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_brings_a_version_1_database_to_the_latest() {
    use coffre_server::store::{postgres, Records};

    let server = common::pg::server_url();
    let name = format!("t{}", coffre_server::store::Id::generate().unwrap());
    let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(admin);
    let _ = task.await;
    let (base, _) = server.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");

    // Version 1 as `migrate` of that build left it, with an organisation.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    let (version, label, sql) = postgres::MIGRATIONS[0];
    assert_eq!(version, 1);
    client
        .batch_execute(&format!(
            "CREATE TABLE coffre_migrations (version integer PRIMARY KEY, name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             {sql}
             INSERT INTO coffre_migrations (version, name) VALUES (1, '{label}');
             INSERT INTO orgs (id, name, created_at)
                 VALUES ('\\x000102030405060708090a0b0c0d0e0f', 'Relais', 1900000000);"
        ))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;

    let latest = postgres::MIGRATIONS.last().unwrap().0;
    assert!(latest > 1);
    let refused = PgRecords::connect(&url).await.err().unwrap().to_string();
    assert!(refused.contains("version 1"), "{refused}");
    let applied = postgres::migrate(&url).await.unwrap();
    // Every later version, in order (numbers may skip: branches name their migrations
    // by topic and the runner applies whichever are missing).
    let later: Vec<i32> = postgres::MIGRATIONS[1..].iter().map(|m| m.0).collect();
    assert_eq!(applied, later);
    assert!(postgres::migrate(&url).await.unwrap().is_empty(), "once");
    let records = PgRecords::connect(&url).await.unwrap();
    let org_id = coffre_server::store::Id(std::array::from_fn(|i| i as u8));
    let org = records.org(org_id).await.unwrap().unwrap();
    assert_eq!(
        (
            org.name.as_str(),
            org.created_at,
            org.recovery_delay_seconds
        ),
        ("Relais", 1_900_000_000, None)
    );
    let set = records
        .set_org_recovery_delay(org_id, Some(3600))
        .await
        .unwrap();
    assert_eq!(set.recovery_delay_seconds, Some(3600));
    assert!(records.recovery_deal(org_id).await.unwrap().is_none());
}

/// A statement stuck behind another transaction's lock fails as `Unavailable` (503, the
/// client retries) after the pool's `lock_timeout` instead of hanging the request; a
/// connection idle inside a transaction is the kind of holder that timeout is for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_behind_a_lock_fails_as_unavailable() {
    use coffre_server::store::{Id, Records, StoreError};

    let url = common::pg::fresh_database().await;
    let records = PgRecords::connect(&url).await.unwrap();
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    holder
        .batch_execute("BEGIN; LOCK TABLE orgs IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        records.org(Id::generate().unwrap()),
    )
    .await
    .expect("still waiting for the lock after 60 s");
    let waited = started.elapsed();
    assert!(
        matches!(got, Err(StoreError::Unavailable(_))),
        "a statement behind a lock: {got:?}"
    );
    assert!(
        (14..40).contains(&waited.as_secs()),
        "failed after {waited:?}, not after the 15 s lock timeout"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert!(records
        .org(Id::generate().unwrap())
        .await
        .unwrap()
        .is_none());
    drop(holder);
    let _ = task.await;
}
