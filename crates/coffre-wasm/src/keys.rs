//! Identities (private keys), recipients (public keys) and their fingerprints.

use coffre_core::fingerprint::Fingerprint as CoreFingerprint;
use wasm_bindgen::prelude::*;

use crate::error::CoffreError;

/// An X25519 private key. The key stays inside wasm memory; JS holds a handle and should
/// call `free()` when done (the memory is then wiped).
#[wasm_bindgen]
pub struct Identity {
    pub(crate) inner: coffre_core::Identity,
}

#[wasm_bindgen]
impl Identity {
    /// Generates a new identity from the browser's (or system's) secure random source.
    pub fn generate() -> Result<Identity, CoffreError> {
        Ok(Self {
            inner: coffre_core::Identity::generate()?,
        })
    }

    /// Reads an `AGE-SECRET-KEY-1…` string.
    pub fn parse(secret: &str) -> Result<Identity, CoffreError> {
        Ok(Self {
            inner: secret.parse()?,
        })
    }

    /// Reads an identity file as `age-keygen` writes it: one `AGE-SECRET-KEY-1…` per line,
    /// `#` comments and blank lines allowed.
    #[wasm_bindgen(js_name = parseFile)]
    pub fn parse_file(text: &str) -> Result<Vec<Identity>, CoffreError> {
        Ok(coffre_core::parse_identity_file(text)?
            .into_iter()
            .map(|inner| Self { inner })
            .collect())
    }

    /// The secret key as `AGE-SECRET-KEY-1…`. Once in JS, the string cannot be wiped:
    /// only export it to show or print it.
    #[wasm_bindgen(js_name = toString)]
    pub fn to_secret_string(&self) -> String {
        self.inner.to_secret_string().as_str().to_owned()
    }

    /// The public key, `age1…`: what others encrypt to.
    pub fn recipient(&self) -> String {
        self.inner.to_recipient().to_string()
    }

    /// The fingerprint of the public key, to compare face to face.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.inner.to_recipient())
    }
}

/// An X25519 public key (`age1…`).
#[wasm_bindgen]
pub struct Recipient {
    inner: coffre_core::Recipient,
}

#[wasm_bindgen]
impl Recipient {
    /// Reads an `age1…` string.
    pub fn parse(recipient: &str) -> Result<Recipient, CoffreError> {
        Ok(Self {
            inner: recipient.parse()?,
        })
    }

    /// The `age1…` string.
    #[wasm_bindgen(js_name = toString)]
    pub fn to_string_js(&self) -> String {
        self.inner.to_string()
    }

    /// The fingerprint, to compare face to face.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.inner)
    }
}

/// A public key's fingerprint: six words, eleven emoji or five groups of five digits that
/// two people read aloud to check they hold the same key.
#[wasm_bindgen]
pub struct Fingerprint {
    words: Vec<String>,
    word_indices: Vec<u16>,
    emoji: Vec<String>,
    emoji_indices: Vec<u8>,
    number: String,
}

impl Fingerprint {
    fn of(recipient: &coffre_core::Recipient) -> Self {
        let fp = CoreFingerprint::of(recipient);
        Self {
            words: fp.words().iter().map(|w| (*w).to_owned()).collect(),
            word_indices: fp.word_indices().to_vec(),
            emoji: fp.emoji().iter().map(|e| (*e).to_owned()).collect(),
            emoji_indices: fp.emoji_indices().to_vec(),
            number: fp.number(),
        }
    }
}

#[wasm_bindgen]
impl Fingerprint {
    /// Six words from the BIP-39 English wordlist.
    #[wasm_bindgen(getter)]
    pub fn words(&self) -> Vec<String> {
        self.words.clone()
    }

    /// The six indices (below 2048) of the words, the same in every language's BIP-39
    /// list: a page in another language shows word `i` of its own list.
    #[wasm_bindgen(getter, js_name = wordIndices)]
    pub fn word_indices(&self) -> Vec<u16> {
        self.word_indices.clone()
    }

    /// Eleven emoji from the 64 of Matrix's SAS verification; they carry the same bits as
    /// the words.
    #[wasm_bindgen(getter)]
    pub fn emoji(&self) -> Vec<String> {
        self.emoji.clone()
    }

    /// The eleven indices (below 64) of the emoji, for their names in the page's language.
    #[wasm_bindgen(getter, js_name = emojiIndices)]
    pub fn emoji_indices(&self) -> Vec<u8> {
        self.emoji_indices.clone()
    }

    /// Five groups of five digits separated by spaces, e.g. `"04521 99310 …"`.
    #[wasm_bindgen(getter)]
    pub fn number(&self) -> String {
        self.number.clone()
    }

    /// The words separated by spaces.
    #[wasm_bindgen(js_name = toString)]
    pub fn to_string_js(&self) -> String {
        self.words.join(" ")
    }
}

/// Parses recipient strings; an empty list is left for the encryptor to reject.
pub(crate) fn parse_recipients(
    recipients: &[String],
) -> Result<Vec<coffre_core::Recipient>, CoffreError> {
    recipients
        .iter()
        .map(|r| r.parse().map_err(CoffreError::from))
        .collect()
}

/// Parses identity strings.
pub(crate) fn parse_identities(
    identities: &[String],
) -> Result<Vec<coffre_core::Identity>, CoffreError> {
    identities
        .iter()
        .map(|s| s.parse().map_err(CoffreError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn identity_strings_and_fingerprint() {
        let id = Identity::parse(&Identity::generate().unwrap().to_secret_string()).unwrap();
        assert!(id.to_secret_string().starts_with("AGE-SECRET-KEY-1"));
        let r = Recipient::parse(&id.recipient()).unwrap();
        assert_eq!(r.to_string_js(), id.recipient());
        assert_eq!(r.fingerprint().words().len(), 6);
        assert_eq!(r.fingerprint().number(), id.fingerprint().number());
    }

    #[test]
    fn pinned_fingerprint() {
        let id = Identity {
            inner: coffre_core::Identity::from_bytes(&[7; 32]),
        };
        let fp = id.fingerprint();
        assert_eq!(fp.to_string_js(), "cotton coral fame toilet reveal mixed");
        assert_eq!(fp.number(), "65585 93878 28400 17817 80334");
        assert_eq!(fp.word_indices(), [390, 385, 659, 1822, 1475, 1137]);
        assert_eq!(
            fp.emoji_indices(),
            [12, 12, 24, 5, 18, 31, 7, 43, 33, 49, 49]
        );
        assert_eq!(fp.emoji().len(), 11);
        assert_eq!(fp.emoji()[0], "\u{1F41F}");
    }

    #[test]
    fn key_errors_have_codes() {
        let id = Identity::generate().unwrap();
        let err = Identity::parse(&id.recipient()).err().unwrap();
        assert_eq!(err.code(), ErrorCode::KeyWrongType);
        let err = Recipient::parse("age1nope").err().unwrap();
        assert_eq!(err.code(), ErrorCode::KeyInvalid);
        let err = Identity::parse_file("# nothing\n").err().unwrap();
        assert_eq!(err.code(), ErrorCode::KeyFileEmpty);
    }
}
