//! Registration: the OPRF step, then a worker's account (with a one-use invite) or a
//! beneficiary's (created by a worker, in person, with consent).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use coffre_core::opaque::{self, KSF_V1};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{build_account, throttle, AccountView, ClientIp};
use crate::api::{decode_b64, encode_b64, ApiJson};
use crate::auth::{hash_token, Caller};
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Id, Role};
use crate::AppState;

/// Body of `POST /v1/registrations/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationStart {
    /// OPAQUE registration request, base64.
    #[schema(content_encoding = "base64")]
    pub registration_request: String,
}

/// Answer to a registration start.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationStarted {
    /// The new account's id (OPAQUE credential id), to send back at finish.
    #[schema(value_type = Id, inline)]
    pub account_id: String,
    /// OPAQUE registration response, base64.
    #[schema(content_encoding = "base64")]
    pub registration_response: String,
    /// Argon2id parameter version to use.
    pub ksf_version: u16,
}

/// What a client sends to finish a registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// The id from the registration start.
    #[schema(value_type = Id, inline)]
    pub account_id: String,
    /// Handle (3–64 of `a-z 0-9 . _ -`; trimmed and lowercased first).
    #[schema(value_type = super::HandleText, inline)]
    pub handle: String,
    /// OPAQUE registration upload, base64.
    #[schema(content_encoding = "base64")]
    pub registration_upload: String,
    /// age X25519 recipient (`age1…`).
    pub public_key: String,
    /// Identity sealed under the export key (coffre-core key bundle), base64.
    #[schema(content_encoding = "base64")]
    pub bundle: String,
    /// Identity sealed under the recovery code, base64.
    #[serde(default)]
    #[schema(content_encoding = "base64")]
    pub recovery_bundle: Option<String>,
    /// Verifier of the recovery token, base64 (32 bytes).
    #[serde(default)]
    #[schema(content_encoding = "base64")]
    pub recovery_verifier: Option<String>,
}

/// Body of `POST /v1/workers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWorker {
    /// Invite code from an administrator.
    pub invite: crate::api::Secret,
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
    /// Referents chosen with the person at creation (dealt by the worker's browser, which
    /// holds the new identity for the moment of the registration); more can be chosen
    /// later from the person's own settings.
    #[serde(default)]
    pub referents: Option<crate::api::recovery::DealBody>,
}

/// Registration step 1: evaluates the OPRF for a fresh account id.
#[utoipa::path(post, path = "/v1/registrations/start", tag = "accounts",
    request_body = RegistrationStart,
    responses((status = 200, body = RegistrationStarted), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn registration_start(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RegistrationStart>,
) -> AppResult<Json<RegistrationStarted>> {
    throttle(&state, &ip).await?;
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
    responses((status = 201, body = AccountView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn register_worker(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<RegisterWorker>,
) -> AppResult<(StatusCode, Json<AccountView>)> {
    throttle(&state, &ip).await?;
    let now = state.now();
    let account = build_account(&body.account, Role::Worker, now)?;
    let invite_hash = hash_token(body.invite.trim()).ok_or(AppError::Forbidden)?;
    // Checked, consumed and turned into the account's organisation in one step: of two
    // registrations with one invite, one gets it.
    let account = state
        .records
        .create_account_with_invite(&account, &invite_hash, now)
        .await?;
    tracing::info!(account = %account.id, org = ?account.org, "worker registered");
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// Registration step 2 for a beneficiary, done by a worker in the person's presence.
#[utoipa::path(post, path = "/v1/beneficiaries", tag = "accounts",
    request_body = RegisterBeneficiary,
    responses((status = 201, body = AccountView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
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
    // Checked before the account exists, so that a bad deal creates nothing.
    let deal = match &body.referents {
        Some(d) => Some(crate::api::recovery::check_deal(&state, account.id, d).await?),
        None => None,
    };
    state.records.create_account(&account).await?;
    if let Some(deal) = &deal {
        state.records.put_recovery_deal(deal, now).await?;
    }
    let referents = deal.map_or(0, |d| d.shares.len());
    tracing::info!(account = %account.id, worker = %worker.id, referents, "beneficiary registered");
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}
