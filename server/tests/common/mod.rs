//! Shared test harness: a real server on 127.0.0.1:0 over a fresh temp data dir, a real
//! HTTP client, and helpers that build real age documents with coffre-core.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use coffre_core::opaque::ServerSetup;
use coffre_core::{Envelope, Identity};
use coffre_server::store::{
    self, Account, FilePayloads, Id, Payloads, PgRecords, Records, Role, Session, SledRecords,
};
use coffre_server::{AppState, Clock, Limits};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

pub mod accounts;
pub mod cluster;
pub mod pg;
pub mod s3;
pub mod seed;

/// A running server.
pub struct TestServer {
    pub url: String,
    /// The records, as the server uses them (backend-neutral).
    pub store: Arc<dyn Records>,
    /// The payloads, as the server uses them (backend-neutral).
    pub payloads: Arc<dyn Payloads>,
    /// The same records as sled, on the embedded backend (the audit reads them).
    pub sled_records: Option<Arc<SledRecords>>,
    /// The payload files, for the audit.
    pub files: FilePayloads,
    pub clock: Arc<AtomicU64>,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    /// The OPAQUE server setup's bytes (what the key file would hold).
    pub server_key: Vec<u8>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// An account with its identity and a session token.
pub struct User {
    pub account: Account,
    pub identity: Identity,
    pub token: String,
}

impl User {
    pub fn id(&self) -> Id {
        self.account.id
    }
}

pub const START_TIME: u64 = 1_900_000_000;

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    pub async fn start_with(limits: Limits) -> Self {
        Self::start_behind(limits, coffre_server::client::TrustedProxies::default()).await
    }

    /// A server that believes the forwarding headers of `proxies`.
    pub async fn start_behind(
        limits: Limits,
        proxies: coffre_server::client::TrustedProxies,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The records backend comes from COFFRE_TEST_RECORDS: `postgres` runs the same
        // HTTP tests on a fresh PostgreSQL database (see `pg`); anything else, sled.
        let (store, sled_records, files): (Arc<dyn Records>, _, _) =
            if std::env::var("COFFRE_TEST_RECORDS").as_deref() == Ok("postgres") {
                let url = pg::fresh_database().await;
                let records = PgRecords::connect(&url).await.unwrap();
                let files = FilePayloads::open(&data.join(store::PAYLOAD_DIR)).unwrap();
                (Arc::new(records), None, files)
            } else {
                let (records, files) = store::open_embedded(&data, 8 << 20).unwrap();
                let sled = Arc::new(records);
                (sled.clone(), Some(sled), files)
            };
        // COFFRE_TEST_PAYLOADS=s3: payloads in SeaweedFS (one cluster per test binary, a
        // prefix per test), as a cluster deployment keeps them.
        let payloads: Arc<dyn Payloads> =
            if std::env::var("COFFRE_TEST_PAYLOADS").as_deref() == Ok("s3") {
                Arc::new(s3::fresh_payloads().await)
            } else {
                Arc::new(files.clone())
            };
        let clock = Arc::new(AtomicU64::new(START_TIME));
        let setup = ServerSetup::generate();
        let server_key = setup.to_bytes().to_vec();
        let mut state = AppState::new(store.clone(), payloads.clone(), setup, limits);
        state.clock = Clock::Manual(clock.clone());
        state.proxies = Arc::new(proxies);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            coffre_server::serve(listener, state, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            store,
            payloads,
            sled_records,
            files,
            clock,
            dir,
            client: reqwest::Client::new(),
            server_key,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server gracefully; returns the temp dir so the data outlives it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.dir
    }

    pub fn advance(&self, seconds: u64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Asks link `lid` for a download grant with the visitor's grant id `grant` (see
    /// [`grant_id`]), as the link page does after checking its key.
    pub fn link_grant(&self, lid: &str, grant: &str) -> RequestBuilder {
        self.req(Method::POST, &format!("/v1/links/{lid}/grants"), None)
            .json(&json!({ "grant": grant }))
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.client.request(method, format!("{}{}", self.url, path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Inserts an account and a session directly in the store (bypassing OPAQUE, which
    /// tests/login.rs covers) and returns it with a real identity. Its stored record and
    /// bundle are well-formed (see [`seed::stand_in_account`]), so `audit` passes.
    pub async fn user(&self, handle: &str, role: Role, org: Option<Id>) -> User {
        let identity = Identity::generate().unwrap();
        let account = seed::stand_in_account(&identity, handle, role, org, self.now());
        self.store.create_account(&account).await.unwrap();
        let token = self.session_for(account.id, 3600).await;
        User {
            account,
            identity,
            token,
        }
    }

    /// A session for `account` valid `seconds` from now.
    pub async fn session_for(&self, account: Id, seconds: u64) -> String {
        let (token, hash) = coffre_server::auth::generate_token().unwrap();
        self.store
            .put_session(
                &hash,
                &Session {
                    account,
                    created_at: self.now(),
                    expires_at: self.now() + seconds,
                    credential_epoch: 0,
                    last_used_at: self.now(),
                    device: String::new(),
                    shared: false,
                },
            )
            .await
            .unwrap();
        token
    }

    /// Creates, uploads and commits a document of `plaintext` owned by `owner`.
    pub async fn upload(&self, owner: &User, plaintext: &[u8]) -> (String, Vec<u8>, Envelope) {
        let (envelope, payload) = encrypt_for(&owner.identity, plaintext);
        let id = self.create(owner, &envelope, payload.len()).await;
        let r = self
            .req(
                Method::PATCH,
                &format!("/v1/documents/{id}/payload?offset=0"),
                Some(&owner.token),
            )
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let r = self
            .req(
                Method::POST,
                &format!("/v1/documents/{id}/commit"),
                Some(&owner.token),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        (id, payload, envelope)
    }

    /// Commits an uploaded document; asserts 200.
    pub async fn commit(&self, owner: &User, id: &str) {
        let r = self
            .req(
                Method::POST,
                &format!("/v1/documents/{id}/commit"),
                Some(&owner.token),
            )
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "commit {id}");
    }

    /// A new organisation and a one-use worker invite code for it, as the admin commands
    /// make them.
    pub async fn org_with_invite(&self, name: &str) -> (coffre_server::store::Org, String) {
        let org = coffre_server::admin::create_org(self.store.as_ref(), name, self.now())
            .await
            .unwrap();
        let invite = coffre_server::admin::create_invite(self.store.as_ref(), org.id, self.now())
            .await
            .unwrap();
        (org, invite)
    }

    /// One sweep as the server's sweeper runs it, with uploads older than
    /// `stale_seconds` counted as abandoned.
    pub async fn sweep(&self, stale_seconds: u64) -> Result<store::Sweep, store::StoreError> {
        let now = self.now();
        let mut sweep = self.store.sweep(now, now - stale_seconds).await?;
        sweep.orphan_payloads =
            store::sweep_payloads(self.store.as_ref(), self.payloads.as_ref()).await?;
        Ok(sweep)
    }

    /// The ids of every payload the payload store holds.
    pub async fn payload_ids(&self) -> Vec<Id> {
        self.payloads.list().await.unwrap()
    }

    /// The sled records; only the embedded-backend tests (audit, store digests) use it.
    pub fn sled(&self) -> &Arc<SledRecords> {
        self.sled_records
            .as_ref()
            .expect("this test reads sled itself: run it on the embedded backend")
    }

    /// Audits the store as `coffre-server audit` would.
    pub fn audit(&self, server_key: Option<&[u8]>) -> coffre_server::audit::AuditReport {
        coffre_server::audit::audit(self.sled(), &self.files, server_key)
    }

    /// Downloads a document's whole payload as `who`; asserts 200.
    pub async fn payload(&self, who: &User, id: &str) -> bytes::Bytes {
        let r = self
            .req(
                Method::GET,
                &format!("/v1/documents/{id}/payload"),
                Some(&who.token),
            )
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "download {id}");
        r.bytes().await.unwrap()
    }

    /// Creates an uncommitted document; returns its id.
    pub async fn create(&self, owner: &User, envelope: &Envelope, size: usize) -> String {
        let r = self
            .req(Method::POST, "/v1/documents", Some(&owner.token))
            .json(&json!({
                "metadata": b64(b"sealed metadata stand-in"),
                "size": size,
                "envelope": b64(envelope.as_bytes()),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// Shares `doc` of `owner` with `recipient`.
    pub async fn share(
        &self,
        owner: &User,
        doc: &str,
        own: &Envelope,
        recipient: &User,
        expires_at: Option<u64>,
    ) {
        let env = own
            .rewrap(
                std::slice::from_ref(&owner.identity),
                &recipient.identity.to_recipient(),
            )
            .unwrap();
        let r = self
            .req(
                Method::PUT,
                &format!("/v1/documents/{doc}/envelopes/{}", recipient.id()),
                Some(&owner.token),
            )
            .json(&json!({ "envelope": b64(env.as_bytes()), "expires_at": expires_at }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "{}",
            r.text().await.unwrap()
        );
    }
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A visitor's grant id, distinct per `n` (16 bytes, base64url as the page sends it).
pub fn grant_id(n: u8) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([n; 16])
}

pub fn unb64(text: &str) -> Vec<u8> {
    STANDARD.decode(text).unwrap()
}

/// A real age file for `identity`, split into envelope and payload.
pub fn encrypt_for(identity: &Identity, plaintext: &[u8]) -> (Envelope, Vec<u8>) {
    let file = coffre_core::encrypt(plaintext, &[identity.to_recipient()]).unwrap();
    let (envelope, payload) = Envelope::split(&file).unwrap();
    (envelope, payload.to_vec())
}

/// The two endings every test request has: sent (any status), or sent and read as JSON.
#[allow(async_fn_in_trait)]
pub trait Sent {
    /// Sends the request; panics if no response comes.
    async fn sent(self) -> Response;
    /// Sends the request and parses the body as JSON; panics on failure.
    async fn value(self) -> Value;
}

impl Sent for RequestBuilder {
    async fn sent(self) -> Response {
        self.send().await.unwrap()
    }

    async fn value(self) -> Value {
        self.sent().await.json().await.unwrap()
    }
}

/// Asserts a problem response: status, content type and stable type slug.
pub async fn assert_problem(r: Response, status: StatusCode, slug: &str) -> Value {
    assert_eq!(r.status(), status, "expected {status} {slug}");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], format!("/problems/{slug}"), "{v}");
    assert_eq!(v["status"], status.as_u16());
    assert!(v["title"].is_string());
    v
}

/// Deterministic filler plaintext.
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
