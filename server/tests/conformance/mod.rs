//! The store conformance suite: every operation of [`Records`] and [`Payloads`], every
//! atomicity rule under concurrent callers, expiry and typed errors, written once and run
//! against every backend. A backend's test file declares how to make a fresh, empty
//! store and calls `conformance_suite!(fresh)`, which expands to one `#[tokio::test]`
//! per case (on a multi-threaded runtime, so that concurrent callers really overlap).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use coffre_core::Identity;
use coffre_server::store::{
    sweep_payloads, Account, CredentialChange, Document, EnvelopeRecord, Id, Invite, Link,
    LinkOpen, Org, Payloads, PendingLogin, Records, Role, Session, StoreError, LINK_GRANT_SECONDS,
    PIECE_BYTES,
};
use futures_util::future::join_all;
use futures_util::TryStreamExt as _;

use crate::common::seed;

/// A fresh, empty store of one backend, and whatever keeps it alive (a temporary
/// directory, a database).
pub struct Backend {
    pub records: Arc<dyn Records>,
    pub payloads: Arc<dyn Payloads>,
    pub keep: Box<dyn Any + Send + Sync>,
}

/// One test per case, each on a fresh store from `$fresh().await`.
#[macro_export]
macro_rules! conformance_cases {
    ($fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = $fresh().await;
                conformance::$case(&backend).await;
            }
        )*
    };
}

/// One test per case that needs two fresh stores of the same backend.
#[macro_export]
macro_rules! conformance_pairs {
    ($fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (from, to) = ($fresh().await, $fresh().await);
                conformance::$case(&from, &to).await;
            }
        )*
    };
}

/// The whole suite against the backend that `$fresh().await` makes.
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:path) => {
        conformance_pairs!($fresh;
            export_then_import_gives_the_same_records,
        );
        conformance_cases!($fresh;
            export_is_one_snapshot_under_concurrent_writes,
            accounts_and_handles,
            invite_is_used_once_under_concurrent_registrations,
            expired_or_unknown_invites_register_nobody,
            login_attempts_count_exactly_and_lock,
            unknown_handles_count_and_lock_like_accounts,
            login_success_checks_epoch_and_lock,
            credential_swap_purges_other_sessions,
            pending_login_is_taken_once_and_expires,
            rate_windows_count_every_event_once,
            sessions_store_and_delete,
            organisations_and_invites,
            quota_holds_under_concurrent_creates,
            upload_advances_once_per_offset,
            commit_needs_every_byte_and_happens_once,
            upload_lease_has_one_holder_and_expires,
            shares_need_a_committed_document_and_a_recipient,
            share_racing_a_delete_leaves_no_dangling_envelope,
            link_openings_are_counted_exactly,
            delete_removes_every_record_of_a_document,
            sweep_removes_what_expired_and_keeps_the_rest,
            payload_pieces_round_trip_in_ranges,
            payload_append_replaces_unacknowledged_bytes,
            orphan_payloads_are_swept_and_referenced_ones_kept,
        );
    };
}

/// "Now" for every case (unix seconds).
pub const NOW: u64 = 1_900_000_000;

fn id() -> Id {
    Id::generate().unwrap()
}

/// A well-formed stand-in account (real OPAQUE record, real sealed bundle).
pub fn account(handle: &str, role: Role, org: Option<Id>) -> Account {
    let identity = Identity::generate().unwrap();
    seed::stand_in_account(&identity, handle, role, org, NOW)
}

async fn person(b: &Backend, handle: &str) -> Account {
    let a = account(handle, Role::Beneficiary, None);
    b.records.create_account(&a).await.unwrap();
    a
}

fn envelope_record(granted_by: Id, expires_at: Option<u64>) -> EnvelopeRecord {
    EnvelopeRecord {
        envelope: b"age-encryption.org/v1 stand-in".to_vec(),
        granted_by,
        created_at: NOW,
        expires_at,
    }
}

fn document(owner: Id, size: u64) -> Document {
    Document {
        id: id(),
        owner,
        metadata: b"sealed".to_vec(),
        size,
        stored: 0,
        committed: false,
        created_at: NOW,
        committed_at: None,
    }
}

/// A document of `size` bytes, created, every byte stored (payload too) and committed.
async fn committed(b: &Backend, owner: Id, size: u64) -> Document {
    let doc = document(owner, size);
    b.records
        .create_document(&doc, &envelope_record(owner, None), u64::MAX)
        .await
        .unwrap();
    b.payloads.begin(doc.id).await.unwrap();
    b.payloads
        .append(doc.id, 0, 0, vec![Bytes::from(vec![7u8; size as usize])])
        .await
        .unwrap();
    b.payloads.sync(doc.id).await.unwrap();
    b.records.advance_upload(doc.id, 0, size).await.unwrap();
    b.records.commit_document(doc.id, NOW).await.unwrap()
}

fn link(doc: Id, max_downloads: Option<u32>, expires_at: Option<u64>) -> Link {
    Link {
        id: id(),
        doc,
        envelope: b"age-encryption.org/v1 link".to_vec(),
        created_at: NOW,
        expires_at,
        max_downloads,
        downloads: 0,
        last_opened_at: None,
    }
}

fn session(account: Id, expires_at: u64, epoch: u64) -> Session {
    Session {
        account,
        created_at: NOW,
        expires_at,
        credential_epoch: epoch,
    }
}

fn hash(i: u8) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0] = i;
    h[31] = 0xa5;
    getrandom::getrandom(&mut h[1..31]).unwrap();
    h
}

/// Runs `n` copies of `f(i)` at once and returns their results in order.
async fn concurrently<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

pub async fn accounts_and_handles(b: &Backend) {
    let a = account("amina", Role::Beneficiary, None);
    assert!(b.records.account(a.id).await.unwrap().is_none());
    b.records.create_account(&a).await.unwrap();
    let got = b.records.account(a.id).await.unwrap().unwrap();
    assert_eq!(got.handle, "amina");
    assert_eq!(got.public_key, a.public_key);
    assert_eq!(got.password_file, a.password_file);
    assert_eq!(got.bundle, a.bundle);
    assert_eq!(
        b.records
            .account_by_handle("amina")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(b
        .records
        .account_by_handle("nobody")
        .await
        .unwrap()
        .is_none());

    // Another account with the same handle, or the same id.
    let same_handle = account("amina", Role::Worker, None);
    assert!(matches!(
        b.records.create_account(&same_handle).await,
        Err(StoreError::HandleTaken)
    ));
    let mut same_id = account("other", Role::Beneficiary, None);
    same_id.id = a.id;
    assert!(matches!(
        b.records.create_account(&same_id).await,
        Err(StoreError::IdTaken)
    ));
    assert!(b
        .records
        .account_by_handle("other")
        .await
        .unwrap()
        .is_none());

    // Concurrent registrations of one handle: exactly one account.
    let records = Arc::clone(&b.records);
    let results = concurrently(12, move |_| {
        let records = Arc::clone(&records);
        async move {
            records
                .create_account(&account("contested", Role::Beneficiary, None))
                .await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::HandleTaken)));
}

async fn org_with_invite(b: &Backend, expires_at: u64) -> (Org, [u8; 32]) {
    let org = Org {
        id: id(),
        name: "Relais".into(),
        created_at: NOW,
    };
    b.records.put_org(&org).await.unwrap();
    let code = hash(1);
    b.records
        .put_invite(
            &code,
            &Invite {
                org: org.id,
                created_at: NOW,
                expires_at,
            },
        )
        .await
        .unwrap();
    (org, code)
}

pub async fn invite_is_used_once_under_concurrent_registrations(b: &Backend) {
    let (org, code) = org_with_invite(b, NOW + 3600).await;
    let records = Arc::clone(&b.records);
    let results = concurrently(16, move |i| {
        let records = Arc::clone(&records);
        async move {
            let worker = account(&format!("worker{i}"), Role::Worker, None);
            records
                .create_account_with_invite(&worker, &code, NOW)
                .await
        }
    })
    .await;
    let winners: Vec<&Account> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "one invite, one account");
    assert_eq!(
        winners[0].org,
        Some(org.id),
        "the invite gives the organisation"
    );
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(e, StoreError::InviteInvalid), "{e:?}");
    }
    assert!(b.records.invite(&code).await.unwrap().is_none(), "consumed");
    // The losers' accounts do not exist.
    let mut accounts = 0;
    for i in 0..16 {
        accounts += usize::from(
            b.records
                .account_by_handle(&format!("worker{i}"))
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert_eq!(accounts, 1);
}

pub async fn expired_or_unknown_invites_register_nobody(b: &Backend) {
    let (_, code) = org_with_invite(b, NOW).await;
    let worker = account("late", Role::Worker, None);
    assert!(matches!(
        b.records
            .create_account_with_invite(&worker, &code, NOW)
            .await,
        Err(StoreError::InviteInvalid)
    ));
    assert!(matches!(
        b.records
            .create_account_with_invite(&worker, &hash(9), NOW)
            .await,
        Err(StoreError::InviteInvalid)
    ));
    assert!(b.records.account(worker.id).await.unwrap().is_none());
    // A taken handle does not consume the invite.
    let (_, fresh) = org_with_invite(b, NOW + 60).await;
    person(b, "taken").await;
    let clash = account("taken", Role::Worker, None);
    assert!(matches!(
        b.records
            .create_account_with_invite(&clash, &fresh, NOW)
            .await,
        Err(StoreError::HandleTaken)
    ));
    assert!(b.records.invite(&fresh).await.unwrap().is_some());
}

pub async fn login_attempts_count_exactly_and_lock(b: &Backend) {
    let a = person(b, "amina").await;
    let records = Arc::clone(&b.records);
    let results = concurrently(40, move |_| {
        let records = Arc::clone(&records);
        async move { records.count_login_attempt(a.id, 10).await }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::AccountLocked)));
    let after = b.records.account(a.id).await.unwrap().unwrap();
    assert!(after.locked);
    assert_eq!(after.failed_logins, 10);
    // Locked stays locked; an unlock clears it and the count.
    assert!(matches!(
        b.records.count_login_attempt(a.id, 10).await,
        Err(StoreError::AccountLocked)
    ));
    let unlocked = b.records.unlock_account(a.id).await.unwrap();
    assert!(!unlocked.locked);
    assert_eq!(unlocked.failed_logins, 0);
    let counted = b.records.count_login_attempt(a.id, 10).await.unwrap();
    assert_eq!(counted.failed_logins, 1);
    assert!(matches!(
        b.records.count_login_attempt(id(), 10).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn unknown_handles_count_and_lock_like_accounts(b: &Backend) {
    let key = hash(2);
    let records = Arc::clone(&b.records);
    let results = concurrently(20, move |_| {
        let records = Arc::clone(&records);
        async move { records.count_unknown_attempt(&key, NOW, 5).await }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::AccountLocked)));
    // Still locked later; another handle is counted apart.
    assert!(matches!(
        b.records.count_unknown_attempt(&key, NOW + 86_400, 5).await,
        Err(StoreError::AccountLocked)
    ));
    b.records
        .count_unknown_attempt(&hash(3), NOW, 5)
        .await
        .unwrap();
}

pub async fn login_success_checks_epoch_and_lock(b: &Backend) {
    let a = person(b, "amina").await;
    for _ in 0..3 {
        b.records.count_login_attempt(a.id, 10).await.unwrap();
    }
    let ok = b.records.login_succeeded(a.id, 0).await.unwrap();
    assert_eq!(ok.failed_logins, 0);
    // A login started before a passphrase change proves the old passphrase.
    let change = CredentialChange {
        password_file: a.password_file.clone(),
        bundle: a.bundle.clone(),
        ksf_version: a.ksf_version,
        unlock: false,
    };
    b.records
        .replace_credentials(a.id, &change, None)
        .await
        .unwrap();
    assert!(matches!(
        b.records.login_succeeded(a.id, 0).await,
        Err(StoreError::CredentialsChanged)
    ));
    b.records.login_succeeded(a.id, 1).await.unwrap();
    // Locked meanwhile: no success.
    while b.records.count_login_attempt(a.id, 2).await.is_ok() {}
    assert!(matches!(
        b.records.login_succeeded(a.id, 1).await,
        Err(StoreError::AccountLocked)
    ));
}

pub async fn credential_swap_purges_other_sessions(b: &Backend) {
    let a = person(b, "amina").await;
    let other = person(b, "other").await;
    let (mine, old1, old2, theirs) = (hash(10), hash(11), hash(12), hash(13));
    for h in [&mine, &old1, &old2] {
        b.records
            .put_session(h, &session(a.id, NOW + 3600, 0))
            .await
            .unwrap();
    }
    b.records
        .put_session(&theirs, &session(other.id, NOW + 3600, 0))
        .await
        .unwrap();
    while b.records.count_login_attempt(a.id, 3).await.is_ok() {}
    let change = CredentialChange {
        password_file: b"new record".to_vec(),
        bundle: b"new bundle".to_vec(),
        ksf_version: 7,
        unlock: true,
    };
    let after = b
        .records
        .replace_credentials(a.id, &change, Some(&mine))
        .await
        .unwrap();
    assert_eq!(after.credential_epoch, 1);
    assert_eq!(after.password_file, b"new record");
    assert_eq!(after.bundle, b"new bundle");
    assert_eq!(after.ksf_version, 7);
    assert!(!after.locked);
    assert_eq!(after.failed_logins, 0);
    assert_eq!(
        b.records.account(a.id).await.unwrap().unwrap().bundle,
        b"new bundle"
    );
    let kept = b.records.session(&mine).await.unwrap().unwrap();
    assert_eq!(
        kept.credential_epoch, 1,
        "the kept session moves to the new epoch"
    );
    assert!(b.records.session(&old1).await.unwrap().is_none());
    assert!(b.records.session(&old2).await.unwrap().is_none());
    assert!(b.records.session(&theirs).await.unwrap().is_some());
    // Without unlock the lock stays.
    while b.records.count_login_attempt(a.id, 3).await.is_ok() {}
    let relocked = b
        .records
        .replace_credentials(
            a.id,
            &CredentialChange {
                unlock: false,
                ..change
            },
            None,
        )
        .await
        .unwrap();
    assert!(relocked.locked);
    assert_eq!(relocked.credential_epoch, 2);
    assert!(b.records.session(&mine).await.unwrap().is_none());
    assert!(matches!(
        b.records
            .replace_credentials(id(), &relocked_change(), None)
            .await,
        Err(StoreError::NotFound)
    ));
}

fn relocked_change() -> CredentialChange {
    CredentialChange {
        password_file: vec![1],
        bundle: vec![2],
        ksf_version: 1,
        unlock: false,
    }
}

pub async fn pending_login_is_taken_once_and_expires(b: &Backend) {
    let a = person(b, "amina").await;
    let login = PendingLogin {
        sealed_state: b"sealed state".to_vec(),
        account: Some((a.id, 3)),
        expires_at: NOW + 120,
    };
    let lid = id();
    b.records.put_pending_login(lid, &login, NOW).await.unwrap();
    let records = Arc::clone(&b.records);
    let takes = concurrently(10, move |_| {
        let records = Arc::clone(&records);
        async move { records.take_pending_login(lid, NOW + 1).await.unwrap() }
    })
    .await;
    let taken: Vec<&PendingLogin> = takes.iter().flatten().collect();
    assert_eq!(taken.len(), 1, "one finish per login");
    assert_eq!(taken[0].sealed_state, b"sealed state");
    assert_eq!(taken[0].account, Some((a.id, 3)));
    // Expired: nothing, and gone.
    let late = id();
    b.records
        .put_pending_login(late, &login, NOW)
        .await
        .unwrap();
    assert!(b
        .records
        .take_pending_login(late, NOW + 120)
        .await
        .unwrap()
        .is_none());
    assert!(b
        .records
        .take_pending_login(late, NOW)
        .await
        .unwrap()
        .is_none());
    // An unknown handle's login has no account.
    let fake = id();
    let unknown = PendingLogin {
        account: None,
        ..login
    };
    b.records
        .put_pending_login(fake, &unknown, NOW)
        .await
        .unwrap();
    let got = b
        .records
        .take_pending_login(fake, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.account, None);
}

pub async fn rate_windows_count_every_event_once(b: &Backend) {
    let records = Arc::clone(&b.records);
    let mut counts = concurrently(30, move |_| {
        let records = Arc::clone(&records);
        async move { records.count_rate("ip:127.0.0.9", NOW, 60).await.unwrap() }
    })
    .await;
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=30).collect::<Vec<u32>>(),
        "each event counted once"
    );
    // Another key, and the next window, start again.
    assert_eq!(
        b.records.count_rate("ip:127.0.0.8", NOW, 60).await.unwrap(),
        1
    );
    let next = NOW - NOW % 60 + 60;
    assert_eq!(
        b.records
            .count_rate("ip:127.0.0.9", next, 60)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.records
            .count_rate("ip:127.0.0.9", next + 59, 60)
            .await
            .unwrap(),
        2
    );
}

pub async fn sessions_store_and_delete(b: &Backend) {
    let a = person(b, "amina").await;
    let h = hash(20);
    assert!(b.records.session(&h).await.unwrap().is_none());
    b.records
        .put_session(&h, &session(a.id, NOW + 10, 4))
        .await
        .unwrap();
    let got = b.records.session(&h).await.unwrap().unwrap();
    assert_eq!(
        (got.account, got.expires_at, got.credential_epoch),
        (a.id, NOW + 10, 4)
    );
    b.records.delete_session(&h).await.unwrap();
    assert!(b.records.session(&h).await.unwrap().is_none());
    // Deleting what is not there is fine.
    b.records.delete_session(&h).await.unwrap();
}

pub async fn organisations_and_invites(b: &Backend) {
    let (org, code) = org_with_invite(b, NOW + 10).await;
    assert_eq!(b.records.org(org.id).await.unwrap().unwrap().name, "Relais");
    assert!(b.records.org(id()).await.unwrap().is_none());
    let invite = b.records.invite(&code).await.unwrap().unwrap();
    assert_eq!((invite.org, invite.expires_at), (org.id, NOW + 10));
    assert!(b.records.invite(&hash(4)).await.unwrap().is_none());
}

pub async fn quota_holds_under_concurrent_creates(b: &Backend) {
    let a = person(b, "amina").await;
    let records = Arc::clone(&b.records);
    let results = concurrently(20, move |_| {
        let records = Arc::clone(&records);
        async move {
            let doc = document(a.id, 1000);
            records
                .create_document(&doc, &envelope_record(a.id, None), 5000)
                .await
        }
    })
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        5,
        "{results:?}"
    );
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::QuotaExceeded)));
    let docs = b.records.documents_of(a.id).await.unwrap();
    assert_eq!(docs.len(), 5);
    for d in &docs {
        // The owner's envelope came with it.
        assert!(b.records.envelope(d.id, a.id).await.unwrap().is_some());
    }
    // Another owner has their own quota; a reused id is refused.
    let other = person(b, "other").await;
    let doc = document(other.id, 5000);
    b.records
        .create_document(&doc, &envelope_record(other.id, None), 5000)
        .await
        .unwrap();
    assert!(matches!(
        b.records
            .create_document(&doc, &envelope_record(other.id, None), u64::MAX)
            .await,
        Err(StoreError::IdTaken)
    ));
}

pub async fn upload_advances_once_per_offset(b: &Backend) {
    let a = person(b, "amina").await;
    let doc = document(a.id, 100);
    b.records
        .create_document(&doc, &envelope_record(a.id, None), u64::MAX)
        .await
        .unwrap();
    let records = Arc::clone(&b.records);
    let results = concurrently(8, move |i| {
        let records = Arc::clone(&records);
        async move { records.advance_upload(doc.id, 0, 10 + i as u64).await }
    })
    .await;
    let won: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(won.len(), 1, "one advance from offset 0");
    let stored = b.records.document(doc.id).await.unwrap().unwrap().stored;
    assert_eq!(stored, won[0]);
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(e, StoreError::OffsetMismatch { stored: s } if *s == stored),
            "{e:?}"
        );
    }
    assert!(matches!(
        b.records.advance_upload(doc.id, stored, 101).await,
        Err(StoreError::BeyondDeclaredSize { size: 100 })
    ));
    assert!(matches!(
        b.records.advance_upload(doc.id, stored, stored - 1).await,
        Err(StoreError::OffsetMismatch { .. })
    ));
    assert_eq!(
        b.records.advance_upload(doc.id, stored, 100).await.unwrap(),
        100
    );
    assert!(matches!(
        b.records.advance_upload(id(), 0, 1).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn commit_needs_every_byte_and_happens_once(b: &Backend) {
    let a = person(b, "amina").await;
    let doc = document(a.id, 50);
    b.records
        .create_document(&doc, &envelope_record(a.id, None), u64::MAX)
        .await
        .unwrap();
    b.records.advance_upload(doc.id, 0, 20).await.unwrap();
    assert!(matches!(
        b.records.commit_document(doc.id, NOW).await,
        Err(StoreError::Incomplete {
            stored: 20,
            size: 50
        })
    ));
    assert!(!b.records.document(doc.id).await.unwrap().unwrap().committed);
    b.records.advance_upload(doc.id, 20, 50).await.unwrap();
    let records = Arc::clone(&b.records);
    let results = concurrently(6, move |_| {
        let records = Arc::clone(&records);
        async move { records.commit_document(doc.id, NOW + 5).await }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::AlreadyCommitted)));
    let got = b.records.document(doc.id).await.unwrap().unwrap();
    assert!(got.committed);
    assert_eq!(got.committed_at, Some(NOW + 5));
    assert!(matches!(
        b.records.advance_upload(doc.id, 50, 50).await,
        Err(StoreError::AlreadyCommitted)
    ));
    assert!(matches!(
        b.records.commit_document(id(), NOW).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn upload_lease_has_one_holder_and_expires(b: &Backend) {
    let a = person(b, "amina").await;
    let doc = document(a.id, 50);
    b.records
        .create_document(&doc, &envelope_record(a.id, None), u64::MAX)
        .await
        .unwrap();
    let holders: Vec<Id> = (0..10).map(|_| id()).collect();
    let records = Arc::clone(&b.records);
    let hs = holders.clone();
    let results = concurrently(10, move |i| {
        let records = Arc::clone(&records);
        let holder = hs[i];
        async move {
            records
                .acquire_upload(doc.id, holder, NOW, 15)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| **r).count(), 1, "one holder");
    let winner = holders[results.iter().position(|r| *r).unwrap()];
    let loser = holders[results.iter().position(|r| !*r).unwrap()];
    // The holder renews; others wait until it expires.
    assert!(b
        .records
        .acquire_upload(doc.id, winner, NOW + 10, 15)
        .await
        .unwrap());
    assert!(!b
        .records
        .acquire_upload(doc.id, loser, NOW + 24, 15)
        .await
        .unwrap());
    assert!(b
        .records
        .acquire_upload(doc.id, loser, NOW + 25, 15)
        .await
        .unwrap());
    // The old holder's release does not free the new holder's lease.
    b.records.release_upload(doc.id, winner).await.unwrap();
    assert!(!b
        .records
        .acquire_upload(doc.id, winner, NOW + 26, 15)
        .await
        .unwrap());
    b.records.release_upload(doc.id, loser).await.unwrap();
    assert!(b
        .records
        .acquire_upload(doc.id, winner, NOW + 26, 15)
        .await
        .unwrap());
}

pub async fn shares_need_a_committed_document_and_a_recipient(b: &Backend) {
    let a = person(b, "amina").await;
    let w = person(b, "worker").await;
    let pending = document(a.id, 50);
    b.records
        .create_document(&pending, &envelope_record(a.id, None), u64::MAX)
        .await
        .unwrap();
    assert!(matches!(
        b.records
            .put_envelope(pending.id, w.id, &envelope_record(a.id, None))
            .await,
        Err(StoreError::NotCommitted)
    ));
    assert!(matches!(
        b.records.put_link(&link(pending.id, None, None)).await,
        Err(StoreError::NotCommitted)
    ));
    let doc = committed(b, a.id, 50).await;
    assert!(matches!(
        b.records
            .put_envelope(doc.id, id(), &envelope_record(a.id, None))
            .await,
        Err(StoreError::RecipientNotFound)
    ));
    assert!(matches!(
        b.records
            .put_envelope(id(), w.id, &envelope_record(a.id, None))
            .await,
        Err(StoreError::NotFound)
    ));
    b.records
        .put_envelope(doc.id, w.id, &envelope_record(a.id, Some(NOW + 60)))
        .await
        .unwrap();
    assert_eq!(b.records.shared_with(w.id).await.unwrap(), vec![doc.id]);
    assert!(
        b.records.shared_with(a.id).await.unwrap().is_empty(),
        "own documents excluded"
    );
    let got = b.records.envelope(doc.id, w.id).await.unwrap().unwrap();
    assert_eq!(got.expires_at, Some(NOW + 60));
    // Replacing keeps one share.
    b.records
        .put_envelope(doc.id, w.id, &envelope_record(a.id, None))
        .await
        .unwrap();
    let all = b.records.envelopes_of(doc.id).await.unwrap();
    assert_eq!(all.len(), 2, "owner + worker");
    assert_eq!(
        b.records
            .envelope(doc.id, w.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        None
    );
    assert!(b.records.delete_envelope(doc.id, w.id).await.unwrap());
    assert!(!b.records.delete_envelope(doc.id, w.id).await.unwrap());
    assert!(b.records.shared_with(w.id).await.unwrap().is_empty());
}

pub async fn share_racing_a_delete_leaves_no_dangling_envelope(b: &Backend) {
    let a = person(b, "amina").await;
    let w = person(b, "worker").await;
    for _ in 0..10 {
        let doc = committed(b, a.id, 20).await;
        let (r1, r2) = (Arc::clone(&b.records), Arc::clone(&b.records));
        let share = tokio::spawn(async move {
            r1.put_envelope(doc.id, w.id, &envelope_record(a.id, None))
                .await
        });
        let delete = tokio::spawn(async move { r2.delete_document(doc.id).await });
        let (shared, deleted) = (share.await.unwrap(), delete.await.unwrap());
        deleted.unwrap();
        assert!(b.records.document(doc.id).await.unwrap().is_none());
        // Whichever came first, nothing refers to the deleted document.
        assert!(
            b.records.envelope(doc.id, w.id).await.unwrap().is_none(),
            "share outlived the delete ({shared:?})"
        );
        assert!(!b.records.shared_with(w.id).await.unwrap().contains(&doc.id));
    }
}

pub async fn link_openings_are_counted_exactly(b: &Backend) {
    let a = person(b, "amina").await;
    let doc = committed(b, a.id, 20).await;
    let l = link(doc.id, Some(7), Some(NOW + 100));
    b.records.put_link(&l).await.unwrap();
    let records = Arc::clone(&b.records);
    let results = concurrently(30, move |_| {
        let records = Arc::clone(&records);
        async move { records.open_link(l.id, NOW).await.unwrap() }
    })
    .await;
    let opened = results
        .iter()
        .filter(|r| matches!(r, Some(LinkOpen::Opened(_))))
        .count();
    let exhausted = results
        .iter()
        .filter(|r| matches!(r, Some(LinkOpen::Exhausted)))
        .count();
    assert_eq!((opened, exhausted), (7, 23));
    let stored = b.records.link(l.id).await.unwrap().unwrap();
    assert_eq!(stored.downloads, 7);
    assert_eq!(stored.last_opened_at, Some(NOW));
    // An expired link opens no more; an unknown one is not there.
    let unlimited = link(doc.id, None, Some(NOW + 100));
    b.records.put_link(&unlimited).await.unwrap();
    assert!(matches!(
        b.records.open_link(unlimited.id, NOW + 99).await.unwrap(),
        Some(LinkOpen::Opened(_))
    ));
    assert!(matches!(
        b.records.open_link(unlimited.id, NOW + 100).await.unwrap(),
        Some(LinkOpen::Exhausted)
    ));
    assert!(b.records.open_link(id(), NOW).await.unwrap().is_none());
    assert_eq!(b.records.links_of(doc.id).await.unwrap().len(), 2);
    assert!(b.records.delete_link(unlimited.id).await.unwrap());
    assert!(!b.records.delete_link(unlimited.id).await.unwrap());
    assert_eq!(b.records.links_of(doc.id).await.unwrap().len(), 1);
    assert!(matches!(
        b.records.put_link(&link(id(), None, None)).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn delete_removes_every_record_of_a_document(b: &Backend) {
    let a = person(b, "amina").await;
    let w = person(b, "worker").await;
    let doc = committed(b, a.id, 20).await;
    let keep = committed(b, a.id, 20).await;
    b.records
        .put_envelope(doc.id, w.id, &envelope_record(a.id, None))
        .await
        .unwrap();
    b.records
        .put_envelope(keep.id, w.id, &envelope_record(a.id, None))
        .await
        .unwrap();
    let l = link(doc.id, None, None);
    b.records.put_link(&l).await.unwrap();
    b.records
        .acquire_upload(doc.id, id(), NOW, 15)
        .await
        .unwrap();
    let gone = b.records.delete_document(doc.id).await.unwrap();
    assert_eq!((gone.id, gone.owner, gone.size), (doc.id, a.id, 20));
    assert!(b.records.document(doc.id).await.unwrap().is_none());
    assert!(b.records.envelopes_of(doc.id).await.unwrap().is_empty());
    assert!(b.records.link(l.id).await.unwrap().is_none());
    assert!(b.records.links_of(doc.id).await.unwrap().is_empty());
    assert_eq!(b.records.shared_with(w.id).await.unwrap(), vec![keep.id]);
    let left: Vec<Id> = b
        .records
        .documents_of(a.id)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(left, vec![keep.id]);
    // Its lease went with it, and no new one can be taken.
    assert!(matches!(
        b.records.acquire_upload(doc.id, id(), NOW, 15).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        b.records.delete_document(doc.id).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn sweep_removes_what_expired_and_keeps_the_rest(b: &Backend) {
    let a = person(b, "amina").await;
    let w = person(b, "worker").await;
    let (dead_s, live_s) = (hash(30), hash(31));
    b.records
        .put_session(&dead_s, &session(a.id, NOW + 10, 0))
        .await
        .unwrap();
    b.records
        .put_session(&live_s, &session(a.id, NOW + 10 * 3600, 0))
        .await
        .unwrap();
    let (_, dead_invite) = org_with_invite(b, NOW + 10).await;
    let doc = committed(b, a.id, 20).await;
    b.records
        .put_envelope(doc.id, w.id, &envelope_record(a.id, Some(NOW + 10)))
        .await
        .unwrap();
    let expired_link = link(doc.id, None, Some(NOW + 10));
    let used_up = link(doc.id, Some(1), None);
    let open = link(doc.id, Some(5), None);
    for l in [&expired_link, &used_up, &open] {
        b.records.put_link(l).await.unwrap();
    }
    b.records.open_link(used_up.id, NOW).await.unwrap();
    let login = PendingLogin {
        sealed_state: vec![1],
        account: None,
        expires_at: NOW + 10,
    };
    let lid = id();
    b.records.put_pending_login(lid, &login, NOW).await.unwrap();
    let leased = committed(b, a.id, 20).await;
    b.records
        .acquire_upload(leased.id, id(), NOW, 10)
        .await
        .unwrap();
    let mut stale = document(a.id, 20);
    stale.created_at = NOW - 100;
    b.records
        .create_document(&stale, &envelope_record(a.id, None), u64::MAX)
        .await
        .unwrap();
    let mut fresh_upload = document(a.id, 20);
    fresh_upload.created_at = NOW;
    b.records
        .create_document(&fresh_upload, &envelope_record(a.id, None), u64::MAX)
        .await
        .unwrap();

    // Nothing is due at NOW.
    let nothing = b.records.sweep(NOW, NOW - 1000).await.unwrap();
    assert_eq!(
        nothing.sessions + nothing.links + nothing.envelopes,
        0,
        "{nothing:?}"
    );
    assert_eq!(nothing.stale_uploads, 0);

    let later = NOW + LINK_GRANT_SECONDS + 1;
    let sweep = b.records.sweep(later, NOW - 50).await.unwrap();
    assert_eq!(sweep.sessions, 1, "{sweep:?}");
    assert_eq!(sweep.invites, 1, "{sweep:?}");
    assert_eq!(sweep.envelopes, 1, "{sweep:?}");
    assert_eq!(sweep.links, 2, "{sweep:?}");
    assert_eq!(sweep.pending_logins, 1, "{sweep:?}");
    assert_eq!(sweep.upload_leases, 1, "{sweep:?}");
    assert_eq!(sweep.stale_uploads, 1, "{sweep:?}");
    assert!(b.records.session(&dead_s).await.unwrap().is_none());
    assert!(b.records.session(&live_s).await.unwrap().is_some());
    assert!(b.records.invite(&dead_invite).await.unwrap().is_none());
    assert!(b.records.envelope(doc.id, w.id).await.unwrap().is_none());
    assert!(b.records.link(expired_link.id).await.unwrap().is_none());
    assert!(b.records.link(used_up.id).await.unwrap().is_none());
    assert!(b.records.link(open.id).await.unwrap().is_some());
    assert!(b.records.document(stale.id).await.unwrap().is_none());
    assert!(b.records.document(fresh_upload.id).await.unwrap().is_some());
    assert!(b.records.document(doc.id).await.unwrap().is_some());
    // The swept lease is free for another holder.
    assert!(b
        .records
        .acquire_upload(leased.id, id(), later, 10)
        .await
        .unwrap());
}

async fn read_all(b: &Backend, doc: Id, start: u64, end: u64) -> Vec<u8> {
    let pieces: Vec<Bytes> = b
        .payloads
        .read(doc, start, end)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        pieces.iter().all(|p| p.len() <= PIECE_BYTES),
        "pieces are bounded"
    );
    pieces.concat()
}

pub async fn payload_pieces_round_trip_in_ranges(b: &Backend) {
    let doc = id();
    b.payloads.begin(doc).await.unwrap();
    let bytes: Vec<u8> = (0..(2 * PIECE_BYTES + 777))
        .map(|i| (i % 251) as u8)
        .collect();
    // Three pieces, the first given as several parts.
    let (p1, rest) = bytes.split_at(PIECE_BYTES);
    let (p2, p3) = rest.split_at(PIECE_BYTES);
    let parts = vec![
        Bytes::copy_from_slice(&p1[..10]),
        Bytes::copy_from_slice(&p1[10..5000]),
        Bytes::copy_from_slice(&p1[5000..]),
    ];
    b.payloads.append(doc, 0, 0, parts).await.unwrap();
    b.payloads
        .append(doc, 0, PIECE_BYTES as u64, vec![Bytes::copy_from_slice(p2)])
        .await
        .unwrap();
    b.payloads.sync(doc).await.unwrap();
    b.payloads
        .append(
            doc,
            2 * PIECE_BYTES as u64,
            2 * PIECE_BYTES as u64,
            vec![Bytes::copy_from_slice(p3)],
        )
        .await
        .unwrap();
    b.payloads.sync(doc).await.unwrap();
    let len = bytes.len() as u64;
    assert!(read_all(b, doc, 0, len).await == bytes);
    for (start, end) in [
        (0, 1),
        (5, 6000),
        (PIECE_BYTES as u64 - 3, PIECE_BYTES as u64 + 3),
        (PIECE_BYTES as u64, 2 * PIECE_BYTES as u64),
        (len - 1, len),
        (100, len),
    ] {
        assert!(
            read_all(b, doc, start, end).await == bytes[start as usize..end as usize],
            "range {start}..{end}"
        );
    }
    assert!(read_all(b, doc, 10, 10).await.is_empty());
    // A piece over the bound is refused.
    assert!(matches!(
        b.payloads
            .append(doc, len, len, vec![Bytes::from(vec![0; PIECE_BYTES + 1])])
            .await,
        Err(StoreError::PieceTooLarge)
    ));
    assert!(b.payloads.list().await.unwrap().contains(&doc));
    b.payloads.delete(doc).await.unwrap();
    assert!(!b.payloads.list().await.unwrap().contains(&doc));
    b.payloads.delete(doc).await.unwrap();
}

pub async fn payload_append_replaces_unacknowledged_bytes(b: &Backend) {
    let doc = id();
    b.payloads.begin(doc).await.unwrap();
    let good = vec![1u8; 1000];
    b.payloads
        .append(doc, 0, 0, vec![Bytes::from(good.clone())])
        .await
        .unwrap();
    b.payloads.sync(doc).await.unwrap();
    // Acknowledged: 1000. A cut upload then wrote 3000 more that were never counted.
    b.payloads
        .append(doc, 1000, 1000, vec![Bytes::from(vec![0xee; 3000])])
        .await
        .unwrap();
    // The resumed upload starts again at the acknowledged length.
    b.payloads
        .append(doc, 1000, 1000, vec![Bytes::from(vec![2u8; 500])])
        .await
        .unwrap();
    b.payloads.sync(doc).await.unwrap();
    let got = read_all(b, doc, 0, 1500).await;
    assert!(got[..1000] == good[..]);
    assert!(
        got[1000..].iter().all(|&x| x == 2),
        "the stale tail is gone"
    );
    // Before the acknowledged length: refused.
    assert!(matches!(
        b.payloads
            .append(doc, 1000, 10, vec![Bytes::from(vec![3u8; 5])])
            .await,
        Err(StoreError::OffsetMismatch { stored: 1000 })
    ));
}

pub async fn orphan_payloads_are_swept_and_referenced_ones_kept(b: &Backend) {
    let a = person(b, "amina").await;
    let doc = committed(b, a.id, 20).await;
    let orphan = id();
    b.payloads.begin(orphan).await.unwrap();
    b.payloads
        .append(orphan, 0, 0, vec![Bytes::from_static(b"left over")])
        .await
        .unwrap();
    let removed = sweep_payloads(b.records.as_ref(), b.payloads.as_ref())
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let held = b.payloads.list().await.unwrap();
    assert!(held.contains(&doc.id));
    assert!(!held.contains(&orphan));
    assert!(read_all(b, doc.id, 0, 20).await == vec![7u8; 20]);
}

/// A store holding one record of every exported kind.
async fn populate(b: &Backend) {
    let (org, _) = org_with_invite(b, NOW + 3600).await;
    let w = account("worker", Role::Worker, Some(org.id));
    b.records.create_account(&w).await.unwrap();
    let a = person(b, "amina").await;
    b.records
        .put_session(&hash(40), &session(a.id, NOW + 3600, 0))
        .await
        .unwrap();
    let doc = committed(b, a.id, 20).await;
    let uploading = document(a.id, 30);
    b.records
        .create_document(&uploading, &envelope_record(a.id, None), u64::MAX)
        .await
        .unwrap();
    b.records
        .put_envelope(doc.id, w.id, &envelope_record(a.id, Some(NOW + 99)))
        .await
        .unwrap();
    let l = link(doc.id, Some(3), None);
    b.records.put_link(&l).await.unwrap();
    b.records.open_link(l.id, NOW).await.unwrap();
    b.records
        .count_unknown_attempt(&hash(41), NOW, 5)
        .await
        .unwrap();
    b.records.count_login_attempt(a.id, 10).await.unwrap();
}

pub async fn export_then_import_gives_the_same_records(from: &Backend, to: &Backend) {
    populate(from).await;
    let export = from.records.export().await.unwrap();
    assert_eq!(export.orgs.len(), 1);
    assert_eq!(export.accounts.len(), 2);
    assert_eq!(export.sessions.len(), 1);
    assert_eq!(export.invites.len(), 1);
    assert_eq!(export.documents.len(), 2);
    assert_eq!(export.envelopes.len(), 3, "two owners' and one share");
    assert_eq!(export.links.len(), 1);
    assert_eq!(export.unknown_attempts.len(), 1);
    to.records.import(&export).await.unwrap();
    let again = to.records.export().await.unwrap();
    assert_eq!(
        serde_json::to_value(&export).unwrap(),
        serde_json::to_value(&again).unwrap(),
        "an import gives back exactly what was exported"
    );
    // The imported store works: handles, shares, links, counters.
    let a = to
        .records
        .account_by_handle("amina")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.failed_logins, 1);
    let w = to
        .records
        .account_by_handle("worker")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(to.records.shared_with(w.id).await.unwrap().len(), 1);
    let l = &export.links[0];
    assert!(matches!(
        to.records.open_link(l.id, NOW).await.unwrap(),
        Some(LinkOpen::Opened(opened)) if opened.downloads == 2
    ));
    assert!(matches!(
        to.records
            .create_account(&account("amina", Role::Beneficiary, None))
            .await,
        Err(StoreError::HandleTaken)
    ));
    // Into a store that holds records: refused, nothing written.
    assert!(matches!(
        to.records.import(&export).await,
        Err(StoreError::NotEmpty)
    ));
}

pub async fn export_is_one_snapshot_under_concurrent_writes(b: &Backend) {
    let a = person(b, "amina").await;
    let records = Arc::clone(&b.records);
    let writer = tokio::spawn(async move {
        for _ in 0..60 {
            let doc = document(a.id, 10);
            records
                .create_document(&doc, &envelope_record(a.id, None), u64::MAX)
                .await
                .unwrap();
        }
    });
    let mut seen = 0;
    while !writer.is_finished() || seen == 0 {
        let export = b.records.export().await.unwrap();
        // A document and its owner's envelope are created in one step: a snapshot has both
        // or neither.
        for d in &export.documents {
            assert!(
                export
                    .envelopes
                    .iter()
                    .any(|(doc, r, _)| *doc == d.id && *r == a.id),
                "document {} without its owner envelope in a snapshot",
                d.id
            );
        }
        assert_eq!(export.envelopes.len(), export.documents.len());
        seen += 1;
        if seen > 500 {
            break;
        }
    }
    writer.await.unwrap();
    assert_eq!(b.records.export().await.unwrap().documents.len(), 60);
}
