//! Encryption and decryption: one-shot helpers and push-style streaming classes.
//!
//! Each `push` copies the input into wasm memory once (wasm-bindgen), encrypts or decrypts
//! into a buffer the object keeps and reuses, and copies the result out once into a fresh
//! `Uint8Array`. Memory stays bounded by the largest piece pushed plus one 64 KiB chunk,
//! whatever the document size.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use zeroize::Zeroize;

use crate::error::CoffreError;
use crate::keys::{parse_identities, parse_recipients, Identity};

/// Above this capacity the output buffer is released after use rather than kept, so one
/// huge push does not pin memory for the rest of the stream.
const KEEP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Copies `out` into a new JS array and empties it.
fn take_output(out: &mut Vec<u8>) -> Uint8Array {
    let array = Uint8Array::from(out.as_slice());
    release(out);
    array
}

/// Empties the reused output buffer. It is wiped only when the object is dropped: the
/// same bytes were just handed to JS, where they cannot be wiped anyway, and wiping the
/// whole buffer on every push would cost a pass over memory per chunk.
fn release(out: &mut Vec<u8>) {
    out.clear();
    if out.capacity() > KEEP_BUFFER_BYTES {
        out.zeroize();
        *out = Vec::new();
    }
}

/// Encrypts `data` to `recipients` (`age1…` strings) as one standard age v1 file.
#[wasm_bindgen]
pub fn encrypt(data: &[u8], recipients: Vec<String>) -> Result<Vec<u8>, CoffreError> {
    let recipients = parse_recipients(&recipients)?;
    Ok(coffre_core::encrypt(data, &recipients)?)
}

/// Decrypts a whole age file with `identities` (`AGE-SECRET-KEY-1…` strings).
#[wasm_bindgen]
pub fn decrypt(data: &[u8], identities: Vec<String>) -> Result<Vec<u8>, CoffreError> {
    let identities = parse_identities(&identities)?;
    Ok(coffre_core::decrypt(data, &identities)?)
}

/// Encrypts one document piece by piece: `push(piece)` returns the ciphertext ready so
/// far, `finish()` the rest. The concatenation of all outputs is the age file (or, for a
/// detached encryptor, the payload that follows any of its envelopes).
#[wasm_bindgen]
pub struct Encryptor {
    inner: Option<coffre_core::Encryptor>,
    envelopes: Vec<Vec<u8>>,
    out: Vec<u8>,
}

impl Encryptor {
    /// Encrypts `input`; the ciphertext is in the returned slice until the next call.
    pub fn push_bytes(&mut self, input: &[u8]) -> Result<&[u8], CoffreError> {
        release(&mut self.out);
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| CoffreError::invalid_state("the encryptor is finished"))?;
        if let Err(e) = inner.push(input, &mut self.out) {
            self.inner = None;
            return Err(e.into());
        }
        Ok(&self.out)
    }

    /// Seals the last chunk; the ciphertext is in the returned slice until the next call.
    pub fn finish_bytes(&mut self) -> Result<&[u8], CoffreError> {
        release(&mut self.out);
        let inner = self
            .inner
            .take()
            .ok_or_else(|| CoffreError::invalid_state("the encryptor is finished"))?;
        inner.finish(&mut self.out)?;
        Ok(&self.out)
    }

    /// The envelopes of a detached encryptor (empty otherwise).
    pub fn envelope_bytes(&self) -> &[Vec<u8>] {
        &self.envelopes
    }

    /// The document's file key (for its metadata), until the encryptor is finished.
    pub(crate) fn file_key(&self) -> Result<&coffre_core::FileKey, CoffreError> {
        self.inner
            .as_ref()
            .map(coffre_core::Encryptor::file_key)
            .ok_or_else(|| CoffreError::invalid_state("the encryptor is finished"))
    }
}

#[wasm_bindgen]
impl Encryptor {
    /// Starts a standard age file to `recipients` (`age1…` strings).
    #[wasm_bindgen(constructor)]
    pub fn new(recipients: Vec<String>) -> Result<Encryptor, CoffreError> {
        let recipients = parse_recipients(&recipients)?;
        Ok(Self {
            inner: Some(coffre_core::Encryptor::new(&recipients)?),
            envelopes: Vec::new(),
            out: Vec::new(),
        })
    }

    /// Starts a document whose header is kept apart: one envelope per recipient (see
    /// `envelopes()`), and an output that is the payload only. Any envelope followed by
    /// the payload is a standard age file.
    pub fn detached(recipients: Vec<String>) -> Result<Encryptor, CoffreError> {
        let recipients = parse_recipients(&recipients)?;
        let (envelopes, inner) = coffre_core::Encryptor::detached(&recipients)?;
        Ok(Self {
            inner: Some(inner),
            envelopes: envelopes.into_iter().map(|e| e.into_bytes()).collect(),
            out: Vec::new(),
        })
    }

    /// The envelopes of a detached encryptor, one per recipient in order (empty for a
    /// standard one, whose header is at the start of its output).
    pub fn envelopes(&self) -> Vec<Uint8Array> {
        self.envelopes
            .iter()
            .map(|e| Uint8Array::from(e.as_slice()))
            .collect()
    }

    /// Encrypts a piece of plaintext; returns the ciphertext ready so far (often empty
    /// for small pieces: a chunk is sealed once 64 KiB are known).
    pub fn push(&mut self, data: &[u8]) -> Result<Uint8Array, CoffreError> {
        self.push_bytes(data)?;
        Ok(take_output(&mut self.out))
    }

    /// Ends the document; returns the last ciphertext. The encryptor cannot be used after.
    pub fn finish(&mut self) -> Result<Uint8Array, CoffreError> {
        self.finish_bytes()?;
        Ok(take_output(&mut self.out))
    }
}

/// Decrypts one age file piece by piece. Plaintext is returned only after its chunk's
/// authentication tag verified; a document is authentic only once `finish()` succeeds.
#[wasm_bindgen]
pub struct Decryptor {
    identities: Vec<coffre_core::Identity>,
    inner: Option<coffre_core::Decryptor>,
    started: bool,
    out: Vec<u8>,
}

impl Decryptor {
    /// Creates the core decryptor on first use, once every identity has been added.
    fn start(&mut self) {
        if !self.started {
            self.started = true;
            self.inner = Some(coffre_core::Decryptor::new(&self.identities));
            self.identities.clear();
        }
    }

    /// The document's file key, once the header has been opened.
    pub(crate) fn file_key(&self) -> Result<&coffre_core::FileKey, CoffreError> {
        self.inner
            .as_ref()
            .and_then(coffre_core::Decryptor::file_key)
            .ok_or_else(|| CoffreError::invalid_state("the header has not been read yet"))
    }

    /// Decrypts `input`; the plaintext is in the returned slice until the next call.
    pub fn push_bytes(&mut self, input: &[u8]) -> Result<&[u8], CoffreError> {
        release(&mut self.out);
        self.start();
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| CoffreError::invalid_state("the decryptor is finished or failed"))?;
        if let Err(e) = inner.push(input, &mut self.out) {
            self.inner = None;
            return Err(e.into());
        }
        Ok(&self.out)
    }

    /// Checks the end of the file; the last plaintext is in the returned slice.
    pub fn finish_bytes(&mut self) -> Result<&[u8], CoffreError> {
        release(&mut self.out);
        self.start();
        let inner = self
            .inner
            .take()
            .ok_or_else(|| CoffreError::invalid_state("the decryptor is finished or failed"))?;
        inner.finish(&mut self.out)?;
        Ok(&self.out)
    }
}

#[wasm_bindgen]
impl Decryptor {
    /// Starts decrypting with `identities` (`AGE-SECRET-KEY-1…` strings; pass `[]` and
    /// call `addIdentity` to use `Identity` handles instead).
    #[wasm_bindgen(constructor)]
    pub fn new(identities: Vec<String>) -> Result<Decryptor, CoffreError> {
        Ok(Self {
            identities: parse_identities(&identities)?,
            inner: None,
            started: false,
            out: Vec::new(),
        })
    }

    /// Adds an identity by handle (the handle stays usable). Only before the first push.
    #[wasm_bindgen(js_name = addIdentity)]
    pub fn add_identity(&mut self, identity: &Identity) -> Result<(), CoffreError> {
        if self.started {
            return Err(CoffreError::invalid_state(
                "identities must be added before the first push",
            ));
        }
        self.identities.push(identity.inner.clone());
        Ok(())
    }

    /// Decrypts a piece of the file; returns the authenticated plaintext ready so far.
    pub fn push(&mut self, data: &[u8]) -> Result<Uint8Array, CoffreError> {
        self.push_bytes(data)?;
        Ok(take_output(&mut self.out))
    }

    /// Checks that the file ended properly; returns the last plaintext.
    pub fn finish(&mut self) -> Result<Uint8Array, CoffreError> {
        self.finish_bytes()?;
        Ok(take_output(&mut self.out))
    }
}

impl Drop for Decryptor {
    fn drop(&mut self) {
        self.out.zeroize();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ErrorCode;

    fn stream_through(enc: &mut Encryptor, data: &[u8], piece: usize) -> Vec<u8> {
        let mut file = Vec::new();
        for p in data.chunks(piece) {
            file.extend_from_slice(enc.push_bytes(p).unwrap());
        }
        file.extend_from_slice(enc.finish_bytes().unwrap());
        file
    }

    #[test]
    fn streaming_round_trip_with_handles() {
        let id = Identity::generate().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut enc = Encryptor::new(vec![id.recipient()]).unwrap();
        let file = stream_through(&mut enc, &data, 10_000);
        assert_eq!(
            enc.finish_bytes().err().unwrap().code(),
            ErrorCode::InvalidState
        );

        let mut dec = Decryptor::new(vec![]).unwrap();
        dec.add_identity(&id).unwrap();
        let mut plain = Vec::new();
        for p in file.chunks(33_333) {
            plain.extend_from_slice(dec.push_bytes(p).unwrap());
        }
        assert!(dec.add_identity(&id).is_err());
        plain.extend_from_slice(dec.finish_bytes().unwrap());
        assert_eq!(plain, data);
    }

    #[test]
    fn one_shot_and_errors() {
        let id = Identity::generate().unwrap();
        let file = encrypt(b"recto verso", vec![id.recipient()]).unwrap();
        assert_eq!(
            decrypt(&file, vec![id.to_secret_string()]).unwrap(),
            b"recto verso"
        );
        let other = Identity::generate().unwrap();
        let err = decrypt(&file, vec![other.to_secret_string()]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NoIdentityMatched);
        let err = decrypt(&file[..file.len() - 1], vec![id.to_secret_string()]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadAuthenticationFailed);
        assert_eq!(
            encrypt(b"x", vec![]).unwrap_err().code(),
            ErrorCode::NoRecipients
        );
        assert_eq!(
            decrypt(b"hello", vec![]).unwrap_err().code(),
            ErrorCode::NotAgeFile
        );
    }

    #[test]
    fn failed_decryptor_stays_failed() {
        let id = Identity::generate().unwrap();
        let mut file = encrypt(&[1; 100], vec![id.recipient()]).unwrap();
        let last = file.len() - 1;
        file[last] ^= 1;
        let mut dec = Decryptor::new(vec![id.to_secret_string()]).unwrap();
        dec.push_bytes(&file).unwrap();
        let err = dec.finish_bytes().unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadAuthenticationFailed);
        assert_eq!(
            dec.push_bytes(b"x").unwrap_err().code(),
            ErrorCode::InvalidState
        );
    }

    #[test]
    fn detached_payload_joins_any_envelope() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        let mut enc = Encryptor::detached(vec![a.recipient(), b.recipient()]).unwrap();
        let payload = stream_through(&mut enc, b"pay slip", 3);
        let envelopes = enc.envelope_bytes().to_vec();
        assert_eq!(envelopes.len(), 2);
        for (env, id) in envelopes.iter().zip([&a, &b]) {
            let file = [env.as_slice(), &payload].concat();
            assert_eq!(
                decrypt(&file, vec![id.to_secret_string()]).unwrap(),
                b"pay slip"
            );
        }
    }
}
