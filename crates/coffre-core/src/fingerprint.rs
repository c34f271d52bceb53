//! Fingerprints of public keys, for two people to compare face to face.
//!
//! A malicious server could hand a client the wrong public key (DESIGN.md, "Threat
//! model"). Before sharing, both people read the fingerprint of the key on their own
//! screens: six words or five groups of five digits. The derivation is fixed and must never
//! change, since people compare fingerprints computed by different versions:
//!
//! ```text
//! digest = SHA-256("coffre/v1/fingerprint" || recipient's 32 public bytes)
//! words  = the first 66 bits of digest, split into six 11-bit big-endian indices
//!          into the BIP-39 English wordlist (2048 words)
//! number = for i in 0..5: (the 40-bit big-endian integer in digest[5i..5i+5]) mod 100000,
//!          each printed as five digits with leading zeros, groups separated by spaces
//! ```
//!
//! Six words carry 66 bits; the number carries log2(10^25) ≈ 83 bits. A wrong key passes
//! a comparison only by a collision, which an attacker must find in advance at 2^66 work
//! for the words.

use sha2::{Digest, Sha256};

use crate::identity::Recipient;

/// Domain-separation label of the fingerprint hash.
pub const FINGERPRINT_LABEL: &[u8] = b"coffre/v1/fingerprint";
/// Number of words in a fingerprint.
pub const FINGERPRINT_WORDS: usize = 6;
/// Bits carried by each word (BIP-39 wordlist of 2048 words).
pub const BITS_PER_WORD: usize = 11;
/// Number of five-digit groups in the numeric form.
pub const FINGERPRINT_GROUPS: usize = 5;
/// Words in the BIP-39 English wordlist.
const WORDLIST_WORDS: usize = 2048;

/// The BIP-39 English wordlist (BIP-39, "Wordlists"), one word per line, in list order.
///
/// Kept as plain text rather than through the `bip39` crate's `[&str; 2048]`: in the
/// browser module the array's 2048 pointer-and-length pairs cost 16 KB next to 13 KB of
/// words, and compress badly (13 KB of the gzipped module; the text alone is 6 KB). A
/// test checks the file against the `bip39` crate, word for word.
const WORDLIST: &str = include_str!("bip39-english.txt");

/// Word `index` (below 2048) of the BIP-39 English wordlist. Six look-ups per
/// fingerprint, so a scan of the 13 KB text costs nothing worth a table.
fn bip39_word(index: usize) -> &'static str {
    debug_assert!(index < WORDLIST_WORDS);
    WORDLIST.lines().nth(index).unwrap_or_default()
}

/// The fingerprint of one recipient (public key).
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    digest: [u8; 32],
}

impl Fingerprint {
    /// Computes the fingerprint of `recipient`.
    pub fn of(recipient: &Recipient) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(FINGERPRINT_LABEL);
        hasher.update(recipient.to_bytes());
        Self {
            digest: hasher.finalize().into(),
        }
    }

    /// Six words from the BIP-39 English wordlist.
    pub fn words(&self) -> [&'static str; FINGERPRINT_WORDS] {
        // The first 9 bytes (72 bits) hold the 66 bits we need.
        let mut top = [0u8; 16];
        top[..9].copy_from_slice(&self.digest[..9]);
        let bits = u128::from_be_bytes(top);
        core::array::from_fn(|i| {
            let shift = 128 - BITS_PER_WORD * (i + 1);
            let index = (bits >> shift) & 0x7ff;
            bip39_word(index as usize)
        })
    }

    /// Five groups of five digits, e.g. `"04521 99310 …"`.
    pub fn number(&self) -> String {
        let groups: Vec<String> = (0..FINGERPRINT_GROUPS)
            .map(|i| {
                let value = self.digest[5 * i..5 * i + 5]
                    .iter()
                    .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                format!("{:05}", value % 100_000)
            })
            .collect();
        groups.join(" ")
    }
}

impl core::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.words().join(" "))
    }
}

impl core::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fingerprint_is_pinned() {
        // Pinned: people compare fingerprints across versions, so these must never change.
        // The recipient of the identity whose 32 secret bytes are all 7. The expected value
        // was cross-checked once with an independent script (Python hashlib + the BIP-39
        // English list).
        let r = crate::Identity::from_bytes(&[7; 32]).to_recipient();
        assert_eq!(
            r.to_string(),
            "age1zwlyl6h27gzv0lfntr7fcqrjrzqazap8sy5zylkxwneh7llf0dksu37mwt"
        );
        let fp = Fingerprint::of(&r);
        let words = fp.words();
        let number = fp.number();
        assert_eq!(words.len(), 6);
        assert_eq!(number.len(), 5 * 5 + 4);
        assert_eq!(format!("{} | {}", words.join(" "), number), PINNED);
    }

    const PINNED: &str = "cotton coral fame toilet reveal mixed | 65585 93878 28400 17817 80334";

    #[test]
    fn different_keys_have_different_fingerprints() {
        let a = Fingerprint::of(&Recipient::from_bytes([1; 32]));
        let b = Fingerprint::of(&Recipient::from_bytes([2; 32]));
        assert_ne!(a.words(), b.words());
        assert_ne!(a.number(), b.number());
    }

    #[test]
    fn embedded_wordlist_is_the_bip39_english_list() {
        let list = bip39::Language::English.word_list();
        let lines: Vec<&str> = WORDLIST.lines().collect();
        assert_eq!(lines.len(), WORDLIST_WORDS);
        assert_eq!(lines.as_slice(), list.as_slice());
        assert!(WORDLIST.ends_with("zoo\n"));
        for (i, word) in list.iter().enumerate() {
            assert_eq!(bip39_word(i), *word);
        }
    }

    #[test]
    fn words_come_from_the_bip39_list() {
        let list = bip39::Language::English.word_list();
        let fp = Fingerprint::of(&Recipient::from_bytes([9; 32]));
        for w in fp.words() {
            assert!(list.contains(&w));
        }
    }
}
