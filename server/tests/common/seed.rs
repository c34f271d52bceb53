//! An account and a live session written straight into a stopped store, so a test or the
//! bench gets a bearer token without a login (whose Argon2id would only add time). The
//! account's stored fields are well-formed, so `audit` passes on such a store. Used by
//! tests/binary.rs through `common` and by benches/load.rs by path.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use coffre_core::bundle::KeyBundle;
use coffre_core::opaque::{self, ClientRegistration, ExportKey, ServerSetup, KSF_V1};
use coffre_core::Identity;
use coffre_server::store::{Account, Id, Records, Role, Session};

/// A real OPAQUE registration record and its export key, made once per process (one
/// Argon2id run): stand-in accounts all share it, so that what they store fits the schema
/// `audit` checks, although nobody ever logs in with it.
pub fn stand_in_registration() -> &'static (Vec<u8>, ExportKey) {
    static REGISTRATION: OnceLock<(Vec<u8>, ExportKey)> = OnceLock::new();
    REGISTRATION.get_or_init(|| {
        let setup = ServerSetup::generate();
        let (client, request) = ClientRegistration::start(b"stand-in").unwrap();
        let response = opaque::server_registration_start(&setup, &request, b"stand-in").unwrap();
        let (upload, export_key) = client.finish(b"stand-in", &response, KSF_V1).unwrap();
        let record = opaque::server_registration_finish(&upload).unwrap();
        (record.as_bytes().to_vec(), export_key)
    })
}

/// A stand-in account (never logs in) whose stored fields are all well-formed: a real
/// OPAQUE record and the identity really sealed in its bundle.
pub fn stand_in_account(
    identity: &Identity,
    handle: &str,
    role: Role,
    org: Option<Id>,
    now: u64,
) -> Account {
    let (record, export_key) = stand_in_registration();
    let id = Id::generate().unwrap();
    let bundle = KeyBundle::seal_with_export_key(identity, export_key, &id.to_string()).unwrap();
    Account {
        id,
        handle: handle.into(),
        role,
        org,
        public_key: identity.to_recipient().to_string(),
        password_file: record.clone(),
        ksf_version: KSF_V1.version(),
        bundle: bundle.to_bytes(),
        recovery_bundle: None,
        recovery_verifier: None,
        created_by: None,
        consent_at: None,
        created_at: now,
        credential_epoch: 0,
        disabled_at: None,
    }
}

/// Writes a beneficiary `handle` (stand-in OPAQUE record and bundle: it never logs in) and
/// a session valid for `session_secs`; returns (identity, account id, token).
pub async fn seed_account(
    store: &dyn Records,
    handle: &str,
    session_secs: u64,
) -> (Identity, Id, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let identity = Identity::generate().unwrap();
    let account = stand_in_account(&identity, handle, Role::Beneficiary, None, now);
    store.create_account(&account).await.unwrap();
    let (token, hash) = coffre_server::auth::generate_token().unwrap();
    let session = Session {
        account: account.id,
        created_at: now,
        expires_at: now + session_secs,
        credential_epoch: 0,
        last_used_at: now,
        device: String::new(),
        shared: false,
    };
    store.put_session(&hash, &session).await.unwrap();
    (identity, account.id, token)
}
