//! Two `coffre-server` processes on one PostgreSQL and one SeaweedFS cluster (three
//! volume servers, every object on two of them), all on 127.0.0.1: any request to any
//! node, and the faults a deployment lives through — a storage node killed during 20
//! concurrent uploads, a server node killed mid-upload (the client resumes on the other),
//! PostgreSQL restarted under load. Each shows 0 acknowledged bytes or writes lost, 0
//! partial documents visible, and a clean audit. Every loop is bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffre_core::Identity;
use coffre_server::store::{postgres, PgRecords, Records, S3Config, S3Payloads};
use common::cluster::{Postgres, Seaweed};
use common::{b64, encrypt_for, plaintext};
use reqwest::StatusCode;
use serde_json::{json, Value};

const BUCKET: &str = "coffre-payloads";

/// A `coffre-server serve` process.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The databases, the object store and two server nodes.
struct Cluster {
    pg: Postgres,
    weed: Seaweed,
    db_url: String,
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    http: reqwest::Client,
}

impl Cluster {
    async fn start() -> Self {
        let (pg, weed) = tokio::task::spawn_blocking(|| {
            let pg = Postgres::start();
            let weed = Seaweed::start();
            weed.create_bucket(BUCKET);
            (pg, weed)
        })
        .await
        .unwrap();
        let db_url = pg.create_database("coffre");
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self {
            pg,
            weed,
            db_url,
            dir,
            nodes: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        // The schema through the command operators run.
        let out = Command::new(env!("CARGO_BIN_EXE_coffre-server"))
            .args(["migrate", "--records", &cluster.db_url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for i in 0..2 {
            let node = cluster.spawn_node(i);
            cluster.nodes.push(node);
        }
        cluster
    }

    fn payloads_url(&self) -> String {
        format!("s3://{BUCKET}?endpoint={}", self.weed.endpoint())
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("coffre-server.key")
    }

    /// Starts node `i` (a fresh data directory, the shared key file) and waits for it.
    fn spawn_node(&self, i: usize) -> Node {
        let data = self.dir.path().join(format!("node{i}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffre-server"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .arg("--server-key")
            .arg(self.key_file())
            .args([
                "--records",
                &self.db_url,
                "--payloads",
                &self.payloads_url(),
            ])
            .env("COFFRE_S3_ACCESS_KEY", self.weed.access_key())
            .env("COFFRE_S3_SECRET_KEY", self.weed.secret_key())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("node {i} did not start: {line:?}"))
            .to_owned();
        Node { child, url }
    }

    async fn records(&self) -> PgRecords {
        PgRecords::connect(&self.db_url).await.unwrap()
    }

    async fn payloads(&self) -> S3Payloads {
        S3Payloads::connect(&S3Config {
            bucket: BUCKET.into(),
            endpoint: Some(self.weed.endpoint()),
            region: self.weed.region().into(),
            access_key: self.weed.access_key().into(),
            secret_key: self.weed.secret_key().into(),
            prefix: String::new(),
        })
        .await
        .unwrap()
    }

    /// A beneficiary with a session, written straight into the shared database.
    async fn user(&self, handle: &str) -> (Identity, String) {
        let records = self.records().await;
        let (identity, _, token) = common::seed::seed_account(&records, handle, 3600).await;
        (identity, token)
    }

    /// The audit of the whole cluster store, with the key file searched for.
    async fn audit(&self) -> coffre_server::audit::AuditReport {
        let key = std::fs::read(self.key_file()).unwrap();
        coffre_server::audit::audit_store(&self.records().await, &self.payloads().await, Some(&key))
            .await
            .unwrap()
    }

    fn node(&self, i: usize) -> &str {
        &self.nodes[i % self.nodes.len()].url
    }
}

/// One client's upload of one document, request by request, any node: creates it on
/// `first`, then sends `step`-byte PATCHes, each to the next node, and after any failure
/// asks the next node where to resume. Returns (document id, the acknowledged offsets in
/// order). Every acknowledged offset is checked never to go back.
async fn upload(
    c: &Cluster,
    token: &str,
    envelope: &[u8],
    payload: &[u8],
    first: usize,
    step: usize,
    deadline: Instant,
) -> (String, Vec<u64>) {
    let mut turn = first;
    let doc: Value = loop {
        let r = c
            .http
            .post(format!("{}/v1/documents", c.node(turn)))
            .bearer_auth(token)
            .json(&json!({"metadata": b64(b"sealed"), "size": payload.len(), "envelope": b64(envelope)}))
            .send()
            .await;
        match r {
            Ok(r) if r.status() == StatusCode::CREATED => break r.json().await.unwrap(),
            other => {
                assert!(
                    Instant::now() < deadline,
                    "create never succeeded: {other:?}"
                );
                turn += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let id = doc["id"].as_str().unwrap().to_owned();
    let mut acked: Vec<u64> = Vec::new();
    let mut stored = 0u64;
    while stored < payload.len() as u64 {
        assert!(Instant::now() < deadline, "upload {id} stuck at {stored}");
        turn += 1;
        let end = (stored as usize + step).min(payload.len());
        let r = c
            .http
            .patch(format!(
                "{}/v1/documents/{id}/payload?offset={stored}",
                c.node(turn)
            ))
            .bearer_auth(token)
            .body(payload[stored as usize..end].to_vec())
            .send()
            .await;
        match r {
            Ok(r) if r.status() == StatusCode::OK => {
                let v: Value = r.json().await.unwrap();
                stored = v["stored"].as_u64().unwrap();
                acked.push(stored);
            }
            _ => {
                // Where to resume, from whichever node answers; never behind what was
                // acknowledged.
                tokio::time::sleep(Duration::from_millis(200)).await;
                turn += 1;
                if let Ok(r) = c
                    .http
                    .get(format!("{}/v1/documents/{id}/upload", c.node(turn)))
                    .bearer_auth(token)
                    .send()
                    .await
                {
                    if r.status() == StatusCode::OK {
                        let v: Value = r.json().await.unwrap();
                        stored = v["stored"].as_u64().unwrap();
                    }
                }
                let last = acked.last().copied().unwrap_or(0);
                assert!(
                    stored >= last,
                    "{id}: stored {stored} < acknowledged {last}"
                );
            }
        }
    }
    loop {
        turn += 1;
        let r = c
            .http
            .post(format!("{}/v1/documents/{id}/commit", c.node(turn)))
            .bearer_auth(token)
            .send()
            .await;
        match r {
            Ok(r) if r.status() == StatusCode::OK => break,
            // A commit whose answer was lost: already committed is committed.
            Ok(r) if r.status() == StatusCode::CONFLICT => {
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["type"], "/problems/already-committed", "{v}");
                break;
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "commit of {id} never succeeded: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    (id, acked)
}

async fn download(c: &Cluster, node: usize, token: &str, id: &str) -> Vec<u8> {
    let r = c
        .http
        .get(format!("{}/v1/documents/{id}/payload", c.node(node)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "download {id} from node {node}");
    r.bytes().await.unwrap().to_vec()
}

/// Every document of the owner is committed (nothing half uploaded is visible) and every
/// one comes back byte for byte from both nodes.
async fn check_documents(c: &Cluster, token: &str, expected: &[(String, Vec<u8>)]) {
    let r = c
        .http
        .get(format!("{}/v1/documents", c.node(0)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let listed: Vec<Value> = r.json().await.unwrap();
    assert_eq!(listed.len(), expected.len());
    assert!(
        listed.iter().all(|d| d["committed"] == true),
        "a partial document is listed"
    );
    for (i, (id, payload)) in expected.iter().enumerate() {
        assert!(download(c, i, token, id).await == *payload, "{id} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_serve_the_same_users() {
    let c = Cluster::start().await;
    let (amina, token) = c.user("amina").await;
    let (worker_identity, worker_token) = c.user("worker").await;
    let (envelope, payload) = encrypt_for(&amina, &plaintext(3 * 1024 * 1024 + 5));
    let deadline = Instant::now() + Duration::from_secs(60);
    // Create on one node, pieces alternating between the two, commit on either.
    let (id, acked) = upload(
        &c,
        &token,
        envelope.as_bytes(),
        &payload,
        0,
        700_000,
        deadline,
    )
    .await;
    assert_eq!(acked.len(), 5, "{acked:?}");
    assert!(download(&c, 0, &token, &id).await == payload);
    assert!(download(&c, 1, &token, &id).await == payload);
    // A share written through node 1 is seen by the worker on node 0.
    let worker_id = c
        .records()
        .await
        .account_by_handle("worker")
        .await
        .unwrap()
        .unwrap()
        .id;
    let shared = envelope
        .rewrap(&[amina], &worker_identity.to_recipient())
        .unwrap();
    let r = c
        .http
        .put(format!(
            "{}/v1/documents/{id}/envelopes/{worker_id}",
            c.node(1)
        ))
        .bearer_auth(&token)
        .json(&json!({"envelope": b64(shared.as_bytes())}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .http
        .get(format!("{}/v1/shared", c.node(0)))
        .bearer_auth(&worker_token)
        .send()
        .await
        .unwrap();
    let listed: Vec<Value> = r.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(download(&c, 0, &worker_token, &id).await == payload);

    // Login attempts on a handle that does not exist, spread over both nodes, count on one
    // budget: three freely, then a wait that either node tells, as for a real account.
    for attempt in 0..6 {
        let (_, ke1) = coffre_core::opaque::ClientLogin::start(b"guess").unwrap();
        let r = c
            .http
            .post(format!("{}/v1/login/start", c.node(attempt)))
            .json(&json!({"handle": "nobody.here", "login_request": b64(&ke1)}))
            .send()
            .await
            .unwrap();
        let node = attempt % 2;
        if attempt < 3 {
            assert_eq!(
                r.status(),
                StatusCode::OK,
                "attempt {attempt} on node {node}"
            );
        } else {
            assert_eq!(
                r.status(),
                StatusCode::TOO_MANY_REQUESTS,
                "attempt {attempt} on node {node}"
            );
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=30).contains(&wait), "{wait}");
        }
    }
    let report = c.audit().await;
    assert!(report.passed(), "{:?}", report.violations);
    assert_eq!(report.committed_documents, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storage_node_killed_during_20_uploads_loses_nothing_acknowledged() {
    let c = Arc::new(Cluster::start().await);
    let (amina, token) = c.user("amina").await;
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (envelope, payload) = encrypt_for(&amina, &plaintext(1_500_000 + i * 1000));
        let (c, token) = (Arc::clone(&c), token.clone());
        tasks.push(tokio::spawn(async move {
            let (id, acked) = upload(
                &c,
                &token,
                envelope.as_bytes(),
                &payload,
                i,
                256 * 1024,
                deadline,
            )
            .await;
            (id, acked, payload)
        }));
    }
    // Once uploads are under way, one of the three volume servers dies.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killer = Arc::clone(&c);
    tokio::task::spawn_blocking(move || killer.weed.kill9_volume(1))
        .await
        .unwrap();
    let mut done = Vec::new();
    let mut acknowledged = 0;
    for t in tasks {
        let (id, acked, payload) = t.await.unwrap();
        acknowledged += acked.len();
        done.push((id, payload));
    }
    assert!(
        acknowledged >= 20 * 6,
        "only {acknowledged} pieces acknowledged"
    );
    // With the dead server still down: every document whole, from both nodes.
    check_documents(&c, &token, &done).await;
    let report = c.audit().await;
    assert!(report.passed(), "{:?}", report.violations);
    assert_eq!(report.committed_documents, 20);
    assert_eq!(report.uploads_in_progress, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_node_killed_mid_upload_the_client_resumes_on_the_other() {
    let mut c = Cluster::start().await;
    let (amina, token) = c.user("amina").await;
    let (envelope, payload) = encrypt_for(&amina, &plaintext(16 * 1024 * 1024));
    let r = c
        .http
        .post(format!("{}/v1/documents", c.node(0)))
        .bearer_auth(&token)
        .json(&json!({"metadata": b64(b"sealed"), "size": payload.len(), "envelope": b64(envelope.as_bytes())}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // One long request to node 0, 256 KiB every 100 ms (6.4 s in all): it checkpoints
    // every 2 s.
    let body: Vec<Vec<u8>> = payload.chunks(256 * 1024).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::unfold(body.into_iter(), |mut chunks| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        chunks
            .next()
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), chunks))
    });
    let url = format!("{}/v1/documents/{id}/payload?offset=0", c.node(0));
    let request = c
        .http
        .patch(url)
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let sending = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    c.nodes[0].kill9();
    assert!(sending.await.unwrap().is_err(), "the killed node answered");

    // The other node says where to resume (once the dead node's lease has expired) and
    // takes the rest.
    let started = Instant::now();
    let r = c
        .http
        .get(format!("{}/v1/documents/{id}/upload", c.node(1)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let stored = r.json::<Value>().await.unwrap()["stored"].as_u64().unwrap();
    println!(
        "resumed at {stored} of {} bytes after {:?} (lease expiry)",
        payload.len(),
        started.elapsed()
    );
    assert!(
        stored >= 1024 * 1024,
        "checkpoints before the kill were lost: {stored}"
    );
    assert!(stored < payload.len() as u64);
    let r = c
        .http
        .patch(format!(
            "{}/v1/documents/{id}/payload?offset={stored}",
            c.node(1)
        ))
        .bearer_auth(&token)
        .body(payload[stored as usize..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .http
        .post(format!("{}/v1/documents/{id}/commit", c.node(1)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A replacement node comes up on the same store and serves it.
    let replacement = c.spawn_node(0);
    c.nodes[0] = replacement;
    check_documents(&c, &token, &[(id, payload)]).await;
    let report = c.audit().await;
    assert!(report.passed(), "{:?}", report.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_loses_no_acknowledged_write() {
    let c = Arc::new(Cluster::start().await);
    let (amina, token) = c.user("amina").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let (envelope, payload) = encrypt_for(&amina, &plaintext(10_000));
    let (id, _) = upload(
        &c,
        &token,
        envelope.as_bytes(),
        &payload,
        0,
        1 << 20,
        deadline,
    )
    .await;
    // Recipients to share with, one per write.
    let records = c.records().await;
    let mut recipients = Vec::new();
    for i in 0..400 {
        let identity = Identity::generate().unwrap();
        let account = common::seed::stand_in_account(
            &identity,
            &format!("worker{i}"),
            coffre_server::store::Role::Worker,
            None,
            1,
        );
        records.create_account(&account).await.unwrap();
        recipients.push((account.id, identity));
    }
    drop(records);
    let shared = Arc::new(
        recipients
            .iter()
            .map(|(rid, identity)| {
                let env = envelope
                    .rewrap(std::slice::from_ref(&amina), &identity.to_recipient())
                    .unwrap();
                (*rid, b64(env.as_bytes()))
            })
            .collect::<Vec<_>>(),
    );
    // Four clients share documents with one recipient after another, any node, while
    // PostgreSQL is killed and started again.
    let mut clients = Vec::new();
    for k in 0..4 {
        let (c, token, id, shared) = (
            Arc::clone(&c),
            token.clone(),
            id.clone(),
            Arc::clone(&shared),
        );
        clients.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut unavailable = 0;
            for (n, (rid, env)) in shared.iter().enumerate().filter(|(n, _)| n % 4 == k) {
                // As a client does: on 503, wait a little and send it again (any node).
                for attempt in 0.. {
                    assert!(Instant::now() < deadline, "share {n} never went through");
                    let r = c
                        .http
                        .put(format!(
                            "{}/v1/documents/{id}/envelopes/{rid}",
                            c.node(n + attempt)
                        ))
                        .bearer_auth(&token)
                        .json(&json!({"envelope": env}))
                        .send()
                        .await
                        .unwrap();
                    match r.status() {
                        StatusCode::NO_CONTENT => {
                            acknowledged.push(*rid);
                            break;
                        }
                        StatusCode::SERVICE_UNAVAILABLE => {
                            assert!(r.headers().contains_key("retry-after"));
                            let v: Value = r.json().await.unwrap();
                            assert_eq!(v["type"], "/problems/unavailable");
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        other => panic!("share {n}: {other} {}", r.text().await.unwrap()),
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (acknowledged, unavailable)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pg = Arc::clone(&c);
    tokio::task::spawn_blocking(move || {
        pg.pg.kill9();
        std::thread::sleep(Duration::from_millis(1500));
        pg.pg.restart();
    })
    .await
    .unwrap();
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for client in clients {
        let (a, u) = client.await.unwrap();
        acknowledged.extend(a);
        unavailable += u;
    }
    println!(
        "{} shares acknowledged, {unavailable} answered 503",
        acknowledged.len()
    );
    assert!(
        unavailable > 0,
        "the outage was not seen: the test proved nothing"
    );
    assert_eq!(
        acknowledged.len(),
        400,
        "every share went through in the end"
    );
    // Every acknowledged share is there, after the restart, from both nodes.
    let records = c.records().await;
    let doc = id.parse().unwrap();
    for rid in &acknowledged {
        assert!(
            records.envelope(doc, *rid).await.unwrap().is_some(),
            "acknowledged share to {rid} lost"
        );
    }
    for node in 0..2 {
        let r = c
            .http
            .get(format!("{}/v1/documents/{id}/envelopes", c.node(node)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "node {node} after the restart");
    }
    let report = c.audit().await;
    assert!(report.passed(), "{:?}", report.violations);
    let _ = postgres::MIGRATIONS;
}
