//! The cluster harness itself (tests/common/cluster.rs): a real PostgreSQL that survives
//! a crash, and a real SeaweedFS whose S3 gateway serves signed requests and keeps
//! serving an object while any one volume server is dead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Postgres, Seaweed, VOLUME_SERVERS};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

/// Bound on each S3 request, so a hung cluster fails the test instead of stalling it.
const S3_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn postgres_answers_and_comes_back_after_kill9() {
    let started = Instant::now();
    let pg = Postgres::start();
    eprintln!("PostgreSQL started in {:?}", started.elapsed());
    assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));

    let url = pg.create_database("smoke");
    assert_eq!(url, pg.url_for("smoke"));
    assert_eq!(pg.psql("smoke", "select 1"), "1");
    pg.psql(
        "smoke",
        "create table kept (n int); insert into kept values (42)",
    );

    pg.kill9();
    assert!(!pg.is_running());
    let refused = pg.try_psql("smoke", "select 1");
    assert!(refused.is_err(), "a killed server answered: {refused:?}");

    let restarted = Instant::now();
    pg.restart();
    eprintln!(
        "PostgreSQL restarted after SIGKILL (crash recovery) in {:?}",
        restarted.elapsed()
    );
    assert_eq!(pg.psql("smoke", "select n from kept"), "42");

    pg.stop();
    assert!(!pg.is_running());
    pg.restart();
    assert_eq!(pg.psql("smoke", "select count(*) from kept"), "1");
}

fn s3(sw: &Seaweed, bucket: &str, secret: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(sw.endpoint())
        .with_region(sw.region())
        .with_bucket_name(bucket)
        .with_access_key_id(sw.access_key())
        .with_secret_access_key(secret)
        // Replaces the builder's client options, so it carries allow_http itself.
        .with_client_options(
            ClientOptions::new()
                .with_allow_http(true)
                .with_timeout(S3_TIMEOUT),
        )
        // No retries: a read that only a second try would serve must fail the test.
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })
        .build()
        .unwrap()
}

async fn get(store: &AmazonS3, path: &Path) -> object_store::Result<Vec<u8>> {
    let read = async { store.get(path).await?.bytes().await };
    tokio::time::timeout(S3_TIMEOUT * 2, read)
        .await
        .expect("S3 GET timed out")
        .map(|b| b.to_vec())
}

#[tokio::test]
async fn seaweed_serves_signed_s3_and_survives_any_one_dead_volume_server() {
    let started = Instant::now();
    let sw = Seaweed::start();
    eprintln!("SeaweedFS started in {:?}", started.elapsed());
    sw.create_bucket("smoke");

    let store = s3(&sw, "smoke", sw.secret_key());
    let path = Path::from("documents/one");
    // 5 MiB: more than the filer's 4 MiB chunk, so the object spans two chunks.
    let body: Vec<u8> = (0..5u32 << 20).map(|i| (i % 251) as u8).collect();
    tokio::time::timeout(
        S3_TIMEOUT * 2,
        store.put(&path, PutPayload::from(body.clone())),
    )
    .await
    .expect("S3 PUT timed out")
    .unwrap();
    assert!(get(&store, &path).await.unwrap() == body);

    let forged = s3(&sw, "smoke", "not-the-secret");
    assert!(
        get(&forged, &path).await.is_err(),
        "a request signed with the wrong secret was served"
    );

    // Each object lives on two of the three servers; killing each in turn kills a
    // holder of every chunk at least once.
    for i in 0..VOLUME_SERVERS {
        sw.kill9_volume(i);
        let read = get(&store, &path).await;
        assert!(
            read.as_ref().is_ok_and(|b| *b == body),
            "with volume server {i} dead: {:?}; logs:\n{}",
            read.map(|b| b.len()),
            sw.log_tails()
        );
        let restarted = Instant::now();
        sw.restart_volume(i);
        eprintln!("volume server {i} restarted in {:?}", restarted.elapsed());
    }
    assert!(get(&store, &path).await.unwrap() == body);
    eprintln!(
        "SeaweedFS: {} MiB of memory (PSS; RSS {} MiB), {} KiB on disk",
        sw.memory_bytes() >> 20,
        sw.resident_bytes() >> 20,
        sw.disk_bytes() >> 10
    );
}
