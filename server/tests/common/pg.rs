//! A PostgreSQL for the tests that run on the PostgreSQL records backend: the one at
//! `COFFRE_TEST_PG_URL` (what `cargo xtask test` starts for the whole run), or else one
//! started for this test process (see [`super::cluster::Postgres`]), stopped when the
//! process ends. Each caller gets a fresh, migrated database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use coffre_server::store::{postgres, Id};

use super::cluster::Postgres;

/// The server URL (database `postgres`), starting a private server on first use.
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("COFFRE_TEST_PG_URL") {
        return url;
    }
    // Never dropped: the harness's watchdog stops it when this process ends.
    static OWN: OnceLock<Postgres> = OnceLock::new();
    OWN.get_or_init(Postgres::start).url()
}

/// A fresh database on the test server, with the schema applied; returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let name = format!("t{}", Id::generate().unwrap());
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("test PostgreSQL at {server}: {e}"));
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    let (base, _) = server.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    postgres::migrate(&url).await.unwrap();
    url
}
