//! Recovery codes: 128 random bits printed on paper, typed back when a passphrase is
//! forgotten.
//!
//! A code is the 16 random bytes encoded with Bech32m (BIP-350) under the fixed
//! human-readable part [`RECOVERY_HRP`], which is not printed and not typed. What people
//! see is the 32-character data part (26 data characters and a 6-character checksum),
//! upper-case, in groups of four:
//!
//! ```text
//! 7K3Q-W9XN-0PLD-...  (8 groups)
//! ```
//!
//! The checksum catches any substitution of up to four characters (BIP-173, "Checksum
//! design"), so a typo is reported as a typo ([`RecoveryCodeError::Typo`]) instead of
//! failing later as a wrong key. Parsing ignores case, spaces and dashes. The Bech32
//! alphabet leaves out `1`, `b`, `i` and `o`; typing one of them is reported with the
//! character it was probably meant to be.
//!
//! From a code, HKDF-SHA-256 (salt bound to the account id) derives two independent
//! values: the key that seals the recovery copy of the key bundle ([`crate::bundle`]), and
//! a [`RecoveryToken`] the client shows the server, which keeps only its
//! [`recovery_verifier`]. The server can check a token but learns nothing that opens the
//! bundle. HKDF is fit here because the code has 128 bits of entropy: it is never applied
//! to a passphrase (DESIGN.md, "Key bundle").

use core::{fmt, str::FromStr};

use bech32::{primitives::decode::CheckedHrpstring, Bech32m, Hrp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::random::{random_array, RandomError};

/// Bech32m human-readable part of recovery codes. Part of the checksum, never displayed.
pub const RECOVERY_HRP: &str = "coffre-recovery";
/// Random bytes in a recovery code (128 bits; DESIGN.md asks for at least 100).
pub const RECOVERY_CODE_BYTES: usize = 16;
/// Characters of a code as typed, separators excluded: 26 data + 6 checksum.
pub const RECOVERY_CODE_CHARS: usize = 32;
/// Characters per displayed group.
const GROUP_CHARS: usize = 4;
/// Length of a recovery token and of a verifier.
pub const RECOVERY_TOKEN_BYTES: usize = 32;
/// Length of derived symmetric keys.
pub(crate) const RECOVERY_KEY_BYTES: usize = 32;

/// HKDF salt prefix; the account id follows it, so two accounts never share a key.
const RECOVERY_SALT_LABEL: &[u8] = b"coffre/v1/recovery/salt";
/// HKDF info of the key that seals the recovery key bundle.
const RECOVERY_BUNDLE_KEY_LABEL: &[u8] = b"coffre/v1/recovery/bundle-key";
/// HKDF info of the authentication token shown to the server.
const RECOVERY_AUTH_TOKEN_LABEL: &[u8] = b"coffre/v1/recovery/auth-token";
/// Hash prefix of the verifier the server stores.
const RECOVERY_VERIFIER_LABEL: &[u8] = b"coffre/v1/recovery/verifier";

/// Why a typed recovery code was not accepted.
///
/// Messages never contain the code; [`RecoveryCodeError::InvalidCharacter`] shows only a
/// character that cannot be part of any code.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryCodeError {
    /// All characters are valid but the checksum does not match: a character is wrong,
    /// or two are swapped.
    #[error("the recovery code has a typo: a character is wrong")]
    Typo,
    /// A character that recovery codes never use.
    #[error(
        "character {position} ({character:?}) is never used in recovery codes{}",
        confusable_hint(*character)
    )]
    InvalidCharacter {
        /// 1-based position among the code's characters (dashes and spaces not counted).
        position: usize,
        /// The character found.
        character: char,
    },
    /// Too many or too few characters.
    #[error("a recovery code has 32 characters (without dashes), found {found}")]
    WrongLength {
        /// Characters found, dashes and spaces not counted.
        found: usize,
    },
}

/// The character people most likely meant when they typed one outside the alphabet.
fn confusable_hint(c: char) -> &'static str {
    match c.to_ascii_lowercase() {
        'o' => "; the letter O never appears, did you mean the digit 0 (zero)?",
        'i' | '1' => "; I and 1 never appear, did you mean the letter L?",
        'b' => "; B never appears, did you mean the digit 8?",
        _ => "",
    }
}

/// A recovery code: 16 secret bytes. Wiped on drop; `Debug` shows nothing; equality is
/// constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode([u8; RECOVERY_CODE_BYTES]);

impl RecoveryCode {
    /// Draws a new code from the secure random source.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(random_array()?))
    }

    /// The code as printed: 32 upper-case characters in groups of four joined by `-`.
    /// Wiped on drop.
    pub fn to_display_string(&self) -> Zeroizing<String> {
        let hrp = Hrp::parse_unchecked(RECOVERY_HRP);
        // A 16-byte payload under a constant HRP always encodes; the fallback is unreachable.
        let full =
            Zeroizing::new(bech32::encode_upper::<Bech32m>(hrp, &self.0).unwrap_or_default());
        // Drop "COFFRE-RECOVERY1".
        let data = full.get(RECOVERY_HRP.len() + 1..).unwrap_or_default();
        let mut out = Zeroizing::new(String::with_capacity(
            RECOVERY_CODE_CHARS + RECOVERY_CODE_CHARS / GROUP_CHARS,
        ));
        for (i, c) in data.chars().enumerate() {
            if i > 0 && i % GROUP_CHARS == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// The key that seals this account's recovery key bundle.
    pub(crate) fn derive_bundle_key(
        &self,
        account_id: &str,
    ) -> Zeroizing<[u8; RECOVERY_KEY_BYTES]> {
        self.derive(account_id, RECOVERY_BUNDLE_KEY_LABEL)
    }

    /// The token the client shows the server to prove it holds the code. Independent of
    /// the bundle key: the server cannot open the bundle with it.
    pub fn derive_auth_token(&self, account_id: &str) -> RecoveryToken {
        RecoveryToken(*self.derive(account_id, RECOVERY_AUTH_TOKEN_LABEL))
    }

    fn derive(&self, account_id: &str, label: &[u8]) -> Zeroizing<[u8; 32]> {
        let salt = [RECOVERY_SALT_LABEL, account_id.as_bytes()].concat();
        crate::kdf::hkdf_sha256(Some(&salt), &self.0, label)
    }

    /// Wraps known bytes (tests).
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; RECOVERY_CODE_BYTES]) -> Self {
        Self(bytes)
    }
}

impl PartialEq for RecoveryCode {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for RecoveryCode {}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

impl FromStr for RecoveryCode {
    type Err = RecoveryCodeError;

    /// Reads a typed code: case, whitespace and dashes do not matter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut typed = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS));
        for c in s.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
            let lower = c.to_ascii_lowercase();
            // The Bech32 alphabet is "qpzry9x8gf2tvdw0s3jn54khce6mua7l".
            if !lower.is_ascii_alphanumeric() || matches!(lower, '1' | 'b' | 'i' | 'o') {
                return Err(RecoveryCodeError::InvalidCharacter {
                    position: typed.chars().count() + 1,
                    character: c,
                });
            }
            typed.push(lower);
        }
        if typed.len() != RECOVERY_CODE_CHARS {
            return Err(RecoveryCodeError::WrongLength { found: typed.len() });
        }
        let mut full = Zeroizing::new(String::with_capacity(RECOVERY_HRP.len() + 1 + typed.len()));
        full.push_str(RECOVERY_HRP);
        full.push('1');
        full.push_str(&typed);
        let checked =
            CheckedHrpstring::new::<Bech32m>(&full).map_err(|_| RecoveryCodeError::Typo)?;
        // With a valid checksum the HRP cannot differ (it is covered by the checksum), and
        // 26 characters always give 16 bytes; non-zero padding bits are still refused so
        // that each code has exactly one spelling.
        checked
            .validate_segwit_padding()
            .map_err(|_| RecoveryCodeError::Typo)?;
        let mut bytes = Zeroizing::new([0u8; RECOVERY_CODE_BYTES]);
        let mut count = 0;
        for (slot, byte) in bytes.iter_mut().zip(checked.byte_iter()) {
            *slot = byte;
            count += 1;
        }
        if count != RECOVERY_CODE_BYTES || checked.byte_iter().len() != RECOVERY_CODE_BYTES {
            return Err(RecoveryCodeError::Typo);
        }
        Ok(Self(*bytes))
    }
}

/// What the client sends the server to start a recovery: derived from the code and the
/// account id. A secret (it grants the recovery bundle): wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecoveryToken([u8; RECOVERY_TOKEN_BYTES]);

impl RecoveryToken {
    /// Wraps the bytes received by the server.
    pub fn from_bytes(bytes: [u8; RECOVERY_TOKEN_BYTES]) -> Self {
        Self(bytes)
    }

    /// The bytes to send. Callers must not copy them anywhere that outlives the token.
    pub fn expose(&self) -> &[u8; RECOVERY_TOKEN_BYTES] {
        &self.0
    }
}

impl fmt::Debug for RecoveryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryToken(<redacted>)")
    }
}

/// The value the server stores to check a [`RecoveryToken`]: SHA-256 of a label and the
/// token. A plain hash is enough: the token carries 128 bits of entropy from the code,
/// so a stolen verifier cannot be brute-forced.
pub fn recovery_verifier(token: &RecoveryToken) -> [u8; RECOVERY_TOKEN_BYTES] {
    Sha256::new()
        .chain_update(RECOVERY_VERIFIER_LABEL)
        .chain_update(token.0)
        .finalize()
        .into()
}

/// Checks a presented token against the stored verifier, in constant time.
pub fn verify_recovery_token(
    stored_verifier: &[u8; RECOVERY_TOKEN_BYTES],
    presented: &RecoveryToken,
) -> bool {
    recovery_verifier(presented).ct_eq(stored_verifier).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    const ALPHABET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

    #[test]
    fn display_is_eight_groups_of_four_upper_case() {
        let code = RecoveryCode::generate().unwrap();
        let shown = code.to_display_string();
        let groups: Vec<&str> = shown.split('-').collect();
        assert_eq!(groups.len(), 8);
        assert!(groups.iter().all(|g| g.len() == 4));
        assert!(shown
            .chars()
            .all(|c| c == '-' || ALPHABET.to_uppercase().contains(c)));
        assert_eq!(shown.parse::<RecoveryCode>().unwrap(), code);
    }

    #[test]
    fn generated_codes_differ() {
        assert_ne!(
            RecoveryCode::generate().unwrap(),
            RecoveryCode::generate().unwrap()
        );
    }

    #[test]
    fn pinned_encoding() {
        // Fixes the encoding forever (HRP, Bech32m, grouping). Cross-checked against an
        // independent BIP-350 reference implementation.
        for (bytes, text) in [
            ([0u8; 16], "QQQQ-QQQQ-QQQQ-QQQQ-QQQQ-QQQQ-QQH5-Z5S0"),
            (
                *b"0123456789abcdef",
                "XQCN-YVE5-X5MR-WWPE-V93X-XER9-VCRJ-32TR",
            ),
        ] {
            let code = RecoveryCode::from_bytes(bytes);
            assert_eq!(code.to_display_string().as_str(), text);
            assert_eq!(text.parse::<RecoveryCode>().unwrap(), code);
        }
    }

    #[test]
    fn parsing_ignores_case_spaces_and_dashes() {
        let code = RecoveryCode::generate().unwrap();
        let shown = code.to_display_string();
        let bare: String = shown.chars().filter(|c| *c != '-').collect();
        for variant in [
            bare.to_lowercase(),
            bare.clone(),
            shown.to_lowercase(),
            shown.replace('-', " "),
            format!("  {}\n", shown.replace('-', " - ")),
            bare.chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect(),
        ] {
            assert_eq!(variant.parse::<RecoveryCode>().unwrap(), code, "{variant}");
        }
    }

    #[test]
    fn a_wrong_character_is_a_typo() {
        let code = RecoveryCode::generate().unwrap();
        let mut chars: Vec<char> = code.to_display_string().chars().collect();
        let i = chars.iter().position(|c| *c != '-').unwrap() + 5;
        chars[i] = if chars[i] == 'Q' { 'P' } else { 'Q' };
        let typo: String = chars.into_iter().collect();
        let err = typo.parse::<RecoveryCode>().unwrap_err();
        assert_eq!(err, RecoveryCodeError::Typo);
        assert!(err.to_string().contains("typo"));
    }

    #[test]
    fn swapped_neighbours_are_a_typo() {
        let code = RecoveryCode::from_bytes(*b"swap me please!!");
        let bare: Vec<char> = code
            .to_display_string()
            .chars()
            .filter(|c| *c != '-')
            .collect();
        for i in 0..bare.len() - 1 {
            if bare[i] == bare[i + 1] {
                continue;
            }
            let mut swapped = bare.clone();
            swapped.swap(i, i + 1);
            let text: String = swapped.into_iter().collect();
            assert_eq!(
                text.parse::<RecoveryCode>().unwrap_err(),
                RecoveryCodeError::Typo
            );
        }
    }

    #[test]
    fn every_single_substitution_is_refused() {
        let code = RecoveryCode::generate().unwrap();
        let bare: Vec<char> = code
            .to_display_string()
            .to_lowercase()
            .chars()
            .filter(|c| *c != '-')
            .collect();
        let candidates = ALPHABET.chars().chain("1bio!é ".chars());
        for position in 0..bare.len() {
            for replacement in candidates.clone() {
                if replacement == bare[position] || replacement == ' ' {
                    continue;
                }
                let mut typo = bare.clone();
                typo[position] = replacement;
                let text: String = typo.into_iter().collect();
                let result = text.parse::<RecoveryCode>();
                let expected_invalid = RecoveryCodeError::InvalidCharacter {
                    position: position + 1,
                    character: replacement,
                };
                assert!(
                    result == Err(RecoveryCodeError::Typo) || result == Err(expected_invalid),
                    "{text}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn confusable_characters_are_explained() {
        let code = RecoveryCode::generate().unwrap();
        let bare: String = code
            .to_display_string()
            .chars()
            .filter(|c| *c != '-')
            .collect();
        for (bad, hint) in [
            ('O', "0 (zero)"),
            ('I', "letter L"),
            ('1', "letter L"),
            ('B', "8"),
        ] {
            let text = format!("{}{bad}{}", &bare[..6], &bare[7..]);
            let err = text.parse::<RecoveryCode>().unwrap_err();
            assert_eq!(
                err,
                RecoveryCodeError::InvalidCharacter {
                    position: 7,
                    character: bad
                }
            );
            assert!(err.to_string().contains(hint), "{err}");
        }
    }

    #[test]
    fn wrong_length_is_reported() {
        let code = RecoveryCode::generate().unwrap();
        let shown = code.to_display_string();
        assert_eq!(
            shown[..shown.len() - 1]
                .parse::<RecoveryCode>()
                .unwrap_err(),
            RecoveryCodeError::WrongLength { found: 31 }
        );
        assert_eq!(
            format!("{}Q", shown.as_str())
                .parse::<RecoveryCode>()
                .unwrap_err(),
            RecoveryCodeError::WrongLength { found: 33 }
        );
        assert_eq!(
            "".parse::<RecoveryCode>().unwrap_err(),
            RecoveryCodeError::WrongLength { found: 0 }
        );
    }

    #[test]
    fn verifier_accepts_the_right_token_only() {
        let code = RecoveryCode::generate().unwrap();
        let token = code.derive_auth_token("amina.k");
        let verifier = recovery_verifier(&token);
        assert!(verify_recovery_token(&verifier, &token));
        let received = RecoveryToken::from_bytes(*token.expose());
        assert!(verify_recovery_token(&verifier, &received));

        let other_code = RecoveryCode::generate().unwrap();
        assert!(!verify_recovery_token(
            &verifier,
            &other_code.derive_auth_token("amina.k")
        ));
        assert!(!verify_recovery_token(
            &verifier,
            &code.derive_auth_token("someone.else")
        ));
    }

    #[test]
    fn token_and_bundle_key_are_independent() {
        let code = RecoveryCode::generate().unwrap();
        let token = code.derive_auth_token("amina.k");
        let key = code.derive_bundle_key("amina.k");
        assert_ne!(token.expose(), &*key);
        assert_ne!(&recovery_verifier(&token), &*key);
        assert_ne!(*code.derive_bundle_key("someone.else"), *key);
    }

    #[test]
    fn debug_redacts() {
        let code = RecoveryCode::generate().unwrap();
        let token = code.derive_auth_token("a");
        assert_eq!(format!("{code:?}"), "RecoveryCode(<redacted>)");
        assert_eq!(format!("{token:?}"), "RecoveryToken(<redacted>)");
    }

    proptest! {
        #[test]
        fn any_code_round_trips(bytes in any::<[u8; 16]>(), lower in any::<bool>()) {
            let code = RecoveryCode::from_bytes(bytes);
            let mut shown = code.to_display_string().to_string();
            if lower {
                shown = shown.to_lowercase();
            }
            prop_assert_eq!(shown.parse::<RecoveryCode>().unwrap(), code);
        }

        #[test]
        fn any_text_never_panics(text in "\\PC{0,60}") {
            let _ = text.parse::<RecoveryCode>();
        }
    }
}
