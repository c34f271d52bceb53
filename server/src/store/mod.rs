//! Storage behind two async traits: [`Records`] (accounts, sessions, documents, shares,
//! links, and every counter or lease that changes an answer) and [`Payloads`] (the
//! ciphertext bytes). sled + payload files ([`SledRecords`], [`FilePayloads`]) are the
//! embedded default; the traits are shaped so that a database and an object store can
//! stand in for them with several server processes in front (DESIGN.md, "Store
//! boundary").
//!
//! Rules every backend keeps (the conformance suite, `server/tests/conformance/`, checks
//! each one against every backend):
//! - each operation that must be atomic (quota + create, one-use invite, failed-login
//!   count + lock, link opening count, passphrase swap + session purge, upload offset
//!   and commit, share/revoke against delete, upload exclusivity) is *one* method, made
//!   atomic by the backend; handlers never check and then write;
//! - a mutating method returns only once its change is durable, except where its doc
//!   says otherwise (pending logins, rate counters, upload leases: losing those in a
//!   crash only makes a client start again);
//! - nothing that decides an answer lives in one process: pending logins, attempt
//!   counters and upload exclusivity are records, with an expiry where they have one;
//! - errors are typed ([`StoreError`]); the HTTP layer maps each to its own problem type.
//!
//! Everything stored is either public by design (handles, public keys, sizes,
//! timestamps, the share graph; DESIGN.md "Threat model") or ciphertext the server cannot
//! open (sealed metadata, sealed key bundles, envelopes, payload pieces, OPAQUE records
//! that are useless without the separate key file, pending logins sealed under a key
//! derived from that file).
//!
//! Payloads move in pieces of at most [`PIECE_BYTES`], on upload and on download, so
//! that no whole file is ever held in memory.

pub mod attempts;
mod file_payloads;
pub mod postgres;
pub mod recovery;
mod s3_config;
#[cfg(not(feature = "s3"))]
#[path = "s3_disabled.rs"]
mod s3_payloads;
#[cfg(feature = "s3")]
mod s3_payloads;
mod sled_records;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use bytes::Bytes;
use coffre_core::format::stream::{ENCRYPTED_CHUNK_SIZE, PAYLOAD_NONCE_BYTES, TAG_BYTES};
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub use attempts::{AttemptPolicy, Attempts, Budget, Device, Throttled};
pub use file_payloads::{FilePayloads, PAYLOAD_DIR};
pub use postgres::PgRecords;
pub use recovery::{
    Approval, DealShare, Decision, RecoveryDeal, RecoveryFinish, RecoveryRequest, RequestChange,
    RequestState,
};
pub use s3_config::S3Config;
pub use s3_payloads::S3Payloads;
pub use sled_records::{SledRecords, TREES};

/// Largest payload piece written or read at once. Bounds the memory one upload or
/// download holds at a time.
pub const PIECE_BYTES: usize = 1024 * 1024;

/// Length of every random identifier.
pub const ID_BYTES: usize = 16;

/// How long one opening of a link lets its visitor fetch the payload (Range continuations
/// of an interrupted download included), and so how long a used-up link is kept after its
/// last opening before the sweeper removes it.
pub const LINK_GRANT_SECONDS: u64 = 3600;

/// How long a link remembers a grant it handed out: asking again with the same grant id
/// within this window (the visitor reloading the link page) gets the same grant back
/// without counting a new opening ([`Link::grant`]).
pub const LINK_REUSE_SECONDS: u64 = 600;

/// Most grants a link remembers for re-use; past this the oldest is forgotten (asking
/// with it again then counts a new opening, as after the window).
pub const LINK_GRANTS_KEPT: usize = 32;

/// Most logins kept between their two messages; beyond, new ones are refused
/// ([`StoreError::TooManyPending`]) until some expire.
pub const MAX_PENDING_LOGINS: u64 = 10_000;

/// Why a storage operation failed. No variant carries text meant for a user: the HTTP
/// layer words each one; `Unavailable` and `Backend` carry causes for the log only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// Another account has this handle.
    #[error("handle taken")]
    HandleTaken,
    /// A record with this id exists already (ids are random: a client reusing one).
    #[error("id taken")]
    IdTaken,
    /// The invite is unknown, already used or expired.
    #[error("invite unknown, used or expired")]
    InviteInvalid,
    /// The login budget allows no attempt now; the next one in `retry_after` seconds.
    #[error("login attempts exhausted for {retry_after} s")]
    Throttled {
        /// Seconds until an attempt is counted again.
        retry_after: u64,
    },
    /// The account's credentials changed since the login started (its epoch moved on).
    #[error("credentials changed")]
    CredentialsChanged,
    /// Creating this document would take the owner past the quota.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The document's upload is not committed yet (it cannot be shared).
    #[error("not committed")]
    NotCommitted,
    /// The document is committed; its payload cannot change.
    #[error("already committed")]
    AlreadyCommitted,
    /// An upload step named another offset than the stored length.
    #[error("upload offset is {stored}")]
    OffsetMismatch {
        /// The stored (acknowledged) length, where the upload resumes.
        stored: u64,
    },
    /// The bytes would run past the size declared at creation.
    #[error("payload longer than its declared {size} bytes")]
    BeyondDeclaredSize {
        /// The declared size.
        size: u64,
    },
    /// A commit before every byte is stored.
    #[error("{stored} of {size} payload bytes stored")]
    Incomplete {
        /// Bytes stored.
        stored: u64,
        /// Bytes declared.
        size: u64,
    },
    /// The recipient of a share has no account.
    #[error("recipient not found")]
    RecipientNotFound,
    /// A piece larger than [`PIECE_BYTES`].
    #[error("piece too large")]
    PieceTooLarge,
    /// An import into a store that already holds records.
    #[error("the store is not empty")]
    NotEmpty,
    /// Too many logins are waiting for their second message.
    #[error("too many pending logins")]
    TooManyPending,
    /// A recovery request for this handle is open already.
    #[error("a recovery request is open")]
    RecoveryPending,
    /// The recovery request was cancelled, refused, finished, or has expired.
    #[error("recovery request closed")]
    RecoveryClosed,
    /// The caller is not a referent of this request.
    #[error("not a referent")]
    NotReferent,
    /// This referent has decided about this request already.
    #[error("already decided")]
    AlreadyDecided,
    /// The shares are not released yet: not enough approvals (`at` is `None`) or the
    /// delay runs until `at`.
    #[error("not releasable yet")]
    NotReleasable {
        /// When they will be, if enough referents approved.
        at: Option<u64>,
    },
    /// The backend cannot be reached now; the request may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend failed; the text is for the log only.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A random 16-byte identifier, written as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub [u8; ID_BYTES]);

impl Id {
    /// A fresh identifier from the OS random source.
    pub fn generate() -> StoreResult<Self> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The identifier from its raw bytes (as used in storage keys).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

impl FromStr for Id {
    type Err = hex::FromHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the canonical lowercase form, so that one id has one spelling.
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(hex::FromHexError::InvalidHexCharacter { c: 'A', index: 0 });
        }
        let mut bytes = [0u8; ID_BYTES];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(Self(bytes))
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde helper: binary fields as canonical padded standard base64.
pub mod b64 {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes bytes as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Reads base64 into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }

    /// The same for an optional field.
    pub mod option {
        use super::*;

        /// Writes optional bytes as base64 or null.
        pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(b) => super::serialize(b, s),
                None => s.serialize_none(),
            }
        }

        /// Reads optional base64.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A social worker, member of an organisation.
    Worker,
    /// A person who owns a vault.
    Beneficiary,
}

/// An account. Secrets here are sealed by the client or useless without the key file.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Stable identifier (also OPAQUE's credential identifier).
    pub id: Id,
    /// Login handle, public.
    pub handle: String,
    /// Worker or beneficiary.
    pub role: Role,
    /// The organisation of a worker, or of the worker who created a beneficiary.
    pub org: Option<Id>,
    /// The age X25519 recipient (`age1…`), public.
    pub public_key: String,
    /// OPAQUE registration record; useless without the server's OPRF seed.
    #[serde(with = "b64")]
    pub password_file: Vec<u8>,
    /// Argon2id parameter version the client must use for this account.
    pub ksf_version: u16,
    /// The identity sealed under the login's export key.
    #[serde(with = "b64")]
    pub bundle: Vec<u8>,
    /// The identity sealed under the recovery code, if one was printed.
    #[serde(with = "b64::option", default)]
    pub recovery_bundle: Option<Vec<u8>>,
    /// SHA-256 verifier of the recovery token derived from the printed code.
    #[serde(with = "b64::option", default)]
    pub recovery_verifier: Option<Vec<u8>>,
    /// The worker who created this beneficiary account in person.
    pub created_by: Option<Id>,
    /// When the beneficiary consented (unix seconds), recorded at creation.
    pub consent_at: Option<u64>,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Moves on at every change of the OPAQUE record (passphrase change, recovery). A
    /// session is valid only under the epoch it was opened in, so no session opened with
    /// an old passphrase (even by a login still between its two messages during the
    /// change) outlives the change.
    #[serde(default)]
    pub credential_epoch: u64,
    /// When an administrator disabled the account (a worker who left): it cannot log in,
    /// its sessions ended, shares to it were revoked, and it no longer counts as a
    /// referent.
    #[serde(default)]
    pub disabled_at: Option<u64>,
}

impl Account {
    /// Puts new credentials in place and moves the credential epoch on (what every
    /// backend's credential swap does to the account itself); returns the new epoch.
    pub fn apply_credentials(&mut self, change: &CredentialChange) -> StoreResult<u64> {
        self.password_file.clone_from(&change.password_file);
        self.bundle.clone_from(&change.bundle);
        self.ksf_version = change.ksf_version;
        let epoch = self
            .credential_epoch
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("credential epoch overflow".into()))?;
        self.credential_epoch = epoch;
        Ok(epoch)
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("handle", &self.handle)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A login session. Stored under the SHA-256 of its token: the token itself is never
/// stored, so a copy of the database opens no session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Whose session.
    pub account: Id,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Expiry (unix seconds); refused from then on.
    pub expires_at: u64,
    /// The account's [`Account::credential_epoch`] when the login started; refused once
    /// the account has moved on.
    #[serde(default)]
    pub credential_epoch: u64,
    /// Last use (unix seconds), moved forward at most once every
    /// [`SESSION_TOUCH_SECONDS`] to keep writes low; `0` for a session stored before it
    /// was kept (read as its creation time).
    #[serde(default)]
    pub last_used_at: u64,
    /// A coarse label of the device it was opened on ("Chrome on Android"), derived
    /// from the User-Agent at login; the User-Agent itself is not kept.
    #[serde(default)]
    pub device: String,
    /// Opened in "shared computer" mode.
    #[serde(default)]
    pub shared: bool,
}

/// A session's last use is written again only when it is at least this old (seconds).
pub const SESSION_TOUCH_SECONDS: u64 = 60;

impl Session {
    /// When it was last used (its creation for a record that predates the field).
    pub fn last_used(&self) -> u64 {
        self.last_used_at.max(self.created_at)
    }
}

/// An organisation (a "relais": shelter, CCAS, association).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Org {
    /// Identifier.
    pub id: Id,
    /// Display name, public.
    pub name: String,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Delay before a recovery through referents completes, for the people of this
    /// organisation (seconds; `None`: the default, see [`recovery::effective_delay`]).
    #[serde(default)]
    pub recovery_delay_seconds: Option<u64>,
}

/// An invite for a worker to register into an organisation. Stored under the SHA-256 of
/// its code, used once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    /// The organisation the worker joins.
    pub org: Id,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Expiry (unix seconds).
    pub expires_at: u64,
}

/// A document: sealed metadata and a payload stored in pieces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Identifier.
    pub id: Id,
    /// Owner account.
    pub owner: Id,
    /// Name, type and category, sealed by the client under a key from the file key.
    #[serde(with = "b64")]
    pub metadata: Vec<u8>,
    /// Declared payload size (ciphertext bytes), fixed at creation.
    pub size: u64,
    /// Payload bytes stored so far (equals `size` once committed).
    pub stored: u64,
    /// Visible to anyone but the uploader only once committed.
    pub committed: bool,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Commit time (unix seconds).
    pub committed_at: Option<u64>,
}

/// One recipient's envelope of one document: the share itself.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeRecord {
    /// A single-X25519-stanza age header the server cannot open.
    #[serde(with = "b64")]
    pub envelope: Vec<u8>,
    /// Who added it (the owner).
    pub granted_by: Id,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// After this (unix seconds) the server refuses and purges it.
    pub expires_at: Option<u64>,
}

impl fmt::Debug for EnvelopeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeRecord")
            .field("len", &self.envelope.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A link for someone without an account: an envelope to a link key whose secret stays
/// in the URL fragment, never sent to the server.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Identifier (in the URL path).
    pub id: Id,
    /// The document.
    pub doc: Id,
    /// Envelope to the link key.
    #[serde(with = "b64")]
    pub envelope: Vec<u8>,
    /// Creation time (unix seconds).
    pub created_at: u64,
    /// Expiry (unix seconds).
    pub expires_at: Option<u64>,
    /// How many times the link may be opened.
    pub max_downloads: Option<u32>,
    /// How many times it was opened.
    pub downloads: u32,
    /// When it was last opened (unix seconds); absent until the first opening.
    #[serde(default)]
    pub last_opened_at: Option<u64>,
    /// The grants counted in the last [`LINK_REUSE_SECONDS`], at most
    /// [`LINK_GRANTS_KEPT`], oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<LinkGrant>,
}

/// One counted opening of a link, remembered for a while so that asking again with the
/// same grant id does not count again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkGrant {
    /// Digest of the grant id the visitor's page chose.
    pub grant: Digest,
    /// When it was counted (unix seconds).
    pub issued_at: u64,
}

impl Link {
    /// Whether `grant` was counted for this link less than [`LINK_REUSE_SECONDS`] ago.
    pub fn recent_grant(&self, grant: &Digest, now: u64) -> Option<LinkGrant> {
        self.grants
            .iter()
            .find(|g| g.grant == *grant && now < g.issued_at.saturating_add(LINK_REUSE_SECONDS))
            .copied()
    }

    /// The rule of [`Records::grant_link`], which every backend applies inside its one
    /// atomic step: a grant id counted less than [`LINK_REUSE_SECONDS`] ago is handed
    /// back as it was (uncounted) while the link has not expired, even if that opening
    /// used it up; any other counts one opening if the link is neither expired nor used
    /// up. Forgets grants past the window. `None`: expired or used up.
    pub fn grant(&mut self, grant: Digest, now: u64) -> Option<LinkGranted> {
        if self.expires_at.is_some_and(|t| now >= t) {
            return None;
        }
        if let Some(g) = self.recent_grant(&grant, now) {
            return Some(LinkGranted {
                issued_at: g.issued_at,
                counted: false,
            });
        }
        if self.max_downloads.is_some_and(|m| self.downloads >= m) {
            return None;
        }
        self.grants
            .retain(|g| now < g.issued_at.saturating_add(LINK_REUSE_SECONDS));
        if self.grants.len() >= LINK_GRANTS_KEPT {
            self.grants.remove(0);
        }
        self.grants.push(LinkGrant {
            grant,
            issued_at: now,
        });
        self.downloads = self.downloads.saturating_add(1);
        self.last_opened_at = Some(now);
        Some(LinkGranted {
            issued_at: now,
            counted: true,
        })
    }
}

/// A grant handed out by [`Link::grant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkGranted {
    /// When its opening was counted (unix seconds): the grant's validity runs from here.
    pub issued_at: u64,
    /// Whether this request counted it (false: handed back within the re-use window).
    pub counted: bool,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("id", &self.id)
            .field("doc", &self.doc)
            .finish_non_exhaustive()
    }
}

/// Result of asking a link for a download grant ([`Records::grant_link`]).
#[derive(Debug)]
pub enum LinkOpen {
    /// Granted (counted now, or handed back within the re-use window); the link as stored
    /// after this step.
    Opened(Link, LinkGranted),
    /// Expired or download limit reached.
    Exhausted,
}

/// The new credentials of a passphrase change or a recovery
/// ([`Records::replace_credentials`]).
#[derive(Clone)]
pub struct CredentialChange {
    /// The new OPAQUE registration record.
    pub password_file: Vec<u8>,
    /// The identity sealed under the new export key.
    pub bundle: Vec<u8>,
    /// Argon2id parameter version of the new record.
    pub ksf_version: u16,
}

/// A login between its two messages.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingLogin {
    /// The OPAQUE server state, sealed by the HTTP layer under a key from the server key
    /// file: in the clear it would let a reader of the store finish this login.
    #[serde(with = "b64")]
    pub sealed_state: Vec<u8>,
    /// The account and its credential epoch when KE2 was computed; `None` for the fake
    /// answer to an unknown handle.
    pub account: Option<(Id, u64)>,
    /// The budget the attempt was counted on, and when: a success gives it back.
    pub budget: Budget,
    /// When the attempt was counted (unix seconds).
    pub started_at: u64,
    /// Whether a successful finish issues a device credential (a personal device that
    /// has none yet).
    #[serde(default)]
    pub remember_device: bool,
    /// Refused (and swept) from then on (unix seconds).
    pub expires_at: u64,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("account", &self.account)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One fixed window of a rate counter ([`Records::count_rate`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateWindow {
    /// Start of the window (unix seconds).
    pub start: u64,
    /// Length of the window (seconds).
    pub seconds: u64,
    /// Events counted in it.
    pub count: u32,
}

/// Exclusive right to write one document's payload ([`Records::acquire_upload`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadLease {
    /// Random id of the request holding it.
    pub holder: Id,
    /// Free for others from then on (unix seconds), unless renewed.
    pub expires_at: u64,
}

/// What a [`Records::sweep`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// Expired sessions.
    pub sessions: u64,
    /// Expired invites.
    pub invites: u64,
    /// Expired envelopes (shares).
    pub envelopes: u64,
    /// Expired or used-up links.
    pub links: u64,
    /// Uploads abandoned before commit (records; their bytes go with the orphans).
    pub stale_uploads: u64,
    /// Payloads of documents that no longer exist (a delete interrupted by a crash, a
    /// stale upload).
    pub orphan_payloads: u64,
    /// Logins never finished.
    pub pending_logins: u64,
    /// Rate-counter windows that ended.
    pub rate_windows: u64,
    /// Upload leases that expired.
    pub upload_leases: u64,
    /// Recovery requests closed or expired long enough ago.
    pub recovery_requests: u64,
    /// Login budgets whose window is over.
    pub login_budgets: u64,
    /// Device credentials unused for [`attempts::DEVICE_TTL_SECONDS`].
    pub devices: u64,
}

/// A 32-byte digest (token, code or handle hash) as a record key, written in hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Digest(pub [u8; 32]);

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(Self(bytes))
    }
}

/// Every durable record of a store, as [`Records::export`] reads it and
/// [`Records::import`] writes it: what `copy`, `backup` and `audit` work from. Pending
/// logins, rate windows and upload leases are left out (they only live for minutes).
#[derive(Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Organisations.
    pub orgs: Vec<Org>,
    /// Accounts.
    pub accounts: Vec<Account>,
    /// Sessions, by token hash.
    pub sessions: Vec<(Digest, Session)>,
    /// Invites, by code hash.
    pub invites: Vec<(Digest, Invite)>,
    /// Documents, committed or not.
    pub documents: Vec<Document>,
    /// Envelopes: (document, recipient, record).
    pub envelopes: Vec<(Id, Id, EnvelopeRecord)>,
    /// Links.
    pub links: Vec<Link>,
    /// Login budgets of handles (with or without an account), by handle key.
    #[serde(default)]
    pub login_budgets: Vec<(Digest, Attempts)>,
    /// Device credentials, by token hash.
    #[serde(default)]
    pub devices: Vec<(Digest, Device)>,
    /// Referent deals, one per account at most.
    #[serde(default)]
    pub recovery_deals: Vec<RecoveryDeal>,
    /// Recovery requests, open or recently closed.
    #[serde(default)]
    pub recovery_requests: Vec<RecoveryRequest>,
}

/// Reads an account record written before login budgets: its `failed_logins` and
/// `locked` fields are dropped (a lock from then is lifted; the handle's budget starts
/// fresh). Returns whether anything changed.
pub fn upgrade_legacy_account(account: &mut serde_json::Value) -> bool {
    let Some(fields) = account.as_object_mut() else {
        return false;
    };
    let failed = fields.remove("failed_logins").is_some();
    let locked = fields.remove("locked").is_some();
    failed || locked
}

/// Reads an export (a backup) written before login budgets: accounts as
/// [`upgrade_legacy_account`], and the counters of unknown handles dropped.
pub fn upgrade_legacy_export(export: &mut serde_json::Value) {
    let Some(fields) = export.as_object_mut() else {
        return;
    };
    fields.remove("unknown_attempts");
    if let Some(accounts) = fields.get_mut("accounts").and_then(|a| a.as_array_mut()) {
        for account in accounts {
            upgrade_legacy_account(account);
        }
    }
}

impl Export {
    /// How many records, all kinds together.
    pub fn len(&self) -> usize {
        self.orgs.len()
            + self.accounts.len()
            + self.sessions.len()
            + self.invites.len()
            + self.documents.len()
            + self.envelopes.len()
            + self.links.len()
            + self.login_budgets.len()
            + self.devices.len()
            + self.recovery_deals.len()
            + self.recovery_requests.len()
    }

    /// Whether there is no record at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The records the server keeps. Every method is one atomic step of the backend; see the
/// module docs for the rules.
#[async_trait]
pub trait Records: Send + Sync + 'static {
    // --- accounts ---
    /// Creates an account; [`StoreError::HandleTaken`] or [`StoreError::IdTaken`] if it
    /// clashes.
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    /// Creates a worker's account with a one-use invite, atomically: the invite must exist
    /// and not be expired at `now` ([`StoreError::InviteInvalid`]); it is consumed with
    /// the account or not at all, and gives the account its organisation.
    async fn create_account_with_invite(
        &self,
        account: &Account,
        invite_hash: &[u8; 32],
        now: u64,
    ) -> StoreResult<Account>;
    /// An account by id.
    async fn account(&self, id: Id) -> StoreResult<Option<Account>>;
    /// An account by handle.
    async fn account_by_handle(&self, handle: &str) -> StoreResult<Option<Account>>;
    /// Counts one login attempt on the budget of the handle whose key is `key`
    /// ([`attempts::handle_key`]; the same whether or not an account has the handle), by
    /// [`Attempts::take`] and atomically with every concurrent one; returns the attempts
    /// its window still allows, or [`StoreError::Throttled`]. Durable on return.
    async fn count_login_attempt(
        &self,
        key: &[u8; 32],
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32>;
    /// The same on a device credential's own budget: [`StoreError::NotFound`] unless
    /// `device` (a token hash) is a credential of `account`. The attempt that makes
    /// [`AttemptPolicy::forget_after`] in a row forgets the credential.
    async fn count_device_attempt(
        &self,
        device: &[u8; 32],
        account: Id,
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32>;
    /// A handle's budget (`None`: nothing counted, or swept).
    async fn login_budget(&self, key: &[u8; 32]) -> StoreResult<Option<Attempts>>;
    /// A login counted on `budget` at `started_at` succeeded: [`Attempts::succeeded`]
    /// (and a device's last use moves to `now`). A budget that is gone is left so.
    async fn attempt_succeeded(
        &self,
        budget: &Budget,
        started_at: u64,
        now: u64,
    ) -> StoreResult<()>;
    /// Forgets a handle's budget (a worker's unlock in person, the recovery code).
    async fn reset_login_budget(&self, key: &[u8; 32]) -> StoreResult<()>;
    /// Issues a device credential under its token hash; beyond
    /// [`attempts::MAX_DEVICES_PER_ACCOUNT`] for the account, the least recently used are
    /// forgotten.
    async fn put_device(&self, device: &[u8; 32], record: &Device) -> StoreResult<()>;
    /// An account's device credentials, by token hash.
    async fn devices_of(&self, account: Id) -> StoreResult<Vec<(Digest, Device)>>;
    /// Forgets every device credential of an account; returns how many there were.
    async fn delete_devices_of(&self, account: Id) -> StoreResult<u64>;
    /// A finished login: [`StoreError::CredentialsChanged`] if the credentials changed
    /// since the login started at `epoch`.
    async fn login_succeeded(&self, id: Id, epoch: u64) -> StoreResult<Account>;
    /// Disables an account in one step: `disabled_at` is set (kept if already set), every
    /// session of the account ends, and every share to it (envelopes of others'
    /// documents) is deleted; from then on [`Records::put_envelope`] refuses it as a
    /// recipient ([`StoreError::RecipientNotFound`]).
    async fn disable_account(&self, id: Id, now: u64) -> StoreResult<Account>;
    /// Replaces an account's credentials in one step: the new record and bundle, the
    /// next credential epoch, every session of the account deleted but `keep`, which
    /// moves to the new epoch. Sessions opened concurrently under the old epoch are
    /// refused from then on (see [`Account::credential_epoch`]).
    async fn replace_credentials(
        &self,
        id: Id,
        change: &CredentialChange,
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<Account>;

    // --- logins between their two messages, and rate counters (not durable) ---
    /// Keeps a login until its second message; [`StoreError::TooManyPending`] when
    /// [`MAX_PENDING_LOGINS`] unexpired ones wait. Not flushed: a crash makes the client
    /// start again.
    async fn put_pending_login(&self, id: Id, login: &PendingLogin, now: u64) -> StoreResult<()>;
    /// Takes a login out, once: a second take, or one after its expiry, finds nothing.
    async fn take_pending_login(&self, id: Id, now: u64) -> StoreResult<Option<PendingLogin>>;
    /// Counts one event under `key` in the fixed window of `seconds` that holds `now`;
    /// returns the count in that window, this event included. Not flushed.
    async fn count_rate(&self, key: &str, now: u64, seconds: u64) -> StoreResult<u32>;

    // --- sessions ---
    /// Stores a session under its token hash.
    async fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> StoreResult<()>;
    /// A session by token hash.
    async fn session(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Session>>;
    /// Deletes a session (logout, expiry).
    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()>;
    /// Every session of an account (expired ones included until swept), by token hash.
    async fn sessions_of_account(&self, account: Id) -> StoreResult<Vec<(Digest, Session)>>;
    /// Moves a session's last use to `now` (never back); a missing session is fine. Only
    /// that field changes, so a concurrent credential swap or close is never undone.
    async fn touch_session(&self, token_hash: &[u8; 32], now: u64) -> StoreResult<()>;
    /// Ends every session of `account` but `keep`, in one step; returns how many ended.
    async fn delete_other_sessions(&self, account: Id, keep: &[u8; 32]) -> StoreResult<u64>;
    /// A session and its account (which may be gone), in one step: what every signed-in
    /// request reads first.
    async fn session_with_account(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(Session, Option<Account>)>> {
        let Some(session) = self.session(token_hash).await? else {
            return Ok(None);
        };
        let account = self.account(session.account).await?;
        Ok(Some((session, account)))
    }

    // --- organisations ---
    /// Creates an organisation.
    async fn put_org(&self, org: &Org) -> StoreResult<()>;
    /// An organisation by id.
    async fn org(&self, id: Id) -> StoreResult<Option<Org>>;
    /// Stores an invite under its code hash.
    async fn put_invite(&self, code_hash: &[u8; 32], invite: &Invite) -> StoreResult<()>;
    /// An invite by code hash.
    async fn invite(&self, code_hash: &[u8; 32]) -> StoreResult<Option<Invite>>;

    // --- documents ---
    /// Creates an uncommitted document with the owner's own envelope, if the owner's
    /// documents (committed or not) plus this one stay within `quota` bytes, atomically
    /// with every concurrent create ([`StoreError::QuotaExceeded`]).
    async fn create_document(
        &self,
        doc: &Document,
        owner_envelope: &EnvelopeRecord,
        quota: u64,
    ) -> StoreResult<()>;
    /// A document by id, committed or not.
    async fn document(&self, id: Id) -> StoreResult<Option<Document>>;
    /// Documents owned by `owner`, committed or not.
    async fn documents_of(&self, owner: Id) -> StoreResult<Vec<Document>>;
    /// Documents owned by `owner`, each with the owner's own envelope: a list in one step.
    async fn documents_with_envelopes(
        &self,
        owner: Id,
    ) -> StoreResult<Vec<(Document, Option<EnvelopeRecord>)>> {
        let mut out = Vec::new();
        for doc in self.documents_of(owner).await? {
            let envelope = self.envelope(doc.id, owner).await?;
            out.push((doc, envelope));
        }
        Ok(out)
    }
    /// Moves the stored length from `from` (which must be the current one:
    /// [`StoreError::OffsetMismatch`]) to `to` (at most the declared size), once the
    /// payload store holds those bytes durably. Returns `to`.
    async fn advance_upload(&self, id: Id, from: u64, to: u64) -> StoreResult<u64>;
    /// Makes a fully stored document visible, atomically.
    async fn commit_document(&self, id: Id, now: u64) -> StoreResult<Document>;
    /// Deletes a document with its envelopes, links and lease; returns what it was. The
    /// caller deletes the payload after: until then it is an orphan that nothing refers to.
    async fn delete_document(&self, id: Id) -> StoreResult<Document>;
    /// Takes (or, for the same `holder`, renews) the exclusive right to write `doc`'s
    /// payload until `now + seconds`; `false` while another holder's lease runs;
    /// [`StoreError::NotFound`] if there is no such document. Not flushed: after a crash,
    /// leases restart empty, which frees them early.
    async fn acquire_upload(
        &self,
        doc: Id,
        holder: Id,
        now: u64,
        seconds: u64,
    ) -> StoreResult<bool>;
    /// Gives a lease back (nothing if `holder` no longer holds it).
    async fn release_upload(&self, doc: Id, holder: Id) -> StoreResult<()>;

    // --- envelopes (shares) ---
    /// Adds or replaces `recipient`'s envelope of a committed document, atomically with a
    /// concurrent delete of the document or the recipient ([`StoreError::NotFound`],
    /// [`StoreError::NotCommitted`], [`StoreError::RecipientNotFound`]).
    async fn put_envelope(
        &self,
        doc: Id,
        recipient: Id,
        record: &EnvelopeRecord,
    ) -> StoreResult<()>;
    /// `recipient`'s envelope of `doc`.
    async fn envelope(&self, doc: Id, recipient: Id) -> StoreResult<Option<EnvelopeRecord>>;
    /// Removes an envelope; whether one was there.
    async fn delete_envelope(&self, doc: Id, recipient: Id) -> StoreResult<bool>;
    /// All envelopes of a document, by recipient.
    async fn envelopes_of(&self, doc: Id) -> StoreResult<Vec<(Id, EnvelopeRecord)>>;
    /// Documents shared with `recipient` (their own documents excluded).
    async fn shared_with(&self, recipient: Id) -> StoreResult<Vec<Id>>;

    // --- links ---
    /// Creates a link to a committed document ([`StoreError::NotFound`],
    /// [`StoreError::NotCommitted`]).
    async fn put_link(&self, link: &Link) -> StoreResult<()>;
    /// A link by id, without counting.
    async fn link(&self, id: Id) -> StoreResult<Option<Link>>;
    /// Hands out the download grant `grant` (a digest of the id the visitor's page chose)
    /// by [`Link::grant`]'s rule, in one atomic and durable step: concurrent requests on a
    /// link with one opening left get exactly one grant. `None`: no such link.
    async fn grant_link(&self, id: Id, grant: Digest, now: u64) -> StoreResult<Option<LinkOpen>>;
    /// Links of a document.
    async fn links_of(&self, doc: Id) -> StoreResult<Vec<Link>>;
    /// Deletes a link; whether one was there.
    async fn delete_link(&self, id: Id) -> StoreResult<bool>;

    // --- recovery: the recovery code, referents, requests ---
    /// Replaces the recovery-code bundle and its verifier (a new kit: the old code stops
    /// working at once).
    async fn replace_recovery_code(
        &self,
        account: Id,
        bundle: &[u8],
        verifier: &[u8],
    ) -> StoreResult<Account>;
    /// Sets an organisation's recovery delay ([`StoreError::NotFound`]).
    async fn set_org_recovery_delay(&self, org: Id, seconds: Option<u64>) -> StoreResult<Org>;
    /// Stores the account's deal in place of any earlier one and closes the account's open
    /// request (made under the old deal), in one step ([`StoreError::NotFound`] without
    /// the account).
    async fn put_recovery_deal(&self, deal: &RecoveryDeal, now: u64) -> StoreResult<()>;
    /// The account's deal.
    async fn recovery_deal(&self, account: Id) -> StoreResult<Option<RecoveryDeal>>;
    /// Every deal in which `referent` holds a share (the people they are referent of).
    async fn recovery_deals_naming(&self, referent: Id) -> StoreResult<Vec<RecoveryDeal>>;
    /// Removes the account's deal and closes its open request; whether there was a deal.
    async fn delete_recovery_deal(&self, account: Id, now: u64) -> StoreResult<bool>;
    /// Stores a new request unless one for the same handle is open at `now`
    /// ([`StoreError::RecoveryPending`]), atomically with concurrent requests.
    async fn create_recovery_request(&self, request: &RecoveryRequest, now: u64)
        -> StoreResult<()>;
    /// A request by id, whatever its state.
    async fn recovery_request(&self, id: Id) -> StoreResult<Option<RecoveryRequest>>;
    /// Every request about `account`, newest first (open or recently closed).
    async fn recovery_requests_of(&self, account: Id) -> StoreResult<Vec<RecoveryRequest>>;
    /// Every request open at `now` that names `referent`.
    async fn recovery_requests_for(
        &self,
        referent: Id,
        now: u64,
    ) -> StoreResult<Vec<RecoveryRequest>>;
    /// Applies `change` with [`RecoveryRequest::apply`], atomically with every other
    /// change of the request; returns the request as changed.
    async fn change_recovery_request(
        &self,
        id: Id,
        change: &RequestChange,
        now: u64,
    ) -> StoreResult<RecoveryRequest>;
    /// Ends a recovery in one step: the request must be releasable at `now`
    /// ([`RecoveryRequest::check_releasable`]) and made under the account's current deal
    /// ([`StoreError::RecoveryClosed`] otherwise); the credentials are replaced as
    /// [`Records::replace_credentials`] does (every session ends, the account unlocks), the
    /// recovery code and the deal are replaced, and the request is finished.
    async fn finish_recovery(
        &self,
        id: Id,
        finish: &RecoveryFinish,
        now: u64,
    ) -> StoreResult<Account>;

    // --- maintenance ---
    /// Removes what has expired at `now`: sessions, invites, shares, expired links and
    /// used-up links [`LINK_GRANT_SECONDS`] after their last opening, pending logins, rate
    /// windows, upload leases, and the records of uploads created before `stale_before`
    /// and never committed. Payload bytes are the caller's (see [`sweep_payloads`]).
    async fn sweep(&self, now: u64, stale_before: u64) -> StoreResult<Sweep>;
    /// Makes every write so far durable; for shutdown (each method is durable already).
    async fn close(&self) -> StoreResult<()>;

    // --- whole-store copies ---
    /// Every durable record, as one consistent snapshot: no write lands half inside it,
    /// even while the server runs.
    async fn export(&self) -> StoreResult<Export>;
    /// Writes `export` into this store, which must hold no account, organisation or
    /// document yet ([`StoreError::NotEmpty`]); all of it or, on failure, as little as
    /// the backend can (PostgreSQL: nothing).
    async fn import(&self, export: &Export) -> StoreResult<()>;
}

/// A stream of payload bytes, in pieces of at most [`PIECE_BYTES`].
pub type PayloadStream = BoxStream<'static, StoreResult<Bytes>>;

/// The payload bytes of documents. Which bytes count is decided by the records
/// ([`Document::stored`]), never by this store: bytes past the stored length were never
/// acknowledged, and a backend may keep them as separate pieces until they are replaced.
#[async_trait]
pub trait Payloads: Send + Sync + 'static {
    /// Prepares the storage of a new document's payload.
    async fn begin(&self, id: Id) -> StoreResult<()>;
    /// Writes one piece (the parts in order, at most [`PIECE_BYTES`] together) at
    /// `offset`. `stored` is the acknowledged length: a piece at `stored` first drops
    /// anything an earlier, cut upload left past it; any other offset must be the end of
    /// the pieces written since. Not durable until [`Payloads::sync`].
    async fn append(&self, id: Id, stored: u64, offset: u64, parts: Vec<Bytes>) -> StoreResult<()>;
    /// Makes every piece written so far durable. May run beside an `append` of the same
    /// payload (syncing ahead while the next piece arrives).
    async fn sync(&self, id: Id) -> StoreResult<()>;
    /// Bytes `start..end` of a payload, which must lie within its stored length.
    async fn read(&self, id: Id, start: u64, end: u64) -> StoreResult<PayloadStream>;
    /// Deletes a payload; a missing one is fine.
    async fn delete(&self, id: Id) -> StoreResult<()>;
    /// The ids of every payload held, for the sweep of orphans and for audits.
    async fn list(&self) -> StoreResult<Vec<Id>>;
    /// How many bytes of a payload are held (acknowledged or not); `None` if none are.
    async fn held_bytes(&self, id: Id) -> StoreResult<Option<u64>>;
}

/// The embedded store in a data directory: sled records in `dir`, payload files in
/// `dir/payloads`. `cache_bytes` bounds sled's page cache.
pub fn open_embedded(
    dir: &std::path::Path,
    cache_bytes: u64,
) -> StoreResult<(SledRecords, FilePayloads)> {
    let payloads = FilePayloads::open(&dir.join(PAYLOAD_DIR))?;
    let records = SledRecords::open(dir, cache_bytes)?;
    Ok((records, payloads))
}

/// Deletes the payloads that no document refers to any more (a delete cut by a crash
/// between its record and its bytes, a swept stale upload); returns how many. Ids are
/// random, so such a payload can never become visible again; the record decides, so a
/// payload whose document exists is never touched.
pub async fn sweep_payloads(records: &dyn Records, payloads: &dyn Payloads) -> StoreResult<u64> {
    let mut removed = 0;
    for id in payloads.list().await? {
        if records.document(id).await?.is_none() {
            payloads.delete(id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether `size` bytes can be an age STREAM payload: a 16-byte nonce, then full chunks
/// of 64 KiB + 16, then a last chunk of 17..=64 KiB + 16 bytes — or exactly 16 (an empty
/// chunk) when the whole plaintext is empty (c2sp.org/age, "Payload"). Chunks are not
/// delimited, so the length is all the structure there is to check without the key.
pub fn is_stream_length(size: u64) -> bool {
    let chunk = ENCRYPTED_CHUNK_SIZE as u64;
    let Some(body) = size.checked_sub(PAYLOAD_NONCE_BYTES as u64) else {
        return false;
    };
    let (full, rest) = (body / chunk, body % chunk);
    match rest {
        0 => full >= 1,
        r if r == TAG_BYTES as u64 => full == 0,
        r => r > TAG_BYTES as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trips_and_rejects_other_spellings() {
        let id = Id([0xab; ID_BYTES]);
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(s.parse::<Id>().ok(), Some(id));
        assert!(s.to_uppercase().parse::<Id>().is_err());
        assert!(s[..30].parse::<Id>().is_err());
        assert!(format!("{s}00").parse::<Id>().is_err());
    }
}
