//! Envelopes: a document's per-recipient age header, kept apart from its payload.

use wasm_bindgen::prelude::*;

use crate::error::CoffreError;
use crate::keys::{parse_identities, Identity};

/// One recipient's complete age header (one X25519 stanza and the header MAC).
/// `envelope || payload` is a standard age file.
#[wasm_bindgen]
pub struct Envelope {
    inner: coffre_core::Envelope,
}

impl Envelope {
    /// Opens the envelope: the document's file key.
    pub(crate) fn file_key(
        &self,
        identities: &[coffre_core::Identity],
    ) -> Result<coffre_core::FileKey, CoffreError> {
        Ok(self.inner.open(identities)?)
    }
}

#[wasm_bindgen]
impl Envelope {
    /// Checks that `bytes` are exactly one envelope (what a server can check).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, CoffreError> {
        Ok(Self {
            inner: coffre_core::Envelope::parse(bytes)?,
        })
    }

    /// Reads the envelope at the start of a single-recipient age file. The payload is
    /// `file.subarray(envelope.byteLength)`: no copy is made of it.
    pub fn split(file: &[u8]) -> Result<Envelope, CoffreError> {
        let (inner, _payload) = coffre_core::Envelope::split(file)?;
        Ok(Self { inner })
    }

    /// The envelope's length in bytes (where the payload starts in a joined file).
    #[wasm_bindgen(getter, js_name = byteLength)]
    pub fn byte_length(&self) -> usize {
        self.inner.as_bytes().len()
    }

    /// The envelope's bytes.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.as_bytes().to_vec()
    }

    /// Opens the envelope with `identity` and seals the same file key to `recipient`
    /// (`age1…`): sharing a document without touching its payload.
    pub fn rewrap(&self, identity: &Identity, recipient: &str) -> Result<Envelope, CoffreError> {
        let recipient = recipient.parse()?;
        Ok(Self {
            inner: self
                .inner
                .rewrap(std::slice::from_ref(&identity.inner), &recipient)?,
        })
    }

    /// Like `rewrap`, with identity strings (`AGE-SECRET-KEY-1…`).
    #[wasm_bindgen(js_name = rewrapWithStrings)]
    pub fn rewrap_with_strings(
        &self,
        identities: Vec<String>,
        recipient: &str,
    ) -> Result<Envelope, CoffreError> {
        let identities = parse_identities(&identities)?;
        let recipient = recipient.parse()?;
        Ok(Self {
            inner: self.inner.rewrap(&identities, &recipient)?,
        })
    }

    /// Joins the envelope and a payload into a standard age file (small payloads; for
    /// large ones, send `toBytes()` then stream the payload).
    pub fn join(&self, payload: &[u8]) -> Vec<u8> {
        self.inner.join(payload)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ErrorCode;
    use crate::stream::{decrypt, encrypt};

    #[test]
    fn split_rewrap_join() {
        let owner = Identity::generate().unwrap();
        let worker = Identity::generate().unwrap();
        let file = encrypt(b"titre de sejour", vec![owner.recipient()]).unwrap();
        let env = Envelope::split(&file).unwrap();
        let payload = &file[env.byte_length()..];
        let shared = env.rewrap(&owner, &worker.recipient()).unwrap();
        let joined = Envelope::parse(&shared.to_bytes()).unwrap().join(payload);
        assert_eq!(
            decrypt(&joined, vec![worker.to_secret_string()]).unwrap(),
            b"titre de sejour"
        );
        let err = env.rewrap(&worker, &owner.recipient()).err().unwrap();
        assert_eq!(err.code(), ErrorCode::NoIdentityMatched);
        let err = Envelope::parse(&file).err().unwrap();
        assert_eq!(err.code(), ErrorCode::TrailingData);
        let two = encrypt(b"x", vec![owner.recipient(), worker.recipient()]).unwrap();
        let err = Envelope::split(&two).err().unwrap();
        assert_eq!(err.code(), ErrorCode::EnvelopeNotSingleX25519);
    }
}
