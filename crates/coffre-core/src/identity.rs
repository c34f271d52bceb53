//! X25519 identities and recipients, encoded as age encodes them.
//!
//! An [`Identity`] is a private key (`AGE-SECRET-KEY-1…`, upper-case Bech32); its
//! [`Recipient`] is the public key (`age1…`, lower-case Bech32). Both are 32 bytes
//! (c2sp.org/age, "X25519 recipient type").

use core::{fmt, str::FromStr};

use bech32::{primitives::decode::CheckedHrpstring, Bech32, Hrp};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::random::{random_array, RandomError};

/// Bech32 human-readable part of a recipient.
pub const RECIPIENT_HRP: &str = "age";
/// Bech32 human-readable part of an identity (encoded upper-case).
pub const IDENTITY_HRP: &str = "AGE-SECRET-KEY-";
/// Length of an X25519 key, private or public.
pub const KEY_BYTES: usize = 32;

/// Why a key string or key file could not be read.
///
/// Messages never contain the text that was being parsed: it may be a secret key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The string is not valid Bech32 (bad character, mixed case, or checksum mismatch).
    #[error("not a valid Bech32 string: {0}")]
    Bech32(&'static str),
    /// The Bech32 prefix is not the expected one.
    #[error("wrong key type: expected a key starting with {expected}")]
    WrongPrefix {
        /// The prefix that was expected (`age` or `AGE-SECRET-KEY-`).
        expected: &'static str,
    },
    /// The key decodes to a payload of the wrong length.
    #[error("wrong key length: expected 32 bytes, found {0}")]
    WrongLength(usize),
    /// A key file line is neither a comment, blank, nor a key.
    #[error("line {line}: not a key")]
    InvalidLine {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        #[source]
        source: Box<KeyError>,
    },
    /// A key file holds no key at all.
    #[error("no key found in the file")]
    Empty,
    /// The secure random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// An X25519 private key. Wiped on drop; `Debug` shows only its recipient.
#[derive(Clone)]
pub struct Identity {
    secret: StaticSecret,
    /// Kept beside the secret: unwrapping a stanza needs it, and recomputing it would
    /// double the scalar multiplications per stanza.
    public: PublicKey,
}

impl Identity {
    /// Generates a new identity from the secure random source.
    pub fn generate() -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(random_array::<KEY_BYTES>()?);
        Ok(Self::from_bytes(&bytes))
    }

    /// Builds an identity from its 32 secret bytes (for key bundles).
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> Self {
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The 32 secret bytes, wiped when the returned value is dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_BYTES]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public half.
    pub fn to_recipient(&self) -> Recipient {
        Recipient(self.public)
    }

    /// `AGE-SECRET-KEY-1…`, as age-keygen writes it. The string is wiped on drop.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let bytes = self.to_bytes();
        // The HRP is a constant and the payload 32 bytes: encoding cannot fail.
        let hrp = Hrp::parse_unchecked(IDENTITY_HRP);
        Zeroizing::new(bech32::encode_upper::<Bech32>(hrp, bytes.as_slice()).unwrap_or_default())
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("recipient", &self.to_recipient().to_string())
            .finish_non_exhaustive()
    }
}

impl FromStr for Identity {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = Zeroizing::new(decode_key(s.trim(), IDENTITY_HRP)?);
        Ok(Self::from_bytes(&bytes))
    }
}

/// An X25519 public key: who a document can be encrypted to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Recipient(PublicKey);

impl Recipient {
    /// Builds a recipient from its 32 public bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(PublicKey::from(bytes))
    }

    /// The 32 public bytes.
    pub fn to_bytes(&self) -> [u8; KEY_BYTES] {
        self.0.to_bytes()
    }

    pub(crate) fn public(&self) -> &PublicKey {
        &self.0
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(RECIPIENT_HRP);
        let s = bech32::encode::<Bech32>(hrp, self.0.as_bytes()).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl FromStr for Recipient {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_key(s.trim(), RECIPIENT_HRP).map(Self::from_bytes)
    }
}

/// Decodes a Bech32 (not Bech32m) key with the given prefix into 32 bytes.
fn decode_key(s: &str, expected: &'static str) -> Result<[u8; KEY_BYTES], KeyError> {
    let checked = CheckedHrpstring::new::<Bech32>(s).map_err(|e| {
        use bech32::primitives::decode::CheckedHrpstringError as E;
        KeyError::Bech32(match e {
            E::Parse(_) => "malformed string (bad character, mixed case or missing separator)",
            E::Checksum(_) => "checksum mismatch (a character is wrong or missing)",
            _ => "malformed string",
        })
    })?;
    if !checked.hrp().as_str().eq_ignore_ascii_case(expected) {
        return Err(KeyError::WrongPrefix { expected });
    }
    // 52 characters carry 260 bits for 256: the 4 left over must be zero, as age's decoder
    // requires (BIP-173 conversion without padding), so that each key has one spelling and
    // Coffre accepts no key string that age refuses.
    checked
        .validate_segwit_padding()
        .map_err(|_| KeyError::Bech32("non-zero padding bits (not a canonical encoding)"))?;
    let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(checked.byte_iter().collect());
    let len = bytes.len();
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::WrongLength(len))
}

/// Reads an identity file in age-keygen's format: one `AGE-SECRET-KEY-1…` per line,
/// `#` comments and blank lines allowed.
pub fn parse_identity_file(text: &str) -> Result<Vec<Identity>, KeyError> {
    parse_key_lines(text)
}

/// Reads a recipients file (`-R`): one `age1…` per line, `#` comments and blank lines.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Recipient>, KeyError> {
    parse_key_lines(text)
}

fn parse_key_lines<T: FromStr<Err = KeyError>>(text: &str) -> Result<Vec<T>, KeyError> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.parse().map_err(|source| KeyError::InvalidLine {
            line: index + 1,
            source: Box::new(source),
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    // The CCTV age test vectors' identity and its recipient as age-keygen prints it.
    const VECTOR_IDENTITY: &str =
        "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6";

    #[test]
    fn identity_string_round_trips() {
        let id: Identity = VECTOR_IDENTITY.parse().unwrap();
        assert_eq!(id.to_secret_string().as_str(), VECTOR_IDENTITY);
        let recipient = id.to_recipient().to_string();
        assert!(recipient.starts_with("age1"));
        assert_eq!(recipient.parse::<Recipient>().unwrap(), id.to_recipient());
    }

    #[test]
    fn generated_identities_differ() {
        let a = Identity::generate().unwrap();
        let b = Identity::generate().unwrap();
        assert_ne!(a.to_recipient(), b.to_recipient());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let id: Identity = VECTOR_IDENTITY.parse().unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.to_uppercase().contains("SECRET-KEY"));
        assert!(shown.contains("age1"));
    }

    #[test]
    fn rejects_wrong_prefix_and_checksum() {
        let id: Identity = VECTOR_IDENTITY.parse().unwrap();
        let recipient = id.to_recipient().to_string();
        assert_eq!(
            recipient.parse::<Identity>().unwrap_err(),
            KeyError::WrongPrefix {
                expected: IDENTITY_HRP
            }
        );
        assert_eq!(
            VECTOR_IDENTITY.parse::<Recipient>().unwrap_err(),
            KeyError::WrongPrefix {
                expected: RECIPIENT_HRP
            }
        );
        let mut typo = recipient.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'q' { b'p' } else { b'q' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(matches!(
            typo.parse::<Recipient>().unwrap_err(),
            KeyError::Bech32(_)
        ));
        let mixed = format!("A{}", &recipient[1..]);
        assert!(matches!(
            mixed.parse::<Recipient>().unwrap_err(),
            KeyError::Bech32(_)
        ));
    }

    /// Found by the `keys` fuzz target (docs/fuzzing.md): a recipient whose last data
    /// character has a padding bit set decoded to the same key as the canonical one.
    #[test]
    fn rejects_non_zero_padding_bits() {
        use bech32::primitives::iter::{ByteIterExt, Fe32IterExt};
        let spell = |hrp: &str, bytes: &[u8], pad: u8| -> String {
            let mut data: Vec<bech32::Fe32> = bytes.iter().copied().bytes_to_fes().collect();
            let last = data.pop().unwrap();
            data.push(bech32::Fe32::try_from(last.to_u8() | pad).unwrap());
            data.into_iter()
                .with_checksum::<Bech32>(&Hrp::parse(hrp).unwrap())
                .chars()
                .collect()
        };
        let canonical = spell(RECIPIENT_HRP, &[7u8; 32], 0);
        assert_eq!(
            canonical.parse::<Recipient>().unwrap().to_bytes(),
            [7u8; 32]
        );
        for pad in 1..16 {
            let padded = spell(RECIPIENT_HRP, &[7u8; 32], pad);
            assert!(
                matches!(padded.parse::<Recipient>(), Err(KeyError::Bech32(_))),
                "{padded}"
            );
        }
        let identity = spell(IDENTITY_HRP, &[9u8; 32], 1).to_ascii_uppercase();
        assert!(matches!(
            identity.parse::<Identity>(),
            Err(KeyError::Bech32(_))
        ));
        // The spelling the fuzz target found, for the record.
        let found = "age1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc03q6rzrf";
        assert!(found.parse::<Recipient>().is_err());
        assert!(
            "age1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0savhh7m"
                .parse::<Recipient>()
                .is_ok()
        );
    }

    #[test]
    fn rejects_bech32m_and_wrong_length() {
        let hrp = Hrp::parse_unchecked(RECIPIENT_HRP);
        let m = bech32::encode::<bech32::Bech32m>(hrp, &[7u8; 32]).unwrap();
        assert!(matches!(m.parse::<Recipient>(), Err(KeyError::Bech32(_))));
        let short = bech32::encode::<Bech32>(hrp, &[7u8; 31]).unwrap();
        assert_eq!(
            short.parse::<Recipient>().unwrap_err(),
            KeyError::WrongLength(31)
        );
    }

    #[test]
    fn identity_file_accepts_age_keygen_format() {
        let text =
            format!("# created: 2026-11-22T10:00:00Z\n# public key: age1…\n\n{VECTOR_IDENTITY}\n");
        let ids = parse_identity_file(&text).unwrap();
        assert_eq!(ids.len(), 1);
        assert!(matches!(
            parse_identity_file("# only comments\n"),
            Err(KeyError::Empty)
        ));
        let err = parse_identity_file("# c\nnot-a-key\n").unwrap_err();
        assert!(matches!(err, KeyError::InvalidLine { line: 2, .. }));
        assert!(!err.to_string().contains("not-a-key"));
    }

    proptest! {
        #[test]
        fn any_key_round_trips(bytes in any::<[u8; 32]>()) {
            let id = Identity::from_bytes(&bytes);
            let parsed: Identity = id.to_secret_string().parse().unwrap();
            prop_assert_eq!(parsed.to_bytes(), id.to_bytes());
            let r = Recipient::from_bytes(bytes);
            prop_assert_eq!(r.to_string().parse::<Recipient>().unwrap(), r);
        }
    }
}
