//! The signed-in person's side: referents, requests about their vault, a new kit.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_deal, DealBody, RequestView};
use crate::api::accounts::check_bundle;
use crate::api::{decode_b64, ApiJson, ApiPath};
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::recovery::effective_delay;
use crate::store::{Id, RequestChange, Role};
use crate::AppState;
use coffre_core::bundle::BundleKind;

/// One referent as the person sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferentView {
    /// Account id.
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// Handle, if the account still exists.
    pub handle: Option<String>,
    /// Their age X25519 recipient (to deal again), if the account still exists.
    pub public_key: Option<String>,
    /// Their organisation's name.
    pub org_name: Option<String>,
    /// Whether the referent can still approve (the account exists and is a worker's).
    pub active: bool,
}

/// The person's referents.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferentsView {
    /// Shares needed (k); 0 without referents.
    pub threshold: u8,
    /// The referents (n).
    pub referents: Vec<ReferentView>,
    /// Referents who can still approve.
    pub active: usize,
    /// When the deal was made (unix seconds).
    pub created_at: Option<u64>,
    /// The delay a recovery would wait after the last approval, for this threshold
    /// (seconds).
    pub delay_seconds: u64,
}

/// The caller's referents and threshold.
#[utoipa::path(get, path = "/v1/me/referents", tag = "recovery",
    responses((status = 200, body = ReferentsView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn my_referents(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<ReferentsView>> {
    referents_view(&state, &caller.account).await.map(Json)
}

pub(crate) async fn referents_view(
    state: &AppState,
    account: &crate::store::Account,
) -> AppResult<ReferentsView> {
    let deal = state.records.recovery_deal(account.id).await?;
    let org_delay = super::org_delay(state, account).await?;
    let Some(deal) = deal else {
        return Ok(ReferentsView {
            threshold: 0,
            referents: Vec::new(),
            active: 0,
            created_at: None,
            delay_seconds: effective_delay(org_delay, 2),
        });
    };
    let mut referents = Vec::with_capacity(deal.shares.len());
    for share in &deal.shares {
        let found = state.records.account(share.referent).await?;
        let org_name = match found.as_ref().and_then(|a| a.org) {
            Some(org) => state.records.org(org).await?.map(|o| o.name),
            None => None,
        };
        referents.push(ReferentView {
            id: share.referent.to_string(),
            active: found
                .as_ref()
                .is_some_and(|a| a.role == Role::Worker && a.disabled_at.is_none()),
            handle: found.as_ref().map(|a| a.handle.clone()),
            public_key: found.map(|a| a.public_key),
            org_name,
        });
    }
    Ok(ReferentsView {
        threshold: deal.threshold,
        active: referents.iter().filter(|r| r.active).count(),
        referents,
        created_at: Some(deal.created_at),
        delay_seconds: effective_delay(org_delay, deal.threshold),
    })
}

/// Chooses referents: the browser made a fresh recovery secret, sealed the identity under
/// it and dealt one share to each referent. Replaces any earlier deal (its shares become
/// useless with its bundle) and closes an open request made under it.
#[utoipa::path(put, path = "/v1/me/referents", tag = "recovery",
    request_body = DealBody,
    responses((status = 200, body = ReferentsView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn set_referents(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<DealBody>,
) -> AppResult<Json<ReferentsView>> {
    let deal = check_deal(&state, caller.account.id, &body).await?;
    state.records.put_recovery_deal(&deal, state.now()).await?;
    tracing::info!(account = %caller.account.id, k = deal.threshold, n = deal.shares.len(), "referents dealt");
    referents_view(&state, &caller.account).await.map(Json)
}

/// Removes every referent (the sealed bundle and shares are deleted).
#[utoipa::path(delete, path = "/v1/me/referents", tag = "recovery",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn remove_referents(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<StatusCode> {
    if !state
        .records
        .delete_recovery_deal(caller.account.id, state.now())
        .await?
    {
        return Err(AppError::NotFound);
    }
    tracing::info!(account = %caller.account.id, "referents removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Requests about the caller's vault.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyRequests {
    /// Newest first: the open one (if any) and those closed in the last 30 days.
    pub requests: Vec<RequestView>,
}

/// Recovery requests about the caller's vault: what the warning on every device shows.
#[utoipa::path(get, path = "/v1/me/recovery", tag = "recovery",
    responses((status = 200, body = MyRequests), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn my_recovery_requests(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<MyRequests>> {
    let now = state.now();
    let requests = state
        .records
        .recovery_requests_of(caller.account.id)
        .await?
        .iter()
        .map(|r| RequestView::of(r, now))
        .collect();
    Ok(Json(MyRequests { requests }))
}

/// Cancels a request about the caller's vault ("it was not me").
#[utoipa::path(post, path = "/v1/me/recovery/{id}/cancel", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    responses((status = 200, body = RequestView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn cancel_my_recovery(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<RequestView>> {
    let now = state.now();
    let request = state
        .records
        .recovery_request(id)
        .await?
        .filter(|r| r.account == Some(caller.account.id))
        .ok_or(AppError::NotFound)?;
    let changed = state
        .records
        .change_recovery_request(request.id, &RequestChange::Cancel, now)
        .await?;
    tracing::info!(account = %caller.account.id, request = %id, "recovery cancelled by the person");
    Ok(Json(RequestView::of(&changed, now)))
}

/// Body of `POST /v1/me/recovery-kit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKit {
    /// The identity sealed under the new recovery code, base64.
    #[schema(content_encoding = "base64")]
    pub recovery_bundle: String,
    /// Verifier of the new code's token (32 bytes), base64.
    #[schema(content_encoding = "base64")]
    pub recovery_verifier: String,
}

/// A new recovery kit: the new code's bundle and verifier replace the old ones, so the old
/// paper stops working at once.
#[utoipa::path(post, path = "/v1/me/recovery-kit", tag = "recovery",
    request_body = NewKit,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn new_recovery_kit(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewKit>,
) -> AppResult<StatusCode> {
    let (bundle, verifier) = check_kit(&body.recovery_bundle, &body.recovery_verifier)?;
    state
        .records
        .replace_recovery_code(caller.account.id, &bundle, &verifier)
        .await?;
    tracing::info!(account = %caller.account.id, "new recovery kit");
    Ok(StatusCode::NO_CONTENT)
}

/// Decodes and checks a recovery-code bundle and its verifier.
pub(crate) fn check_kit(bundle: &str, verifier: &str) -> AppResult<(Vec<u8>, Vec<u8>)> {
    let bundle = decode_b64("recovery_bundle", bundle)?;
    check_bundle("recovery_bundle", &bundle, BundleKind::Recovery)?;
    let verifier = decode_b64("recovery_verifier", verifier)?;
    if verifier.len() != 32 {
        return Err(AppError::Unprocessable(
            "recovery_verifier: 32 bytes expected".into(),
        ));
    }
    Ok((bundle, verifier))
}
