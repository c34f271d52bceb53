//! The age v1 header: version line, recipient stanzas, MAC (c2sp.org/age, "Header").

use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::FileKey;

/// The version line that opens every age v1 file (without its line feed).
pub const VERSION_LINE: &[u8] = b"age-encryption.org/v1";
/// Prefix shared by all age version lines; another version after it is "unsupported".
const VERSION_PREFIX: &[u8] = b"age-encryption.org/";
/// Opens a stanza line.
const STANZA_PREFIX: &[u8] = b"-> ";
/// Opens the MAC line. The MAC covers the header up to and including these three bytes.
const MAC_PREFIX: &[u8] = b"---";
/// Stanza bodies are wrapped at this many base64 columns; the last line is shorter.
pub const BODY_COLUMNS: usize = 64;
/// HKDF info of the header MAC key (c2sp.org/age, "Header MAC").
const HEADER_MAC_LABEL: &[u8] = b"header";
/// Length of the header MAC.
pub const MAC_BYTES: usize = 32;
/// Base64 length of the MAC (32 bytes, unpadded).
const MAC_B64_LEN: usize = 43;

/// Largest header accepted. The spec sets no bound; without one a hostile file could make
/// a reader buffer without limit and pay one X25519 per stanza before anything is
/// authenticated. 128 KiB holds over a thousand X25519 stanzas.
pub const HEADER_MAX_BYTES: usize = 128 * 1024;
/// Largest number of stanzas accepted, for the same reason.
pub const MAX_STANZAS: usize = 1024;

/// What is malformed in a header. Each variant names one rule of the grammar.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The first line is not `age-encryption.org/v1`.
    #[error("not an age file (first line is not age-encryption.org/v1)")]
    NotAge,
    /// The file is an age file of another version.
    #[error("unsupported age version")]
    UnsupportedVersion,
    /// A line holds a byte outside printable ASCII, or a carriage return.
    #[error("line {0}: invalid character")]
    InvalidCharacter(usize),
    /// A stanza line has no arguments or an empty argument (two spaces in a row).
    #[error("line {0}: stanza arguments are empty")]
    EmptyArgument(usize),
    /// A body line is longer than 64 columns, or holds non-base64 characters.
    #[error("line {0}: invalid stanza body line")]
    InvalidBodyLine(usize),
    /// A stanza body or argument is not canonical unpadded base64.
    #[error("line {0}: base64 is not canonical")]
    NonCanonicalBase64(usize),
    /// A line is neither a stanza, a body line nor the MAC line.
    #[error("line {0}: unexpected line")]
    UnexpectedLine(usize),
    /// The header has no stanza.
    #[error("the header has no recipient stanza")]
    NoStanza,
    /// The MAC line is not `--- ` followed by 43 base64 characters.
    #[error("line {0}: malformed MAC line")]
    MalformedMac(usize),
    /// An X25519 stanza does not have exactly one 32-byte share and a 32-byte body.
    #[error("malformed X25519 stanza")]
    MalformedX25519Stanza,
    /// An scrypt stanza must be the only stanza of its header.
    #[error("an scrypt stanza is not alone in the header")]
    ScryptNotAlone,
    /// The header is larger than [`HEADER_MAX_BYTES`] or has more than [`MAX_STANZAS`].
    #[error("the header is too large")]
    TooLarge,
    /// The input ended inside the header.
    #[error("the header is incomplete")]
    Incomplete,
}

/// One recipient stanza: a type tag, its arguments, and a binary body.
#[derive(Clone, PartialEq, Eq)]
pub struct Stanza {
    /// The first argument, which names the recipient type (`X25519`).
    pub tag: String,
    /// The remaining arguments, as written.
    pub args: Vec<String>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl core::fmt::Debug for Stanza {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stanza")
            .field("tag", &self.tag)
            .field("args", &self.args)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A parsed header. Keeps the exact bytes that the MAC covers, so that verification does
/// not depend on re-encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The stanzas in file order.
    pub stanzas: Vec<Stanza>,
    mac: [u8; MAC_BYTES],
    /// The header bytes up to and including `---`.
    mac_input: Vec<u8>,
    /// The whole header, MAC line and its line feed included.
    encoded_len: usize,
}

impl Header {
    /// Builds and MACs a header for the given stanzas.
    pub fn new(stanzas: Vec<Stanza>, file_key: &FileKey) -> Self {
        let mut mac_input = Vec::with_capacity(64 + stanzas.len() * 128);
        mac_input.extend_from_slice(VERSION_LINE);
        mac_input.push(b'\n');
        for stanza in &stanzas {
            encode_stanza(stanza, &mut mac_input);
        }
        mac_input.extend_from_slice(MAC_PREFIX);
        let mac = compute_mac(file_key, &mac_input);
        let encoded_len = mac_input.len() + 1 + MAC_B64_LEN + 1;
        Self {
            stanzas,
            mac,
            mac_input,
            encoded_len,
        }
    }

    /// The full header bytes, ending with the MAC line's line feed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len);
        out.extend_from_slice(&self.mac_input);
        out.push(b' ');
        out.extend_from_slice(STANDARD_NO_PAD.encode(self.mac).as_bytes());
        out.push(b'\n');
        out
    }

    /// Length in bytes of the encoded header.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// Checks the header MAC in constant time.
    pub fn verify_mac(&self, file_key: &FileKey) -> bool {
        mac_for(file_key)
            .chain_update(&self.mac_input)
            .verify_slice(&self.mac)
            .is_ok()
    }

    /// Parses a header at the start of `input`.
    ///
    /// Returns `Ok(None)` when `input` ends before the MAC line does (feed more bytes),
    /// and the header with its encoded length otherwise. Bytes after the header are not
    /// looked at.
    pub fn parse(input: &[u8]) -> Result<Option<Self>, HeaderError> {
        let mut lines = Lines::new(input);
        let first = match lines.next() {
            Some(line) => line,
            None => {
                // Refuse early what cannot become a version line, so a non-age input is
                // named as such instead of being buffered.
                let n = input.len().min(VERSION_PREFIX.len());
                if input[..n] != VERSION_PREFIX[..n] || input.len() > 2 * VERSION_LINE.len() {
                    return Err(HeaderError::NotAge);
                }
                return Ok(None);
            }
        };
        if first.bytes != VERSION_LINE {
            if first.bytes.starts_with(VERSION_PREFIX) {
                return Err(HeaderError::UnsupportedVersion);
            }
            return Err(HeaderError::NotAge);
        }
        let mut stanzas = Vec::new();
        let mut pending = lines.next();
        loop {
            let line = match pending {
                Some(line) => line,
                None => return incomplete(input),
            };
            if let Some(rest) = line.bytes.strip_prefix(STANZA_PREFIX) {
                if stanzas.len() == MAX_STANZAS {
                    return Err(HeaderError::TooLarge);
                }
                let (stanza, next) = parse_stanza(line.number, rest, &mut lines)?;
                match stanza {
                    Some(stanza) => stanzas.push(stanza),
                    None => return incomplete(input),
                }
                pending = next;
            } else if line.bytes.starts_with(MAC_PREFIX) {
                if stanzas.is_empty() {
                    return Err(HeaderError::NoStanza);
                }
                let mac = parse_mac_line(line.number, line.bytes)?;
                let mac_input = input[..line.start + MAC_PREFIX.len()].to_vec();
                let header = Self {
                    stanzas,
                    mac,
                    mac_input,
                    encoded_len: line.end_with_newline,
                };
                header.check_stanza_rules()?;
                return Ok(Some(header));
            } else {
                check_printable(line.number, line.bytes)?;
                return Err(HeaderError::UnexpectedLine(line.number));
            }
        }
    }

    /// Rules that concern stanzas together rather than the grammar of one.
    fn check_stanza_rules(&self) -> Result<(), HeaderError> {
        if self.stanzas.len() > 1 && self.stanzas.iter().any(|s| s.tag == "scrypt") {
            return Err(HeaderError::ScryptNotAlone);
        }
        Ok(())
    }
}

/// While the header is still arriving, missing lines mean "wait"; past the size limit
/// they mean the input is not a header we accept.
fn incomplete(input: &[u8]) -> Result<Option<Header>, HeaderError> {
    if input.len() > HEADER_MAX_BYTES {
        Err(HeaderError::TooLarge)
    } else {
        Ok(None)
    }
}

/// Parses the rest of a stanza line (after `-> `) and its body lines. Returns `None` for
/// the stanza if the input ends inside it, and the line that follows the body.
fn parse_stanza<'a>(
    number: usize,
    args_text: &'a [u8],
    lines: &mut Lines<'a>,
) -> Result<(Option<Stanza>, Option<Line<'a>>), HeaderError> {
    check_printable(number, args_text)?;
    let mut args = Vec::new();
    for arg in args_text.split(|b| *b == b' ') {
        if arg.is_empty() {
            return Err(HeaderError::EmptyArgument(number));
        }
        // check_printable guarantees ASCII.
        args.push(String::from_utf8_lossy(arg).into_owned());
    }
    let mut body_b64 = Vec::new();
    loop {
        let Some(line) = lines.next() else {
            return Ok((None, None));
        };
        if line.bytes.len() > BODY_COLUMNS || !line.bytes.iter().all(|b| is_base64_char(*b)) {
            check_printable(line.number, line.bytes)?;
            return Err(HeaderError::InvalidBodyLine(line.number));
        }
        body_b64.extend_from_slice(line.bytes);
        if line.bytes.len() < BODY_COLUMNS {
            let body =
                decode_canonical(&body_b64).ok_or(HeaderError::NonCanonicalBase64(line.number))?;
            let mut args = args.into_iter();
            let tag = args.next().unwrap_or_default();
            let stanza = Stanza {
                tag,
                args: args.collect(),
                body,
            };
            return Ok((Some(stanza), lines.next()));
        }
    }
}

fn parse_mac_line(number: usize, line: &[u8]) -> Result<[u8; MAC_BYTES], HeaderError> {
    let encoded = line
        .strip_prefix(b"--- ")
        .filter(|rest| rest.len() == MAC_B64_LEN)
        .ok_or(HeaderError::MalformedMac(number))?;
    let mac = decode_canonical(encoded).ok_or(HeaderError::MalformedMac(number))?;
    mac.try_into()
        .map_err(|_| HeaderError::MalformedMac(number))
}

/// Writes `-> args…\n` and the wrapped body, ending with a short (maybe empty) line.
fn encode_stanza(stanza: &Stanza, out: &mut Vec<u8>) {
    out.extend_from_slice(STANZA_PREFIX);
    out.extend_from_slice(stanza.tag.as_bytes());
    for arg in &stanza.args {
        out.push(b' ');
        out.extend_from_slice(arg.as_bytes());
    }
    out.push(b'\n');
    let body = STANDARD_NO_PAD.encode(&stanza.body);
    let mut chunks = body.as_bytes().chunks(BODY_COLUMNS).peekable();
    let mut last_len = 0;
    while let Some(chunk) = chunks.next() {
        out.extend_from_slice(chunk);
        out.push(b'\n');
        last_len = chunk.len();
        if chunks.peek().is_none() {
            break;
        }
    }
    if last_len == BODY_COLUMNS || body.is_empty() {
        // A body whose base64 fills its last line exactly still ends with a short one.
        out.push(b'\n');
    }
}

/// Decodes canonical unpadded base64; rejects padding and non-zero trailing bits.
pub(crate) fn decode_canonical(b64: &[u8]) -> Option<Vec<u8>> {
    if b64.contains(&b'=') {
        return None;
    }
    STANDARD_NO_PAD.decode(b64).ok()
}

/// Encodes unpadded base64.
pub(crate) fn encode_b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Header lines are printable ASCII (VCHAR or space); CR, tabs and non-ASCII are refused.
fn check_printable(number: usize, bytes: &[u8]) -> Result<(), HeaderError> {
    if bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        Ok(())
    } else {
        Err(HeaderError::InvalidCharacter(number))
    }
}

fn mac_for(file_key: &FileKey) -> Hmac<Sha256> {
    let key = crate::kdf::hkdf_sha256::<32>(Some(&[]), file_key.expose(), HEADER_MAC_LABEL);
    // HMAC accepts keys of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice()).unwrap_or_else(|_| unreachable_hmac())
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC-SHA-256 accepts keys of every length; this branch cannot run.
    panic!("HMAC rejected a 32-byte key")
}

fn compute_mac(file_key: &FileKey, mac_input: &[u8]) -> [u8; MAC_BYTES] {
    mac_for(file_key)
        .chain_update(mac_input)
        .finalize()
        .into_bytes()
        .into()
}

/// A line of the input with its 1-based number and where it starts.
#[derive(Clone, Copy)]
struct Line<'a> {
    number: usize,
    start: usize,
    bytes: &'a [u8],
    /// Offset just past this line's `\n`.
    end_with_newline: usize,
}

/// Iterates over complete (`\n`-terminated) lines; an unterminated tail yields nothing.
struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let rest = self.input.get(self.pos..)?;
        let len = rest.iter().position(|b| *b == b'\n')?;
        let start = self.pos;
        self.pos += len + 1;
        self.number += 1;
        Some(Line {
            number: self.number,
            start,
            bytes: &rest[..len],
            end_with_newline: self.pos,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SHARE: &str = "TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc";
    const BODY: &str = "hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE";
    const MAC: &str = "WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg";

    fn header(stanzas: &str) -> String {
        format!("age-encryption.org/v1\n{stanzas}--- {MAC}\n")
    }

    fn parse(text: &str) -> Result<Option<Header>, HeaderError> {
        Header::parse(text.as_bytes())
    }

    #[test]
    fn parses_a_well_formed_header_and_stops_at_its_end() {
        let text = header(&format!("-> X25519 {SHARE}\n{BODY}\n"));
        let with_payload = format!("{text}\u{0}\u{1}binary payload");
        let h = parse(&with_payload).unwrap().unwrap();
        assert_eq!(h.encoded_len(), text.len());
        assert_eq!(h.stanzas.len(), 1);
        assert_eq!(h.stanzas[0].tag, "X25519");
        assert_eq!(h.stanzas[0].args, vec![SHARE.to_owned()]);
        assert_eq!(h.stanzas[0].body.len(), 32);
        assert_eq!(h.to_bytes(), text.as_bytes());
    }

    #[test]
    fn every_prefix_of_a_header_asks_for_more() {
        let text = header(&format!("-> X25519 {SHARE}\n{BODY}\n"));
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut]), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn each_grammar_rule_has_its_error() {
        let cases: Vec<(String, HeaderError)> = vec![
            ("hello world\n".into(), HeaderError::NotAge),
            ("\u{1}\u{2}binary".into(), HeaderError::NotAge),
            (
                "age-encryption.org/v2\n".into(),
                HeaderError::UnsupportedVersion,
            ),
            (header("-> a\tb\n\n"), HeaderError::InvalidCharacter(2)),
            (header("-> a\r\n\n"), HeaderError::InvalidCharacter(2)),
            (header("-> a  b\n\n"), HeaderError::EmptyArgument(2)),
            (header("-> \n\n"), HeaderError::EmptyArgument(2)),
            (
                header(&format!("-> a\n{}\n", "A".repeat(65))),
                HeaderError::InvalidBodyLine(3),
            ),
            (header("-> a\nAA==\n"), HeaderError::InvalidBodyLine(3)),
            (header("-> a\nAB\n"), HeaderError::NonCanonicalBase64(3)),
            (
                header("-> a\n\nsomething\n"),
                HeaderError::UnexpectedLine(4),
            ),
            (header(""), HeaderError::NoStanza),
            (
                "age-encryption.org/v1\n-> a\n\n---\n".into(),
                HeaderError::MalformedMac(4),
            ),
            (
                "age-encryption.org/v1\n-> a\n\n--- AAAA\n".into(),
                HeaderError::MalformedMac(4),
            ),
            (
                header("-> scrypt salt 10\n\n-> X25519 a\n\n"),
                HeaderError::ScryptNotAlone,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(&text), Err(want.clone()), "{text:?}");
        }
    }

    #[test]
    fn body_filling_its_last_line_needs_an_empty_final_line() {
        // 48 bytes encode to exactly 64 base64 columns.
        let full = "A".repeat(64);
        let ok = header(&format!("-> a\n{full}\n\n"));
        assert_eq!(parse(&ok).unwrap().unwrap().stanzas[0].body, vec![0u8; 48]);
        let missing = header(&format!("-> a\n{full}\n"));
        assert_eq!(parse(&missing), Err(HeaderError::InvalidBodyLine(4)));
    }

    #[test]
    fn encoding_round_trips_bodies_of_every_length() {
        let key = FileKey::from_bytes([3; 16]);
        for len in 0..200 {
            let stanza = Stanza {
                tag: "t".into(),
                args: vec!["x".into()],
                body: vec![0xA5; len],
            };
            let h = Header::new(vec![stanza.clone()], &key);
            let parsed = Header::parse(&h.to_bytes()).unwrap().unwrap();
            assert_eq!(parsed.stanzas, vec![stanza]);
            assert!(parsed.verify_mac(&key));
            assert!(!parsed.verify_mac(&FileKey::from_bytes([4; 16])));
        }
    }

    #[test]
    fn oversized_headers_are_refused() {
        let many = "-> a\n\n".repeat(MAX_STANZAS + 1);
        assert_eq!(parse(&header(&many)), Err(HeaderError::TooLarge));
        let endless = format!(
            "age-encryption.org/v1\n-> a\n{}",
            "AAAA\n".repeat(HEADER_MAX_BYTES / 4)
        );
        assert!(parse(&endless).is_err());
    }
}
