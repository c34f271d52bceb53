//! Accounts, OPAQUE registration and login, sessions, organisations.
//!
//! The server never sees a passphrase (RFC 9807 through [`coffre_core::opaque`]).
//! Because a login response (KE2) already lets a client test the one passphrase it
//! blinded in KE1, an *attempt* is counted when the login starts, and the counter is
//! cleared only by a successful finish: after [`Limits::max_failed_logins`] unfinished or
//! failed attempts the account locks until a worker of its organisation unlocks it.
//! Unknown handles get opaque-ke's fake, well-formed answer, and their attempts are counted
//! the same way (in memory, see [`PendingLogins`]), so that they too answer 423 after
//! [`Limits::max_failed_logins`] attempts: the sequence of answers does not tell whether a
//! handle exists.
//!
//! [`Limits::max_failed_logins`]: crate::Limits::max_failed_logins

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use coffre_core::bundle::{BundleKind, KeyBundle};
use coffre_core::opaque::{self, PasswordFile, ServerLoginState, KSF_V1};
use coffre_core::Recipient;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{decode_b64, encode_b64, ApiJson, ApiPath};
use crate::auth::{generate_token, hash_token, Caller};
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Account, Id, Role, Session};
use crate::AppState;

/// How long a login may sit between its two messages.
const LOGIN_TTL_SECONDS: u64 = 120;
/// Most logins kept between their two messages; beyond, new ones are refused (429).
const MAX_PENDING_LOGINS: usize = 10_000;
/// Domain separation of the credential id used for unknown handles, so that the fake
/// answer for a handle is the same at every attempt (as a real account's would be).
const UNKNOWN_HANDLE_LABEL: &[u8] = b"coffre/v1/server/unknown-handle";
/// Most unknown handles whose login attempts are remembered. Beyond, the half with the
/// fewest and oldest attempts is forgotten (fake locks, which have the most, go last).
const MAX_UNKNOWN_HANDLES: usize = 100_000;
/// Longest handle.
const HANDLE_MAX_CHARS: usize = 64;
/// Shortest handle.
const HANDLE_MIN_CHARS: usize = 3;

struct Pending {
    state: ServerLoginState,
    /// The account and its credential epoch when KE2 was computed from its record.
    account: Option<(Id, u64)>,
    expires_at: u64,
}

/// Logins between their two messages, per-IP attempt counters, and the attempts on
/// unknown handles. In memory only: the login states hold session keys, and a restart
/// merely makes clients start again.
///
/// Unknown handles are counted like accounts (an attempt at each login start, locked
/// from [`Limits::max_failed_logins`] on), keyed by a hash of the handle, in a map bounded
/// by `MAX_UNKNOWN_HANDLES` (100,000) entries. Its limits, which a real account does not
/// have: a restart, or an eviction after that many other unknown handles were tried,
/// forgets a fake lock.
///
/// [`Limits::max_failed_logins`]: crate::Limits::max_failed_logins
#[derive(Default)]
pub struct PendingLogins {
    logins: Mutex<HashMap<Id, Pending>>,
    per_ip: Mutex<HashMap<IpAddr, (u64, u32)>>,
    /// Hash of an unknown handle -> (attempts, last attempt).
    unknown: Mutex<HashMap<[u8; 32], (u32, u64)>>,
}

impl PendingLogins {
    fn insert(&self, id: Id, pending: Pending, now: u64) -> AppResult<()> {
        let mut logins = self
            .logins
            .lock()
            .map_err(|_| AppError::Internal("poisoned".into()))?;
        if logins.len() >= MAX_PENDING_LOGINS {
            logins.retain(|_, p| p.expires_at > now);
            if logins.len() >= MAX_PENDING_LOGINS {
                return Err(AppError::TooManyRequests);
            }
        }
        logins.insert(id, pending);
        Ok(())
    }

    fn take(&self, id: Id, now: u64) -> AppResult<Option<Pending>> {
        let mut logins = self
            .logins
            .lock()
            .map_err(|_| AppError::Internal("poisoned".into()))?;
        Ok(logins.remove(&id).filter(|p| p.expires_at > now))
    }

    /// Counts one login attempt on an unknown handle exactly as `login_start` counts one on
    /// an account; `false` (locked) once `max` attempts were counted.
    fn attempt_unknown(&self, key: [u8; 32], now: u64, max: u32) -> AppResult<bool> {
        let mut map = self
            .unknown
            .lock()
            .map_err(|_| AppError::Internal("poisoned".into()))?;
        if map.len() >= MAX_UNKNOWN_HANDLES && !map.contains_key(&key) {
            // Forget the half with the fewest, then oldest, attempts.
            let mut ranks: Vec<(u32, u64)> = map.values().copied().collect();
            let middle = ranks.len() / 2;
            let (_, cut, _) = ranks.select_nth_unstable(middle);
            let cut = *cut;
            map.retain(|_, rank| *rank > cut);
        }
        let entry = map.entry(key).or_insert((0, now));
        entry.1 = now;
        if entry.0 >= max {
            return Ok(false);
        }
        entry.0 += 1;
        Ok(true)
    }

    /// Counts one attempt from `ip` in the current minute; `false` when over `limit`.
    fn allow_ip(&self, ip: IpAddr, now: u64, limit: u32) -> AppResult<bool> {
        let minute = now / 60;
        let mut map = self
            .per_ip
            .lock()
            .map_err(|_| AppError::Internal("poisoned".into()))?;
        if map.len() > 100_000 {
            map.retain(|_, (m, _)| *m == minute);
        }
        let entry = map.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Ok(entry.1 <= limit)
    }
}

/// The client's address, when the server was started with connect info.
fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Extractor for the client IP (absent when served without connect info).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(parts)))
    }
}

fn throttle(state: &AppState, ip: &ClientIp) -> AppResult<()> {
    if let Some(ip) = ip.0 {
        let limit = state.limits.login_attempts_per_ip_per_minute;
        if !state.logins.allow_ip(ip, state.now(), limit)? {
            return Err(AppError::TooManyRequests);
        }
    }
    Ok(())
}

/// An account as the API shows it (no OPAQUE record, no bundles).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// Handle.
    pub handle: String,
    /// Worker or beneficiary.
    pub role: Role,
    /// Organisation id.
    pub org: Option<String>,
    /// age X25519 recipient (`age1…`).
    pub public_key: String,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// The worker who created this account.
    pub created_by: Option<String>,
    /// Consent time (unix seconds).
    pub consent_at: Option<u64>,
    /// Whether the account is locked.
    pub locked: bool,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            handle: a.handle.clone(),
            role: a.role,
            org: a.org.map(|o| o.to_string()),
            public_key: a.public_key.clone(),
            created_at: a.created_at,
            created_by: a.created_by.map(|w| w.to_string()),
            consent_at: a.consent_at,
            locked: a.locked,
        }
    }
}

/// Body of `POST /v1/registrations/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationStart {
    /// OPAQUE registration request, base64.
    pub registration_request: String,
}

/// Answer to a registration start.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationStarted {
    /// The new account's id (OPAQUE credential id), to send back at finish.
    pub account_id: String,
    /// OPAQUE registration response, base64.
    pub registration_response: String,
    /// Argon2id parameter version to use.
    pub ksf_version: u16,
}

/// What a client sends to finish a registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// The id from the registration start.
    pub account_id: String,
    /// Handle (3–64 of `a-z 0-9 . _ -`).
    pub handle: String,
    /// OPAQUE registration upload, base64.
    pub registration_upload: String,
    /// age X25519 recipient (`age1…`).
    pub public_key: String,
    /// Identity sealed under the export key (coffre-core key bundle), base64.
    pub bundle: String,
    /// Identity sealed under the recovery code, base64.
    #[serde(default)]
    pub recovery_bundle: Option<String>,
    /// Verifier of the recovery token, base64 (32 bytes).
    #[serde(default)]
    pub recovery_verifier: Option<String>,
}

/// Body of `POST /v1/workers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWorker {
    /// Invite code from an administrator.
    pub invite: String,
    /// The account.
    pub account: NewAccount,
}

/// Body of `POST /v1/beneficiaries`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBeneficiary {
    /// The beneficiary, present, agreed to the account's creation.
    pub consent: bool,
    /// The account.
    pub account: NewAccount,
}

/// Body of `POST /v1/login/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginStart {
    /// Handle.
    pub handle: String,
    /// OPAQUE KE1, base64.
    pub login_request: String,
}

/// Answer to a login start.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginStarted {
    /// Id of this login, to send back at finish.
    pub login_id: String,
    /// OPAQUE KE2, base64.
    pub login_response: String,
    /// Argon2id parameter version of the account.
    pub ksf_version: u16,
}

/// Body of `POST /v1/login/finish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginFinish {
    /// The id from the login start.
    pub login_id: String,
    /// OPAQUE KE3, base64.
    pub login_finalization: String,
}

/// A successful login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedIn {
    /// Bearer token (shown once; the server keeps only its hash).
    pub token: String,
    /// Session expiry (unix seconds).
    pub expires_at: u64,
    /// The account.
    pub account: AccountView,
    /// The identity sealed under the export key, base64.
    pub bundle: String,
}

/// A public key lookup.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    /// Account id (to address envelopes).
    pub id: String,
    /// Handle.
    pub handle: String,
    /// age X25519 recipient.
    pub public_key: String,
}

/// Normalised handle, or a 422 saying what is wrong.
pub fn check_handle(handle: &str) -> AppResult<String> {
    let h = handle.trim().to_ascii_lowercase();
    let ok_chars = h
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let len = h.chars().count();
    if !ok_chars || !(HANDLE_MIN_CHARS..=HANDLE_MAX_CHARS).contains(&len) {
        return Err(AppError::Unprocessable(format!(
            "handle: {HANDLE_MIN_CHARS}-{HANDLE_MAX_CHARS} characters among a-z 0-9 . _ -"
        )));
    }
    Ok(h)
}

fn parse_id(field: &str, text: &str) -> AppResult<Id> {
    text.parse()
        .map_err(|_| AppError::Unprocessable(format!("{field}: not an id")))
}

/// Validates a registration's fields and builds the account (role-specific fields unset).
fn build_account(new: &NewAccount, role: Role, now: u64) -> AppResult<Account> {
    let id = parse_id("account_id", &new.account_id)?;
    let handle = check_handle(&new.handle)?;
    new.public_key
        .parse::<Recipient>()
        .map_err(|_| AppError::Unprocessable("public_key: not an age X25519 recipient".into()))?;
    let upload = decode_b64("registration_upload", &new.registration_upload)?;
    let password_file = opaque::server_registration_finish(&upload)
        .map_err(|e| AppError::Unprocessable(format!("registration_upload: {e}")))?;
    let bundle = decode_b64("bundle", &new.bundle)?;
    check_bundle("bundle", &bundle, BundleKind::Passphrase)?;
    let recovery_bundle = new
        .recovery_bundle
        .as_deref()
        .map(|b| decode_b64("recovery_bundle", b))
        .transpose()?;
    if let Some(b) = &recovery_bundle {
        check_bundle("recovery_bundle", b, BundleKind::Recovery)?;
    }
    let recovery_verifier = new
        .recovery_verifier
        .as_deref()
        .map(|v| decode_b64("recovery_verifier", v))
        .transpose()?;
    if recovery_verifier.as_ref().is_some_and(|v| v.len() != 32) {
        return Err(AppError::Unprocessable(
            "recovery_verifier: 32 bytes expected".into(),
        ));
    }
    if recovery_bundle.is_some() != recovery_verifier.is_some() {
        return Err(AppError::Unprocessable(
            "recovery_bundle and recovery_verifier go together".into(),
        ));
    }
    Ok(Account {
        id,
        handle,
        role,
        org: None,
        public_key: new.public_key.clone(),
        password_file: password_file.as_bytes().to_vec(),
        ksf_version: KSF_V1.version(),
        bundle,
        recovery_bundle,
        recovery_verifier,
        created_by: None,
        consent_at: None,
        created_at: now,
        failed_logins: 0,
        locked: false,
        credential_epoch: 0,
    })
}

fn check_bundle(field: &str, bytes: &[u8], kind: BundleKind) -> AppResult<()> {
    let bundle = KeyBundle::from_bytes(bytes)
        .map_err(|e| AppError::Unprocessable(format!("{field}: {e}")))?;
    if bundle.kind() != kind {
        return Err(AppError::Unprocessable(format!(
            "{field}: wrong bundle kind"
        )));
    }
    Ok(())
}

/// Registration step 1: evaluates the OPRF for a fresh account id.
#[utoipa::path(post, path = "/v1/registrations/start", tag = "accounts",
    request_body = RegistrationStart,
    responses((status = 200, body = RegistrationStarted), (status = "4XX", body = Problem)))]
pub async fn registration_start(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RegistrationStart>,
) -> AppResult<Json<RegistrationStarted>> {
    throttle(&state, &ip)?;
    let request = decode_b64("registration_request", &body.registration_request)?;
    let account_id = Id::generate()?;
    let response = opaque::server_registration_start(&state.opaque, &request, &account_id.0)
        .map_err(|e| AppError::Unprocessable(format!("registration_request: {e}")))?;
    Ok(Json(RegistrationStarted {
        account_id: account_id.to_string(),
        registration_response: encode_b64(&response),
        ksf_version: KSF_V1.version(),
    }))
}

/// Registration step 2 for a worker, with an invite of their organisation (used once).
#[utoipa::path(post, path = "/v1/workers", tag = "accounts",
    request_body = RegisterWorker,
    responses((status = 201, body = AccountView), (status = "4XX", body = Problem)))]
pub async fn register_worker(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RegisterWorker>,
) -> AppResult<(StatusCode, Json<AccountView>)> {
    throttle(&state, &ip)?;
    let now = state.now();
    let mut account = build_account(&body.account, Role::Worker, now)?;
    let invite_hash = hash_token(body.invite.trim()).ok_or(AppError::Forbidden)?;
    let invite = state
        .record(move |s| s.invite(&invite_hash))?
        .ok_or(AppError::Forbidden)?;
    if invite.expires_at <= now {
        return Err(AppError::Forbidden);
    }
    account.org = Some(invite.org);
    let stored = account.clone();
    state
        .record(move |s| s.create_account(&stored, Some(&invite_hash)))
        .map_err(|e| match e {
            // Consumed by a concurrent registration.
            AppError::NotFound => AppError::Forbidden,
            e => e,
        })?;
    state.flush().await?;
    tracing::info!(account = %account.id, org = %invite.org, "worker registered");
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// Registration step 2 for a beneficiary, done by a worker in the person's presence.
#[utoipa::path(post, path = "/v1/beneficiaries", tag = "accounts",
    request_body = RegisterBeneficiary,
    responses((status = 201, body = AccountView), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn register_beneficiary(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RegisterBeneficiary>,
) -> AppResult<(StatusCode, Json<AccountView>)> {
    let worker = caller.account;
    let (Role::Worker, Some(org)) = (worker.role, worker.org) else {
        return Err(AppError::Forbidden);
    };
    if !body.consent {
        return Err(AppError::Unprocessable(
            "consent: the beneficiary must agree, in person".into(),
        ));
    }
    let now = state.now();
    let mut account = build_account(&body.account, Role::Beneficiary, now)?;
    account.org = Some(org);
    account.created_by = Some(worker.id);
    account.consent_at = Some(now);
    let stored = account.clone();
    state.record(move |s| s.create_account(&stored, None))?;
    state.flush().await?;
    tracing::info!(account = %account.id, worker = %worker.id, "beneficiary registered");
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// Login step 1 (KE1 → KE2). Counts an attempt against the account.
#[utoipa::path(post, path = "/v1/login/start", tag = "accounts",
    request_body = LoginStart,
    responses((status = 200, body = LoginStarted), (status = "4XX", body = Problem)))]
pub async fn login_start(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<LoginStart>,
) -> AppResult<Json<LoginStarted>> {
    throttle(&state, &ip)?;
    let request = decode_b64("login_request", &body.login_request)?;
    let handle = body.handle.trim().to_ascii_lowercase();
    let max = state.limits.max_failed_logins;
    let lookup = handle.clone();
    let account = state.record(move |s| {
        let Some(found) = s.account_by_handle(&lookup)? else {
            return Ok(Ok(None));
        };
        let mut locked = false;
        let account = s.update_account(found.id, &mut |a| {
            if a.locked || a.failed_logins >= max {
                a.locked = true;
                locked = true;
            } else {
                a.failed_logins += 1;
            }
            Ok(())
        })?;
        if locked {
            return Ok(Err(AppError::AccountLocked));
        }
        Ok(Ok(Some(account)))
    })??;
    // The attempt must be on disk before KE2 leaves: KE2 lets the client test a guess.
    if account.is_some() {
        state.flush().await?;
    }
    let (credential_id, record, ksf_version) = match &account {
        Some(a) => {
            let record = PasswordFile::from_bytes(&a.password_file)
                .map_err(|e| AppError::Internal(format!("stored record of {}: {e}", a.id)))?;
            (a.id.0.to_vec(), Some(record), a.ksf_version)
        }
        None => {
            let digest: [u8; 32] = Sha256::new()
                .chain_update(UNKNOWN_HANDLE_LABEL)
                .chain_update(handle.as_bytes())
                .finalize()
                .into();
            // Counted like an account, so that it locks like one.
            if !state.logins.attempt_unknown(digest, state.now(), max)? {
                return Err(AppError::AccountLocked);
            }
            (digest[..16].to_vec(), None, KSF_V1.version())
        }
    };
    let (login_state, response) =
        opaque::server_login_start(&state.opaque, record.as_ref(), &request, &credential_id)
            .map_err(|e| AppError::Unprocessable(format!("login_request: {e}")))?;
    let login_id = Id::generate()?;
    let now = state.now();
    state.logins.insert(
        login_id,
        Pending {
            state: login_state,
            account: account.map(|a| (a.id, a.credential_epoch)),
            expires_at: now + LOGIN_TTL_SECONDS,
        },
        now,
    )?;
    Ok(Json(LoginStarted {
        login_id: login_id.to_string(),
        login_response: encode_b64(&response),
        ksf_version,
    }))
}

/// Login step 2 (KE3): on success, a session token and the sealed key bundle.
#[utoipa::path(post, path = "/v1/login/finish", tag = "accounts",
    request_body = LoginFinish,
    responses((status = 200, body = LoggedIn), (status = "4XX", body = Problem)))]
pub async fn login_finish(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginFinish>,
) -> AppResult<Json<LoggedIn>> {
    let now = state.now();
    let login_id: Id = body.login_id.parse().map_err(|_| AppError::InvalidLogin)?;
    let finalization = decode_b64("login_finalization", &body.login_finalization)?;
    let pending = state
        .logins
        .take(login_id, now)?
        .ok_or(AppError::InvalidLogin)?;
    let Some((account_id, epoch)) = pending.account else {
        return Err(AppError::InvalidLogin);
    };
    if pending.state.finish(&finalization).is_err() {
        tracing::info!(account = %account_id, "failed login");
        return Err(AppError::InvalidLogin);
    }
    let account = state.record(move |s| {
        let mut outcome = Ok(());
        let account = s.update_account(account_id, &mut |a| {
            outcome = if a.credential_epoch != epoch {
                // The passphrase changed since this login started: it proved the old one.
                Err(AppError::InvalidLogin)
            } else if a.locked {
                // Locked by a worker or by parallel attempts meanwhile: no session.
                Err(AppError::AccountLocked)
            } else {
                a.failed_logins = 0;
                Ok(())
            };
            Ok(())
        })?;
        Ok(outcome.map(|()| account))
    })??;
    let (token, token_hash) = generate_token()?;
    let session = Session {
        account: account.id,
        created_at: now,
        expires_at: now + state.limits.session_seconds,
        // If the passphrase changes before this is stored, the session is born dead.
        credential_epoch: epoch,
    };
    let expires_at = session.expires_at;
    state.record(move |s| s.put_session(&token_hash, &session))?;
    state.flush().await?;
    tracing::info!(account = %account.id, "login");
    Ok(Json(LoggedIn {
        token,
        expires_at,
        bundle: encode_b64(&account.bundle),
        account: AccountView::from(&account),
    }))
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/v1/logout", tag = "accounts",
    responses((status = 204), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> AppResult<StatusCode> {
    let hash = caller.token_hash;
    state.record(move |s| s.delete_session(&hash))?;
    state.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "accounts",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> Json<AccountView> {
    Json(AccountView::from(&caller.account))
}

/// Looks up a public key by handle (signed-in callers only, to slow enumeration).
#[utoipa::path(get, path = "/v1/keys/{handle}", tag = "accounts",
    params(("handle" = String, Path, description = "handle")),
    responses((status = 200, body = PublicKeyView), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn public_key(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(handle): ApiPath<String>,
) -> AppResult<Json<PublicKeyView>> {
    let handle = handle.trim().to_ascii_lowercase();
    let account = state
        .record(move |s| s.account_by_handle(&handle))?
        .ok_or(AppError::NotFound)?;
    Ok(Json(PublicKeyView {
        id: account.id.to_string(),
        handle: account.handle,
        public_key: account.public_key,
    }))
}

/// Unlocks an account: only a worker of the same organisation, in person.
#[utoipa::path(post, path = "/v1/accounts/{id}/unlock", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 204), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    let worker = caller.account;
    let (Role::Worker, Some(org)) = (worker.role, worker.org) else {
        return Err(AppError::Forbidden);
    };
    let target = state
        .record(move |s| s.account(id))?
        .ok_or(AppError::NotFound)?;
    if target.org != Some(org) {
        return Err(AppError::Forbidden);
    }
    state.record(move |s| {
        s.update_account(id, &mut |a| {
            a.locked = false;
            a.failed_logins = 0;
            Ok(())
        })
    })?;
    state.flush().await?;
    tracing::info!(account = %id, worker = %worker.id, "account unlocked");
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/me/passphrase/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassphraseStart {
    /// OPAQUE registration request for the new passphrase, base64.
    pub registration_request: String,
}

/// Answer to a passphrase change or recovery start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReRegistrationStarted {
    /// OPAQUE registration response, base64.
    pub registration_response: String,
    /// Argon2id parameter version to use.
    pub ksf_version: u16,
    /// The recovery-code bundle (recovery only), base64.
    pub recovery_bundle: Option<String>,
}

/// Body of `POST /v1/me/passphrase`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassphraseFinish {
    /// OPAQUE registration upload for the new passphrase, base64.
    pub registration_upload: String,
    /// The same identity sealed under the new export key, base64.
    pub bundle: String,
}

/// Validates a re-registration (new OPAQUE record and re-sealed bundle).
fn re_registration(upload: &str, bundle: &str) -> AppResult<(Vec<u8>, Vec<u8>)> {
    let upload = decode_b64("registration_upload", upload)?;
    let record = opaque::server_registration_finish(&upload)
        .map_err(|e| AppError::Unprocessable(format!("registration_upload: {e}")))?;
    let bundle = decode_b64("bundle", bundle)?;
    check_bundle("bundle", &bundle, BundleKind::Passphrase)?;
    Ok((record.as_bytes().to_vec(), bundle))
}

/// Swaps the OPAQUE record and the bundle and signs out every other session, in one
/// transaction ([`crate::store::Store::replace_credentials`]): there is never a moment
/// where the new passphrase logs in but hands out a bundle it cannot open, nor one where
/// a session opened with the old passphrase (other than `keep_session`, the caller's own)
/// still works with the new one. Everything is validated before: a failure changes nothing.
async fn replace_credentials(
    state: &AppState,
    id: Id,
    record: Vec<u8>,
    bundle: Vec<u8>,
    unlock: bool,
    keep_session: Option<[u8; 32]>,
) -> AppResult<()> {
    state.record(move |s| {
        s.replace_credentials(
            id,
            &|a| {
                a.password_file.clone_from(&record);
                a.bundle.clone_from(&bundle);
                a.ksf_version = KSF_V1.version();
                if unlock {
                    a.locked = false;
                    a.failed_logins = 0;
                }
            },
            keep_session.as_ref(),
        )
    })?;
    state.flush().await
}

/// Change of passphrase, step 1 (signed in): OPRF for the caller's own account id.
#[utoipa::path(post, path = "/v1/me/passphrase/start", tag = "accounts",
    request_body = PassphraseStart,
    responses((status = 200, body = ReRegistrationStarted), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn passphrase_start(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PassphraseStart>,
) -> AppResult<Json<ReRegistrationStarted>> {
    let request = decode_b64("registration_request", &body.registration_request)?;
    let response = opaque::server_registration_start(&state.opaque, &request, &caller.account.id.0)
        .map_err(|e| AppError::Unprocessable(format!("registration_request: {e}")))?;
    Ok(Json(ReRegistrationStarted {
        registration_response: encode_b64(&response),
        ksf_version: KSF_V1.version(),
        recovery_bundle: None,
    }))
}

/// Change of passphrase, step 2: the new record and re-sealed bundle, atomically.
#[utoipa::path(post, path = "/v1/me/passphrase", tag = "accounts",
    request_body = PassphraseFinish,
    responses((status = 204), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn passphrase_finish(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PassphraseFinish>,
) -> AppResult<StatusCode> {
    let (record, bundle) = re_registration(&body.registration_upload, &body.bundle)?;
    replace_credentials(
        &state,
        caller.account.id,
        record,
        bundle,
        false,
        Some(caller.token_hash),
    )
    .await?;
    tracing::info!(account = %caller.account.id, "passphrase changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /v1/recovery/lookup`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryLookup {
    /// Handle.
    pub handle: String,
}

/// The account id the recovery token is bound to.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryAccount {
    /// Account id (a stable stand-in for unknown handles).
    pub account_id: String,
}

/// Body of `POST /v1/recovery/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryStart {
    /// Handle.
    pub handle: String,
    /// Token derived from the recovery code and the account id, base64 (32 bytes).
    pub recovery_token: String,
    /// OPAQUE registration request for the new passphrase, base64.
    pub registration_request: String,
}

/// Body of `POST /v1/recovery/finish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryFinish {
    /// Handle.
    pub handle: String,
    /// Token derived from the recovery code and the account id, base64 (32 bytes).
    pub recovery_token: String,
    /// OPAQUE registration upload for the new passphrase, base64.
    pub registration_upload: String,
    /// The identity sealed under the new export key, base64.
    pub bundle: String,
}

/// Label of the stand-in account id given for unknown handles at recovery.
const RECOVERY_STAND_IN_LABEL: &[u8] = b"coffre/v1/server/recovery-stand-in";

/// A stand-in id for an unknown handle: stable, and keyed with the server secret so that
/// nobody can tell it from a real id.
fn stand_in_id(state: &AppState, handle: &str) -> Id {
    let digest = Sha256::new()
        .chain_update(RECOVERY_STAND_IN_LABEL)
        .chain_update(state.opaque.to_bytes().as_slice())
        .chain_update(handle.as_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    Id(id)
}

/// Checks a recovery token; the same 401 for an unknown handle, an account without a
/// recovery code, or a wrong token.
async fn check_recovery(state: &AppState, handle: &str, token: &str) -> AppResult<Account> {
    let token = decode_b64("recovery_token", token)?;
    let token: [u8; 32] = token
        .try_into()
        .map_err(|_| AppError::Unprocessable("recovery_token: 32 bytes expected".into()))?;
    let handle = handle.trim().to_ascii_lowercase();
    let account = state
        .record(move |s| s.account_by_handle(&handle))?
        .ok_or(AppError::InvalidLogin)?;
    let verifier: [u8; 32] = account
        .recovery_verifier
        .as_deref()
        .and_then(|v| v.try_into().ok())
        .ok_or(AppError::InvalidLogin)?;
    let presented = coffre_core::recovery::RecoveryToken::from_bytes(token);
    if !coffre_core::recovery::verify_recovery_token(&verifier, &presented) {
        tracing::info!(account = %account.id, "failed recovery");
        return Err(AppError::InvalidLogin);
    }
    Ok(account)
}

/// Recovery, step 0: the account id the recovery token derives from.
#[utoipa::path(post, path = "/v1/recovery/lookup", tag = "accounts",
    request_body = RecoveryLookup,
    responses((status = 200, body = RecoveryAccount), (status = "4XX", body = Problem)))]
pub async fn recovery_lookup(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RecoveryLookup>,
) -> AppResult<Json<RecoveryAccount>> {
    throttle(&state, &ip)?;
    let handle = body.handle.trim().to_ascii_lowercase();
    let lookup = handle.clone();
    let account = state.record(move |s| s.account_by_handle(&lookup))?;
    let id = account.map_or_else(|| stand_in_id(&state, &handle), |a| a.id);
    Ok(Json(RecoveryAccount {
        account_id: id.to_string(),
    }))
}

/// Recovery, step 1: with a valid token, the recovery bundle and the OPRF for a new
/// passphrase.
#[utoipa::path(post, path = "/v1/recovery/start", tag = "accounts",
    request_body = RecoveryStart,
    responses((status = 200, body = ReRegistrationStarted), (status = "4XX", body = Problem)))]
pub async fn recovery_start(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RecoveryStart>,
) -> AppResult<Json<ReRegistrationStarted>> {
    throttle(&state, &ip)?;
    let account = check_recovery(&state, &body.handle, &body.recovery_token).await?;
    let request = decode_b64("registration_request", &body.registration_request)?;
    let response = opaque::server_registration_start(&state.opaque, &request, &account.id.0)
        .map_err(|e| AppError::Unprocessable(format!("registration_request: {e}")))?;
    Ok(Json(ReRegistrationStarted {
        registration_response: encode_b64(&response),
        ksf_version: KSF_V1.version(),
        recovery_bundle: account.recovery_bundle.as_deref().map(encode_b64),
    }))
}

/// Recovery, step 2: the new passphrase's record and bundle, atomically. Holding the
/// 128-bit recovery code also lifts a lock (the lock guards against passphrase guessing,
/// which the code is not exposed to).
#[utoipa::path(post, path = "/v1/recovery/finish", tag = "accounts",
    request_body = RecoveryFinish,
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn recovery_finish(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RecoveryFinish>,
) -> AppResult<StatusCode> {
    throttle(&state, &ip)?;
    let account = check_recovery(&state, &body.handle, &body.recovery_token).await?;
    let (record, bundle) = re_registration(&body.registration_upload, &body.bundle)?;
    replace_credentials(&state, account.id, record, bundle, true, None).await?;
    tracing::info!(account = %account.id, "passphrase reset with the recovery code");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(i: usize) -> [u8; 32] {
        Sha256::digest(i.to_be_bytes()).into()
    }

    #[test]
    fn unknown_handles_lock_after_max_attempts_in_bounded_memory() {
        let logins = PendingLogins::default();
        for _ in 0..3 {
            assert!(logins.attempt_unknown(key(0), 1, 3).unwrap());
        }
        assert!(!logins.attempt_unknown(key(0), 2, 3).unwrap());
        assert!(!logins.attempt_unknown(key(0), 3, 3).unwrap());
        // Fill the map: it never grows past its bound, and the fake lock, with the most
        // attempts, is what is kept longest.
        for i in 1..=MAX_UNKNOWN_HANDLES + 10 {
            assert!(logins.attempt_unknown(key(i), 10 + i as u64, 3).unwrap());
        }
        assert!(logins.unknown.lock().unwrap().len() <= MAX_UNKNOWN_HANDLES);
        assert!(!logins.attempt_unknown(key(0), u64::MAX, 3).unwrap());
    }
}
