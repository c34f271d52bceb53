//! The web app's end-to-end test (tests/web, Playwright driving Chromium) against the
//! cluster backends: it spawns `coffre-server` itself, and every command it runs reads
//! `COFFRE_RECORDS` / `COFFRE_PAYLOADS` from the environment, so here they point at a
//! fresh PostgreSQL database and a SeaweedFS bucket. Ignored in a plain `cargo test`
//! (it needs the release server, the npm dependencies and Chromium); `cargo xtask test`
//! runs it after the web test on the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::cluster::{Postgres, Seaweed};

#[test]
#[ignore = "run by cargo xtask test, after the release build and the web test's npm ci"]
fn web_app_end_to_end_on_postgres_and_s3() {
    let pg = Postgres::start();
    let weed = Seaweed::start();
    weed.create_bucket("coffre-web");
    let db = pg.create_database("coffre_web");
    let server =
        std::env::var("COFFRE_SERVER_BIN").expect("COFFRE_SERVER_BIN: the release coffre-server");
    let out = Command::new(&server)
        .args(["migrate", "--records", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/web");
    // The servers' log (warnings and slow requests), shown if the test fails.
    let log = weed.dir().join("coffre-server.log");
    let status = Command::new("node")
        // As `cargo xtask test` runs them on the embedded store (xtask's WEB_TEST_ARGS).
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "web.test.js",
            "recovery.test.js",
        ])
        .current_dir(web)
        .env("COFFRE_SERVER_BIN", &server)
        .env("COFFRE_RECORDS", &db)
        .env(
            "COFFRE_PAYLOADS",
            format!("s3://coffre-web?endpoint={}", weed.endpoint()),
        )
        .env("COFFRE_S3_ACCESS_KEY", weed.access_key())
        .env("COFFRE_S3_SECRET_KEY", weed.secret_key())
        .env(
            "COFFRE_WEB_SCAN_DIRS",
            format!("{}:{}", pg.data_dir().display(), weed.dir().display()),
        )
        .env("COFFRE_SERVER_LOG", &log)
        .status()
        .unwrap();
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!(
            "the servers' log, last lines:\n{}",
            lines[lines.len().saturating_sub(80)..].join("\n")
        );
    }
    assert!(status.success(), "the web test failed on PostgreSQL + S3");
}
