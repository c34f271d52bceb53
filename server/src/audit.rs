//! `coffre-server audit`: what exactly does the server keep, and can it read any of it?
//!
//! Walks every tree and every value of the sled store, and every payload file, and checks
//! each against the schema the server writes: records decode with no unknown field, every
//! envelope is a single-X25519-stanza age header, every committed payload has the length
//! of an age STREAM and its file holds exactly the recorded bytes, every index entry
//! points at an existing record that matches it, and every record has its index entries. It counts records and bytes per kind, lists which fields are
//! stored in clear, and searches records and payloads for the OPAQUE server key (which
//! must only ever be in its own key file). Any schema violation makes the report fail.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::Serialize;
use sled::Db;

use crate::store::{
    is_stream_length, Account, Attempts, Device, Document, EnvelopeRecord, FilePayloads, Id,
    Invite, Link, Org, Payloads, PendingLogin, RateWindow, Records, RecoveryDeal, RecoveryRequest,
    Session, SledRecords, StoreError, UploadLease, ID_BYTES, PIECE_BYTES,
};

/// Count and size of one tree.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TreeStats {
    /// Entries.
    pub count: u64,
    /// Bytes of keys.
    pub key_bytes: u64,
    /// Bytes of values.
    pub value_bytes: u64,
}

/// The result of an audit.
#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    /// Per tree.
    pub trees: BTreeMap<String, TreeStats>,
    /// Committed documents, and their total payload bytes.
    pub committed_documents: u64,
    /// Total committed payload bytes.
    pub committed_payload_bytes: u64,
    /// Uploads not yet committed (invisible to everyone but the uploader).
    pub uploads_in_progress: u64,
    /// Envelopes checked (shares and links).
    pub envelopes_checked: u64,
    /// Whether the server key file was given and searched for.
    pub server_key_searched: bool,
    /// What is stored in clear, per kind (by design: DESIGN.md "Threat model").
    pub in_clear: BTreeMap<&'static str, Vec<&'static str>>,
    /// What is stored sealed or hashed, per kind.
    pub sealed: BTreeMap<&'static str, Vec<&'static str>>,
    /// Payload files, and their total bytes.
    pub payload_files: TreeStats,
    /// Harmless leftovers (e.g. the payload of a delete interrupted by a crash).
    pub warnings: Vec<String>,
    /// Schema violations; the audit fails if there is any.
    pub violations: Vec<String>,
}

impl AuditReport {
    /// Whether the store fits the schema.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Field names per kind of record.
type FieldList = BTreeMap<&'static str, Vec<&'static str>>;

fn field_lists() -> (FieldList, FieldList) {
    let clear = BTreeMap::from([
        (
            "accounts",
            vec![
                "id",
                "handle",
                "role",
                "org",
                "public_key",
                "ksf_version",
                "created_by",
                "consent_at",
                "created_at",
                "credential_epoch",
                "disabled_at",
            ],
        ),
        ("handles", vec!["handle -> account id"]),
        (
            "sessions",
            vec!["account", "created_at", "expires_at", "credential_epoch"],
        ),
        (
            "orgs",
            vec!["id", "name", "created_at", "recovery_delay_seconds"],
        ),
        ("invites", vec!["org", "created_at", "expires_at"]),
        (
            "documents",
            vec![
                "id",
                "owner",
                "size",
                "stored",
                "committed",
                "created_at",
                "committed_at",
            ],
        ),
        ("owned", vec!["owner -> document"]),
        ("payloads", vec!["document id (file name)", "length"]),
        (
            "envelopes",
            vec![
                "document",
                "recipient",
                "granted_by",
                "created_at",
                "expires_at",
            ],
        ),
        ("inbox", vec!["recipient -> document"]),
        (
            "links",
            vec![
                "id",
                "doc",
                "created_at",
                "expires_at",
                "max_downloads",
                "downloads",
                "last_opened_at",
            ],
        ),
        ("doc_links", vec!["document -> link"]),
        ("account_sessions", vec!["account -> session token hash"]),
        (
            "pending_logins",
            vec![
                "login id",
                "account",
                "credential epoch",
                "budget counted on",
                "started_at",
                "expires_at",
            ],
        ),
        (
            "login_budgets",
            vec![
                "SHA-256 of a tried handle (with or without an account)",
                "failures, window, wait",
            ],
        ),
        (
            "devices",
            vec![
                "key: SHA-256 of a device credential",
                "account",
                "created_at, last_used_at",
                "failures, window, wait",
            ],
        ),
        ("account_devices", vec!["account -> device credential hash"]),
        ("rate", vec!["client address", "window start", "count"]),
        (
            "upload_leases",
            vec!["document", "holder (random request id)", "expires_at"],
        ),
        (
            "recovery_deals",
            vec![
                "account",
                "threshold",
                "referents",
                "share indices",
                "created_at",
            ],
        ),
        (
            "recovery_requests",
            vec![
                "SHA-256 of the handle asked for",
                "account",
                "referents, approvals and refusals (who, when)",
                "ephemeral public key",
                "state, times",
            ],
        ),
        ("recovery_open", vec!["SHA-256 of a handle", "request id"]),
    ]);
    let sealed = BTreeMap::from([
        (
            "accounts",
            vec![
                "password_file (OPAQUE record: useless without the server key file)",
                "bundle (ChaCha20-Poly1305 under the export key)",
                "recovery_bundle (ChaCha20-Poly1305 under the recovery code)",
                "recovery_verifier (SHA-256 of a 256-bit token)",
            ],
        ),
        ("sessions", vec!["key: SHA-256 of the session token"]),
        ("invites", vec!["key: SHA-256 of the invite code"]),
        (
            "documents",
            vec!["metadata (sealed under a key from the file key)"],
        ),
        ("payloads", vec!["bytes (age STREAM ciphertext)"]),
        (
            "envelopes",
            vec!["envelope (age header: file key sealed to X25519)"],
        ),
        ("links", vec!["envelope (age header to the link key)"]),
        (
            "pending_logins",
            vec!["OPAQUE login state (ChaCha20-Poly1305 under a key from the server key file)"],
        ),
        (
            "recovery_deals",
            vec![
                "bundle (ChaCha20-Poly1305 under the recovery secret)",
                "shares (age files to each referent)",
                "commitments (SHA-256 of each share)",
                "verifier (SHA-256 of a token from the recovery secret)",
            ],
        ),
        (
            "recovery_requests",
            vec![
                "approved shares (age files to the ephemeral key)",
                "challenge (SHA-256 only)",
            ],
        ),
    ]);
    (clear, sealed)
}

/// Audits a store. `server_key`, when given, is the key file's content, searched for in
/// every key, value and payload.
pub fn audit(
    records: &SledRecords,
    payloads: &FilePayloads,
    server_key: Option<&[u8]>,
) -> AuditReport {
    let db = records.db();
    let mut report = AuditReport::default();
    let (clear, sealed) = field_lists();
    report.in_clear = clear;
    report.sealed = sealed;
    report.server_key_searched = server_key.is_some();
    let needles = server_key.map(key_needles).unwrap_or_default();

    let known: Vec<&str> = crate::store::TREES.to_vec();
    for name in db.tree_names() {
        let name_text = String::from_utf8_lossy(&name).into_owned();
        let is_default = name.as_ref() == b"__sled__default";
        let tree = match db.open_tree(&name) {
            Ok(t) => t,
            Err(e) => {
                report.violations.push(format!("tree {name_text}: {e}"));
                continue;
            }
        };
        if !is_default && !known.contains(&name_text.as_str()) {
            report
                .violations
                .push(format!("unexpected tree {name_text:?}"));
        }
        let mut stats = TreeStats::default();
        for entry in tree.iter() {
            let (key, value) = match entry {
                Ok(kv) => kv,
                Err(e) => {
                    report
                        .violations
                        .push(format!("tree {name_text}: read error {e}"));
                    break;
                }
            };
            stats.count += 1;
            stats.key_bytes += key.len() as u64;
            stats.value_bytes += value.len() as u64;
            if !needles.is_empty()
                && (contains_key(&key, &needles) || contains_key(&value, &needles))
            {
                report.violations.push(format!(
                    "tree {name_text}: OPAQUE server key material found in the store"
                ));
            }
            if is_default {
                report.violations.push("the default tree holds data".into());
                continue;
            }
            if let Err(v) = check_entry(db, &name_text, &key, &value, &mut report) {
                report
                    .violations
                    .push(format!("tree {name_text}, key {}: {v}", hex::encode(&key)));
            }
        }
        if !is_default || stats.count > 0 {
            report.trees.insert(name_text, stats);
        }
    }
    check_payloads(db, payloads.dir(), &needles, &mut report);
    report
}

/// Byte strings whose presence would mean the key leaked: each 32-byte part of the key
/// file (seed halves, private key) and the whole file.
fn key_needles(key: &[u8]) -> Vec<Vec<u8>> {
    let mut needles: Vec<Vec<u8>> = key
        .chunks(32)
        .filter(|c| c.len() >= 16)
        .map(<[u8]>::to_vec)
        .collect();
    needles.push(key.to_vec());
    needles
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Looks for the key in raw bytes and inside every base64 string of a JSON value (binary
/// fields are stored as base64, where the raw bytes would not show).
fn contains_key(bytes: &[u8], needles: &[Vec<u8>]) -> bool {
    if needles.iter().any(|n| find(bytes, n)) {
        return true;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let mut strings = Vec::new();
    collect_strings(&json, &mut strings);
    strings.iter().any(|s| {
        STANDARD
            .decode(s)
            .is_ok_and(|decoded| needles.iter().any(|n| find(&decoded, n)))
    })
}

fn collect_strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn json<T: serde::de::DeserializeOwned>(value: &[u8]) -> Result<T, String> {
    serde_json::from_slice(value).map_err(|e| format!("does not fit the schema: {e}"))
}

fn id_key(key: &[u8]) -> Result<Id, String> {
    Id::from_slice(key).ok_or_else(|| "key is not an id".to_owned())
}

fn pair_key(key: &[u8]) -> Result<(Id, Id), String> {
    match (
        key.get(..ID_BYTES).and_then(Id::from_slice),
        key.get(ID_BYTES..).and_then(Id::from_slice),
    ) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err("key is not a pair of ids".into()),
    }
}

fn exists(db: &Db, tree: &str, key: &[u8]) -> bool {
    db.open_tree(tree)
        .ok()
        .and_then(|t| t.contains_key(key).ok())
        .unwrap_or(false)
}

/// The record under `key` of `tree`, if there is one that fits its schema (one that does
/// not is reported where that tree is walked).
fn record<T: serde::de::DeserializeOwned>(db: &Db, tree: &str, key: &[u8]) -> Option<T> {
    let value = db.open_tree(tree).ok()?.get(key).ok()??;
    serde_json::from_slice(&value).ok()
}

/// `a || b`, the key of the index trees.
fn pair(a: Id, b: Id) -> Vec<u8> {
    [a.0, b.0].concat()
}

fn check_envelope(bytes: &[u8], report: &mut AuditReport) -> Result<(), String> {
    report.envelopes_checked += 1;
    coffre_core::Envelope::parse(bytes)
        .map(|_| ())
        .map_err(|e| format!("envelope: {e}"))
}

fn check_entry(
    db: &Db,
    tree: &str,
    key: &[u8],
    value: &[u8],
    report: &mut AuditReport,
) -> Result<(), String> {
    match tree {
        "accounts" => {
            let a: Account = json(value)?;
            if id_key(key)? != a.id {
                return Err("key and id differ".into());
            }
            if db
                .open_tree("handles")
                .ok()
                .and_then(|t| t.get(a.handle.as_bytes()).ok().flatten())
                .as_deref()
                != Some(a.id.0.as_slice())
            {
                return Err("account without its handle entry".into());
            }
            check_account_fields(&a)?;
        }
        "handles" => {
            let id = id_key(value)?;
            std::str::from_utf8(key).map_err(|_| "handle is not UTF-8")?;
            match record::<Account>(db, "accounts", &id.0) {
                None => return Err("handle of a missing account".into()),
                Some(a) if a.handle.as_bytes() != key => {
                    return Err("handle entry of an account with another handle".into())
                }
                Some(_) => {}
            }
        }
        "sessions" => {
            if key.len() != 32 {
                return Err("session key is not a SHA-256".into());
            }
            let session: Session = json(value)?;
            if !exists(db, "accounts", &session.account.0) {
                return Err("session of a missing account".into());
            }
            if !exists(
                db,
                "account_sessions",
                &[&session.account.0[..], key].concat(),
            ) {
                return Err("session without its index entry".into());
            }
        }
        "orgs" => {
            let o: Org = json(value)?;
            if id_key(key)? != o.id {
                return Err("key and id differ".into());
            }
        }
        "invites" => {
            if key.len() != 32 {
                return Err("invite key is not a SHA-256".into());
            }
            json::<Invite>(value)?;
        }
        "documents" => {
            let d: Document = json(value)?;
            if id_key(key)? != d.id {
                return Err("key and id differ".into());
            }
            if d.stored > d.size || (d.committed && d.stored != d.size) {
                return Err("stored length does not fit the declared size".into());
            }
            if !exists(db, "accounts", &d.owner.0) {
                return Err("document of a missing account".into());
            }
            if !exists(db, "owned", &pair(d.owner, d.id)) {
                return Err("document without its owner index entry".into());
            }
            if d.committed {
                if !is_stream_length(d.size) {
                    return Err(format!("{} bytes cannot be an age STREAM payload", d.size));
                }
                report.committed_documents += 1;
                report.committed_payload_bytes += d.size;
            } else {
                report.uploads_in_progress += 1;
            }
        }
        "account_sessions" => {
            if key.len() != ID_BYTES + 32 || !value.is_empty() {
                return Err("malformed session index entry".into());
            }
            match record::<Session>(db, "sessions", &key[ID_BYTES..]) {
                None => return Err("index of a missing session".into()),
                Some(s) if s.account.0[..] != key[..ID_BYTES] => {
                    return Err("index entry of another account's session".into())
                }
                Some(_) => {}
            }
        }
        "account_devices" => {
            if key.len() != ID_BYTES + 32 || !value.is_empty() {
                return Err("malformed device index entry".into());
            }
            match record::<Device>(db, "devices", &key[ID_BYTES..]) {
                None => return Err("index of a missing device credential".into()),
                Some(d) if d.account.0[..] != key[..ID_BYTES] => {
                    return Err("index entry of another account's device".into())
                }
                Some(_) => {}
            }
        }
        "owned" | "inbox" | "doc_links" => {
            let (a, b) = pair_key(key)?;
            if !value.is_empty() {
                return Err("index value is not empty".into());
            }
            check_index(db, tree, a, b)?;
        }
        "envelopes" => {
            let (doc, recipient) = pair_key(key)?;
            let e: EnvelopeRecord = json(value)?;
            check_envelope(&e.envelope, report)?;
            let Some(d) = record::<Document>(db, "documents", &doc.0) else {
                return Err("envelope of a missing document".into());
            };
            if !exists(db, "accounts", &recipient.0) {
                return Err("envelope of a missing recipient".into());
            }
            if recipient != d.owner && !exists(db, "inbox", &pair(recipient, doc)) {
                return Err("share without its inbox entry".into());
            }
        }
        "links" => {
            let l: Link = json(value)?;
            if id_key(key)? != l.id {
                return Err("key and id differ".into());
            }
            check_envelope(&l.envelope, report)?;
            if !exists(db, "documents", &l.doc.0) {
                return Err("link of a missing document".into());
            }
            if !exists(db, "doc_links", &pair(l.doc, l.id)) {
                return Err("link without its index entry".into());
            }
        }
        "pending_logins" => {
            id_key(key)?;
            let p: PendingLogin = json(value)?;
            if p.sealed_state.is_empty() {
                return Err("pending login without its sealed state".into());
            }
        }
        "login_budgets" => {
            if key.len() != 32 {
                return Err("handle budget key is not a SHA-256".into());
            }
            json::<Attempts>(value)?;
        }
        "devices" => {
            if key.len() != 32 {
                return Err("device key is not a SHA-256".into());
            }
            let d: Device = json(value)?;
            if !exists(db, "accounts", &d.account.0) {
                return Err("device credential of a missing account".into());
            }
            let mut index = d.account.0.to_vec();
            index.extend_from_slice(key);
            if !exists(db, "account_devices", &index) {
                return Err("device credential without its index entry".into());
            }
        }
        "rate" => {
            std::str::from_utf8(key).map_err(|_| "rate key is not UTF-8")?;
            json::<RateWindow>(value)?;
        }
        "recovery_deals" => {
            let d: RecoveryDeal = json(value)?;
            if id_key(key)? != d.account {
                return Err("key and account differ".into());
            }
            if !exists(db, "accounts", &d.account.0) {
                return Err("deal of a missing account".into());
            }
            check_deal_fields(&d)?;
            for s in &d.shares {
                if record::<Account>(db, "accounts", &s.referent.0).is_none() {
                    report.warnings.push(format!(
                        "deal of {} names a missing referent {}",
                        d.account, s.referent
                    ));
                }
            }
        }
        "recovery_requests" => {
            let r: RecoveryRequest = json(value)?;
            if id_key(key)? != r.id {
                return Err("key and id differ".into());
            }
            check_request_fields(&r)?;
        }
        "recovery_open" => {
            if key.len() != 32 {
                return Err("open-request key is not a SHA-256".into());
            }
            let id = id_key(value)?;
            match record::<RecoveryRequest>(db, "recovery_requests", &id.0) {
                Some(r) if r.handle_key.0[..] == key[..] => {}
                Some(_) => return Err("open-request entry of another handle".into()),
                None => return Err("open-request entry of a missing request".into()),
            }
        }
        "upload_leases" => {
            let doc = id_key(key)?;
            json::<UploadLease>(value)?;
            if !exists(db, "documents", &doc.0) {
                report
                    .warnings
                    .push(format!("upload lease of a missing document {doc}"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// What every backend's audit checks of an account's own fields: its public key, OPAQUE
/// record and sealed bundles parse.
fn check_account_fields(a: &Account) -> Result<(), String> {
    a.public_key
        .parse::<coffre_core::Recipient>()
        .map_err(|_| "public_key is not an age recipient")?;
    coffre_core::opaque::PasswordFile::from_bytes(&a.password_file)
        .map_err(|e| format!("password_file: {e}"))?;
    coffre_core::bundle::KeyBundle::from_bytes(&a.bundle).map_err(|e| format!("bundle: {e}"))?;
    if let Some(b) = &a.recovery_bundle {
        coffre_core::bundle::KeyBundle::from_bytes(b)
            .map_err(|e| format!("recovery_bundle: {e}"))?;
    }
    Ok(())
}

/// What every backend's audit checks of a referent deal: the bundle is of the referents
/// kind, every share is an age file to one recipient with a 32-byte commitment, and the
/// threshold, referents and indices fit together.
fn check_deal_fields(d: &RecoveryDeal) -> Result<(), String> {
    let bundle = coffre_core::bundle::KeyBundle::from_bytes(&d.bundle)
        .map_err(|e| format!("bundle: {e}"))?;
    if bundle.kind() != coffre_core::bundle::BundleKind::Referents {
        return Err("bundle is not of the referents kind".into());
    }
    if d.verifier.len() != 32 {
        return Err("verifier is not 32 bytes".into());
    }
    let n = d.shares.len();
    if d.threshold == 0 || usize::from(d.threshold) > n {
        return Err("threshold does not fit the referents".into());
    }
    let mut seen = std::collections::HashSet::new();
    for s in &d.shares {
        if !seen.insert(s.referent) || s.index == 0 || usize::from(s.index) > n {
            return Err("referents or indices repeat or do not fit".into());
        }
        if s.commitment.len() != 32 {
            return Err("commitment is not 32 bytes".into());
        }
        coffre_core::Envelope::split(&s.sealed_share)
            .map_err(|e| format!("sealed share is not a one-recipient age file: {e}"))?;
    }
    Ok(())
}

/// What every backend's audit checks of a recovery request.
fn check_request_fields(r: &RecoveryRequest) -> Result<(), String> {
    r.ephemeral_key
        .parse::<coffre_core::Recipient>()
        .map_err(|_| "ephemeral_key is not an age recipient")?;
    for a in &r.approvals {
        if !r.referents.contains(&a.referent) {
            return Err("approval by someone who is not a referent".into());
        }
        coffre_core::Envelope::split(&a.sealed_share)
            .map_err(|e| format!("approved share is not a one-recipient age file: {e}"))?;
    }
    Ok(())
}

/// An index entry `a || b` of `tree` points at the record it stands for.
fn check_index(db: &Db, tree: &str, a: Id, b: Id) -> Result<(), String> {
    match tree {
        // owner -> document: the document exists and is the owner's.
        "owned" => match record::<Document>(db, "documents", &b.0) {
            None => Err("index entry of a missing document".into()),
            Some(d) if d.owner != a => Err("index entry of another owner's document".into()),
            Some(_) => Ok(()),
        },
        // recipient -> document: the recipient holds an envelope of it.
        "inbox" => match record::<Document>(db, "documents", &b.0) {
            None => Err("index entry of a missing document".into()),
            Some(d) if d.owner == a => Err("index entry of the owner's own document".into()),
            Some(_) if !exists(db, "envelopes", &pair(b, a)) => {
                Err("index entry of a missing share".into())
            }
            Some(_) => Ok(()),
        },
        // document -> link: the link exists and is the document's.
        "doc_links" => match record::<Link>(db, "links", &b.0) {
            None => Err("index entry of a missing link".into()),
            Some(l) if l.doc != a => Err("index entry of another document's link".into()),
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Every payload file belongs to a document and holds exactly its recorded bytes;
/// every document with recorded bytes has its file.
fn check_payloads(db: &Db, dir: &Path, needles: &[Vec<u8>], report: &mut AuditReport) {
    let Ok(documents) = db.open_tree("documents") else {
        return;
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            report
                .violations
                .push(format!("payload folder {}: {e}", dir.display()));
            return;
        }
    };
    let mut seen = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.parse::<Id>().ok() else {
            report
                .violations
                .push(format!("unexpected file {name:?} among the payloads"));
            continue;
        };
        let path = entry.path();
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        report.payload_files.count += 1;
        report.payload_files.value_bytes += len;
        if !needles.is_empty() && file_contains(&path, needles) {
            report.violations.push(format!(
                "payload {id}: OPAQUE server key material found in the store"
            ));
        }
        seen.push(id);
        match documents
            .get(id.0)
            .ok()
            .flatten()
            .map(|v| json::<Document>(&v))
        {
            Some(Ok(d)) if d.stored == len => {}
            // An upload cut by a crash after its bytes were written but before its
            // record moved: never acknowledged, cut off by the next append.
            Some(Ok(d)) if !d.committed && len > d.stored => report.warnings.push(format!(
                "upload {id}: {} unacknowledged bytes past the stored length",
                len - d.stored
            )),
            Some(Ok(d)) => report.violations.push(format!(
                "document {id}: payload file holds {len} bytes, record says {}",
                d.stored
            )),
            Some(Err(_)) => {} // the record itself is already reported
            None => report
                .warnings
                .push(format!("{len} bytes of payload of deleted document {id}")),
        }
    }
    for entry in documents.iter() {
        let Ok((_, value)) = entry else { continue };
        let Ok(d) = json::<Document>(&value) else {
            continue;
        };
        if d.stored > 0 && !seen.contains(&d.id) {
            report.violations.push(format!(
                "document {}: {} bytes recorded, no payload file",
                d.id, d.stored
            ));
        }
    }
}

/// Whether a file contains any needle, read in bounded pieces that overlap by the
/// longest needle, so a match across two pieces is found too.
fn file_contains(path: &Path, needles: &[Vec<u8>]) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let overlap = needles.iter().map(Vec::len).max().unwrap_or(0);
    let mut window: Vec<u8> = Vec::with_capacity(PIECE_BYTES + overlap);
    let mut piece = vec![0u8; PIECE_BYTES];
    loop {
        let n = match file.read(&mut piece) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        window.extend_from_slice(&piece[..n]);
        if needles.iter().any(|needle| find(&window, needle)) {
            return true;
        }
        let keep = window.len().min(overlap.saturating_sub(1));
        window.drain(..window.len() - keep);
    }
}

/// The report as text for people.
pub fn render_text(report: &AuditReport) -> String {
    let mut out = String::new();
    out.push_str("coffre-server audit\n\ntrees (entries, key bytes, value bytes):\n");
    for (name, s) in &report.trees {
        out.push_str(&format!(
            "  {name:<12} {:>8} {:>12} {:>14}\n",
            s.count, s.key_bytes, s.value_bytes
        ));
    }
    out.push_str(&format!(
        "  {:<12} {:>8} {:>12} {:>14}\n",
        "payload files", report.payload_files.count, "", report.payload_files.value_bytes
    ));
    out.push_str(&format!(
        "\ncommitted documents: {} ({} payload bytes), uploads in progress: {}, envelopes checked: {}\n",
        report.committed_documents, report.committed_payload_bytes, report.uploads_in_progress, report.envelopes_checked
    ));
    out.push_str("\nstored in clear:\n");
    for (kind, fields) in &report.in_clear {
        out.push_str(&format!("  {kind}: {}\n", fields.join(", ")));
    }
    out.push_str("\nstored sealed or hashed:\n");
    for (kind, fields) in &report.sealed {
        out.push_str(&format!("  {kind}: {}\n", fields.join("; ")));
    }
    out.push_str(&format!(
        "\nOPAQUE server key searched in the store: {}\n",
        if report.server_key_searched {
            "yes, not found unless listed below"
        } else {
            "no (pass --server-key)"
        }
    ));
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for v in &report.violations {
        out.push_str(&format!("VIOLATION: {v}\n"));
    }
    out.push_str(if report.passed() {
        "\nresult: PASS\n"
    } else {
        "\nresult: FAIL\n"
    });
    out
}

/// Audits any backend from its records' snapshot ([`Records::export`]) and its payload
/// store: every record against the schema and the others it refers to, every envelope
/// as an age header, every payload against its document, and everything for the server
/// key. What sled's own audit ([`audit`]) also checks of its trees and indexes, a
/// database holds by its constraints.
pub async fn audit_store(
    records: &dyn Records,
    payloads: &dyn Payloads,
    server_key: Option<&[u8]>,
) -> Result<AuditReport, StoreError> {
    let export = records.export().await?;
    let mut report = AuditReport::default();
    let (clear, sealed) = field_lists();
    report.in_clear = clear;
    report.sealed = sealed;
    report.server_key_searched = server_key.is_some();
    let needles = server_key.map(key_needles).unwrap_or_default();
    let violation = |kind: &str, what: String, report: &mut AuditReport| {
        report.violations.push(format!("{kind}: {what}"));
    };
    let stats = |count: usize, report: &mut AuditReport, kind: &str, bytes: u64| {
        report.trees.insert(
            kind.to_owned(),
            TreeStats {
                count: count as u64,
                key_bytes: 0,
                value_bytes: bytes,
            },
        );
    };

    // Key material anywhere in the records.
    if !needles.is_empty() {
        let kinds: [(&str, Vec<Vec<u8>>); 11] = [
            ("orgs", each_json(&export.orgs)),
            ("accounts", each_json(&export.accounts)),
            ("sessions", each_json(&export.sessions)),
            ("invites", each_json(&export.invites)),
            ("documents", each_json(&export.documents)),
            ("envelopes", each_json(&export.envelopes)),
            ("links", each_json(&export.links)),
            ("login_budgets", each_json(&export.login_budgets)),
            ("devices", each_json(&export.devices)),
            ("recovery_deals", each_json(&export.recovery_deals)),
            ("recovery_requests", each_json(&export.recovery_requests)),
        ];
        for (kind, values) in kinds {
            if values.iter().any(|v| contains_key(v, &needles)) {
                violation(
                    kind,
                    "OPAQUE server key material found in the store".into(),
                    &mut report,
                );
            }
        }
    }

    let orgs: std::collections::HashSet<Id> = export.orgs.iter().map(|o| o.id).collect();
    let accounts: std::collections::HashMap<Id, &Account> =
        export.accounts.iter().map(|a| (a.id, a)).collect();
    let mut handles = std::collections::HashSet::new();
    for a in &export.accounts {
        let mut check = || -> Result<(), String> {
            if !handles.insert(a.handle.as_str()) {
                return Err("handle used twice".into());
            }
            check_account_fields(a)?;
            if a.org.is_some_and(|o| !orgs.contains(&o)) {
                return Err("account of a missing organisation".into());
            }
            Ok(())
        };
        if let Err(v) = check() {
            violation("accounts", format!("{}: {v}", a.id), &mut report);
        }
    }
    for (hash, s) in &export.sessions {
        if !accounts.contains_key(&s.account) {
            violation(
                "sessions",
                format!("{}: session of a missing account", hex::encode(hash.0)),
                &mut report,
            );
        }
    }
    for (hash, i) in &export.invites {
        if !orgs.contains(&i.org) {
            violation(
                "invites",
                format!("{}: invite of a missing organisation", hex::encode(hash.0)),
                &mut report,
            );
        }
    }
    let documents: std::collections::HashMap<Id, &Document> =
        export.documents.iter().map(|d| (d.id, d)).collect();
    for d in &export.documents {
        if !accounts.contains_key(&d.owner) {
            violation(
                "documents",
                format!("{}: document of a missing account", d.id),
                &mut report,
            );
        }
        if d.stored > d.size || (d.committed && d.stored != d.size) {
            violation(
                "documents",
                format!("{}: stored length does not fit the declared size", d.id),
                &mut report,
            );
        }
        if d.committed {
            if !is_stream_length(d.size) {
                violation(
                    "documents",
                    format!("{}: {} bytes cannot be an age STREAM payload", d.id, d.size),
                    &mut report,
                );
            }
            report.committed_documents += 1;
            report.committed_payload_bytes += d.size;
        } else {
            report.uploads_in_progress += 1;
        }
        if !export
            .envelopes
            .iter()
            .any(|(doc, r, _)| *doc == d.id && *r == d.owner)
        {
            violation(
                "documents",
                format!("{}: no envelope for its owner", d.id),
                &mut report,
            );
        }
    }
    for (doc, recipient, e) in &export.envelopes {
        if let Err(v) = check_envelope(&e.envelope, &mut report) {
            violation("envelopes", format!("{doc}/{recipient}: {v}"), &mut report);
        }
        if !documents.contains_key(doc) {
            violation(
                "envelopes",
                format!("{doc}/{recipient}: envelope of a missing document"),
                &mut report,
            );
        }
        if !accounts.contains_key(recipient) {
            violation(
                "envelopes",
                format!("{doc}/{recipient}: envelope of a missing recipient"),
                &mut report,
            );
        }
    }
    for l in &export.links {
        if let Err(v) = check_envelope(&l.envelope, &mut report) {
            violation("links", format!("{}: {v}", l.id), &mut report);
        }
        if !documents.contains_key(&l.doc) {
            violation(
                "links",
                format!("{}: link of a missing document", l.id),
                &mut report,
            );
        }
    }
    for d in &export.recovery_deals {
        if !accounts.contains_key(&d.account) {
            violation(
                "recovery_deals",
                format!("{}: deal of a missing account", d.account),
                &mut report,
            );
        }
        if let Err(v) = check_deal_fields(d) {
            violation("recovery_deals", format!("{}: {v}", d.account), &mut report);
        }
    }
    for r in &export.recovery_requests {
        if let Err(v) = check_request_fields(r) {
            violation("recovery_requests", format!("{}: {v}", r.id), &mut report);
        }
    }
    stats(
        export.recovery_deals.len(),
        &mut report,
        "recovery_deals",
        0,
    );
    stats(
        export.recovery_requests.len(),
        &mut report,
        "recovery_requests",
        0,
    );
    stats(export.orgs.len(), &mut report, "orgs", 0);
    stats(export.accounts.len(), &mut report, "accounts", 0);
    stats(export.sessions.len(), &mut report, "sessions", 0);
    stats(export.invites.len(), &mut report, "invites", 0);
    stats(export.documents.len(), &mut report, "documents", 0);
    stats(export.envelopes.len(), &mut report, "envelopes", 0);
    stats(export.links.len(), &mut report, "links", 0);
    stats(export.login_budgets.len(), &mut report, "login_budgets", 0);
    stats(export.devices.len(), &mut report, "devices", 0);

    // Payloads: each belongs to a document and holds at least its acknowledged bytes.
    let held_ids = payloads.list().await?;
    for id in &held_ids {
        let held = payloads.held_bytes(*id).await?.unwrap_or(0);
        report.payload_files.count += 1;
        report.payload_files.value_bytes += held;
        match documents.get(id) {
            Some(d) if d.stored == held => {}
            Some(d) if !d.committed && held > d.stored => report.warnings.push(format!(
                "upload {id}: {} unacknowledged bytes past the stored length",
                held - d.stored
            )),
            Some(d) => violation(
                "payloads",
                format!(
                    "document {id}: payload holds {held} bytes, record says {}",
                    d.stored
                ),
                &mut report,
            ),
            None => report
                .warnings
                .push(format!("{held} bytes of payload of deleted document {id}")),
        }
        if !needles.is_empty() {
            if let Some(d) = documents.get(id) {
                if payload_contains(payloads, *id, d.stored, &needles).await? {
                    violation(
                        "payloads",
                        format!("{id}: OPAQUE server key material found in the store"),
                        &mut report,
                    );
                }
            }
        }
    }
    for d in &export.documents {
        if d.stored > 0 && !held_ids.contains(&d.id) {
            violation(
                "payloads",
                format!("document {}: {} bytes recorded, no payload", d.id, d.stored),
                &mut report,
            );
        }
    }
    Ok(report)
}

fn each_json<T: serde::Serialize>(values: &[T]) -> Vec<Vec<u8>> {
    values
        .iter()
        .filter_map(|v| serde_json::to_vec(v).ok())
        .collect()
}

/// Whether the first `len` bytes of a payload contain a needle, read piece by piece with
/// an overlap of the longest needle.
async fn payload_contains(
    payloads: &dyn Payloads,
    id: Id,
    len: u64,
    needles: &[Vec<u8>],
) -> Result<bool, StoreError> {
    use futures_util::TryStreamExt as _;
    if len == 0 {
        return Ok(false);
    }
    let overlap = needles.iter().map(Vec::len).max().unwrap_or(0);
    let mut stream = payloads.read(id, 0, len).await?;
    let mut tail: Vec<u8> = Vec::new();
    while let Some(piece) = stream.try_next().await? {
        let mut window = std::mem::take(&mut tail);
        window.extend_from_slice(&piece);
        if needles.iter().any(|n| find(&window, n)) {
            return Ok(true);
        }
        tail = window[window.len().saturating_sub(overlap)..].to_vec();
    }
    Ok(false)
}
