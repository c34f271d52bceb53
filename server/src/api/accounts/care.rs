//! Account care: the caller's own account, public-key look-ups, and unlocking a locked
//! account (a worker of its organisation, in person).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AccountView, HandleText};
use crate::api::ApiPath;
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::attempts::handle_key;
use crate::store::{Account, Id, Role};
use crate::AppState;

/// A public key lookup.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    /// Account id (to address envelopes).
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// Handle.
    pub handle: String,
    /// age X25519 recipient.
    pub public_key: String,
}

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", tag = "accounts",
    responses((status = 200, body = AccountView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> Json<AccountView> {
    Json(AccountView::from(&caller.account))
}

/// Look-ups each account may make per minute.
pub const LOOKUPS_PER_MINUTE: u32 = 30;
/// Look-ups each account may make per day.
pub const LOOKUPS_PER_DAY: u32 = 300;

/// Looks up a public key by handle. Anyone signed in resolves workers (to share with them
/// or choose them as referents); a worker also resolves the people of their own
/// structure; anyone resolves a person they already share with, either way. Every other
/// handle answers 404 exactly as a handle nobody has. Each account has a budget of
/// look-ups ([`LOOKUPS_PER_MINUTE`], [`LOOKUPS_PER_DAY`]), spent alike whatever the
/// answer.
#[utoipa::path(get, path = "/v1/keys/{handle}", tag = "accounts",
    params(("handle" = inline(HandleText), Path, description = "The handle, read as at registration (trimmed, lowercased); any other value names no account (404)")),
    responses((status = 200, body = PublicKeyView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn public_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(handle): ApiPath<String>,
) -> AppResult<Json<PublicKeyView>> {
    lookup_budget(&state, &caller.account).await?;
    let handle = handle.trim().to_ascii_lowercase();
    let account = state
        .records
        .account_by_handle(&handle)
        .await?
        .filter(|a| a.disabled_at.is_none())
        .ok_or(AppError::NotFound)?;
    if !may_resolve(&state, &caller.account, &account).await? {
        return Err(AppError::NotFound);
    }
    Ok(Json(PublicKeyView {
        id: account.id.to_string(),
        handle: account.handle,
        public_key: account.public_key,
    }))
}

/// Spends one look-up of `caller`'s budget; 429 when the minute's or the day's is spent.
async fn lookup_budget(state: &AppState, caller: &Account) -> AppResult<()> {
    let now = state.now();
    for (window, limit) in [(60, LOOKUPS_PER_MINUTE), (86_400, LOOKUPS_PER_DAY)] {
        let key = format!("keys/{window}:{}", caller.id);
        if state.records.count_rate(&key, now, window).await? > limit {
            let retry_after = window - now % window;
            tracing::warn!(account = %caller.id, retry_after, "key look-ups throttled");
            return Err(AppError::TooManyLookups { retry_after });
        }
    }
    Ok(())
}

/// Whether `caller` may learn `target`'s public key (see [`public_key`]).
async fn may_resolve(state: &AppState, caller: &Account, target: &Account) -> AppResult<bool> {
    if target.id == caller.id || target.role == Role::Worker {
        return Ok(true);
    }
    if caller.role == Role::Worker && caller.org.is_some() && target.org == caller.org {
        return Ok(true);
    }
    Ok(shares_with(state, caller.id, target.id).await?
        || shares_with(state, target.id, caller.id).await?)
}

/// Whether `owner` shares at least one document with `recipient`.
async fn shares_with(state: &AppState, owner: Id, recipient: Id) -> AppResult<bool> {
    for doc in state.records.shared_with(recipient).await? {
        if state
            .records
            .document(doc)
            .await?
            .is_some_and(|d| d.owner == owner)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Unlocks an account: only a worker of the same organisation, in person.
#[utoipa::path(post, path = "/v1/accounts/{id}/unlock", tag = "accounts",
    params(("id" = inline(Id), Path, description = "account id")),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
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
    state
        .records
        .reset_login_budget(&handle_key(&target.handle))
        .await?;
    tracing::info!(account = %id, worker = %worker.id, "login budget reset by a worker (unlock)");
    Ok(StatusCode::NO_CONTENT)
}
