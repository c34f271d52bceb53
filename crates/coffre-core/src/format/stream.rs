//! The age payload: a 16-byte nonce, then ChaCha20-Poly1305 STREAM over 64 KiB chunks
//! (c2sp.org/age, "Payload").
//!
//! ```text
//! payload key = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload")
//! chunk nonce = 11-byte big-endian chunk counter || 0x01 for the last chunk, else 0x00
//! ```
//! Every chunk but the last holds exactly 64 KiB of plaintext; the last holds 1..=64 KiB,
//! or 0 bytes only when the whole payload is empty.

use coffre_aead::{ChunkCipher, NONCE_BYTES};

use crate::keys::FileKey;

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Poly1305 tag bytes appended to each chunk.
pub const TAG_BYTES: usize = 16;
/// Ciphertext bytes of a full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_BYTES;
/// The random nonce that opens the payload.
pub const PAYLOAD_NONCE_BYTES: usize = 16;
/// HKDF info of the payload key.
const PAYLOAD_LABEL: &[u8] = b"payload";
/// The 11-byte counter wraps after this many chunks; we stop well before (2^64).
const LAST_FLAG: u8 = 0x01;

/// Derives the STREAM key of a payload. The chunk cipher comes from coffre-aead, whose
/// own crate lets the browser build optimise it for speed (see that crate's docs).
pub(crate) fn payload_cipher(file_key: &FileKey, nonce: &[u8; PAYLOAD_NONCE_BYTES]) -> ChunkCipher {
    let key = crate::kdf::hkdf_sha256::<32>(Some(nonce), file_key.expose(), PAYLOAD_LABEL);
    ChunkCipher::new(&key)
}

/// The counter ran past 2^64 chunks (an exabyte-scale file).
#[derive(Debug)]
pub(crate) struct CounterOverflow;

/// STREAM state shared by both directions: the cipher and the next chunk's counter.
pub(crate) struct Stream {
    cipher: ChunkCipher,
    counter: u64,
}

impl Stream {
    pub(crate) fn new(cipher: ChunkCipher) -> Self {
        Self { cipher, counter: 0 }
    }

    /// Number of chunks processed so far.
    pub(crate) fn chunks_done(&self) -> u64 {
        self.counter
    }

    fn nonce(&self, last: bool) -> [u8; NONCE_BYTES] {
        let mut nonce = [0u8; NONCE_BYTES];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        if last {
            nonce[11] = LAST_FLAG;
        }
        nonce
    }

    fn advance(&mut self) -> Result<(), CounterOverflow> {
        self.counter = self.counter.checked_add(1).ok_or(CounterOverflow)?;
        Ok(())
    }

    /// Encrypts `plaintext` as the next chunk and appends ciphertext and tag to `out`.
    pub(crate) fn seal_into(
        &mut self,
        plaintext: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CounterOverflow> {
        let nonce = self.nonce(last);
        let start = out.len();
        out.extend_from_slice(plaintext);
        // Only fails past the AEAD's 256 GiB per-message limit; chunks are 64 KiB.
        let tag = self
            .cipher
            .seal_in_place(&nonce, &mut out[start..])
            .map_err(|_| CounterOverflow)?;
        out.extend_from_slice(&tag);
        self.advance()
    }

    /// Opens `chunk` (ciphertext || tag) as the next chunk and appends the plaintext to
    /// `out` only if its tag verifies. On failure nothing is appended and the counter
    /// does not move, so the caller may try the other value of `last`.
    pub(crate) fn open_into(
        &mut self,
        chunk: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, CounterOverflow> {
        let Some(split) = chunk.len().checked_sub(TAG_BYTES) else {
            return Ok(false);
        };
        let (body, tag) = chunk.split_at(split);
        let Ok(tag) = <&[u8; TAG_BYTES]>::try_from(tag) else {
            return Ok(false);
        };
        let nonce = self.nonce(last);
        let start = out.len();
        out.extend_from_slice(body);
        // The tag is checked before decrypting, so on failure the appended bytes are
        // still ciphertext; they are removed before returning.
        if self
            .cipher
            .open_in_place(&nonce, &mut out[start..], tag)
            .is_err()
        {
            out.truncate(start);
            return Ok(false);
        }
        self.advance()?;
        Ok(true)
    }
}
