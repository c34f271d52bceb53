//! Errors as JS sees them: a real `Error` whose `name` is `"CoffreError"` and whose `code`
//! is one of a fixed set of strings (STYLE.md, "Errors").
//!
//! Codes are mapped from coffre-core's error enums by `match` on the variants, never by
//! looking at messages, so a message can be reworded without breaking partner code. The
//! core enums are `#[non_exhaustive]`: a variant added there without a mapping here falls
//! into [`ErrorCode::Internal`] until someone maps it (the list below names every variant
//! that exists today, so the fallback arm is only reached by new ones).
//!
//! Messages are fixed English sentences, one per code (a few codes have a more precise
//! one), never built with `format!` or the core errors' `Display`: formatting machinery
//! and the core's message templates would cost the browser module several KB for text
//! that partner code must not parse anyway.

use coffre_core::armor::ArmorError;
use coffre_core::bundle::BundleError;
use coffre_core::format::header::HeaderError;
use coffre_core::metadata::MetadataError;
use coffre_core::opaque::{LoginError, MessageError, RegistrationError, UnknownKsfVersion};
use coffre_core::recovery::RecoveryCodeError;
use coffre_core::referents::ReferentError;
use coffre_core::{DecryptError, EncryptError, EnvelopeError, KeyError, RandomError};
use wasm_bindgen::prelude::*;

/// Declares the error codes once: the enum, its string form and the list of all codes.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal => $message:literal,)*) => {
        /// A stable, machine-readable error class. Partner code switches on the string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order (mirrored by `CoffreErrorCode` in
            /// `pkg/index.d.ts`; a JS test checks that both lists agree).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The string JS sees in `error.code`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The default message of the code (English, for developers).
            pub fn message(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $message,)*
                }
            }
        }
    };
}

error_codes! {
    /// A key string is not valid Bech32 (typo, bad character, mixed case, bad checksum).
    KeyInvalid = "KEY_INVALID" => "the key is not valid Bech32 (a typo, a wrong character, mixed case or a bad checksum)",
    /// A key string has the wrong prefix (a recipient where an identity was expected…).
    KeyWrongType = "KEY_WRONG_TYPE" => "the key is of the wrong type (an identity where a recipient was expected, or the reverse)",
    /// A key decodes to the wrong number of bytes.
    KeyWrongLength = "KEY_WRONG_LENGTH" => "the key has the wrong length",
    /// A key file holds no key.
    KeyFileEmpty = "KEY_FILE_EMPTY" => "the key file holds no key",
    /// A key file line is not a key (the message says which line).
    KeyFileInvalidLine = "KEY_FILE_INVALID_LINE" => "a line of the key file is neither a key, a comment nor blank",
    /// The browser's or system's secure random source failed.
    RandomUnavailable = "RANDOM_UNAVAILABLE" => "the secure random number generator failed",
    /// Encryption needs at least one recipient.
    NoRecipients = "NO_RECIPIENTS" => "encryption needs at least one recipient",
    /// The document is too large for the age STREAM counter.
    TooLarge = "TOO_LARGE" => "the document is too large for the age format",
    /// The bytes are not an age file at all.
    NotAgeFile = "NOT_AGE_FILE" => "not an age file",
    /// An age file of a version Coffre does not read.
    UnsupportedVersion = "UNSUPPORTED_VERSION" => "unsupported format version",
    /// The file is ASCII-armored but the armor breaks a rule (the message says which,
    /// `error.line` where).
    MalformedArmor = "MALFORMED_ARMOR" => "the ASCII armor is malformed",
    /// The age header breaks the grammar (the message says which rule).
    MalformedHeader = "MALFORMED_HEADER" => "the age header is malformed",
    /// None of the given identities opens the file.
    NoIdentityMatched = "NO_IDENTITY_MATCHED" => "none of the identities opens the file",
    /// The header was altered after it was written.
    HeaderMacMismatch = "HEADER_MAC_MISMATCH" => "the age header was altered (its MAC does not match)",
    /// The payload was altered, reordered, or belongs to another header.
    PayloadAuthenticationFailed = "PAYLOAD_AUTHENTICATION_FAILED" => "the payload was altered, reordered or belongs to another file",
    /// The file ends too early.
    Truncated = "TRUNCATED" => "the file ends too early",
    /// Bytes follow the end of the file or envelope.
    TrailingData = "TRAILING_DATA" => "bytes follow the end of the file or envelope",
    /// The payload's last chunk is empty although the payload is not.
    EmptyFinalChunk = "EMPTY_FINAL_CHUNK" => "the payload ends with an empty chunk after data",
    /// The object already failed or finished and cannot be used again.
    InvalidState = "INVALID_STATE" => "the object is finished or failed",
    /// An envelope must hold exactly one X25519 stanza.
    EnvelopeNotSingleX25519 = "ENVELOPE_NOT_SINGLE_X25519" => "an envelope must hold exactly one X25519 recipient stanza",
    /// An argument has the wrong type or shape (raised by the JS layer).
    InvalidArgument = "INVALID_ARGUMENT" => "invalid argument",
    /// An OPAQUE message from the server (or a stored value) is malformed.
    MalformedMessage = "MALFORMED_MESSAGE" => "the OPAQUE message is malformed",
    /// The server's OPAQUE registration response is well-formed but unacceptable.
    InvalidServerResponse = "INVALID_SERVER_RESPONSE" => "the server's registration response is not acceptable",
    /// Wrong passphrase, unknown account, or a tampered login message (not told apart).
    InvalidLogin = "INVALID_LOGIN" => "wrong passphrase or account, or the login was tampered with",
    /// Argon2id failed, usually for lack of memory.
    KeyStretchingFailed = "KEY_STRETCHING_FAILED" => "Argon2id failed (out of memory?)",
    /// The server named Argon2id parameters this version does not know.
    UnknownKsfVersion = "UNKNOWN_KSF_VERSION" => "unknown Argon2id parameter version",
    /// A key bundle is malformed.
    MalformedBundle = "MALFORMED_BUNDLE" => "the key bundle is malformed",
    /// A passphrase bundle offered to a recovery code, or the reverse.
    BundleWrongKind = "BUNDLE_WRONG_KIND" => "wrong kind of key bundle (passphrase and recovery bundles are not interchangeable)",
    /// The key bundle does not open: wrong key or account, or tampered.
    BundleAuthenticationFailed = "BUNDLE_AUTHENTICATION_FAILED" => "the key bundle does not open: wrong key or account, or altered",
    /// A recovery code has a typo (its checksum does not match).
    RecoveryCodeTypo = "RECOVERY_CODE_TYPO" => "the recovery code has a typo: a character is wrong",
    /// A recovery code holds a character codes never use (the message suggests one).
    RecoveryCodeInvalidCharacter = "RECOVERY_CODE_INVALID_CHARACTER" => "the recovery code holds a character that codes never use",
    /// A recovery code has too many or too few characters.
    RecoveryCodeWrongLength = "RECOVERY_CODE_WRONG_LENGTH" => "a recovery code has 32 characters (without dashes)",
    /// A file name is too long or has control characters.
    MetadataInvalidName = "METADATA_INVALID_NAME" => "the file name is too long or holds control characters",
    /// A MIME type is too long or not printable ASCII.
    MetadataInvalidMimeType = "METADATA_INVALID_MIME_TYPE" => "the MIME type is too long or not printable ASCII",
    /// A date is not a real `YYYY-MM-DD` date.
    MetadataInvalidDate = "METADATA_INVALID_DATE" => "the date is not a real YYYY-MM-DD date",
    /// A category is not one of the known tags.
    MetadataInvalidCategory = "METADATA_INVALID_CATEGORY" => "the category must be identity, health, housing, income or other",
    /// Sealed metadata is malformed.
    MetadataMalformed = "METADATA_MALFORMED" => "the sealed metadata is malformed",
    /// Sealed metadata does not open: wrong document, or tampered.
    MetadataAuthenticationFailed = "METADATA_AUTHENTICATION_FAILED" => "the sealed metadata does not open: wrong document, or altered",
    /// A deal's threshold is 0 or above the number of referents, or there are more than
    /// 10 referents (or none).
    ReferentBadThreshold = "REFERENT_BAD_THRESHOLD" => "the threshold must be between 1 and the number of referents, at most 10",
    /// A sealed share does not open with the given identity (not sealed to it, not an age
    /// file, altered or cut).
    ReferentShareUnreadable = "REFERENT_SHARE_UNREADABLE" => "the sealed share does not open with this key (sealed to another key, altered or cut)",
    /// A share opened but does not match its commitment: altered, from another deal or
    /// for another account.
    ReferentShareWrong = "REFERENT_SHARE_WRONG" => "the share does not match its commitment (altered, from another deal or another account)",
    /// Shares with different thresholds, hence from different deals.
    ReferentSharesMixed = "REFERENT_SHARES_MIXED" => "the shares come from deals with different thresholds",
    /// Two shares with the same index.
    ReferentDuplicateShare = "REFERENT_DUPLICATE_SHARE" => "a share with this index was already given",
    /// Fewer shares than the threshold.
    NotEnoughShares = "NOT_ENOUGH_SHARES" => "not enough shares to rebuild the recovery secret",
    /// A decrypted share has the wrong length or impossible fields.
    MalformedShare = "MALFORMED_SHARE" => "the share is malformed",
    /// A core error this version of the bindings does not know yet.
    Internal = "INTERNAL" => "internal error",
}

/// An error on its way to JS. Converted into a JS `Error` when it crosses the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoffreError {
    code: ErrorCode,
    message: &'static str,
    /// The line of the input the error is on, when it is about text (armor).
    line: Option<usize>,
}

impl CoffreError {
    /// An error with the given code and human-readable message.
    pub fn new(code: ErrorCode, message: &'static str) -> Self {
        Self {
            code,
            message,
            line: None,
        }
    }

    /// The line of the input the error is on, if it is about a line.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// An error with the code's default message.
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.message())
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message (English; never contains key material).
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// The object is finished or failed.
    pub(crate) fn invalid_state(what: &'static str) -> Self {
        Self::new(ErrorCode::InvalidState, what)
    }
}

impl From<CoffreError> for JsValue {
    fn from(e: CoffreError) -> JsValue {
        let error = js_sys::Error::new(e.message);
        error.set_name("CoffreError");
        // Setting a property on a fresh plain Error cannot fail; if it somehow did, the
        // error would still reach JS with its name and message.
        let _ = js_sys::Reflect::set(&error, &JsValue::from_str("code"), &e.code.as_str().into());
        if let Some(line) = e.line {
            let _ = js_sys::Reflect::set(&error, &JsValue::from_str("line"), &(line as f64).into());
        }
        error.into()
    }
}

fn header_code(e: &HeaderError) -> ErrorCode {
    match e {
        HeaderError::NotAge => ErrorCode::NotAgeFile,
        HeaderError::UnsupportedVersion => ErrorCode::UnsupportedVersion,
        HeaderError::Incomplete => ErrorCode::Truncated,
        HeaderError::InvalidCharacter(_)
        | HeaderError::EmptyArgument(_)
        | HeaderError::InvalidBodyLine(_)
        | HeaderError::NonCanonicalBase64(_)
        | HeaderError::UnexpectedLine(_)
        | HeaderError::NoStanza
        | HeaderError::MalformedMac(_)
        | HeaderError::MalformedX25519Stanza
        | HeaderError::ScryptNotAlone
        | HeaderError::TooLarge => ErrorCode::MalformedHeader,
        _ => ErrorCode::MalformedHeader,
    }
}

fn key_code(e: &KeyError) -> ErrorCode {
    match e {
        KeyError::Bech32(_) => ErrorCode::KeyInvalid,
        KeyError::WrongPrefix { .. } => ErrorCode::KeyWrongType,
        KeyError::WrongLength(_) => ErrorCode::KeyWrongLength,
        KeyError::InvalidLine { .. } => ErrorCode::KeyFileInvalidLine,
        KeyError::Empty => ErrorCode::KeyFileEmpty,
        KeyError::Random(_) => ErrorCode::RandomUnavailable,
        _ => ErrorCode::Internal,
    }
}

fn encrypt_code(e: &EncryptError) -> ErrorCode {
    match e {
        EncryptError::NoRecipients => ErrorCode::NoRecipients,
        EncryptError::Random(_) => ErrorCode::RandomUnavailable,
        EncryptError::TooLarge => ErrorCode::TooLarge,
        _ => ErrorCode::Internal,
    }
}

fn decrypt_code(e: &DecryptError) -> ErrorCode {
    match e {
        DecryptError::MalformedHeader(h) => header_code(h),
        DecryptError::NoIdentityMatched => ErrorCode::NoIdentityMatched,
        DecryptError::HeaderMacMismatch => ErrorCode::HeaderMacMismatch,
        DecryptError::PayloadAuthenticationFailed => ErrorCode::PayloadAuthenticationFailed,
        DecryptError::Truncated => ErrorCode::Truncated,
        DecryptError::TrailingData => ErrorCode::TrailingData,
        DecryptError::EmptyFinalChunk => ErrorCode::EmptyFinalChunk,
        DecryptError::Poisoned => ErrorCode::InvalidState,
        _ => ErrorCode::Internal,
    }
}

impl From<DecryptError> for CoffreError {
    fn from(e: DecryptError) -> Self {
        match &e {
            DecryptError::Armor(a) => a.into(),
            e => Self::from_code(decrypt_code(e)),
        }
    }
}

impl From<&ArmorError> for CoffreError {
    fn from(e: &ArmorError) -> Self {
        let (message, line) = match *e {
            ArmorError::BadBeginLine { line } => (
                "the armor does not start with -----BEGIN AGE ENCRYPTED FILE-----",
                Some(line),
            ),
            ArmorError::BadEndLine { line } => (
                "the armor end line is not -----END AGE ENCRYPTED FILE-----",
                Some(line),
            ),
            ArmorError::TooMuchWhitespace => ("too much whitespace around the armor", None),
            ArmorError::EmptyLine { line } => ("empty line inside the armor", Some(line)),
            ArmorError::PemHeader { line } => {
                ("PEM headers are not allowed in age armor", Some(line))
            }
            ArmorError::Whitespace { line } => ("whitespace inside the armor", Some(line)),
            ArmorError::LineTooLong { line } => {
                ("an armor line is longer than 64 columns", Some(line))
            }
            ArmorError::ShortLine { line } => (
                "an armor line shorter than 64 columns is not the last one",
                Some(line),
            ),
            ArmorError::InvalidCharacter { line, .. } => {
                ("invalid base64 character in the armor", Some(line))
            }
            ArmorError::BadPadding { line } => (
                "base64 padding is missing or wrong in the armor",
                Some(line),
            ),
            ArmorError::NonCanonical { line } => {
                ("the armor's base64 is not canonical", Some(line))
            }
            ArmorError::Truncated => (
                "the file ends before the line -----END AGE ENCRYPTED FILE-----",
                None,
            ),
            ArmorError::TrailingData { line } => ("data after the armor end line", Some(line)),
            ArmorError::Poisoned => return Self::invalid_state("the decryptor failed"),
            _ => (ErrorCode::MalformedArmor.message(), None),
        };
        Self {
            code: ErrorCode::MalformedArmor,
            message,
            line,
        }
    }
}

fn envelope_code(e: &EnvelopeError) -> ErrorCode {
    match e {
        EnvelopeError::MalformedHeader(h) => header_code(h),
        EnvelopeError::NotSingleX25519 => ErrorCode::EnvelopeNotSingleX25519,
        EnvelopeError::TrailingData => ErrorCode::TrailingData,
        EnvelopeError::Open(d) => decrypt_code(d),
        EnvelopeError::Random(_) => ErrorCode::RandomUnavailable,
        _ => ErrorCode::Internal,
    }
}

fn registration_code(e: &RegistrationError) -> ErrorCode {
    match e {
        RegistrationError::Malformed(_) => ErrorCode::MalformedMessage,
        RegistrationError::InvalidResponse => ErrorCode::InvalidServerResponse,
        RegistrationError::KeyStretching => ErrorCode::KeyStretchingFailed,
        RegistrationError::Internal => ErrorCode::Internal,
        _ => ErrorCode::Internal,
    }
}

fn login_code(e: &LoginError) -> ErrorCode {
    match e {
        LoginError::Malformed(_) => ErrorCode::MalformedMessage,
        LoginError::InvalidLogin => ErrorCode::InvalidLogin,
        LoginError::KeyStretching => ErrorCode::KeyStretchingFailed,
        LoginError::Internal => ErrorCode::Internal,
        _ => ErrorCode::Internal,
    }
}

fn bundle_code(e: &BundleError) -> ErrorCode {
    match e {
        BundleError::WrongLength { .. } | BundleError::UnknownKind(_) => ErrorCode::MalformedBundle,
        BundleError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        BundleError::WrongKind { .. } => ErrorCode::BundleWrongKind,
        BundleError::Authentication => ErrorCode::BundleAuthenticationFailed,
        BundleError::Random(_) => ErrorCode::RandomUnavailable,
        _ => ErrorCode::Internal,
    }
}

fn recovery_code(e: &RecoveryCodeError) -> ErrorCode {
    match e {
        RecoveryCodeError::Typo => ErrorCode::RecoveryCodeTypo,
        RecoveryCodeError::InvalidCharacter { .. } => ErrorCode::RecoveryCodeInvalidCharacter,
        RecoveryCodeError::WrongLength { .. } => ErrorCode::RecoveryCodeWrongLength,
        _ => ErrorCode::Internal,
    }
}

fn metadata_code(e: &MetadataError) -> ErrorCode {
    match e {
        MetadataError::NameTooLong { .. } | MetadataError::InvalidName => {
            ErrorCode::MetadataInvalidName
        }
        MetadataError::MimeTypeTooLong { .. } | MetadataError::InvalidMimeType => {
            ErrorCode::MetadataInvalidMimeType
        }
        MetadataError::InvalidDate { .. } => ErrorCode::MetadataInvalidDate,
        MetadataError::WrongLength { .. } | MetadataError::Malformed(_) => {
            ErrorCode::MetadataMalformed
        }
        MetadataError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        MetadataError::Authentication => ErrorCode::MetadataAuthenticationFailed,
        MetadataError::Random(_) => ErrorCode::RandomUnavailable,
        _ => ErrorCode::Internal,
    }
}

fn referent_code(e: &ReferentError) -> ErrorCode {
    match e {
        ReferentError::BadThreshold { .. } => ErrorCode::ReferentBadThreshold,
        ReferentError::Mixed => ErrorCode::ReferentSharesMixed,
        ReferentError::DuplicateIndex(_) => ErrorCode::ReferentDuplicateShare,
        ReferentError::NotEnoughShares { .. } => ErrorCode::NotEnoughShares,
        ReferentError::WrongLength { .. } | ReferentError::Malformed { .. } => {
            ErrorCode::MalformedShare
        }
        ReferentError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        ReferentError::CommitmentMismatch => ErrorCode::ReferentShareWrong,
        // Every way of not opening is one code: the app tells the referent "this is not
        // the share sealed to this key", whatever the cause.
        ReferentError::Decrypt(_) => ErrorCode::ReferentShareUnreadable,
        ReferentError::Encrypt(e) => encrypt_code(e),
        ReferentError::Random(_) => ErrorCode::RandomUnavailable,
        ReferentError::Sharing => ErrorCode::Internal,
        _ => ErrorCode::Internal,
    }
}

/// The message of a recovery code error: for a character outside the alphabet, the one
/// people most likely meant (the same hints as coffre-core's message, without its
/// formatting).
fn recovery_message(e: &RecoveryCodeError) -> &'static str {
    match e {
        RecoveryCodeError::InvalidCharacter { character, .. } => {
            match character.to_ascii_lowercase() {
                'o' => "recovery codes never use the letter O: did you mean the digit 0 (zero)?",
                'i' | '1' => "recovery codes never use I or 1: did you mean the letter L?",
                'b' => "recovery codes never use B: did you mean the digit 8?",
                _ => ErrorCode::RecoveryCodeInvalidCharacter.message(),
            }
        }
        e => recovery_code(e).message(),
    }
}

/// Implements `From<core error>` with the given code function and the code's message.
macro_rules! from_core {
    ($($error:ty => $code:expr,)*) => {$(
        impl From<$error> for CoffreError {
            fn from(e: $error) -> Self {
                Self::from_code($code(&e))
            }
        }
    )*};
}

impl From<RecoveryCodeError> for CoffreError {
    fn from(e: RecoveryCodeError) -> Self {
        Self::new(recovery_code(&e), recovery_message(&e))
    }
}

from_core! {
    HeaderError => header_code,
    KeyError => key_code,
    EncryptError => encrypt_code,
    EnvelopeError => envelope_code,
    RandomError => |_: &RandomError| ErrorCode::RandomUnavailable,
    MessageError => |_: &MessageError| ErrorCode::MalformedMessage,
    RegistrationError => registration_code,
    LoginError => login_code,
    UnknownKsfVersion => |_: &UnknownKsfVersion| ErrorCode::UnknownKsfVersion,
    BundleError => bundle_code,
    MetadataError => metadata_code,
    ReferentError => referent_code,
}

/// Every error code, for the JS layer's type check (`errorCodes()` in JS).
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_screaming_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit()));
        }
    }

    #[test]
    fn every_code_has_a_message() {
        for code in ErrorCode::ALL {
            assert!(!code.message().is_empty(), "{code:?}");
            assert_eq!(CoffreError::from_code(*code).message(), code.message());
        }
    }

    #[test]
    fn recovery_typos_get_a_hint() {
        let e = CoffreError::from(RecoveryCodeError::InvalidCharacter {
            position: 3,
            character: 'O',
        });
        assert_eq!(e.code(), ErrorCode::RecoveryCodeInvalidCharacter);
        assert!(e.message().contains("digit 0"), "{}", e.message());
        let e = CoffreError::from(RecoveryCodeError::InvalidCharacter {
            position: 3,
            character: '%',
        });
        assert_eq!(
            e.message(),
            ErrorCode::RecoveryCodeInvalidCharacter.message()
        );
        let e = CoffreError::from(RecoveryCodeError::Typo);
        assert_eq!(e.code(), ErrorCode::RecoveryCodeTypo);
    }

    #[test]
    fn armor_errors_say_which_rule_and_line() {
        let e = CoffreError::from(DecryptError::Armor(ArmorError::LineTooLong { line: 3 }));
        assert_eq!(e.code(), ErrorCode::MalformedArmor);
        assert_eq!(e.message(), "an armor line is longer than 64 columns");
        assert_eq!(e.line(), Some(3));
        let e = CoffreError::from(DecryptError::Armor(ArmorError::Truncated));
        assert_eq!(e.line(), None);
        assert!(e.message().contains("ends before"));
    }

    #[test]
    fn core_errors_map_to_their_codes() {
        let cases: Vec<(CoffreError, ErrorCode)> = vec![
            (DecryptError::Truncated.into(), ErrorCode::Truncated),
            (DecryptError::Poisoned.into(), ErrorCode::InvalidState),
            (
                DecryptError::Armor(ArmorError::Truncated).into(),
                ErrorCode::MalformedArmor,
            ),
            (
                DecryptError::MalformedHeader(HeaderError::NotAge).into(),
                ErrorCode::NotAgeFile,
            ),
            (
                EnvelopeError::Open(DecryptError::NoIdentityMatched).into(),
                ErrorCode::NoIdentityMatched,
            ),
            (KeyError::Empty.into(), ErrorCode::KeyFileEmpty),
            (EncryptError::NoRecipients.into(), ErrorCode::NoRecipients),
            (RandomError.into(), ErrorCode::RandomUnavailable),
            (
                ReferentError::Decrypt(DecryptError::NoIdentityMatched).into(),
                ErrorCode::ReferentShareUnreadable,
            ),
            (
                ReferentError::CommitmentMismatch.into(),
                ErrorCode::ReferentShareWrong,
            ),
            (
                ReferentError::NotEnoughShares { have: 1, need: 2 }.into(),
                ErrorCode::NotEnoughShares,
            ),
            (
                ReferentError::BadThreshold {
                    threshold: 0,
                    count: 3,
                }
                .into(),
                ErrorCode::ReferentBadThreshold,
            ),
            (
                ReferentError::Malformed {
                    threshold: 0,
                    index: 1,
                }
                .into(),
                ErrorCode::MalformedShare,
            ),
            (
                ReferentError::WrongLength {
                    expected: 35,
                    found: 3,
                }
                .into(),
                ErrorCode::MalformedShare,
            ),
            (
                ReferentError::UnsupportedVersion(2).into(),
                ErrorCode::UnsupportedVersion,
            ),
            (ReferentError::Mixed.into(), ErrorCode::ReferentSharesMixed),
            (
                ReferentError::DuplicateIndex(1).into(),
                ErrorCode::ReferentDuplicateShare,
            ),
            (
                ReferentError::Encrypt(EncryptError::NoRecipients).into(),
                ErrorCode::NoRecipients,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert!(!error.message().is_empty());
        }
    }
}
