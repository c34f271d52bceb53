//! Records of recovery through referents (k-of-n), and the rules every backend applies
//! to them.
//!
//! A person's **deal** ([`RecoveryDeal`]) holds what their browser made: the identity
//! sealed under a fresh recovery secret (a key bundle of the `referents` kind), one
//! Shamir share of that secret per referent, each an age file to the referent's key,
//! with a commitment that identifies a wrong share, and the verifier of a token derived
//! from the secret. The server can open none of it.
//!
//! A **request** ([`RecoveryRequest`]) is one attempt to recover, made by a device that
//! holds an ephemeral X25519 key. Referents approve by resealing their share to that key;
//! once `threshold` have approved, the shares are released to that device only after the
//! delay, during which the person can cancel and a referent can withdraw. One request per
//! handle is open at a time; a request for a handle without an account is stored the same
//! way and simply never moves, so that nobody learns from the answers whether the handle
//! exists.
//!
//! Backends keep each transition atomic by reading the request, applying
//! [`RecoveryRequest::apply`] (pure, shared by every backend so they cannot disagree) and
//! writing it back in one step.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{b64, CredentialChange, Digest, Id, StoreError, StoreResult};

/// Most referents a person can have.
pub const MAX_REFERENTS: usize = 10;
/// Delay between the last approval needed and the release, unless the person's structure
/// sets another.
pub const DEFAULT_RECOVERY_DELAY_SECONDS: u64 = 72 * 3600;
/// Longest delay a structure may set.
pub const MAX_RECOVERY_DELAY_SECONDS: u64 = 14 * 86_400;
/// Shortest delay when a single referent suffices (k = 1): one person alone must never
/// be able to take a vault over quickly.
pub const SINGLE_REFERENT_MIN_DELAY_SECONDS: u64 = 72 * 3600;
/// How long a request may wait for its approvals.
pub const REQUEST_OPEN_SECONDS: u64 = 7 * 86_400;
/// How long the asking device has to finish once the shares are released.
pub const RELEASE_WINDOW_SECONDS: u64 = 7 * 86_400;
/// How long a closed request is kept (so the person and the referents still see what
/// happened) before the sweeper removes it.
pub const KEEP_CLOSED_SECONDS: u64 = 30 * 86_400;

/// The delay applied to a request: the structure's setting (or the default), at least
/// [`SINGLE_REFERENT_MIN_DELAY_SECONDS`] when one referent suffices.
pub fn effective_delay(org_delay: Option<u64>, threshold: u8) -> u64 {
    let delay = org_delay
        .unwrap_or(DEFAULT_RECOVERY_DELAY_SECONDS)
        .min(MAX_RECOVERY_DELAY_SECONDS);
    if threshold <= 1 {
        delay.max(SINGLE_REFERENT_MIN_DELAY_SECONDS)
    } else {
        delay
    }
}

/// One referent's part of a deal.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DealShare {
    /// The referent (a worker account).
    pub referent: Id,
    /// The share's index (x coordinate), 1..=n.
    pub index: u8,
    /// The share, as an age file to the referent's X25519 key.
    #[serde(with = "b64")]
    pub sealed_share: Vec<u8>,
    /// SHA-256 commitment to the share, bound to the account and the index (32 bytes).
    #[serde(with = "b64")]
    pub commitment: Vec<u8>,
}

impl fmt::Debug for DealShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DealShare")
            .field("referent", &self.referent)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// A person's referents and what they hold, as dealt by the person's browser.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecoveryDeal {
    /// Changes at every deal, so that a request names the deal it was made under.
    pub id: Id,
    /// Whose vault.
    pub account: Id,
    /// Shares needed (k).
    pub threshold: u8,
    /// One per referent (n), distinct referents and indices.
    pub shares: Vec<DealShare>,
    /// The identity sealed under the recovery secret (key bundle, `referents` kind).
    #[serde(with = "b64")]
    pub bundle: Vec<u8>,
    /// SHA-256 verifier of the token derived from the recovery secret (32 bytes).
    #[serde(with = "b64")]
    pub verifier: Vec<u8>,
    /// When it was dealt (unix seconds).
    pub created_at: u64,
}

impl RecoveryDeal {
    /// Whether `referent` holds a share of this deal.
    pub fn has_referent(&self, referent: Id) -> bool {
        self.shares.iter().any(|s| s.referent == referent)
    }
}

impl fmt::Debug for RecoveryDeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryDeal")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("threshold", &self.threshold)
            .field("shares", &self.shares)
            .finish_non_exhaustive()
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for approvals, or for the delay, or for the asking device to finish.
    Open,
    /// Cancelled by the person, or replaced by a new deal.
    Cancelled,
    /// Too many referents refused or withdrew for the threshold to be reached.
    Refused,
    /// The asking device finished: new credentials, new deal.
    Finished,
}

/// One referent's approval: their share resealed to the request's ephemeral key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The referent.
    pub referent: Id,
    /// Their share, as an age file to the request's ephemeral key.
    #[serde(with = "b64")]
    pub sealed_share: Vec<u8>,
    /// When (unix seconds).
    pub at: u64,
}

impl fmt::Debug for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approval")
            .field("referent", &self.referent)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

/// One attempt to recover a vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    /// Identifier (known to the asking device; referents see it in their list).
    pub id: Id,
    /// Digest of the handle asked for: one open request per handle.
    pub handle_key: Digest,
    /// The account, if the handle has one.
    pub account: Option<Id>,
    /// The deal in force when the request was made, if any.
    pub deal: Option<Id>,
    /// Approvals needed (0 without a deal: such a request never moves).
    pub threshold: u8,
    /// The referents of that deal.
    pub referents: Vec<Id>,
    /// Delay from the last approval needed to the release (seconds).
    pub delay_seconds: u64,
    /// The asking device's ephemeral age X25519 recipient (`age1…`).
    pub ephemeral_key: String,
    /// SHA-256 of the challenge sealed to the ephemeral key: whoever shows the challenge
    /// holds the ephemeral secret.
    pub challenge_hash: Digest,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Refused from then on if still open (unix seconds).
    pub expires_at: u64,
    /// Where it stands.
    pub state: RequestState,
    /// When it was closed (unix seconds).
    pub closed_at: Option<u64>,
    /// Approvals, one per referent at most.
    pub approvals: Vec<Approval>,
    /// Referents who refused or withdrew; they cannot approve this request any more.
    pub refused: Vec<Id>,
    /// When the shares are released, once `threshold` referents have approved.
    pub releasable_at: Option<u64>,
}

/// What a referent decides about a request.
#[derive(Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve: their share, resealed to the ephemeral key.
    Approve(Vec<u8>),
    /// Refuse (before approving).
    Refuse,
    /// Take an approval back (during the delay or before).
    Withdraw,
}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Approve(_) => "Approve",
            Self::Refuse => "Refuse",
            Self::Withdraw => "Withdraw",
        })
    }
}

/// A change to a request ([`super::Records::change_recovery_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestChange {
    /// A referent's decision.
    Decide {
        /// The referent.
        referent: Id,
        /// What they decided.
        decision: Decision,
    },
    /// The person (or the asking device) cancels.
    Cancel,
}

impl RecoveryRequest {
    /// Whether the request is open at `now` (not closed, not expired).
    pub fn is_open(&self, now: u64) -> bool {
        self.state == RequestState::Open && now < self.expires_at
    }

    /// Applies `change` at `now`, or says why it cannot apply. Pure: every backend runs it
    /// inside its atomic read-modify-write.
    pub fn apply(&mut self, change: &RequestChange, now: u64) -> StoreResult<()> {
        if let RequestChange::Decide { referent, .. } = change {
            // Checked first: someone who is not a referent learns nothing, not even that
            // the request closed.
            if !self.referents.contains(referent) {
                return Err(StoreError::NotReferent);
            }
        }
        if !self.is_open(now) {
            return Err(StoreError::RecoveryClosed);
        }
        match change {
            RequestChange::Cancel => self.close(RequestState::Cancelled, now),
            RequestChange::Decide { referent, decision } => {
                if !self.referents.contains(referent) {
                    return Err(StoreError::NotReferent);
                }
                let approved = self.approvals.iter().any(|a| a.referent == *referent);
                let refused = self.refused.contains(referent);
                match decision {
                    Decision::Approve(sealed) => {
                        if approved || refused {
                            return Err(StoreError::AlreadyDecided);
                        }
                        self.approvals.push(Approval {
                            referent: *referent,
                            sealed_share: sealed.clone(),
                            at: now,
                        });
                    }
                    Decision::Refuse => {
                        if approved || refused {
                            return Err(StoreError::AlreadyDecided);
                        }
                        self.refused.push(*referent);
                    }
                    Decision::Withdraw => {
                        if !approved {
                            return Err(StoreError::AlreadyDecided);
                        }
                        self.approvals.retain(|a| a.referent != *referent);
                        self.refused.push(*referent);
                    }
                }
                self.settle(now);
            }
        }
        Ok(())
    }

    /// After a decision: the release time once enough approved (kept if already set),
    /// cleared if an approval was withdrawn below the threshold; closed as refused when
    /// the threshold can no longer be reached.
    fn settle(&mut self, now: u64) {
        let enough = self.threshold > 0 && self.approvals.len() >= usize::from(self.threshold);
        if enough {
            if self.releasable_at.is_none() {
                let at = now.saturating_add(self.delay_seconds);
                self.releasable_at = Some(at);
                self.expires_at = at.saturating_add(RELEASE_WINDOW_SECONDS);
            }
        } else if self.releasable_at.take().is_some() {
            self.expires_at = self.created_at.saturating_add(REQUEST_OPEN_SECONDS);
        }
        let could_still = self.referents.len().saturating_sub(self.refused.len());
        if could_still < usize::from(self.threshold) {
            self.close(RequestState::Refused, now);
        }
    }

    fn close(&mut self, state: RequestState, now: u64) {
        self.state = state;
        self.closed_at = Some(now);
        self.releasable_at = None;
    }

    /// Whether the shares may be released at `now`: open, approved by enough referents,
    /// and the delay over ([`StoreError::NotReleasable`] says until when otherwise).
    pub fn check_releasable(&self, now: u64) -> StoreResult<()> {
        if !self.is_open(now) {
            return Err(StoreError::RecoveryClosed);
        }
        match self.releasable_at {
            Some(at) if at <= now => Ok(()),
            at => Err(StoreError::NotReleasable { at }),
        }
    }

    /// When the sweeper may remove this request: some time after it closed or expired.
    pub fn removable_after(&self) -> u64 {
        self.closed_at
            .unwrap_or(self.expires_at)
            .min(self.expires_at)
            .saturating_add(KEEP_CLOSED_SECONDS)
    }

    /// Closes it because the person dealt again (or removed their referents).
    pub fn replaced(&mut self, now: u64) {
        if self.is_open(now) {
            self.close(RequestState::Cancelled, now);
        }
    }
}

/// Everything the end of a recovery changes, in one step
/// ([`super::Records::finish_recovery`]).
#[derive(Clone)]
pub struct RecoveryFinish {
    /// The new OPAQUE record and passphrase bundle (always unlocking the account).
    pub credentials: CredentialChange,
    /// The new recovery-code bundle (the new kit).
    pub recovery_bundle: Vec<u8>,
    /// Its verifier.
    pub recovery_verifier: Vec<u8>,
    /// The new deal under a new secret (the released shares become useless), or none if
    /// the person keeps no referents.
    pub deal: Option<RecoveryDeal>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id(byte: u8) -> Id {
        Id([byte; 16])
    }

    fn request(threshold: u8, referents: &[u8], delay: u64) -> RecoveryRequest {
        RecoveryRequest {
            id: id(0),
            handle_key: Digest([7; 32]),
            account: Some(id(1)),
            deal: Some(id(2)),
            threshold,
            referents: referents.iter().map(|b| id(*b)).collect(),
            delay_seconds: delay,
            ephemeral_key: "age1…".into(),
            challenge_hash: Digest([9; 32]),
            created_at: 1000,
            expires_at: 1000 + REQUEST_OPEN_SECONDS,
            state: RequestState::Open,
            closed_at: None,
            approvals: Vec::new(),
            refused: Vec::new(),
            releasable_at: None,
        }
    }

    fn decide(r: &mut RecoveryRequest, who: u8, d: Decision, now: u64) -> StoreResult<()> {
        r.apply(
            &RequestChange::Decide {
                referent: id(who),
                decision: d,
            },
            now,
        )
    }

    #[test]
    fn delay_rules() {
        assert_eq!(effective_delay(None, 2), DEFAULT_RECOVERY_DELAY_SECONDS);
        assert_eq!(effective_delay(Some(0), 2), 0);
        assert_eq!(
            effective_delay(Some(0), 1),
            SINGLE_REFERENT_MIN_DELAY_SECONDS
        );
        assert_eq!(
            effective_delay(Some(10 * 86_400), 1),
            10 * 86_400,
            "a longer structure delay applies to k = 1 too"
        );
        assert_eq!(
            effective_delay(Some(99 * 86_400), 3),
            MAX_RECOVERY_DELAY_SECONDS
        );
    }

    #[test]
    fn approvals_release_after_the_delay_and_withdrawal_stops_it() {
        let mut r = request(2, &[10, 11, 12], 3600);
        decide(&mut r, 10, Decision::Approve(vec![1]), 2000).unwrap();
        assert_eq!(r.releasable_at, None);
        assert!(matches!(
            decide(&mut r, 10, Decision::Approve(vec![1]), 2001),
            Err(StoreError::AlreadyDecided)
        ));
        assert!(matches!(
            decide(&mut r, 99, Decision::Approve(vec![1]), 2001),
            Err(StoreError::NotReferent)
        ));
        decide(&mut r, 11, Decision::Approve(vec![2]), 3000).unwrap();
        assert_eq!(r.releasable_at, Some(6600));
        assert!(matches!(
            r.check_releasable(6599),
            Err(StoreError::NotReleasable { at: Some(6600) })
        ));
        r.check_releasable(6600).unwrap();
        // A third approval does not move the release.
        decide(&mut r, 12, Decision::Approve(vec![3]), 4000).unwrap();
        assert_eq!(r.releasable_at, Some(6600));
        decide(&mut r, 12, Decision::Withdraw, 4100).unwrap();
        assert_eq!(r.releasable_at, Some(6600), "still two approvals");
        decide(&mut r, 11, Decision::Withdraw, 4200).unwrap();
        // One approval left, and two of three withdrew: the threshold cannot be reached.
        assert_eq!(r.state, RequestState::Refused);
        assert!(matches!(
            r.check_releasable(9999),
            Err(StoreError::RecoveryClosed)
        ));
    }

    #[test]
    fn refusals_close_when_the_threshold_is_out_of_reach() {
        let mut r = request(2, &[10, 11, 12], 0);
        decide(&mut r, 10, Decision::Refuse, 2000).unwrap();
        assert_eq!(r.state, RequestState::Open);
        assert!(matches!(
            decide(&mut r, 10, Decision::Approve(vec![1]), 2001),
            Err(StoreError::AlreadyDecided)
        ));
        decide(&mut r, 11, Decision::Refuse, 2002).unwrap();
        assert_eq!(r.state, RequestState::Refused);
        // Closed or not, someone who is not a referent is told nothing else.
        assert!(matches!(
            decide(&mut r, 99, Decision::Refuse, 2003),
            Err(StoreError::NotReferent)
        ));
        assert!(matches!(
            decide(&mut r, 12, Decision::Approve(vec![1]), 2003),
            Err(StoreError::RecoveryClosed)
        ));
    }

    #[test]
    fn cancel_and_expiry_close_it() {
        let mut r = request(1, &[10], SINGLE_REFERENT_MIN_DELAY_SECONDS);
        decide(&mut r, 10, Decision::Approve(vec![1]), 2000).unwrap();
        r.apply(&RequestChange::Cancel, 2001).unwrap();
        assert_eq!(r.state, RequestState::Cancelled);
        assert!(matches!(
            r.apply(&RequestChange::Cancel, 2002),
            Err(StoreError::RecoveryClosed)
        ));
        let mut r = request(2, &[10, 11], 0);
        let late = r.expires_at;
        assert!(matches!(
            decide(&mut r, 10, Decision::Approve(vec![1]), late),
            Err(StoreError::RecoveryClosed)
        ));
        // Without a deal (unknown handle, no referents) nothing ever moves it.
        let mut r = request(0, &[], 0);
        assert!(matches!(
            decide(&mut r, 10, Decision::Approve(vec![1]), 2000),
            Err(StoreError::NotReferent)
        ));
        assert!(matches!(
            r.check_releasable(2000),
            Err(StoreError::NotReleasable { at: None })
        ));
    }
}
