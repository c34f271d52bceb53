//! Storage behind one trait, so that sled (the embedded default, [`SledStore`]) can be
//! swapped for an object store when a deployment outgrows one machine.
//!
//! Everything stored is either public by design (handles, public keys, sizes,
//! timestamps, the share graph; DESIGN.md "Threat model") or ciphertext the server cannot
//! open (sealed metadata, sealed key bundles, envelopes, payload pieces, OPAQUE records
//! that are useless without the separate key file).
//!
//! Payloads move in pieces of at most [`PIECE_BYTES`], on upload and on download, so
//! that no whole file is ever held in memory.

mod sled_store;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use sled_store::{SledStore, PAYLOAD_DIR, TREES};

/// Largest payload piece written or read at once. Bounds the memory one upload or
/// download holds at a time.
pub const PIECE_BYTES: usize = 1024 * 1024;

/// Length of every random identifier.
pub const ID_BYTES: usize = 16;

/// How long one opening of a link lets its visitor fetch the payload (Range continuations
/// of an interrupted download included), and so how long a used-up link is kept after its
/// last opening before the sweeper removes it.
pub const LINK_GRANT_SECONDS: u64 = 3600;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// The operation does not fit the current state (taken handle, wrong offset…). The
    /// text is safe to show to the client.
    #[error("conflict: {0}")]
    Conflict(String),
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
    /// Failed logins since the last success or unlock.
    pub failed_logins: u32,
    /// Locked until a worker of the organisation unlocks it.
    pub locked: bool,
    /// Moves on at every change of the OPAQUE record (passphrase change, recovery). A
    /// session is valid only under the epoch it was opened in, so no session opened with
    /// an old passphrase (even by a login still between its two messages during the
    /// change) outlives the change.
    #[serde(default)]
    pub credential_epoch: u64,
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
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("id", &self.id)
            .field("doc", &self.doc)
            .finish_non_exhaustive()
    }
}

/// Result of opening a link.
#[derive(Debug)]
pub enum LinkOpen {
    /// Counted; here is the link.
    Opened(Link),
    /// Expired or download limit reached.
    Exhausted,
}

/// What a [`Store::sweep`] removed.
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
    /// Uploads abandoned before commit.
    pub stale_uploads: u64,
    /// Payload files of documents that no longer exist (a delete interrupted by a crash).
    pub orphan_payloads: u64,
}

/// The storage the server needs. Every method is synchronous and short (no method holds
/// more than one piece); durability is explicit through [`Store::flush`], which handlers
/// call before acknowledging a write.
pub trait Store: Send + Sync + 'static {
    // --- accounts and sessions ---
    /// Creates an account; `Conflict` if the handle is taken. If `invite_hash` is given,
    /// the invite is consumed in the same transaction (`NotFound` if it is not there).
    fn create_account(&self, account: &Account, invite_hash: Option<&[u8; 32]>) -> StoreResult<()>;
    /// An account by id.
    fn account(&self, id: Id) -> StoreResult<Option<Account>>;
    /// An account by handle.
    fn account_by_handle(&self, handle: &str) -> StoreResult<Option<Account>>;
    /// Applies `change` to an account atomically (retried on concurrent change).
    fn update_account(
        &self,
        id: Id,
        change: &mut dyn FnMut(&mut Account) -> StoreResult<()>,
    ) -> StoreResult<Account>;
    /// Stores a session under its token hash.
    fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> StoreResult<()>;
    /// A session by token hash.
    fn session(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Session>>;
    /// Deletes a session (logout, expiry).
    fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()>;
    /// Replaces an account's credentials in one transaction: applies `change` (the new
    /// OPAQUE record and bundle), moves the account to the next credential epoch, deletes
    /// every session of the account but `keep`, and moves `keep` to the new epoch. Sessions
    /// opened concurrently under the old epoch are refused from then on (see
    /// [`Account::credential_epoch`]). A failure leaves everything as it was.
    fn replace_credentials(
        &self,
        id: Id,
        change: &dyn Fn(&mut Account),
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<Account>;

    // --- organisations ---
    /// Creates an organisation.
    fn put_org(&self, org: &Org) -> StoreResult<()>;
    /// An organisation by id.
    fn org(&self, id: Id) -> StoreResult<Option<Org>>;
    /// Stores an invite under its code hash.
    fn put_invite(&self, code_hash: &[u8; 32], invite: &Invite) -> StoreResult<()>;
    /// An invite by code hash.
    fn invite(&self, code_hash: &[u8; 32]) -> StoreResult<Option<Invite>>;

    // --- documents ---
    /// Creates an uncommitted document together with the owner's own envelope.
    fn create_document(&self, doc: &Document, owner_envelope: &EnvelopeRecord) -> StoreResult<()>;
    /// A document by id, committed or not.
    fn document(&self, id: Id) -> StoreResult<Option<Document>>;
    /// Writes one piece (≤ [`PIECE_BYTES`]) of an upload at `offset`, which must be the
    /// stored length or the end of the pieces written since (uploads are sequential). The
    /// bytes are neither durable nor part of the document until
    /// [`Store::advance_payload`] counts them; a crash before that loses only them.
    fn write_payload(&self, id: Id, offset: u64, parts: &[&[u8]]) -> StoreResult<()>;
    /// Makes the pieces written so far durable without counting them (the next
    /// [`Store::advance_payload`] then has little left to sync). May run beside
    /// [`Store::write_payload`] of the same upload.
    fn sync_payload(&self, id: Id) -> StoreResult<()>;
    /// Makes the pieces written up to `to` durable, then moves the stored length from
    /// `from` (which must be the current one) to `to`, atomically; returns `to`.
    fn advance_payload(&self, id: Id, from: u64, to: u64) -> StoreResult<u64>;
    /// Makes a fully uploaded document visible, atomically.
    fn commit_document(&self, id: Id, now: u64) -> StoreResult<Document>;
    /// Up to [`PIECE_BYTES`] acknowledged payload bytes from `offset`: (start, bytes), with
    /// start ≤ offset < start + bytes.len(); `None` past the stored length.
    fn piece_at(&self, id: Id, offset: u64) -> StoreResult<Option<(u64, Vec<u8>)>>;
    /// Documents owned by `owner`, committed or not.
    fn documents_of(&self, owner: Id) -> StoreResult<Vec<Document>>;
    /// Deletes a document, its pieces, envelopes and links.
    fn delete_document(&self, id: Id) -> StoreResult<()>;

    // --- envelopes (shares) ---
    /// Adds or replaces `recipient`'s envelope of `doc`.
    fn put_envelope(&self, doc: Id, recipient: Id, record: &EnvelopeRecord) -> StoreResult<()>;
    /// `recipient`'s envelope of `doc`.
    fn envelope(&self, doc: Id, recipient: Id) -> StoreResult<Option<EnvelopeRecord>>;
    /// Removes an envelope; whether one was there.
    fn delete_envelope(&self, doc: Id, recipient: Id) -> StoreResult<bool>;
    /// All envelopes of a document, by recipient.
    fn envelopes_of(&self, doc: Id) -> StoreResult<Vec<(Id, EnvelopeRecord)>>;
    /// Documents shared with `recipient` (their own documents excluded).
    fn shared_with(&self, recipient: Id) -> StoreResult<Vec<Id>>;

    // --- links ---
    /// Creates a link.
    fn put_link(&self, link: &Link) -> StoreResult<()>;
    /// A link by id, without counting.
    fn link(&self, id: Id) -> StoreResult<Option<Link>>;
    /// Counts one opening if the link is still valid at `now` and records `now` as its
    /// last opening, atomically.
    fn open_link(&self, id: Id, now: u64) -> StoreResult<Option<LinkOpen>>;
    /// Links of a document.
    fn links_of(&self, doc: Id) -> StoreResult<Vec<Link>>;
    /// Deletes a link; whether one was there.
    fn delete_link(&self, id: Id) -> StoreResult<bool>;

    // --- maintenance ---
    /// Removes what has expired at `now` (sessions, invites, shares, expired links, and
    /// used-up links [`LINK_GRANT_SECONDS`] after their last opening), uploads created
    /// before `stale_before` and never committed, and payloads no document refers to.
    fn sweep(&self, now: u64, stale_before: u64) -> StoreResult<Sweep>;

    // --- durability ---
    /// Makes every write so far durable (survives SIGKILL and power loss).
    fn flush(&self) -> StoreResult<()>;
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
