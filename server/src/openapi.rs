//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! served at `/v1/openapi.json`. A test checks that it lists exactly the operations the
//! router serves ([`crate::operations`]), and probes each one.
//!
//! The document says what the server really accepts, so that a generator of requests
//! (schemathesis, run by `cargo xtask test`) can tell a wrong answer from a wrong
//! question: ids carry their exact spelling ([`Id`]'s schema), handles the pattern of
//! what can name an account ([`accounts::HandleText`]).

use axum::Json;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::api::{accounts, documents, recovery, sessions, shares};
use crate::store::{Id, ID_BYTES};

/// Characters of an id in the API: its bytes in hex.
pub const ID_CHARS: usize = 2 * ID_BYTES;

/// The one spelling of an id that `Id::from_str` accepts: lowercase hex of exactly
/// [`ID_BYTES`] bytes (uppercase is refused, so that one id has one spelling).
pub fn id_pattern() -> String {
    format!("^[0-9a-f]{{{ID_CHARS}}}$")
}

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(id_pattern()))
            .min_length(Some(ID_CHARS))
            .max_length(Some(ID_CHARS))
            .into()
    }
}

impl ToSchema for Id {}

/// A payload as it travels, raw bytes (`application/octet-stream`), not JSON: what
/// utoipa would make of `Vec<u8>` (an array of integers) is not what is sent.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Coffre server API", description = "Zero-knowledge document vault: the server stores only ciphertext, envelopes it cannot open, and public metadata. Errors are application/problem+json (RFC 9457)."),
    paths(
        crate::healthz,
        serve,
        accounts::registration_start,
        accounts::register_worker,
        accounts::register_beneficiary,
        accounts::login_start,
        accounts::login_finish,
        accounts::logout,
        sessions::list_sessions,
        sessions::close_session,
        sessions::close_other_sessions,
        accounts::me,
        accounts::passphrase_start,
        accounts::passphrase_finish,
        accounts::recovery_lookup,
        accounts::recovery_start,
        accounts::recovery_finish,
        accounts::public_key,
        accounts::unlock,
        documents::create,
        documents::list_own,
        documents::get_one,
        documents::delete_one,
        documents::upload_status,
        documents::upload,
        documents::commit,
        documents::download,
        shares::put_envelope,
        shares::list_envelopes,
        shares::revoke,
        shares::shared_with_me,
        shares::create_link,
        shares::list_links,
        shares::delete_link,
        shares::open_link,
        documents::limits,
        shares::grant_link,
        shares::link_payload,
        recovery::my_referents,
        recovery::set_referents,
        recovery::remove_referents,
        recovery::my_recovery_requests,
        recovery::cancel_my_recovery,
        recovery::new_recovery_kit,
        recovery::ask_recovery,
        recovery::request_status,
        recovery::cancel_request,
        recovery::cancel_with_code,
        recovery::release,
        recovery::finish,
        recovery::my_asks,
        recovery::referent_of,
        recovery::one_ask,
        recovery::approve,
        recovery::refuse,
        recovery::withdraw,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
