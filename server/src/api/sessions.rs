//! The caller's sessions: list them, close one, close every other.
//!
//! A person logs in on their phone, a shelter's computer, a friend's tablet; from any of
//! them they see where they are signed in and sign the others out (a computer left
//! signed in, a phone lost). Each session is shown under a public id derived from its
//! token hash ([`crate::auth::public_session_id`]), never the token, with a coarse device
//! label made from the User-Agent at login ([`device_label`]); the User-Agent itself is
//! not kept. Only the caller's own sessions are listed or closed: another person's id
//! answers exactly as an id that does not exist.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::ApiPath;
use crate::auth::{public_session_id, Caller};
use crate::error::{AppError, AppResult, Problem};
use crate::AppState;

/// One session of the caller, as `GET /v1/me/sessions` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Public id of the session (not its token): what `DELETE /v1/me/sessions/{id}`
    /// takes.
    #[schema(value_type = crate::store::Id, inline)]
    pub id: String,
    /// Coarse device label from the browser at login ("Chrome on Android"); empty when
    /// the browser did not say.
    pub device: String,
    /// Login time (unix seconds).
    pub created_at: u64,
    /// Last use (unix seconds), to the minute.
    pub last_used_at: u64,
    /// Expiry (unix seconds).
    pub expires_at: u64,
    /// Whether this is the session making the request.
    pub current: bool,
    /// Opened in "shared computer" mode.
    pub shared_computer: bool,
}

/// Answer to `POST /v1/me/sessions/close-others`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosedSessions {
    /// How many sessions were closed.
    pub closed: u64,
}

/// The caller's sessions, the current one first, then the most recently used.
#[utoipa::path(get, path = "/v1/me/sessions", tag = "accounts",
    responses((status = 200, body = [SessionView]), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<SessionView>>> {
    let now = state.now();
    let mut list: Vec<SessionView> = state
        .records
        .sessions_of_account(caller.account.id)
        .await?
        .into_iter()
        // Expired ones wait for the sweep; they open nothing any more.
        .filter(|(_, s)| {
            s.expires_at > now && s.credential_epoch == caller.account.credential_epoch
        })
        .map(|(hash, s)| SessionView {
            id: public_session_id(&hash.0),
            current: hash.0 == caller.token_hash,
            device: s.device.clone(),
            created_at: s.created_at,
            last_used_at: s.last_used(),
            expires_at: s.expires_at,
            shared_computer: s.shared,
        })
        .collect();
    list.sort_by(|a, b| {
        b.current
            .cmp(&a.current)
            .then(b.last_used_at.cmp(&a.last_used_at))
            .then(a.id.cmp(&b.id))
    });
    Ok(Json(list))
}

/// Closes one of the caller's sessions (its device's next request is refused with 401).
/// Closing the current one is a logout. An id that is not one of the caller's sessions
/// answers `session-not-found`.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "accounts",
    params(("id" = inline(crate::store::Id), Path, description = "Public id of the session, from the list (32 hex digits)")),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn close_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    // Only the caller's own sessions are searched: another person's id is never found.
    let found = state
        .records
        .sessions_of_account(caller.account.id)
        .await?
        .into_iter()
        .find(|(hash, _)| public_session_id(&hash.0) == id)
        .ok_or(AppError::SessionNotFound)?;
    state.records.delete_session(&found.0 .0).await?;
    tracing::info!(account = %caller.account.id, "session closed from another session");
    Ok(StatusCode::NO_CONTENT)
}

/// Closes every session of the caller but the current one.
#[utoipa::path(post, path = "/v1/me/sessions/close-others", tag = "accounts",
    responses((status = 200, body = ClosedSessions), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn close_other_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<ClosedSessions>> {
    let closed = state
        .records
        .delete_other_sessions(caller.account.id, &caller.token_hash)
        .await?;
    tracing::info!(account = %caller.account.id, closed, "other sessions closed");
    Ok(Json(ClosedSessions { closed }))
}

/// A coarse label of a browser from its User-Agent: the browser's family and the
/// system's ("Firefox on Windows"), no versions, no device model: enough for a person to
/// tell their phone from a shelter's computer, too little to single a device out. Empty
/// when neither is recognised.
pub fn device_label(user_agent: &str) -> String {
    let ua = user_agent;
    // Order matters: Edge, Opera and Samsung Internet say "Chrome" too, Chrome says
    // "Safari", and Android says "Linux".
    let browser = if ua.contains("Edg/") || ua.contains("EdgA/") || ua.contains("EdgiOS/") {
        Some("Edge")
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        Some("Opera")
    } else if ua.contains("SamsungBrowser/") {
        Some("Samsung Internet")
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        Some("Firefox")
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") || ua.contains("Chromium/") {
        Some("Chrome")
    } else if ua.contains("Safari/") {
        Some("Safari")
    } else {
        None
    };
    let system = if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        Some("iOS")
    } else if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("CrOS") {
        Some("ChromeOS")
    } else if ua.contains("Windows") {
        Some("Windows")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        Some("macOS")
    } else if ua.contains("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::device_label;

    #[test]
    fn device_labels_are_coarse() {
        let cases = [
            ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", "Safari on iOS"),
            ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Linux; Android 13; SM-A136B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", "Chrome on Linux"),
            ("curl/8.5.0", ""),
        ];
        for (ua, label) in cases {
            assert_eq!(device_label(ua), label, "{ua}");
            // No version number survives.
            assert!(!device_label(ua).chars().any(|c| c.is_ascii_digit()));
        }
    }
}
