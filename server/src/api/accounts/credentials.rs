//! Credentials: changing the passphrase (signed in), and recovery with the printed code
//! (signed out). Both re-register with OPAQUE and swap record and bundle in one step.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coffre_core::bundle::BundleKind;
use coffre_core::opaque::{self, KSF_V1};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_bundle, throttle, ClientIp};
use crate::api::{decode_b64, encode_b64, ApiJson};
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::attempts::handle_key;
use crate::store::{Account, CredentialChange, Id};
use crate::AppState;

/// Body of `POST /v1/me/passphrase/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassphraseStart {
    /// OPAQUE registration request for the new passphrase, base64.
    #[schema(content_encoding = "base64")]
    pub registration_request: String,
}

/// Answer to a passphrase change or recovery start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReRegistrationStarted {
    /// OPAQUE registration response, base64.
    #[schema(content_encoding = "base64")]
    pub registration_response: String,
    /// Argon2id parameter version to use.
    pub ksf_version: u16,
    /// The recovery-code bundle (recovery only), base64.
    #[schema(content_encoding = "base64")]
    pub recovery_bundle: Option<String>,
}

/// Body of `POST /v1/me/passphrase`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassphraseFinish {
    /// OPAQUE registration upload for the new passphrase, base64.
    #[schema(content_encoding = "base64")]
    pub registration_upload: String,
    /// The same identity sealed under the new export key, base64.
    #[schema(content_encoding = "base64")]
    pub bundle: String,
}

/// Validates a re-registration (new OPAQUE record and re-sealed bundle).
pub(crate) fn re_registration(upload: &str, bundle: &str) -> AppResult<(Vec<u8>, Vec<u8>)> {
    let upload = decode_b64("registration_upload", upload)?;
    let record = opaque::server_registration_finish(&upload)
        .map_err(|e| AppError::Unprocessable(format!("registration_upload: {e}")))?;
    let bundle = decode_b64("bundle", bundle)?;
    check_bundle("bundle", &bundle, BundleKind::Passphrase)?;
    Ok((record.as_bytes().to_vec(), bundle))
}

/// Swaps the OPAQUE record and the bundle and signs out every other session, in one
/// step ([`crate::store::Records::replace_credentials`]): there is never a moment
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
    let change = CredentialChange {
        password_file: record,
        bundle,
        ksf_version: KSF_V1.version(),
    };
    let account = state
        .records
        .replace_credentials(id, &change, keep_session.as_ref())
        .await?;
    if unlock {
        // The recovery code proved the person: strangers' tries no longer hold them.
        state
            .records
            .reset_login_budget(&handle_key(&account.handle))
            .await?;
        tracing::info!(account = %id, "login budget reset with the recovery code");
    }
    Ok(())
}

/// Change of passphrase, step 1 (signed in): OPRF for the caller's own account id.
#[utoipa::path(post, path = "/v1/me/passphrase/start", tag = "accounts",
    request_body = PassphraseStart,
    responses((status = 200, body = ReRegistrationStarted), (status = "4XX", body = Problem, content_type = "application/problem+json")),
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
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
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
    #[schema(value_type = Id, inline)]
    pub account_id: String,
}

/// Body of `POST /v1/recovery/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryStart {
    /// Handle.
    pub handle: String,
    /// Token derived from the recovery code and the account id, base64 (32 bytes).
    pub recovery_token: crate::api::Secret,
    /// OPAQUE registration request for the new passphrase, base64.
    #[schema(content_encoding = "base64")]
    pub registration_request: String,
}

/// Body of `POST /v1/recovery/finish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryFinish {
    /// Handle.
    pub handle: String,
    /// Token derived from the recovery code and the account id, base64 (32 bytes).
    pub recovery_token: crate::api::Secret,
    /// OPAQUE registration upload for the new passphrase, base64.
    #[schema(content_encoding = "base64")]
    pub registration_upload: String,
    /// The identity sealed under the new export key, base64.
    #[schema(content_encoding = "base64")]
    pub bundle: String,
}

/// Label of the stand-in account id given for unknown handles at recovery.
const RECOVERY_STAND_IN_LABEL: &[u8] = b"coffre/v1/server/recovery-stand-in";

/// A stand-in id for an unknown handle: stable, and keyed with the server's stand-in key
/// so that nobody can tell it from a real id.
pub(crate) fn stand_in_id(state: &AppState, handle: &str) -> AppResult<Id> {
    state
        .keys
        .stand_in(RECOVERY_STAND_IN_LABEL, handle.as_bytes())
        .map(Id)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Checks a recovery token; the same 401 for an unknown handle, an account without a
/// recovery code, or a wrong token.
pub(crate) async fn check_recovery(
    state: &AppState,
    handle: &str,
    token: &str,
) -> AppResult<Account> {
    let token = decode_b64("recovery_token", token)?;
    let token: [u8; 32] = token
        .try_into()
        .map_err(|_| AppError::Unprocessable("recovery_token: 32 bytes expected".into()))?;
    let handle = handle.trim().to_ascii_lowercase();
    let account = state
        .records
        .account_by_handle(&handle)
        .await?
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
    responses((status = 200, body = RecoveryAccount), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn recovery_lookup(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RecoveryLookup>,
) -> AppResult<Json<RecoveryAccount>> {
    throttle(&state, &ip).await?;
    let handle = body.handle.trim().to_ascii_lowercase();
    let account = state.records.account_by_handle(&handle).await?;
    let id = match account {
        Some(a) => a.id,
        None => stand_in_id(&state, &handle)?,
    };
    Ok(Json(RecoveryAccount {
        account_id: id.to_string(),
    }))
}

/// Recovery, step 1: with a valid token, the recovery bundle and the OPRF for a new
/// passphrase.
#[utoipa::path(post, path = "/v1/recovery/start", tag = "accounts",
    request_body = RecoveryStart,
    responses((status = 200, body = ReRegistrationStarted), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn recovery_start(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RecoveryStart>,
) -> AppResult<Json<ReRegistrationStarted>> {
    throttle(&state, &ip).await?;
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
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn recovery_finish(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RecoveryFinish>,
) -> AppResult<StatusCode> {
    throttle(&state, &ip).await?;
    let account = check_recovery(&state, &body.handle, &body.recovery_token).await?;
    let (record, bundle) = re_registration(&body.registration_upload, &body.bundle)?;
    replace_credentials(&state, account.id, record, bundle, true, None).await?;
    tracing::info!(account = %account.id, "passphrase reset with the recovery code");
    Ok(StatusCode::NO_CONTENT)
}
