//! The resumable upload: status, the streamed `PATCH …/payload`, and the commit.
//!
//! One request at a time writes a document's payload: it holds an upload lease in the
//! records ([`UploadLeaseGuard`]), renewed while it runs, so that a client resuming
//! after a broken connection — on this server process or another — waits for the old
//! request to finish storing its tail, and `GET …/upload` reports the true offset. A
//! process that dies mid-upload leaves a lease that expires after
//! [`UPLOAD_LEASE_SECONDS`].

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::Json;
use bytes::BytesMut;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{owned, DocumentView};
use crate::api::{ApiPath, ApiQuery};
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Id, PIECE_BYTES};
use crate::AppState;

/// Time between two checkpoints of a long upload (file synced, stored length recorded): a
/// crash mid-request loses at most the last seconds of the unacknowledged upload, and the
/// client resumes from the last checkpoint. By time, not bytes: a slow phone upload still
/// checkpoints often, a fast one is not slowed by a sync every few MiB (a sync every
/// 16 MiB halved loopback upload speed).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);
/// Body chunks shorter than this are copied together before a piece is written; longer
/// ones are written as they came (see [`upload`]).
const SMALL_CHUNK_BYTES: usize = 16 * 1024;

/// How long an upload body may stay silent before the server treats the connection as
/// broken, keeps what arrived and releases the document for a resumed upload.
pub const UPLOAD_IDLE_SECONDS: u64 = 30;

/// Lifetime of an upload lease unless renewed; a process that died holding one blocks
/// the document's upload at most this long.
pub const UPLOAD_LEASE_SECONDS: u64 = 15;

/// How often a running request renews its lease.
const LEASE_RENEW_EVERY: Duration = Duration::from_secs(5);

/// How long a request waits for another's lease: the other request ends within
/// [`UPLOAD_IDLE_SECONDS`] of its last byte, or its lease expires.
const LEASE_WAIT: Duration = Duration::from_secs(UPLOAD_IDLE_SECONDS + 5);

/// The upload lease of one request on one document, renewed in the background while
/// held. Released by [`UploadLeaseGuard::release`], or, on an early return, when dropped.
pub struct UploadLeaseGuard {
    state: AppState,
    doc: Id,
    holder: Id,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl UploadLeaseGuard {
    /// Waits (polling, with backoff) for `doc`'s lease, then holds it; 409 `upload-busy`
    /// (with `Retry-After`) if another request still holds it after [`LEASE_WAIT`].
    pub async fn acquire(state: &AppState, doc: Id) -> AppResult<Self> {
        let holder = Id::generate()?;
        let deadline = tokio::time::Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(5);
        while !state
            .records
            .acquire_upload(doc, holder, state.now(), UPLOAD_LEASE_SECONDS)
            .await?
        {
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::UploadBusy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
        let renew_state = state.clone();
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_RENEW_EVERY).await;
                let now = renew_state.now();
                match renew_state
                    .records
                    .acquire_upload(doc, holder, now, UPLOAD_LEASE_SECONDS)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(%doc, "upload lease lost to another request"),
                    Err(e) => tracing::warn!(%doc, error = %e, "upload lease not renewed"),
                }
            }
        });
        Ok(Self {
            state: state.clone(),
            doc,
            holder,
            renewer: Some(renewer),
        })
    }

    /// Gives the lease back now.
    pub async fn release(mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if let Err(e) = self
            .state
            .records
            .release_upload(self.doc, self.holder)
            .await
        {
            tracing::warn!(doc = %self.doc, error = %e, "upload lease not released");
        }
    }
}

impl Drop for UploadLeaseGuard {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            let (state, doc, holder) = (self.state.clone(), self.doc, self.holder);
            tokio::spawn(async move {
                if let Err(e) = state.records.release_upload(doc, holder).await {
                    tracing::warn!(%doc, error = %e, "upload lease not released");
                }
            });
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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OffsetQuery {
    /// Where this body starts in the payload; must equal the stored length.
    pub offset: u64,
}

/// Upload progress (owner only): where to resume.
#[utoipa::path(get, path = "/v1/documents/{id}/upload", tag = "documents",
    params(("id" = inline(Id), Path, description = "document id")),
    responses((status = 200, body = UploadStatus), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn upload_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<UploadStatus>> {
    owned(&state, caller.account.id, id).await?;
    // Wait for an in-flight upload so the offset is final.
    let lease = UploadLeaseGuard::acquire(&state, id).await?;
    let doc = owned(&state, caller.account.id, id).await?;
    lease.release().await;
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
    params(("id" = inline(Id), Path, description = "document id"), OffsetQuery),
    request_body(content = inline(crate::openapi::Binary), content_type = "application/octet-stream"),
    responses((status = 200, body = UploadStatus), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
    ApiQuery(query): ApiQuery<OffsetQuery>,
    body: Body,
) -> AppResult<Json<UploadStatus>> {
    owned(&state, caller.account.id, id).await?;
    // The receiving runs as a task of its own: when the client's connection breaks, the
    // server drops this handler, but what arrived must still be written and counted (with
    // a networked store, a checkpoint spans several awaits that a drop would cut short).
    let owner = caller.account.id;
    tokio::spawn(receive(state, owner, id, query.offset, body))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
}

/// Receives an upload body into `id`'s payload from `offset` (see [`upload`]).
async fn receive(
    state: AppState,
    owner: Id,
    id: Id,
    offset: u64,
    body: Body,
) -> AppResult<Json<UploadStatus>> {
    let query = OffsetQuery { offset };
    let lease = UploadLeaseGuard::acquire(&state, id).await?;
    let doc = owned(&state, owner, id).await?;
    if doc.committed {
        return Err(AppError::AlreadyCommitted);
    }
    if query.offset != doc.stored {
        return Err(AppError::OffsetMismatch { stored: doc.stored });
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
                        Ok(sync_state.payloads.sync(id).await?)
                    }));
                }
                let (start, write_state) = (offset, state.clone());
                let parts = std::mem::take(&mut piece);
                offset += piece_len as u64;
                piece_len = 0;
                in_flight = Some(tokio::spawn(async move {
                    write(&write_state, id, recorded, start, parts).await
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
        offset = write(&state, id, recorded, offset, piece).await?;
    }
    let stored = checkpoint(&state, id, recorded, offset).await?;
    lease.release().await;
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

/// Writes one piece (the body's chunks, in order) at `offset`, the stored length being
/// `recorded`; returns the end of the written bytes.
async fn write(
    state: &AppState,
    id: Id,
    recorded: u64,
    offset: u64,
    piece: Vec<Bytes>,
) -> AppResult<u64> {
    let end = offset + piece.iter().map(|b| b.len() as u64).sum::<u64>();
    state.payloads.append(id, recorded, offset, piece).await?;
    Ok(end)
}

/// Makes everything written so far durable, then counts it (payload first, then the
/// record), so the record never claims bytes the payload store lacks.
async fn checkpoint(state: &AppState, id: Id, recorded: u64, written: u64) -> AppResult<u64> {
    if written == recorded {
        return Ok(recorded);
    }
    state.payloads.sync(id).await?;
    Ok(state.records.advance_upload(id, recorded, written).await?)
}

/// Makes a fully uploaded document visible (owner only).
#[utoipa::path(post, path = "/v1/documents/{id}/commit", tag = "documents",
    params(("id" = inline(Id), Path, description = "document id")),
    responses((status = 200, body = DocumentView), (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<Json<DocumentView>> {
    owned(&state, caller.account.id, id).await?;
    let lease = UploadLeaseGuard::acquire(&state, id).await?;
    let doc = state.records.commit_document(id, state.now()).await;
    lease.release().await;
    let doc = doc?;
    let envelope = state.records.envelope(id, caller.account.id).await?;
    tracing::info!(doc = %id, "document committed");
    Ok(Json(DocumentView::new(&doc, envelope.as_ref())))
}
