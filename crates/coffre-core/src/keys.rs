//! Symmetric key material shared by the format modules.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::random::{random_array, RandomError};

/// Length of an age file key (c2sp.org/age, "File key").
pub const FILE_KEY_BYTES: usize = 16;

/// The 16-byte symmetric key of one document.
///
/// Every document gets a fresh one; a file key is never reused for a second payload
/// (c2sp.org/age: "the file key MUST be generated randomly for each file").
/// It is wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; FILE_KEY_BYTES]);

impl FileKey {
    /// Draws a fresh file key from the system's (or browser's) secure random source.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(random_array()?))
    }

    /// Wraps known bytes (an unwrapped stanza body, a test vector).
    pub fn from_bytes(bytes: [u8; FILE_KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes. Callers must not copy them anywhere that outlives the key.
    pub fn expose(&self) -> &[u8; FILE_KEY_BYTES] {
        &self.0
    }
}

impl core::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}
