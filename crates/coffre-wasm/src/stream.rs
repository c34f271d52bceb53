//! Encryption and decryption: one-shot helpers and push-style streaming classes.
//!
//! Each `push` copies the input into wasm memory once (wasm-bindgen), encrypts or decrypts
//! into a buffer the object keeps and reuses, and copies the result out once into a fresh
//! `Uint8Array`. Memory stays bounded by the largest piece pushed plus one 64 KiB chunk,
//! whatever the document size.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use zeroize::Zeroize;

use coffre_core::armor::ArmorWriter;

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

/// Wraps a binary age file in age's ASCII armor (PEM text). Decryption recognises armor
/// by itself, so there is no counterpart.
#[wasm_bindgen]
pub fn armor(file: &[u8]) -> Vec<u8> {
    coffre_core::armor::armor(file)
}

/// Decrypts a whole age file, binary or armored, with `identities` (`AGE-SECRET-KEY-1…`
/// strings).
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
    /// Whether the output is ASCII armor: then `armor` (until finished) turns `out` into
    /// `text`, which is what the caller gets.
    armored: bool,
    armor: Option<ArmorWriter>,
    text: Vec<u8>,
}

impl Encryptor {
    fn with(inner: coffre_core::Encryptor, envelopes: Vec<Vec<u8>>, armored: bool) -> Self {
        Self {
            inner: Some(inner),
            envelopes,
            out: Vec::new(),
            armored,
            armor: armored.then(ArmorWriter::new),
            text: Vec::new(),
        }
    }

    /// The buffer that holds the latest output: the armor text, or the binary file.
    fn output(&mut self) -> &mut Vec<u8> {
        if self.armored {
            &mut self.text
        } else {
            &mut self.out
        }
    }

    /// Passes the binary output through the armor, if any (`last` ends it).
    fn armor_output(&mut self, last: bool) {
        release(&mut self.text);
        if let Some(armor) = self.armor.as_mut() {
            armor.push(&self.out, &mut self.text);
        }
        if last {
            if let Some(armor) = self.armor.take() {
                armor.finish(&mut self.text);
            }
        }
    }

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
        self.armor_output(false);
        Ok(self.output())
    }

    /// Seals the last chunk; the ciphertext is in the returned slice until the next call.
    pub fn finish_bytes(&mut self) -> Result<&[u8], CoffreError> {
        release(&mut self.out);
        let inner = self
            .inner
            .take()
            .ok_or_else(|| CoffreError::invalid_state("the encryptor is finished"))?;
        inner.finish(&mut self.out)?;
        self.armor_output(true);
        Ok(self.output())
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
        let inner = coffre_core::Encryptor::new(&recipients)?;
        Ok(Self::with(inner, Vec::new(), false))
    }

    /// Starts a standard age file to `recipients`, written as ASCII armor (PEM text).
    pub fn armored(recipients: Vec<String>) -> Result<Encryptor, CoffreError> {
        let recipients = parse_recipients(&recipients)?;
        let inner = coffre_core::Encryptor::new(&recipients)?;
        Ok(Self::with(inner, Vec::new(), true))
    }

    /// Starts a document whose header is kept apart: one envelope per recipient (see
    /// `envelopes()`), and an output that is the payload only. Any envelope followed by
    /// the payload is a standard age file.
    pub fn detached(recipients: Vec<String>) -> Result<Encryptor, CoffreError> {
        let recipients = parse_recipients(&recipients)?;
        let (envelopes, inner) = coffre_core::Encryptor::detached(&recipients)?;
        let envelopes = envelopes.into_iter().map(|e| e.into_bytes()).collect();
        Ok(Self::with(inner, envelopes, false))
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
        Ok(take_output(self.output()))
    }

    /// Ends the document; returns the last ciphertext. The encryptor cannot be used after.
    pub fn finish(&mut self) -> Result<Uint8Array, CoffreError> {
        self.finish_bytes()?;
        Ok(take_output(self.output()))
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

    /// After `push` or `finish` threw: the plaintext that authenticated in that call
    /// before the error (a chunk is released once its tag verifies, even if the file then
    /// proves cut or followed by junk). Empty otherwise. A streaming consumer may hand it
    /// on before the error, as age does; the document as a whole is not authentic.
    #[wasm_bindgen(js_name = takeReleased)]
    pub fn take_released(&mut self) -> Uint8Array {
        take_output(&mut self.out)
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
    fn armored_encryptor_writes_armor_that_decrypt_reads() {
        let id = Identity::generate().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut enc = Encryptor::armored(vec![id.recipient()]).unwrap();
        let text = stream_through(&mut enc, &data, 7_000);
        assert!(text.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(text.ends_with(b"-----END AGE ENCRYPTED FILE-----\n"));
        assert_eq!(decrypt(&text, vec![id.to_secret_string()]).unwrap(), data);
        let binary = coffre_core::armor::dearmor(&text).unwrap();
        assert_eq!(armor(&binary), text);
    }

    #[test]
    fn what_authenticated_before_an_error_can_be_taken() {
        let id = Identity::generate().unwrap();
        // Two full chunks, the second one final, then junk: both chunks authenticate.
        let data = vec![5u8; 2 * 64 * 1024];
        let mut file = encrypt(&data, vec![id.recipient()]).unwrap();
        file.extend_from_slice(b"junk");
        let mut dec = Decryptor::new(vec![id.to_secret_string()]).unwrap();
        let err = dec.push_bytes(&file).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TrailingData);
        // What `takeReleased()` hands to JS (a Uint8Array needs a JS engine).
        assert_eq!(dec.out, data);
        assert_eq!(
            dec.finish_bytes().unwrap_err().code(),
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
