//! Documents: create, resumable upload, commit, list, download with Range, delete.
//!
//! Upload protocol (resumable): `POST /v1/documents` declares the payload size and gives
//! the sealed metadata and the owner's envelope; then `PATCH …/payload?offset=N` streams
//! bytes from `N`, which must be the stored length (`GET …/upload` tells it after a broken
//! connection); `POST …/commit` makes the document visible once every byte is there.
//! Every acknowledged write is flushed to disk before the response.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::BytesMut;
use coffre_core::format::stream::{ENCRYPTED_CHUNK_SIZE, PAYLOAD_NONCE_BYTES, TAG_BYTES};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{check_envelope, decode_b64, encode_b64, ApiJson, ApiPath, ApiQuery};
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Document, EnvelopeRecord, Id, PIECE_BYTES};

/// Time between two checkpoints of a long upload (file synced, stored length recorded): a
/// crash mid-request loses at most the last seconds of the unacknowledged upload, and the
/// client resumes from the last checkpoint. By time, not bytes: a slow phone upload still
/// checkpoints often, a fast one is not slowed by a sync every few MiB (a sync every
/// 16 MiB halved loopback upload speed).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);
use crate::AppState;

/// Body of `POST /v1/documents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDocument {
    /// Sealed metadata (name, type, category), base64.
    pub metadata: String,
    /// Payload size in bytes (ciphertext, age STREAM).
    pub size: u64,
    /// The owner's envelope (single-X25519-stanza age header), base64.
    pub envelope: String,
}

/// A document as its owner or a recipient sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    /// Identifier.
    pub id: String,
    /// Owner account id.
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
    pub metadata: String,
    /// The caller's envelope, base64.
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

/// Upload progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadStatus {
    /// Payload bytes durably stored; the next upload starts here.
    pub stored: u64,
    /// Declared payload size.
    pub size: u64,
    /// Whether the document is committed.
    pub committed: bool,
}

/// Query of `PATCH …/payload`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OffsetQuery {
    /// Where this body starts in the payload; must equal the stored length.
    pub offset: u64,
}

/// Body chunks shorter than this are copied together before a piece is written; longer
/// ones are written as they came (see [`upload`]).
const SMALL_CHUNK_BYTES: usize = 16 * 1024;

/// How long an upload body may stay silent before the server treats the connection as
/// broken, keeps what arrived and releases the document for a resumed upload.
pub const UPLOAD_IDLE_SECONDS: u64 = 30;

/// Serialises upload requests per document. A client whose connection broke resumes
/// with a new request while the server may still be storing the tail of the old one;
/// waiting for it makes `GET …/upload` report the true offset, and makes the resumed
/// request start where the old one really ended.
#[derive(Default)]
pub struct UploadLocks {
    locks: std::sync::Mutex<std::collections::HashMap<Id, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while an upload request (or a status read, or a commit) runs.
pub struct UploadGuard {
    locks: Arc<UploadLocks>,
    id: Id,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl UploadLocks {
    /// Waits for the document's in-flight upload request, if any, then holds the lock.
    pub async fn lock(self: &Arc<Self>, id: Id) -> AppResult<UploadGuard> {
        let mutex = {
            let mut map = self
                .locks
                .lock()
                .map_err(|_| AppError::Internal("upload locks poisoned".into()))?;
            Arc::clone(map.entry(id).or_default())
        };
        let guard = mutex.lock_owned().await;
        Ok(UploadGuard {
            locks: Arc::clone(self),
            id,
            guard: Some(guard),
        })
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Forget the mutex once nobody holds or waits for it, so the map stays small.
        if let Ok(mut map) = self.locks.locks.lock() {
            if map.get(&self.id).is_some_and(|m| Arc::strong_count(m) == 1) {
                map.remove(&self.id);
            }
        }
    }
}

/// Whether `size` bytes can be an age STREAM payload: a 16-byte nonce, then full chunks
/// of 64 KiB + 16, then a last chunk of 17..=64 KiB + 16 bytes — or exactly 16 (an empty
/// chunk) when the whole plaintext is empty (c2sp.org/age, "Payload"). Chunks are not
/// delimited, so the length is all the structure there is to check without the key.
pub fn is_stream_length(size: u64) -> bool {
    let chunk = ENCRYPTED_CHUNK_SIZE as u64;
    let Some(body) = size.checked_sub(PAYLOAD_NONCE_BYTES as u64) else {
        return false;
    };
    let (full, rest) = (body / chunk, body % chunk);
    match rest {
        0 => full >= 1,
        r if r == TAG_BYTES as u64 => full == 0,
        r => r > TAG_BYTES as u64,
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
    let (doc, envelope) =
        state.record(move |s| Ok((s.document(doc_id)?, s.envelope(doc_id, caller)?)))?;
    let doc = doc.ok_or(AppError::NotFound)?;
    if doc.owner == caller {
        return Ok((doc, Access::Owner(envelope)));
    }
    if !doc.committed {
        return Err(AppError::NotFound);
    }
    let envelope = envelope.ok_or(AppError::NotFound)?;
    if envelope.expires_at.is_some_and(|t| state.now() >= t) {
        state.record(move |s| s.delete_envelope(doc_id, caller))?;
        state.flush().await?;
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
    responses((status = 201, body = DocumentView), (status = "4XX", body = Problem)),
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
    let quota = state.limits.quota_bytes;
    // One create at a time per account, so that two concurrent ones cannot both pass the
    // quota check (account and document ids never collide: both are random 16 bytes).
    let _quota_guard = state.uploads.lock(owner).await?;
    let (doc, record) = state.record(move |s| {
        let used: u64 = s.documents_of(owner)?.iter().map(|d| d.size).sum();
        if used.saturating_add(doc.size) > quota {
            return Ok(Err(AppError::QuotaExceeded));
        }
        s.create_document(&doc, &record)?;
        Ok(Ok((doc, record)))
    })??;
    state.flush().await?;
    tracing::info!(doc = %doc.id, size = doc.size, "document created");
    Ok((
        StatusCode::CREATED,
        Json(DocumentView::new(&doc, Some(&record))),
    ))
}

/// Lists the caller's own documents, committed or still uploading.
#[utoipa::path(get, path = "/v1/documents", tag = "documents",
    responses((status = 200, body = [DocumentView]), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn list_own(
    State(state): State<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<DocumentView>>> {
    let owner = caller.account.id;
    let views = state.record(move |s| {
        s.documents_of(owner)?
            .iter()
            .map(|d| Ok(DocumentView::new(d, s.envelope(d.id, owner)?.as_ref())))
            .collect()
    })?;
    Ok(Json(views))
}

/// One document, for its owner or a current recipient.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = DocumentView), (status = "4XX", body = Problem)),
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
    params(("id" = String, Path, description = "document id")),
    responses((status = 204), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    owned(&state, caller.account.id, id).await?;
    // An upload in flight could write its next piece after the delete and leave bytes on
    // disk until the sweep: wait for it, as commit does.
    let _guard = state.uploads.lock(id).await?;
    state.blocking(move |s| s.delete_document(id)).await?;
    state.flush().await?;
    tracing::info!(doc = %id, "document deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Upload progress (owner only): where to resume.
#[utoipa::path(get, path = "/v1/documents/{id}/upload", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = UploadStatus), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn upload_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<UploadStatus>> {
    owned(&state, caller.account.id, id).await?;
    // Wait for an in-flight upload so the offset is final.
    let _guard = state.uploads.lock(id).await?;
    let doc = owned(&state, caller.account.id, id).await?;
    Ok(Json(UploadStatus {
        stored: doc.stored,
        size: doc.size,
        committed: doc.committed,
    }))
}

/// Streams payload bytes starting at `offset` (owner only). Bytes are stored in pieces
/// of at most 1 MiB as they arrive, synced in the background as the upload goes on and
/// once more before the answer; if the connection breaks, what arrived is kept and
/// `GET …/upload` says where to resume.
#[utoipa::path(patch, path = "/v1/documents/{id}/payload", tag = "documents",
    params(("id" = String, Path, description = "document id"), OffsetQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = UploadStatus), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<OffsetQuery>,
    body: Body,
) -> AppResult<Json<UploadStatus>> {
    owned(&state, caller.account.id, id).await?;
    let _guard = state.uploads.lock(id).await?;
    let doc = owned(&state, caller.account.id, id).await?;
    if doc.committed {
        return Err(AppError::Conflict("document already committed".into()));
    }
    if query.offset != doc.stored {
        return Err(AppError::Conflict(format!(
            "upload offset is {}, not {}",
            doc.stored, query.offset
        )));
    }
    let remaining = doc.size - doc.stored;
    let mut stream = body.into_data_stream();
    // A piece is the body's own chunks, gathered up to PIECE_BYTES and written with one
    // vectored write: no copy into a buffer of the server's own. Small chunks are copied
    // together (`small`), so that a client sending tiny ones cannot make a piece a
    // million slices.
    let mut piece: Vec<Bytes> = Vec::new();
    let mut small = BytesMut::new();
    let mut piece_len = 0usize;
    // `recorded`: the stored length in the record; `offset`: the end of what was written.
    let mut recorded = query.offset;
    let mut offset = query.offset;
    let mut received: u64 = 0;
    let mut failure = None;
    let mut last_checkpoint = tokio::time::Instant::now();
    let mut in_flight: Option<tokio::task::JoinHandle<AppResult<u64>>> = None;
    let mut syncing: Option<tokio::task::JoinHandle<AppResult<()>>> = None;
    let idle = Duration::from_secs(UPLOAD_IDLE_SECONDS);
    loop {
        let next = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                failure = Some(AppError::BadRequest("the request body stalled".into()));
                break;
            }
        };
        let mut chunk = match next {
            Ok(chunk) => chunk,
            Err(_) => {
                failure = Some(AppError::BadRequest(
                    "the request body was interrupted".into(),
                ));
                break;
            }
        };
        received += chunk.len() as u64;
        if received > remaining {
            failure = Some(AppError::PayloadTooLarge);
            break;
        }
        while !chunk.is_empty() {
            let take = (PIECE_BYTES - piece_len).min(chunk.len());
            let part = chunk.split_to(take);
            if part.len() < SMALL_CHUNK_BYTES {
                small.extend_from_slice(&part);
            } else {
                if !small.is_empty() {
                    piece.push(small.split().freeze());
                }
                piece.push(part);
            }
            piece_len += take;
            if piece_len == PIECE_BYTES {
                if !small.is_empty() {
                    piece.push(small.split().freeze());
                }
                // The disk write of this piece runs while the next one arrives (receiving
                // and writing in turn held uploads to half the disk's speed); at most one
                // piece is in flight, so memory stays at two pieces.
                settle(&mut in_flight).await?;
                // Sync ahead: what is written goes to the disk in the background while the
                // next pieces arrive, so that the sync before the acknowledgement finds
                // little left (100 MB: 30 ms → 5 ms). One sync at a time; it counts
                // nothing: only a checkpoint moves the stored length.
                if offset > query.offset && syncing.as_ref().is_none_or(|s| s.is_finished()) {
                    settle(&mut syncing).await?;
                    let sync_state = state.clone();
                    syncing = Some(tokio::spawn(async move {
                        sync_state.blocking(move |s| s.sync_payload(id)).await
                    }));
                }
                let (start, write_state) = (offset, state.clone());
                let parts = std::mem::take(&mut piece);
                offset += piece_len as u64;
                piece_len = 0;
                in_flight = Some(tokio::spawn(async move {
                    write(&write_state, id, start, parts).await
                }));
                if last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
                    settle(&mut in_flight).await?;
                    recorded = checkpoint(&state, id, recorded, offset).await?;
                    last_checkpoint = tokio::time::Instant::now();
                }
            }
        }
    }
    settle(&mut in_flight).await?;
    settle(&mut syncing).await?;
    if !small.is_empty() {
        piece.push(small.freeze());
    }
    // What arrived before an interruption is a valid prefix: keep it so the client
    // resumes after it. Bytes past the declared size are not.
    if !piece.is_empty() && !matches!(failure, Some(AppError::PayloadTooLarge)) {
        offset = write(&state, id, offset, piece).await?;
    }
    let stored = checkpoint(&state, id, recorded, offset).await?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    Ok(Json(UploadStatus {
        stored,
        size: doc.size,
        committed: false,
    }))
}

/// Waits for the piece write or sync in flight, if any, and reports its failure.
async fn settle<T>(in_flight: &mut Option<tokio::task::JoinHandle<AppResult<T>>>) -> AppResult<()> {
    if let Some(task) = in_flight.take() {
        task.await
            .map_err(|e| AppError::Internal(e.to_string()))??;
    }
    Ok(())
}

/// Writes one piece (the body's chunks, in order) at `offset`; returns the end of the
/// written bytes.
async fn write(state: &AppState, id: Id, offset: u64, piece: Vec<Bytes>) -> AppResult<u64> {
    let end = offset + piece.iter().map(|b| b.len() as u64).sum::<u64>();
    state
        .blocking(move |s| {
            let parts: Vec<&[u8]> = piece.iter().map(|b| &b[..]).collect();
            s.write_payload(id, offset, &parts)
        })
        .await?;
    Ok(end)
}

/// Makes everything written so far durable and counted (file, then record, then sled).
async fn checkpoint(state: &AppState, id: Id, recorded: u64, written: u64) -> AppResult<u64> {
    let stored = state
        .blocking(move |s| s.advance_payload(id, recorded, written))
        .await?;
    state.flush().await?;
    Ok(stored)
}

/// Makes a fully uploaded document visible (owner only).
#[utoipa::path(post, path = "/v1/documents/{id}/commit", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = DocumentView), (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<DocumentView>> {
    owned(&state, caller.account.id, id).await?;
    let _guard = state.uploads.lock(id).await?;
    let now = state.now();
    let owner = caller.account.id;
    let (doc, envelope) =
        state.record(move |s| Ok((s.commit_document(id, now)?, s.envelope(id, owner)?)))?;
    state.flush().await?;
    tracing::info!(doc = %id, "document committed");
    Ok(Json(DocumentView::new(&doc, envelope.as_ref())))
}

/// Streams the payload (owner or current recipient), honouring a single `Range`.
#[utoipa::path(get, path = "/v1/documents/{id}/payload", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, content_type = "application/octet-stream", body = Vec<u8>),
        (status = "4XX", body = Problem)),
    security(("bearer" = [])))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let (doc, _) = access(&state, caller.account.id, id).await?;
    if !doc.committed {
        return Err(AppError::Conflict("the upload is not committed".into()));
    }
    payload_response(state, &doc, &headers)
}

/// A byte range `start..end` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Parses a `Range` header against a payload of `size` bytes. `Ok(None)`: serve it all
/// (no header, another unit, several ranges or bad syntax, which RFC 9110 §14.2 lets a
/// server ignore). `Err`: a well-formed range outside the payload (416).
pub fn parse_range(value: Option<&HeaderValue>, size: u64) -> AppResult<Option<ByteRange>> {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = AppError::RangeNotSatisfiable { size };
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        // bytes=a-b
        (Ok(a), Ok(b)) if a <= b => {
            if a >= size {
                return Err(unsatisfiable);
            }
            ByteRange {
                start: a,
                end: b.saturating_add(1).min(size),
            }
        }
        // bytes=a-
        (Ok(a), Err(_)) if last.is_empty() => {
            if a >= size {
                return Err(unsatisfiable);
            }
            ByteRange {
                start: a,
                end: size,
            }
        }
        // bytes=-n: the last n bytes
        (Err(_), Ok(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(range))
}

/// The streamed response for a committed document's payload.
pub fn payload_response(
    state: AppState,
    doc: &Document,
    headers: &HeaderMap,
) -> AppResult<Response> {
    let range = parse_range(headers.get(header::RANGE), doc.size)?;
    let (status, span) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r),
        None => (
            StatusCode::OK,
            ByteRange {
                start: 0,
                end: doc.size,
            },
        ),
    };
    let body = Body::from_stream(piece_stream(state, doc.id, span));
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(span.end - span.start),
    );
    if range.is_some() {
        let value = format!("bytes {}-{}/{}", span.start, span.end - 1, doc.size);
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// Reads `span` of a payload one stored piece at a time: at most one piece in memory.
fn piece_stream(
    state: AppState,
    doc: Id,
    span: ByteRange,
) -> impl futures_util::Stream<Item = Result<Bytes, AppError>> + Send {
    futures_util::stream::try_unfold((state, span.start), move |(state, pos)| async move {
        if pos >= span.end {
            return Ok(None);
        }
        let (start, bytes) = state
            .blocking(move |s| s.piece_at(doc, pos))
            .await?
            .ok_or_else(|| AppError::Internal(format!("payload of {doc} has no piece at {pos}")))?;
        let from = (pos - start) as usize;
        let to = bytes.len().min((span.end - start) as usize);
        let chunk = Bytes::from(bytes).slice(from..to);
        Ok(Some((chunk, (state, start + to as u64))))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stream_lengths() {
        let c = ENCRYPTED_CHUNK_SIZE as u64;
        // empty plaintext: nonce + one empty final chunk (tag only)
        assert!(is_stream_length(16 + 16));
        assert!(is_stream_length(16 + 17));
        assert!(is_stream_length(16 + c));
        assert!(is_stream_length(16 + c + 17));
        assert!(is_stream_length(16 + 3 * c));
        for bad in [0, 15, 16, 16 + 15, 16 + c + 16, 16 + c + 1, 16 + 2 * c + 5] {
            assert!(!is_stream_length(bad), "{bad}");
        }
    }

    fn range(v: &str, size: u64) -> AppResult<Option<ByteRange>> {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), size)
    }

    #[test]
    fn ranges() {
        let r = |start, end| Some(ByteRange { start, end });
        assert_eq!(range("bytes=0-9", 100).unwrap(), r(0, 10));
        assert_eq!(range("bytes=90-200", 100).unwrap(), r(90, 100));
        assert_eq!(range("bytes=10-", 100).unwrap(), r(10, 100));
        assert_eq!(range("bytes=-10", 100).unwrap(), r(90, 100));
        assert_eq!(range("bytes=-1000", 100).unwrap(), r(0, 100));
        assert_eq!(range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(range("items=0-1", 100).unwrap(), None);
        assert_eq!(range("bytes=5-1", 100).unwrap(), None);
        assert_eq!(parse_range(None, 100).unwrap(), None);
        assert!(matches!(
            range("bytes=100-", 100),
            Err(AppError::RangeNotSatisfiable { size: 100 })
        ));
        assert!(range("bytes=-0", 100).is_err());
    }
}
