//! Downloads: a committed payload streamed piece by piece, honouring a single `Range`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access;
use crate::api::ApiPath;
use crate::auth::Caller;
use crate::error::{AppError, AppResult, Problem};
use crate::store::{Document, Id};
use crate::AppState;

/// Streams the payload (owner or current recipient), honouring a single `Range`.
#[utoipa::path(get, path = "/v1/documents/{id}/payload", tag = "documents",
    params(("id" = inline(Id), Path, description = "document id"),
        ("Range" = Option<String>, Header, nullable = false, description = "One byte range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix`: answered with 206; past the end, 416. Any other value (another unit, several ranges, bad syntax) is ignored and the whole payload sent (RFC 9110 §14.2).")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = inline(crate::openapi::Binary),
            headers(("Accept-Ranges" = String, description = "`bytes`"))),
        (status = 206, content_type = "application/octet-stream", body = inline(crate::openapi::Binary),
            headers(("Accept-Ranges" = String, description = "`bytes`"),
                    ("Content-Range" = String, description = "`bytes first-last/size`"))),
        (status = 416, body = Problem, content_type = "application/problem+json",
            headers(("Content-Range" = String, description = "`bytes */size`"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Id>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let (doc, _) = access(&state, caller.account.id, id).await?;
    if !doc.committed {
        return Err(AppError::NotCommitted);
    }
    payload_response(&state, &doc, &headers).await
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
pub async fn payload_response(
    state: &AppState,
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
    // At most one piece in memory at a time; `span` lies within the committed size.
    let body = Body::from_stream(state.payloads.read(doc.id, span.start, span.end).await?);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
