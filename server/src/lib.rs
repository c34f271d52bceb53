//! `coffre-server`: the thin axum + sled server of Coffre, which stores only what it
//! cannot read (DESIGN.md, "Server rules" and "Threat model").
//!
//! The library exposes [`app`], which builds the whole [`Router`] from an [`AppState`];
//! the binary only reads configuration, opens the store, binds and serves. Tests start
//! the same router on `127.0.0.1:0`.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use coffre_server::{app, AppState, Limits, store::SledStore};
//! let dir = tempfile::tempdir()?;
//! let store = SledStore::open(dir.path(), 16 << 20)?;
//! let setup = coffre_core::opaque::ServerSetup::generate();
//! let state = AppState::new(Arc::new(store), setup, Limits::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app(state)).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod error;
pub mod keyfile;
pub mod openapi;
pub mod statics;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use coffre_core::opaque::ServerSetup;

pub use error::{AppError, AppResult, Problem};
use store::Store;

/// Size limits and policy numbers. Every limit gives a distinct 4xx problem when hit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON request body (envelopes are at most 128 KiB, base64 adds a third).
    pub json_body_bytes: usize,
    /// Largest sealed metadata blob of a document.
    pub metadata_bytes: usize,
    /// Largest sealed key bundle.
    pub bundle_bytes: usize,
    /// Largest single document payload.
    pub max_document_bytes: u64,
    /// Total payload bytes one account may own (committed or uploading).
    pub quota_bytes: u64,
    /// Lifetime of a session.
    pub session_seconds: u64,
    /// Failed logins after which an account locks.
    pub max_failed_logins: u32,
    /// Login attempts per client IP per minute, on top of the per-account lock.
    pub login_attempts_per_ip_per_minute: u32,
    /// Uploads not committed after this long are deleted by the sweeper.
    pub stale_upload_seconds: u64,
    /// How often the sweeper runs (expired sessions, shares, links; stale uploads).
    pub sweep_every_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            json_body_bytes: 256 * 1024,
            metadata_bytes: 64 * 1024,
            bundle_bytes: 4 * 1024,
            max_document_bytes: 4 << 30,
            quota_bytes: 8 << 30,
            session_seconds: 12 * 3600,
            max_failed_logins: 10,
            login_attempts_per_ip_per_minute: 60,
            stale_upload_seconds: 7 * 24 * 3600,
            sweep_every_seconds: 600,
        }
    }
}

/// Where "now" comes from. Tests move a manual clock to expire sessions, shares, links.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that only moves when told to (unix seconds).
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> u64 {
        match self {
            Self::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            Self::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
}

/// Everything handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The storage.
    pub store: Arc<dyn Store>,
    /// The OPAQUE server setup (OPRF seed and key pair) from the key file.
    pub opaque: Arc<ServerSetup>,
    /// Limits in force.
    pub limits: Arc<Limits>,
    /// Source of time.
    pub clock: Clock,
    /// Logins between their two messages (in memory only: they hold secrets).
    pub logins: Arc<api::accounts::PendingLogins>,
    /// Static file directories, if served.
    pub statics: statics::StaticDirs,
    /// One upload request at a time per document (see [`api::documents::UploadLocks`]).
    pub uploads: Arc<api::documents::UploadLocks>,
    /// Shares one disk sync among the writes that wait for it (see [`GroupFlush`]).
    pub flushes: Arc<GroupFlush>,
}

/// Group commit: one store flush makes every write finished before it durable, so the
/// requests that wait while a flush runs share the next one instead of queueing one
/// fsync each. Measured on the add-envelope route at 64 connections, one flush per
/// request capped it at 4.9k req/s with p99 29 ms.
#[derive(Debug, Default)]
pub struct GroupFlush {
    /// Tickets handed out; a caller takes one after its writes are done.
    issued: AtomicU64,
    /// Every ticket up to this one is durable.
    durable: AtomicU64,
    /// One flush at a time; waiters queue here in order.
    running: tokio::sync::Mutex<()>,
}

impl AppState {
    /// State with the system clock and no static files.
    pub fn new(store: Arc<dyn Store>, opaque: ServerSetup, limits: Limits) -> Self {
        Self {
            store,
            opaque: Arc::new(opaque),
            limits: Arc::new(limits),
            clock: Clock::System,
            logins: Arc::default(),
            statics: statics::StaticDirs::default(),
            uploads: Arc::default(),
            flushes: Arc::default(),
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Runs a storage call that may wait on the disk (payload files, flush, sweep) off the
    /// async workers.
    pub async fn blocking<T, F>(&self, f: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, store::StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(AppError::from)
    }

    /// Runs a record operation (a read or a small transaction on records) right here, on
    /// the async worker. sled answers these from memory in microseconds: they append to
    /// its in-memory log and make nothing durable (that is [`AppState::flush`]). Sending
    /// each to the blocking pool cost more than the work itself: at 64 connections on 2
    /// cores, four such hand-offs per request made tokio start ~190 blocking threads that
    /// crowded out the two workers (add-envelope 7.5k req/s, p99 21 ms; inline 11-14k
    /// req/s, p99 9-12 ms). What can wait on the disk — payload files, [`AppState::flush`],
    /// the sweep — goes through [`AppState::blocking`].
    pub fn record<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&dyn Store) -> Result<T, store::StoreError>,
    {
        f(self.store.as_ref()).map_err(AppError::from)
    }

    /// Makes every write so far durable; called before acknowledging a write.
    pub async fn flush(&self) -> AppResult<()> {
        let gate = &self.flushes;
        let ticket = gate.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = gate.running.lock().await;
        if gate.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // a flush that started after our writes has finished
        }
        // Every ticket issued so far belongs to writes that are done: this flush covers them.
        let covered = gate.issued.load(Ordering::SeqCst);
        self.blocking(|s| s.flush()).await?;
        gate.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

/// The whole HTTP application: `/healthz`, the `/v1` API, its OpenAPI document, and the
/// static web app and package when configured.
pub fn app(state: AppState) -> Router {
    let statics = state.statics.clone();
    let router = Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .merge(api::router(state.clone()))
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed });
    statics::attach(router, &statics)
}

/// Liveness: `ok` while the server runs.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Every operation the router of [`app`] serves besides static files, as (method, path):
/// `/healthz` and the `/v1` routes as [`api::routes`] builds them. The OpenAPI document
/// describes exactly these (a test checks both ways).
pub fn operations() -> Vec<(api::Op, String)> {
    let mut ops = vec![(api::Op::Get, "/healthz".to_owned())];
    ops.extend(
        api::routes()
            .table()
            .iter()
            .map(|(op, path)| (*op, format!("/v1{path}"))),
    );
    ops
}

/// Runs one maintenance pass: purges what expired and what was abandoned, and makes it
/// durable. Expired envelopes are also refused and purged on access; this catches the
/// ones nobody asks for.
pub async fn sweep_once(state: &AppState) -> AppResult<store::Sweep> {
    let now = state.now();
    let stale_before = now.saturating_sub(state.limits.stale_upload_seconds);
    let sweep = state.blocking(move |s| s.sweep(now, stale_before)).await?;
    state.flush().await?;
    if sweep != store::Sweep::default() {
        tracing::info!(?sweep, "sweep");
    }
    Ok(sweep)
}

/// Serves `state`'s app on `listener` until `shutdown` completes, with client addresses
/// available to handlers (per-IP login throttling). In-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = Arc::clone(&state.store);
    let sweeper_state = state.clone();
    let sweeper = tokio::spawn(async move {
        let period =
            std::time::Duration::from_secs(sweeper_state.limits.sweep_every_seconds.max(1));
        loop {
            if let Err(e) = sweep_once(&sweeper_state).await {
                tracing::error!(error = %e, "sweep failed");
            }
            tokio::time::sleep(period).await;
        }
    });
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    // Whatever was written, durable before the process exits.
    match tokio::task::spawn_blocking(move || store.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "final flush failed"),
        Err(e) => tracing::error!(error = %e, "final flush failed"),
    }
    result
}
