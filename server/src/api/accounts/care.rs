//! Account care: the caller's own account, public-key look-ups, and unlocking a locked
//! account (a worker of its organisation, in person).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AccountView;
use crate::api::ApiPath;
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Id, Role};
use crate::AppState;

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
        .records
        .account_by_handle(&handle)
        .await?
        .filter(|a| a.disabled_at.is_none())
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
    let target = state.records.account(id).await?.ok_or(AppError::NotFound)?;
    if target.org != Some(org) {
        return Err(AppError::Forbidden);
    }
    state.records.unlock_account(id).await?;
    tracing::info!(account = %id, worker = %worker.id, "account unlocked");
    Ok(StatusCode::NO_CONTENT)
}
