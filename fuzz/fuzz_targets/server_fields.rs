//! The server's parsers of single client fields outside JSON bodies: path ids, handles,
//! base64 text, `Range` headers, query strings (`?offset=`, `?grant=`) and sealed shares.
//! The first byte picks the parser. Properties: an id, a handle and base64 that parse
//! are written back as given (handles: once normalised, normalising again changes
//! nothing); a range is a non-empty slice of the payload.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run server_fields` from the repository root.
#![no_main]

use axum::extract::Query;
use axum::http::{HeaderValue, Uri};
use coffre_server::api::accounts::check_handle;
use coffre_server::api::documents::{parse_range, OffsetQuery};
use coffre_server::api::shares::LinkPayloadQuery;
use coffre_server::api::{decode_b64, encode_b64};
use coffre_server::fuzzing;
use libfuzzer_sys::fuzz_target;

fn query<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    let uri: Uri = format!("/v1/documents/x/payload?{text}").parse().ok()?;
    Query::<T>::try_from_uri(&uri).ok().map(|Query(t)| t)
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    if kind % 8 == 0 {
        let _ = fuzzing::check_sealed_share(rest);
        return;
    }
    if kind % 8 == 1 {
        // Eight bytes of payload size, then the header value.
        let Some((size, value)) = rest.split_first_chunk::<8>() else {
            return;
        };
        let size = u64::from_le_bytes(*size);
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        if let Ok(Some(range)) = parse_range(Some(&value), size) {
            assert!(
                range.start < range.end && range.end <= size,
                "{range:?} of {size}"
            );
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match kind % 8 {
        2 => {
            if let Ok(id) = fuzzing::parse_id(text) {
                assert_eq!(id.to_string(), text);
            }
        }
        3 => {
            if let Ok(handle) = check_handle(text) {
                assert_eq!(check_handle(&handle).ok().as_ref(), Some(&handle));
            }
        }
        4 => {
            if let Ok(bytes) = decode_b64("field", text) {
                assert_eq!(encode_b64(&bytes), text);
            }
        }
        5 => {
            if let Ok(digest) = fuzzing::digest_field(text) {
                assert_eq!(digest.len(), 32);
            }
        }
        6 => {
            let _ = query::<OffsetQuery>(text);
        }
        _ => {
            let _ = query::<LinkPayloadQuery>(text);
        }
    }
});
