//! The embedded [`Records`] backend: sled.
//!
//! One tree per kind of record (names in [`TREES`]); records are JSON, binary fields in
//! base64. Index trees (`owned`, `inbox`, `doc_links`, `account_sessions`) hold empty
//! values under concatenated ids. Every change that spans several records runs in one
//! sled transaction, so a crash leaves either all of it or none.
//!
//! sled makes writes durable only at a flush of its log. A mutating method here returns
//! after a *group* flush ([`GroupFlush`]): one flush makes every write finished before it
//! durable, so the calls that wait while a flush runs share the next one instead of
//! queueing one fsync each (measured on the add-envelope route at 64 connections, one
//! flush per request capped it at 4.9k req/s with p99 29 ms). The methods documented as
//! not durable (pending logins, rate counters, upload leases) skip it.
//!
//! Reads and small transactions run right on the async worker: sled answers them from
//! memory in microseconds, and sending each to the blocking pool cost more than the work
//! (at 64 connections on 2 cores, tokio grew ~190 blocking threads that crowded out the
//! two workers). Flushes and the sweep's scans go to the blocking pool.
//!
//! sled locks its directory, so one process owns the store: the few rules that sled
//! transactions cannot hold alone (the quota sums an owner's documents, which a
//! transaction cannot scan) are serialised by a lock inside this process, which is then
//! the only one.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use sled::{Db, Tree};

mod attempts;
mod recovery;

use super::{
    Account, AttemptPolicy, Attempts, Budget, CredentialChange, Device, Digest, Document,
    EnvelopeRecord, Export, Id, Invite, Link, LinkOpen, Org, PendingLogin, RateWindow, Records,
    RecoveryDeal, RecoveryFinish, RecoveryRequest, RequestChange, Session, StoreError, StoreResult,
    Sweep, UploadLease, ID_BYTES, LINK_GRANT_SECONDS, MAX_PENDING_LOGINS,
};

/// Names of all trees this store writes; `audit` expects nothing else.
pub const TREES: &[&str] = &[
    "accounts",
    "handles",
    "sessions",
    "orgs",
    "invites",
    "documents",
    "owned",
    "envelopes",
    "inbox",
    "links",
    "doc_links",
    "account_sessions",
    "pending_logins",
    "login_budgets",
    "devices",
    "account_devices",
    "rate",
    "upload_leases",
    "recovery_deals",
    "recovery_requests",
    "recovery_open",
];

/// The trees, shared with the blocking pool for flushes and sweeps.
struct Trees {
    db: Db,
    accounts: Tree,
    handles: Tree,
    sessions: Tree,
    orgs: Tree,
    invites: Tree,
    documents: Tree,
    owned: Tree,
    envelopes: Tree,
    inbox: Tree,
    links: Tree,
    doc_links: Tree,
    account_sessions: Tree,
    pending_logins: Tree,
    /// Handle key → its login budget.
    login_budgets: Tree,
    /// Device token hash → device credential.
    devices: Tree,
    /// Account id ‖ device token hash → nothing (an account's devices).
    account_devices: Tree,
    rate: Tree,
    upload_leases: Tree,
    /// Account id → its referent deal.
    recovery_deals: Tree,
    /// Request id → recovery request.
    recovery_requests: Tree,
    /// Handle digest → the id of its open request (the one-open-request rule).
    recovery_open: Tree,
}

/// sled records in a data directory.
pub struct SledRecords {
    t: Arc<Trees>,
    flushes: GroupFlush,
    /// Serialises document creation per process (the quota check; see the module docs).
    creating: Mutex<()>,
    /// Every durable write holds it shared, through its flush; an export holds it alone,
    /// so that it sees no write half done.
    gate: tokio::sync::RwLock<()>,
}

/// Group commit of sled's log (see the module docs).
#[derive(Debug, Default)]
struct GroupFlush {
    /// Tickets handed out; a caller takes one after its writes are done.
    issued: AtomicU64,
    /// Every ticket up to this one is durable.
    durable: AtomicU64,
    /// One flush at a time; waiters queue here in order.
    running: tokio::sync::Mutex<()>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(backend)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(backend)
}

/// Decoding inside a transaction: a bad record aborts it.
fn tx_decode<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, ConflictableTransactionError<StoreError>> {
    decode(bytes).map_err(ConflictableTransactionError::Abort)
}

fn tx_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ConflictableTransactionError<StoreError>> {
    encode(value).map_err(ConflictableTransactionError::Abort)
}

fn abort<T>(e: StoreError) -> Result<T, ConflictableTransactionError<StoreError>> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_result<T>(r: Result<T, TransactionError<StoreError>>) -> StoreResult<T> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    })
}

/// `a || b` for two ids: the key of index trees.
fn pair(a: Id, b: Id) -> [u8; 2 * ID_BYTES] {
    let mut key = [0u8; 2 * ID_BYTES];
    key[..ID_BYTES].copy_from_slice(&a.0);
    key[ID_BYTES..].copy_from_slice(&b.0);
    key
}

/// Key of the account → session index: account id || token hash.
fn session_index(account: Id, token_hash: &[u8; 32]) -> [u8; ID_BYTES + 32] {
    let mut key = [0u8; ID_BYTES + 32];
    key[..ID_BYTES].copy_from_slice(&account.0);
    key[ID_BYTES..].copy_from_slice(token_hash);
    key
}

fn second_id(key: &[u8]) -> StoreResult<Id> {
    key.get(ID_BYTES..)
        .and_then(Id::from_slice)
        .ok_or_else(|| backend("malformed index key"))
}

impl SledRecords {
    /// Opens (or creates) the database in `dir`. `cache_bytes` bounds sled's page cache,
    /// which otherwise defaults to 1 GiB and dominates the server's memory.
    pub fn open(dir: &Path, cache_bytes: u64) -> StoreResult<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(backend)?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let t = Trees {
            accounts: tree("accounts")?,
            handles: tree("handles")?,
            sessions: tree("sessions")?,
            orgs: tree("orgs")?,
            invites: tree("invites")?,
            documents: tree("documents")?,
            owned: tree("owned")?,
            envelopes: tree("envelopes")?,
            inbox: tree("inbox")?,
            links: tree("links")?,
            doc_links: tree("doc_links")?,
            account_sessions: tree("account_sessions")?,
            pending_logins: tree("pending_logins")?,
            login_budgets: tree("login_budgets")?,
            devices: tree("devices")?,
            account_devices: tree("account_devices")?,
            rate: tree("rate")?,
            upload_leases: tree("upload_leases")?,
            recovery_deals: tree("recovery_deals")?,
            recovery_requests: tree("recovery_requests")?,
            recovery_open: tree("recovery_open")?,
            db,
        };
        // Leases and rate windows restart empty: their holders are gone with the process
        // that held them.
        t.upload_leases.clear().map_err(backend)?;
        t.rate.clear().map_err(backend)?;
        t.upgrade_legacy_records()?;
        Ok(Self {
            t: Arc::new(t),
            flushes: GroupFlush::default(),
            creating: Mutex::new(()),
            gate: tokio::sync::RwLock::new(()),
        })
    }

    /// The underlying database, for `audit` (which reads every tree as it is stored).
    pub fn db(&self) -> &Db {
        &self.t.db
    }

    /// Makes every write finished before the call durable, sharing one flush among the
    /// callers that wait meanwhile.
    async fn durable(&self) -> StoreResult<()> {
        let gate = &self.flushes;
        let ticket = gate.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = gate.running.lock().await;
        if gate.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(()); // a flush that started after our writes has finished
        }
        // Every ticket issued so far belongs to writes that are done: this flush covers them.
        let covered = gate.issued.load(Ordering::SeqCst);
        let t = Arc::clone(&self.t);
        tokio::task::spawn_blocking(move || t.db.flush().map(|_| ()).map_err(backend))
            .await
            .map_err(backend)??;
        gate.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }

    /// `op`, then a group flush.
    async fn durably<T>(&self, op: StoreResult<T>) -> StoreResult<T> {
        let value = op?;
        self.durable().await?;
        Ok(value)
    }
}

fn get<T: DeserializeOwned>(tree: &Tree, key: &[u8]) -> StoreResult<Option<T>> {
    tree.get(key)
        .map_err(backend)?
        .map(|v| decode(&v))
        .transpose()
}

fn put<T: Serialize>(tree: &Tree, key: &[u8], value: &T) -> StoreResult<()> {
    tree.insert(key, encode(value)?).map_err(backend)?;
    Ok(())
}

fn ids_with_prefix(tree: &Tree, prefix: Id) -> StoreResult<Vec<Id>> {
    tree.scan_prefix(prefix.0)
        .keys()
        .map(|k| second_id(&k.map_err(backend)?))
        .collect()
}

fn get_tx<T: DeserializeOwned>(
    tree: &TransactionalTree,
    key: &[u8],
) -> Result<Option<T>, ConflictableTransactionError<StoreError>> {
    tree.get(key)?.map(|v| tx_decode(&v)).transpose()
}

/// Applies `change` to one record atomically (compare-and-swap, retried on a concurrent
/// change, so that concurrent failed logins are all counted).
fn update<T, F>(tree: &Tree, key: &[u8], mut change: F) -> StoreResult<T>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(&mut T) -> StoreResult<()>,
{
    loop {
        let old = tree
            .get(key)
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        let mut value: T = decode(&old)?;
        change(&mut value)?;
        let new = encode(&value)?;
        match tree
            .compare_and_swap(key, Some(old), Some(new))
            .map_err(backend)?
        {
            Ok(()) => return Ok(value),
            Err(_) => continue,
        }
    }
}

/// Every value of a tree, decoded.
fn values<T: DeserializeOwned>(tree: &Tree) -> StoreResult<Vec<T>> {
    tree.iter()
        .values()
        .map(|v| decode(&v.map_err(backend)?))
        .collect()
}

/// Every (32-byte key, value) of a tree.
fn by_digest<T: DeserializeOwned>(tree: &Tree) -> StoreResult<Vec<(Digest, T)>> {
    tree.iter()
        .map(|entry| {
            let (k, v) = entry.map_err(backend)?;
            let key =
                <[u8; 32]>::try_from(k.as_ref()).map_err(|_| backend("key is not 32 bytes"))?;
            Ok((Digest(key), decode(&v)?))
        })
        .collect()
}

impl Trees {
    fn export(&self) -> StoreResult<Export> {
        let mut envelopes = Vec::new();
        for entry in self.envelopes.iter() {
            let (k, v) = entry.map_err(backend)?;
            let doc = k
                .get(..ID_BYTES)
                .and_then(Id::from_slice)
                .ok_or_else(|| backend("malformed envelope key"))?;
            envelopes.push((doc, second_id(&k)?, decode(&v)?));
        }
        Ok(Export {
            orgs: values(&self.orgs)?,
            accounts: values(&self.accounts)?,
            sessions: by_digest(&self.sessions)?,
            invites: by_digest(&self.invites)?,
            documents: values(&self.documents)?,
            envelopes,
            links: values(&self.links)?,
            login_budgets: by_digest(&self.login_budgets)?,
            devices: by_digest(&self.devices)?,
            recovery_deals: values(&self.recovery_deals)?,
            recovery_requests: values(&self.recovery_requests)?,
        })
    }

    fn import(&self, export: &Export) -> StoreResult<()> {
        if !self.accounts.is_empty() || !self.orgs.is_empty() || !self.documents.is_empty() {
            return Err(StoreError::NotEmpty);
        }
        for org in &export.orgs {
            put(&self.orgs, &org.id.0, org)?;
        }
        for a in &export.accounts {
            put(&self.accounts, &a.id.0, a)?;
            self.handles
                .insert(a.handle.as_bytes(), a.id.0.as_slice())
                .map_err(backend)?;
        }
        for (hash, session) in &export.sessions {
            put(&self.sessions, &hash.0, session)?;
            self.account_sessions
                .insert(session_index(session.account, &hash.0).as_slice(), &[][..])
                .map_err(backend)?;
        }
        for (hash, invite) in &export.invites {
            put(&self.invites, &hash.0, invite)?;
        }
        for d in &export.documents {
            put(&self.documents, &d.id.0, d)?;
            self.owned
                .insert(pair(d.owner, d.id).as_slice(), &[][..])
                .map_err(backend)?;
        }
        let owners: std::collections::HashMap<Id, Id> =
            export.documents.iter().map(|d| (d.id, d.owner)).collect();
        for (doc, recipient, record) in &export.envelopes {
            put(&self.envelopes, &pair(*doc, *recipient), record)?;
            if owners.get(doc) != Some(recipient) {
                self.inbox
                    .insert(pair(*recipient, *doc).as_slice(), &[][..])
                    .map_err(backend)?;
            }
        }
        for l in &export.links {
            put(&self.links, &l.id.0, l)?;
            self.doc_links
                .insert(pair(l.doc, l.id).as_slice(), &[][..])
                .map_err(backend)?;
        }
        for (key, budget) in &export.login_budgets {
            put(&self.login_budgets, &key.0, budget)?;
        }
        self.import_devices(&export.devices)?;
        for deal in &export.recovery_deals {
            put(&self.recovery_deals, &deal.account.0, deal)?;
        }
        // Oldest first, so that if a handle has several requests still marked open (an
        // expired one waits for the sweep), the index ends on the newest.
        let mut requests: Vec<&RecoveryRequest> = export.recovery_requests.iter().collect();
        requests.sort_by_key(|r| r.created_at);
        for r in requests {
            put(&self.recovery_requests, &r.id.0, r)?;
            if r.state == super::RequestState::Open {
                self.recovery_open
                    .insert(r.handle_key.0.as_slice(), r.id.0.as_slice())
                    .map_err(backend)?;
            }
        }
        self.db.flush().map_err(backend)?;
        Ok(())
    }

    fn create_account(
        &self,
        account: &Account,
        invite: Option<(&[u8; 32], u64)>,
    ) -> StoreResult<Account> {
        tx_result((&self.accounts, &self.handles, &self.invites).transaction(
            |(accounts, handles, invites)| {
                let mut account = account.clone();
                if accounts.get(account.id.0)?.is_some() {
                    return abort(StoreError::IdTaken);
                }
                if handles.get(account.handle.as_bytes())?.is_some() {
                    return abort(StoreError::HandleTaken);
                }
                if let Some((hash, now)) = invite {
                    // The invite is consumed with the account or not at all.
                    let Some(found) = get_tx::<Invite>(invites, hash)? else {
                        return abort(StoreError::InviteInvalid);
                    };
                    if found.expires_at <= now {
                        return abort(StoreError::InviteInvalid);
                    }
                    invites.remove(hash.as_slice())?;
                    account.org = Some(found.org);
                }
                handles.insert(account.handle.as_bytes(), account.id.0.as_slice())?;
                accounts.insert(account.id.0.as_slice(), tx_encode(&account)?)?;
                Ok(account)
            },
        ))
    }

    fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        let Some(session) = get::<Session>(&self.sessions, token_hash)? else {
            return Ok(());
        };
        let index = session_index(session.account, token_hash);
        tx_result(
            (&self.sessions, &self.account_sessions).transaction(|(sessions, index_tree)| {
                sessions.remove(token_hash.as_slice())?;
                index_tree.remove(index.as_slice())?;
                Ok(())
            }),
        )
    }

    fn replace_credentials(
        &self,
        id: Id,
        change: &CredentialChange,
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<Account> {
        // Sessions cannot be scanned inside a transaction: list them first. One opened
        // between this scan and the transaction belongs to the old epoch, which the
        // transaction ends, so it is refused all the same.
        let others = self.sessions_of(id, keep)?;
        tx_result(
            (&self.accounts, &self.sessions, &self.account_sessions).transaction(
                |(accounts, sessions, index_tree)| {
                    let Some(mut account) = get_tx::<Account>(accounts, &id.0)? else {
                        return abort(StoreError::NotFound);
                    };
                    let epoch = account
                        .apply_credentials(change)
                        .map_err(ConflictableTransactionError::Abort)?;
                    accounts.insert(id.0.as_slice(), tx_encode(&account)?)?;
                    for hash in &others {
                        sessions.remove(hash.as_slice())?;
                        index_tree.remove(session_index(id, hash).as_slice())?;
                    }
                    if let Some(keep) = keep {
                        if let Some(mut session) = get_tx::<Session>(sessions, keep)? {
                            if session.account == id {
                                session.credential_epoch = epoch;
                                sessions.insert(keep.as_slice(), tx_encode(&session)?)?;
                            }
                        }
                    }
                    Ok(account)
                },
            ),
        )
    }

    fn advance_upload(&self, id: Id, from: u64, to: u64) -> StoreResult<u64> {
        tx_result(self.documents.transaction(|documents| {
            let Some(mut doc) = get_tx::<Document>(documents, &id.0)? else {
                return abort(StoreError::NotFound);
            };
            if doc.committed {
                return abort(StoreError::AlreadyCommitted);
            }
            if doc.stored != from || to < from {
                return abort(StoreError::OffsetMismatch { stored: doc.stored });
            }
            if to > doc.size {
                return abort(StoreError::BeyondDeclaredSize { size: doc.size });
            }
            doc.stored = to;
            documents.insert(id.0.as_slice(), tx_encode(&doc)?)?;
            Ok(to)
        }))
    }

    fn commit_document(&self, id: Id, now: u64) -> StoreResult<Document> {
        tx_result(self.documents.transaction(|documents| {
            let Some(mut doc) = get_tx::<Document>(documents, &id.0)? else {
                return abort(StoreError::NotFound);
            };
            if doc.committed {
                return abort(StoreError::AlreadyCommitted);
            }
            if doc.stored != doc.size {
                return abort(StoreError::Incomplete {
                    stored: doc.stored,
                    size: doc.size,
                });
            }
            doc.committed = true;
            doc.committed_at = Some(now);
            // One record flips: the document is visible completely or not at all.
            documents.insert(id.0.as_slice(), tx_encode(&doc)?)?;
            Ok(doc)
        }))
    }

    fn delete_document(&self, id: Id) -> StoreResult<Document> {
        let Some(doc) = get::<Document>(&self.documents, &id.0)? else {
            return Err(StoreError::NotFound);
        };
        let recipients: Vec<Id> = self
            .envelopes
            .scan_prefix(id.0)
            .keys()
            .map(|k| second_id(&k.map_err(backend)?))
            .collect::<StoreResult<_>>()?;
        let links = ids_with_prefix(&self.doc_links, id)?;
        // The records in one transaction: from then on nothing refers to the payload, and
        // no reader can see a document with missing bytes. A share or link whose own
        // transaction (which checks the document) commits between the scan and this one
        // is not in the lists: it is removed just after, when no new one can be added any
        // more because the document is gone.
        tx_result(
            (
                &self.documents,
                &self.owned,
                &self.envelopes,
                &self.inbox,
                &self.links,
                &self.doc_links,
            )
                .transaction(
                    |(documents, owned, envelopes, inbox, link_tree, doc_links)| {
                        if documents.remove(id.0.as_slice())?.is_none() {
                            return abort(StoreError::NotFound);
                        }
                        owned.remove(pair(doc.owner, id).as_slice())?;
                        for r in &recipients {
                            envelopes.remove(pair(id, *r).as_slice())?;
                            inbox.remove(pair(*r, id).as_slice())?;
                        }
                        for l in &links {
                            link_tree.remove(l.0.as_slice())?;
                            doc_links.remove(pair(id, *l).as_slice())?;
                        }
                        Ok(())
                    },
                ),
        )?;
        for key in self.envelopes.scan_prefix(id.0).keys() {
            let recipient = second_id(&key.map_err(backend)?)?;
            self.delete_envelope(id, recipient)?;
        }
        for link in ids_with_prefix(&self.doc_links, id)? {
            self.delete_link(link)?;
        }
        self.upload_leases.remove(id.0).map_err(backend)?;
        Ok(doc)
    }

    fn delete_envelope(&self, doc: Id, recipient: Id) -> StoreResult<bool> {
        tx_result(
            (&self.envelopes, &self.inbox).transaction(|(envelopes, inbox)| {
                inbox.remove(pair(recipient, doc).as_slice())?;
                Ok(envelopes.remove(pair(doc, recipient).as_slice())?.is_some())
            }),
        )
    }

    fn delete_link(&self, id: Id) -> StoreResult<bool> {
        let Some(link) = get::<Link>(&self.links, &id.0)? else {
            return Ok(false);
        };
        tx_result(
            (&self.links, &self.doc_links).transaction(|(links, doc_links)| {
                doc_links.remove(pair(link.doc, id).as_slice())?;
                Ok(links.remove(id.0.as_slice())?.is_some())
            }),
        )
    }

    fn disable_account(&self, id: Id, now: u64) -> StoreResult<Account> {
        // Listed first (a transaction cannot scan); a session or share made between the
        // scan and the transaction is caught by the second pass below, after which the
        // account can get neither (sessions are refused by the Caller, shares by
        // put_envelope).
        let sessions = self.sessions_of(id, None)?;
        let shared: Vec<Id> = ids_with_prefix(&self.inbox, id)?;
        let account = tx_result(
            (
                &self.accounts,
                &self.sessions,
                &self.account_sessions,
                &self.envelopes,
                &self.inbox,
            )
                .transaction(
                    |(accounts, session_tree, index_tree, envelopes, inbox)| {
                        let Some(mut account) = get_tx::<Account>(accounts, &id.0)? else {
                            return abort(StoreError::NotFound);
                        };
                        account.disabled_at.get_or_insert(now);
                        accounts.insert(id.0.as_slice(), tx_encode(&account)?)?;
                        for hash in &sessions {
                            session_tree.remove(hash.as_slice())?;
                            index_tree.remove(session_index(id, hash).as_slice())?;
                        }
                        for doc in &shared {
                            envelopes.remove(pair(*doc, id).as_slice())?;
                            inbox.remove(pair(id, *doc).as_slice())?;
                        }
                        Ok(account)
                    },
                ),
        )?;
        for hash in self.sessions_of(id, None)? {
            self.delete_session(&hash)?;
        }
        for doc in ids_with_prefix(&self.inbox, id)? {
            self.delete_envelope(doc, id)?;
        }
        Ok(account)
    }

    /// Ids of the sessions of `id` (but `keep`), for a transaction that ends them.
    pub(super) fn sessions_of(
        &self,
        id: Id,
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<Vec<[u8; 32]>> {
        let mut others = Vec::new();
        for key in self.account_sessions.scan_prefix(id.0).keys() {
            let key = key.map_err(backend)?;
            if let Some(hash) = key
                .get(ID_BYTES..)
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
            {
                if keep != Some(&hash) {
                    others.push(hash);
                }
            }
        }
        Ok(others)
    }

    /// Removes the entries of `tree` whose record `dead` says are over; how many.
    fn sweep_tree<T: DeserializeOwned>(tree: &Tree, dead: impl Fn(&T) -> bool) -> StoreResult<u64> {
        let mut removed = 0;
        for entry in tree.iter() {
            let (k, v) = entry.map_err(backend)?;
            if decode::<T>(&v).is_ok_and(|r| dead(&r)) {
                // Only if unchanged since read: a renewed lease or a new window stays.
                if tree
                    .compare_and_swap(&k, Some(v), None as Option<&[u8]>)
                    .map_err(backend)?
                    .is_ok()
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn sweep(&self, now: u64, stale_before: u64) -> StoreResult<Sweep> {
        let mut sweep = Sweep::default();
        for entry in self.sessions.iter() {
            let (k, v) = entry.map_err(backend)?;
            if decode::<Session>(&v).is_ok_and(|s| s.expires_at <= now) {
                if let Ok(hash) = <[u8; 32]>::try_from(k.as_ref()) {
                    self.delete_session(&hash)?;
                    sweep.sessions += 1;
                }
            }
        }
        sweep.invites = Self::sweep_tree(&self.invites, |i: &Invite| i.expires_at <= now)?;
        sweep.pending_logins =
            Self::sweep_tree(&self.pending_logins, |p: &PendingLogin| p.expires_at <= now)?;
        sweep.rate_windows = Self::sweep_tree(&self.rate, |w: &RateWindow| {
            w.start.saturating_add(w.seconds) <= now
        })?;
        sweep.upload_leases =
            Self::sweep_tree(&self.upload_leases, |l: &UploadLease| l.expires_at <= now)?;
        sweep.recovery_requests = self.sweep_recovery_requests(now)?;
        (sweep.login_budgets, sweep.devices) = self.sweep_attempts(now)?;
        let mut expired_envelopes = Vec::new();
        for entry in self.envelopes.iter() {
            let (k, v) = entry.map_err(backend)?;
            let record: EnvelopeRecord = decode(&v)?;
            if record.expires_at.is_some_and(|t| t <= now) {
                let doc = k.get(..ID_BYTES).and_then(Id::from_slice);
                if let (Some(doc), Ok(recipient)) = (doc, second_id(&k)) {
                    expired_envelopes.push((doc, recipient));
                }
            }
        }
        for (doc, recipient) in expired_envelopes {
            if self.delete_envelope(doc, recipient)? {
                sweep.envelopes += 1;
            }
        }
        let mut dead_links = Vec::new();
        for entry in self.links.iter() {
            let (_, v) = entry.map_err(backend)?;
            let link: Link = decode(&v)?;
            let expired = link.expires_at.is_some_and(|t| t <= now);
            // A used-up link is kept while its last opener may still be downloading (the
            // grant of the last opening lasts LINK_GRANT_SECONDS), then removed.
            let last_opened = link.last_opened_at.unwrap_or(link.created_at);
            let used_up = link.max_downloads.is_some_and(|m| link.downloads >= m)
                && last_opened.saturating_add(LINK_GRANT_SECONDS) <= now;
            if expired || used_up {
                dead_links.push(link.id);
            }
        }
        for id in dead_links {
            if self.delete_link(id)? {
                sweep.links += 1;
            }
        }
        let mut stale = Vec::new();
        for entry in self.documents.iter() {
            let (_, v) = entry.map_err(backend)?;
            let doc: Document = decode(&v)?;
            if !doc.committed && doc.created_at < stale_before {
                stale.push(doc.id);
            }
        }
        for id in stale {
            match self.delete_document(id) {
                Ok(_) => sweep.stale_uploads += 1,
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        self.db.flush().map_err(backend)?;
        Ok(sweep)
    }
}

#[async_trait]
impl Records for SledRecords {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(self.t.create_account(account, None).map(|_| ()))
            .await
    }

    async fn create_account_with_invite(
        &self,
        account: &Account,
        invite_hash: &[u8; 32],
        now: u64,
    ) -> StoreResult<Account> {
        let _gate = self.gate.read().await;
        self.durably(self.t.create_account(account, Some((invite_hash, now))))
            .await
    }

    async fn account(&self, id: Id) -> StoreResult<Option<Account>> {
        get(&self.t.accounts, &id.0)
    }

    async fn account_by_handle(&self, handle: &str) -> StoreResult<Option<Account>> {
        match self.t.handles.get(handle.as_bytes()).map_err(backend)? {
            Some(id) => get(&self.t.accounts, &id),
            None => Ok(None),
        }
    }

    async fn count_login_attempt(
        &self,
        key: &[u8; 32],
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32> {
        let _gate = self.gate.read().await;
        // On disk before KE2 leaves: KE2 lets the client test a guess.
        self.durably(self.t.count_login_attempt(key, now, policy))
            .await
    }

    async fn count_device_attempt(
        &self,
        device: &[u8; 32],
        account: Id,
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32> {
        let _gate = self.gate.read().await;
        self.durably(self.t.count_device_attempt(device, account, now, policy))
            .await
    }

    async fn login_budget(&self, key: &[u8; 32]) -> StoreResult<Option<Attempts>> {
        get(&self.t.login_budgets, key)
    }

    async fn attempt_succeeded(
        &self,
        budget: &Budget,
        started_at: u64,
        now: u64,
    ) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(self.t.attempt_succeeded(budget, started_at, now))
            .await
    }

    async fn reset_login_budget(&self, key: &[u8; 32]) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        let removed = self
            .t
            .login_budgets
            .remove(key)
            .map(|_| ())
            .map_err(backend);
        self.durably(removed).await
    }

    async fn put_device(&self, device: &[u8; 32], record: &Device) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(self.t.put_device(device, record)).await
    }

    async fn devices_of(&self, account: Id) -> StoreResult<Vec<(Digest, Device)>> {
        self.t.devices_of(account)
    }

    async fn delete_devices_of(&self, account: Id) -> StoreResult<u64> {
        let _gate = self.gate.read().await;
        self.durably(self.t.delete_devices_of(account)).await
    }

    async fn login_succeeded(&self, id: Id, epoch: u64) -> StoreResult<Account> {
        let account: Account = get(&self.t.accounts, &id.0)?.ok_or(StoreError::NotFound)?;
        if account.credential_epoch != epoch {
            // The passphrase changed since this login started: it proved the old one. (A
            // change after this check is caught by the session's epoch.)
            return Err(StoreError::CredentialsChanged);
        }
        Ok(account)
    }

    async fn disable_account(&self, id: Id, now: u64) -> StoreResult<Account> {
        let _gate = self.gate.read().await;
        self.durably(self.t.disable_account(id, now)).await
    }

    async fn replace_credentials(
        &self,
        id: Id,
        change: &CredentialChange,
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<Account> {
        let _gate = self.gate.read().await;
        self.durably(self.t.replace_credentials(id, change, keep))
            .await
    }

    async fn put_pending_login(&self, id: Id, login: &PendingLogin, now: u64) -> StoreResult<()> {
        let tree = &self.t.pending_logins;
        if tree.len() as u64 >= MAX_PENDING_LOGINS {
            Trees::sweep_tree(tree, |p: &PendingLogin| p.expires_at <= now)?;
            if tree.len() as u64 >= MAX_PENDING_LOGINS {
                return Err(StoreError::TooManyPending);
            }
        }
        put(tree, &id.0, login)
    }

    async fn take_pending_login(&self, id: Id, now: u64) -> StoreResult<Option<PendingLogin>> {
        // `remove` is atomic: of two concurrent finishes, one gets the state.
        let Some(bytes) = self.t.pending_logins.remove(id.0).map_err(backend)? else {
            return Ok(None);
        };
        let login: PendingLogin = decode(&bytes)?;
        Ok((login.expires_at > now).then_some(login))
    }

    async fn count_rate(&self, key: &str, now: u64, seconds: u64) -> StoreResult<u32> {
        let seconds = seconds.max(1);
        let start = now - now % seconds;
        let window =
            update_or_insert(
                &self.t.rate,
                key.as_bytes(),
                |old: Option<RateWindow>| match old {
                    Some(mut w) if w.start == start && w.seconds == seconds => {
                        w.count = w.count.saturating_add(1);
                        w
                    }
                    _ => RateWindow {
                        start,
                        seconds,
                        count: 1,
                    },
                },
            )?;
        Ok(window.count)
    }

    async fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        let value = encode(session)?;
        let index = session_index(session.account, token_hash);
        let done = tx_result((&self.t.sessions, &self.t.account_sessions).transaction(
            |(sessions, index_tree)| {
                sessions.insert(token_hash.as_slice(), value.as_slice())?;
                index_tree.insert(index.as_slice(), &[][..])?;
                Ok(())
            },
        ));
        self.durably(done).await
    }

    async fn session(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Session>> {
        get(&self.t.sessions, token_hash)
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(self.t.delete_session(token_hash)).await
    }

    async fn sessions_of_account(&self, account: Id) -> StoreResult<Vec<(Digest, Session)>> {
        let mut found = Vec::new();
        for hash in self.t.sessions_of(account, None)? {
            if let Some(session) = get::<Session>(&self.t.sessions, &hash)? {
                found.push((Digest(hash), session));
            }
        }
        Ok(found)
    }

    async fn touch_session(&self, token_hash: &[u8; 32], now: u64) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        // A compare-and-swap on the one record: a swap of credentials or a delete that
        // lands meanwhile makes it read again (or find nothing), never undoes them.
        // Not flushed: a crash only loses a last-use time.
        match update::<Session, _>(&self.t.sessions, token_hash, |s| {
            s.last_used_at = s.last_used_at.max(now);
            Ok(())
        }) {
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_other_sessions(&self, account: Id, keep: &[u8; 32]) -> StoreResult<u64> {
        let _gate = self.gate.read().await;
        // Listed first (a transaction cannot scan); a session opened after the scan is a
        // new login, which closing "the others" did not mean to end.
        let others = self.t.sessions_of(account, Some(keep))?;
        let done = tx_result((&self.t.sessions, &self.t.account_sessions).transaction(
            |(sessions, index_tree)| {
                let mut ended = 0;
                for hash in &others {
                    if sessions.remove(hash.as_slice())?.is_some() {
                        ended += 1;
                    }
                    index_tree.remove(session_index(account, hash).as_slice())?;
                }
                Ok(ended)
            },
        ));
        self.durably(done).await
    }

    async fn put_org(&self, org: &Org) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(put(&self.t.orgs, &org.id.0, org)).await
    }

    async fn org(&self, id: Id) -> StoreResult<Option<Org>> {
        get(&self.t.orgs, &id.0)
    }

    async fn put_invite(&self, code_hash: &[u8; 32], invite: &Invite) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(put(&self.t.invites, code_hash, invite)).await
    }

    async fn invite(&self, code_hash: &[u8; 32]) -> StoreResult<Option<Invite>> {
        get(&self.t.invites, code_hash)
    }

    async fn create_document(
        &self,
        doc: &Document,
        owner_envelope: &EnvelopeRecord,
        quota: u64,
    ) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        let created = {
            let _one = self
                .creating
                .lock()
                .map_err(|_| backend("document creation lock poisoned"))?;
            let mut used: u64 = 0;
            for id in ids_with_prefix(&self.t.owned, doc.owner)? {
                if let Some(d) = get::<Document>(&self.t.documents, &id.0)? {
                    used = used.saturating_add(d.size);
                }
            }
            if used.saturating_add(doc.size) > quota {
                Err(StoreError::QuotaExceeded)
            } else {
                let doc_value = encode(doc)?;
                let env_value = encode(owner_envelope)?;
                tx_result(
                    (&self.t.documents, &self.t.owned, &self.t.envelopes).transaction(
                        |(documents, owned, envelopes)| {
                            if documents.get(doc.id.0)?.is_some() {
                                return abort(StoreError::IdTaken);
                            }
                            documents.insert(doc.id.0.as_slice(), doc_value.as_slice())?;
                            owned.insert(pair(doc.owner, doc.id).as_slice(), &[][..])?;
                            envelopes
                                .insert(pair(doc.id, doc.owner).as_slice(), env_value.as_slice())?;
                            Ok(())
                        },
                    ),
                )
            }
        };
        self.durably(created).await
    }

    async fn document(&self, id: Id) -> StoreResult<Option<Document>> {
        get(&self.t.documents, &id.0)
    }

    async fn documents_of(&self, owner: Id) -> StoreResult<Vec<Document>> {
        let mut docs = Vec::new();
        for id in ids_with_prefix(&self.t.owned, owner)? {
            if let Some(doc) = get(&self.t.documents, &id.0)? {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    async fn advance_upload(&self, id: Id, from: u64, to: u64) -> StoreResult<u64> {
        let _gate = self.gate.read().await;
        self.durably(self.t.advance_upload(id, from, to)).await
    }

    async fn commit_document(&self, id: Id, now: u64) -> StoreResult<Document> {
        let _gate = self.gate.read().await;
        self.durably(self.t.commit_document(id, now)).await
    }

    async fn delete_document(&self, id: Id) -> StoreResult<Document> {
        let _gate = self.gate.read().await;
        self.durably(self.t.delete_document(id)).await
    }

    async fn acquire_upload(
        &self,
        doc: Id,
        holder: Id,
        now: u64,
        seconds: u64,
    ) -> StoreResult<bool> {
        if !self.t.documents.contains_key(doc.0).map_err(backend)? {
            return Err(StoreError::NotFound);
        }
        let tree = &self.t.upload_leases;
        loop {
            let old = tree.get(doc.0).map_err(backend)?;
            if let Some(v) = &old {
                let lease: UploadLease = decode(v)?;
                if lease.holder != holder && lease.expires_at > now {
                    return Ok(false);
                }
            }
            let new = encode(&UploadLease {
                holder,
                expires_at: now.saturating_add(seconds),
            })?;
            if tree
                .compare_and_swap(doc.0, old, Some(new))
                .map_err(backend)?
                .is_ok()
            {
                return Ok(true);
            }
        }
    }

    async fn release_upload(&self, doc: Id, holder: Id) -> StoreResult<()> {
        let tree = &self.t.upload_leases;
        let Some(old) = tree.get(doc.0).map_err(backend)? else {
            return Ok(());
        };
        if decode::<UploadLease>(&old)?.holder == holder {
            // Only if still ours and unchanged.
            let _ = tree
                .compare_and_swap(doc.0, Some(old), None as Option<&[u8]>)
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn put_envelope(
        &self,
        doc: Id,
        recipient: Id,
        record: &EnvelopeRecord,
    ) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        let value = encode(record)?;
        let done = tx_result(
            (
                &self.t.documents,
                &self.t.accounts,
                &self.t.envelopes,
                &self.t.inbox,
            )
                .transaction(|(documents, accounts, envelopes, inbox)| {
                    // Checked inside the transaction: a share cannot outlive a concurrent
                    // delete of the document.
                    let Some(d) = get_tx::<Document>(documents, &doc.0)? else {
                        return abort(StoreError::NotFound);
                    };
                    if !d.committed {
                        return abort(StoreError::NotCommitted);
                    }
                    // A disabled account is no recipient any more (see disable_account).
                    match get_tx::<Account>(accounts, &recipient.0)? {
                        Some(a) if a.disabled_at.is_none() => {}
                        _ => return abort(StoreError::RecipientNotFound),
                    }
                    envelopes.insert(pair(doc, recipient).as_slice(), value.as_slice())?;
                    if d.owner != recipient {
                        inbox.insert(pair(recipient, doc).as_slice(), &[][..])?;
                    }
                    Ok(())
                }),
        );
        self.durably(done).await
    }

    async fn envelope(&self, doc: Id, recipient: Id) -> StoreResult<Option<EnvelopeRecord>> {
        get(&self.t.envelopes, &pair(doc, recipient))
    }

    async fn delete_envelope(&self, doc: Id, recipient: Id) -> StoreResult<bool> {
        let _gate = self.gate.read().await;
        self.durably(self.t.delete_envelope(doc, recipient)).await
    }

    async fn envelopes_of(&self, doc: Id) -> StoreResult<Vec<(Id, EnvelopeRecord)>> {
        self.t
            .envelopes
            .scan_prefix(doc.0)
            .map(|entry| {
                let (k, v) = entry.map_err(backend)?;
                Ok((second_id(&k)?, decode(&v)?))
            })
            .collect()
    }

    async fn shared_with(&self, recipient: Id) -> StoreResult<Vec<Id>> {
        ids_with_prefix(&self.t.inbox, recipient)
    }

    async fn put_link(&self, link: &Link) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        let value = encode(link)?;
        let done = tx_result(
            (&self.t.documents, &self.t.links, &self.t.doc_links).transaction(
                |(documents, links, doc_links)| {
                    let Some(d) = get_tx::<Document>(documents, &link.doc.0)? else {
                        return abort(StoreError::NotFound);
                    };
                    if !d.committed {
                        return abort(StoreError::NotCommitted);
                    }
                    links.insert(link.id.0.as_slice(), value.as_slice())?;
                    doc_links.insert(pair(link.doc, link.id).as_slice(), &[][..])?;
                    Ok(())
                },
            ),
        );
        self.durably(done).await
    }

    async fn link(&self, id: Id) -> StoreResult<Option<Link>> {
        get(&self.t.links, &id.0)
    }

    async fn grant_link(&self, id: Id, grant: Digest, now: u64) -> StoreResult<Option<LinkOpen>> {
        let _gate = self.gate.read().await;
        let opened = tx_result(self.t.links.transaction(|links| {
            let Some(mut link) = get_tx::<Link>(links, &id.0)? else {
                return Ok(None);
            };
            let Some(granted) = link.grant(grant, now) else {
                return Ok(Some(LinkOpen::Exhausted));
            };
            if granted.counted {
                links.insert(id.0.as_slice(), tx_encode(&link)?)?;
            }
            Ok(Some(LinkOpen::Opened(link, granted)))
        }));
        // The count must survive a crash, or a limit of 1 could be exceeded.
        self.durably(opened).await
    }

    async fn links_of(&self, doc: Id) -> StoreResult<Vec<Link>> {
        let mut out = Vec::new();
        for id in ids_with_prefix(&self.t.doc_links, doc)? {
            if let Some(link) = get(&self.t.links, &id.0)? {
                out.push(link);
            }
        }
        Ok(out)
    }

    async fn delete_link(&self, id: Id) -> StoreResult<bool> {
        let _gate = self.gate.read().await;
        self.durably(self.t.delete_link(id)).await
    }

    async fn replace_recovery_code(
        &self,
        account: Id,
        bundle: &[u8],
        verifier: &[u8],
    ) -> StoreResult<Account> {
        let _gate = self.gate.read().await;
        let op = update(&self.t.accounts, &account.0, |a: &mut Account| {
            a.recovery_bundle = Some(bundle.to_vec());
            a.recovery_verifier = Some(verifier.to_vec());
            Ok(())
        });
        self.durably(op).await
    }

    async fn set_org_recovery_delay(&self, org: Id, seconds: Option<u64>) -> StoreResult<Org> {
        let _gate = self.gate.read().await;
        let op = update(&self.t.orgs, &org.0, |o: &mut Org| {
            o.recovery_delay_seconds = seconds;
            Ok(())
        });
        self.durably(op).await
    }

    async fn put_recovery_deal(&self, deal: &RecoveryDeal, now: u64) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(
            self.t
                .put_recovery_deal(deal.account, Some(deal), now)
                .map(|_| ()),
        )
        .await
    }

    async fn recovery_deal(&self, account: Id) -> StoreResult<Option<RecoveryDeal>> {
        get(&self.t.recovery_deals, &account.0)
    }

    async fn recovery_deals_naming(&self, referent: Id) -> StoreResult<Vec<RecoveryDeal>> {
        let deals: Vec<RecoveryDeal> = values(&self.t.recovery_deals)?;
        Ok(deals
            .into_iter()
            .filter(|d| d.has_referent(referent))
            .collect())
    }

    async fn delete_recovery_deal(&self, account: Id, now: u64) -> StoreResult<bool> {
        let _gate = self.gate.read().await;
        self.durably(self.t.put_recovery_deal(account, None, now))
            .await
    }

    async fn create_recovery_request(
        &self,
        request: &RecoveryRequest,
        now: u64,
    ) -> StoreResult<()> {
        let _gate = self.gate.read().await;
        self.durably(self.t.create_recovery_request(request, now))
            .await
    }

    async fn recovery_request(&self, id: Id) -> StoreResult<Option<RecoveryRequest>> {
        get(&self.t.recovery_requests, &id.0)
    }

    async fn recovery_requests_of(&self, account: Id) -> StoreResult<Vec<RecoveryRequest>> {
        let mut found = self.t.requests_where(|r| r.account == Some(account))?;
        found.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(found)
    }

    async fn recovery_requests_for(
        &self,
        referent: Id,
        now: u64,
    ) -> StoreResult<Vec<RecoveryRequest>> {
        let mut found = self
            .t
            .requests_where(|r| r.is_open(now) && r.referents.contains(&referent))?;
        found.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(found)
    }

    async fn change_recovery_request(
        &self,
        id: Id,
        change: &RequestChange,
        now: u64,
    ) -> StoreResult<RecoveryRequest> {
        let _gate = self.gate.read().await;
        self.durably(self.t.change_recovery_request(id, change, now))
            .await
    }

    async fn finish_recovery(
        &self,
        id: Id,
        finish: &RecoveryFinish,
        now: u64,
    ) -> StoreResult<Account> {
        let _gate = self.gate.read().await;
        self.durably(self.t.finish_recovery(id, finish, now)).await
    }

    async fn sweep(&self, now: u64, stale_before: u64) -> StoreResult<Sweep> {
        let _gate = self.gate.read().await;
        let t = Arc::clone(&self.t);
        tokio::task::spawn_blocking(move || t.sweep(now, stale_before))
            .await
            .map_err(backend)?
    }

    async fn close(&self) -> StoreResult<()> {
        self.durable().await
    }

    async fn export(&self) -> StoreResult<Export> {
        // Alone: every durable write holds the gate shared until it is flushed.
        let _alone = self.gate.write().await;
        let t = Arc::clone(&self.t);
        tokio::task::spawn_blocking(move || t.export())
            .await
            .map_err(backend)?
    }

    async fn import(&self, export: &Export) -> StoreResult<()> {
        let _alone = self.gate.write().await;
        let t = Arc::clone(&self.t);
        let export = export.clone();
        tokio::task::spawn_blocking(move || t.import(&export))
            .await
            .map_err(backend)?
    }
}

/// Replaces (or creates) one record with `change(old)`, atomically (compare-and-swap).
fn update_or_insert<T, F>(tree: &Tree, key: &[u8], change: F) -> StoreResult<T>
where
    T: Serialize + DeserializeOwned,
    F: Fn(Option<T>) -> T,
{
    loop {
        let old = tree.get(key).map_err(backend)?;
        let value = change(old.as_deref().map(decode).transpose()?);
        let new = encode(&value)?;
        if tree
            .compare_and_swap(key, old, Some(new))
            .map_err(backend)?
            .is_ok()
        {
            return Ok(value);
        }
    }
}
