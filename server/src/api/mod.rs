//! The HTTP API under `/v1`.
//!
//! Small objects are JSON (binary fields in standard base64); payloads travel as raw,
//! streamed bodies. Every handler starts by deciding who asks: owner, current recipient,
//! stranger or anonymous. Strangers and revoked recipients get the same 404 as for a
//! document that does not exist, so that ids cannot be probed; a recipient asking for an
//! owner-only operation gets 403, since they already know the document exists.

pub mod accounts;
pub mod documents;
pub mod shares;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post, put};
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

/// The `/v1` routes.
pub fn router(state: AppState) -> Router {
    let json_limit = state.limits.json_body_bytes;
    let v1 = Router::new()
        .route("/openapi.json", get(crate::openapi::serve))
        // accounts and login
        .route("/registrations/start", post(accounts::registration_start))
        .route("/workers", post(accounts::register_worker))
        .route("/beneficiaries", post(accounts::register_beneficiary))
        .route("/login/start", post(accounts::login_start))
        .route("/login/finish", post(accounts::login_finish))
        .route("/logout", post(accounts::logout))
        .route("/me", get(accounts::me))
        .route("/me/passphrase/start", post(accounts::passphrase_start))
        .route("/me/passphrase", post(accounts::passphrase_finish))
        .route("/recovery/lookup", post(accounts::recovery_lookup))
        .route("/recovery/start", post(accounts::recovery_start))
        .route("/recovery/finish", post(accounts::recovery_finish))
        .route("/keys/{handle}", get(accounts::public_key))
        .route("/accounts/{id}/unlock", post(accounts::unlock))
        // documents
        .route(
            "/documents",
            post(documents::create).get(documents::list_own),
        )
        .route(
            "/documents/{id}",
            get(documents::get_one).delete(documents::delete_one),
        )
        .route(
            "/documents/{id}/payload",
            patch(documents::upload)
                .get(documents::download)
                // The upload handler streams and enforces the declared size itself.
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/documents/{id}/upload", get(documents::upload_status))
        .route("/documents/{id}/commit", post(documents::commit))
        // shares
        .route("/documents/{id}/envelopes", get(shares::list_envelopes))
        .route(
            "/documents/{id}/envelopes/{recipient}",
            put(shares::put_envelope).delete(shares::revoke),
        )
        .route("/shared", get(shares::shared_with_me))
        // links
        .route(
            "/documents/{id}/links",
            post(shares::create_link).get(shares::list_links),
        )
        .route(
            "/links/{id}",
            get(shares::open_link).delete(shares::delete_link),
        )
        .route("/links/{id}/payload", get(shares::link_payload))
        .fallback(|| async { AppError::NoRoute })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(json_limit))
        .with_state(state);
    Router::new().nest("/v1", v1)
}
