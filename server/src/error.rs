//! One error type for every handler, rendered as `application/problem+json` (RFC 9457).
//!
//! Each variant has a stable `type` URI (`/problems/<slug>`, relative to the server) that
//! clients match on; `title` is fixed per type; `detail` only ever says what was wrong with
//! the *request*. Server-side causes (storage, I/O) are logged with `tracing` and replaced
//! by a generic 500 so that nothing internal, let alone a secret, reaches the client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// Media type of every error body (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed (bad JSON syntax, bad base64, bad id, bad query).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No valid session: missing, unknown, malformed or expired bearer token.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but not allowed to do this to a resource it may see.
    #[error("forbidden")]
    Forbidden,
    /// No such resource, or one the caller may not know exists.
    #[error("not found")]
    NotFound,
    /// No session of the caller's has this id (closed already, or someone else's).
    #[error("no such session")]
    SessionNotFound,
    /// No route for this path.
    #[error("no such route")]
    NoRoute,
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state (wrong offset, already committed…).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Another account has this handle.
    #[error("handle taken")]
    HandleTaken,
    /// A client reused an id that exists already.
    #[error("id taken")]
    IdTaken,
    /// Sharing or linking a document whose upload is not committed.
    #[error("not committed")]
    NotCommitted,
    /// Uploading to or committing a document that is committed already.
    #[error("already committed")]
    AlreadyCommitted,
    /// An upload at another offset than the stored length; `stored` says where to resume.
    #[error("offset mismatch")]
    OffsetMismatch {
        /// The stored length.
        stored: u64,
    },
    /// A commit before every byte is stored.
    #[error("upload incomplete")]
    UploadIncomplete {
        /// Bytes stored.
        stored: u64,
        /// Bytes declared.
        size: u64,
    },
    /// Another request is still writing this document's payload; retry shortly.
    #[error("upload busy")]
    UploadBusy,
    /// The storage cannot be reached now; the cause is logged, the client retries.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The resource existed but is no longer available (expired link or share).
    #[error("gone")]
    Gone,
    /// The request body is larger than this route accepts.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body is not JSON (or not the expected media type).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The JSON is well-formed but does not fit the expected shape.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// An envelope is not a single-X25519-stanza age header.
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(String),
    /// A payload does not have the structure of an age STREAM.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// The requested byte range lies outside the document.
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// The document's size, for the `Content-Range: bytes */size` header.
        size: u64,
    },
    /// Storing this would exceed the account's quota.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The login budget allows no attempt now ([`crate::store::attempts`]).
    #[error("login attempts spent for {retry_after} s")]
    LoginThrottled {
        /// Seconds until an attempt is counted again.
        retry_after: u64,
    },
    /// The account's budget of key look-ups is spent for now.
    #[error("too many look-ups for {retry_after} s")]
    TooManyLookups {
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// Too many attempts from this client; retry later.
    #[error("too many requests")]
    TooManyRequests,
    /// The login failed (wrong passphrase or unknown handle; deliberately not told which).
    #[error("invalid login")]
    InvalidLogin,
    /// The account was disabled by an administrator.
    #[error("account disabled")]
    AccountDisabled,
    /// A recovery request for this handle is open already.
    #[error("recovery pending")]
    RecoveryPending,
    /// The recovery request is cancelled, refused, finished or expired.
    #[error("recovery closed")]
    RecoveryClosed,
    /// The referent has approved or refused this request already.
    #[error("already decided")]
    AlreadyDecided,
    /// The shares are not released yet; `releasable_at` says when, if enough referents
    /// have approved.
    #[error("recovery waiting")]
    RecoveryWaiting {
        /// When the shares will be released (unix seconds), if known.
        releasable_at: Option<u64>,
    },
    /// Something failed on the server; the cause is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// RFC 9457 problem details, as sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `/problems/payload-too-large`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, fixed summary of the kind.
    pub title: String,
    /// HTTP status code, repeated for convenience.
    pub status: u16,
    /// What was wrong with this request (never a server-side cause or a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension member of `offset-mismatch` and `upload-incomplete`: the payload bytes
    /// stored, where an upload resumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<u64>,
    /// Extension member of `recovery-waiting`: when the shares will be released (unix
    /// seconds), once enough referents have approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub releasable_at: Option<u64>,
    /// Extension member of `login-throttled` and `too-many-lookups`: seconds until a try
    /// is counted again (also in the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl AppError {
    /// The stable slug of the problem type (the last segment of `type`).
    pub fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::SessionNotFound => "session-not-found",
            Self::NoRoute => "no-route",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::HandleTaken => "handle-taken",
            Self::IdTaken => "id-taken",
            Self::NotCommitted => "not-committed",
            Self::AlreadyCommitted => "already-committed",
            Self::OffsetMismatch { .. } => "offset-mismatch",
            Self::UploadIncomplete { .. } => "upload-incomplete",
            Self::UploadBusy => "upload-busy",
            Self::Unavailable(_) => "unavailable",
            Self::Gone => "gone",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Unprocessable(_) => "unprocessable",
            Self::InvalidEnvelope(_) => "invalid-envelope",
            Self::InvalidPayload(_) => "invalid-payload",
            Self::RangeNotSatisfiable { .. } => "range-not-satisfiable",
            Self::QuotaExceeded => "quota-exceeded",
            Self::LoginThrottled { .. } => "login-throttled",
            Self::TooManyLookups { .. } => "too-many-lookups",
            Self::TooManyRequests => "too-many-requests",
            Self::InvalidLogin => "invalid-login",
            Self::AccountDisabled => "account-disabled",
            Self::RecoveryPending => "recovery-pending",
            Self::RecoveryClosed => "recovery-closed",
            Self::AlreadyDecided => "already-decided",
            Self::RecoveryWaiting { .. } => "recovery-waiting",
            Self::Internal(_) => "internal",
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidLogin => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::AccountDisabled => StatusCode::FORBIDDEN,
            Self::NotFound | Self::SessionNotFound | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_)
            | Self::HandleTaken
            | Self::IdTaken
            | Self::NotCommitted
            | Self::AlreadyCommitted
            | Self::OffsetMismatch { .. }
            | Self::UploadIncomplete { .. }
            | Self::UploadBusy
            | Self::RecoveryPending
            | Self::RecoveryClosed
            | Self::AlreadyDecided
            | Self::RecoveryWaiting { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Gone => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) | Self::InvalidEnvelope(_) | Self::InvalidPayload(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            // 507 would blame the server; the account's own quota is a client-side limit.
            Self::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            Self::LoginThrottled { .. } | Self::TooManyLookups { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Malformed request",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "Not allowed",
            Self::NotFound => "Not found",
            Self::SessionNotFound => "No such session",
            Self::NoRoute => "No such route",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict(_) => "Conflict with the current state",
            Self::HandleTaken => "Handle already taken",
            Self::IdTaken => "Identifier already in use",
            Self::NotCommitted => "Upload not committed",
            Self::AlreadyCommitted => "Upload already committed",
            Self::OffsetMismatch { .. } => "Upload offset is not the stored length",
            Self::UploadIncomplete { .. } => "Upload incomplete",
            Self::UploadBusy => "Another request is writing this upload",
            Self::Unavailable(_) => "Storage temporarily unavailable",
            Self::Gone => "No longer available",
            Self::PayloadTooLarge => "Request body too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Unprocessable(_) => "Request body has the wrong shape",
            Self::InvalidEnvelope(_) => "Not a single-recipient X25519 age header",
            Self::InvalidPayload(_) => "Not an age STREAM payload",
            Self::RangeNotSatisfiable { .. } => "Range not satisfiable",
            Self::QuotaExceeded => "Storage quota exceeded",
            Self::LoginThrottled { .. } => "Too many login attempts",
            Self::TooManyLookups { .. } => "Too many look-ups",
            Self::TooManyRequests => "Too many requests",
            Self::InvalidLogin => "Invalid login",
            Self::AccountDisabled => "Account disabled",
            Self::RecoveryPending => "A recovery request is open already",
            Self::RecoveryClosed => "The recovery request is closed",
            Self::AlreadyDecided => "Already decided",
            Self::RecoveryWaiting { .. } => "Recovery not released yet",
            Self::Internal(_) => "Internal server error",
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::BadRequest(d)
            | Self::Conflict(d)
            | Self::Unprocessable(d)
            | Self::InvalidEnvelope(d)
            | Self::InvalidPayload(d) => Some(d.clone()),
            Self::OffsetMismatch { stored } => Some(format!(
                "the upload resumes at offset {stored} (GET …/upload tells it too)"
            )),
            Self::UploadIncomplete { stored, size } => {
                Some(format!("{stored} of {size} payload bytes are stored"))
            }
            Self::NotCommitted => Some("commit the upload before sharing".into()),
            Self::RecoveryPending => {
                Some("one request at a time: it must be cancelled, refused or expired first".into())
            }
            Self::RecoveryClosed => {
                Some("cancelled, refused, finished or expired; ask again if needed".into())
            }
            Self::RecoveryWaiting {
                releasable_at: Some(at),
            } => Some(format!("the shares are released at {at} (unix seconds)")),
            Self::RecoveryWaiting {
                releasable_at: None,
            } => Some("not enough referents have approved yet".into()),
            Self::LoginThrottled { retry_after } => Some(format!(
                "too many tries: the next in {retry_after} s; a device that logged in before \
                 has its own tries, and a worker of the organisation can unlock at once"
            )),
            _ => None,
        }
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.slug()),
            title: self.title().to_owned(),
            status: self.status().as_u16(),
            detail: self.detail(),
            stored: match self {
                Self::OffsetMismatch { stored } | Self::UploadIncomplete { stored, .. } => {
                    Some(*stored)
                }
                _ => None,
            },
            releasable_at: match self {
                Self::RecoveryWaiting { releasable_at } => *releasable_at,
                _ => None,
            },
            retry_after: match self {
                Self::LoginThrottled { retry_after } | Self::TooManyLookups { retry_after } => {
                    Some(*retry_after)
                }
                _ => None,
            },
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            // The cause stays in the log; the client learns only that it failed.
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "storage unavailable"),
            _ => {}
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        let retry_after = match self {
            Self::UploadBusy => Some(2),
            Self::Unavailable(_) => Some(5),
            // The per-address budget is counted in windows of a minute.
            Self::TooManyRequests => Some(60),
            Self::LoginThrottled { retry_after } | Self::TooManyLookups { retry_after } => {
                Some(retry_after)
            }
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Self::RangeNotSatisfiable { size } = self {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        response
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound | StoreError::RecipientNotFound => Self::NotFound,
            StoreError::HandleTaken => Self::HandleTaken,
            StoreError::IdTaken => Self::IdTaken,
            // Unknown, used and expired invites look alike to the client.
            StoreError::InviteInvalid => Self::Forbidden,
            StoreError::Throttled { retry_after } => Self::LoginThrottled { retry_after },
            // The login proved a passphrase that has been replaced since.
            StoreError::CredentialsChanged => Self::InvalidLogin,
            StoreError::QuotaExceeded => Self::QuotaExceeded,
            StoreError::NotCommitted => Self::NotCommitted,
            StoreError::AlreadyCommitted => Self::AlreadyCommitted,
            StoreError::OffsetMismatch { stored } => Self::OffsetMismatch { stored },
            StoreError::BeyondDeclaredSize { .. } | StoreError::PieceTooLarge => {
                Self::PayloadTooLarge
            }
            StoreError::Incomplete { stored, size } => Self::UploadIncomplete { stored, size },
            StoreError::TooManyPending => Self::TooManyRequests,
            StoreError::RecoveryPending => Self::RecoveryPending,
            StoreError::RecoveryClosed => Self::RecoveryClosed,
            // A stranger to a request learns nothing about it.
            StoreError::NotReferent => Self::NotFound,
            StoreError::AlreadyDecided => Self::AlreadyDecided,
            StoreError::NotReleasable { at } => Self::RecoveryWaiting { releasable_at: at },
            StoreError::NotEmpty => Self::Conflict("the store is not empty".into()),
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::Backend(cause) => Self::Internal(cause),
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        // axum's own rejections are plain text; keep their status, give them our shape.
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(rejection.body_text()),
            StatusCode::BAD_REQUEST => Self::BadRequest(rejection.body_text()),
            _ => Self::BadRequest("unreadable request body".into()),
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// Shorthand for handler results.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn internal_cause_is_not_in_the_problem() {
        let problem = AppError::Internal("sled: secret path /x".into()).problem();
        let json = serde_json::to_string(&problem).unwrap();
        assert!(!json.contains("sled"));
        assert_eq!(problem.status, 500);
        assert_eq!(problem.kind, "/problems/internal");
    }

    #[test]
    fn quota_and_size_are_distinct_types_with_the_same_status() {
        assert_eq!(
            AppError::QuotaExceeded.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_ne!(
            AppError::QuotaExceeded.slug(),
            AppError::PayloadTooLarge.slug()
        );
    }
}
