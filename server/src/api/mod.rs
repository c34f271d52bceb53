//! The HTTP API under `/v1`.
//!
//! Small objects are JSON (binary fields in standard base64); payloads travel as raw,
//! streamed bodies. Every handler starts by deciding who asks: owner, current recipient,
//! stranger or anonymous. Strangers and revoked recipients get the same 404 as for a
//! document that does not exist, so that ids cannot be probed; a recipient asking for an
//! owner-only operation gets 403, since they already know the document exists.

pub mod accounts;
pub mod budget;
pub mod documents;
pub mod recovery;
pub mod sessions;
pub mod shares;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use base64::{engine::general_purpose::STANDARD, Engine as _};

use crate::error::AppError;
use crate::AppState;

/// JSON body extractor whose rejections are problem documents (400, 413, 415, 422).
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// Path extractor whose rejections are 400 problems.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// Query extractor whose rejections are 400 problems.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// A bearer secret carried as text in a request or an answer — a session or device
/// token, an invite code, a recovery token, a download grant, a proof — so that no
/// `Debug` of a body (a log line, a panic message) ever shows it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

/// Decodes a base64 field, naming it in the problem detail.
pub fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, AppError> {
    STANDARD
        .decode(text)
        .map_err(|_| AppError::Unprocessable(format!("{field}: not standard base64")))
}

/// Encodes bytes for a JSON field.
pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Checks that `bytes` are exactly one single-X25519-stanza age header: what the server
/// can check of an envelope without being able to open it.
pub fn check_envelope(bytes: &[u8]) -> Result<(), AppError> {
    coffre_core::Envelope::parse(bytes)
        .map(|_| ())
        .map_err(|e| AppError::InvalidEnvelope(e.to_string()))
}

/// An HTTP method of a route. One value gives both the method the router serves and the
/// method recorded in [`Routes`], so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// GET (and HEAD).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Op {
    /// What the router matches.
    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Put => MethodFilter::PUT,
            Self::Patch => MethodFilter::PATCH,
            Self::Delete => MethodFilter::DELETE,
        }
    }

    /// The method, as in an OpenAPI path item (lowercase).
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }
}

/// A router being built, with the table of every operation added to it: the routes as
/// the router really has them, which a test compares with the OpenAPI document.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(Op, String)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Serves `handler` for `op` on `path` (an axum path; `/{id}` style).
    fn route<H, T>(self, op: Op, path: &str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route_with(op, path, on(op.filter(), handler))
    }

    fn route_with(mut self, op: Op, path: &str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, method_router);
        self.table.push((op, path.to_owned()));
        self
    }

    /// Every operation, as (method, path).
    pub fn table(&self) -> &[(Op, String)] {
        &self.table
    }
}

/// The `/v1` routes, not yet given their state, with their table (paths without the
/// `/v1` prefix).
pub fn routes() -> Routes {
    use Op::{Delete, Get, Patch, Post, Put};
    Routes::new()
        .route(Get, "/openapi.json", crate::openapi::serve)
        // accounts and login
        .route(Post, "/registrations/start", accounts::registration_start)
        .route(Post, "/workers", accounts::register_worker)
        .route(Post, "/beneficiaries", accounts::register_beneficiary)
        .route(Post, "/login/start", accounts::login_start)
        .route(Post, "/login/finish", accounts::login_finish)
        .route(Post, "/logout", accounts::logout)
        .route(Get, "/me", accounts::me)
        .route(Get, "/me/sessions", sessions::list_sessions)
        .route(Delete, "/me/sessions/{id}", sessions::close_session)
        .route(
            Post,
            "/me/sessions/close-others",
            sessions::close_other_sessions,
        )
        .route(Post, "/me/passphrase/start", accounts::passphrase_start)
        .route(Post, "/me/passphrase", accounts::passphrase_finish)
        .route(Post, "/recovery/lookup", accounts::recovery_lookup)
        .route(Post, "/recovery/start", accounts::recovery_start)
        .route(Post, "/recovery/finish", accounts::recovery_finish)
        .route(Get, "/keys/{handle}", accounts::public_key)
        .route(Post, "/accounts/{id}/unlock", accounts::unlock)
        // documents
        .route(Get, "/limits", documents::limits)
        .route(Post, "/documents", documents::create)
        .route(Get, "/documents", documents::list_own)
        .route(Get, "/documents/{id}", documents::get_one)
        .route(Delete, "/documents/{id}", documents::delete_one)
        .route_with(
            Patch,
            "/documents/{id}/payload",
            // The upload handler streams and enforces the declared size itself.
            on(Patch.filter(), documents::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(Get, "/documents/{id}/payload", documents::download)
        .route(Get, "/documents/{id}/upload", documents::upload_status)
        .route(Post, "/documents/{id}/commit", documents::commit)
        // shares
        .route(Get, "/documents/{id}/envelopes", shares::list_envelopes)
        .route(
            Put,
            "/documents/{id}/envelopes/{recipient}",
            shares::put_envelope,
        )
        .route(
            Delete,
            "/documents/{id}/envelopes/{recipient}",
            shares::revoke,
        )
        .route(Get, "/shared", shares::shared_with_me)
        // links
        .route(Post, "/documents/{id}/links", shares::create_link)
        .route(Get, "/documents/{id}/links", shares::list_links)
        .route(Get, "/links/{id}", shares::open_link)
        .route(Delete, "/links/{id}", shares::delete_link)
        .route(Post, "/links/{id}/grants", shares::grant_link)
        .route(Get, "/links/{id}/payload", shares::link_payload)
        // recovery through referents: the person
        .route(Get, "/me/referents", recovery::my_referents)
        .route(Put, "/me/referents", recovery::set_referents)
        .route(Delete, "/me/referents", recovery::remove_referents)
        .route(Get, "/me/recovery", recovery::my_recovery_requests)
        .route(
            Post,
            "/me/recovery/{id}/cancel",
            recovery::cancel_my_recovery,
        )
        .route(Post, "/me/recovery-kit", recovery::new_recovery_kit)
        // the asking device
        .route(Post, "/recovery/requests", recovery::ask_recovery)
        .route(Get, "/recovery/requests/{id}", recovery::request_status)
        .route(
            Post,
            "/recovery/requests/{id}/cancel",
            recovery::cancel_request,
        )
        .route(Post, "/recovery/cancel", recovery::cancel_with_code)
        .route(Post, "/recovery/requests/{id}/release", recovery::release)
        .route(Post, "/recovery/requests/{id}/finish", recovery::finish)
        // referents
        .route(Get, "/recovery/asks", recovery::my_asks)
        .route(Get, "/recovery/referent-of", recovery::referent_of)
        .route(Get, "/recovery/asks/{id}", recovery::one_ask)
        .route(Post, "/recovery/requests/{id}/approve", recovery::approve)
        .route(Post, "/recovery/requests/{id}/refuse", recovery::refuse)
        .route(Post, "/recovery/requests/{id}/withdraw", recovery::withdraw)
}

/// The `/v1` routes.
pub fn router(state: AppState) -> Router {
    let json_limit = state.limits.json_body_bytes;
    let v1 = routes()
        .router
        .fallback(|| async { AppError::NoRoute })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(json_limit))
        .with_state(state);
    Router::new().nest("/v1", v1)
}

#[cfg(test)]
mod secret_tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    const SECRET: &str = "s3cr3t-never-in-debug";

    /// Every body that carries a bearer secret formats without it.
    #[test]
    fn debug_of_bodies_never_shows_a_bearer_secret() {
        use super::accounts as credentials;
        use super::accounts as login;
        use super::accounts as registration;
        use super::recovery::asking;
        let shown = [
            format!(
                "{:?}",
                serde_json::from_value::<login::LoginStart>(json!({
                    "handle": "amina", "login_request": "AAAA", "device": SECRET
                }))
                .unwrap()
            ),
            format!(
                "{:?}",
                serde_json::from_value::<credentials::RecoveryStart>(json!({
                    "handle": "amina", "recovery_token": SECRET, "registration_request": "AAAA"
                }))
                .unwrap()
            ),
            format!(
                "{:?}",
                serde_json::from_value::<credentials::RecoveryFinish>(json!({
                    "handle": "amina", "recovery_token": SECRET,
                    "registration_upload": "AAAA", "bundle": "AAAA"
                }))
                .unwrap()
            ),
            format!(
                "{:?}",
                serde_json::from_value::<asking::Proof>(json!({ "proof": SECRET })).unwrap()
            ),
            format!(
                "{:?}",
                serde_json::from_value::<super::shares::LinkPayloadQuery>(
                    json!({ "grant": SECRET })
                )
                .unwrap()
            ),
            format!("{:?}", super::Secret(SECRET.into())),
        ];
        for text in &shown {
            assert!(!text.contains(SECRET), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        // The invite of a worker's registration (its account part is long to build):
        // the field's type is what keeps it out.
        let _: fn(&registration::RegisterWorker) -> &super::Secret = |r| &r.invite;
        // And the value still serializes as the plain text it is.
        assert_eq!(
            serde_json::to_value(super::Secret(SECRET.into())).unwrap(),
            json!(SECRET)
        );
    }
}
