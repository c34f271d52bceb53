//! Documents: create, list, read, delete, and who may do what ([`access`]); the
//! resumable upload and commit in [`upload`], downloads with Range in [`download`].
//!
//! Upload protocol (resumable): `POST /v1/documents` declares the payload size and gives
//! the sealed metadata and the owner's envelope; then `PATCH …/payload?offset=N` streams
//! bytes from `N`, which must be the stored length (`GET …/upload` tells it after a broken
//! connection, and a 409 `offset-mismatch` carries it as `stored`); `POST …/commit` makes
//! the document visible once every byte is there. Every acknowledged write is durable
//! before the response.

pub mod download;
pub mod upload;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use download::*;
pub use upload::*;

use super::{check_envelope, decode_b64, encode_b64, ApiJson, ApiPath};
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::{is_stream_length, Document, EnvelopeRecord, Id};
use crate::AppState;

/// The size limits a client checks before encrypting anything (`GET /v1/limits`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    /// Largest payload of one document (bytes of ciphertext, age STREAM).
    pub max_document_bytes: u64,
    /// Total payload bytes one account may own.
    pub quota_bytes: u64,
}

/// The size limits of this server, public: the web app shows the largest document on its
/// upload screen and refuses a bigger file before spending minutes encrypting it.
#[utoipa::path(get, path = "/v1/limits", tag = "documents",
    responses((status = 200, body = LimitsView)))]
pub async fn limits(State(state): State<AppState>) -> Json<LimitsView> {
    Json(LimitsView {
        max_document_bytes: state.limits.max_document_bytes,
        quota_bytes: state.limits.quota_bytes,
    })
}

/// Body of `POST /v1/documents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDocument {
    /// Sealed metadata (name, type, category), base64.
    #[schema(content_encoding = "base64")]
    pub metadata: String,
    /// Payload size in bytes (ciphertext, age STREAM).
    pub size: u64,
    /// The owner's envelope (single-X25519-stanza age header), base64.
    #[schema(content_encoding = "base64")]
    pub envelope: String,
}

/// A document as its owner or a recipient sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    /// Identifier.
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// Owner account id.
    #[schema(value_type = Id, inline)]
    pub owner: String,
    /// Payload size (bytes).
    pub size: u64,
    /// Payload bytes stored so far.
    pub stored: u64,
    /// Whether the upload is committed.
    pub committed: bool,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Commit time (unix seconds).
    pub committed_at: Option<u64>,
    /// Sealed metadata, base64.
    #[schema(content_encoding = "base64")]
    pub metadata: String,
    /// The caller's envelope, base64.
    #[schema(content_encoding = "base64")]
    pub envelope: Option<String>,
    /// When the caller's share expires (recipients only).
    pub expires_at: Option<u64>,
    /// The owner's handle (in "shared with me" lists, so a worker knows whose paper it
    /// is; the share graph is already in clear on the server).
    pub owner_handle: Option<String>,
}

impl DocumentView {
    /// The view of `doc` for the holder of `envelope`.
    pub fn new(doc: &Document, envelope: Option<&EnvelopeRecord>) -> Self {
        Self {
            id: doc.id.to_string(),
            owner: doc.owner.to_string(),
            size: doc.size,
            stored: doc.stored,
            committed: doc.committed,
            created_at: doc.created_at,
            committed_at: doc.committed_at,
            metadata: encode_b64(&doc.metadata),
            envelope: envelope.map(|e| encode_b64(&e.envelope)),
            expires_at: envelope.and_then(|e| e.expires_at),
            owner_handle: None,
        }
    }
}

/// Who is asking about a document.
pub enum Access {
    /// The owner.
    Owner(Option<EnvelopeRecord>),
    /// A recipient with a current, unexpired envelope.
    Recipient(EnvelopeRecord),
}

impl Access {
    /// The caller's envelope.
    pub fn envelope(&self) -> Option<&EnvelopeRecord> {
        match self {
            Self::Owner(e) => e.as_ref(),
            Self::Recipient(e) => Some(e),
        }
    }
}

/// Loads a document and decides the caller's access. Strangers, revoked recipients and
/// recipients whose share expired get `NotFound`, as if there were no document; an
/// expired envelope is purged on the way.
pub async fn access(state: &AppState, caller: Id, doc_id: Id) -> AppResult<(Document, Access)> {
    let doc = state
        .records
        .document(doc_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let envelope = state.records.envelope(doc_id, caller).await?;
    if doc.owner == caller {
        return Ok((doc, Access::Owner(envelope)));
    }
    if !doc.committed {
        return Err(AppError::NotFound);
    }
    let envelope = envelope.ok_or(AppError::NotFound)?;
    if envelope.expires_at.is_some_and(|t| state.now() >= t) {
        state.records.delete_envelope(doc_id, caller).await?;
        return Err(AppError::NotFound);
    }
    Ok((doc, Access::Recipient(envelope)))
}

/// Loads a document for an owner-only operation.
pub async fn owned(state: &AppState, caller: Id, doc_id: Id) -> AppResult<Document> {
    match access(state, caller, doc_id).await? {
        (doc, Access::Owner(_)) => Ok(doc),
        (_, Access::Recipient(_)) => Err(AppError::Forbidden),
    }
}

/// Creates a document (not yet visible) and stores the owner's envelope.
#[utoipa::path(post, path = "/v1/documents", tag = "documents",
    request_body = CreateDocument,
    responses((status = 201, body = DocumentView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateDocument>,
) -> AppResult<(StatusCode, Json<DocumentView>)> {
    let metadata = decode_b64("metadata", &body.metadata)?;
    if metadata.len() > state.limits.metadata_bytes {
        return Err(AppError::PayloadTooLarge);
    }
    if body.size > state.limits.max_document_bytes {
        return Err(AppError::PayloadTooLarge);
    }
    if !is_stream_length(body.size) {
        return Err(AppError::InvalidPayload(format!(
            "{} bytes cannot be an age STREAM payload",
            body.size
        )));
    }
    let envelope = decode_b64("envelope", &body.envelope)?;
    check_envelope(&envelope)?;
    let owner = caller.account.id;
    let now = state.now();
    let doc = Document {
        id: Id::generate()?,
        owner,
        metadata,
        size: body.size,
        stored: 0,
        committed: false,
        created_at: now,
        committed_at: None,
    };
    let record = EnvelopeRecord {
        envelope,
        granted_by: owner,
        created_at: now,
        expires_at: None,
    };
    // The quota check and the creation are one step of the store: two concurrent creates
    // cannot both fit under it.
    state
        .records
        .create_document(&doc, &record, state.limits.quota_bytes)
        .await?;
    if let Err(e) = state.payloads.begin(doc.id).await {
        // No upload can start without its payload: take the record back.
        state.records.delete_document(doc.id).await?;
        return Err(e.into());
    }
    tracing::info!(doc = %doc.id, size = doc.size, "document created");
    Ok((
        StatusCode::CREATED,
        Json(DocumentView::new(&doc, Some(&record))),
    ))
}

/// Lists the caller's own documents, committed or still uploading.
#[utoipa::path(get, path = "/v1/documents", tag = "documents",
    responses((status = 200, body = [DocumentView]), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list_own(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<DocumentView>>> {
    let owner = caller.account.id;
    let views = state
        .records
        .documents_with_envelopes(owner)
        .await?
        .iter()
        .map(|(d, envelope)| DocumentView::new(d, envelope.as_ref()))
        .collect();
    Ok(Json(views))
}

/// One document, for its owner or a current recipient.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents",
    params(("id" = inline(Id), Path, description = "document id")),
    responses((status = 200, body = DocumentView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<DocumentView>> {
    let (doc, access) = access(&state, caller.account.id, id).await?;
    Ok(Json(DocumentView::new(&doc, access.envelope())))
}

/// Deletes a document with its payload, envelopes and links (owner only).
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents",
    params(("id" = inline(Id), Path, description = "document id")),
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    owned(&state, caller.account.id, id).await?;
    // An upload in flight could write its next piece after the delete and leave bytes
    // until the sweep: wait for it, as commit does.
    let lease = UploadLeaseGuard::acquire(&state, id).await?;
    // First the records: from then on nothing refers to the payload, and no reader can
    // see a document with missing bytes. Then the bytes; a crash between the two leaves
    // an orphan that `audit` reports and the sweep removes.
    state.records.delete_document(id).await?;
    state.payloads.delete(id).await?;
    lease.release().await;
    tracing::info!(doc = %id, "document deleted");
    Ok(StatusCode::NO_CONTENT)
}
