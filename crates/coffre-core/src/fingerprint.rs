//! Fingerprints of public keys, for two people to compare face to face.
//!
//! A malicious server could hand a client the wrong public key (DESIGN.md, "Threat
//! model"). Before sharing, both people read the fingerprint of the key on their own
//! screens: six words, eleven emoji or five groups of five digits. The derivation is fixed
//! and must never change, since people compare fingerprints computed by different versions:
//!
//! ```text
//! digest = SHA-256("coffre/v1/fingerprint" || recipient's 32 public bytes)
//! words  = the first 66 bits of digest, split into six 11-bit big-endian indices
//!          into the BIP-39 English wordlist (2048 words)
//! emoji  = the same 66 bits, split into eleven 6-bit big-endian indices into the
//!          64-emoji table of Matrix's SAS verification (`EMOJI`)
//! number = for i in 0..5: (the 40-bit big-endian integer in digest[5i..5i+5]) mod 100000,
//!          each printed as five digits with leading zeros, groups separated by spaces
//! ```
//!
//! Six words and eleven emoji carry the same 66 bits (two spellings of one value: the words
//! match exactly when the emoji do); the number carries log2(10^25) ≈ 83 bits. A wrong key passes
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
/// Number of emoji in a fingerprint: 11 × 6 bits = the 66 bits of the words.
pub const FINGERPRINT_EMOJI: usize = 11;
/// Bits carried by each emoji (a table of 64).
pub const BITS_PER_EMOJI: usize = 6;
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

/// The 64 emoji of Matrix's SAS verification, in their order (the Matrix specification,
/// "SAS method: emoji"; its data file `data-definitions/sas-emoji.json`), each with its
/// English name. Index `i` is the emoji for the 6-bit value `i`. The order is theirs
/// because the emoji were chosen to be told apart at a glance and named in many
/// languages, and the web app takes the names in other languages from the same list.
pub const EMOJI: [(&str, &str); 64] = [
    ("\u{1F436}", "Dog"),
    ("\u{1F431}", "Cat"),
    ("\u{1F981}", "Lion"),
    ("\u{1F40E}", "Horse"),
    ("\u{1F984}", "Unicorn"),
    ("\u{1F437}", "Pig"),
    ("\u{1F418}", "Elephant"),
    ("\u{1F430}", "Rabbit"),
    ("\u{1F43C}", "Panda"),
    ("\u{1F413}", "Rooster"),
    ("\u{1F427}", "Penguin"),
    ("\u{1F422}", "Turtle"),
    ("\u{1F41F}", "Fish"),
    ("\u{1F419}", "Octopus"),
    ("\u{1F98B}", "Butterfly"),
    ("\u{1F337}", "Flower"),
    ("\u{1F333}", "Tree"),
    ("\u{1F335}", "Cactus"),
    ("\u{1F344}", "Mushroom"),
    ("\u{1F30F}", "Globe"),
    ("\u{1F319}", "Moon"),
    ("\u{2601}\u{FE0F}", "Cloud"),
    ("\u{1F525}", "Fire"),
    ("\u{1F34C}", "Banana"),
    ("\u{1F34E}", "Apple"),
    ("\u{1F353}", "Strawberry"),
    ("\u{1F33D}", "Corn"),
    ("\u{1F355}", "Pizza"),
    ("\u{1F382}", "Cake"),
    ("\u{2764}\u{FE0F}", "Heart"),
    ("\u{1F600}", "Smiley"),
    ("\u{1F916}", "Robot"),
    ("\u{1F3A9}", "Hat"),
    ("\u{1F453}", "Glasses"),
    ("\u{1F527}", "Spanner"),
    ("\u{1F385}", "Santa"),
    ("\u{1F44D}", "Thumbs Up"),
    ("\u{2602}\u{FE0F}", "Umbrella"),
    ("\u{231B}", "Hourglass"),
    ("\u{23F0}", "Clock"),
    ("\u{1F381}", "Gift"),
    ("\u{1F4A1}", "Light Bulb"),
    ("\u{1F4D5}", "Book"),
    ("\u{270F}\u{FE0F}", "Pencil"),
    ("\u{1F4CE}", "Paperclip"),
    ("\u{2702}\u{FE0F}", "Scissors"),
    ("\u{1F512}", "Lock"),
    ("\u{1F511}", "Key"),
    ("\u{1F528}", "Hammer"),
    ("\u{260E}\u{FE0F}", "Telephone"),
    ("\u{1F3C1}", "Flag"),
    ("\u{1F682}", "Train"),
    ("\u{1F6B2}", "Bicycle"),
    ("\u{2708}\u{FE0F}", "Aeroplane"),
    ("\u{1F680}", "Rocket"),
    ("\u{1F3C6}", "Trophy"),
    ("\u{26BD}", "Ball"),
    ("\u{1F3B8}", "Guitar"),
    ("\u{1F3BA}", "Trumpet"),
    ("\u{1F514}", "Bell"),
    ("\u{2693}", "Anchor"),
    ("\u{1F3A7}", "Headphones"),
    ("\u{1F4C1}", "Folder"),
    ("\u{1F4CC}", "Pin"),
];

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

    /// The first 128 bits of the digest, big-endian: the words and emoji read the top 66.
    fn top_bits(&self) -> u128 {
        let mut top = [0u8; 16];
        top.copy_from_slice(&self.digest[..16]);
        u128::from_be_bytes(top)
    }

    /// The six 11-bit indices of the words (below 2048), the same in every language's
    /// BIP-39 list: a client shows word `i` of the list of its language.
    pub fn word_indices(&self) -> [u16; FINGERPRINT_WORDS] {
        let bits = self.top_bits();
        core::array::from_fn(|i| {
            let shift = 128 - BITS_PER_WORD * (i + 1);
            // Masked to 11 bits: the cast cannot truncate.
            ((bits >> shift) & 0x7ff) as u16
        })
    }

    /// Six words from the BIP-39 English wordlist.
    pub fn words(&self) -> [&'static str; FINGERPRINT_WORDS] {
        self.word_indices().map(|i| bip39_word(usize::from(i)))
    }

    /// The eleven 6-bit indices (below 64) of the emoji into `EMOJI`.
    pub fn emoji_indices(&self) -> [u8; FINGERPRINT_EMOJI] {
        let bits = self.top_bits();
        core::array::from_fn(|i| {
            let shift = 128 - BITS_PER_EMOJI * (i + 1);
            // Masked to 6 bits: the cast cannot truncate.
            ((bits >> shift) & 0x3f) as u8
        })
    }

    /// The eleven emoji (each one character, a few with U+FE0F after it).
    pub fn emoji(&self) -> [&'static str; FINGERPRINT_EMOJI] {
        self.emoji_indices().map(|i| EMOJI[usize::from(i)].0)
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
    fn emoji_are_pinned() {
        // Known answers, computed once by an independent script (Python hashlib, reading
        // the top 66 bits of the digest 6 at a time), and pinned like the words.
        let fp = Fingerprint::of(&crate::Identity::from_bytes(&[7; 32]).to_recipient());
        assert_eq!(fp.word_indices(), [390, 385, 659, 1822, 1475, 1137]);
        assert_eq!(
            fp.emoji_indices(),
            [12, 12, 24, 5, 18, 31, 7, 43, 33, 49, 49]
        );
        assert_eq!(
            fp.emoji().concat(),
            "\u{1F41F}\u{1F41F}\u{1F34E}\u{1F437}\u{1F344}\u{1F916}\u{1F430}\u{270F}\u{FE0F}\u{1F453}\u{260E}\u{FE0F}\u{260E}\u{FE0F}"
        );
        let names: Vec<&str> = fp
            .emoji_indices()
            .iter()
            .map(|&i| EMOJI[usize::from(i)].1)
            .collect();
        assert_eq!(
            names.join(" "),
            "Fish Fish Apple Pig Mushroom Robot Rabbit Pencil Glasses Telephone Telephone"
        );
        let one = Fingerprint::of(&Recipient::from_bytes([1; 32]));
        assert_eq!(
            one.emoji_indices(),
            [16, 37, 35, 35, 9, 23, 2, 13, 14, 38, 36]
        );
        assert_eq!(one.word_indices(), [530, 1592, 1610, 1800, 1693, 420]);
        let two = Fingerprint::of(&Recipient::from_bytes([2; 32]));
        assert_eq!(
            two.emoji_indices(),
            [17, 11, 63, 44, 18, 62, 54, 55, 21, 40, 8]
        );
        assert_eq!(two.word_indices(), [549, 2043, 151, 1755, 939, 520]);
    }

    #[test]
    fn emoji_and_words_spell_the_same_66_bits() {
        for seed in 0..=255u8 {
            let fp = Fingerprint::of(&Recipient::from_bytes([seed; 32]));
            let from_words = fp
                .word_indices()
                .iter()
                .fold(0u128, |acc, &w| (acc << BITS_PER_WORD) | u128::from(w));
            let from_emoji = fp
                .emoji_indices()
                .iter()
                .fold(0u128, |acc, &e| (acc << BITS_PER_EMOJI) | u128::from(e));
            assert_eq!(from_words, from_emoji);
            assert!(fp.emoji_indices().iter().all(|&e| e < 64));
        }
    }

    /// The quoted strings of the array that starts after `start` in `js`.
    fn js_array<'a>(js: &'a str, start: &str) -> Vec<&'a str> {
        let from = js.find(start).unwrap() + start.len();
        let body = &js[from..from + js[from..].find(']').unwrap()];
        body.lines()
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| !l.is_empty())
            .map(|l| l.trim_matches('"'))
            .collect()
    }

    #[test]
    fn web_emoji_names_follow_the_core_table() {
        // The web app names emoji by index from web/sas-emoji.js: its emoji and English
        // names must be this table, in this order.
        let js = include_str!("../../../web/sas-emoji.js");
        let glyphs = js_array(js, "export const EMOJI = [");
        let names = js_array(js, "en: [");
        let ours: Vec<&str> = EMOJI.iter().map(|e| e.0).collect();
        let our_names: Vec<&str> = EMOJI.iter().map(|e| e.1).collect();
        assert_eq!(glyphs, ours);
        assert_eq!(names, our_names);
        assert_eq!(js_array(js, "fr: [").len(), 64);
        assert_eq!(js_array(js, "ar: [").len(), 64);
    }

    #[test]
    fn emoji_table_is_the_sas_list() {
        assert_eq!(EMOJI.len(), 64);
        let mut glyphs: Vec<&str> = EMOJI.iter().map(|e| e.0).collect();
        glyphs.sort_unstable();
        glyphs.dedup();
        assert_eq!(glyphs.len(), 64, "emoji are distinct");
        // Spot checks against the Matrix specification's table.
        assert_eq!(EMOJI[0], ("\u{1F436}", "Dog"));
        assert_eq!(EMOJI[21], ("\u{2601}\u{FE0F}", "Cloud"));
        assert_eq!(EMOJI[36], ("\u{1F44D}", "Thumbs Up"));
        assert_eq!(EMOJI[63], ("\u{1F4CC}", "Pin"));
        for (glyph, name) in EMOJI {
            assert!(!name.is_empty());
            let chars: Vec<char> = glyph.chars().collect();
            assert!(
                chars.len() == 1 || (chars.len() == 2 && chars[1] == '\u{FE0F}'),
                "{name}"
            );
        }
    }

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
