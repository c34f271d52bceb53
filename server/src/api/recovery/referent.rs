//! The referent's side: the requests they are referent of, and their decision.
//!
//! Approving happens in the referent's browser: it opens the share sealed to the
//! referent's key and reseals it to the request's ephemeral key, after the referent saw
//! the person and compared the safety words of that key with the person's device. The
//! server only stores the resealed share.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{b64, check_sealed_share, state_name};
use crate::api::{decode_b64, ApiJson, ApiPath};
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Decision, Id, RecoveryRequest, RequestChange, Role};
use crate::AppState;

/// Decisions one referent may send per minute.
const DECISIONS_PER_MINUTE: u32 = 30;

/// A request as one of its referents sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AskView {
    /// Request id.
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// The person's handle.
    pub handle: String,
    /// The person's account id (the share is bound to it).
    #[schema(value_type = Id, inline)]
    pub account_id: String,
    /// `open`, `expired`, `cancelled`, `refused` or `finished`.
    pub state: String,
    /// When it was made (unix seconds).
    pub created_at: u64,
    /// When it ends if not finished (unix seconds).
    pub expires_at: u64,
    /// The asking device's ephemeral key: its safety words are compared with the
    /// person's device before approving.
    pub ephemeral_key: String,
    /// Approvals needed.
    pub threshold: u8,
    /// Approvals so far.
    pub approvals: usize,
    /// When the shares are released, once enough referents approved.
    pub releasable_at: Option<u64>,
    /// `approved`, `refused` (or withdrawn), or null.
    pub my_decision: Option<String>,
    /// This referent's share, sealed to their own key, base64.
    #[schema(content_encoding = "base64")]
    pub my_share: Option<String>,
}

async fn ask_view(state: &AppState, me: Id, r: &RecoveryRequest, now: u64) -> AppResult<AskView> {
    let account = r.account.ok_or(AppError::NotFound)?;
    let person = state.records.account(account).await?;
    let deal = state
        .records
        .recovery_deal(account)
        .await?
        .filter(|d| Some(d.id) == r.deal);
    let my_share = deal
        .as_ref()
        .and_then(|d| d.shares.iter().find(|s| s.referent == me))
        .map(|s| b64(&s.sealed_share));
    let my_decision = if r.approvals.iter().any(|a| a.referent == me) {
        Some("approved".to_owned())
    } else if r.refused.contains(&me) {
        Some("refused".to_owned())
    } else {
        None
    };
    Ok(AskView {
        id: r.id.to_string(),
        handle: person.map(|p| p.handle).unwrap_or_default(),
        account_id: account.to_string(),
        state: state_name(r, now).into(),
        created_at: r.created_at,
        expires_at: r.expires_at,
        ephemeral_key: r.ephemeral_key.clone(),
        threshold: r.threshold,
        approvals: r.approvals.len(),
        releasable_at: r.releasable_at,
        my_decision,
        my_share,
    })
}

/// The caller as a referent: a worker.
fn referent(caller: &Caller) -> AppResult<Id> {
    if caller.account.role != Role::Worker {
        return Err(AppError::Forbidden);
    }
    Ok(caller.account.id)
}

/// Open requests the caller is referent of: their home screen.
#[utoipa::path(get, path = "/v1/recovery/asks", tag = "recovery",
    responses((status = 200, body = Vec<AskView>), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn my_asks(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<AskView>>> {
    let me = referent(&caller)?;
    let now = state.now();
    let mut out = Vec::new();
    for r in state.records.recovery_requests_for(me, now).await? {
        let view = ask_view(&state, me, &r, now).await?;
        // A request under a deal since replaced cannot be approved: not shown.
        if view.my_share.is_some() {
            out.push(view);
        }
    }
    Ok(Json(out))
}

/// One request the caller is referent of (404 for anyone else).
#[utoipa::path(get, path = "/v1/recovery/asks/{id}", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    responses((status = 200, body = AskView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn one_ask(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<AskView>> {
    let me = referent(&caller).map_err(|_| AppError::NotFound)?;
    let r = state
        .records
        .recovery_request(id)
        .await?
        .filter(|r| r.referents.contains(&me))
        .ok_or(AppError::NotFound)?;
    ask_view(&state, me, &r, state.now()).await.map(Json)
}

/// Body of an approval.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The referent's share, resealed to the request's ephemeral key (an age file), base64.
    #[schema(content_encoding = "base64")]
    pub sealed_share: String,
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: Id,
    decision: Decision,
) -> AppResult<Json<AskView>> {
    let me = referent(caller).map_err(|_| AppError::NotFound)?;
    let now = state.now();
    let count = state
        .records
        .count_rate(&format!("recovery-decide:{me}"), now, 60)
        .await?;
    if count > DECISIONS_PER_MINUTE {
        return Err(AppError::TooManyRequests);
    }
    let label = format!("{decision:?}");
    let changed = state
        .records
        .change_recovery_request(
            id,
            &RequestChange::Decide {
                referent: me,
                decision,
            },
            now,
        )
        .await
        .map_err(|e| match e {
            // Neither a stranger nor a worker who is not a referent learns the request.
            crate::store::StoreError::NotFound | crate::store::StoreError::NotReferent => {
                AppError::NotFound
            }
            e => e.into(),
        })?;
    tracing::info!(request = %id, referent = %me, decision = %label, approvals = changed.approvals.len(), "recovery decision");
    ask_view(state, me, &changed, now).await.map(Json)
}

/// Approves: the caller checked the person in person and the safety words matched.
#[utoipa::path(post, path = "/v1/recovery/requests/{id}/approve", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    request_body = ApproveBody,
    responses((status = 200, body = AskView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> AppResult<Json<AskView>> {
    let sealed = decode_b64("sealed_share", &body.sealed_share)?;
    check_sealed_share("sealed_share", &sealed)?;
    decide(&state, &caller, id, Decision::Approve(sealed)).await
}

/// Refuses (the person was not there, or the words differed).
#[utoipa::path(post, path = "/v1/recovery/requests/{id}/refuse", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    responses((status = 200, body = AskView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn refuse(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<AskView>> {
    decide(&state, &caller, id, Decision::Refuse).await
}

/// Takes an approval back, during the delay or before.
#[utoipa::path(post, path = "/v1/recovery/requests/{id}/withdraw", tag = "recovery",
    params(("id" = inline(Id), Path, description = "request id")),
    responses((status = 200, body = AskView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<AskView>> {
    decide(&state, &caller, id, Decision::Withdraw).await
}

/// One person the caller is referent of.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferentOf {
    /// The person's account id.
    #[schema(value_type = Id, inline)]
    pub account_id: String,
    /// Their handle.
    pub handle: String,
    /// Approvals a recovery needs.
    pub threshold: u8,
    /// Their referents.
    pub referents: usize,
    /// Referents who can still approve (not disabled).
    pub active: usize,
}

/// The people the caller is referent of, with how many of their referents can still
/// help: a worker whose colleague left sees who needs new referents.
#[utoipa::path(get, path = "/v1/recovery/referent-of", tag = "recovery",
    responses((status = 200, body = Vec<ReferentOf>), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn referent_of(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<ReferentOf>>> {
    let me = referent(&caller)?;
    let mut out = Vec::new();
    for deal in state.records.recovery_deals_naming(me).await? {
        let Some(person) = state.records.account(deal.account).await? else {
            continue;
        };
        let mut active = 0;
        for share in &deal.shares {
            if state
                .records
                .account(share.referent)
                .await?
                .is_some_and(|a| a.role == Role::Worker && a.disabled_at.is_none())
            {
                active += 1;
            }
        }
        out.push(ReferentOf {
            account_id: person.id.to_string(),
            handle: person.handle,
            threshold: deal.threshold,
            referents: deal.shares.len(),
            active,
        });
    }
    Ok(Json(out))
}
