//! Login (OPAQUE KE1 → KE2, then KE3 → session) and logout.
//!
//! Because a login response (KE2) already lets a client test the one passphrase it
//! blinded in KE1, an *attempt* is counted when the login starts, durably before KE2
//! leaves, and given back by a successful finish. It is counted on a budget
//! ([`crate::store::attempts`]): the device credential's own when the client shows one of
//! this account (a personal device that logged in before), otherwise the handle's, which
//! exists alike for handles with and without an account (unknown handles also get
//! opaque-ke's fake, well-formed KE2), on every server process and after a restart: the
//! answers do not tell whether a handle exists. A spent budget answers 429 with the time
//! to wait; nothing a stranger sends locks the person's own devices out.
//!
//! Between its two messages a login is a record ([`PendingLogin`]) that any server
//! process can finish. Its OPAQUE state (which would let its holder finish the login) is
//! sealed under a key derived from the server key file ([`crate::keys::ServerKeys`]).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use coffre_core::opaque::{self, PasswordFile, ServerLoginState, KSF_V1};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{throttle, AccountView, ClientIp};
use crate::api::{decode_b64, encode_b64, ApiJson};
use crate::auth::{generate_token, hash_token, Caller};
use crate::error::{AppError, AppResult, Problem};
use crate::store::attempts::handle_key;
use crate::store::{Attempts, Budget, Device, Digest, Id, PendingLogin, Session, StoreError};
use crate::AppState;

/// How long a login may sit between its two messages.
pub const LOGIN_TTL_SECONDS: u64 = 120;

/// Body of `POST /v1/login/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginStart {
    /// Handle.
    pub handle: String,
    /// OPAQUE KE1, base64.
    #[schema(content_encoding = "base64")]
    pub login_request: String,
    /// The device credential this device received at an earlier login (`device_token`),
    /// if it has one for this handle: the attempt is then counted on the device's own
    /// budget.
    #[serde(default)]
    pub device: Option<crate::api::Secret>,
    /// Asks for a device credential if this login succeeds (a personal device; never on
    /// a shared computer).
    #[serde(default)]
    pub remember_device: bool,
}

/// Answer to a login start.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginStarted {
    /// Id of this login, to send back at finish.
    #[schema(value_type = Id, inline)]
    pub login_id: String,
    /// OPAQUE KE2, base64.
    #[schema(content_encoding = "base64")]
    pub login_response: String,
    /// Argon2id parameter version of the account.
    pub ksf_version: u16,
    /// Tries left in the budget's window if this one is wrong, when only a few are left
    /// (an unknown handle counts alike, so this tells nothing about existence).
    pub attempts_left: Option<u32>,
}

/// `attempts_left` is given from this many tries left down.
const ATTEMPTS_LEFT_SHOWN: u32 = 3;

/// Body of `POST /v1/login/finish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginFinish {
    /// The id from the login start.
    #[schema(value_type = Id, inline)]
    pub login_id: String,
    /// OPAQUE KE3, base64.
    #[schema(content_encoding = "base64")]
    pub login_finalization: String,
    /// Logging in on a shared computer: the session is marked so in the sessions list
    /// (the web app then keeps nothing on the device and locks when unused).
    #[serde(default)]
    pub shared_computer: bool,
}

/// A successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedIn {
    /// Bearer token (shown once; the server keeps only its hash).
    pub token: crate::api::Secret,
    /// Session expiry (unix seconds).
    pub expires_at: u64,
    /// The account.
    pub account: AccountView,
    /// The identity sealed under the export key, base64.
    #[schema(content_encoding = "base64")]
    pub bundle: String,
    /// A new device credential, when one was asked for (shown once; the server keeps
    /// only its hash). The device sends it as `device` at its next logins.
    pub device_token: Option<crate::api::Secret>,
}

/// Login step 1 (KE1 → KE2). Counts an attempt against the account.
#[utoipa::path(post, path = "/v1/login/start", tag = "accounts",
    request_body = LoginStart,
    responses((status = 200, body = LoginStarted), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn login_start(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<LoginStart>,
) -> AppResult<Json<LoginStarted>> {
    throttle(&state, &ip).await?;
    let request = decode_b64("login_request", &body.login_request)?;
    // A device credential that is not one at all is a client error; one that is not
    // (or no longer) this account's is simply not used.
    let device = match body.device.as_deref() {
        Some(text) => Some(
            hash_token(text)
                .ok_or_else(|| AppError::Unprocessable("device: not a device credential".into()))?,
        ),
        None => None,
    };
    let handle = body.handle.trim().to_ascii_lowercase();
    let now = state.now();
    let account = state.records.account_by_handle(&handle).await?;
    if account.as_ref().is_some_and(|a| a.disabled_at.is_some()) {
        // A worker who left: said plainly (worker handles are known to their people).
        return Err(AppError::AccountDisabled);
    }
    let key = handle_key(&handle);
    let (credential_id, record, ksf_version) = match &account {
        Some(a) => {
            let record = PasswordFile::from_bytes(&a.password_file)
                .map_err(|e| AppError::Internal(format!("stored record of {}: {e}", a.id)))?;
            (a.id.0.to_vec(), Some(record), a.ksf_version)
        }
        // The same fake answer at every attempt, as a real account's would be.
        None => (key[..16].to_vec(), None, KSF_V1.version()),
    };
    // KE1 is parsed (and KE2 computed) before anything is counted: a malformed request
    // costs nobody an attempt.
    let (login_state, response) =
        opaque::server_login_start(&state.opaque, record.as_ref(), &request, &credential_id)
            .map_err(|e| AppError::Unprocessable(format!("login_request: {e}")))?;
    // Counted, durably, before KE2 leaves (KE2 lets the client test one guess).
    let mut counted = None;
    if let (Some(a), Some(device)) = (&account, &device) {
        let policy = &state.limits.device_attempts;
        match state
            .records
            .count_device_attempt(device, a.id, now, policy)
            .await
        {
            Ok(left) => counted = Some((Budget::Device(Digest(*device)), left)),
            // Not a credential of this account (forgotten, or another's): a stranger.
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(refused(e, &ip, account.as_ref().map(|a| a.id), true)),
        }
    }
    let (budget, left) = match counted {
        Some(counted) => counted,
        None => {
            let policy = &state.limits.login_attempts;
            let left = state
                .records
                .count_login_attempt(&key, now, policy)
                .await
                .map_err(|e| refused(e, &ip, account.as_ref().map(|a| a.id), false))?;
            (Budget::Handle(Digest(key)), left)
        }
    };
    let login_id = Id::generate()?;
    let sealed_state = state
        .keys
        .seal_pending_login(&login_id.0, &login_state.to_bytes())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let pending = PendingLogin {
        sealed_state,
        account: account.map(|a| (a.id, a.credential_epoch)),
        budget,
        started_at: now,
        remember_device: body.remember_device && matches!(budget, Budget::Handle(_)),
        expires_at: now + LOGIN_TTL_SECONDS,
    };
    state
        .records
        .put_pending_login(login_id, &pending, now)
        .await?;
    Ok(Json(LoginStarted {
        login_id: login_id.to_string(),
        login_response: encode_b64(&response),
        ksf_version,
        attempts_left: (left <= ATTEMPTS_LEFT_SHOWN).then_some(left),
    }))
}

/// Login step 2 (KE3): on success, a session token and the sealed key bundle.
#[utoipa::path(post, path = "/v1/login/finish", tag = "accounts",
    request_body = LoginFinish,
    responses((status = 200, body = LoggedIn), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn login_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginFinish>,
) -> AppResult<Json<LoggedIn>> {
    let now = state.now();
    let login_id: Id = body.login_id.parse().map_err(|_| AppError::InvalidLogin)?;
    let finalization = decode_b64("login_finalization", &body.login_finalization)?;
    // Taken out once: a second finish of the same login finds nothing.
    let pending = state
        .records
        .take_pending_login(login_id, now)
        .await?
        .ok_or(AppError::InvalidLogin)?;
    let Some((account_id, epoch)) = pending.account else {
        return Err(AppError::InvalidLogin);
    };
    let login_state = state
        .keys
        .open_pending_login(&login_id.0, &pending.sealed_state)
        .ok()
        .and_then(|bytes| ServerLoginState::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            AppError::Internal(format!("pending login of {account_id} does not open"))
        })?;
    if login_state.finish(&finalization).is_err() {
        tracing::info!(account = %account_id, "failed login");
        return Err(AppError::InvalidLogin);
    }
    // Refused if the passphrase changed since the start.
    let account = state.records.login_succeeded(account_id, epoch).await?;
    state
        .records
        .attempt_succeeded(&pending.budget, pending.started_at, now)
        .await?;
    let device_token = if pending.remember_device {
        let (token, hash) = generate_token()?;
        let device = Device {
            account: account.id,
            created_at: now,
            last_used_at: now,
            attempts: Attempts::default(),
        };
        state.records.put_device(&hash, &device).await?;
        Some(token)
    } else {
        None
    };
    let (token, token_hash) = generate_token()?;
    let session = Session {
        account: account.id,
        created_at: now,
        expires_at: now + state.limits.session_seconds,
        // If the passphrase changes before this is stored, the session is born dead.
        credential_epoch: epoch,
        last_used_at: now,
        // Only the coarse label is kept, never the User-Agent.
        device: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(crate::api::sessions::device_label)
            .unwrap_or_default(),
        shared: body.shared_computer,
    };
    state.records.put_session(&token_hash, &session).await?;
    tracing::info!(account = %account.id, "login");
    Ok(Json(LoggedIn {
        token: token.into(),
        expires_at: session.expires_at,
        bundle: encode_b64(&account.bundle),
        account: AccountView::from(&account),
        device_token: device_token.map(Into::into),
    }))
}

/// A refused count, logged with the client's address: a spent budget is worth an
/// operator's look (a stranger trying a handle, or a person stuck).
fn refused(e: StoreError, ip: &ClientIp, account: Option<Id>, device: bool) -> AppError {
    if let StoreError::Throttled { retry_after } = e {
        let client = ip.0.map(|a| a.to_string());
        let account = account.map(|a| a.to_string());
        tracing::warn!(
            client = client.as_deref().unwrap_or("-"),
            account = account.as_deref().unwrap_or("none"),
            device,
            retry_after,
            "login throttled"
        );
    }
    e.into()
}

/// Ends the caller's session. The bearer token travels in the `Authorization` header
/// as on every call, also when a closing tab sends this with `fetch(…, {keepalive:
/// true})`: no token in a URL, no cookie, so no other site can make a browser send it.
#[utoipa::path(post, path = "/v1/logout", tag = "accounts",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> AppResult<StatusCode> {
    state.records.delete_session(&caller.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}
