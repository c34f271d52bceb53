//! k-of-n referent recovery, the client side: dealing shares of a recovery secret to
//! referents, a referent approving a request, and the asking device collecting shares.
//! The recovery secret and the shares in clear stay inside wasm; what JS sees is sealed
//! shares (age files), commitments, tokens and key bundles.
//!
//! ```text
//! Setting up, on the person's device (referents' recipients from the server):
//!   const secret = RecoverySecret.generate();
//!   const bundle = secret.sealIdentity(me, accountId);      store it
//!   const dealt = secret.deal(2, [r1, r2, r3], accountId);  store sealedShare(i) and
//!                                                           commitment(i) for referent i
//!   secret.verifier(accountId)                               store it
//! Approving, in referent i's browser:
//!   const reply = reshareForRequest(referentIdentity, sealedShare, ephemeralRecipient);
//! Recovering, on the asking device (`ephemeral` made for the request):
//!   const collector = new ShareCollector(accountId);
//!   collector.add(ephemeral, reply, commitment);            for each reply
//!   const secret = collector.rebuild();                     once count >= threshold
//!   secret.authToken(accountId) for the server, then secret.openBundle(bundle, accountId)
//! ```

use coffre_core::bundle::KeyBundle;
use coffre_core::referents::{self as core, ReferentError, Share, COMMITMENT_BYTES};
use wasm_bindgen::prelude::*;

use crate::error::{CoffreError, ErrorCode};
use crate::keys::{parse_recipients, Identity};

/// The secret that k of n referents can rebuild (256 random bits). It seals the
/// referents key bundle and proves to the server that it was rebuilt. Stays in wasm; call
/// `free()` when done to wipe it.
#[wasm_bindgen]
pub struct RecoverySecret {
    inner: core::RecoverySecret,
}

#[wasm_bindgen]
impl RecoverySecret {
    /// A new random secret.
    pub fn generate() -> Result<RecoverySecret, CoffreError> {
        Ok(Self {
            inner: core::RecoverySecret::generate()?,
        })
    }

    /// Seals `identity` under this secret: the referents key bundle to store (62 bytes).
    #[wasm_bindgen(js_name = sealIdentity)]
    pub fn seal_identity(
        &self,
        identity: &Identity,
        account_id: &str,
    ) -> Result<Vec<u8>, CoffreError> {
        Ok(
            KeyBundle::seal_with_recovery_secret(&identity.inner, &self.inner, account_id)?
                .to_bytes(),
        )
    }

    /// Opens the account's referents key bundle: the account's identity.
    #[wasm_bindgen(js_name = openBundle)]
    pub fn open_bundle(&self, bundle: &[u8], account_id: &str) -> Result<Identity, CoffreError> {
        let bundle = KeyBundle::from_bytes(bundle)?;
        Ok(Identity {
            inner: bundle.open_with_recovery_secret(&self.inner, account_id)?,
        })
    }

    /// The token that proves to the server that the client holds the secret (32 bytes).
    #[wasm_bindgen(js_name = authToken)]
    pub fn auth_token(&self, account_id: &str) -> Vec<u8> {
        self.inner.derive_auth_token(account_id).expose().to_vec()
    }

    /// What the server stores to check `authToken(accountId)` later (32 bytes): the same
    /// verifier as for recovery codes. Not a secret: it proves nothing and opens nothing.
    pub fn verifier(&self, account_id: &str) -> Vec<u8> {
        let token = self.inner.derive_auth_token(account_id);
        coffre_core::recovery::recovery_verifier(&token).to_vec()
    }

    /// Splits the secret into one share per recipient (`age1…` strings, at most 10), any
    /// `threshold` of which rebuild it, and seals share `i` to `recipients[i]`. A bad
    /// threshold throws `REFERENT_BAD_THRESHOLD`; a bad recipient a `KEY_*` code.
    pub fn deal(
        &self,
        threshold: u8,
        recipients: Vec<String>,
        account_id: &str,
    ) -> Result<DealtShares, CoffreError> {
        let recipients = parse_recipients(&recipients)?;
        // More than 255 recipients is above MAX_REFERENTS too: refused by `split`.
        let count = u8::try_from(recipients.len()).unwrap_or(u8::MAX);
        let shares = self.inner.split(threshold, count)?;
        let dealt = shares
            .iter()
            .zip(&recipients)
            .map(|(share, recipient)| {
                Ok(Dealt {
                    index: share.index(),
                    sealed: share.seal_to(recipient)?,
                    commitment: share.commitment(account_id),
                })
            })
            .collect::<Result<Vec<_>, ReferentError>>()?;
        Ok(DealtShares { threshold, dealt })
    }
}

/// One dealt share as the server stores it: nothing in clear.
struct Dealt {
    index: u8,
    sealed: Vec<u8>,
    commitment: [u8; COMMITMENT_BYTES],
}

/// The result of `RecoverySecret.deal`: for each referent, in the order of the
/// recipients, the share's index, the share sealed to the referent (an age file) and its
/// commitment. Holds no secret.
#[wasm_bindgen]
pub struct DealtShares {
    threshold: u8,
    dealt: Vec<Dealt>,
}

impl DealtShares {
    fn get(&self, i: u32) -> Result<&Dealt, CoffreError> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.dealt.get(i))
            .ok_or_else(|| {
                CoffreError::new(
                    ErrorCode::InvalidArgument,
                    "no dealt share at this position (0 to count - 1)",
                )
            })
    }
}

#[wasm_bindgen]
impl DealtShares {
    /// How many shares were dealt (one per recipient).
    #[wasm_bindgen(getter)]
    pub fn count(&self) -> u32 {
        // At most MAX_REFERENTS (10).
        u32::try_from(self.dealt.len()).unwrap_or(u32::MAX)
    }

    /// How many shares rebuild the secret.
    #[wasm_bindgen(getter)]
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The index (1 to count) of the share dealt to recipient `i`. Throws
    /// `INVALID_ARGUMENT` when `i` is not below `count`, as do the two methods below.
    pub fn index(&self, i: u32) -> Result<u8, CoffreError> {
        Ok(self.get(i)?.index)
    }

    /// The share of recipient `i`, sealed to them: a binary age v1 file.
    #[wasm_bindgen(js_name = sealedShare)]
    pub fn sealed_share(&self, i: u32) -> Result<Vec<u8>, CoffreError> {
        Ok(self.get(i)?.sealed.clone())
    }

    /// The commitment of recipient `i`'s share (32 bytes), bound to the account id.
    pub fn commitment(&self, i: u32) -> Result<Vec<u8>, CoffreError> {
        Ok(self.get(i)?.commitment.to_vec())
    }
}

/// A referent approves a recovery request: opens the share sealed to `identity` (the
/// referent's own) and seals it again to the request's ephemeral recipient (`age1…`).
/// The share is in clear only inside this call. A share that does not open with
/// `identity` throws `REFERENT_SHARE_UNREADABLE`; one that opens but is not a share,
/// `MALFORMED_SHARE`.
#[wasm_bindgen(js_name = reshareForRequest)]
pub fn reshare_for_request(
    identity: &Identity,
    sealed_share: &[u8],
    ephemeral_recipient: &str,
) -> Result<Vec<u8>, CoffreError> {
    let recipient: coffre_core::Recipient = ephemeral_recipient.parse()?;
    let share = Share::open_sealed(sealed_share, std::slice::from_ref(&identity.inner))?;
    Ok(share.seal_to(&recipient)?)
}

/// Collects the shares that referents resealed to a request's ephemeral identity,
/// checks each against its commitment, and rebuilds the recovery secret.
#[wasm_bindgen]
pub struct ShareCollector {
    account_id: String,
    shares: Vec<Share>,
}

#[wasm_bindgen]
impl ShareCollector {
    /// A collector for the account `accountId` (commitments are bound to it).
    #[wasm_bindgen(constructor)]
    pub fn new(account_id: &str) -> ShareCollector {
        Self {
            account_id: account_id.to_owned(),
            // Room for every share up front: a reallocation would free a copy of the
            // shares without wiping it.
            shares: Vec::with_capacity(usize::from(coffre_core::referents::MAX_REFERENTS)),
        }
    }

    /// Opens a share sealed to `identity` (the request's ephemeral identity), checks it
    /// against `commitment` (from the server, for the referent who sent it) and keeps it.
    /// Returns the share's index. Throws, and keeps nothing:
    /// - `REFERENT_SHARE_UNREADABLE`: the file does not open with `identity`;
    /// - `MALFORMED_SHARE` (or `UNSUPPORTED_VERSION`): it opens but holds no share;
    /// - `REFERENT_SHARE_WRONG`: a share, but not the one committed to (altered, from
    ///   another deal or another account): the referent sent a wrong share;
    /// - `REFERENT_SHARES_MIXED`: its threshold differs from the shares already added;
    /// - `REFERENT_DUPLICATE_SHARE`: a share with this index was already added.
    pub fn add(
        &mut self,
        identity: &Identity,
        sealed_share: &[u8],
        commitment: &[u8],
    ) -> Result<u8, CoffreError> {
        let share = Share::open_sealed(sealed_share, std::slice::from_ref(&identity.inner))?;
        share.check(&self.account_id, commitment)?;
        if let Some(first) = self.shares.first() {
            if first.threshold() != share.threshold() {
                return Err(ReferentError::Mixed.into());
            }
        }
        if self.shares.iter().any(|s| s.index() == share.index()) {
            return Err(ReferentError::DuplicateIndex(share.index()).into());
        }
        let index = share.index();
        self.shares.push(share);
        Ok(index)
    }

    /// How many shares were added.
    #[wasm_bindgen(getter)]
    pub fn count(&self) -> u32 {
        u32::try_from(self.shares.len()).unwrap_or(u32::MAX)
    }

    /// How many shares rebuild the secret: 0 until a share was added.
    #[wasm_bindgen(getter)]
    pub fn threshold(&self) -> u8 {
        self.shares.first().map_or(0, Share::threshold)
    }

    /// Rebuilds the recovery secret. Throws `NOT_ENOUGH_SHARES` while `count` is below
    /// `threshold` (or no share was added).
    pub fn rebuild(&self) -> Result<RecoverySecret, CoffreError> {
        Ok(RecoverySecret {
            inner: core::RecoverySecret::combine(&self.shares)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

    fn code<T>(result: Result<T, CoffreError>) -> ErrorCode {
        result.err().unwrap().code()
    }

    #[test]
    fn deal_approve_collect_rebuild_open() {
        let me = Identity::generate().unwrap();
        let referents: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
        let secret = RecoverySecret::generate().unwrap();
        let bundle = secret.seal_identity(&me, ACCOUNT).unwrap();
        assert_eq!(bundle.len(), 62);
        assert_eq!(bundle[1], 3, "referents bundle kind");
        let verifier = secret.verifier(ACCOUNT);
        let dealt = secret
            .deal(
                2,
                referents.iter().map(Identity::recipient).collect(),
                ACCOUNT,
            )
            .unwrap();
        assert_eq!(dealt.count(), 3);
        assert_eq!(dealt.threshold(), 2);
        for i in 0..3 {
            assert_eq!(u32::from(dealt.index(i).unwrap()), i + 1);
            assert_eq!(dealt.commitment(i).unwrap().len(), 32);
            assert!(dealt
                .sealed_share(i)
                .unwrap()
                .starts_with(b"age-encryption.org/v1\n"));
        }
        assert_eq!(code(dealt.index(3)), ErrorCode::InvalidArgument);
        assert_eq!(code(dealt.sealed_share(3)), ErrorCode::InvalidArgument);
        assert_eq!(code(dealt.commitment(u32::MAX)), ErrorCode::InvalidArgument);

        // A request from a new device: referents 3 and 1 approve.
        let ephemeral = Identity::generate().unwrap();
        let mut collector = ShareCollector::new(ACCOUNT);
        assert_eq!(collector.threshold(), 0);
        assert_eq!(code(collector.rebuild()), ErrorCode::NotEnoughShares);
        for (n, i) in [2usize, 0].into_iter().enumerate() {
            let reply = reshare_for_request(
                &referents[i],
                &dealt.sealed_share(i as u32).unwrap(),
                &ephemeral.recipient(),
            )
            .unwrap();
            if n == 0 {
                // One share is not enough.
                assert_eq!(
                    collector
                        .add(&ephemeral, &reply, &dealt.commitment(2).unwrap())
                        .unwrap(),
                    3
                );
                assert_eq!(collector.threshold(), 2);
                assert_eq!(code(collector.rebuild()), ErrorCode::NotEnoughShares);
                // The same share again.
                assert_eq!(
                    code(collector.add(&ephemeral, &reply, &dealt.commitment(2).unwrap())),
                    ErrorCode::ReferentDuplicateShare
                );
            } else {
                assert_eq!(
                    collector
                        .add(&ephemeral, &reply, &dealt.commitment(i as u32).unwrap())
                        .unwrap(),
                    1
                );
            }
        }
        assert_eq!(collector.count(), 2);
        let rebuilt = collector.rebuild().unwrap();
        assert_eq!(rebuilt.auth_token(ACCOUNT), secret.auth_token(ACCOUNT));
        let token = coffre_core::recovery::RecoveryToken::from_bytes(
            rebuilt.auth_token(ACCOUNT).try_into().unwrap(),
        );
        assert!(coffre_core::recovery::verify_recovery_token(
            &verifier.try_into().unwrap(),
            &token
        ));
        let opened = rebuilt.open_bundle(&bundle, ACCOUNT).unwrap();
        assert_eq!(opened.recipient(), me.recipient());
        assert_eq!(
            code(rebuilt.open_bundle(&bundle, "fedcba9876543210fedcba9876543210")),
            ErrorCode::BundleAuthenticationFailed
        );
    }

    #[test]
    fn wrong_and_unreadable_shares_are_told_apart() {
        let referents: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
        let recipients: Vec<String> = referents.iter().map(Identity::recipient).collect();
        let dealt = RecoverySecret::generate()
            .unwrap()
            .deal(2, recipients.clone(), ACCOUNT)
            .unwrap();
        // Another deal to the same referents (e.g. an older one).
        let other = RecoverySecret::generate()
            .unwrap()
            .deal(2, recipients, ACCOUNT)
            .unwrap();
        let ephemeral = Identity::generate().unwrap();
        let reshare = |deal: &DealtShares, i: usize| {
            reshare_for_request(
                &referents[i],
                &deal.sealed_share(i as u32).unwrap(),
                &ephemeral.recipient(),
            )
            .unwrap()
        };
        let mut collector = ShareCollector::new(ACCOUNT);
        collector
            .add(
                &ephemeral,
                &reshare(&dealt, 0),
                &dealt.commitment(0).unwrap(),
            )
            .unwrap();

        // Referent 2 sends the share of the other deal: it opens, but is not the one
        // committed to.
        let wrong = reshare(&other, 1);
        assert_eq!(
            code(collector.add(&ephemeral, &wrong, &dealt.commitment(1).unwrap())),
            ErrorCode::ReferentShareWrong
        );
        // The right share under another account's collector is wrong too.
        let right = reshare(&dealt, 1);
        let mut elsewhere = ShareCollector::new("fedcba9876543210fedcba9876543210");
        assert_eq!(
            code(elsewhere.add(&ephemeral, &right, &dealt.commitment(1).unwrap())),
            ErrorCode::ReferentShareWrong
        );
        // A share still sealed to the referent (not resealed) does not open.
        assert_eq!(
            code(collector.add(
                &ephemeral,
                &dealt.sealed_share(1).unwrap(),
                &dealt.commitment(1).unwrap()
            )),
            ErrorCode::ReferentShareUnreadable
        );
        let mut cut = right.clone();
        cut.truncate(cut.len() - 1);
        assert_eq!(
            code(collector.add(&ephemeral, &cut, &dealt.commitment(1).unwrap())),
            ErrorCode::ReferentShareUnreadable
        );
        // Age files to the ephemeral key that hold something else: a version 1 share
        // of the wrong length, and text (its first byte read as an unknown version).
        for (junk, expected) in [
            (&[1u8, 2, 3][..], ErrorCode::MalformedShare),
            (b"not a share", ErrorCode::UnsupportedVersion),
        ] {
            let file = coffre_core::encrypt(junk, &[ephemeral.inner.to_recipient()]).unwrap();
            assert_eq!(
                code(collector.add(&ephemeral, &file, &dealt.commitment(1).unwrap())),
                expected
            );
        }
        // None of these was kept; the right one is.
        assert_eq!(collector.count(), 1);
        assert_eq!(
            collector
                .add(&ephemeral, &right, &dealt.commitment(1).unwrap())
                .unwrap(),
            2
        );
        collector.rebuild().unwrap();

        // A referent who is not the share's recipient cannot reshare it.
        assert_eq!(
            code(reshare_for_request(
                &referents[0],
                &dealt.sealed_share(1).unwrap(),
                &ephemeral.recipient()
            )),
            ErrorCode::ReferentShareUnreadable
        );
        assert_eq!(
            code(reshare_for_request(
                &referents[1],
                &dealt.sealed_share(1).unwrap(),
                "age1nope"
            )),
            ErrorCode::KeyInvalid
        );
    }

    #[test]
    fn mixed_thresholds_are_refused_when_added() {
        let referents: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
        let recipients: Vec<String> = referents.iter().map(Identity::recipient).collect();
        let secret = RecoverySecret::generate().unwrap();
        let two = secret.deal(2, recipients.clone(), ACCOUNT).unwrap();
        let three = secret.deal(3, recipients, ACCOUNT).unwrap();
        let ephemeral = Identity::generate().unwrap();
        let reshare = |deal: &DealtShares, i: usize| {
            reshare_for_request(
                &referents[i],
                &deal.sealed_share(i as u32).unwrap(),
                &ephemeral.recipient(),
            )
            .unwrap()
        };
        let mut collector = ShareCollector::new(ACCOUNT);
        collector
            .add(&ephemeral, &reshare(&two, 0), &two.commitment(0).unwrap())
            .unwrap();
        assert_eq!(
            code(collector.add(
                &ephemeral,
                &reshare(&three, 1),
                &three.commitment(1).unwrap()
            )),
            ErrorCode::ReferentSharesMixed
        );
    }

    #[test]
    fn bad_deals_are_refused() {
        let secret = RecoverySecret::generate().unwrap();
        let recipients: Vec<String> = (0..11)
            .map(|_| Identity::generate().unwrap().recipient())
            .collect();
        assert_eq!(
            code(secret.deal(0, recipients[..3].to_vec(), ACCOUNT)),
            ErrorCode::ReferentBadThreshold
        );
        assert_eq!(
            code(secret.deal(4, recipients[..3].to_vec(), ACCOUNT)),
            ErrorCode::ReferentBadThreshold
        );
        assert_eq!(
            code(secret.deal(2, recipients.clone(), ACCOUNT)),
            ErrorCode::ReferentBadThreshold
        );
        assert_eq!(
            code(secret.deal(1, Vec::new(), ACCOUNT)),
            ErrorCode::ReferentBadThreshold
        );
        assert_eq!(
            code(secret.deal(1, vec!["age1nope".to_owned()], ACCOUNT)),
            ErrorCode::KeyInvalid
        );
        // Threshold 1: any one referent recovers alone.
        let referent = Identity::generate().unwrap();
        let dealt = secret.deal(1, vec![referent.recipient()], ACCOUNT).unwrap();
        let ephemeral = Identity::generate().unwrap();
        let reply = reshare_for_request(
            &referent,
            &dealt.sealed_share(0).unwrap(),
            &ephemeral.recipient(),
        )
        .unwrap();
        let mut collector = ShareCollector::new(ACCOUNT);
        collector
            .add(&ephemeral, &reply, &dealt.commitment(0).unwrap())
            .unwrap();
        assert_eq!(
            collector.rebuild().unwrap().auth_token(ACCOUNT),
            secret.auth_token(ACCOUNT)
        );
    }
}
