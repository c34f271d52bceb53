//! Session tokens and the [`Caller`] extractor.
//!
//! A session token is 32 random bytes, given to the client once as unpadded base64url
//! and sent back as `Authorization: Bearer …`. The store keeps only its SHA-256, so a
//! copy of the database opens no session; looking up by hash also means no comparison
//! of secret bytes happens in variable time.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::store::{Account, SESSION_TOUCH_SECONDS};
use crate::AppState;

/// Bytes of randomness in a session token or invite code.
pub const TOKEN_BYTES: usize = 32;
/// Length of a token in its base64url form.
const TOKEN_B64_LEN: usize = 43;

/// A fresh random token: (text given to the client, hash to store).
pub fn generate_token() -> Result<(String, [u8; 32]), AppError> {
    let mut raw = [0u8; TOKEN_BYTES];
    getrandom::getrandom(&mut raw).map_err(|e| AppError::Internal(e.to_string()))?;
    let text = URL_SAFE_NO_PAD.encode(raw);
    Ok((text, hash_token_bytes(&raw)))
}

/// The stored form of a token given as text; `None` if it is not a token at all.
pub fn hash_token(text: &str) -> Option<[u8; 32]> {
    if text.len() != TOKEN_B64_LEN {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
    (raw.len() == TOKEN_BYTES).then(|| hash_token_bytes(&raw))
}

fn hash_token_bytes(raw: &[u8]) -> [u8; 32] {
    Sha256::digest(raw).into()
}

/// The id a session is shown under in the sessions list: 16 bytes of a SHA-256 of its
/// token hash under a label of its own, in hex. It names the session without being
/// its token nor the stored hash, so neither can be read back from a list.
pub fn public_session_id(token_hash: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"coffre/session-id/v1\0");
    h.update(token_hash);
    hex::encode(&h.finalize()[..16])
}

/// The authenticated account of a request. Extracting it fails with 401 when the bearer
/// token is missing, malformed, unknown, expired, or opened under credentials the account
/// has since replaced (such a session is deleted).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account.
    pub account: Account,
    /// The hash of the session token used (for logout).
    pub token_hash: [u8; 32],
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(AppError::Unauthorized)?;
        let text = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AppError::Unauthorized)?;
        let token_hash = hash_token(text.trim()).ok_or(AppError::Unauthorized)?;
        let (session, account) = state
            .records
            .session_with_account(&token_hash)
            .await?
            .ok_or(AppError::Unauthorized)?;
        if state.now() >= session.expires_at {
            state.records.delete_session(&token_hash).await?;
            return Err(AppError::Unauthorized);
        }
        let account = account.ok_or(AppError::Unauthorized)?;
        if session.credential_epoch != account.credential_epoch {
            // Opened with a passphrase that has been replaced since.
            state.records.delete_session(&token_hash).await?;
            return Err(AppError::Unauthorized);
        }
        if account.disabled_at.is_some() {
            // Disabling ends every session; one that slipped in meanwhile ends here.
            state.records.delete_session(&token_hash).await?;
            return Err(AppError::Unauthorized);
        }
        let now = state.now();
        if now >= session.last_used().saturating_add(SESSION_TOUCH_SECONDS) {
            // At most one write a minute per session, for the sessions list.
            state.records.touch_session(&token_hash, now).await?;
        }
        Ok(Self {
            account,
            token_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_text_hashes_to_the_stored_hash() {
        let (text, hash) = generate_token().unwrap();
        assert_eq!(hash_token(&text), Some(hash));
        assert_eq!(hash_token(&text[1..]), None);
        assert_eq!(hash_token("not a token"), None);
        let (other, _) = generate_token().unwrap();
        assert_ne!(text, other);
    }

    #[test]
    fn public_session_id_is_neither_the_token_nor_its_hash() {
        let (text, hash) = generate_token().unwrap();
        let id = public_session_id(&hash);
        assert_eq!(id.len(), 32);
        assert!(!hex::encode(hash).contains(&id));
        assert_ne!(id, text);
        assert_eq!(id, public_session_id(&hash));
        assert_ne!(id, public_session_id(&generate_token().unwrap().1));
    }
}
