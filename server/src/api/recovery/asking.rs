//! The asking device's side: no session, only the ephemeral key it made and, at the
//! end, the token derived from the rebuilt recovery secret.
//!
//! A request for a handle without an account (or an account without referents) is made
//! and answered exactly like any other and simply never moves, so the answers do not tell
//! whether a handle exists.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coffre_core::opaque::{self, KSF_V1};
use coffre_core::Recipient;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::{b64, challenge_hash, check_deal, handle_key, org_delay, DealBody, RequestView};
use crate::api::accounts::{check_recovery, re_registration, stand_in_id, throttle, ClientIp};
use crate::api::recovery::person::check_kit;
use crate::api::{decode_b64, encode_b64, ApiJson, ApiPath};
use crate::error::{AppError, AppResult, Problem};
use crate::store::recovery::{effective_delay, REQUEST_OPEN_SECONDS};
use crate::store::{
    CredentialChange, Id, RecoveryFinish, RecoveryRequest, RequestChange, RequestState,
};
use crate::AppState;

/// Requests one handle may receive per day (on top of one open at a time).
const REQUESTS_PER_HANDLE_PER_DAY: u32 = 5;

/// Body of `POST /v1/recovery/requests`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The handle of the vault to recover.
    pub handle: String,
    /// The asking device's fresh age X25519 recipient (`age1…`).
    pub ephemeral_key: String,
}

/// A request just made.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestMade {
    /// Request id.
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// The account id the shares and the new credentials are bound to (a stable
    /// stand-in for a handle without an account).
    #[schema(value_type = Id, inline)]
    pub account_id: String,
    /// 32 random bytes sealed to the ephemeral key (an age file), base64: showing them
    /// proves the device holds the ephemeral secret.
    #[schema(content_encoding = "base64")]
    pub challenge: String,
    /// The request as it stands.
    pub request: RequestView,
}

/// Asks for recovery of a vault. The person and every referent are told.
#[utoipa::path(post, path = "/v1/recovery/requests", tag = "recovery",
    request_body = NewRequest,
    responses((status = 201, body = RequestMade), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn ask_recovery(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<NewRequest>,
) -> AppResult<(StatusCode, Json<RequestMade>)> {
    throttle(&state, &ip).await?;
    let now = state.now();
    let handle = body.handle.trim().to_ascii_lowercase();
    let recipient: Recipient = body.ephemeral_key.parse().map_err(|_| {
        AppError::Unprocessable("ephemeral_key: not an age X25519 recipient".into())
    })?;
    let key = handle_key(&handle);
    let account = state.records.account_by_handle(&handle).await?;
    let (account_id, deal, org_delay) = match &account {
        Some(a) => {
            let deal = state.records.recovery_deal(a.id).await?;
            (a.id, deal, org_delay(&state, a).await?)
        }
        None => (stand_in_id(&state, &handle)?, None, None),
    };
    let mut challenge = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(challenge.as_mut_slice())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let sealed = coffre_core::encrypt(challenge.as_slice(), &[recipient])
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let threshold = deal.as_ref().map_or(0, |d| d.threshold);
    let request = RecoveryRequest {
        id: Id::generate()?,
        handle_key: key,
        account: account.as_ref().map(|a| a.id),
        deal: deal.as_ref().map(|d| d.id),
        threshold,
        referents: deal
            .as_ref()
            .map(|d| d.shares.iter().map(|s| s.referent).collect())
            .unwrap_or_default(),
        delay_seconds: effective_delay(org_delay, threshold),
        ephemeral_key: body.ephemeral_key.trim().to_owned(),
        challenge_hash: challenge_hash(challenge.as_slice()),
        created_at: now,
        expires_at: now + REQUEST_OPEN_SECONDS,
        state: RequestState::Open,
        closed_at: None,
        approvals: Vec::new(),
        refused: Vec::new(),
        releasable_at: None,
    };
    state.records.create_recovery_request(&request, now).await?;
    // Only requests made count against the handle's day, so that refused attempts (one
    // is open already) do not use up the person's own chances.
    let per_day = state
        .records
        .count_rate(&format!("recovery-ask:{}", hex::encode(key.0)), now, 86_400)
        .await?;
    if per_day > REQUESTS_PER_HANDLE_PER_DAY {
        state
            .records
            .change_recovery_request(request.id, &RequestChange::Cancel, now)
            .await?;
        return Err(AppError::TooManyRequests);
    }
    tracing::info!(request = %request.id, account = ?request.account.map(|a| a.to_string()), ip = ?ip.0, "recovery requested");
    Ok((
        StatusCode::CREATED,
        Json(RequestMade {
            id: request.id.to_string(),
            account_id: account_id.to_string(),
            challenge: encode_b64(&sealed),
            request: RequestView::of(&request, now),
        }),
    ))
}

/// Where a request stands (for the asking device, which knows its id).
#[utoipa::path(get, path = "/v1/recovery/requests/{id}", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    responses((status = 200, body = RequestView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn request_status(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<RequestView>> {
    throttle(&state, &ip).await?;
    let request = state
        .records
        .recovery_request(id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(RequestView::of(&request, state.now())))
}

/// The request, if `proof` is its challenge (403 otherwise, as for a request that does
/// not exist: only its device may act on it).
async fn proven(state: &AppState, id: Id, proof: &str) -> AppResult<RecoveryRequest> {
    let proof = decode_b64("proof", proof)?;
    let request = state
        .records
        .recovery_request(id)
        .await?
        .ok_or(AppError::Forbidden)?;
    let shown = challenge_hash(&proof);
    if !bool::from(shown.0.ct_eq(&request.challenge_hash.0)) {
        tracing::info!(request = %id, "recovery proof refused");
        return Err(AppError::Forbidden);
    }
    Ok(request)
}

/// The request, its account and the deal it was made under, if `proof` is its challenge
/// and its shares may be released at `now` (approved by enough referents, delay over,
/// the deal not replaced since).
async fn releasable(
    state: &AppState,
    id: Id,
    proof: &str,
    now: u64,
) -> AppResult<(RecoveryRequest, Id, crate::store::RecoveryDeal)> {
    let request = proven(state, id, proof).await?;
    request.check_releasable(now)?;
    let account = request.account.ok_or(AppError::RecoveryClosed)?;
    let deal = state
        .records
        .recovery_deal(account)
        .await?
        .filter(|d| Some(d.id) == request.deal)
        .ok_or(AppError::RecoveryClosed)?;
    Ok((request, account, deal))
}

/// Body of the asking device's cancel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// The opened challenge, base64 (32 bytes).
    pub proof: crate::api::Secret,
}

/// The asking device gives up its request.
#[utoipa::path(post, path = "/v1/recovery/requests/{id}/cancel", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    request_body = Proof,
    responses((status = 200, body = RequestView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_request(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<Proof>,
) -> AppResult<Json<RequestView>> {
    throttle(&state, &ip).await?;
    proven(&state, id, &body.proof).await?;
    let now = state.now();
    let changed = state
        .records
        .change_recovery_request(id, &RequestChange::Cancel, now)
        .await?;
    tracing::info!(request = %id, "recovery cancelled by the asking device");
    Ok(Json(RequestView::of(&changed, now)))
}

/// Body of `POST /v1/recovery/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelWithCode {
    /// The handle.
    pub handle: String,
    /// Token derived from the recovery code and the account id, base64 (32 bytes).
    pub recovery_token: crate::api::Secret,
}

/// The person cancels an open request with their recovery code (without a session).
#[utoipa::path(post, path = "/v1/recovery/cancel", tag = "recovery",
    request_body = CancelWithCode,
    responses((status = 200, body = RequestView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_with_code(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<CancelWithCode>,
) -> AppResult<Json<RequestView>> {
    throttle(&state, &ip).await?;
    let account = check_recovery(&state, &body.handle, &body.recovery_token).await?;
    let now = state.now();
    let open = state
        .records
        .recovery_requests_of(account.id)
        .await?
        .into_iter()
        .find(|r| r.is_open(now))
        .ok_or(AppError::RecoveryClosed)?;
    let changed = state
        .records
        .change_recovery_request(open.id, &RequestChange::Cancel, now)
        .await?;
    tracing::info!(account = %account.id, request = %open.id, "recovery cancelled with the recovery code");
    Ok(Json(RequestView::of(&changed, now)))
}

/// Body of `POST /v1/recovery/requests/{id}/release`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// The opened challenge, base64.
    pub proof: crate::api::Secret,
    /// OPAQUE registration request for the new PIN or passphrase, base64.
    #[schema(content_encoding = "base64")]
    pub registration_request: String,
}

/// One released share.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleasedShare {
    /// The referent who approved.
    #[schema(value_type = Id, inline)]
    pub referent: String,
    /// Their handle (to name a wrong share).
    pub referent_handle: Option<String>,
    /// The share's index.
    pub index: u8,
    /// The share, as an age file to the ephemeral key, base64.
    #[schema(content_encoding = "base64")]
    pub sealed_share: String,
    /// The commitment the person's browser made for this share when dealing, base64.
    #[schema(content_encoding = "base64")]
    pub commitment: String,
}

/// A referent to deal again to, after the recovery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DealTarget {
    /// Account id.
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// Handle.
    pub handle: String,
    /// age X25519 recipient.
    pub public_key: String,
}

/// What the asking device needs to finish.
#[derive(Debug, Serialize, ToSchema)]
pub struct Released {
    /// The account id everything is bound to.
    #[schema(value_type = Id, inline)]
    pub account_id: String,
    /// Shares needed.
    pub threshold: u8,
    /// The approved shares.
    pub shares: Vec<ReleasedShare>,
    /// The identity sealed under the recovery secret, base64.
    #[schema(content_encoding = "base64")]
    pub bundle: String,
    /// The referents still there, to deal new shares to.
    pub referents: Vec<DealTarget>,
    /// OPAQUE registration response for the new secret, base64.
    #[schema(content_encoding = "base64")]
    pub registration_response: String,
    /// Argon2id parameter version.
    pub ksf_version: u16,
}

/// Releases the approved shares to the device that holds the ephemeral key, once enough
/// referents approved and the delay is over.
#[utoipa::path(post, path = "/v1/recovery/requests/{id}/release", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    request_body = ReleaseBody,
    responses((status = 200, body = Released), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn release(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> AppResult<Json<Released>> {
    throttle(&state, &ip).await?;
    // The body is checked whole before anything is looked up.
    let registration = decode_b64("registration_request", &body.registration_request)?;
    let now = state.now();
    let (request, account, deal) = releasable(&state, id, &body.proof, now).await?;
    // Only referents who can still act count: the approval of a worker disabled since
    // (who left) is not released, and nobody is dealt to them again.
    let mut shares = Vec::with_capacity(request.approvals.len());
    for approval in &request.approvals {
        let Some(dealt) = deal.shares.iter().find(|s| s.referent == approval.referent) else {
            continue;
        };
        let Some(referent) = active_referent(&state, approval.referent).await? else {
            continue;
        };
        shares.push(ReleasedShare {
            referent: approval.referent.to_string(),
            referent_handle: Some(referent.handle),
            index: dealt.index,
            sealed_share: b64(&approval.sealed_share),
            commitment: b64(&dealt.commitment),
        });
    }
    if shares.len() < usize::from(deal.threshold) {
        return Err(AppError::RecoveryWaiting {
            releasable_at: None,
        });
    }
    let mut referents = Vec::with_capacity(deal.shares.len());
    for share in &deal.shares {
        if let Some(a) = active_referent(&state, share.referent).await? {
            referents.push(DealTarget {
                id: a.id.to_string(),
                handle: a.handle,
                public_key: a.public_key,
            });
        }
    }
    let response = opaque::server_registration_start(&state.opaque, &registration, &account.0)
        .map_err(|e| AppError::Unprocessable(format!("registration_request: {e}")))?;
    tracing::info!(request = %id, %account, "recovery shares released");
    Ok(Json(Released {
        account_id: account.to_string(),
        threshold: deal.threshold,
        shares,
        bundle: b64(&deal.bundle),
        referents,
        registration_response: encode_b64(&response),
        ksf_version: KSF_V1.version(),
    }))
}

/// A referent's account if it can still act: a worker's, not disabled.
async fn active_referent(state: &AppState, id: Id) -> AppResult<Option<crate::store::Account>> {
    Ok(state
        .records
        .account(id)
        .await?
        .filter(|a| a.role == crate::store::Role::Worker && a.disabled_at.is_none()))
}

/// Body of `POST /v1/recovery/requests/{id}/finish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    /// The opened challenge, base64.
    pub proof: crate::api::Secret,
    /// Token derived from the rebuilt recovery secret, base64 (32 bytes).
    #[schema(content_encoding = "base64")]
    pub secret_token: String,
    /// OPAQUE registration upload for the new secret, base64.
    #[schema(content_encoding = "base64")]
    pub registration_upload: String,
    /// The identity sealed under the new export key, base64.
    #[schema(content_encoding = "base64")]
    pub bundle: String,
    /// The identity sealed under a new recovery code (the new kit), base64.
    #[schema(content_encoding = "base64")]
    pub recovery_bundle: String,
    /// The new code's verifier, base64.
    #[schema(content_encoding = "base64")]
    pub recovery_verifier: String,
    /// New shares under a new recovery secret; absent to keep no referents.
    pub deal: Option<DealBody>,
}

/// Ends the recovery: new credentials, new kit, new deal; every old session ends.
#[utoipa::path(post, path = "/v1/recovery/requests/{id}/finish", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    request_body = FinishBody,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn finish(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<FinishBody>,
) -> AppResult<StatusCode> {
    throttle(&state, &ip).await?;
    // The body is checked whole before anything is looked up.
    let token = decode_b64("secret_token", &body.secret_token)?;
    let token: [u8; 32] = token
        .try_into()
        .map_err(|_| AppError::Unprocessable("secret_token: 32 bytes expected".into()))?;
    let (record, bundle) = re_registration(&body.registration_upload, &body.bundle)?;
    let (recovery_bundle, recovery_verifier) =
        check_kit(&body.recovery_bundle, &body.recovery_verifier)?;
    let now = state.now();
    let (_, account, deal) = releasable(&state, id, &body.proof, now).await?;
    let verifier: [u8; 32] = deal
        .verifier
        .as_slice()
        .try_into()
        .map_err(|_| AppError::Internal("stored verifier is not 32 bytes".into()))?;
    if !coffre_core::recovery::verify_recovery_token(
        &verifier,
        &coffre_core::recovery::RecoveryToken::from_bytes(token),
    ) {
        tracing::info!(request = %id, "recovery finish with a wrong secret token");
        return Err(AppError::InvalidLogin);
    }
    let new_deal = match &body.deal {
        Some(d) => Some(check_deal(&state, account, d).await?),
        None => None,
    };
    let finish = RecoveryFinish {
        credentials: CredentialChange {
            password_file: record,
            bundle,
            ksf_version: KSF_V1.version(),
        },
        recovery_bundle,
        recovery_verifier,
        deal: new_deal,
    };
    state.records.finish_recovery(id, &finish, now).await?;
    tracing::info!(request = %id, %account, "vault recovered through referents");
    // The person may have lost a device: its credential no longer gives it a budget of
    // its own, and strangers' tries before the recovery no longer count.
    state.records.delete_devices_of(account).await?;
    if let Some(a) = state.records.account(account).await? {
        state
            .records
            .reset_login_budget(&crate::store::attempts::handle_key(&a.handle))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
