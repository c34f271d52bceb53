//! The sled implementation of [`Store`].
//!
//! One tree per kind of record (names in [`TREES`]); records are JSON, binary fields in
//! base64. Index trees (`owned`, `inbox`, `doc_links`) hold empty values under
//! concatenated ids. Every change that spans several records runs in one sled
//! transaction, so a crash leaves either all of it or none.
//!
//! Payload bytes are not in sled: sled 0.34 keeps every value it has written in memory
//! whatever its cache capacity (measured: 192 MiB of 1 MiB values raise the process to
//! 207 MiB resident), which would make a large upload cost its size in RAM. Each payload
//! is one file, `payloads/<document id>`, next to sled's files. Pieces are written to the
//! file as they arrive, then synced *before* the document record's `stored` length moves
//! past them (once per checkpoint, not per piece: one fsync per MiB cost four fifths of
//! the upload speed), so the record never claims bytes the file lacks. Between
//! checkpoints the upload also syncs the file in the background ([`Store::sync_payload`],
//! one at a time, never waited for by the receiving loop), so the disk writes while the
//! network delivers and the checkpoint's own sync has little left to do. Bytes past
//! `stored` (a crash before the checkpoint) were never acknowledged and are cut off by
//! the next upload.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use sled::{Db, Tree};

use super::Sweep;

use super::{
    Account, Document, EnvelopeRecord, Id, Invite, Link, LinkOpen, Org, Session, Store, StoreError,
    StoreResult, ID_BYTES, LINK_GRANT_SECONDS, PIECE_BYTES,
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
];

/// Folder of the payload files, inside the data directory.
pub const PAYLOAD_DIR: &str = "payloads";

/// A [`Store`] in a data directory: sled for records, one file per payload.
pub struct SledStore {
    db: Db,
    payloads: PathBuf,
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

impl SledStore {
    /// Opens (or creates) the database in `dir`. `cache_bytes` bounds sled's page cache,
    /// which otherwise defaults to 1 GiB and dominates the server's memory.
    pub fn open(dir: &Path, cache_bytes: u64) -> StoreResult<Self> {
        let payloads = dir.join(PAYLOAD_DIR);
        fs::create_dir_all(&payloads).map_err(backend)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(backend)?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        Ok(Self {
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
            db,
            payloads,
        })
    }

    /// The underlying database, for `audit`.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The folder of payload files, for `audit`.
    pub fn payload_dir(&self) -> &Path {
        &self.payloads
    }

    /// Where the payload of `id` is stored.
    pub fn payload_path(&self, id: Id) -> PathBuf {
        self.payloads.join(id.to_string())
    }

    /// Writes `parts`, one after the other, at `offset` of the payload file, first cutting
    /// off anything past `stored` (see the module docs). Not synced.
    fn write_payload_file(
        &self,
        id: Id,
        stored: u64,
        offset: u64,
        parts: &[&[u8]],
    ) -> io::Result<()> {
        let path = self.payload_path(id);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        if offset == stored {
            file.set_len(offset)?;
        } else if len != offset {
            return Err(io::Error::other(format!(
                "payload file holds {len} bytes, piece at {offset}"
            )));
        }
        file.seek(SeekFrom::Start(offset))?;
        // `write_all_vectored` is not stable yet: the same loop by hand.
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        let mut slices = &mut slices[..];
        io::IoSlice::advance_slices(&mut slices, 0); // skips empty parts
        while !slices.is_empty() {
            match file.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Syncs a payload file and, for a new file, its directory entry.
    fn sync_payload_file(&self, id: Id, new_file: bool) -> io::Result<()> {
        File::open(self.payload_path(id))?.sync_data()?;
        if new_file {
            File::open(&self.payloads)?.sync_all()?;
        }
        Ok(())
    }

    /// Removes a payload file; a missing one is fine (empty or already removed).
    fn remove_payload(&self, id: Id) -> StoreResult<()> {
        match fs::remove_file(self.payload_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(backend(e)),
            _ => Ok(()),
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
}

fn get_tx<T: DeserializeOwned>(
    tree: &TransactionalTree,
    key: &[u8],
) -> Result<Option<T>, ConflictableTransactionError<StoreError>> {
    tree.get(key)?.map(|v| tx_decode(&v)).transpose()
}

impl Store for SledStore {
    fn create_account(&self, account: &Account, invite_hash: Option<&[u8; 32]>) -> StoreResult<()> {
        let value = encode(account)?;
        tx_result((&self.accounts, &self.handles, &self.invites).transaction(
            |(accounts, handles, invites)| {
                if accounts.get(account.id.0)?.is_some() {
                    return abort(StoreError::Conflict("account id already registered".into()));
                }
                if handles.get(account.handle.as_bytes())?.is_some() {
                    return abort(StoreError::Conflict("handle already taken".into()));
                }
                if let Some(hash) = invite_hash {
                    // The invite is consumed with the account or not at all.
                    if invites.remove(hash.as_slice())?.is_none() {
                        return abort(StoreError::NotFound);
                    }
                }
                handles.insert(account.handle.as_bytes(), account.id.0.as_slice())?;
                accounts.insert(account.id.0.as_slice(), value.as_slice())?;
                Ok(())
            },
        ))
    }

    fn account(&self, id: Id) -> StoreResult<Option<Account>> {
        Self::get(&self.accounts, &id.0)
    }

    fn account_by_handle(&self, handle: &str) -> StoreResult<Option<Account>> {
        match self.handles.get(handle.as_bytes()).map_err(backend)? {
            Some(id) => Self::get(&self.accounts, &id),
            None => Ok(None),
        }
    }

    fn update_account(
        &self,
        id: Id,
        change: &mut dyn FnMut(&mut Account) -> StoreResult<()>,
    ) -> StoreResult<Account> {
        // Compare-and-swap loop: concurrent failed logins must all be counted.
        loop {
            let old = self
                .accounts
                .get(id.0)
                .map_err(backend)?
                .ok_or(StoreError::NotFound)?;
            let mut account: Account = decode(&old)?;
            change(&mut account)?;
            let new = encode(&account)?;
            match self
                .accounts
                .compare_and_swap(id.0, Some(old), Some(new))
                .map_err(backend)?
            {
                Ok(()) => return Ok(account),
                Err(_) => continue,
            }
        }
    }

    fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> StoreResult<()> {
        let value = encode(session)?;
        let index = session_index(session.account, token_hash);
        tx_result(
            (&self.sessions, &self.account_sessions).transaction(|(sessions, index_tree)| {
                sessions.insert(token_hash.as_slice(), value.as_slice())?;
                index_tree.insert(index.as_slice(), &[][..])?;
                Ok(())
            }),
        )
    }

    fn session(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Session>> {
        Self::get(&self.sessions, token_hash)
    }

    fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        let Some(session) = self.session(token_hash)? else {
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
        change: &dyn Fn(&mut Account),
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<Account> {
        // Sessions cannot be scanned inside a transaction: list them first. One opened
        // between this scan and the transaction belongs to the old epoch, which the
        // transaction ends, so it is refused all the same.
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
        tx_result(
            (&self.accounts, &self.sessions, &self.account_sessions).transaction(
                |(accounts, sessions, index_tree)| {
                    let Some(mut account) = get_tx::<Account>(accounts, &id.0)? else {
                        return abort(StoreError::NotFound);
                    };
                    change(&mut account);
                    let Some(epoch) = account.credential_epoch.checked_add(1) else {
                        return abort(backend("credential epoch overflow"));
                    };
                    account.credential_epoch = epoch;
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

    fn put_org(&self, org: &Org) -> StoreResult<()> {
        Self::put(&self.orgs, &org.id.0, org)
    }

    fn org(&self, id: Id) -> StoreResult<Option<Org>> {
        Self::get(&self.orgs, &id.0)
    }

    fn put_invite(&self, code_hash: &[u8; 32], invite: &Invite) -> StoreResult<()> {
        Self::put(&self.invites, code_hash, invite)
    }

    fn invite(&self, code_hash: &[u8; 32]) -> StoreResult<Option<Invite>> {
        Self::get(&self.invites, code_hash)
    }

    fn create_document(&self, doc: &Document, owner_envelope: &EnvelopeRecord) -> StoreResult<()> {
        let doc_value = encode(doc)?;
        let env_value = encode(owner_envelope)?;
        tx_result((&self.documents, &self.owned, &self.envelopes).transaction(
            |(documents, owned, envelopes)| {
                if documents.get(doc.id.0)?.is_some() {
                    return abort(StoreError::Conflict("document exists".into()));
                }
                documents.insert(doc.id.0.as_slice(), doc_value.as_slice())?;
                owned.insert(pair(doc.owner, doc.id).as_slice(), &[][..])?;
                envelopes.insert(pair(doc.id, doc.owner).as_slice(), env_value.as_slice())?;
                Ok(())
            },
        ))
    }

    fn document(&self, id: Id) -> StoreResult<Option<Document>> {
        Self::get(&self.documents, &id.0)
    }

    fn sync_payload(&self, id: Id) -> StoreResult<()> {
        File::open(self.payload_path(id))
            .and_then(|f| f.sync_data())
            .map_err(backend)
    }

    fn write_payload(&self, id: Id, offset: u64, parts: &[&[u8]]) -> StoreResult<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > PIECE_BYTES {
            return Err(StoreError::Conflict("piece too large".into()));
        }
        let Some(doc) = self.document(id)? else {
            return Err(StoreError::NotFound);
        };
        if doc.committed {
            return Err(StoreError::Conflict("document already committed".into()));
        }
        if offset < doc.stored {
            return Err(StoreError::Conflict(format!(
                "upload offset is {}, not {offset}",
                doc.stored
            )));
        }
        if offset.saturating_add(len as u64) > doc.size {
            return Err(StoreError::Conflict("payload longer than declared".into()));
        }
        if len == 0 {
            return Ok(());
        }
        self.write_payload_file(id, doc.stored, offset, parts)
            .map_err(backend)
    }

    fn advance_payload(&self, id: Id, from: u64, to: u64) -> StoreResult<u64> {
        if to < from {
            return Err(StoreError::Conflict("payload cannot shrink".into()));
        }
        if to > from {
            // The bytes are on disk before the record may count them.
            self.sync_payload_file(id, from == 0).map_err(backend)?;
        }
        tx_result(self.documents.transaction(|documents| {
            let Some(mut doc) = get_tx::<Document>(documents, &id.0)? else {
                return abort(StoreError::NotFound);
            };
            if doc.committed {
                return abort(StoreError::Conflict("document already committed".into()));
            }
            if doc.stored != from {
                return abort(StoreError::Conflict(format!(
                    "upload offset is {}, not {from}",
                    doc.stored
                )));
            }
            if to > doc.size {
                return abort(StoreError::Conflict("payload longer than declared".into()));
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
                return abort(StoreError::Conflict("document already committed".into()));
            }
            if doc.stored != doc.size {
                return abort(StoreError::Conflict(format!(
                    "{} of {} payload bytes uploaded",
                    doc.stored, doc.size
                )));
            }
            doc.committed = true;
            doc.committed_at = Some(now);
            // One record flips: the document is visible completely or not at all.
            documents.insert(id.0.as_slice(), tx_encode(&doc)?)?;
            Ok(doc)
        }))
    }

    fn piece_at(&self, id: Id, offset: u64) -> StoreResult<Option<(u64, Vec<u8>)>> {
        let Some(doc) = self.document(id)? else {
            return Ok(None);
        };
        if offset >= doc.stored {
            return Ok(None);
        }
        // Bounded by `stored`, so a read never returns unacknowledged bytes.
        let len = (doc.stored - offset).min(PIECE_BYTES as u64) as usize;
        let mut file = File::open(self.payload_path(id)).map_err(backend)?;
        file.seek(SeekFrom::Start(offset)).map_err(backend)?;
        let mut bytes = vec![0u8; len];
        file.read_exact(&mut bytes).map_err(backend)?;
        Ok(Some((offset, bytes)))
    }

    fn documents_of(&self, owner: Id) -> StoreResult<Vec<Document>> {
        let mut docs = Vec::new();
        for id in Self::ids_with_prefix(&self.owned, owner)? {
            if let Some(doc) = self.document(id)? {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    fn delete_document(&self, id: Id) -> StoreResult<()> {
        let Some(doc) = self.document(id)? else {
            return Err(StoreError::NotFound);
        };
        let recipients: Vec<Id> = self
            .envelopes
            .scan_prefix(id.0)
            .keys()
            .map(|k| second_id(&k.map_err(backend)?))
            .collect::<StoreResult<_>>()?;
        let links = Self::ids_with_prefix(&self.doc_links, id)?;
        // First the records, in one transaction: from then on nothing refers to the
        // payload, and no reader can see a document with missing bytes.
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
                        documents.remove(id.0.as_slice())?;
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
        // Then the bytes. A crash here leaves an unreferenced file, which `audit` reports
        // and `sweep` removes; ids are random, so it can never become visible again.
        self.remove_payload(id)
    }

    fn put_envelope(&self, doc: Id, recipient: Id, record: &EnvelopeRecord) -> StoreResult<()> {
        let value = encode(record)?;
        tx_result((&self.documents, &self.envelopes, &self.inbox).transaction(
            |(documents, envelopes, inbox)| {
                // Checked inside the transaction: a share cannot outlive a concurrent delete.
                let Some(d) = get_tx::<Document>(documents, &doc.0)? else {
                    return abort(StoreError::NotFound);
                };
                envelopes.insert(pair(doc, recipient).as_slice(), value.as_slice())?;
                if d.owner != recipient {
                    inbox.insert(pair(recipient, doc).as_slice(), &[][..])?;
                }
                Ok(())
            },
        ))
    }

    fn envelope(&self, doc: Id, recipient: Id) -> StoreResult<Option<EnvelopeRecord>> {
        Self::get(&self.envelopes, &pair(doc, recipient))
    }

    fn delete_envelope(&self, doc: Id, recipient: Id) -> StoreResult<bool> {
        tx_result(
            (&self.envelopes, &self.inbox).transaction(|(envelopes, inbox)| {
                inbox.remove(pair(recipient, doc).as_slice())?;
                Ok(envelopes.remove(pair(doc, recipient).as_slice())?.is_some())
            }),
        )
    }

    fn envelopes_of(&self, doc: Id) -> StoreResult<Vec<(Id, EnvelopeRecord)>> {
        self.envelopes
            .scan_prefix(doc.0)
            .map(|entry| {
                let (k, v) = entry.map_err(backend)?;
                Ok((second_id(&k)?, decode(&v)?))
            })
            .collect()
    }

    fn shared_with(&self, recipient: Id) -> StoreResult<Vec<Id>> {
        Self::ids_with_prefix(&self.inbox, recipient)
    }

    fn put_link(&self, link: &Link) -> StoreResult<()> {
        let value = encode(link)?;
        tx_result((&self.documents, &self.links, &self.doc_links).transaction(
            |(documents, links, doc_links)| {
                if documents.get(link.doc.0)?.is_none() {
                    return abort(StoreError::NotFound);
                }
                links.insert(link.id.0.as_slice(), value.as_slice())?;
                doc_links.insert(pair(link.doc, link.id).as_slice(), &[][..])?;
                Ok(())
            },
        ))
    }

    fn link(&self, id: Id) -> StoreResult<Option<Link>> {
        Self::get(&self.links, &id.0)
    }

    fn open_link(&self, id: Id, now: u64) -> StoreResult<Option<LinkOpen>> {
        tx_result(self.links.transaction(|links| {
            let Some(mut link) = get_tx::<Link>(links, &id.0)? else {
                return Ok(None);
            };
            let expired = link.expires_at.is_some_and(|t| now >= t);
            let used_up = link.max_downloads.is_some_and(|m| link.downloads >= m);
            if expired || used_up {
                return Ok(Some(LinkOpen::Exhausted));
            }
            link.downloads = link.downloads.saturating_add(1);
            link.last_opened_at = Some(now);
            links.insert(id.0.as_slice(), tx_encode(&link)?)?;
            Ok(Some(LinkOpen::Opened(link)))
        }))
    }

    fn links_of(&self, doc: Id) -> StoreResult<Vec<Link>> {
        let mut out = Vec::new();
        for id in Self::ids_with_prefix(&self.doc_links, doc)? {
            if let Some(link) = self.link(id)? {
                out.push(link);
            }
        }
        Ok(out)
    }

    fn delete_link(&self, id: Id) -> StoreResult<bool> {
        let Some(link) = self.link(id)? else {
            return Ok(false);
        };
        tx_result(
            (&self.links, &self.doc_links).transaction(|(links, doc_links)| {
                doc_links.remove(pair(link.doc, id).as_slice())?;
                Ok(links.remove(id.0.as_slice())?.is_some())
            }),
        )
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
        for entry in self.invites.iter() {
            let (k, v) = entry.map_err(backend)?;
            if decode::<Invite>(&v).is_ok_and(|i| i.expires_at <= now) {
                self.invites.remove(k).map_err(backend)?;
                sweep.invites += 1;
            }
        }
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
            self.delete_document(id)?;
            sweep.stale_uploads += 1;
        }
        for entry in fs::read_dir(&self.payloads).map_err(backend)? {
            let name = entry.map_err(backend)?.file_name();
            let Some(id) = name.to_str().and_then(|n| n.parse::<Id>().ok()) else {
                continue; // not ours: `audit` reports it, sweep does not guess
            };
            if !self.documents.contains_key(id.0).map_err(backend)? {
                self.remove_payload(id)?;
                sweep.orphan_payloads += 1;
            }
        }
        Ok(sweep)
    }

    fn flush(&self) -> StoreResult<()> {
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}
