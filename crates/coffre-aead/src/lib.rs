//! ChaCha20-Poly1305 (RFC 8439) in place on one buffer, behind plain (non-generic)
//! methods: the AEAD of every age STREAM chunk (c2sp.org/age, "Payload").
//!
//! A crate of its own for a build reason, not a design one. The `chacha20poly1305` API
//! is generic, so its code is compiled in whichever crate names the concrete type, with
//! that crate's optimisation level. The browser build (`[profile.wasm-release]` in the
//! root `Cargo.toml`) optimises every crate for size except the few whose code is hot;
//! listing `chacha20` there would change nothing while the cipher is instantiated in
//! coffre-core. Instantiated here, and this crate listed at `opt-level = 3`, the cipher
//! runs at full speed while coffre-core is built small. Native builds use one
//! optimisation level throughout and see no difference.
//!
//! No cryptography is implemented here: both methods call `chacha20poly1305`.
//!
//! ```
//! use coffre_aead::ChunkCipher;
//! let cipher = ChunkCipher::new(&[7; 32]);
//! let nonce = [0; 12];
//! let mut buffer = *b"one chunk";
//! let tag = cipher.seal_in_place(&nonce, &mut buffer)?;
//! cipher.open_in_place(&nonce, &mut buffer, &tag)?;
//! assert_eq!(&buffer, b"one chunk");
//! # Ok::<(), coffre_aead::AeadError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};

/// ChaCha20-Poly1305 key bytes.
pub const KEY_BYTES: usize = 32;
/// ChaCha20-Poly1305 nonce bytes.
pub const NONCE_BYTES: usize = 12;
/// Poly1305 tag bytes.
pub const TAG_BYTES: usize = 16;

/// Sealing or opening failed: on opening, the tag does not verify (wrong key or nonce,
/// or altered bytes); on sealing, the message is past the AEAD's 256 GiB limit. One
/// value on purpose: callers must not learn which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadError;

impl core::fmt::Display for AeadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ChaCha20-Poly1305 authentication failed")
    }
}

impl std::error::Error for AeadError {}

/// ChaCha20-Poly1305 under one key. The key is wiped when the value is dropped
/// (`chacha20poly1305` zeroizes it); `Debug` is not implemented, so it cannot be printed.
#[derive(Clone)]
pub struct ChunkCipher(ChaCha20Poly1305);

impl ChunkCipher {
    /// The cipher under `key`.
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        Self(ChaCha20Poly1305::new(key.into()))
    }

    /// Encrypts `buffer` in place (no associated data) and returns the tag.
    ///
    /// Never inlined: one call per 64 KiB chunk costs nothing, and keeping the body here
    /// keeps it compiled at this crate's optimisation level.
    #[inline(never)]
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_BYTES],
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_BYTES], AeadError> {
        self.0
            .encrypt_in_place_detached(Nonce::from_slice(nonce), b"", buffer)
            .map(Into::into)
            .map_err(|_| AeadError)
    }

    /// Checks `tag` and, only if it verifies, decrypts `buffer` in place (no associated
    /// data). On failure `buffer` still holds the ciphertext, untouched.
    #[inline(never)]
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_BYTES],
        buffer: &mut [u8],
        tag: &[u8; TAG_BYTES],
    ) -> Result<(), AeadError> {
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), b"", buffer, Tag::from_slice(tag))
            .map_err(|_| AeadError)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chacha20poly1305::aead::Aead;
    use proptest::prelude::*;

    /// The same bytes as the `chacha20poly1305` crate's combined `ciphertext || tag`.
    #[test]
    fn matches_chacha20poly1305() {
        let key = [0x42; KEY_BYTES];
        let nonce = [0x24; NONCE_BYTES];
        let plain = b"Ladies and Gentlemen of the class of '99".to_vec();
        let reference = ChaCha20Poly1305::new(&key.into())
            .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
            .unwrap();
        let mut buffer = plain.clone();
        let tag = ChunkCipher::new(&key)
            .seal_in_place(&nonce, &mut buffer)
            .unwrap();
        assert_eq!([buffer.as_slice(), &tag].concat(), reference);
    }

    #[test]
    fn a_wrong_tag_leaves_the_ciphertext() {
        let cipher = ChunkCipher::new(&[1; KEY_BYTES]);
        let mut buffer = *b"chunk";
        let mut tag = cipher
            .seal_in_place(&[0; NONCE_BYTES], &mut buffer)
            .unwrap();
        let sealed = buffer;
        tag[0] ^= 1;
        assert_eq!(
            cipher.open_in_place(&[0; NONCE_BYTES], &mut buffer, &tag),
            Err(AeadError)
        );
        assert_eq!(buffer, sealed);
    }

    proptest! {
        #[test]
        fn seal_then_open(
            key in any::<[u8; KEY_BYTES]>(),
            nonce in any::<[u8; NONCE_BYTES]>(),
            plain in proptest::collection::vec(any::<u8>(), 0..2000),
            flip in any::<usize>(),
        ) {
            let cipher = ChunkCipher::new(&key);
            let mut buffer = plain.clone();
            let tag = cipher.seal_in_place(&nonce, &mut buffer).unwrap();
            let mut opened = buffer.clone();
            cipher.open_in_place(&nonce, &mut opened, &tag).unwrap();
            prop_assert_eq!(&opened, &plain);
            if !buffer.is_empty() {
                let mut altered = buffer.clone();
                altered[flip % buffer.len()] ^= 0x80;
                prop_assert_eq!(cipher.open_in_place(&nonce, &mut altered, &tag), Err(AeadError));
            }
            let mut other = nonce;
            other[0] ^= 1;
            prop_assert_eq!(cipher.open_in_place(&other, &mut buffer.clone(), &tag), Err(AeadError));
        }
    }
}
