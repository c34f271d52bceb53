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
//! use coffre_server::{app, AppState, Limits, store};
//! let dir = tempfile::tempdir()?;
//! let (records, payloads) = store::open_embedded(dir.path(), 16 << 20)?;
//! let setup = coffre_core::opaque::ServerSetup::generate();
//! let state = AppState::new(Arc::new(records), Arc::new(payloads), setup, Limits::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app(state)).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod admin_socket;
pub mod api;
pub mod audit;
pub mod auth;
pub mod backends;
pub mod client;
pub mod conn;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod keyfile;
pub mod keys;
pub mod openapi;
pub mod statics;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use coffre_core::opaque::ServerSetup;

pub use error::{AppError, AppResult, Problem};
use store::{Payloads, Records};

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
    /// The login budget of each handle, for devices without a device credential
    /// ([`store::attempts`]).
    pub login_attempts: store::AttemptPolicy,
    /// The login budget of each device credential.
    pub device_attempts: store::AttemptPolicy,
    /// Login attempts per client IP per minute, on top of the per-account lock.
    pub login_attempts_per_ip_per_minute: u32,
    /// Registrations (workers with an invite, accounts a worker creates, OPAQUE
    /// registration starts) per client IP per minute.
    pub registrations_per_ip_per_minute: u32,
    /// Recovery steps (recovery code, requests through referents) per client IP per
    /// minute.
    pub recovery_attempts_per_ip_per_minute: u32,
    /// Link openings by anonymous visitors per client IP per minute.
    pub link_openings_per_ip_per_minute: u32,
    /// Longest time a request's headers may take to arrive ([`conn`]).
    pub header_read_seconds: u64,
    /// Longest silence of a client while the server waits for more of its request body
    /// ([`conn`]): per piece, not for the whole body.
    pub body_idle_seconds: u64,
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
            login_attempts: store::AttemptPolicy::default(),
            device_attempts: store::AttemptPolicy::default(),
            login_attempts_per_ip_per_minute: 60,
            // A worker creates accounts with people present, a few an hour; a shelter's
            // computers share one address, so the budgets stay well above one person's use.
            registrations_per_ip_per_minute: 30,
            recovery_attempts_per_ip_per_minute: 60,
            link_openings_per_ip_per_minute: 60,
            header_read_seconds: 30,
            body_idle_seconds: 30,
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

/// Everything handlers share. Nothing here changes an answer between two requests:
/// what does (sessions, pending logins, counters, leases) is in the records, so that any
/// number of server processes on the same store answer alike.
#[derive(Clone)]
pub struct AppState {
    /// The records.
    pub records: Arc<dyn Records>,
    /// The payload bytes.
    pub payloads: Arc<dyn Payloads>,
    /// The OPAQUE server setup (OPRF seed and key pair) from the key file.
    pub opaque: Arc<ServerSetup>,
    /// Per-purpose keys derived from the key file.
    pub keys: Arc<keys::ServerKeys>,
    /// Limits in force.
    pub limits: Arc<Limits>,
    /// Source of time.
    pub clock: Clock,
    /// Static file directories, if served.
    pub statics: statics::StaticDirs,
    /// Reverse proxies whose forwarding headers name the client ([`client`]).
    pub proxies: Arc<client::TrustedProxies>,
}

impl AppState {
    /// State with the system clock and no static files.
    pub fn new(
        records: Arc<dyn Records>,
        payloads: Arc<dyn Payloads>,
        opaque: ServerSetup,
        limits: Limits,
    ) -> Self {
        Self {
            records,
            payloads,
            keys: Arc::new(keys::ServerKeys::new(&opaque)),
            opaque: Arc::new(opaque),
            limits: Arc::new(limits),
            clock: Clock::System,
            statics: statics::StaticDirs::default(),
            proxies: Arc::new(client::TrustedProxies::default()),
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }
}

/// The Content-Security-Policy of every answer. Scripts and styles come only from files
/// of this origin (no inline script, no inline style attribute, no `eval`); WebAssembly
/// may compile (`'wasm-unsafe-eval'`); the upload Web Worker is a module of this origin.
/// `blob:` is allowed where the app shows a decrypted document (an image, or a PDF in a
/// frame) from an object URL; `data:` images for nothing else. No plugins, no `<base>`,
/// no framing by any site (a forged "same words" button under a transparent frame),
/// forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob:; \
frame-src blob:; worker-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The Permissions-Policy of every answer: the camera (photos of papers) for this origin
/// only, every other powerful feature for nobody.
pub const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(), geolocation=(), \
display-capture=(), usb=(), serial=(), hid=(), payment=(), \
clipboard-read=(), midi=(), accelerometer=(), gyroscope=(), magnetometer=()";

/// The whole HTTP application: `/healthz`, the `/v1` API, its OpenAPI document, and the
/// static web app and package when configured, every answer with the headers of
/// docs/security.md ("Headers").
pub fn app(state: AppState) -> Router {
    use axum::http::{header, HeaderName, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    let statics = state.statics.clone();
    let proxies = Arc::clone(&state.proxies);
    // API answers carry session tokens, sealed bundles and envelopes: no cache keeps them
    // (the payload download says its own `private, no-store`).
    let api = api::router(state.clone())
        .route_layer(axum::middleware::from_fn(log_request))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let router = Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .merge(api)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed });
    let always = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        // A link's path holds its id: no address leaks through Referer.
        (header::REFERRER_POLICY, "no-referrer"),
        // No other window may script this one, nor another site embed its answers.
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            PERMISSIONS_POLICY,
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let mut router = statics::attach(router, &statics);
    for (name, value) in always {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    // Outermost: the client's address and scheme are known to everything inside, and
    // HSTS goes on every answer to a TLS client.
    router.layer(axum::middleware::from_fn_with_state(
        proxies,
        client::resolve,
    ))
}

/// A request slower than this is logged as a warning (a store that stalls shows in the log).
const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_secs(10);

/// Logs each API request at `debug` (at `warn` when slower than [`SLOW_REQUEST`]) by its
/// route template, never its concrete path or query: paths hold handles and document ids,
/// query strings hold download grants.
async fn log_request(
    route: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = route.as_ref().map_or("?", |r| r.as_str());
    let status = response.status().as_u16();
    let ms = elapsed.as_millis();
    if elapsed >= SLOW_REQUEST {
        tracing::warn!(%method, route, status, ms, "slow request");
    } else {
        tracing::debug!(%method, route, status, ms, "request");
    }
    response
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

/// Runs one maintenance pass: purges what expired and what was abandoned, then the
/// payloads no document refers to. Expired envelopes are also refused and purged on
/// access; this catches the ones nobody asks for.
pub async fn sweep_once(state: &AppState) -> AppResult<store::Sweep> {
    let now = state.now();
    let stale_before = now.saturating_sub(state.limits.stale_upload_seconds);
    let mut sweep = state.records.sweep(now, stale_before).await?;
    sweep.orphan_payloads =
        store::sweep_payloads(state.records.as_ref(), state.payloads.as_ref()).await?;
    if sweep != store::Sweep::default() {
        tracing::info!(?sweep, "sweep");
    }
    Ok(sweep)
}

/// Serves `state`'s app on `listener` until `shutdown` completes, with client addresses
/// available to handlers (per-address budgets) and the read timeouts of [`conn`]. In-flight requests finish first, then
/// the sweeper is told to stop and awaited, and the records are closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let records = Arc::clone(&state.records);
    let stop = Arc::new(tokio::sync::Notify::new());
    let sweeper_state = state.clone();
    let sweeper_stop = Arc::clone(&stop);
    let sweeper = tokio::spawn(async move {
        let period =
            std::time::Duration::from_secs(sweeper_state.limits.sweep_every_seconds.max(1));
        loop {
            if let Err(e) = sweep_once(&sweeper_state).await {
                tracing::error!(error = %e, "sweep failed");
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = sweeper_stop.notified() => break,
            }
        }
    });
    let limits = Arc::clone(&state.limits);
    let result = conn::serve(listener, app(state), &limits, shutdown).await;
    // `notify_one` keeps the permit if the sweeper is mid-pass: it stops right after.
    stop.notify_one();
    if let Err(e) = sweeper.await {
        tracing::error!(error = %e, "sweeper failed");
    }
    // Whatever was written, durable before the process exits.
    if let Err(e) = records.close().await {
        tracing::error!(error = %e, "final flush failed");
    }
    result
}
