//! Shares (one envelope per recipient, with optional expiry) and links for people
//! without an account.
//!
//! The server cannot tell whether an envelope really opens to the recipient's key: it
//! checks only that it is one well-formed X25519 stanza header (DESIGN.md, "Cryptography").
//!
//! # Link download limit
//!
//! A link's `max_downloads` counts *grants*, handed out by `POST /v1/links/{id}/grants`,
//! not views: `GET /v1/links/{id}` gives the envelope and the sealed metadata without
//! counting anything, so the visitor's page first checks that the key in its URL opens
//! the envelope and asks for a grant only then. A truncated or wrong link therefore uses
//! nothing.
//!
//! The page names each grant with a random id it chose and keeps (for the tab, in
//! sessionStorage); the link stores a digest of the id. Asking again with the same id
//! less than [`LINK_REUSE_SECONDS`](crate::store::LINK_REUSE_SECONDS) after it was counted (the visitor reloading the
//! page, or retrying after losing the answer on a bad network) hands the same grant back
//! without counting, even when that grant used the link up; after the window it counts
//! a new opening. `GET /v1/links/{id}?grant=ID` likewise shows a used-up link to the
//! holder of such a recent grant. Counting and remembering are one store step
//! ([`crate::store::Records::grant_link`]).
//!
//! The grant itself is the `download_token`: `GET /v1/links/{id}/payload?grant=TOKEN`
//! serves the payload, with Range, for [`LINK_GRANT_SECONDS`] after the grant was counted
//! (never past the link's expiry), so an interrupted download resumes with Range
//! requests without being charged again. Without a valid token the payload is refused:
//! 410 once the link is used up or expired (the same problem as asking for a grant), 409
//! while it can still be granted. A token is a bearer capability: whoever holds it may
//! fetch the payload again until it expires. The token is the grant's expiry and an
//! HMAC-SHA-256 over a label, the link id and that expiry, keyed with the server's key
//! file: nothing more is stored per token, a token is valid for its own link only, and a
//! forged or altered one is simply not a grant.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::accounts::{throttle, ClientIp};
use super::documents::{access, owned, payload_response, Access, DocumentView};
use super::{check_envelope, decode_b64, encode_b64, ApiJson, ApiPath, ApiQuery};
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Digest, EnvelopeRecord, Id, Link, LinkOpen, LINK_GRANT_SECONDS};
use crate::AppState;

/// Domain separation of the link download grant's MAC.
const LINK_GRANT_LABEL: &[u8] = b"coffre/v1/server/link-download-grant";
/// Bytes of a grant: its expiry (8, big-endian) and the HMAC-SHA-256 tag (32).
const LINK_GRANT_BYTES: usize = 8 + 32;
/// Domain separation of the stored digest of a visitor's grant id.
const LINK_GRANT_ID_LABEL: &[u8] = b"coffre/v1/server/link-grant-id";
/// Bytes of the random grant id a visitor's page chooses.
pub const LINK_GRANT_ID_BYTES: usize = 16;

/// Body of `PUT /v1/documents/{id}/envelopes/{recipient}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutEnvelope {
    /// Single-X25519-stanza age header for the recipient, base64.
    #[schema(content_encoding = "base64")]
    pub envelope: String,
    /// Optional expiry (unix seconds), after which the server refuses and purges it.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// A share as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareView {
    /// Recipient account id.
    #[schema(value_type = Id, inline)]
    pub recipient: String,
    /// Recipient handle.
    pub handle: Option<String>,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Expiry (unix seconds).
    pub expires_at: Option<u64>,
}

/// Body of `POST /v1/documents/{id}/links`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// Envelope to the link key (whose secret stays in the URL fragment), base64.
    #[schema(content_encoding = "base64")]
    pub envelope: String,
    /// Optional expiry (unix seconds).
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Optional number of openings allowed.
    #[serde(default)]
    pub max_downloads: Option<u32>,
}

/// A link as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    /// Link id (goes in the URL path).
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// Document id.
    #[schema(value_type = Id, inline)]
    pub document: String,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Expiry (unix seconds).
    pub expires_at: Option<u64>,
    /// Openings allowed.
    pub max_downloads: Option<u32>,
    /// Openings so far.
    pub downloads: u32,
    /// Last opening (unix seconds).
    pub last_opened_at: Option<u64>,
}

impl From<&Link> for LinkView {
    fn from(l: &Link) -> Self {
        Self {
            id: l.id.to_string(),
            document: l.doc.to_string(),
            created_at: l.created_at,
            expires_at: l.expires_at,
            max_downloads: l.max_downloads,
            downloads: l.downloads,
            last_opened_at: l.last_opened_at,
        }
    }
}

/// What an anonymous holder of a link sees before anything is counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenedLink {
    /// Payload size (bytes).
    pub size: u64,
    /// Sealed metadata, base64.
    #[schema(content_encoding = "base64")]
    pub metadata: String,
    /// Envelope to the link key, base64.
    #[schema(content_encoding = "base64")]
    pub envelope: String,
    /// Expiry (unix seconds).
    pub expires_at: Option<u64>,
    /// Openings left, if limited.
    pub downloads_left: Option<u32>,
}

/// Query of `GET /v1/links/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OpenLinkQuery {
    /// A grant id this page was granted recently: shows the link even if that grant used
    /// it up.
    #[serde(default)]
    pub grant: Option<String>,
}

/// Body of `POST /v1/links/{id}/grants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskGrant {
    /// A random id the page chose for this grant (16 bytes, base64url without padding)
    /// and keeps, to ask again without counting within the re-use window.
    pub grant: String,
}

/// A download grant of a link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkGrantView {
    /// Pass it as `?grant=` to `GET /v1/links/{id}/payload`.
    pub download_token: crate::api::Secret,
    /// Until when (unix seconds) it serves the payload.
    pub download_expires_at: u64,
    /// Whether this request counted an opening (false: the same grant id was counted less
    /// than the re-use window ago and is handed back).
    pub counted: bool,
    /// Openings left after this one, if limited.
    pub downloads_left: Option<u32>,
}

/// Query of `GET /v1/links/{id}/payload`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LinkPayloadQuery {
    /// The `download_token` of an opening of this link.
    #[serde(default)]
    pub grant: Option<crate::api::Secret>,
}

fn grant_tag(state: &AppState, link: Id, expires_at: u64) -> AppResult<Hmac<Sha256>> {
    let mut mac = state
        .keys
        .link_grant_mac()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    mac.update(LINK_GRANT_LABEL);
    mac.update(&link.0);
    mac.update(&expires_at.to_be_bytes());
    Ok(mac)
}

/// A download grant for `link`, valid until `expires_at`.
fn issue_grant(state: &AppState, link: Id, expires_at: u64) -> AppResult<String> {
    let tag = grant_tag(state, link, expires_at)?.finalize().into_bytes();
    let mut bytes = Vec::with_capacity(LINK_GRANT_BYTES);
    bytes.extend_from_slice(&expires_at.to_be_bytes());
    bytes.extend_from_slice(&tag);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `token` is a grant for `link` that is still valid at `now` (tag compared in
/// constant time).
fn check_grant(state: &AppState, link: Id, token: &str, now: u64) -> AppResult<bool> {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(token.trim()) else {
        return Ok(false);
    };
    if bytes.len() != LINK_GRANT_BYTES {
        return Ok(false);
    }
    let (expiry, tag) = bytes.split_at(8);
    let mut be = [0u8; 8];
    be.copy_from_slice(expiry);
    let expires_at = u64::from_be_bytes(be);
    if now >= expires_at {
        return Ok(false);
    }
    Ok(grant_tag(state, link, expires_at)?
        .verify_slice(tag)
        .is_ok())
}

/// An expiry must be in the future, and an `int64` as the OpenAPI document says: the
/// records keep times as signed 64-bit integers (PostgreSQL `bigint`), so a larger one
/// could not be stored.
fn check_expiry(expires_at: Option<u64>, now: u64) -> AppResult<()> {
    match expires_at {
        Some(t) if t <= now => Err(AppError::Unprocessable("expires_at is in the past".into())),
        Some(t) if i64::try_from(t).is_err() => Err(AppError::Unprocessable(
            "expires_at is beyond the largest int64".into(),
        )),
        _ => Ok(()),
    }
}

/// Adds or replaces a recipient's envelope (owner only, committed documents only).
#[utoipa::path(put, path = "/v1/documents/{id}/envelopes/{recipient}", tag = "shares",
    params(("id" = inline(Id), Path, description = "document id"),
           ("recipient" = inline(Id), Path, description = "recipient account id")),
    request_body = PutEnvelope,
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn put_envelope(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, recipient)): ApiPath<(Id, Id)>,
    ApiJson(body): ApiJson<PutEnvelope>,
) -> AppResult<StatusCode> {
    let doc = owned(&state, caller.account.id, id).await?;
    let envelope = decode_b64("envelope", &body.envelope)?;
    check_envelope(&envelope)?;
    let now = state.now();
    check_expiry(body.expires_at, now)?;
    if recipient == doc.owner && body.expires_at.is_some() {
        return Err(AppError::Unprocessable(
            "the owner's envelope cannot expire".into(),
        ));
    }
    let record = EnvelopeRecord {
        envelope,
        granted_by: caller.account.id,
        created_at: now,
        expires_at: body.expires_at,
    };
    // The document (committed, not deleted meanwhile) and the recipient are checked in
    // the same step as the write.
    state.records.put_envelope(id, recipient, &record).await?;
    tracing::info!(doc = %id, %recipient, "envelope added");
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a document's shares (owner only); expired ones are purged.
#[utoipa::path(get, path = "/v1/documents/{id}/envelopes", tag = "shares",
    params(("id" = inline(Id), Path, description = "document id")),
    responses((status = 200, body = [ShareView]), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_envelopes(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<Vec<ShareView>>> {
    owned(&state, caller.account.id, id).await?;
    let now = state.now();
    let mut views = Vec::new();
    for (recipient, record) in state.records.envelopes_of(id).await? {
        if record.expires_at.is_some_and(|t| now >= t) {
            state.records.delete_envelope(id, recipient).await?;
            continue;
        }
        views.push(ShareView {
            recipient: recipient.to_string(),
            handle: state.records.account(recipient).await?.map(|a| a.handle),
            created_at: record.created_at,
            expires_at: record.expires_at,
        });
    }
    Ok(Json(views))
}

/// Revokes a share: by the owner, or by the recipient dropping it. The envelope is
/// deleted, not flagged.
#[utoipa::path(delete, path = "/v1/documents/{id}/envelopes/{recipient}", tag = "shares",
    params(("id" = inline(Id), Path, description = "document id"),
           ("recipient" = inline(Id), Path, description = "recipient account id")),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, recipient)): ApiPath<(Id, Id)>,
) -> AppResult<StatusCode> {
    let me = caller.account.id;
    match access(&state, me, id).await? {
        (doc, Access::Owner(_)) => {
            if recipient == doc.owner {
                return Err(AppError::Conflict(
                    "the owner's own envelope cannot be revoked".into(),
                ));
            }
        }
        (_, Access::Recipient(_)) if recipient == me => {}
        (_, Access::Recipient(_)) => return Err(AppError::Forbidden),
    }
    if !state.records.delete_envelope(id, recipient).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(doc = %id, %recipient, "envelope revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Documents shared with the caller, each with the caller's envelope and the owner's
/// handle.
#[utoipa::path(get, path = "/v1/shared", tag = "shares",
    responses((status = 200, body = [DocumentView]), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn shared_with_me(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<DocumentView>>> {
    let me = caller.account.id;
    let ids = state.records.shared_with(me).await?;
    let mut views = Vec::with_capacity(ids.len());
    for id in ids {
        match access(&state, me, id).await {
            Ok((doc, access)) => {
                let mut view = DocumentView::new(&doc, access.envelope());
                view.owner_handle = state.records.account(doc.owner).await?.map(|a| a.handle);
                views.push(view);
            }
            Err(AppError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Json(views))
}

/// Creates a link to a committed document (owner only).
#[utoipa::path(post, path = "/v1/documents/{id}/links", tag = "links",
    params(("id" = inline(Id), Path, description = "document id")),
    request_body = CreateLink,
    responses((status = 201, body = LinkView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create_link(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<CreateLink>,
) -> AppResult<(StatusCode, Json<LinkView>)> {
    owned(&state, caller.account.id, id).await?;
    let envelope = decode_b64("envelope", &body.envelope)?;
    check_envelope(&envelope)?;
    let now = state.now();
    check_expiry(body.expires_at, now)?;
    if body.max_downloads == Some(0) {
        return Err(AppError::Unprocessable(
            "max_downloads must be at least 1".into(),
        ));
    }
    let link = Link {
        id: Id::generate()?,
        doc: id,
        envelope,
        created_at: now,
        expires_at: body.expires_at,
        max_downloads: body.max_downloads,
        downloads: 0,
        last_opened_at: None,
        grants: Vec::new(),
    };
    let view = LinkView::from(&link);
    // Refused in the same step if the document is not committed or was deleted.
    state.records.put_link(&link).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Lists a document's links (owner only).
#[utoipa::path(get, path = "/v1/documents/{id}/links", tag = "links",
    params(("id" = inline(Id), Path, description = "document id")),
    responses((status = 200, body = [LinkView]), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_links(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<Vec<LinkView>>> {
    owned(&state, caller.account.id, id).await?;
    let links = state.records.links_of(id).await?;
    Ok(Json(links.iter().map(LinkView::from).collect()))
}

/// Deletes a link (owner of its document only).
#[utoipa::path(delete, path = "/v1/links/{id}", tag = "links",
    params(("id" = inline(Id), Path, description = "link id")),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete_link(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    let link = state.records.link(id).await?.ok_or(AppError::NotFound)?;
    owned(&state, caller.account.id, link.doc).await?;
    state.records.delete_link(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stored digest of a visitor's grant id; `None` if it is not one.
fn grant_id_digest(text: &str) -> Option<Digest> {
    let raw = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    if raw.len() != LINK_GRANT_ID_BYTES {
        return None;
    }
    let mut h = Sha256::new();
    h.update(LINK_GRANT_ID_LABEL);
    h.update(&raw);
    Some(Digest(h.finalize().into()))
}

/// Shows a link, anonymously, without counting: the envelope and sealed metadata, so that
/// the visitor's page checks its key before asking for a grant. 410 once expired or used
/// up, unless `?grant=` names a grant this link counted less than the re-use window ago.
#[utoipa::path(get, path = "/v1/links/{id}", tag = "links",
    description = "Shows a link, anonymously, without counting anything: the envelope, the sealed metadata, the size, the expiry and the openings left. The page checks that the key in its URL opens the envelope, then asks `POST /v1/links/{id}/grants`, which counts. 410 `/problems/gone` once the link is expired or used up, except for `?grant=` naming a grant id the link counted less than ten minutes ago (a reload); 429 past the per-address budget of link requests.",
    params(("id" = inline(Id), Path, description = "link id"), OpenLinkQuery),
    responses((status = 200, body = OpenedLink), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn open_link(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<OpenLinkQuery>,
) -> AppResult<Json<OpenedLink>> {
    // Link ids are unguessable; the budget still keeps one address from walking them.
    throttle(&state, &ip).await?;
    let now = state.now();
    let link = state.records.link(id).await?.ok_or(AppError::NotFound)?;
    let expired = link.expires_at.is_some_and(|t| now >= t);
    let used_up = link.max_downloads.is_some_and(|m| link.downloads >= m);
    let reloading = query
        .grant
        .as_deref()
        .and_then(grant_id_digest)
        .is_some_and(|g| link.recent_grant(&g, now).is_some());
    if expired || (used_up && !reloading) {
        return Err(AppError::Gone);
    }
    let doc = state
        .records
        .document(link.doc)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(OpenedLink {
        size: doc.size,
        metadata: encode_b64(&doc.metadata),
        envelope: encode_b64(&link.envelope),
        expires_at: link.expires_at,
        downloads_left: downloads_left(&link),
    }))
}

fn downloads_left(link: &Link) -> Option<u32> {
    link.max_downloads.map(|m| m.saturating_sub(link.downloads))
}

/// Hands out a download grant for a link, anonymously: counts one opening, unless the
/// same grant id was counted less than [`LINK_REUSE_SECONDS`](crate::store::LINK_REUSE_SECONDS) ago (see the module docs).
#[utoipa::path(post, path = "/v1/links/{id}/grants", tag = "links",
    description = "Asks a link for a download grant, anonymously, after the page has checked its key against the envelope of `GET /v1/links/{id}`. `grant` is a random id the page chose (16 bytes, base64url) and keeps: the first request with it counts one opening against `max_downloads`; asking again with the same id within ten minutes (a reload, or a retry after a lost answer) returns the same grant with `counted: false`, even if that opening used the link up. After ten minutes the same id counts a new opening. The `download_token` serves the payload for one hour after it was counted, never past the link's expiry. 410 `/problems/gone` once the link is expired or used up; 422 for a malformed grant id; 429 past the per-address budget of link requests.",
    params(("id" = inline(Id), Path, description = "link id")),
    request_body = AskGrant,
    responses((status = 200, body = LinkGrantView), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn grant_link(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<AskGrant>,
) -> AppResult<Json<LinkGrantView>> {
    throttle(&state, &ip).await?;
    let grant = grant_id_digest(&body.grant).ok_or_else(|| {
        AppError::Unprocessable("grant must be 16 random bytes, base64url".into())
    })?;
    let now = state.now();
    // Counted, remembered and durable in one step: a crash cannot give a limit of 1 a
    // second opening, and concurrent requests cannot both take the last one.
    let (link, granted) = match state.records.grant_link(id, grant, now).await? {
        None => return Err(AppError::NotFound),
        Some(LinkOpen::Exhausted) => return Err(AppError::Gone),
        Some(LinkOpen::Opened(link, granted)) => (link, granted),
    };
    let expires = granted
        .issued_at
        .saturating_add(LINK_GRANT_SECONDS)
        .min(link.expires_at.unwrap_or(u64::MAX));
    if granted.counted {
        tracing::info!(link = %id, "link opening counted");
    }
    Ok(Json(LinkGrantView {
        download_token: issue_grant(&state, link.id, expires)?.into(),
        download_expires_at: expires,
        counted: granted.counted,
        downloads_left: downloads_left(&link),
    }))
}

/// Streams the payload behind a link, anonymously, with Range. The download was counted
/// when its grant was handed out: this request needs that grant's `download_token` as
/// `?grant=`, which serves the payload, Range continuations of an interrupted download
/// included, until it expires ([`LINK_GRANT_SECONDS`] after the grant was counted, never
/// past the link's expiry), even if that grant used the link up. Without a valid token:
/// 410 once the link is expired or used up, 409 while it can still be granted.
#[utoipa::path(get, path = "/v1/links/{id}/payload", tag = "links",
    description = "Streams the payload behind a link, anonymously, with Range. Downloads are counted when a grant is handed out (`POST /v1/links/{id}/grants`), not here: pass that grant's `download_token` as `grant`. A token serves its download, including Range requests that resume an interrupted one, for one hour after the grant was counted and never past the link's expiry, even when that grant used the link up. Without a valid token the payload is refused with 410 `/problems/gone` once the link is expired or its download count is used up, and with 409 while the link can still be granted.",
    params(("id" = inline(Id), Path, description = "link id"), LinkPayloadQuery,
        ("Range" = Option<String>, Header, nullable = false, description = "One byte range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix`: answered with 206; past the end, 416. Any other value (another unit, several ranges, bad syntax) is ignored and the whole payload sent (RFC 9110 §14.2).")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = inline(crate::openapi::Binary),
            headers(("Accept-Ranges" = String, description = "`bytes`"))),
        (status = 206, content_type = "application/octet-stream", body = inline(crate::openapi::Binary),
            headers(("Accept-Ranges" = String, description = "`bytes`"),
                    ("Content-Range" = String, description = "`bytes first-last/size`"))),
        (status = 416, body = Problem, content_type = "application/problem+json",
            headers(("Content-Range" = String, description = "`bytes */size`"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn link_payload(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<LinkPayloadQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let link = state.records.link(id).await?.ok_or(AppError::NotFound)?;
    let doc = state
        .records
        .document(link.doc)
        .await?
        .ok_or(AppError::NotFound)?;
    let now = state.now();
    if link.expires_at.is_some_and(|t| now >= t) {
        return Err(AppError::Gone);
    }
    let granted = match query.grant.as_deref() {
        Some(token) => check_grant(&state, id, token, now)?,
        None => false,
    };
    if !granted {
        if link.max_downloads.is_some_and(|m| link.downloads >= m) {
            return Err(AppError::Gone);
        }
        return Err(AppError::Conflict(
            "ask POST /v1/links/{id}/grants first and pass its download_token as ?grant=".into(),
        ));
    }
    payload_response(&state, &doc, &headers).await
}
