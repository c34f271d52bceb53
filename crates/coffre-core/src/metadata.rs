//! Document metadata (name, MIME type, category, dates the user typed), sealed under a key
//! derived from the document's [`FileKey`] so that the server never sees it in clear
//! (DESIGN.md, "Metadata").
//!
//! # Format (version 1)
//!
//! Sealed:
//!
//! ```text
//! offset  size       field
//! 0       1          version = 0x01
//! 1       12         nonce, random
//! 13      n·256 + 16 ChaCha20-Poly1305(key, nonce, padded plaintext, ad) || tag
//! ```
//!
//! `key` = HKDF-SHA-256(salt = empty, ikm = file key, info = `METADATA_KEY_LABEL`);
//! `ad` = `METADATA_AD_LABEL` || version.
//!
//! Plaintext: five fields in this order, each a 2-byte big-endian length then the UTF-8
//! bytes: name, MIME type, category tag, created date, document date. An empty date
//! field means "no date". Then zero bytes up to the next multiple of [`PAD_BLOCK_BYTES`]
//! (at least one block), so the sealed length tells the name's length only to within
//! 256 bytes — every ordinary file name gives the same length. Readers refuse non-zero
//! padding, so each metadata value has exactly one encoding.

use core::fmt;

use chacha20poly1305::{
    aead::{Aead, Payload},
    ChaCha20Poly1305, KeyInit, Nonce,
};
use zeroize::Zeroizing;

use crate::{
    keys::FileKey,
    random::{random_array, RandomError},
};

/// The only metadata format version.
pub const METADATA_VERSION: u8 = 1;
/// The plaintext is zero-padded to a multiple of this many bytes.
pub const PAD_BLOCK_BYTES: usize = 256;
/// Longest file name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest MIME type, in bytes (RFC 6838 §4.2: 127 for type and for subtype).
pub const MAX_MIME_TYPE_BYTES: usize = 255;
/// ChaCha20-Poly1305 nonce length.
const NONCE_BYTES: usize = 12;
/// Poly1305 tag length.
const TAG_BYTES: usize = 16;
/// Length of a `YYYY-MM-DD` date.
const DATE_BYTES: usize = 10;
/// Largest padded plaintext a valid version 1 value can have (longest fields, rounded up).
const MAX_PADDED_BYTES: usize =
    round_up(5 * 2 + MAX_NAME_BYTES + MAX_MIME_TYPE_BYTES + 8 + 2 * DATE_BYTES);

/// HKDF info of the metadata key.
const METADATA_KEY_LABEL: &[u8] = b"coffre/v1/metadata/key";
/// Prefix of the associated data.
const METADATA_AD_LABEL: &[u8] = b"coffre/v1/metadata/ad";

const fn round_up(len: usize) -> usize {
    if len == 0 {
        PAD_BLOCK_BYTES
    } else {
        len.div_ceil(PAD_BLOCK_BYTES) * PAD_BLOCK_BYTES
    }
}

/// What kind of paper a document is. The tags are stable: they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Identity papers: ID card, passport, residence permit, birth certificate.
    Identity,
    /// Health: insurance card, prescriptions, medical records.
    Health,
    /// Housing: lease, proof of address, accommodation certificate.
    Housing,
    /// Income and benefits: pay slips, tax notices, benefit letters.
    Income,
    /// Anything else.
    Other,
}

impl Category {
    /// Every category, in display order.
    pub const ALL: [Category; 5] = [
        Self::Identity,
        Self::Health,
        Self::Housing,
        Self::Income,
        Self::Other,
    ];

    /// The stored tag: `identity`, `health`, `housing`, `income` or `other`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Health => "health",
            Self::Housing => "housing",
            Self::Income => "income",
            Self::Other => "other",
        }
    }

    /// The category of a stored tag.
    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.tag() == tag)
    }
}

/// A document's metadata, in clear. `Debug` hides the name and the dates.
#[derive(Clone, PartialEq, Eq)]
pub struct Metadata {
    /// File name, at most [`MAX_NAME_BYTES`] bytes, no control characters.
    pub name: String,
    /// MIME type such as `application/pdf`: printable ASCII, at most
    /// [`MAX_MIME_TYPE_BYTES`] bytes.
    pub mime_type: String,
    /// What kind of paper it is.
    pub category: Category,
    /// Date the user gave for when the paper was made, `YYYY-MM-DD`.
    pub created: Option<String>,
    /// Date printed on the document (issue or validity date), `YYYY-MM-DD`.
    pub document_date: Option<String>,
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("name", &"<redacted>")
            .field("mime_type", &self.mime_type)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

/// Why metadata could not be sealed or opened.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The name is longer than [`MAX_NAME_BYTES`].
    #[error("the file name is too long: {len} bytes, at most {max}")]
    NameTooLong {
        /// Its length in UTF-8 bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a control character (line break, tab, NUL…).
    #[error("the file name contains a control character")]
    InvalidName,
    /// The MIME type is longer than [`MAX_MIME_TYPE_BYTES`].
    #[error("the MIME type is too long: {len} bytes, at most {max}")]
    MimeTypeTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The MIME type holds a character outside printable ASCII.
    #[error("the MIME type contains a character outside printable ASCII")]
    InvalidMimeType,
    /// A date is not a real calendar date written `YYYY-MM-DD`.
    #[error("the {field} date is not a valid YYYY-MM-DD date")]
    InvalidDate {
        /// `created` or `document_date`.
        field: &'static str,
    },
    /// The sealed value's length is impossible for its version.
    #[error("malformed sealed metadata: {found} bytes is not a valid length")]
    WrongLength {
        /// The length received.
        found: usize,
    },
    /// The first byte names a version this build does not know.
    #[error("unsupported metadata version {0}")]
    UnsupportedVersion(u8),
    /// Wrong file key, or tampered ciphertext. Which one is not told.
    #[error("the metadata could not be opened (wrong key or tampered)")]
    Authentication,
    /// The decrypted plaintext does not follow the encoding (a writer bug).
    #[error("malformed metadata plaintext: {0}")]
    Malformed(&'static str),
    /// The secure random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Seals `metadata` under a key derived from the document's file key.
pub fn seal_metadata(metadata: &Metadata, file_key: &FileKey) -> Result<Vec<u8>, MetadataError> {
    validate(metadata)?;
    let plain = encode(metadata);
    let nonce = random_array::<NONCE_BYTES>()?;
    let key = derive_metadata_key(file_key);
    let sealed = ChaCha20Poly1305::new(key.as_slice().into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &associated_data(METADATA_VERSION),
            },
        )
        // Encryption fails only for messages over 256 GiB.
        .map_err(|_| MetadataError::Authentication)?;
    let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
    out.push(METADATA_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens metadata sealed by [`seal_metadata`] with the same file key.
pub fn open_metadata(sealed: &[u8], file_key: &FileKey) -> Result<Metadata, MetadataError> {
    let (&version, rest) = sealed
        .split_first()
        .ok_or(MetadataError::WrongLength { found: 0 })?;
    if version != METADATA_VERSION {
        return Err(MetadataError::UnsupportedVersion(version));
    }
    let wrong_length = MetadataError::WrongLength {
        found: sealed.len(),
    };
    if rest.len() < NONCE_BYTES + TAG_BYTES {
        return Err(wrong_length);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
    let padded_len = ciphertext.len() - TAG_BYTES;
    if padded_len == 0 || padded_len % PAD_BLOCK_BYTES != 0 || padded_len > MAX_PADDED_BYTES {
        return Err(wrong_length);
    }
    let key = derive_metadata_key(file_key);
    let plain = Zeroizing::new(
        ChaCha20Poly1305::new(key.as_slice().into())
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &associated_data(version),
                },
            )
            .map_err(|_| MetadataError::Authentication)?,
    );
    let metadata = decode(&plain)?;
    validate(&metadata)?;
    Ok(metadata)
}

fn derive_metadata_key(file_key: &FileKey) -> Zeroizing<[u8; 32]> {
    crate::kdf::hkdf_sha256(None, file_key.expose(), METADATA_KEY_LABEL)
}

fn associated_data(version: u8) -> Vec<u8> {
    [METADATA_AD_LABEL, &[version]].concat()
}

fn validate(metadata: &Metadata) -> Result<(), MetadataError> {
    let name_len = metadata.name.len();
    if name_len > MAX_NAME_BYTES {
        return Err(MetadataError::NameTooLong {
            len: name_len,
            max: MAX_NAME_BYTES,
        });
    }
    if metadata.name.chars().any(char::is_control) {
        return Err(MetadataError::InvalidName);
    }
    let mime_len = metadata.mime_type.len();
    if mime_len > MAX_MIME_TYPE_BYTES {
        return Err(MetadataError::MimeTypeTooLong {
            len: mime_len,
            max: MAX_MIME_TYPE_BYTES,
        });
    }
    if !metadata
        .mime_type
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b))
    {
        return Err(MetadataError::InvalidMimeType);
    }
    for (field, date) in [
        ("created", &metadata.created),
        ("document_date", &metadata.document_date),
    ] {
        if let Some(date) = date {
            if !is_valid_date(date) {
                return Err(MetadataError::InvalidDate { field });
            }
        }
    }
    Ok(())
}

/// A proleptic Gregorian `YYYY-MM-DD` date, years 0001 to 9999.
fn is_valid_date(date: &str) -> bool {
    let b = date.as_bytes();
    if b.len() != DATE_BYTES || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |range: core::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= 1 && (1..=days_in_month).contains(&day)
}

/// Encodes and pads. Only called on validated metadata, so every field fits in a `u16`.
fn encode(metadata: &Metadata) -> Zeroizing<Vec<u8>> {
    let fields: [&str; 5] = [
        &metadata.name,
        &metadata.mime_type,
        metadata.category.tag(),
        metadata.created.as_deref().unwrap_or(""),
        metadata.document_date.as_deref().unwrap_or(""),
    ];
    let len: usize = fields.iter().map(|f| 2 + f.len()).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(round_up(len)));
    for field in fields {
        let field_len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&field_len.to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.resize(round_up(len), 0);
    out
}

fn decode(plain: &[u8]) -> Result<Metadata, MetadataError> {
    let mut rest = plain;
    let mut next = |what: &'static str| -> Result<String, MetadataError> {
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or(MetadataError::Malformed(what))?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (field, tail) = tail
            .split_at_checked(len)
            .ok_or(MetadataError::Malformed(what))?;
        rest = tail;
        String::from_utf8(field.to_vec()).map_err(|_| MetadataError::Malformed(what))
    };
    let name = next("name field")?;
    let mime_type = next("MIME type field")?;
    let category = next("category field")?;
    let created = next("created date field")?;
    let document_date = next("document date field")?;
    let category =
        Category::from_tag(&category).ok_or(MetadataError::Malformed("unknown category"))?;
    if rest.iter().any(|b| *b != 0) {
        return Err(MetadataError::Malformed("non-zero padding"));
    }
    if round_up(plain.len() - rest.len()) != plain.len() {
        return Err(MetadataError::Malformed("padding longer than one block"));
    }
    let optional = |s: String| (!s.is_empty()).then_some(s);
    Ok(Metadata {
        name,
        mime_type,
        category,
        created: optional(created),
        document_date: optional(document_date),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn sample(name: &str) -> Metadata {
        Metadata {
            name: name.to_owned(),
            mime_type: "application/pdf".to_owned(),
            category: Category::Housing,
            created: Some("2026-02-28".to_owned()),
            document_date: None,
        }
    }

    fn key(byte: u8) -> FileKey {
        FileKey::from_bytes([byte; 16])
    }

    #[test]
    fn round_trip() {
        let meta = sample("attestation d'hébergement.pdf");
        let sealed = seal_metadata(&meta, &key(1)).unwrap();
        assert_eq!(sealed[0], METADATA_VERSION);
        assert_eq!(sealed.len(), 1 + 12 + 256 + 16);
        assert_eq!(open_metadata(&sealed, &key(1)).unwrap(), meta);
    }

    #[test]
    fn all_fields_and_categories_round_trip() {
        for category in Category::ALL {
            assert_eq!(Category::from_tag(category.tag()), Some(category));
            let meta = Metadata {
                name: "x".repeat(MAX_NAME_BYTES),
                mime_type: "m".repeat(MAX_MIME_TYPE_BYTES),
                category,
                created: Some("2024-02-29".to_owned()),
                document_date: Some("9999-12-31".to_owned()),
            };
            let sealed = seal_metadata(&meta, &key(3)).unwrap();
            assert_eq!(sealed.len(), 1 + 12 + MAX_PADDED_BYTES + 16);
            assert_eq!(open_metadata(&sealed, &key(3)).unwrap(), meta);
        }
        assert_eq!(Category::from_tag("Health"), None);
    }

    #[test]
    fn sealed_length_hides_the_name_length() {
        let short = seal_metadata(&sample("a"), &key(1)).unwrap();
        let long = seal_metadata(&sample(&"é".repeat(100)), &key(1)).unwrap();
        assert_eq!(sample(&"é".repeat(100)).name.len(), 200);
        assert_eq!(short.len(), long.len());
    }

    #[test]
    fn wrong_file_key_is_authentication_failure() {
        let sealed = seal_metadata(&sample("a.pdf"), &key(1)).unwrap();
        assert_eq!(
            open_metadata(&sealed, &key(2)).unwrap_err(),
            MetadataError::Authentication
        );
    }

    #[test]
    fn every_bit_flip_is_refused() {
        let sealed = seal_metadata(&sample("a.pdf"), &key(1)).unwrap();
        for bit in 0..sealed.len() * 8 {
            let mut flipped = sealed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let err = open_metadata(&flipped, &key(1)).unwrap_err();
            if bit < 8 {
                assert!(matches!(err, MetadataError::UnsupportedVersion(_)));
            } else {
                assert_eq!(err, MetadataError::Authentication);
            }
        }
    }

    #[test]
    fn truncation_and_version_are_parse_errors() {
        let sealed = seal_metadata(&sample("a.pdf"), &key(1)).unwrap();
        assert_eq!(
            open_metadata(&[], &key(1)).unwrap_err(),
            MetadataError::WrongLength { found: 0 }
        );
        for len in [1, 13, 28, 29, 100, sealed.len() - 1] {
            assert_eq!(
                open_metadata(&sealed[..len], &key(1)).unwrap_err(),
                MetadataError::WrongLength { found: len }
            );
        }
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert_eq!(
            open_metadata(&v2, &key(1)).unwrap_err(),
            MetadataError::UnsupportedVersion(2)
        );
        let too_long = [sealed.as_slice(), &[0; 2048]].concat();
        assert!(matches!(
            open_metadata(&too_long, &key(1)),
            Err(MetadataError::WrongLength { .. })
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let mut meta = sample(&"n".repeat(MAX_NAME_BYTES + 1));
        assert_eq!(
            seal_metadata(&meta, &key(1)).unwrap_err(),
            MetadataError::NameTooLong {
                len: MAX_NAME_BYTES + 1,
                max: MAX_NAME_BYTES
            }
        );
        meta.name = "two\nlines".to_owned();
        assert_eq!(
            seal_metadata(&meta, &key(1)).unwrap_err(),
            MetadataError::InvalidName
        );
        meta.name = "ok.pdf".to_owned();
        meta.mime_type = "m".repeat(MAX_MIME_TYPE_BYTES + 1);
        assert!(matches!(
            seal_metadata(&meta, &key(1)),
            Err(MetadataError::MimeTypeTooLong { .. })
        ));
        meta.mime_type = "image/jpég".to_owned();
        assert_eq!(
            seal_metadata(&meta, &key(1)).unwrap_err(),
            MetadataError::InvalidMimeType
        );
        meta.mime_type = "text/plain; charset=utf-8".to_owned();
        assert!(seal_metadata(&meta, &key(1)).is_ok());
        for bad in [
            "2026-2-28",
            "2026-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-01-00",
            "0000-01-01",
            "2023-01-32",
            "2023/01/10",
            "20230110",
            "2023-01-1a",
            "+123-01-01",
            "",
        ] {
            meta.created = Some(bad.to_owned());
            assert_eq!(
                seal_metadata(&meta, &key(1)).unwrap_err(),
                MetadataError::InvalidDate { field: "created" },
                "{bad}"
            );
        }
        meta.created = None;
        meta.document_date = Some("2100-02-29".to_owned());
        assert_eq!(
            seal_metadata(&meta, &key(1)).unwrap_err(),
            MetadataError::InvalidDate {
                field: "document_date"
            }
        );
        for good in ["2000-02-29", "2024-02-29", "2023-04-30", "0001-01-01"] {
            meta.document_date = Some(good.to_owned());
            assert!(seal_metadata(&meta, &key(1)).is_ok(), "{good}");
        }
    }

    #[test]
    fn malformed_plaintext_is_reported() {
        // Sealed by hand under the right key, as a buggy writer would.
        let seal_raw = |plain: &[u8]| {
            let key = derive_metadata_key(&key(1));
            let nonce = [7u8; NONCE_BYTES];
            let body = ChaCha20Poly1305::new(key.as_slice().into())
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: plain,
                        aad: &associated_data(1),
                    },
                )
                .unwrap();
            [&[1u8][..], &nonce, &body].concat()
        };
        let good = encode(&sample("a"));
        let mut bad_padding = good.to_vec();
        bad_padding[255] = 1;
        assert_eq!(
            open_metadata(&seal_raw(&bad_padding), &key(1)).unwrap_err(),
            MetadataError::Malformed("non-zero padding")
        );
        let mut bad_category = encode(&sample("a")).to_vec();
        // name "a" (2+1), mime (2+15), then the category tag "housing".
        bad_category[22] = b'H';
        assert_eq!(
            open_metadata(&seal_raw(&bad_category), &key(1)).unwrap_err(),
            MetadataError::Malformed("unknown category")
        );
        let mut overlong = vec![0u8; 256];
        overlong[0] = 0xff;
        assert_eq!(
            open_metadata(&seal_raw(&overlong), &key(1)).unwrap_err(),
            MetadataError::Malformed("name field")
        );
        let extra_block = [good.as_slice(), &[0u8; 256]].concat();
        assert_eq!(
            open_metadata(&seal_raw(&extra_block), &key(1)).unwrap_err(),
            MetadataError::Malformed("padding longer than one block")
        );
        let mut bad_date = encode(&sample("a")).to_vec();
        // name (3) + mime (17) + category (9) + created length (2) = 31: first digit.
        bad_date[31] = b'x';
        assert_eq!(
            open_metadata(&seal_raw(&bad_date), &key(1)).unwrap_err(),
            MetadataError::InvalidDate { field: "created" }
        );
    }

    #[test]
    fn debug_hides_name_and_dates() {
        let shown = format!("{:?}", sample("secret-diagnosis.pdf"));
        assert!(!shown.contains("diagnosis"));
        assert!(!shown.contains("2026"));
        assert!(shown.contains("Housing"));
    }

    fn date() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(
            (1u32..=9999, 1u32..=12, 1u32..=28)
                .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        )
    }

    proptest! {
        #[test]
        fn any_metadata_round_trips(
            name in "[^\\p{Cc}]{0,250}",
            mime_type in "[ -~]{0,100}",
            category in proptest::sample::select(Category::ALL.to_vec()),
            created in date(),
            document_date in date(),
            file_key in any::<[u8; 16]>(),
        ) {
            let meta = Metadata { name, mime_type, category, created, document_date };
            let file_key = FileKey::from_bytes(file_key);
            let sealed = seal_metadata(&meta, &file_key).unwrap();
            prop_assert_eq!((sealed.len() - 1 - 12 - 16) % PAD_BLOCK_BYTES, 0);
            prop_assert_eq!(open_metadata(&sealed, &file_key).unwrap(), meta);
        }

        #[test]
        fn other_file_key_never_opens(a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            prop_assume!(a != b);
            let sealed = seal_metadata(&sample("a.pdf"), &FileKey::from_bytes(a)).unwrap();
            prop_assert_eq!(
                open_metadata(&sealed, &FileKey::from_bytes(b)).unwrap_err(),
                MetadataError::Authentication
            );
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = open_metadata(&bytes, &key(1));
            let _ = decode(&bytes);
        }
    }
}
