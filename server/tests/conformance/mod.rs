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
use coffre_server::store::attempts::handle_key as budget_key;
use coffre_server::store::recovery::{
    KEEP_CLOSED_SECONDS, MAX_REFERENTS, RELEASE_WINDOW_SECONDS, REQUEST_OPEN_SECONDS,
};
use coffre_server::store::{
    sweep_payloads, Account, Approval, AttemptPolicy, Attempts, Budget, CredentialChange,
    DealShare, Decision, Device, Digest, Document, EnvelopeRecord, Export, Id, Invite, Link,
    LinkOpen, Org, Payloads, PendingLogin, Records, RecoveryDeal, RecoveryFinish, RecoveryRequest,
    RequestChange, RequestState, Role, Session, StoreError, LINK_GRANTS_KEPT, LINK_GRANT_SECONDS,
    LINK_REUSE_SECONDS, PIECE_BYTES,
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
            login_budgets_count_exactly_under_concurrency,
            login_budgets_wait_and_successes_give_back,
            device_budgets_are_their_own_and_forgotten_after_failures,
            devices_are_bounded_per_account_and_deleted_together,
            login_success_checks_epoch,
            sweep_forgets_idle_budgets_and_unused_devices,
            credential_swap_purges_other_sessions,
            pending_login_is_taken_once_and_expires,
            rate_windows_count_every_event_once,
            sessions_store_and_delete,
            sessions_are_listed_touched_and_closed_but_one,
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
            recovery_deal_put_replace_delete_close_the_open_request,
            one_open_recovery_request_per_handle,
            concurrent_recovery_requests_for_one_handle_one_wins,
            referents_approve_refuse_withdraw_and_cancel,
            decisions_on_a_closed_or_replaced_request_are_refused,
            concurrent_approvals_are_all_counted,
            finish_recovery_after_the_delay_replaces_everything,
            finish_recovery_under_a_replaced_deal_is_refused,
            recovery_requests_of_and_for_list_newest_first,
            sweep_removes_old_closed_recovery_requests_only,
            organisation_recovery_delay_is_kept,
            recovery_code_is_replaced,
            disabling_ends_sessions_and_shares_and_refuses_new_ones,
            deals_naming_a_referent,
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
        grants: Vec::new(),
    }
}

/// A visitor's grant id digest, distinct per `n`.
fn grant(n: u8) -> Digest {
    Digest([n; 32])
}

fn session(account: Id, expires_at: u64, epoch: u64) -> Session {
    Session {
        account,
        created_at: NOW,
        expires_at,
        credential_epoch: epoch,
        last_used_at: NOW,
        device: "Firefox on Linux".into(),
        shared: false,
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
        recovery_delay_seconds: None,
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

/// A policy without waits, so that only the window's cap refuses.
fn cap_only(per_window: u32) -> AttemptPolicy {
    AttemptPolicy {
        per_window,
        free_failures: u32::MAX,
        forget_after: per_window,
        ..AttemptPolicy::default()
    }
}

pub async fn login_budgets_count_exactly_under_concurrency(b: &Backend) {
    let key = hash(2);
    let records = Arc::clone(&b.records);
    let policy = cap_only(10);
    let results = concurrently(40, move |_| {
        let records = Arc::clone(&records);
        async move { records.count_login_attempt(&key, NOW, &policy).await }
    })
    .await;
    // Each counted attempt is told its own rank, as the login's "tries left" needs.
    let mut left: Vec<u32> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    left.sort_unstable();
    assert_eq!(left, (0..10).collect::<Vec<_>>());
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::Throttled { retry_after } if *retry_after == 86_400)));
    let stored = b.records.login_budget(&key).await.unwrap().unwrap();
    assert_eq!((stored.window_start, stored.window_count), (NOW, 10));
    assert_eq!(stored.idle_at, NOW + 86_400);
    // Later in the window: told how long is left. Never a lock: the next window opens.
    assert!(matches!(
        b.records
            .count_login_attempt(&key, NOW + 86_000, &policy)
            .await,
        Err(StoreError::Throttled { retry_after: 400 })
    ));
    assert_eq!(
        b.records
            .count_login_attempt(&key, NOW + 86_400, &policy)
            .await
            .unwrap(),
        9
    );
    // Another handle is counted apart; a reset forgets the budget.
    assert_eq!(
        b.records
            .count_login_attempt(&hash(3), NOW, &policy)
            .await
            .unwrap(),
        9
    );
    b.records.reset_login_budget(&key).await.unwrap();
    assert!(b.records.login_budget(&key).await.unwrap().is_none());
    assert_eq!(
        b.records
            .count_login_attempt(&key, NOW + 86_401, &policy)
            .await
            .unwrap(),
        9
    );
    // Resetting a budget that does not exist is no error.
    b.records.reset_login_budget(&hash(4)).await.unwrap();
}

pub async fn login_budgets_wait_and_successes_give_back(b: &Backend) {
    let key = hash(5);
    let policy = AttemptPolicy::default();
    for _ in 0..3 {
        b.records
            .count_login_attempt(&key, NOW, &policy)
            .await
            .unwrap();
    }
    assert!(matches!(
        b.records.count_login_attempt(&key, NOW + 10, &policy).await,
        Err(StoreError::Throttled { retry_after: 20 })
    ));
    // A refused attempt changes nothing.
    let stored = b.records.login_budget(&key).await.unwrap().unwrap();
    assert_eq!((stored.failures, stored.window_count), (3, 3));
    assert_eq!(stored.next_at, NOW + 30);
    // The success of the login counted last gives its attempt back and ends the wait.
    b.records
        .attempt_succeeded(&Budget::Handle(Digest(key)), NOW, NOW + 11)
        .await
        .unwrap();
    let stored = b.records.login_budget(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.failures, stored.window_count, stored.next_at),
        (0, 2, 0)
    );
    b.records
        .count_login_attempt(&key, NOW + 12, &policy)
        .await
        .unwrap();
    // A success on a budget that is gone (reset meanwhile) is no error.
    b.records
        .attempt_succeeded(&Budget::Handle(Digest(hash(6))), NOW, NOW)
        .await
        .unwrap();
}

fn device(account: Id, last_used_at: u64) -> Device {
    Device {
        account,
        created_at: last_used_at,
        last_used_at,
        attempts: Attempts::default(),
    }
}

pub async fn device_budgets_are_their_own_and_forgotten_after_failures(b: &Backend) {
    let a = person(b, "amina").await;
    let other = person(b, "other").await;
    let phone = hash(7);
    b.records
        .put_device(&phone, &device(a.id, NOW))
        .await
        .unwrap();
    let policy = cap_only(10);
    // Another account's device, or none at all: not a credential here.
    for (dev, acct) in [(phone, other.id), (hash(8), a.id)] {
        assert!(matches!(
            b.records
                .count_device_attempt(&dev, acct, NOW, &policy)
                .await,
            Err(StoreError::NotFound)
        ));
    }
    // The handle's budget spent does not touch the device's.
    let key = budget_key(&a.handle);
    while b
        .records
        .count_login_attempt(&key, NOW, &policy)
        .await
        .is_ok()
    {}
    assert_eq!(
        b.records
            .count_device_attempt(&phone, a.id, NOW, &policy)
            .await
            .unwrap(),
        9
    );
    b.records
        .attempt_succeeded(&Budget::Device(Digest(phone)), NOW, NOW + 50)
        .await
        .unwrap();
    let held = b.records.devices_of(a.id).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].0, Digest(phone));
    assert_eq!(held[0].1.last_used_at, NOW + 50);
    assert_eq!(held[0].1.attempts.window_count, 0);
    // Ten attempts in a row without success, concurrently: exactly ten are counted, and
    // then the credential is gone.
    let records = Arc::clone(&b.records);
    let results = concurrently(20, move |_| {
        let records = Arc::clone(&records);
        async move {
            records
                .count_device_attempt(&phone, a.id, NOW + 60, &policy)
                .await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::NotFound)));
    assert!(b.records.devices_of(a.id).await.unwrap().is_empty());
}

pub async fn devices_are_bounded_per_account_and_deleted_together(b: &Backend) {
    let a = person(b, "amina").await;
    let other = person(b, "other").await;
    b.records
        .put_device(&hash(90), &device(other.id, NOW))
        .await
        .unwrap();
    let phones: Vec<[u8; 32]> = (0..12u8).map(|i| hash(100 + i)).collect();
    for (i, phone) in (0u64..).zip(&phones) {
        b.records
            .put_device(phone, &device(a.id, NOW + i))
            .await
            .unwrap();
    }
    let mut held: Vec<Digest> = b
        .records
        .devices_of(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    held.sort();
    let mut newest: Vec<Digest> = phones[2..].iter().map(|h| Digest(*h)).collect();
    newest.sort();
    assert_eq!(held, newest, "the least recently used are forgotten");
    // One issued with an older clock still stays: it is the device logging in now.
    let late = hash(120);
    b.records
        .put_device(&late, &device(a.id, NOW - 100))
        .await
        .unwrap();
    let held = b.records.devices_of(a.id).await.unwrap();
    assert_eq!(held.len(), 10);
    assert!(held.iter().any(|(h, _)| *h == Digest(late)));
    // A device of an account that does not exist is refused.
    assert!(matches!(
        b.records.put_device(&hash(121), &device(id(), NOW)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(b.records.delete_devices_of(a.id).await.unwrap(), 10);
    assert!(b.records.devices_of(a.id).await.unwrap().is_empty());
    assert_eq!(b.records.devices_of(other.id).await.unwrap().len(), 1);
}

pub async fn login_success_checks_epoch(b: &Backend) {
    let a = person(b, "amina").await;
    let ok = b.records.login_succeeded(a.id, 0).await.unwrap();
    assert_eq!(ok.id, a.id);
    // A login started before a passphrase change proves the old passphrase.
    let change = CredentialChange {
        password_file: a.password_file.clone(),
        bundle: a.bundle.clone(),
        ksf_version: a.ksf_version,
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
    assert!(matches!(
        b.records.login_succeeded(id(), 0).await,
        Err(StoreError::NotFound)
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
    let change = CredentialChange {
        password_file: b"new record".to_vec(),
        bundle: b"new bundle".to_vec(),
        ksf_version: 7,
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
    // Again, keeping no session.
    let again = b
        .records
        .replace_credentials(a.id, &change, None)
        .await
        .unwrap();
    assert_eq!(again.credential_epoch, 2);
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
    }
}

pub async fn pending_login_is_taken_once_and_expires(b: &Backend) {
    let a = person(b, "amina").await;
    let phone = hash(9);
    let login = PendingLogin {
        sealed_state: b"sealed state".to_vec(),
        account: Some((a.id, 3)),
        budget: Budget::Device(Digest(phone)),
        started_at: NOW - 1,
        remember_device: true,
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
    assert_eq!(taken[0].budget, Budget::Device(Digest(phone)));
    assert_eq!(taken[0].started_at, NOW - 1);
    assert!(taken[0].remember_device);
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

pub async fn sessions_are_listed_touched_and_closed_but_one(b: &Backend) {
    let a = person(b, "amina").await;
    let other = person(b, "bilal").await;
    let h: Vec<[u8; 32]> = (0..10).map(hash).collect();
    let mut shared = session(a.id, NOW + 100, 0);
    shared.shared = true;
    shared.device = "Chrome on Windows".into();
    b.records.put_session(&h[1], &shared).await.unwrap();
    b.records
        .put_session(&h[2], &session(a.id, NOW + 100, 0))
        .await
        .unwrap();
    b.records
        .put_session(&h[3], &session(a.id, NOW + 100, 0))
        .await
        .unwrap();
    b.records
        .put_session(&h[4], &session(other.id, NOW + 100, 0))
        .await
        .unwrap();
    let mut listed = b.records.sessions_of_account(a.id).await.unwrap();
    listed.sort_by_key(|(d, _)| d.0);
    let hashes: Vec<[u8; 32]> = listed.iter().map(|(d, _)| d.0).collect();
    assert_eq!(hashes, vec![h[1], h[2], h[3]], "only amina's");
    let (_, first) = &listed[0];
    assert!(first.shared);
    assert_eq!(
        (first.device.as_str(), first.last_used_at),
        ("Chrome on Windows", NOW)
    );
    assert!(!listed[1].1.shared);

    // Last use moves forward, never back, and nothing else changes.
    b.records.touch_session(&h[1], NOW + 70).await.unwrap();
    b.records.touch_session(&h[1], NOW + 10).await.unwrap();
    let got = b.records.session(&h[1]).await.unwrap().unwrap();
    assert_eq!(
        (got.last_used_at, got.created_at, got.expires_at, got.shared),
        (NOW + 70, NOW, NOW + 100, true)
    );
    // Touching a session that is gone creates nothing.
    b.records.touch_session(&h[9], NOW).await.unwrap();
    assert!(b.records.session(&h[9]).await.unwrap().is_none());

    // Closing the others keeps the one asked for and nobody else's.
    assert_eq!(
        b.records.delete_other_sessions(a.id, &h[2]).await.unwrap(),
        2
    );
    let left: Vec<[u8; 32]> = b
        .records
        .sessions_of_account(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(d, _)| d.0)
        .collect();
    assert_eq!(left, vec![h[2]]);
    assert!(b.records.session(&h[1]).await.unwrap().is_none());
    assert!(b.records.session(&h[4]).await.unwrap().is_some());
    assert_eq!(
        b.records.delete_other_sessions(a.id, &h[2]).await.unwrap(),
        0
    );
    // A deleted session leaves the account's list too.
    b.records.delete_session(&h[2]).await.unwrap();
    assert!(b
        .records
        .sessions_of_account(a.id)
        .await
        .unwrap()
        .is_empty());
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
    // 30 visitors at once, each with their own grant id, and each asking twice.
    let results = concurrently(60, move |i| {
        let records = Arc::clone(&records);
        async move {
            let g = grant(u8::try_from(i % 30).unwrap());
            records.grant_link(l.id, g, NOW).await.unwrap()
        }
    })
    .await;
    let counted = results
        .iter()
        .filter(|r| matches!(r, Some(LinkOpen::Opened(_, g)) if g.counted))
        .count();
    assert_eq!(counted, 7);
    let stored = b.records.link(l.id).await.unwrap().unwrap();
    assert_eq!(stored.downloads, 7);
    assert_eq!(stored.last_opened_at, Some(NOW));
    assert_eq!(stored.grants.len(), 7);
    // Each of the seven granted ids gets its grant back, uncounted, within the window,
    // although the link is used up; any other id is refused.
    for g in &stored.grants {
        let again = b.records.grant_link(l.id, g.grant, NOW + 5).await.unwrap();
        assert!(
            matches!(again, Some(LinkOpen::Opened(_, ref x)) if !x.counted && x.issued_at == NOW),
            "{again:?}"
        );
    }
    assert!(matches!(
        b.records.grant_link(l.id, grant(200), NOW).await.unwrap(),
        Some(LinkOpen::Exhausted)
    ));
    assert_eq!(b.records.link(l.id).await.unwrap().unwrap().downloads, 7);

    // A link with one opening: many concurrent fetches with different ids, one grant.
    let one = link(doc.id, Some(1), None);
    b.records.put_link(&one).await.unwrap();
    let records = Arc::clone(&b.records);
    let results = concurrently(20, move |i| {
        let records = Arc::clone(&records);
        async move {
            let g = grant(100 + u8::try_from(i).unwrap());
            records.grant_link(one.id, g, NOW).await.unwrap()
        }
    })
    .await;
    let granted: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            Some(LinkOpen::Opened(_, g)) => Some(g),
            _ => None,
        })
        .collect();
    assert_eq!(granted.len(), 1, "{results:?}");
    assert!(granted[0].counted);

    // The window: the same id counts once within it, again after it.
    let unlimited = link(doc.id, None, Some(NOW + 10_000));
    b.records.put_link(&unlimited).await.unwrap();
    for (at, counted, downloads) in [
        (NOW, true, 1),
        (NOW + LINK_REUSE_SECONDS - 1, false, 1),
        (NOW + LINK_REUSE_SECONDS, true, 2),
        (NOW + LINK_REUSE_SECONDS + 1, false, 2),
    ] {
        let r = b
            .records
            .grant_link(unlimited.id, grant(1), at)
            .await
            .unwrap();
        assert!(
            matches!(r, Some(LinkOpen::Opened(ref link, g)) if g.counted == counted && link.downloads == downloads),
            "at +{}: {r:?}",
            at - NOW
        );
    }
    // Grants past the window are forgotten, and at most LINK_GRANTS_KEPT are kept.
    let at = NOW + 3 * LINK_REUSE_SECONDS;
    for n in 0..u8::try_from(LINK_GRANTS_KEPT + 3).unwrap() {
        b.records
            .grant_link(unlimited.id, grant(n), at)
            .await
            .unwrap();
    }
    let stored = b.records.link(unlimited.id).await.unwrap().unwrap();
    assert_eq!(stored.grants.len(), LINK_GRANTS_KEPT);
    assert_eq!(stored.grants[0].grant, grant(3));
    assert_eq!(
        stored.downloads,
        2 + u32::try_from(LINK_GRANTS_KEPT + 3).unwrap()
    );

    // An expired link grants no more, not even a recent grant again; an unknown one is
    // not there.
    assert!(matches!(
        b.records
            .grant_link(unlimited.id, grant(5), NOW + 10_000)
            .await
            .unwrap(),
        Some(LinkOpen::Exhausted)
    ));
    assert!(b
        .records
        .grant_link(id(), grant(1), NOW)
        .await
        .unwrap()
        .is_none());
    assert_eq!(b.records.links_of(doc.id).await.unwrap().len(), 3);
    assert!(b.records.delete_link(unlimited.id).await.unwrap());
    assert!(!b.records.delete_link(unlimited.id).await.unwrap());
    assert_eq!(b.records.links_of(doc.id).await.unwrap().len(), 2);
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
    b.records
        .grant_link(used_up.id, grant(1), NOW)
        .await
        .unwrap();
    let login = PendingLogin {
        sealed_state: vec![1],
        account: None,
        budget: Budget::Handle(Digest(hash(33))),
        started_at: NOW,
        remember_device: false,
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

pub async fn sweep_forgets_idle_budgets_and_unused_devices(b: &Backend) {
    let a = person(b, "amina").await;
    let policy = AttemptPolicy::default();
    let (quiet, waiting) = (hash(34), hash(35));
    b.records
        .count_login_attempt(&quiet, NOW, &policy)
        .await
        .unwrap();
    // A short window with a long wait: the record lives until the wait ends.
    let short = AttemptPolicy {
        window_seconds: 60,
        first_delay_seconds: 7200,
        max_delay_seconds: 7200,
        ..policy
    };
    for _ in 0..3 {
        b.records
            .count_login_attempt(&waiting, NOW, &short)
            .await
            .unwrap();
    }
    let (old_phone, new_phone) = (hash(36), hash(37));
    b.records
        .put_device(&old_phone, &device(a.id, NOW))
        .await
        .unwrap();
    b.records
        .put_device(&new_phone, &device(a.id, NOW + 10 * 86_400))
        .await
        .unwrap();
    let nothing = b.records.sweep(NOW + 3600, 0).await.unwrap();
    assert_eq!(
        (nothing.login_budgets, nothing.devices),
        (0, 0),
        "{nothing:?}"
    );
    let sweep = b.records.sweep(NOW + 7200, 0).await.unwrap();
    assert_eq!(sweep.login_budgets, 1, "{sweep:?}");
    assert!(b.records.login_budget(&waiting).await.unwrap().is_none());
    assert!(b.records.login_budget(&quiet).await.unwrap().is_some());
    let sweep = b.records.sweep(NOW + 86_400, 0).await.unwrap();
    assert_eq!(sweep.login_budgets, 1, "{sweep:?}");
    assert!(b.records.login_budget(&quiet).await.unwrap().is_none());
    let ttl = coffre_server::store::attempts::DEVICE_TTL_SECONDS;
    let sweep = b.records.sweep(NOW + ttl, 0).await.unwrap();
    assert_eq!(sweep.devices, 1, "{sweep:?}");
    let held = b.records.devices_of(a.id).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].0, Digest(new_phone));
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
    b.records.grant_link(l.id, grant(1), NOW).await.unwrap();
    let policy = AttemptPolicy::default();
    b.records
        .count_login_attempt(&hash(41), NOW, &policy)
        .await
        .unwrap();
    b.records
        .count_login_attempt(&budget_key(&a.handle), NOW, &policy)
        .await
        .unwrap();
    b.records
        .put_device(&hash(42), &device(a.id, NOW))
        .await
        .unwrap();
    b.records
        .set_org_recovery_delay(org.id, Some(86_400))
        .await
        .unwrap();
    // A deal, a request approved once, and a request for a handle without an account.
    let d = deal(a.id, &[w.id], 1);
    b.records.put_recovery_deal(&d, NOW).await.unwrap();
    let r = open_request(b, &a, &d, 3600).await;
    decide(b, r.id, w.id, approve(0), NOW).await.unwrap();
    b.records
        .create_recovery_request(&recovery_request(handle_key(), None, None, 0, NOW), NOW)
        .await
        .unwrap();
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
    assert_eq!(export.login_budgets.len(), 2);
    assert_eq!(export.devices.len(), 1);
    assert_eq!(export.orgs[0].recovery_delay_seconds, Some(86_400));
    assert_eq!(export.recovery_deals.len(), 1);
    assert_eq!(export.recovery_requests.len(), 2);
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
    let budget = to
        .records
        .login_budget(&budget_key(&a.handle))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(budget.window_count, 1);
    assert_eq!(to.records.devices_of(a.id).await.unwrap().len(), 1);
    let w = to
        .records
        .account_by_handle("worker")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(to.records.shared_with(w.id).await.unwrap().len(), 1);
    let l = &export.links[0];
    // The grant counted before the copy is still known to the copy.
    assert!(matches!(
        to.records.grant_link(l.id, grant(1), NOW).await.unwrap(),
        Some(LinkOpen::Opened(opened, g)) if opened.downloads == 1 && !g.counted
    ));
    assert!(matches!(
        to.records.grant_link(l.id, grant(2), NOW).await.unwrap(),
        Some(LinkOpen::Opened(opened, g)) if opened.downloads == 2 && g.counted
    ));
    assert!(matches!(
        to.records
            .create_account(&account("amina", Role::Beneficiary, None))
            .await,
        Err(StoreError::HandleTaken)
    ));
    // Recovery too: the delay, the deal, the requests and their one-per-handle rule.
    let org = &export.orgs[0];
    assert_eq!(
        to.records
            .org(org.id)
            .await
            .unwrap()
            .unwrap()
            .recovery_delay_seconds,
        Some(86_400)
    );
    assert_eq!(
        to.records.recovery_deal(a.id).await.unwrap(),
        Some(export.recovery_deals[0].clone())
    );
    let requests = to.records.recovery_requests_of(a.id).await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].approvals.len(), 1);
    assert_eq!(requests[0].releasable_at, Some(NOW + 3600));
    assert_eq!(
        to.records.recovery_requests_for(w.id, NOW).await.unwrap(),
        requests
    );
    for r in &export.recovery_requests {
        let again = recovery_request(r.handle_key, r.account, None, 0, NOW + 1);
        assert!(matches!(
            to.records.create_recovery_request(&again, NOW + 1).await,
            Err(StoreError::RecoveryPending)
        ));
    }
    let finished = to
        .records
        .finish_recovery(requests[0].id, &recovery_finish(None), NOW + 3600)
        .await
        .unwrap();
    assert_eq!(finished.credential_epoch, a.credential_epoch + 1);
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

// --- recovery through referents ---
// Deals and requests hold stand-in bytes: the store never parses the shares, bundles or
// keys it keeps.

/// A deal for `account` with one share per referent.
fn deal(account: Id, referents: &[Id], threshold: u8) -> RecoveryDeal {
    RecoveryDeal {
        id: id(),
        account,
        threshold,
        shares: referents
            .iter()
            .zip(1u8..)
            .map(|(referent, index)| DealShare {
                referent: *referent,
                index,
                sealed_share: format!("age share {index}").into_bytes(),
                commitment: vec![index; 32],
            })
            .collect(),
        bundle: b"sealed under the recovery secret".to_vec(),
        verifier: vec![0x5e; 32],
        created_at: NOW,
    }
}

/// Two records are the same, field for field (for types without `PartialEq`).
fn assert_same<T: serde::Serialize>(got: &T, want: &T) {
    assert_eq!(
        serde_json::to_value(got).unwrap(),
        serde_json::to_value(want).unwrap()
    );
}

fn handle_key() -> Digest {
    Digest(hash(50))
}

/// A request for `handle` made at `created_at`, under `deal` if the handle has one.
fn recovery_request(
    handle: Digest,
    account: Option<Id>,
    deal: Option<&RecoveryDeal>,
    delay_seconds: u64,
    created_at: u64,
) -> RecoveryRequest {
    RecoveryRequest {
        id: id(),
        handle_key: handle,
        account,
        deal: deal.map(|d| d.id),
        threshold: deal.map_or(0, |d| d.threshold),
        referents: deal.map_or_else(Vec::new, |d| d.shares.iter().map(|s| s.referent).collect()),
        delay_seconds,
        ephemeral_key: "age1ephemeralstandin".into(),
        challenge_hash: Digest([0xc1; 32]),
        created_at,
        expires_at: created_at + REQUEST_OPEN_SECONDS,
        state: RequestState::Open,
        closed_at: None,
        approvals: Vec::new(),
        refused: Vec::new(),
        releasable_at: None,
    }
}

/// A person with a deal over `n` new referents (workers), `threshold` of them needed.
async fn person_with_deal(
    b: &Backend,
    handle: &str,
    n: usize,
    threshold: u8,
) -> (Account, Vec<Id>, RecoveryDeal) {
    let a = person(b, handle).await;
    let mut referents = Vec::new();
    for i in 0..n {
        let w = account(&format!("{handle}-referent{i}"), Role::Worker, None);
        b.records.create_account(&w).await.unwrap();
        referents.push(w.id);
    }
    let d = deal(a.id, &referents, threshold);
    b.records.put_recovery_deal(&d, NOW).await.unwrap();
    (a, referents, d)
}

/// A request for `a` under `d`, stored.
async fn open_request(b: &Backend, a: &Account, d: &RecoveryDeal, delay: u64) -> RecoveryRequest {
    let r = recovery_request(handle_key(), Some(a.id), Some(d), delay, NOW);
    b.records.create_recovery_request(&r, NOW).await.unwrap();
    r
}

async fn decide(
    b: &Backend,
    request: Id,
    referent: Id,
    decision: Decision,
    now: u64,
) -> Result<RecoveryRequest, StoreError> {
    b.records
        .change_recovery_request(request, &RequestChange::Decide { referent, decision }, now)
        .await
}

async fn stored_request(b: &Backend, id: Id) -> RecoveryRequest {
    b.records.recovery_request(id).await.unwrap().unwrap()
}

fn approve(i: u8) -> Decision {
    Decision::Approve(format!("share resealed by referent {i}").into_bytes())
}

fn recovery_finish(deal: Option<RecoveryDeal>) -> RecoveryFinish {
    RecoveryFinish {
        credentials: CredentialChange {
            password_file: b"record after recovery".to_vec(),
            bundle: b"bundle after recovery".to_vec(),
            ksf_version: 9,
        },
        recovery_bundle: b"new kit bundle".to_vec(),
        recovery_verifier: vec![0x7e; 32],
        deal,
    }
}

pub async fn recovery_deal_put_replace_delete_close_the_open_request(b: &Backend) {
    let (a, referents, d1) = person_with_deal(b, "amina", 3, 2).await;
    assert_eq!(
        b.records.recovery_deal(a.id).await.unwrap(),
        Some(d1.clone())
    );
    assert!(b.records.recovery_deal(id()).await.unwrap().is_none());
    // Without the account: nothing stored.
    let stray = deal(id(), &referents, 2);
    assert!(matches!(
        b.records.put_recovery_deal(&stray, NOW).await,
        Err(StoreError::NotFound)
    ));
    assert!(b
        .records
        .recovery_deal(stray.account)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        b.records.delete_recovery_deal(id(), NOW).await,
        Err(StoreError::NotFound)
    ));

    // Another person's open request, and one of amina's that expired long ago: neither is
    // touched by amina's re-deal.
    let (other, _, other_deal) = person_with_deal(b, "other", 2, 2).await;
    let theirs = open_request(b, &other, &other_deal, 0).await;
    let expired = recovery_request(
        handle_key(),
        Some(a.id),
        Some(&d1),
        0,
        NOW - REQUEST_OPEN_SECONDS - 5,
    );
    b.records
        .create_recovery_request(&expired, NOW - REQUEST_OPEN_SECONDS - 5)
        .await
        .unwrap();
    let r1 = open_request(b, &a, &d1, 0).await;
    decide(b, r1.id, referents[0], approve(0), NOW + 1)
        .await
        .unwrap();

    // A new deal replaces the old one and cancels the request made under it.
    let d2 = deal(a.id, &referents[..2], 2);
    b.records.put_recovery_deal(&d2, NOW + 10).await.unwrap();
    assert_eq!(
        b.records.recovery_deal(a.id).await.unwrap(),
        Some(d2.clone())
    );
    let closed = stored_request(b, r1.id).await;
    assert_eq!(closed.state, RequestState::Cancelled);
    assert_eq!(closed.closed_at, Some(NOW + 10));
    assert_eq!(closed.releasable_at, None);
    assert_eq!(closed.approvals.len(), 1, "what happened stays visible");
    assert_eq!(stored_request(b, theirs.id).await, theirs);
    assert_eq!(
        stored_request(b, expired.id).await,
        expired,
        "an expired request is left as it was"
    );

    // Removing the deal cancels the request made under the new one, and only that.
    let r2 = open_request(b, &a, &d2, 0).await;
    assert!(b
        .records
        .delete_recovery_deal(a.id, NOW + 20)
        .await
        .unwrap());
    assert!(b.records.recovery_deal(a.id).await.unwrap().is_none());
    let closed2 = stored_request(b, r2.id).await;
    assert_eq!(
        (closed2.state, closed2.closed_at),
        (RequestState::Cancelled, Some(NOW + 20))
    );
    assert_eq!(
        stored_request(b, r1.id).await.closed_at,
        Some(NOW + 10),
        "closed once"
    );
    assert!(!b
        .records
        .delete_recovery_deal(a.id, NOW + 30)
        .await
        .unwrap());
    assert_eq!(stored_request(b, theirs.id).await.state, RequestState::Open);
    assert_eq!(
        b.records.recovery_deal(other.id).await.unwrap(),
        Some(other_deal)
    );
    assert_eq!(stored_request(b, expired.id).await, expired);
}

pub async fn one_open_recovery_request_per_handle(b: &Backend) {
    let (a, referents, d) = person_with_deal(b, "amina", 2, 1).await;
    let handle = handle_key();
    let r1 = recovery_request(handle, Some(a.id), Some(&d), 0, NOW);
    b.records.create_recovery_request(&r1, NOW).await.unwrap();
    assert_eq!(stored_request(b, r1.id).await, r1);
    assert!(b.records.recovery_request(id()).await.unwrap().is_none());
    let second = recovery_request(handle, Some(a.id), Some(&d), 0, NOW + 1);
    assert!(matches!(
        b.records.create_recovery_request(&second, NOW + 1).await,
        Err(StoreError::RecoveryPending)
    ));
    assert!(b
        .records
        .recovery_request(second.id)
        .await
        .unwrap()
        .is_none());
    // A reused id, whatever the handle.
    let mut reused = recovery_request(handle_key(), Some(a.id), Some(&d), 0, NOW);
    reused.id = r1.id;
    assert!(matches!(
        b.records.create_recovery_request(&reused, NOW).await,
        Err(StoreError::IdTaken)
    ));
    assert_eq!(stored_request(b, r1.id).await, r1);
    // Another handle is apart; a handle without an account is held the same way.
    let unknown = handle_key();
    let fake = recovery_request(unknown, None, None, 0, NOW);
    b.records.create_recovery_request(&fake, NOW).await.unwrap();
    assert!(matches!(
        b.records
            .create_recovery_request(&recovery_request(unknown, None, None, 0, NOW), NOW + 5)
            .await,
        Err(StoreError::RecoveryPending)
    ));
    assert_eq!(stored_request(b, fake.id).await, fake);

    // After a cancel, a new request may be made.
    let cancelled = b
        .records
        .change_recovery_request(r1.id, &RequestChange::Cancel, NOW + 2)
        .await
        .unwrap();
    assert_eq!(
        (cancelled.state, cancelled.closed_at),
        (RequestState::Cancelled, Some(NOW + 2))
    );
    let r3 = recovery_request(handle, Some(a.id), Some(&d), 0, NOW + 3);
    b.records
        .create_recovery_request(&r3, NOW + 3)
        .await
        .unwrap();
    // After it expires (unanswered), too, but not a second before.
    let early = recovery_request(handle, Some(a.id), Some(&d), 0, r3.expires_at - 1);
    assert!(matches!(
        b.records
            .create_recovery_request(&early, r3.expires_at - 1)
            .await,
        Err(StoreError::RecoveryPending)
    ));
    let r4 = recovery_request(handle, Some(a.id), Some(&d), 0, r3.expires_at);
    b.records
        .create_recovery_request(&r4, r3.expires_at)
        .await
        .unwrap();
    assert_eq!(
        stored_request(b, r3.id).await.state,
        RequestState::Open,
        "expiry is by time"
    );
    // An approved request waits for its release past its first expiry: still pending.
    let at = r4.expires_at - 1;
    let approved = decide(b, r4.id, referents[0], approve(0), at)
        .await
        .unwrap();
    assert_eq!(approved.releasable_at, Some(at + r4.delay_seconds));
    assert!(approved.expires_at > r4.expires_at);
    assert!(matches!(
        b.records
            .create_recovery_request(
                &recovery_request(handle, Some(a.id), Some(&d), 0, at + 1),
                r4.expires_at
            )
            .await,
        Err(StoreError::RecoveryPending)
    ));
}

pub async fn concurrent_recovery_requests_for_one_handle_one_wins(b: &Backend) {
    let (a, _, d) = person_with_deal(b, "amina", 2, 2).await;
    let handle = handle_key();
    // An expired request for the handle first: it blocks nobody.
    let old = recovery_request(handle, Some(a.id), Some(&d), 0, NOW - REQUEST_OPEN_SECONDS);
    b.records
        .create_recovery_request(&old, NOW - REQUEST_OPEN_SECONDS)
        .await
        .unwrap();
    for round in 0..3u64 {
        let now = NOW + round;
        let records = Arc::clone(&b.records);
        let requests: Vec<RecoveryRequest> = (0..8)
            .map(|_| recovery_request(handle, Some(a.id), Some(&d), 0, now))
            .collect();
        let all = requests.clone();
        let results = concurrently(8, move |i| {
            let records = Arc::clone(&records);
            let r = all[i].clone();
            async move { records.create_recovery_request(&r, now).await }
        })
        .await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::RecoveryPending)));
        let winner = results.iter().position(Result::is_ok).unwrap();
        let mut stored = 0;
        for r in &requests {
            stored += usize::from(b.records.recovery_request(r.id).await.unwrap().is_some());
        }
        assert_eq!(stored, 1);
        // Cancelled: the next round has a free handle again.
        b.records
            .change_recovery_request(requests[winner].id, &RequestChange::Cancel, now)
            .await
            .unwrap();
    }
    // Different handles at once: all of them.
    let records = Arc::clone(&b.records);
    let results = concurrently(8, move |_| {
        let records = Arc::clone(&records);
        async move {
            records
                .create_recovery_request(&recovery_request(handle_key(), None, None, 0, NOW), NOW)
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

pub async fn referents_approve_refuse_withdraw_and_cancel(b: &Backend) {
    let (a, w, d) = person_with_deal(b, "amina", 3, 2).await;
    let r = open_request(b, &a, &d, 3600).await;
    assert!(matches!(
        decide(b, id(), w[0], approve(0), NOW).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        b.records
            .change_recovery_request(id(), &RequestChange::Cancel, NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    let once = decide(b, r.id, w[0], approve(0), NOW + 1).await.unwrap();
    assert_eq!(once.approvals.len(), 1);
    assert_eq!(once.approvals[0].referent, w[0]);
    assert_eq!(
        once.approvals[0].sealed_share,
        b"share resealed by referent 0"
    );
    assert_eq!(once.approvals[0].at, NOW + 1);
    assert_eq!(once.releasable_at, None);
    assert_eq!(
        stored_request(b, r.id).await,
        once,
        "what is returned is what is stored"
    );
    // Nobody decides twice; a stranger does not decide at all.
    assert!(matches!(
        decide(b, r.id, w[0], approve(0), NOW + 2).await,
        Err(StoreError::AlreadyDecided)
    ));
    assert!(matches!(
        decide(b, r.id, w[0], Decision::Refuse, NOW + 2).await,
        Err(StoreError::AlreadyDecided)
    ));
    assert!(matches!(
        decide(b, r.id, a.id, approve(9), NOW + 2).await,
        Err(StoreError::NotReferent)
    ));
    assert!(matches!(
        decide(b, r.id, w[2], Decision::Withdraw, NOW + 2).await,
        Err(StoreError::AlreadyDecided),
    ));
    let refused = decide(b, r.id, w[1], Decision::Refuse, NOW + 3)
        .await
        .unwrap();
    assert_eq!(refused.refused, vec![w[1]]);
    assert_eq!(refused.state, RequestState::Open, "two can still approve");
    assert!(matches!(
        decide(b, r.id, w[1], approve(1), NOW + 4).await,
        Err(StoreError::AlreadyDecided)
    ));
    assert_eq!(
        stored_request(b, r.id).await,
        refused,
        "a refused change writes nothing"
    );
    // The threshold is reached: the release is set after the delay.
    let enough = decide(b, r.id, w[2], approve(2), NOW + 5).await.unwrap();
    assert_eq!(enough.releasable_at, Some(NOW + 5 + 3600));
    assert_eq!(enough.expires_at, NOW + 5 + 3600 + RELEASE_WINDOW_SECONDS);
    // A withdrawal during the delay: out of reach (two of three refused), closed.
    let withdrawn = decide(b, r.id, w[0], Decision::Withdraw, NOW + 6)
        .await
        .unwrap();
    assert_eq!(withdrawn.state, RequestState::Refused);
    assert_eq!(withdrawn.closed_at, Some(NOW + 6));
    assert_eq!(withdrawn.releasable_at, None);
    assert_eq!(withdrawn.approvals.len(), 1);
    assert_eq!(stored_request(b, r.id).await, withdrawn);
    assert!(matches!(
        decide(b, r.id, w[2], Decision::Withdraw, NOW + 7).await,
        Err(StoreError::RecoveryClosed)
    ));
    assert!(matches!(
        b.records
            .change_recovery_request(r.id, &RequestChange::Cancel, NOW + 7)
            .await,
        Err(StoreError::RecoveryClosed)
    ));
    // Refused, a handle may ask again; the person can cancel that one.
    let again = recovery_request(r.handle_key, Some(a.id), Some(&d), 3600, NOW + 8);
    b.records
        .create_recovery_request(&again, NOW + 8)
        .await
        .unwrap();
    decide(b, again.id, w[0], approve(0), NOW + 9)
        .await
        .unwrap();
    let cancelled = b
        .records
        .change_recovery_request(again.id, &RequestChange::Cancel, NOW + 10)
        .await
        .unwrap();
    assert_eq!(
        (cancelled.state, cancelled.closed_at),
        (RequestState::Cancelled, Some(NOW + 10))
    );
    assert_eq!(stored_request(b, again.id).await, cancelled);
    // A request for a handle without an account never moves.
    let fake = recovery_request(handle_key(), None, None, 0, NOW);
    b.records.create_recovery_request(&fake, NOW).await.unwrap();
    assert!(matches!(
        decide(b, fake.id, w[0], approve(0), NOW).await,
        Err(StoreError::NotReferent)
    ));
}

pub async fn decisions_on_a_closed_or_replaced_request_are_refused(b: &Backend) {
    let (a, w, d1) = person_with_deal(b, "amina", 2, 2).await;
    // Cancelled.
    let r = open_request(b, &a, &d1, 0).await;
    b.records
        .change_recovery_request(r.id, &RequestChange::Cancel, NOW)
        .await
        .unwrap();
    assert!(matches!(
        decide(b, r.id, w[0], approve(0), NOW).await,
        Err(StoreError::RecoveryClosed)
    ));
    // Expired.
    let late = open_request(b, &a, &d1, 0).await;
    assert!(matches!(
        decide(b, late.id, w[0], approve(0), late.expires_at).await,
        Err(StoreError::RecoveryClosed)
    ));
    assert!(matches!(
        b.records
            .change_recovery_request(late.id, &RequestChange::Cancel, late.expires_at)
            .await,
        Err(StoreError::RecoveryClosed)
    ));
    assert_eq!(stored_request(b, late.id).await, late);
    // Replaced by a new deal (which closes it).
    let r2 = recovery_request(handle_key(), Some(a.id), Some(&d1), 0, NOW);
    b.records.create_recovery_request(&r2, NOW).await.unwrap();
    decide(b, r2.id, w[0], approve(0), NOW + 1).await.unwrap();
    let d2 = deal(a.id, &w, 2);
    b.records.put_recovery_deal(&d2, NOW + 2).await.unwrap();
    assert!(matches!(
        decide(b, r2.id, w[1], approve(1), NOW + 3).await,
        Err(StoreError::RecoveryClosed)
    ));
    // Made under the old deal after the new one was in place (a request that raced the
    // re-deal): still open, but no decision counts; the person may still cancel it.
    let stale = recovery_request(handle_key(), Some(a.id), Some(&d1), 0, NOW + 4);
    b.records
        .create_recovery_request(&stale, NOW + 4)
        .await
        .unwrap();
    assert!(matches!(
        decide(b, stale.id, w[0], approve(0), NOW + 5).await,
        Err(StoreError::RecoveryClosed)
    ));
    assert_eq!(stored_request(b, stale.id).await, stale);
    b.records
        .change_recovery_request(stale.id, &RequestChange::Cancel, NOW + 6)
        .await
        .unwrap();
    // Without any deal now: likewise.
    let r3 = open_request(b, &a, &d2, 0).await;
    b.records.delete_recovery_deal(a.id, NOW + 7).await.unwrap();
    let orphan = recovery_request(handle_key(), Some(a.id), Some(&d2), 0, NOW + 8);
    b.records
        .create_recovery_request(&orphan, NOW + 8)
        .await
        .unwrap();
    assert!(matches!(
        decide(b, orphan.id, w[0], approve(0), NOW + 9).await,
        Err(StoreError::RecoveryClosed)
    ));
    assert_eq!(
        stored_request(b, r3.id).await.state,
        RequestState::Cancelled
    );
}

pub async fn concurrent_approvals_are_all_counted(b: &Backend) {
    let n = MAX_REFERENTS;
    let (a, w, d) = person_with_deal(b, "amina", n, 4).await;
    let r = open_request(b, &a, &d, 600).await;
    let records = Arc::clone(&b.records);
    let referents = w.clone();
    let rid = r.id;
    let results = concurrently(n, move |i| {
        let records = Arc::clone(&records);
        let referent = referents[i];
        async move {
            records
                .change_recovery_request(
                    rid,
                    &RequestChange::Decide {
                        referent,
                        decision: approve(u8::try_from(i).unwrap()),
                    },
                    NOW + i as u64,
                )
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let after = stored_request(b, r.id).await;
    assert_eq!(after.approvals.len(), n, "no approval lost");
    let mut approvers: Vec<Id> = after.approvals.iter().map(|x| x.referent).collect();
    approvers.sort_unstable();
    let mut expected = w.clone();
    expected.sort_unstable();
    assert_eq!(approvers, expected);
    // Set once, by the fourth approval in the order they were applied.
    let fourth = after.approvals[3].at;
    assert_eq!(after.releasable_at, Some(fourth + 600));
    assert_eq!(after.expires_at, fourth + 600 + RELEASE_WINDOW_SECONDS);
    assert_eq!(after.state, RequestState::Open);
    for (i, x) in after.approvals.iter().enumerate() {
        let k = w.iter().position(|v| *v == x.referent).unwrap();
        assert_eq!(x.at, NOW + k as u64, "approval {i} kept its own time");
    }

    // One referent approving from several tabs at once: counted once.
    let (p, w2, d2) = person_with_deal(b, "other", 3, 2).await;
    let r2 = open_request(b, &p, &d2, 600).await.id;
    let records = Arc::clone(&b.records);
    let referent = w2[1];
    let results = concurrently(8, move |_| {
        let records = Arc::clone(&records);
        async move {
            records
                .change_recovery_request(
                    r2,
                    &RequestChange::Decide {
                        referent,
                        decision: approve(1),
                    },
                    NOW,
                )
                .await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, StoreError::AlreadyDecided)));
    assert_eq!(stored_request(b, r2).await.approvals.len(), 1);
}

pub async fn finish_recovery_after_the_delay_replaces_everything(b: &Backend) {
    let (a, w, d1) = person_with_deal(b, "amina", 3, 2).await;
    let (other, _, _) = person_with_deal(b, "other", 2, 2).await;
    let (s1, s2, theirs) = (hash(60), hash(61), hash(62));
    for h in [&s1, &s2] {
        b.records
            .put_session(h, &session(a.id, NOW + 3600, 0))
            .await
            .unwrap();
    }
    b.records
        .put_session(&theirs, &session(other.id, NOW + 3600, 0))
        .await
        .unwrap();
    let r = open_request(b, &a, &d1, 3600).await;
    assert!(matches!(
        b.records
            .finish_recovery(id(), &recovery_finish(None), NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    // Not enough approvals yet.
    decide(b, r.id, w[0], approve(0), NOW + 10).await.unwrap();
    assert!(matches!(
        b.records
            .finish_recovery(r.id, &recovery_finish(None), NOW + 10)
            .await,
        Err(StoreError::NotReleasable { at: None })
    ));
    decide(b, r.id, w[2], approve(2), NOW + 20).await.unwrap();
    let release = NOW + 20 + 3600;
    // During the delay.
    let d2 = deal(a.id, &w[..2], 2);
    match b
        .records
        .finish_recovery(r.id, &recovery_finish(Some(d2.clone())), release - 1)
        .await
    {
        Err(StoreError::NotReleasable { at }) => assert_eq!(at, Some(release)),
        other => panic!("{other:?}"),
    }
    let unchanged = b.records.account(a.id).await.unwrap().unwrap();
    assert_eq!(unchanged.credential_epoch, 0);
    assert!(b.records.session(&s1).await.unwrap().is_some());
    assert_eq!(
        b.records.recovery_deal(a.id).await.unwrap(),
        Some(d1.clone())
    );

    // After it: everything in one step.
    let finished = b
        .records
        .finish_recovery(r.id, &recovery_finish(Some(d2.clone())), release)
        .await
        .unwrap();
    assert_eq!(finished.id, a.id);
    assert_eq!(finished.password_file, b"record after recovery");
    assert_eq!(finished.bundle, b"bundle after recovery");
    assert_eq!(finished.ksf_version, 9);
    assert_eq!(finished.credential_epoch, 1, "the epoch moved");
    assert_eq!(
        finished.recovery_bundle.as_deref(),
        Some(&b"new kit bundle"[..])
    );
    assert_eq!(finished.recovery_verifier.as_deref(), Some(&[0x7e; 32][..]));
    assert_eq!(finished.handle, a.handle);
    assert_eq!(finished.public_key, a.public_key, "the identity stays");
    let stored = b.records.account(a.id).await.unwrap().unwrap();
    assert_same(&stored, &finished);
    assert!(b.records.session(&s1).await.unwrap().is_none());
    assert!(b.records.session(&s2).await.unwrap().is_none());
    assert!(b.records.session(&theirs).await.unwrap().is_some());
    assert_eq!(
        b.records.recovery_deal(a.id).await.unwrap(),
        Some(d2.clone())
    );
    let done = stored_request(b, r.id).await;
    assert_eq!(
        (done.state, done.closed_at),
        (RequestState::Finished, Some(release))
    );
    assert_eq!(done.approvals.len(), 2);
    assert!(matches!(
        b.records.login_succeeded(a.id, 0).await,
        Err(StoreError::CredentialsChanged)
    ));
    // Once only.
    assert!(matches!(
        b.records
            .finish_recovery(r.id, &recovery_finish(None), release)
            .await,
        Err(StoreError::RecoveryClosed)
    ));
    assert!(matches!(
        b.records
            .change_recovery_request(r.id, &RequestChange::Cancel, release)
            .await,
        Err(StoreError::RecoveryClosed)
    ));
    assert_eq!(
        b.records
            .account(a.id)
            .await
            .unwrap()
            .unwrap()
            .credential_epoch,
        1
    );

    // A later recovery under the new deal may keep no referents.
    let r2 = recovery_request(r.handle_key, Some(a.id), Some(&d2), 0, release);
    b.records
        .create_recovery_request(&r2, release)
        .await
        .unwrap();
    decide(b, r2.id, w[0], approve(0), release).await.unwrap();
    decide(b, r2.id, w[1], approve(1), release).await.unwrap();
    let again = b
        .records
        .finish_recovery(r2.id, &recovery_finish(None), release + 1)
        .await
        .unwrap();
    assert_eq!(again.credential_epoch, 2);
    assert!(b.records.recovery_deal(a.id).await.unwrap().is_none());
    assert_eq!(stored_request(b, r2.id).await.state, RequestState::Finished);
    // A handle without an account never finishes.
    let fake = recovery_request(handle_key(), None, None, 0, NOW);
    b.records.create_recovery_request(&fake, NOW).await.unwrap();
    assert!(matches!(
        b.records
            .finish_recovery(fake.id, &recovery_finish(None), NOW)
            .await,
        Err(StoreError::RecoveryClosed)
    ));
}

pub async fn finish_recovery_under_a_replaced_deal_is_refused(b: &Backend) {
    // A request releasable under a deal that is not the account's any more (the state a
    // finish racing a re-deal would see), brought in by an import.
    let a = account("amina", Role::Beneficiary, None);
    let w = account("worker", Role::Worker, None);
    let old = deal(a.id, &[w.id], 1);
    let current = deal(a.id, &[w.id], 1);
    let mut r = recovery_request(handle_key(), Some(a.id), Some(&old), 0, NOW);
    r.approvals.push(Approval {
        referent: w.id,
        sealed_share: b"resealed".to_vec(),
        at: NOW,
    });
    r.releasable_at = Some(NOW);
    r.expires_at = NOW + RELEASE_WINDOW_SECONDS;
    let export = Export {
        accounts: vec![a.clone(), w.clone()],
        recovery_deals: vec![current.clone()],
        recovery_requests: vec![r.clone()],
        ..Export::default()
    };
    b.records.import(&export).await.unwrap();
    assert_eq!(stored_request(b, r.id).await, r);
    assert!(matches!(
        b.records
            .finish_recovery(r.id, &recovery_finish(None), NOW + 1)
            .await,
        Err(StoreError::RecoveryClosed)
    ));
    assert_eq!(
        b.records.recovery_deal(a.id).await.unwrap(),
        Some(current.clone())
    );
    assert_eq!(
        b.records
            .account(a.id)
            .await
            .unwrap()
            .unwrap()
            .credential_epoch,
        0
    );
    assert_eq!(stored_request(b, r.id).await.state, RequestState::Open);

    // Through the trait: approved, then the person deals again before the finish.
    let (p, pw, d1) = person_with_deal(b, "other", 2, 2).await;
    let kept = hash(63);
    b.records
        .put_session(&kept, &session(p.id, NOW + 3600, 0))
        .await
        .unwrap();
    let pr = open_request(b, &p, &d1, 0).await;
    decide(b, pr.id, pw[0], approve(0), NOW).await.unwrap();
    decide(b, pr.id, pw[1], approve(1), NOW).await.unwrap();
    stored_request(b, pr.id)
        .await
        .check_releasable(NOW)
        .unwrap();
    let d2 = deal(p.id, &pw, 2);
    b.records.put_recovery_deal(&d2, NOW + 1).await.unwrap();
    assert!(matches!(
        b.records
            .finish_recovery(pr.id, &recovery_finish(None), NOW + 2)
            .await,
        Err(StoreError::RecoveryClosed)
    ));
    assert_eq!(b.records.recovery_deal(p.id).await.unwrap(), Some(d2));
    assert_eq!(
        b.records
            .account(p.id)
            .await
            .unwrap()
            .unwrap()
            .credential_epoch,
        0
    );
    assert!(b.records.session(&kept).await.unwrap().is_some());
    assert_eq!(
        stored_request(b, pr.id).await.state,
        RequestState::Cancelled
    );
}

pub async fn recovery_requests_of_and_for_list_newest_first(b: &Backend) {
    let (a, aw, ad) = person_with_deal(b, "amina", 2, 2).await;
    let p = person(b, "other").await;
    // Other shares amina's first referent and has one of their own.
    let own = account("other-referent", Role::Worker, None);
    b.records.create_account(&own).await.unwrap();
    let pd = deal(p.id, &[aw[0], own.id], 2);
    b.records.put_recovery_deal(&pd, NOW).await.unwrap();
    let handle = handle_key();
    let a_old = recovery_request(handle, Some(a.id), Some(&ad), 0, NOW - 100);
    b.records
        .create_recovery_request(&a_old, NOW - 100)
        .await
        .unwrap();
    b.records
        .change_recovery_request(a_old.id, &RequestChange::Cancel, NOW - 90)
        .await
        .unwrap();
    let a_new = recovery_request(handle, Some(a.id), Some(&ad), 0, NOW);
    b.records
        .create_recovery_request(&a_new, NOW)
        .await
        .unwrap();
    let p_req = recovery_request(handle_key(), Some(p.id), Some(&pd), 0, NOW - 50);
    b.records
        .create_recovery_request(&p_req, NOW - 50)
        .await
        .unwrap();
    let fake = recovery_request(handle_key(), None, None, 0, NOW);
    b.records.create_recovery_request(&fake, NOW).await.unwrap();

    let ids = |v: Vec<RecoveryRequest>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let of_a = b.records.recovery_requests_of(a.id).await.unwrap();
    assert_eq!(
        ids(of_a.clone()),
        vec![a_new.id, a_old.id],
        "closed ones too"
    );
    assert_eq!(of_a[0], a_new);
    assert_eq!(
        ids(b.records.recovery_requests_of(p.id).await.unwrap()),
        vec![p_req.id]
    );
    assert!(b
        .records
        .recovery_requests_of(aw[0])
        .await
        .unwrap()
        .is_empty());
    assert!(b
        .records
        .recovery_requests_of(id())
        .await
        .unwrap()
        .is_empty());

    let for_ = |referent: Id, now: u64| {
        let records = Arc::clone(&b.records);
        async move { ids(records.recovery_requests_for(referent, now).await.unwrap()) }
    };
    assert_eq!(
        for_(aw[0], NOW).await,
        vec![a_new.id, p_req.id],
        "open ones only"
    );
    assert_eq!(for_(aw[1], NOW).await, vec![a_new.id]);
    assert_eq!(for_(own.id, NOW).await, vec![p_req.id]);
    assert!(for_(a.id, NOW).await.is_empty());
    assert!(for_(id(), NOW).await.is_empty());
    // Once other's request expired (it was made earlier), it leaves the lists of requests
    // to answer, not other's own list.
    assert_eq!(for_(aw[0], p_req.expires_at).await, vec![a_new.id]);
    assert!(for_(aw[0], a_new.expires_at).await.is_empty());
    assert_eq!(b.records.recovery_requests_of(p.id).await.unwrap().len(), 1);
    // A decision shows in the lists; a closed request leaves the referents'.
    decide(b, p_req.id, own.id, Decision::Refuse, NOW)
        .await
        .unwrap();
    assert!(for_(own.id, NOW).await.is_empty());
    assert_eq!(
        b.records.recovery_requests_of(p.id).await.unwrap()[0].state,
        RequestState::Refused
    );
    assert_eq!(for_(aw[0], NOW).await, vec![a_new.id]);
}

pub async fn sweep_removes_old_closed_recovery_requests_only(b: &Backend) {
    let (a, w, d) = person_with_deal(b, "amina", 2, 2).await;
    let cancelled = open_request(b, &a, &d, 0).await;
    b.records
        .change_recovery_request(cancelled.id, &RequestChange::Cancel, NOW)
        .await
        .unwrap();
    let long_ago = NOW - REQUEST_OPEN_SECONDS - 10;
    let expired = recovery_request(handle_key(), Some(a.id), Some(&d), 0, long_ago);
    b.records
        .create_recovery_request(&expired, long_ago)
        .await
        .unwrap();
    let open = open_request(b, &a, &d, 0).await;
    decide(b, open.id, w[0], approve(0), NOW).await.unwrap();
    let fake = recovery_request(handle_key(), None, None, 0, NOW);
    b.records.create_recovery_request(&fake, NOW).await.unwrap();

    let count = |now: u64| {
        let records = Arc::clone(&b.records);
        async move { records.sweep(now, 0).await.unwrap().recovery_requests }
    };
    assert_eq!(count(NOW).await, 0);
    assert_eq!(count(NOW + KEEP_CLOSED_SECONDS - 11).await, 0);
    // The expired one a while after its expiry, the cancelled one a while after its close.
    assert_eq!(count(NOW + KEEP_CLOSED_SECONDS - 10).await, 1);
    assert!(b
        .records
        .recovery_request(expired.id)
        .await
        .unwrap()
        .is_none());
    assert!(b
        .records
        .recovery_request(cancelled.id)
        .await
        .unwrap()
        .is_some());
    assert_eq!(count(NOW + KEEP_CLOSED_SECONDS).await, 1);
    assert!(b
        .records
        .recovery_request(cancelled.id)
        .await
        .unwrap()
        .is_none());
    // Open ones stay, and stay pending for their handle.
    let kept = stored_request(b, open.id).await;
    assert_eq!(kept.approvals.len(), 1);
    assert!(b.records.recovery_request(fake.id).await.unwrap().is_some());
    assert!(matches!(
        b.records
            .create_recovery_request(
                &recovery_request(open.handle_key, Some(a.id), Some(&d), 0, NOW + 1),
                NOW + 1
            )
            .await,
        Err(StoreError::RecoveryPending)
    ));
    assert_eq!(b.records.recovery_requests_of(a.id).await.unwrap().len(), 1);
    // Until they too expired long enough ago.
    assert_eq!(count(open.expires_at + KEEP_CLOSED_SECONDS).await, 2);
    assert!(b
        .records
        .recovery_requests_of(a.id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        b.records.recovery_deal(a.id).await.unwrap(),
        Some(d),
        "deals are not swept"
    );
}

pub async fn organisation_recovery_delay_is_kept(b: &Backend) {
    let (org, _) = org_with_invite(b, NOW + 10).await;
    assert_eq!(
        b.records
            .org(org.id)
            .await
            .unwrap()
            .unwrap()
            .recovery_delay_seconds,
        None
    );
    let set = b
        .records
        .set_org_recovery_delay(org.id, Some(86_400))
        .await
        .unwrap();
    assert_eq!(
        (set.id, set.name.as_str(), set.recovery_delay_seconds),
        (org.id, "Relais", Some(86_400))
    );
    assert_same(&b.records.org(org.id).await.unwrap().unwrap(), &set);
    let cleared = b
        .records
        .set_org_recovery_delay(org.id, None)
        .await
        .unwrap();
    assert_eq!(cleared.recovery_delay_seconds, None);
    assert_eq!(
        b.records
            .org(org.id)
            .await
            .unwrap()
            .unwrap()
            .recovery_delay_seconds,
        None
    );
    assert!(matches!(
        b.records.set_org_recovery_delay(id(), Some(1)).await,
        Err(StoreError::NotFound)
    ));
    assert!(b.records.org(id()).await.unwrap().is_none());
    // Stored with the organisation itself, too.
    let other = Org {
        id: id(),
        name: "CCAS".into(),
        created_at: NOW,
        recovery_delay_seconds: Some(0),
    };
    b.records.put_org(&other).await.unwrap();
    assert_same(&b.records.org(other.id).await.unwrap().unwrap(), &other);
}

pub async fn recovery_code_is_replaced(b: &Backend) {
    let a = person(b, "amina").await;
    let kept = hash(70);
    b.records
        .put_session(&kept, &session(a.id, NOW + 3600, 0))
        .await
        .unwrap();
    let after = b
        .records
        .replace_recovery_code(a.id, b"kit two bundle", &[0x42; 32])
        .await
        .unwrap();
    assert_eq!(
        after.recovery_bundle.as_deref(),
        Some(&b"kit two bundle"[..])
    );
    assert_eq!(after.recovery_verifier.as_deref(), Some(&[0x42; 32][..]));
    let stored = b.records.account(a.id).await.unwrap().unwrap();
    assert_same(&stored, &after);
    // Nothing else moves: not the login, not the sessions.
    assert_eq!(stored.password_file, a.password_file);
    assert_eq!(stored.bundle, a.bundle);
    assert_eq!(stored.credential_epoch, 0);
    assert!(b.records.session(&kept).await.unwrap().is_some());
    let again = b
        .records
        .replace_recovery_code(a.id, b"kit three", b"v3")
        .await
        .unwrap();
    assert_eq!(again.recovery_bundle.as_deref(), Some(&b"kit three"[..]));
    assert_eq!(again.recovery_verifier.as_deref(), Some(&b"v3"[..]));
    assert!(matches!(
        b.records.replace_recovery_code(id(), b"x", b"y").await,
        Err(StoreError::NotFound)
    ));
}

pub async fn disabling_ends_sessions_and_shares_and_refuses_new_ones(b: &Backend) {
    let a = person(b, "amina").await;
    let w = person(b, "worker").await;
    let doc = committed(b, a.id, 20).await;
    let own = committed(b, w.id, 20).await;
    b.records
        .put_envelope(doc.id, w.id, &envelope_record(a.id, None))
        .await
        .unwrap();
    for i in 0..3 {
        b.records
            .put_session(&hash(80 + i), &session(w.id, NOW + 3600, 0))
            .await
            .unwrap();
    }
    let kept = hash(90);
    b.records
        .put_session(&kept, &session(a.id, NOW + 3600, 0))
        .await
        .unwrap();
    let disabled = b.records.disable_account(w.id, NOW).await.unwrap();
    assert_eq!(disabled.disabled_at, Some(NOW));
    // Kept from the first time.
    let again = b.records.disable_account(w.id, NOW + 5).await.unwrap();
    assert_eq!(again.disabled_at, Some(NOW));
    assert_eq!(
        b.records.account(w.id).await.unwrap().unwrap().disabled_at,
        Some(NOW)
    );
    for i in 0..3 {
        assert!(b.records.session(&hash(80 + i)).await.unwrap().is_none());
    }
    assert!(
        b.records.session(&kept).await.unwrap().is_some(),
        "others' sessions stay"
    );
    assert!(b.records.envelope(doc.id, w.id).await.unwrap().is_none());
    assert!(b.records.shared_with(w.id).await.unwrap().is_empty());
    // Their own document keeps its owner's envelope.
    assert!(b.records.envelope(own.id, w.id).await.unwrap().is_some());
    assert!(matches!(
        b.records
            .put_envelope(doc.id, w.id, &envelope_record(a.id, None))
            .await,
        Err(StoreError::RecipientNotFound)
    ));
    assert!(matches!(
        b.records.disable_account(id(), NOW).await,
        Err(StoreError::NotFound)
    ));
    // It survives a copy.
    let export = b.records.export().await.unwrap();
    let copied = export.accounts.iter().find(|x| x.id == w.id).unwrap();
    assert_eq!(copied.disabled_at, Some(NOW));
}

pub async fn deals_naming_a_referent(b: &Backend) {
    let a = person(b, "amina").await;
    let c = person(b, "celine").await;
    let (r1, r2, r3) = (
        person(b, "ref.one").await,
        person(b, "ref.two").await,
        person(b, "ref.three").await,
    );
    b.records
        .put_recovery_deal(&deal(a.id, &[r1.id, r2.id], 2), NOW)
        .await
        .unwrap();
    b.records
        .put_recovery_deal(&deal(c.id, &[r2.id, r3.id], 1), NOW)
        .await
        .unwrap();
    let names = |deals: Vec<RecoveryDeal>| {
        let mut v: Vec<Id> = deals.iter().map(|d| d.account).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(b.records.recovery_deals_naming(r1.id).await.unwrap()),
        [a.id]
    );
    let mut both = vec![a.id, c.id];
    both.sort();
    assert_eq!(
        names(b.records.recovery_deals_naming(r2.id).await.unwrap()),
        both
    );
    assert_eq!(
        names(b.records.recovery_deals_naming(r3.id).await.unwrap()),
        [c.id]
    );
    assert!(b
        .records
        .recovery_deals_naming(a.id)
        .await
        .unwrap()
        .is_empty());
    // A new deal without r1 drops it.
    b.records
        .put_recovery_deal(&deal(a.id, &[r2.id, r3.id], 2), NOW)
        .await
        .unwrap();
    assert!(b
        .records
        .recovery_deals_naming(r1.id)
        .await
        .unwrap()
        .is_empty());
}
