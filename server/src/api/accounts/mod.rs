//! Accounts: registration, login, credentials and account care, one file each.
//!
//! The server never sees a passphrase (RFC 9807 through [`coffre_core::opaque`]). What
//! decides an answer — attempt counters, locks, logins between their two messages, the
//! per-address budget — is in the records ([`crate::store::Records`]), so that any server
//! process on the same store answers the same way.

mod care;
mod credentials;
mod login;
mod registration;

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use coffre_core::bundle::{BundleKind, KeyBundle};
use coffre_core::opaque::{self, KSF_V1};
use coffre_core::Recipient;
use serde::Serialize;
use utoipa::ToSchema;

pub use care::*;
pub use credentials::*;
pub use login::*;
pub use registration::*;

use super::budget::{self, Budget};
use super::decode_b64;
use crate::client::ClientAddr;
use crate::error::{AppError, AppResult};
use crate::store::{Account, Id, Role};
use crate::AppState;

/// Longest handle.
const HANDLE_MAX_CHARS: usize = 64;
/// Shortest handle.
const HANDLE_MIN_CHARS: usize = 3;

/// The client's address: the peer's, or behind a trusted proxy the forwarded one
/// ([`crate::client`]); absent when the server was started without connect info.
fn client_ip(parts: &Parts) -> Option<IpAddr> {
    if let Some(client) = parts.extensions.get::<ClientAddr>() {
        return Some(client.ip);
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Extractor for the client IP (absent when served without connect info), with the
/// budget class of the route it was extracted for.
pub struct ClientIp(pub Option<IpAddr>, pub Budget);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(parts.uri.path(), |uri| uri.0.path());
        Ok(Self(client_ip(parts), Budget::of_path(path)))
    }
}

/// Counts one attempt (login, registration, recovery, link opening) from the client's
/// address in the current minute against its route class's budget ([`Budget`]), in the
/// records so that every server process shares it; 429 past the class's limit.
pub(crate) async fn throttle(state: &AppState, ip: &ClientIp) -> AppResult<()> {
    if let ClientIp(Some(ip), budget) = ip {
        let limit = budget.limit(&state.limits);
        let count = state
            .records
            .count_rate(
                &format!("ip:{}:{ip}", budget.name()),
                state.now(),
                budget::WINDOW_SECONDS,
            )
            .await?;
        if count > limit {
            return Err(AppError::TooManyRequests);
        }
    }
    Ok(())
}

/// An account as the API shows it (no OPAQUE record, no bundles).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Account id.
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// Handle.
    pub handle: String,
    /// Worker or beneficiary.
    pub role: Role,
    /// Organisation id.
    #[schema(value_type = Option<Id>, inline)]
    pub org: Option<String>,
    /// age X25519 recipient (`age1…`).
    pub public_key: String,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// The worker who created this account.
    #[schema(value_type = Option<Id>, inline)]
    pub created_by: Option<String>,
    /// Consent time (unix seconds).
    pub consent_at: Option<u64>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            handle: a.handle.clone(),
            role: a.role,
            org: a.org.map(|o| o.to_string()),
            public_key: a.public_key.clone(),
            created_at: a.created_at,
            created_by: a.created_by.map(|w| w.to_string()),
            consent_at: a.consent_at,
        }
    }
}

/// What Rust's `str::trim` removes around a handle: the characters of Unicode's
/// `White_Space`, as ranges (ECMA-262's `\s` is not the same set: it has U+FEFF and lacks
/// U+0085). A test checks them against `char::is_whitespace`.
const TRIMMED: [(char, char); 10] = [
    ('\u{09}', '\u{0d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// [`TRIMMED`] as a regular-expression class.
fn trimmed_class() -> String {
    let escape = |c: char| format!("\\u{:04x}", u32::from(c));
    let ranges: String = TRIMMED
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                escape(lo)
            } else {
                format!("{}-{}", escape(lo), escape(hi))
            }
        })
        .collect();
    format!("[{ranges}]")
}

/// The pattern of [`HandleText`].
pub fn handle_pattern() -> String {
    let space = trimmed_class();
    format!("^{space}*[A-Za-z0-9._-]{{{HANDLE_MIN_CHARS},{HANDLE_MAX_CHARS}}}{space}*$")
}

/// The schema of a handle as the server reads one, in a body or a path: what
/// [`check_handle`] accepts, that is surrounding white space (trimmed) around
/// [`HANDLE_MIN_CHARS`] to [`HANDLE_MAX_CHARS`] ASCII letters (lowercased), digits, `.`,
/// `_` or `-`. No account has any other handle.
pub struct HandleText;

impl utoipa::PartialSchema for HandleText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(handle_pattern()))
            .min_length(Some(HANDLE_MIN_CHARS))
            .into()
    }
}

impl ToSchema for HandleText {}

/// Normalised handle, or a 422 saying what is wrong.
pub fn check_handle(handle: &str) -> AppResult<String> {
    let h = handle.trim().to_ascii_lowercase();
    let ok_chars = h
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let len = h.chars().count();
    if !ok_chars || !(HANDLE_MIN_CHARS..=HANDLE_MAX_CHARS).contains(&len) {
        return Err(AppError::Unprocessable(format!(
            "handle: {HANDLE_MIN_CHARS}-{HANDLE_MAX_CHARS} characters among a-z 0-9 . _ -"
        )));
    }
    Ok(h)
}

pub(crate) fn parse_id(field: &str, text: &str) -> AppResult<Id> {
    text.parse()
        .map_err(|_| AppError::Unprocessable(format!("{field}: not an id")))
}

/// Validates a registration's fields and builds the account (role-specific fields unset).
pub(crate) fn build_account(new: &NewAccount, role: Role, now: u64) -> AppResult<Account> {
    let id = parse_id("account_id", &new.account_id)?;
    let handle = check_handle(&new.handle)?;
    new.public_key
        .parse::<Recipient>()
        .map_err(|_| AppError::Unprocessable("public_key: not an age X25519 recipient".into()))?;
    let upload = decode_b64("registration_upload", &new.registration_upload)?;
    let password_file = opaque::server_registration_finish(&upload)
        .map_err(|e| AppError::Unprocessable(format!("registration_upload: {e}")))?;
    let bundle = decode_b64("bundle", &new.bundle)?;
    check_bundle("bundle", &bundle, BundleKind::Passphrase)?;
    let recovery_bundle = new
        .recovery_bundle
        .as_deref()
        .map(|b| decode_b64("recovery_bundle", b))
        .transpose()?;
    if let Some(b) = &recovery_bundle {
        check_bundle("recovery_bundle", b, BundleKind::Recovery)?;
    }
    let recovery_verifier = new
        .recovery_verifier
        .as_deref()
        .map(|v| decode_b64("recovery_verifier", v))
        .transpose()?;
    if recovery_verifier.as_ref().is_some_and(|v| v.len() != 32) {
        return Err(AppError::Unprocessable(
            "recovery_verifier: 32 bytes expected".into(),
        ));
    }
    if recovery_bundle.is_some() != recovery_verifier.is_some() {
        return Err(AppError::Unprocessable(
            "recovery_bundle and recovery_verifier go together".into(),
        ));
    }
    Ok(Account {
        id,
        handle,
        role,
        org: None,
        public_key: new.public_key.clone(),
        password_file: password_file.as_bytes().to_vec(),
        ksf_version: KSF_V1.version(),
        bundle,
        recovery_bundle,
        recovery_verifier,
        created_by: None,
        consent_at: None,
        created_at: now,
        credential_epoch: 0,
        disabled_at: None,
    })
}

pub(crate) fn check_bundle(field: &str, bytes: &[u8], kind: BundleKind) -> AppResult<()> {
    let bundle = KeyBundle::from_bytes(bytes)
        .map_err(|e| AppError::Unprocessable(format!("{field}: {e}")))?;
    if bundle.kind() != kind {
        return Err(AppError::Unprocessable(format!(
            "{field}: wrong bundle kind"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handle pattern's white space is exactly what `trim` removes, so the document
    /// neither refuses a handle the server reads nor admits one it cannot.
    #[test]
    fn trimmed_ranges_are_unicode_white_space() {
        let listed = |c: char| TRIMMED.iter().any(|&(lo, hi)| (lo..=hi).contains(&c));
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", u32::from(c));
        }
        assert_eq!(
            handle_pattern(),
            "^[\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000]*\
             [A-Za-z0-9._-]{3,64}\
             [\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000]*$"
        );
    }

    #[test]
    fn check_handle_trims_and_lowercases_what_the_pattern_admits() {
        assert_eq!(
            check_handle("\u{85}\u{3000} Amina.B \t").ok().as_deref(),
            Some("amina.b")
        );
        assert!(check_handle("\u{feff}amina").is_err());
        assert!(check_handle("ab").is_err());
        assert!(check_handle(&"a".repeat(65)).is_err());
        assert!(check_handle("amïna").is_err());
    }
}
