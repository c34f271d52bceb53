//! Envelopes: one recipient's complete age header, kept apart from the payload.
//!
//! Coffre stores a document's payload once and one envelope per person who may open it
//! (DESIGN.md, "Cryptography"). `envelope || payload` is a standard age file. Sharing
//! with someone new means opening one's own envelope and sealing the same file key to
//! them: the payload is never touched.

use crate::decrypt::{unwrap_header, DecryptError};
use crate::format::header::{Header, HeaderError};
use crate::format::x25519::{self, X25519_TAG};
use crate::identity::{Identity, Recipient};
use crate::keys::FileKey;
use crate::random::RandomError;

/// Why bytes are not a Coffre envelope.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not a well-formed age header.
    #[error("malformed header: {0}")]
    MalformedHeader(#[from] HeaderError),
    /// The header has more or fewer than one stanza, or the stanza is not X25519.
    #[error("an envelope must hold exactly one X25519 stanza")]
    NotSingleX25519,
    /// Bytes follow the header (an envelope holds nothing else).
    #[error("trailing data after the envelope")]
    TrailingData,
    /// The envelope could not be opened with the given identities.
    #[error(transparent)]
    Open(#[from] DecryptError),
    /// The secure random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A single-recipient age header (`age-encryption.org/v1`, one `X25519` stanza, MAC).
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    bytes: Vec<u8>,
}

impl Envelope {
    /// Seals `file_key` to `recipient` as a new envelope.
    pub fn seal(file_key: &FileKey, recipient: &Recipient) -> Result<Self, RandomError> {
        let stanza = x25519::wrap(file_key, recipient)?;
        Ok(Self {
            bytes: Header::new(vec![stanza], file_key).to_bytes(),
        })
    }

    /// Checks that `bytes` are exactly one envelope: a complete age header with one
    /// well-formed X25519 stanza. This is all a server can check; it cannot open it.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let header = Header::parse(bytes)?.ok_or(HeaderError::Incomplete)?;
        if header.encoded_len() != bytes.len() {
            return Err(EnvelopeError::TrailingData);
        }
        check_single_x25519(&header)?;
        Ok(Self {
            bytes: bytes.to_vec(),
        })
    }

    /// Splits a single-recipient age file into its envelope and its payload.
    pub fn split(file: &[u8]) -> Result<(Self, &[u8]), EnvelopeError> {
        let header = Header::parse(file)?.ok_or(HeaderError::Incomplete)?;
        check_single_x25519(&header)?;
        let (envelope, payload) = file.split_at(header.encoded_len());
        Ok((
            Self {
                bytes: envelope.to_vec(),
            },
            payload,
        ))
    }

    /// Opens the envelope: the file key, once the header MAC verified.
    pub fn open(&self, identities: &[Identity]) -> Result<FileKey, DecryptError> {
        let header = Header::parse(&self.bytes)?.ok_or(HeaderError::Incomplete)?;
        unwrap_header(&header, identities)
    }

    /// Opens this envelope with `identities` and seals the same file key to `recipient`.
    pub fn rewrap(
        &self,
        identities: &[Identity],
        recipient: &Recipient,
    ) -> Result<Self, EnvelopeError> {
        let file_key = self.open(identities)?;
        Ok(Self::seal(&file_key, recipient)?)
    }

    /// Joins the envelope and a payload into a standard age file. For large payloads,
    /// write [`as_bytes`](Self::as_bytes) and then stream the payload instead.
    pub fn join(&self, payload: &[u8]) -> Vec<u8> {
        let mut file = Vec::with_capacity(self.bytes.len() + payload.len());
        file.extend_from_slice(&self.bytes);
        file.extend_from_slice(payload);
        file
    }

    /// The envelope's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The envelope's bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl core::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Envelope({} bytes)", self.bytes.len())
    }
}

fn check_single_x25519(header: &Header) -> Result<(), EnvelopeError> {
    let [stanza] = header.stanzas.as_slice() else {
        return Err(EnvelopeError::NotSingleX25519);
    };
    if stanza.tag != X25519_TAG {
        return Err(EnvelopeError::NotSingleX25519);
    }
    x25519::parse(stanza)?;
    Ok(())
}
