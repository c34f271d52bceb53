//! Push-based age decryption: feed ciphertext pieces of any size, collect plaintext that
//! has been authenticated.

use zeroize::Zeroize;

use crate::armor::{is_armor_space, ArmorError, Dearmorer};
use crate::format::header::{Header, HeaderError, HEADER_MAX_BYTES, VERSION_LINE};
use crate::format::stream::{
    payload_cipher, Stream, ENCRYPTED_CHUNK_SIZE, PAYLOAD_NONCE_BYTES, TAG_BYTES,
};
use crate::format::x25519::{self, UnwrapError, X25519_TAG};
use crate::identity::Identity;
use crate::keys::FileKey;

/// Why a file could not be decrypted. Each variant is a class a person can act on; none
/// tells which byte failed authentication.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The header does not follow the age v1 grammar; says which rule it breaks.
    #[error("malformed header: {0}")]
    MalformedHeader(#[from] HeaderError),
    /// None of the given identities can open any stanza of the header.
    #[error("no identity matched")]
    NoIdentityMatched,
    /// A stanza opened, but the header MAC does not verify: the header was altered.
    #[error("header MAC mismatch")]
    HeaderMacMismatch,
    /// A payload chunk failed authentication: the payload was altered, reordered, or
    /// belongs to another header.
    #[error("payload authentication failed")]
    PayloadAuthenticationFailed,
    /// The file ends too early: inside the header, the nonce, or before the final chunk.
    #[error("truncated file")]
    Truncated,
    /// Bytes follow the final chunk.
    #[error("trailing data after the end of the file")]
    TrailingData,
    /// The last chunk is empty although the payload is not.
    #[error("malformed payload: empty final chunk")]
    EmptyFinalChunk,
    /// The file is ASCII-armored, but the armor breaks a rule (says which, and where).
    #[error("malformed armor: {0}")]
    Armor(#[from] ArmorError),
    /// The decryptor already failed; it cannot go on.
    #[error("decryption already failed")]
    Poisoned,
}

/// How the input is framed: known from its first byte.
enum Framing {
    /// No byte seen yet (standard files only; a payload alone is always binary).
    Undecided,
    /// The age binary format, fed straight to the state machine.
    Binary,
    /// ASCII armor: decoded line by line, then fed to the state machine.
    Armored(Dearmorer),
}

enum State {
    /// Collecting header bytes.
    Header { buf: Vec<u8> },
    /// Header verified; collecting the 16-byte payload nonce.
    Nonce { file_key: FileKey, buf: Vec<u8> },
    /// Opening chunks; `buf` holds at most one encrypted chunk.
    Payload { stream: Stream, buf: Vec<u8> },
    /// An error was returned; every further call fails.
    Failed,
}

/// Decrypts one age file as a stream.
///
/// Plaintext reaches `out` only after its chunk's tag verified. Each chunk that verifies
/// is released, even if the file then proves malformed (trailing bytes, a cut-off last
/// chunk): that is what c2sp.org/CCTV/age expects of a streaming API. An error therefore
/// means the file as a whole is not authentic, and what was released must not be taken
/// for the complete document.
///
/// Memory is bounded by one encrypted chunk (64 KiB + 16) plus the header, whatever the
/// file size. A full chunk is opened only when more input shows it is not the last one,
/// or at [`finish`].
///
/// [`finish`]: Decryptor::finish
pub struct Decryptor {
    identities: Vec<Identity>,
    framing: Framing,
    /// Binary bytes decoded from armor, reused between pushes.
    decoded: Vec<u8>,
    state: State,
    file_key: Option<FileKey>,
}

impl Decryptor {
    /// Starts decrypting a standard age file (header then payload) with `identities`.
    ///
    /// The file may be binary or ASCII-armored ([`armor`](crate::armor)); which one is
    /// told by its first byte: a binary file starts with `age-encryption.org/`, armor with
    /// its begin line, after optional whitespace.
    pub fn new(identities: &[Identity]) -> Self {
        Self {
            identities: identities.to_vec(),
            framing: Framing::Undecided,
            decoded: Vec::new(),
            state: State::Header { buf: Vec::new() },
            file_key: None,
        }
    }

    /// Starts decrypting a payload alone (nonce then chunks) whose file key is known.
    pub fn with_file_key(file_key: FileKey) -> Self {
        Self {
            identities: Vec::new(),
            framing: Framing::Binary,
            decoded: Vec::new(),
            state: State::Nonce {
                file_key: file_key.clone(),
                buf: Vec::with_capacity(PAYLOAD_NONCE_BYTES),
            },
            file_key: Some(file_key),
        }
    }

    /// The file key, once the header has been opened.
    pub fn file_key(&self) -> Option<&FileKey> {
        self.file_key.as_ref()
    }

    /// Decrypts `input`; appends authenticated plaintext to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        let result = self.push_framed(input, out);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn push_framed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if let (Framing::Undecided, Some(&first)) = (&self.framing, input.first()) {
            self.framing = if first == b'-' || is_armor_space(first) {
                Framing::Armored(Dearmorer::new())
            } else {
                Framing::Binary
            };
        }
        match &mut self.framing {
            Framing::Undecided => Ok(()),
            Framing::Binary => self.push_inner(input, out),
            Framing::Armored(dearmorer) => {
                if matches!(self.state, State::Failed) {
                    return Err(DecryptError::Poisoned);
                }
                let mut decoded = core::mem::take(&mut self.decoded);
                decoded.clear();
                let result = dearmorer
                    .push(input, &mut decoded)
                    .map_err(DecryptError::from)
                    .and_then(|()| self.push_inner(&decoded, out));
                self.decoded = decoded;
                result
            }
        }
    }

    /// Checks the end of the file and appends the last chunk's plaintext to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if let Framing::Armored(dearmorer) = core::mem::replace(&mut self.framing, Framing::Binary)
        {
            if matches!(self.state, State::Failed) {
                return Err(DecryptError::Poisoned);
            }
            let mut decoded = core::mem::take(&mut self.decoded);
            decoded.clear();
            let result = dearmorer
                .finish(&mut decoded)
                .map_err(DecryptError::from)
                .and_then(|()| self.push_inner(&decoded, out));
            if let Err(e) = result {
                self.state = State::Failed;
                return Err(e);
            }
        }
        match core::mem::replace(&mut self.state, State::Failed) {
            State::Header { .. } | State::Nonce { .. } => Err(DecryptError::Truncated),
            State::Failed => Err(DecryptError::Poisoned),
            State::Payload {
                mut stream,
                mut buf,
            } => {
                let result = open_final(&mut stream, &buf, out);
                buf.zeroize();
                result
            }
        }
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        loop {
            match &mut self.state {
                State::Failed => return Err(DecryptError::Poisoned),
                State::Header { buf } => {
                    let before = buf.len();
                    // Never buffer more than a header can be, whatever the piece size.
                    let take = (HEADER_MAX_BYTES + 1)
                        .saturating_sub(before)
                        .min(input.len());
                    buf.extend_from_slice(&input[..take]);
                    // A header completes only at a line feed: skip re-parsing for pieces
                    // without one (after the first bytes, which tell an age file apart).
                    let early = buf.len() <= 2 * VERSION_LINE.len();
                    if !early && !input[..take].contains(&b'\n') && take == input.len() {
                        return Ok(());
                    }
                    let Some(header) = Header::parse(buf)? else {
                        return Ok(());
                    };
                    let used = header.encoded_len() - before;
                    input = &input[used..];
                    let file_key = unwrap_header(&header, &self.identities)?;
                    self.file_key = Some(file_key.clone());
                    self.state = State::Nonce {
                        file_key,
                        buf: Vec::with_capacity(PAYLOAD_NONCE_BYTES),
                    };
                }
                State::Nonce { file_key, buf } => {
                    let take = (PAYLOAD_NONCE_BYTES - buf.len()).min(input.len());
                    buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    let Ok(nonce) = <[u8; PAYLOAD_NONCE_BYTES]>::try_from(buf.as_slice()) else {
                        return Ok(());
                    };
                    let stream = Stream::new(payload_cipher(file_key, &nonce));
                    self.state = State::Payload {
                        stream,
                        buf: Vec::with_capacity(ENCRYPTED_CHUNK_SIZE),
                    };
                }
                State::Payload { stream, buf } => {
                    return push_payload(stream, buf, input, out);
                }
            }
        }
    }
}

impl Drop for Decryptor {
    fn drop(&mut self) {
        if let State::Payload { buf, .. } = &mut self.state {
            buf.zeroize();
        }
    }
}

/// Finds the stanza that one of `identities` opens and verifies the header MAC with it.
pub(crate) fn unwrap_header(
    header: &Header,
    identities: &[Identity],
) -> Result<FileKey, DecryptError> {
    // Check every X25519 stanza's shape first: a malformed one makes the header invalid
    // even if another stanza would open (c2sp.org/age: recipient stanzas are validated).
    let parsed = header
        .stanzas
        .iter()
        .filter(|s| s.tag == X25519_TAG)
        .map(x25519::parse)
        .collect::<Result<Vec<_>, _>>()?;
    for stanza in &parsed {
        for identity in identities {
            match x25519::unwrap(stanza, identity) {
                Ok(Some(file_key)) => {
                    if header.verify_mac(&file_key) {
                        return Ok(file_key);
                    }
                    return Err(DecryptError::HeaderMacMismatch);
                }
                Ok(None) => {}
                Err(UnwrapError::ZeroSharedSecret) => {
                    return Err(DecryptError::MalformedHeader(
                        HeaderError::MalformedX25519Stanza,
                    ))
                }
            }
        }
    }
    Err(DecryptError::NoIdentityMatched)
}

fn push_payload(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    mut input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DecryptError> {
    while !input.is_empty() {
        if buf.len() == ENCRYPTED_CHUNK_SIZE {
            // More data follows, so the held chunk must not be the last one.
            open_middle(stream, buf, out)?;
            buf.clear();
        }
        if buf.is_empty() && input.len() > ENCRYPTED_CHUNK_SIZE {
            // Whole chunks straight from the input, without a copy into `buf`.
            open_middle(stream, &input[..ENCRYPTED_CHUNK_SIZE], out)?;
            input = &input[ENCRYPTED_CHUNK_SIZE..];
            continue;
        }
        let take = (ENCRYPTED_CHUNK_SIZE - buf.len()).min(input.len());
        buf.extend_from_slice(&input[..take]);
        input = &input[take..];
    }
    Ok(())
}

/// Opens a full chunk that more data follows.
///
/// A chunk whose tag verifies is released even when the file turns out to be malformed
/// right after it (c2sp.org/CCTV/age: all plaintext released before a payload failure
/// is what authenticated): here, a final chunk followed by more bytes is released, then
/// the trailing data is reported.
fn open_middle(stream: &mut Stream, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
    if stream
        .open_into(chunk, false, out)
        .map_err(|_| DecryptError::PayloadAuthenticationFailed)?
    {
        return Ok(());
    }
    // A chunk that opens as the last one, with data after it: the file has trailing bytes.
    if stream.open_into(chunk, true, out).unwrap_or(false) {
        Err(DecryptError::TrailingData)
    } else {
        Err(DecryptError::PayloadAuthenticationFailed)
    }
}

/// Opens what is left at the end of the input as the final chunk.
fn open_final(stream: &mut Stream, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
    if chunk.len() < TAG_BYTES {
        return Err(DecryptError::Truncated);
    }
    let first = stream.chunks_done() == 0;
    let start = out.len();
    if stream
        .open_into(chunk, true, out)
        .map_err(|_| DecryptError::PayloadAuthenticationFailed)?
    {
        if chunk.len() == TAG_BYTES && !first {
            out.truncate(start);
            return Err(DecryptError::EmptyFinalChunk);
        }
        return Ok(());
    }
    // A full chunk that opens as a middle one: the real last chunk was cut off. Its
    // plaintext authenticated, so it is released before the truncation is reported.
    if chunk.len() == ENCRYPTED_CHUNK_SIZE && stream.open_into(chunk, false, out).unwrap_or(false) {
        return Err(DecryptError::Truncated);
    }
    Err(DecryptError::PayloadAuthenticationFailed)
}

/// Decrypts a whole age file in memory (for small data; use [`Decryptor`] for files).
pub fn decrypt(file: &[u8], identities: &[Identity]) -> Result<Vec<u8>, DecryptError> {
    let mut dec = Decryptor::new(identities);
    let mut out = Vec::with_capacity(file.len());
    dec.push(file, &mut out)?;
    dec.finish(&mut out)?;
    Ok(out)
}
