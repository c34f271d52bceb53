//! An account and a live session written straight into a stopped store, so a test or the
//! bench gets a bearer token without a login (whose Argon2id would only add time). Used by
//! tests/binary.rs through `common` and by benches/load.rs by path.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use coffre_core::Identity;
use coffre_server::store::{Account, Id, Role, Session, SledStore, Store};

/// Writes a beneficiary `handle` (stand-in OPAQUE record and bundle: it never logs in) and
/// a session valid for `session_secs`; returns (identity, account id, token). The caller
/// flushes.
pub fn seed_account(store: &SledStore, handle: &str, session_secs: u64) -> (Identity, Id, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let identity = Identity::generate().unwrap();
    let account = Account {
        id: Id::generate().unwrap(),
        handle: handle.into(),
        role: Role::Beneficiary,
        org: None,
        public_key: identity.to_recipient().to_string(),
        password_file: vec![0; 192],
        ksf_version: 1,
        bundle: vec![0; 62],
        recovery_bundle: None,
        recovery_verifier: None,
        created_by: None,
        consent_at: None,
        created_at: now,
        failed_logins: 0,
        locked: false,
    };
    store.create_account(&account, None).unwrap();
    let (token, hash) = coffre_server::auth::generate_token().unwrap();
    let session = Session {
        account: account.id,
        created_at: now,
        expires_at: now + session_secs,
    };
    store.put_session(&hash, &session).unwrap();
    (identity, account.id, token)
}
