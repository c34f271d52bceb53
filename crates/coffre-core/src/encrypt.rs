//! Push-based age encryption: feed plaintext pieces of any size, collect ciphertext.

use crate::envelope::Envelope;
use crate::format::header::{Header, Stanza};
use crate::format::stream::{payload_cipher, Stream, CHUNK_SIZE, PAYLOAD_NONCE_BYTES};
use crate::format::x25519;
use crate::identity::Recipient;
use crate::keys::FileKey;
use crate::random::{random_array, RandomError};

/// Why encryption could not start or go on.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    /// At least one recipient is needed.
    #[error("no recipient given")]
    NoRecipients,
    /// The secure random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The file is too large for the STREAM counter (2^64 chunks).
    #[error("the file is too large to encrypt")]
    TooLarge,
}

/// Encrypts one document as a stream.
///
/// Memory is bounded by one chunk (64 KiB) whatever the document size: the encryptor
/// keeps at most one chunk of plaintext, since a full chunk can only be sealed once it is
/// known whether more data follows (the last chunk is marked as such).
///
/// ```
/// use coffre_core::{Encryptor, Decryptor, Identity};
/// let alice = Identity::generate()?;
/// let mut enc = Encryptor::new(&[alice.to_recipient()])?;
/// let mut file = Vec::new();
/// enc.push(b"carte d'identit\xc3\xa9 ", &mut file)?;
/// enc.push(b"recto verso", &mut file)?;
/// enc.finish(&mut file)?;
///
/// let mut dec = Decryptor::new(&[alice]);
/// let mut plain = Vec::new();
/// dec.push(&file, &mut plain)?;
/// dec.finish(&mut plain)?;
/// assert_eq!(plain, "carte d'identité recto verso".as_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Encryptor {
    file_key: FileKey,
    /// Header and payload nonce, written before the first chunk.
    preamble: Option<Vec<u8>>,
    stream: Stream,
    /// Plaintext not yet sealed; at most one chunk.
    pending: Vec<u8>,
}

impl Encryptor {
    /// Starts a standard age file to `recipients`: its output is header, nonce, chunks.
    pub fn new(recipients: &[Recipient]) -> Result<Self, EncryptError> {
        let file_key = FileKey::generate()?;
        let header = header_for(&file_key, recipients)?;
        Self::start(file_key, header.to_bytes())
    }

    /// Starts a document whose header is kept apart: one [`Envelope`] per recipient, and
    /// an encryptor whose output is the payload only (nonce and chunks). Any envelope
    /// followed by the payload is a standard age file.
    pub fn detached(recipients: &[Recipient]) -> Result<(Vec<Envelope>, Self), EncryptError> {
        if recipients.is_empty() {
            return Err(EncryptError::NoRecipients);
        }
        let file_key = FileKey::generate()?;
        let envelopes = recipients
            .iter()
            .map(|r| Envelope::seal(&file_key, r))
            .collect::<Result<Vec<_>, _>>()?;
        let encryptor = Self::start(file_key, Vec::new())?;
        Ok((envelopes, encryptor))
    }

    fn start(file_key: FileKey, mut preamble: Vec<u8>) -> Result<Self, EncryptError> {
        let nonce = random_array::<PAYLOAD_NONCE_BYTES>()?;
        preamble.extend_from_slice(&nonce);
        let stream = Stream::new(payload_cipher(&file_key, &nonce));
        Ok(Self {
            file_key,
            preamble: Some(preamble),
            stream,
            pending: Vec::with_capacity(CHUNK_SIZE),
        })
    }

    /// The document's file key, to derive its metadata key or more envelopes.
    pub fn file_key(&self) -> &FileKey {
        &self.file_key
    }

    /// Encrypts `input` and appends whatever ciphertext is ready to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
        if let Some(preamble) = self.preamble.take() {
            out.extend_from_slice(&preamble);
        }
        while !input.is_empty() {
            if self.pending.len() == CHUNK_SIZE {
                // More data follows, so the held chunk is not the last one.
                self.stream
                    .seal_into(&self.pending, false, out)
                    .map_err(|_| EncryptError::TooLarge)?;
                self.pending.clear();
            }
            if self.pending.is_empty() && input.len() > CHUNK_SIZE {
                // Whole chunks straight from the input, without a copy into `pending`.
                self.stream
                    .seal_into(&input[..CHUNK_SIZE], false, out)
                    .map_err(|_| EncryptError::TooLarge)?;
                input = &input[CHUNK_SIZE..];
                continue;
            }
            let take = (CHUNK_SIZE - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }

    /// Seals the last chunk and appends it to `out`. An empty document gives one empty
    /// final chunk, as the spec requires.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), EncryptError> {
        if let Some(preamble) = self.preamble.take() {
            out.extend_from_slice(&preamble);
        }
        self.stream
            .seal_into(&self.pending, true, out)
            .map_err(|_| EncryptError::TooLarge)
    }
}

impl Drop for Encryptor {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.pending);
    }
}

fn header_for(file_key: &FileKey, recipients: &[Recipient]) -> Result<Header, EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    let stanzas = recipients
        .iter()
        .map(|r| x25519::wrap(file_key, r))
        .collect::<Result<Vec<Stanza>, _>>()?;
    Ok(Header::new(stanzas, file_key))
}

/// Encrypts a whole document in memory (for small data; use [`Encryptor`] for files).
pub fn encrypt(plaintext: &[u8], recipients: &[Recipient]) -> Result<Vec<u8>, EncryptError> {
    let mut enc = Encryptor::new(recipients)?;
    let chunks = plaintext.len() / CHUNK_SIZE + 1;
    let mut out = Vec::with_capacity(256 * recipients.len() + plaintext.len() + chunks * 16 + 32);
    enc.push(plaintext, &mut out)?;
    enc.finish(&mut out)?;
    Ok(out)
}
