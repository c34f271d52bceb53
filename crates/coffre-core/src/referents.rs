//! Referent recovery: a person's identity recoverable by any `k` of `n` referents (social
//! workers), while the server and fewer than `k` referents learn nothing about it.
//!
//! - A [`RecoverySecret`] (32 random bytes) seals the third key bundle
//!   ([`crate::bundle::BundleKind::Referents`]). Like a recovery code, it also derives a
//!   [`RecoveryToken`] whose [`recovery_verifier`](crate::recovery::recovery_verifier) the
//!   server stores; the token and the bundle key are independent HKDF outputs.
//! - [`RecoverySecret::split`] cuts the secret into `n` [`Share`]s with Shamir's scheme over
//!   GF(2^8) (the `vsss-rs` crate): one random polynomial of degree `k - 1` per secret
//!   byte, evaluated at `x = 1..=n`. Any `k` shares rebuild the secret
//!   ([`RecoverySecret::combine`]); `k - 1` shares are consistent with every possible
//!   secret, so they say nothing about it.
//! - Each share is sealed to one referent as a whole age v1 file ([`Share::seal_to`]); the
//!   server stores it next to the share's [`Share::commitment`], a hash bound to the
//!   account id. To approve a recovery, a referent opens their share and seals it again to
//!   the ephemeral recipient of the asking device; that device checks each share against
//!   its commitment ([`Share::check`]) before combining, so a wrong or swapped share is
//!   named instead of silently giving a wrong secret.
//!
//! # Share format (version 1)
//!
//! ```text
//! offset  size  field
//! 0       1     version = 0x01
//! 1       1     threshold k, 1..=MAX_REFERENTS
//! 2       1     index x, 1..=MAX_REFERENTS
//! 3       32    value: f(x) for each byte's polynomial f (the secret itself when k = 1)
//! ```
//!
//! A threshold of 1 is the degree-0 polynomial: every share holds the secret, and any one
//! referent can recover alone.
//!
//! ```
//! use coffre_core::referents::{RecoverySecret, Share};
//! use coffre_core::Identity;
//! let account = "0123456789abcdef0123456789abcdef";
//! let secret = RecoverySecret::generate()?;
//! let referents = [Identity::generate()?, Identity::generate()?, Identity::generate()?];
//!
//! // Dealing, on the person's device: 2 of 3.
//! let shares = secret.split(2, 3)?;
//! let sealed: Vec<Vec<u8>> = shares
//!     .iter()
//!     .zip(&referents)
//!     .map(|(share, referent)| share.seal_to(&referent.to_recipient()))
//!     .collect::<Result<_, _>>()?;
//! let commitments: Vec<[u8; 32]> = shares.iter().map(|s| s.commitment(account)).collect();
//!
//! // Recovery: referents 3 and 1 approve; each share is checked, then combined.
//! let mut collected = Vec::new();
//! for i in [2, 0] {
//!     let share = Share::open_sealed(&sealed[i], &referents[i..=i])?;
//!     share.check(account, &commitments[i])?;
//!     collected.push(share);
//! }
//! assert_eq!(RecoverySecret::combine(&collected)?, secret);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use hkdf::Hkdf;
use rand_core::{CryptoRng, OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vsss_rs::Gf256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::{Identity, Recipient};
use crate::random::{random_array, RandomError};
use crate::recovery::RecoveryToken;
use crate::{DecryptError, EncryptError};

/// Length of a recovery secret.
pub const RECOVERY_SECRET_BYTES: usize = 32;
/// Length of an encoded share: version, threshold, index and value.
pub const SHARE_BYTES: usize = 3 + RECOVERY_SECRET_BYTES;
/// Length of a share commitment (SHA-256).
pub const COMMITMENT_BYTES: usize = 32;
/// Most referents one secret is split among (and so the largest threshold).
pub const MAX_REFERENTS: u8 = 10;
/// The only share format version.
pub const SHARE_VERSION: u8 = 1;
/// Length of each HKDF output below (one SHA-256 output).
const DERIVED_BYTES: usize = 32;

/// HKDF salt prefix; the account id follows it, so two accounts never share a key.
const REFERENTS_SALT_LABEL: &[u8] = b"coffre/v1/referents/salt";
/// HKDF info of the authentication token shown to the server.
const REFERENTS_AUTH_TOKEN_LABEL: &[u8] = b"coffre/v1/referents/auth-token";
/// HKDF info of the key that seals the referents key bundle.
const REFERENTS_BUNDLE_KEY_LABEL: &[u8] = b"coffre/v1/referents/bundle-key";
/// Hash prefix of a share commitment.
const SHARE_COMMITMENT_LABEL: &[u8] = b"coffre/v1/referents/commitment";

// RFC 5869 section 2.3: HKDF-Expand refuses only outputs longer than 255 hash lengths
// (8160 bytes for SHA-256). The compiler checks here that ours is shorter, so `expand`
// cannot fail in `RecoverySecret::derive`.
const _: () = assert!(DERIVED_BYTES <= 255 * 32);

/// Why a secret could not be split or rebuilt, or a share read, checked or opened.
///
/// Messages never contain secret or share bytes; thresholds and indices are not secret.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferentError {
    /// The threshold is 0, larger than the number of shares, or the number of shares is
    /// above [`MAX_REFERENTS`].
    #[error("cannot split among {count} referents with threshold {threshold} (need 1 <= threshold <= count <= 10)")]
    BadThreshold {
        /// The threshold asked for.
        threshold: u8,
        /// The number of shares asked for.
        count: u8,
    },
    /// The shares come from splits with different thresholds.
    #[error("the shares come from splits with different thresholds")]
    Mixed,
    /// Two shares have the same index.
    #[error("two shares have the same index {0}")]
    DuplicateIndex(u8),
    /// Fewer shares than the threshold.
    #[error("{have} shares given, {need} needed")]
    NotEnoughShares {
        /// The number of shares given.
        have: usize,
        /// The threshold of the shares.
        need: u8,
    },
    /// An encoded share does not have the length of its version.
    #[error("malformed share: expected {expected} bytes, found {found}")]
    WrongLength {
        /// The length of a share.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// The first byte names a share version this build does not know.
    #[error("unsupported share version {0}")]
    UnsupportedVersion(u8),
    /// The threshold or the index is 0 or above [`MAX_REFERENTS`].
    #[error("malformed share: threshold {threshold}, index {index}")]
    Malformed {
        /// The threshold byte.
        threshold: u8,
        /// The index byte.
        index: u8,
    },
    /// The share does not match its commitment: altered, from another deal, or for
    /// another account.
    #[error("the share does not match its commitment")]
    CommitmentMismatch,
    /// The sharing library refused its input or returned shares of an unexpected shape
    /// (not expected: `split` and `combine` check their input first).
    #[error("secret sharing failed")]
    Sharing,
    /// A sealed share could not be written.
    #[error("cannot seal the share: {0}")]
    Encrypt(#[from] EncryptError),
    /// A sealed share does not open with the given identities (wrong identity, not an age
    /// file, altered or cut).
    #[error("the sealed share does not open: {0}")]
    Decrypt(#[from] DecryptError),
    /// The secure random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The secret that k of n referents can rebuild: 32 random bytes. Wiped on drop; `Debug`
/// shows nothing; equality is constant-time.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoverySecret([u8; RECOVERY_SECRET_BYTES]);

impl RecoverySecret {
    /// Draws a new secret from the secure random source.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(random_array()?))
    }

    /// The token the client shows the server to prove it rebuilt the secret. The server
    /// stores its [`recovery_verifier`](crate::recovery::recovery_verifier) and checks it
    /// with [`verify_recovery_token`](crate::recovery::verify_recovery_token). Independent
    /// of the bundle key: the server cannot open the bundle with it.
    pub fn derive_auth_token(&self, account_id: &str) -> RecoveryToken {
        // `derive` cannot fail (see the assertion on DERIVED_BYTES). Were it ever to, both
        // derivations would fail alike, since failure depends on the output length only:
        // `KeyBundle::seal_with_recovery_secret` then refuses to seal, so no referents
        // bundle exists that this all-zero token could be exchanged for.
        let bytes = self
            .derive(account_id, REFERENTS_AUTH_TOKEN_LABEL)
            .unwrap_or_default();
        RecoveryToken::from_bytes(*bytes)
    }

    /// The key that seals this account's referents key bundle; `None` only if HKDF failed,
    /// which the length assertion rules out (callers refuse to seal rather than use a
    /// fallback key).
    pub(crate) fn derive_bundle_key(
        &self,
        account_id: &str,
    ) -> Option<Zeroizing<[u8; DERIVED_BYTES]>> {
        self.derive(account_id, REFERENTS_BUNDLE_KEY_LABEL)
    }

    /// HKDF-SHA-256(salt = `REFERENTS_SALT_LABEL` || account id, ikm = secret,
    /// info = `label`).
    fn derive(&self, account_id: &str, label: &[u8]) -> Option<Zeroizing<[u8; DERIVED_BYTES]>> {
        let salt = [REFERENTS_SALT_LABEL, account_id.as_bytes()].concat();
        let mut out = Zeroizing::new([0u8; DERIVED_BYTES]);
        // The result is looked at, not discarded: hkdf's one error (`InvalidLength`, an
        // output over 8160 bytes) is excluded at compile time, and should it happen anyway
        // the callers get no key rather than an all-zero one.
        Hkdf::<Sha256>::new(Some(&salt), &self.0)
            .expand(label, out.as_mut_slice())
            .ok()?;
        Some(out)
    }

    /// Splits the secret into `count` shares, any `threshold` of which rebuild it
    /// (1 <= threshold <= count <= [`MAX_REFERENTS`]). Share `i` (0-based) has index
    /// `i + 1`. With a threshold of 1 every share holds the secret itself.
    pub fn split(&self, threshold: u8, count: u8) -> Result<Vec<Share>, ReferentError> {
        if threshold == 0 || threshold > count || count > MAX_REFERENTS {
            return Err(ReferentError::BadThreshold { threshold, count });
        }
        if threshold == 1 {
            // vsss-rs refuses threshold 1; the degree-0 polynomial is the constant secret.
            return Ok((1..=count)
                .map(|index| Share {
                    threshold,
                    index,
                    value: self.0,
                })
                .collect());
        }
        let mut rng = CheckedOsRng::default();
        let rows = Zeroizing::new(
            Gf256::split_array(
                usize::from(threshold),
                usize::from(count),
                // A slice, not the array by value: no unwiped copy of the secret.
                self.0.as_slice(),
                &mut rng,
            )
            .map_err(|_| ReferentError::Sharing)?,
        );
        // Polynomials drawn while the random source was failing are not secret: drop them.
        if rng.failed {
            return Err(RandomError.into());
        }
        if rows.len() != usize::from(count) {
            return Err(ReferentError::Sharing);
        }
        let mut shares: Vec<Share> = Vec::with_capacity(rows.len());
        for row in rows.iter() {
            // Each row is [x, f_0(x), …, f_31(x)].
            let (&index, value) = row.split_first().ok_or(ReferentError::Sharing)?;
            if index == 0 || index > count || shares.iter().any(|s| s.index == index) {
                return Err(ReferentError::Sharing);
            }
            let value: [u8; RECOVERY_SECRET_BYTES] =
                value.try_into().map_err(|_| ReferentError::Sharing)?;
            shares.push(Share {
                threshold,
                index,
                value,
            });
        }
        Ok(shares)
    }

    /// Rebuilds the secret from shares of one split. All shares must have the same
    /// threshold and distinct indices, and there must be at least `threshold` of them;
    /// exactly the first `threshold` are used.
    ///
    /// Shares from two different splits with the same threshold combine into a wrong
    /// secret without any error: check each share against its commitment first
    /// ([`Share::check`]).
    pub fn combine(shares: &[Share]) -> Result<Self, ReferentError> {
        let first = shares
            .first()
            .ok_or(ReferentError::NotEnoughShares { have: 0, need: 1 })?;
        let threshold = first.threshold;
        if shares.iter().any(|s| s.threshold != threshold) {
            return Err(ReferentError::Mixed);
        }
        for (i, share) in shares.iter().enumerate() {
            if shares[..i].iter().any(|s| s.index == share.index) {
                return Err(ReferentError::DuplicateIndex(share.index));
            }
        }
        let used = shares
            .get(..usize::from(threshold))
            .ok_or(ReferentError::NotEnoughShares {
                have: shares.len(),
                need: threshold,
            })?;
        if threshold == 1 {
            return Ok(Self(first.value));
        }
        // Exact capacities: no reallocation leaves copies of share bytes behind.
        let mut rows: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(Vec::with_capacity(used.len()));
        for share in used {
            let mut row = Vec::with_capacity(1 + RECOVERY_SECRET_BYTES);
            row.push(share.index);
            row.extend_from_slice(&share.value);
            rows.push(row);
        }
        let secret = Zeroizing::new(
            Gf256::combine_array(rows.as_slice()).map_err(|_| ReferentError::Sharing)?,
        );
        let bytes: [u8; RECOVERY_SECRET_BYTES] = secret
            .as_slice()
            .try_into()
            .map_err(|_| ReferentError::Sharing)?;
        Ok(Self(bytes))
    }

    /// Wraps known bytes (tests).
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; RECOVERY_SECRET_BYTES]) -> Self {
        Self(bytes)
    }
}

impl PartialEq for RecoverySecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for RecoverySecret {}

impl fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoverySecret(<redacted>)")
    }
}

/// `rand_core::OsRng` (getrandom, DESIGN.md "Randomness") that records a failure of the
/// random source instead of panicking as `OsRng::fill_bytes` does: vsss-rs draws through
/// the infallible `next_u32`, so [`RecoverySecret::split`] checks `failed` afterwards and
/// throws the shares away.
#[derive(Default)]
struct CheckedOsRng {
    failed: bool,
}

impl RngCore for CheckedOsRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if OsRng.try_fill_bytes(dest).is_err() {
            self.failed = true;
            dest.zeroize();
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        OsRng
            .try_fill_bytes(dest)
            .inspect_err(|_| self.failed = true)
    }
}

impl CryptoRng for CheckedOsRng {}

/// One referent's share of a [`RecoverySecret`]. Wiped on drop; `Debug` shows only the
/// threshold and the index.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    threshold: u8,
    index: u8,
    value: [u8; RECOVERY_SECRET_BYTES],
}

impl Share {
    /// How many shares of this split rebuild the secret.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// This share's index (its x coordinate), 1 to the number of shares.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The [`SHARE_BYTES`] bytes: version, threshold, index, value. Wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(SHARE_BYTES));
        out.extend_from_slice(&[SHARE_VERSION, self.threshold, self.index]);
        out.extend_from_slice(&self.value);
        out
    }

    /// Reads an encoded share. Checks the layout only; [`Share::check`] tells whether it
    /// is the share that was dealt.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReferentError> {
        let wrong_length = ReferentError::WrongLength {
            expected: SHARE_BYTES,
            found: bytes.len(),
        };
        let (&version, _) = bytes.split_first().ok_or(wrong_length.clone())?;
        // The version comes first so that a future, longer format is named as such.
        if version != SHARE_VERSION {
            return Err(ReferentError::UnsupportedVersion(version));
        }
        let [_, threshold, index, value @ ..] = bytes else {
            return Err(wrong_length);
        };
        let value: [u8; RECOVERY_SECRET_BYTES] =
            value.try_into().map_err(|_| wrong_length.clone())?;
        let (threshold, index) = (*threshold, *index);
        if threshold == 0 || index == 0 || threshold > MAX_REFERENTS || index > MAX_REFERENTS {
            return Err(ReferentError::Malformed { threshold, index });
        }
        Ok(Self {
            threshold,
            index,
            value,
        })
    }

    /// What the server stores next to the sealed share:
    /// SHA-256(label || len(account id) || account id || threshold || index || value).
    ///
    /// The length is one byte (255 for longer ids, which Coffre does not issue); the fields
    /// after the id have a fixed length, so the encoding stays unambiguous either way.
    pub fn commitment(&self, account_id: &str) -> [u8; COMMITMENT_BYTES] {
        let id = account_id.as_bytes();
        let id_len = u8::try_from(id.len()).unwrap_or(u8::MAX);
        Sha256::new()
            .chain_update(SHARE_COMMITMENT_LABEL)
            .chain_update([id_len])
            .chain_update(id)
            .chain_update([self.threshold, self.index])
            .chain_update(self.value)
            .finalize()
            .into()
    }

    /// Checks the share against a stored commitment for `account_id`, in constant time.
    /// A commitment of the wrong length is a mismatch too.
    pub fn check(&self, account_id: &str, commitment: &[u8]) -> Result<(), ReferentError> {
        // `ct_eq` on slices of different lengths is false (the length is not secret).
        if bool::from(self.commitment(account_id).as_slice().ct_eq(commitment)) {
            Ok(())
        } else {
            Err(ReferentError::CommitmentMismatch)
        }
    }

    /// Seals the share to `recipient`: a whole binary age v1 file, which `age -d` opens.
    pub fn seal_to(&self, recipient: &Recipient) -> Result<Vec<u8>, ReferentError> {
        Ok(crate::encrypt(&self.to_bytes(), &[*recipient])?)
    }

    /// Opens a share sealed by [`Share::seal_to`] (or by `age -r`) with `identities`.
    pub fn open_sealed(file: &[u8], identities: &[Identity]) -> Result<Share, ReferentError> {
        let plain = Zeroizing::new(crate::decrypt(file, identities)?);
        Share::from_bytes(&plain)
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("threshold", &self.threshold)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::recovery::{recovery_verifier, verify_recovery_token};
    use proptest::prelude::*;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

    /// Every subset of `0..n` with `k` elements, in increasing order.
    fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
        if k == 0 {
            return vec![vec![]];
        }
        if n < k {
            return vec![];
        }
        // Those without n - 1, then those with it.
        let mut out = combinations(n - 1, k);
        for mut c in combinations(n - 1, k - 1) {
            c.push(n - 1);
            out.push(c);
        }
        out
    }

    /// Every ordering of `items`.
    fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for (i, &first) in items.iter().enumerate() {
            let mut rest = items.to_vec();
            rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first);
                out.push(p);
            }
        }
        out
    }

    fn pick(shares: &[Share], indices: &[usize]) -> Vec<Share> {
        indices.iter().map(|&i| shares[i].clone()).collect()
    }

    fn share(threshold: u8, index: u8, value: [u8; 32]) -> Share {
        let bytes = [&[SHARE_VERSION, threshold, index][..], &value].concat();
        Share::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn helpers_enumerate_everything() {
        assert_eq!(combinations(5, 2).len(), 10);
        assert_eq!(combinations(5, 5), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(permutations(&[0, 1, 2, 3]).len(), 24);
    }

    #[test]
    fn every_k_subset_in_every_order_rebuilds_the_secret() {
        let mut checked = 0;
        for n in 1..=5u8 {
            for k in 1..=n {
                let secret = RecoverySecret::generate().unwrap();
                let shares = secret.split(k, n).unwrap();
                assert_eq!(shares.len(), usize::from(n));
                for (i, s) in shares.iter().enumerate() {
                    assert_eq!(s.threshold(), k);
                    assert_eq!(usize::from(s.index()), i + 1);
                }
                for subset in combinations(usize::from(n), usize::from(k)) {
                    for order in permutations(&subset) {
                        let rebuilt = RecoverySecret::combine(&pick(&shares, &order)).unwrap();
                        assert_eq!(rebuilt, secret, "{k} of {n}, shares {order:?}");
                        checked += 1;
                    }
                }
            }
        }
        // Sum over n <= 5, k <= n of C(n, k) * k!.
        assert_eq!(
            checked,
            1 + 2 + 2 + 3 + 6 + 6 + 4 + 12 + 24 + 24 + 5 + 20 + 60 + 120 + 120
        );
    }

    #[test]
    fn more_than_k_shares_use_the_first_k() {
        let secret = RecoverySecret::generate().unwrap();
        let shares = secret.split(3, 5).unwrap();
        assert_eq!(RecoverySecret::combine(&shares).unwrap(), secret);
        // A garbled fourth and fifth share do not matter: only the first three are used.
        let mut extra = shares.clone();
        extra[3].value[0] ^= 1;
        extra[4].value[31] ^= 0x80;
        assert_eq!(RecoverySecret::combine(&extra).unwrap(), secret);
        // A garbled first share does.
        let mut bad = shares;
        bad[0].value[5] ^= 4;
        assert_ne!(RecoverySecret::combine(&bad).unwrap(), secret);
    }

    #[test]
    fn fewer_than_k_shares_are_refused_and_do_not_determine_the_secret() {
        for n in 2..=5u8 {
            for k in 2..=n {
                let secret = RecoverySecret::generate().unwrap();
                let shares = secret.split(k, n).unwrap();
                for subset in combinations(usize::from(n), usize::from(k - 1)) {
                    let few = pick(&shares, &subset);
                    assert_eq!(
                        RecoverySecret::combine(&few).unwrap_err(),
                        ReferentError::NotEnoughShares {
                            have: usize::from(k - 1),
                            need: k
                        }
                    );
                    // Completed with a guessed share at a missing index, the k - 1 real
                    // shares rebuild some other secret.
                    let missing = (1..=n)
                        .find(|x| few.iter().all(|s| s.index() != *x))
                        .unwrap();
                    let mut guessed = few.clone();
                    guessed.push(share(k, missing, random_array().unwrap()));
                    assert_ne!(RecoverySecret::combine(&guessed).unwrap(), secret);
                }
            }
        }
    }

    #[test]
    fn threshold_one_shares_hold_the_secret() {
        let secret = RecoverySecret::from_bytes([7; 32]);
        let shares = secret.split(1, 4).unwrap();
        for s in &shares {
            assert_eq!(s.value, [7; 32]);
            assert_eq!(
                RecoverySecret::combine(std::slice::from_ref(s)).unwrap(),
                secret
            );
        }
    }

    #[test]
    fn shares_of_k_at_least_two_are_fresh_and_not_the_secret() {
        let secret = RecoverySecret::generate().unwrap();
        let a = secret.split(2, 3).unwrap();
        let b = secret.split(2, 3).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_ne!(x.value, secret.0);
            assert_ne!(x.value, y.value, "a new polynomial for every split");
        }
    }

    #[test]
    fn bad_thresholds_are_refused() {
        for (threshold, count) in [
            (0, 3),
            (4, 3),
            (2, 11),
            (11, 11),
            (1, 0),
            (0, 0),
            (255, 255),
        ] {
            assert_eq!(
                RecoverySecret::generate()
                    .unwrap()
                    .split(threshold, count)
                    .unwrap_err(),
                ReferentError::BadThreshold { threshold, count }
            );
        }
        assert_eq!(
            RecoverySecret::generate()
                .unwrap()
                .split(MAX_REFERENTS, MAX_REFERENTS)
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn duplicate_indices_are_refused() {
        let secret = RecoverySecret::generate().unwrap();
        let shares = secret.split(2, 3).unwrap();
        let twice = vec![shares[0].clone(), shares[0].clone(), shares[1].clone()];
        assert_eq!(
            RecoverySecret::combine(&twice).unwrap_err(),
            ReferentError::DuplicateIndex(1)
        );
        // Also after the first k shares.
        let late = vec![shares[0].clone(), shares[1].clone(), shares[1].clone()];
        assert_eq!(
            RecoverySecret::combine(&late).unwrap_err(),
            ReferentError::DuplicateIndex(2)
        );
        // Same index, different values (another split): still refused.
        let other = RecoverySecret::generate().unwrap().split(2, 3).unwrap();
        assert_eq!(
            RecoverySecret::combine(&[shares[2].clone(), other[2].clone()]).unwrap_err(),
            ReferentError::DuplicateIndex(3)
        );
    }

    #[test]
    fn shares_of_two_splits() {
        let a_secret = RecoverySecret::generate().unwrap();
        let b_secret = RecoverySecret::generate().unwrap();
        let a = a_secret.split(2, 3).unwrap();
        let b = b_secret.split(2, 3).unwrap();
        // Same threshold: nothing in the shares tells them apart, and a wrong secret comes
        // out. That is what the commitments are for.
        let rebuilt = RecoverySecret::combine(&[a[0].clone(), b[1].clone()]).unwrap();
        assert_ne!(rebuilt, a_secret);
        assert_ne!(rebuilt, b_secret);
        assert_eq!(
            b[1].check(ACCOUNT, &a[1].commitment(ACCOUNT)),
            Err(ReferentError::CommitmentMismatch)
        );
        // Different thresholds: refused.
        let c = a_secret.split(3, 3).unwrap();
        assert_eq!(
            RecoverySecret::combine(&[a[0].clone(), c[1].clone(), c[2].clone()]).unwrap_err(),
            ReferentError::Mixed
        );
    }

    #[test]
    fn combine_needs_a_share() {
        assert_eq!(
            RecoverySecret::combine(&[]).unwrap_err(),
            ReferentError::NotEnoughShares { have: 0, need: 1 }
        );
    }

    #[test]
    fn every_alteration_fails_the_commitment() {
        let secret = RecoverySecret::generate().unwrap();
        let shares = secret.split(3, 5).unwrap();
        let original = &shares[1];
        let commitment = original.commitment(ACCOUNT);
        original.check(ACCOUNT, &commitment).unwrap();
        for bit in 0..256 {
            let mut altered = original.clone();
            altered.value[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                altered.check(ACCOUNT, &commitment),
                Err(ReferentError::CommitmentMismatch),
                "bit {bit}"
            );
        }
        for index in (1..=MAX_REFERENTS).filter(|i| *i != original.index) {
            let mut altered = original.clone();
            altered.index = index;
            assert_eq!(
                altered.check(ACCOUNT, &commitment),
                Err(ReferentError::CommitmentMismatch)
            );
        }
        for threshold in (1..=MAX_REFERENTS).filter(|t| *t != original.threshold) {
            let mut altered = original.clone();
            altered.threshold = threshold;
            assert_eq!(
                altered.check(ACCOUNT, &commitment),
                Err(ReferentError::CommitmentMismatch)
            );
        }
        // Another share of the same split does not match either.
        assert_eq!(
            shares[2].check(ACCOUNT, &commitment),
            Err(ReferentError::CommitmentMismatch)
        );
        // A cut, lengthened or flipped commitment.
        for bad in [
            &commitment[..31],
            &[commitment.as_slice(), &[0]].concat(),
            &[],
        ] {
            assert_eq!(
                original.check(ACCOUNT, bad),
                Err(ReferentError::CommitmentMismatch)
            );
        }
        let mut flipped = commitment;
        flipped[31] ^= 1;
        assert_eq!(
            original.check(ACCOUNT, &flipped),
            Err(ReferentError::CommitmentMismatch)
        );
    }

    #[test]
    fn commitment_is_bound_to_the_account() {
        let share = &RecoverySecret::generate().unwrap().split(2, 2).unwrap()[0];
        let commitment = share.commitment(ACCOUNT);
        for other in ["", "0123456789abcdef0123456789abcdee", "0123456789abcdef"] {
            assert_ne!(share.commitment(other), commitment);
            assert_eq!(
                share.check(other, &commitment),
                Err(ReferentError::CommitmentMismatch)
            );
        }
        // Ids longer than 255 bytes (a length byte of 255) still commit apart.
        let long = "x".repeat(300);
        assert_ne!(share.commitment(&long), share.commitment(&long[..299]));
    }

    #[test]
    fn encoding_round_trips_and_parse_errors() {
        let shares = RecoverySecret::generate().unwrap().split(3, 4).unwrap();
        for s in &shares {
            let bytes = s.to_bytes();
            assert_eq!(bytes.len(), SHARE_BYTES);
            assert_eq!(&bytes[..3], &[1, 3, s.index]);
            assert_eq!(&bytes[3..], &s.value);
            let back = Share::from_bytes(&bytes).unwrap();
            assert_eq!(*back.to_bytes(), *bytes);
        }
        let bytes = shares[0].to_bytes();
        for len in 1..SHARE_BYTES {
            assert_eq!(
                Share::from_bytes(&bytes[..len]).unwrap_err(),
                ReferentError::WrongLength {
                    expected: SHARE_BYTES,
                    found: len
                }
            );
        }
        assert_eq!(
            Share::from_bytes(&[]).unwrap_err(),
            ReferentError::WrongLength {
                expected: SHARE_BYTES,
                found: 0
            }
        );
        let longer = [bytes.as_slice(), &[0]].concat();
        assert_eq!(
            Share::from_bytes(&longer).unwrap_err(),
            ReferentError::WrongLength {
                expected: SHARE_BYTES,
                found: 36
            }
        );
        for version in [0, 2, 255] {
            let mut v = bytes.to_vec();
            v[0] = version;
            assert_eq!(
                Share::from_bytes(&v).unwrap_err(),
                ReferentError::UnsupportedVersion(version)
            );
        }
        for (threshold, index) in [(0, 1), (1, 0), (11, 1), (1, 11), (0, 0), (255, 3)] {
            let mut v = bytes.to_vec();
            v[1] = threshold;
            v[2] = index;
            assert_eq!(
                Share::from_bytes(&v).unwrap_err(),
                ReferentError::Malformed { threshold, index }
            );
        }
        // Index above the threshold is normal (share 5 of a 2-of-5 split).
        let mut v = bytes.to_vec();
        v[1] = 2;
        v[2] = 10;
        assert_eq!(Share::from_bytes(&v).unwrap().index(), 10);
    }

    #[test]
    fn sealed_shares_round_trip_and_refuse_the_wrong_key() {
        let referent = Identity::generate().unwrap();
        let stranger = Identity::generate().unwrap();
        let shares = RecoverySecret::generate().unwrap().split(2, 3).unwrap();
        let sealed = shares[1].seal_to(&referent.to_recipient()).unwrap();
        assert!(sealed.starts_with(b"age-encryption.org/v1\n-> X25519 "));
        let opened = Share::open_sealed(&sealed, std::slice::from_ref(&referent)).unwrap();
        assert_eq!(*opened.to_bytes(), *shares[1].to_bytes());
        assert_eq!(
            Share::open_sealed(&sealed, std::slice::from_ref(&stranger)).unwrap_err(),
            ReferentError::Decrypt(DecryptError::NoIdentityMatched)
        );
        assert_eq!(
            Share::open_sealed(&sealed, &[stranger, referent.clone()])
                .unwrap()
                .index(),
            2
        );
        // Every cut and every bit flip is refused.
        for len in 0..sealed.len() {
            assert!(
                matches!(
                    Share::open_sealed(&sealed[..len], std::slice::from_ref(&referent)),
                    Err(ReferentError::Decrypt(_))
                ),
                "cut at {len}"
            );
        }
        for bit in 0..sealed.len() * 8 {
            let mut flipped = sealed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = Share::open_sealed(&flipped, std::slice::from_ref(&referent));
            assert!(
                matches!(result, Err(ReferentError::Decrypt(_))),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn a_sealed_file_of_something_else_is_not_a_share() {
        let referent = Identity::generate().unwrap();
        let file = crate::encrypt(&[1, 2, 3], &[referent.to_recipient()]).unwrap();
        assert_eq!(
            Share::open_sealed(&file, &[referent]).unwrap_err(),
            ReferentError::WrongLength {
                expected: SHARE_BYTES,
                found: 3
            }
        );
    }

    /// Runs the reference `age` tool: these tests fail, never skip, when it is missing
    /// (`cargo xtask test` installs it), as in coffre-cli's `tests/age_interop.rs`.
    fn age(dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("age")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "`age` is needed by this test but cannot be run ({e}); install it with \
                     `apt-get install -y age` or run `cargo xtask test`, which does"
                )
            });
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "age {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn sealed_shares_are_plain_age_files() {
        let dir = tempfile::tempdir().unwrap();
        let referent = Identity::generate().unwrap();
        std::fs::write(
            dir.path().join("referent.key"),
            format!("{}\n", referent.to_secret_string().as_str()),
        )
        .unwrap();
        let recipient = referent.to_recipient().to_string();
        let share = &RecoverySecret::generate().unwrap().split(3, 5).unwrap()[4];

        // age encrypts the 35 share bytes; open_sealed reads its file.
        let by_age = age(dir.path(), &["-r", &recipient], &share.to_bytes());
        let opened = Share::open_sealed(&by_age, std::slice::from_ref(&referent)).unwrap();
        assert_eq!(*opened.to_bytes(), *share.to_bytes());
        opened.check(ACCOUNT, &share.commitment(ACCOUNT)).unwrap();

        // age decrypts what seal_to writes.
        let sealed = share.seal_to(&referent.to_recipient()).unwrap();
        let plain = age(dir.path(), &["-d", "-i", "referent.key"], &sealed);
        assert_eq!(plain, *share.to_bytes());
    }

    /// HKDF-SHA-256 and SHA-256 straight from the hkdf and sha2 crates, as the format
    /// document states them: the known answers below do not go through this module.
    fn hkdf_as_documented(secret: &[u8], account: &str, info: &[u8]) -> [u8; 32] {
        let salt = [b"coffre/v1/referents/salt".as_slice(), account.as_bytes()].concat();
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&salt), secret)
            .expand(info, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn known_answers() {
        // Independent values: Python's hashlib and hmac (RFC 5869 written out), for the
        // secret 00 01 … 1f and the account id ACCOUNT.
        const TOKEN: &str = "ce84117bfdcf1fa2edb3b6edc90744717364a67621f0962aa74f683e1533dc7c";
        const BUNDLE_KEY: &str = "bde68e45dab1c546476b48ed1ae2d77e9abf1b150a58352b6c1abc20717e501e";
        const COMMITMENT: &str = "7ef843039e09271f4405d36d5cfb89e09f8b6f9d550479077341a04f131d3ea9";
        let bytes: [u8; 32] = core::array::from_fn(|i| i as u8);
        let secret = RecoverySecret::from_bytes(bytes);

        let token = secret.derive_auth_token(ACCOUNT);
        assert_eq!(hex::encode(token.expose()), TOKEN);
        assert_eq!(
            *token.expose(),
            hkdf_as_documented(&bytes, ACCOUNT, b"coffre/v1/referents/auth-token")
        );
        let key = secret.derive_bundle_key(ACCOUNT).unwrap();
        assert_eq!(hex::encode(*key), BUNDLE_KEY);
        assert_eq!(
            *key,
            hkdf_as_documented(&bytes, ACCOUNT, b"coffre/v1/referents/bundle-key")
        );

        // Share 2 of a 3-of-5 split with the value ff fe … e0.
        let value: [u8; 32] = core::array::from_fn(|i| 0xff - i as u8);
        let s = share(3, 2, value);
        assert_eq!(
            hex::encode(s.to_bytes().as_slice()),
            format!("010302{}", hex::encode(value))
        );
        let documented: [u8; 32] = Sha256::new()
            .chain_update(b"coffre/v1/referents/commitment")
            .chain_update([32u8])
            .chain_update(ACCOUNT)
            .chain_update([3u8, 2u8])
            .chain_update(value)
            .finalize()
            .into();
        assert_eq!(hex::encode(s.commitment(ACCOUNT)), COMMITMENT);
        assert_eq!(s.commitment(ACCOUNT), documented);
    }

    #[test]
    fn pinned_shares_rebuild_the_secret() {
        // Shamir over GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1, written out
        // independently in Python: secret byte i = i, f_i(x) = i + (0xa0 + i) x +
        // (0x5a ^ i) x^2, evaluated at x = 1..=4. Pins the field and the evaluation points
        // that another implementation must use to read Coffre's shares.
        const SHARES: [&str; 4] = [
            "010301fafbf8f9fefffcfdf2f3f0f1f6f7f4f5eaebe8e9eeefecede2e3e0e1e6e7e4e5",
            "010302282f262134333a3d10171e190c0b0205585f565144434a4d60676e697c7b7275",
            "010303d2d5dcdbcec9c0c7eaede4e3f6f1f8ffa2a5acabbeb9b0b79a9d94938681888f",
            "01030461744b5e35201f0ac9dce3f69d88b7a22a3f00157e6b54418297a8bdd6c3fce9",
        ];
        let expected = RecoverySecret::from_bytes(core::array::from_fn(|i| i as u8));
        let shares: Vec<Share> = SHARES
            .iter()
            .map(|h| Share::from_bytes(&hex::decode(h).unwrap()).unwrap())
            .collect();
        for subset in combinations(4, 3) {
            for order in permutations(&subset) {
                assert_eq!(
                    RecoverySecret::combine(&pick(&shares, &order)).unwrap(),
                    expected
                );
            }
        }
    }

    #[test]
    fn auth_token_checks_against_its_verifier() {
        let secret = RecoverySecret::generate().unwrap();
        let token = secret.derive_auth_token(ACCOUNT);
        let verifier = recovery_verifier(&token);
        assert!(verify_recovery_token(
            &verifier,
            &RecoveryToken::from_bytes(*token.expose())
        ));
        assert!(!verify_recovery_token(
            &verifier,
            &secret.derive_auth_token("fedcba9876543210fedcba9876543210")
        ));
        assert!(!verify_recovery_token(
            &verifier,
            &RecoverySecret::generate()
                .unwrap()
                .derive_auth_token(ACCOUNT)
        ));
        // Token and bundle key are independent.
        let key = secret.derive_bundle_key(ACCOUNT).unwrap();
        assert_ne!(token.expose(), &*key);
        assert_ne!(&verifier, &*key);
    }

    #[test]
    fn debug_redacts() {
        let secret = RecoverySecret::from_bytes([0xab; 32]);
        assert_eq!(format!("{secret:?}"), "RecoverySecret(<redacted>)");
        let share = &secret.split(1, 2).unwrap()[1];
        let shown = format!("{share:?}");
        assert_eq!(shown, "Share { threshold: 1, index: 2, .. }");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab"));
    }

    #[test]
    fn equality_is_on_the_bytes() {
        assert_eq!(
            RecoverySecret::from_bytes([1; 32]),
            RecoverySecret::from_bytes([1; 32])
        );
        let mut other = [1; 32];
        other[31] = 2;
        assert_ne!(
            RecoverySecret::from_bytes([1; 32]),
            RecoverySecret::from_bytes(other)
        );
    }

    proptest! {
        #[test]
        fn any_split_rebuilds_from_any_k_shares(
            bytes in any::<[u8; 32]>(),
            (k, n, order) in (1..=MAX_REFERENTS)
                .prop_flat_map(|n| (1..=n, Just(n)))
                .prop_flat_map(|(k, n)| {
                    (Just(k), Just(n), Just((0..usize::from(n)).collect::<Vec<_>>()).prop_shuffle())
                }),
        ) {
            let secret = RecoverySecret::from_bytes(bytes);
            let shares = secret.split(k, n).unwrap();
            let chosen = pick(&shares, &order[..usize::from(k)]);
            prop_assert_eq!(RecoverySecret::combine(&chosen).unwrap(), secret);
            if k >= 2 {
                prop_assert_eq!(
                    RecoverySecret::combine(&chosen[..usize::from(k) - 1]).unwrap_err(),
                    ReferentError::NotEnoughShares { have: usize::from(k) - 1, need: k }
                );
            }
            for s in &shares {
                let back = Share::from_bytes(&s.to_bytes()).unwrap();
                prop_assert!(back.check("acct", &s.commitment("acct")).is_ok());
            }
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(share) = Share::from_bytes(&bytes) {
                let encoded = share.to_bytes();
                prop_assert_eq!(encoded.as_slice(), bytes.as_slice());
                let _ = RecoverySecret::combine(&[share]);
            }
        }
    }
}
