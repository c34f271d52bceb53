//! Recovery through referents (k-of-n): a person who lost both their PIN and their
//! recovery paper gets their vault back when enough of the workers they chose approve,
//! after a delay during which the person can cancel.
//!
//! Three parties, one file each:
//! - [`person`]: the signed-in person chooses referents (their browser deals the shares),
//!   sees and cancels requests about their vault, prints a new recovery kit;
//! - [`asking`]: a device without a session asks for recovery, proves it holds the
//!   request's ephemeral key, collects the released shares and sets new credentials;
//! - [`referent`]: a worker sees the requests they are referent of, and approves (their
//!   browser reseals their share to the request's ephemeral key), refuses or withdraws.
//!
//! The server never sees a share, the recovery secret or the identity: it stores age files
//! it cannot open, commitments, a sealed bundle and a verifier (see `docs/recovery.md`).

pub mod asking;
pub mod person;
pub mod referent;

pub use asking::*;
pub use person::*;
pub use referent::*;

use coffre_core::bundle::BundleKind;
use coffre_core::Envelope;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use super::accounts::{check_bundle, parse_id};
use super::{decode_b64, encode_b64};
use crate::error::{AppError, AppResult};
use crate::store::recovery::MAX_REFERENTS;
use crate::store::{
    is_stream_length, DealShare, Digest, Id, RecoveryDeal, RecoveryRequest, RequestState, Role,
};
use crate::AppState;

/// Largest sealed share accepted: an age file of a 35-byte share to one X25519 recipient
/// is about 250 bytes.
const SEALED_SHARE_MAX_BYTES: usize = 1024;
/// Label of the digest under which requests are kept, one open per handle.
const HANDLE_KEY_LABEL: &[u8] = b"coffre/v1/server/recovery-handle";
/// Label of the hash of a request's challenge.
const CHALLENGE_LABEL: &[u8] = b"coffre/v1/server/recovery-challenge";

/// The digest of a (normalised) handle that keys its requests.
pub(crate) fn handle_key(handle: &str) -> Digest {
    Digest(
        Sha256::new()
            .chain_update(HANDLE_KEY_LABEL)
            .chain_update(handle.as_bytes())
            .finalize()
            .into(),
    )
}

/// The stored form of a challenge.
pub(crate) fn challenge_hash(challenge: &[u8]) -> Digest {
    Digest(
        Sha256::new()
            .chain_update(CHALLENGE_LABEL)
            .chain_update(challenge)
            .finalize()
            .into(),
    )
}

/// Checks that bytes are an age file to exactly one X25519 recipient whose payload has
/// the length of a sealed share: all the server can check of a share it cannot open.
pub(crate) fn check_sealed_share(field: &str, bytes: &[u8]) -> AppResult<()> {
    if bytes.len() > SEALED_SHARE_MAX_BYTES {
        return Err(AppError::Unprocessable(format!(
            "{field}: at most {SEALED_SHARE_MAX_BYTES} bytes"
        )));
    }
    let (_, payload) = Envelope::split(bytes).map_err(|e| {
        AppError::Unprocessable(format!("{field}: not a one-recipient age file ({e})"))
    })?;
    if !is_stream_length(payload.len() as u64) || payload.len() > 256 {
        return Err(AppError::Unprocessable(format!(
            "{field}: not the payload of a sealed share"
        )));
    }
    Ok(())
}

/// A 32-byte field (commitment, verifier), decoded and checked.
pub(crate) fn digest_field(field: &str, text: &str) -> AppResult<Vec<u8>> {
    let bytes = decode_b64(field, text)?;
    if bytes.len() != 32 {
        return Err(AppError::Unprocessable(format!(
            "{field}: 32 bytes expected"
        )));
    }
    Ok(bytes)
}

/// One referent's share in a deal, as the person's browser sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealShareBody {
    /// The referent's account id (a worker).
    #[schema(value_type = Id, inline)]
    pub referent: String,
    /// The share's index, 1..=n.
    pub index: u8,
    /// The share, as an age file to the referent's key, base64.
    #[schema(content_encoding = "base64")]
    pub sealed_share: String,
    /// The share's commitment (32 bytes), base64.
    #[schema(content_encoding = "base64")]
    pub commitment: String,
}

/// A deal: the referents, the threshold, the sealed bundle and the verifier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealBody {
    /// Shares needed to recover (k), 1..=n.
    pub threshold: u8,
    /// One per referent (n ≤ 10).
    pub shares: Vec<DealShareBody>,
    /// The identity sealed under the recovery secret (key bundle, `referents` kind), base64.
    #[schema(content_encoding = "base64")]
    pub bundle: String,
    /// Verifier of the token derived from the recovery secret (32 bytes), base64.
    #[schema(content_encoding = "base64")]
    pub verifier: String,
}

/// Validates a deal for `account`: sizes, kinds, distinct referents and indices, every
/// referent an existing worker other than the person.
pub(crate) async fn check_deal(
    state: &AppState,
    account: Id,
    body: &DealBody,
) -> AppResult<RecoveryDeal> {
    let n = body.shares.len();
    if n == 0 || n > MAX_REFERENTS {
        return Err(AppError::Unprocessable(format!(
            "shares: 1 to {MAX_REFERENTS} referents"
        )));
    }
    if body.threshold == 0 || usize::from(body.threshold) > n {
        return Err(AppError::Unprocessable(
            "threshold: between 1 and the number of referents".into(),
        ));
    }
    let bundle = decode_b64("bundle", &body.bundle)?;
    check_bundle("bundle", &bundle, BundleKind::Referents)?;
    let verifier = digest_field("verifier", &body.verifier)?;
    let mut shares: Vec<DealShare> = Vec::with_capacity(n);
    for (i, s) in body.shares.iter().enumerate() {
        let field = format!("shares[{i}]");
        let referent = parse_id(&format!("{field}.referent"), &s.referent)?;
        if referent == account {
            return Err(AppError::Unprocessable(format!(
                "{field}.referent: a person cannot be their own referent"
            )));
        }
        if usize::from(s.index) == 0 || usize::from(s.index) > n {
            return Err(AppError::Unprocessable(format!(
                "{field}.index: between 1 and the number of referents"
            )));
        }
        if shares
            .iter()
            .any(|o| o.referent == referent || o.index == s.index)
        {
            return Err(AppError::Unprocessable(format!(
                "{field}: each referent and each index once"
            )));
        }
        let worker = state.records.account(referent).await?;
        if worker.is_none_or(|w| w.role != Role::Worker || w.disabled_at.is_some()) {
            return Err(AppError::Unprocessable(format!(
                "{field}.referent: not a worker account"
            )));
        }
        let sealed_share = decode_b64(&format!("{field}.sealed_share"), &s.sealed_share)?;
        check_sealed_share(&format!("{field}.sealed_share"), &sealed_share)?;
        shares.push(DealShare {
            referent,
            index: s.index,
            sealed_share,
            commitment: digest_field(&format!("{field}.commitment"), &s.commitment)?,
        });
    }
    Ok(RecoveryDeal {
        id: Id::generate()?,
        account,
        threshold: body.threshold,
        shares,
        bundle,
        verifier,
        created_at: state.now(),
    })
}

/// A request as the person and the asking device see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// Request id.
    #[schema(value_type = Id, inline)]
    pub id: String,
    /// Where it stands (an open request past its end reads `expired`).
    pub state: String,
    /// When it was made (unix seconds).
    pub created_at: u64,
    /// When it ends if not finished (unix seconds).
    pub expires_at: u64,
    /// When it was closed (unix seconds).
    pub closed_at: Option<u64>,
    /// Referents who approved so far.
    pub approvals: usize,
    /// When the shares are released, once enough referents approved (unix seconds).
    pub releasable_at: Option<u64>,
}

impl RequestView {
    pub(crate) fn of(r: &RecoveryRequest, now: u64) -> Self {
        Self {
            id: r.id.to_string(),
            state: state_name(r, now).into(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            closed_at: r.closed_at,
            approvals: r.approvals.len(),
            releasable_at: r.releasable_at,
        }
    }
}

/// The state as shown: `open`, `expired`, `cancelled`, `refused`, `finished`.
pub(crate) fn state_name(r: &RecoveryRequest, now: u64) -> &'static str {
    match r.state {
        RequestState::Open if now >= r.expires_at => "expired",
        RequestState::Open => "open",
        RequestState::Cancelled => "cancelled",
        RequestState::Refused => "refused",
        RequestState::Finished => "finished",
    }
}

/// The recovery delay the account's organisation sets, if any.
pub(crate) async fn org_delay(
    state: &AppState,
    account: &crate::store::Account,
) -> AppResult<Option<u64>> {
    Ok(match account.org {
        Some(org) => state
            .records
            .org(org)
            .await?
            .and_then(|o| o.recovery_delay_seconds),
        None => None,
    })
}

/// Encodes a share for a JSON answer.
pub(crate) fn b64(bytes: &[u8]) -> String {
    encode_b64(bytes)
}
