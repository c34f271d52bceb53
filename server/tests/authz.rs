//! The authorization matrix: every document, share and link endpoint × owner, current
//! recipient, revoked recipient, stranger, anonymous, expired session (the anonymous link
//! routes answer everyone alike); and every account endpoint × anonymous, expired
//! session, beneficiary, worker of the same organisation, worker of another
//! organisation, worker of none. Login, registration and recovery, which are anonymous
//! by nature, are covered in login.rs and hostile_json.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_server::store::attempts::handle_key;
use coffre_server::store::{AttemptPolicy, Role};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    Expired,
    Stranger,
    Revoked,
    Recipient,
    Owner,
}

/// Callers in the order they are tried: the owner last, because the owner's call may
/// change the state (delete, revoke).
const ORDER: [Who; 6] = [
    Who::Anonymous,
    Who::Expired,
    Who::Stranger,
    Who::Revoked,
    Who::Recipient,
    Who::Owner,
];

#[tokio::test]
async fn authorization_matrix() {
    let s = TestServer::start().await;
    let owner = s.user("owner", Role::Beneficiary, None).await;
    let recipient = s.user("recipient", Role::Worker, None).await;
    let revoked = s.user("revoked", Role::Worker, None).await;
    let stranger = s.user("stranger", Role::Beneficiary, None).await;
    let third = s.user("third", Role::Worker, None).await;
    // A session of the owner that has expired.
    let expired = s.session_for(owner.id(), 10).await;

    let (doc, payload, own_env) = s.upload(&owner, &plaintext(1000)).await;
    s.share(&owner, &doc, &own_env, &recipient, None).await;
    s.share(&owner, &doc, &own_env, &revoked, None).await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{doc}/envelopes/{}", revoked.id()),
            Some(&owner.token),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let link_env = own_env
        .rewrap(
            std::slice::from_ref(&owner.identity),
            &coffre_core::Identity::generate().unwrap().to_recipient(),
        )
        .unwrap();
    let third_env = own_env
        .rewrap(
            std::slice::from_ref(&owner.identity),
            &third.identity.to_recipient(),
        )
        .unwrap();
    let link: Value = s
        .req(
            Method::POST,
            &format!("/v1/documents/{doc}/links"),
            Some(&owner.token),
        )
        .json(&json!({"envelope": b64(link_env.as_bytes())}))
        .value()
        .await;
    let link_id = link["id"].as_str().unwrap().to_owned();
    // Links for the anonymous routes: one unlimited, one used up by its single opening.
    let new_link = |body: Value| {
        s.req(
            Method::POST,
            &format!("/v1/documents/{doc}/links"),
            Some(&owner.token),
        )
        .json(&body)
        .send()
    };
    let open_id = new_link(json!({"envelope": b64(link_env.as_bytes())}))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let used_id = new_link(json!({"envelope": b64(link_env.as_bytes()), "max_downloads": 1}))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let used_grant = s
        .link_grant(&used_id, &common::grant_id(1))
        .sent()
        .await
        .json::<Value>()
        .await
        .unwrap()["download_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let open_grant = s
        .link_grant(&open_id, &common::grant_id(1))
        .sent()
        .await
        .json::<Value>()
        .await
        .unwrap()["download_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.advance(60);

    let token = |who: Who| -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Expired => Some(expired.clone()),
            Who::Stranger => Some(stranger.token.clone()),
            Who::Revoked => Some(revoked.token.clone()),
            Who::Recipient => Some(recipient.token.clone()),
            Who::Owner => Some(owner.token.clone()),
        }
    };
    use StatusCode as S;
    const U: S = S::UNAUTHORIZED;
    const NF: S = S::NOT_FOUND;
    const FB: S = S::FORBIDDEN;
    // Signed-in routes: anonymous and expired sessions are 401, then [stranger, revoked,
    // recipient, owner].
    let signed = |[a, b, c, d]: [S; 4]| [U, U, a, b, c, d];
    // Anonymous routes: the same answer for everyone, an expired session included.
    let anyone = |x: S| [x; 6];
    let d = &doc;
    let env_body = json!({"envelope": b64(third_env.as_bytes())});
    let link_body = json!({"envelope": b64(link_env.as_bytes())});
    let doc_body = json!({
        "metadata": b64(b"sealed"),
        "size": payload.len(),
        "envelope": b64(own_env.as_bytes()),
    });
    // (method, path, body, [anonymous, expired, stranger, revoked, recipient, owner]).
    let cases: Vec<(Method, String, Option<Value>, [S; 6])> = vec![
        (
            Method::POST,
            "/v1/documents".into(),
            Some(doc_body),
            signed([S::CREATED, S::CREATED, S::CREATED, S::CREATED]),
        ),
        (
            Method::GET,
            format!("/v1/links/{open_id}"),
            None,
            anyone(S::OK),
        ),
        (
            Method::POST,
            format!("/v1/links/{open_id}/grants"),
            Some(json!({"grant": common::grant_id(2)})),
            anyone(S::OK),
        ),
        (
            Method::POST,
            format!("/v1/links/{used_id}/grants"),
            Some(json!({"grant": common::grant_id(2)})),
            anyone(S::GONE),
        ),
        (
            Method::POST,
            format!("/v1/links/{used_id}/grants"),
            Some(json!({"grant": common::grant_id(1)})),
            anyone(S::OK),
        ),
        (
            Method::GET,
            format!("/v1/links/{open_id}/payload?grant={open_grant}"),
            None,
            anyone(S::OK),
        ),
        (
            Method::GET,
            format!("/v1/links/{open_id}/payload"),
            None,
            anyone(S::CONFLICT),
        ),
        (
            Method::GET,
            format!("/v1/links/{used_id}"),
            None,
            anyone(S::GONE),
        ),
        (
            Method::GET,
            format!("/v1/links/{used_id}/payload?grant={used_grant}"),
            None,
            anyone(S::OK),
        ),
        (
            Method::GET,
            format!("/v1/links/{used_id}/payload"),
            None,
            anyone(S::GONE),
        ),
        (
            Method::GET,
            format!("/v1/links/{used_id}/payload?grant={open_grant}"),
            None,
            anyone(S::GONE),
        ),
        (
            Method::GET,
            format!("/v1/links/{}", "99".repeat(16)),
            None,
            anyone(NF),
        ),
        (
            Method::GET,
            format!("/v1/links/{}/payload?grant={open_grant}", "99".repeat(16)),
            None,
            anyone(NF),
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}"),
            None,
            signed([NF, NF, S::OK, S::OK]),
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/payload"),
            None,
            signed([NF, NF, S::OK, S::OK]),
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/upload"),
            None,
            signed([NF, NF, FB, S::OK]),
        ),
        (
            Method::PATCH,
            format!("/v1/documents/{d}/payload?offset={}", payload.len()),
            None,
            signed([NF, NF, FB, S::CONFLICT]),
        ),
        (
            Method::POST,
            format!("/v1/documents/{d}/commit"),
            None,
            signed([NF, NF, FB, S::CONFLICT]),
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/envelopes"),
            None,
            signed([NF, NF, FB, S::OK]),
        ),
        (
            Method::PUT,
            format!("/v1/documents/{d}/envelopes/{}", third.id()),
            Some(env_body),
            signed([NF, NF, FB, S::NO_CONTENT]),
        ),
        (
            Method::DELETE,
            format!("/v1/documents/{d}/envelopes/{}", third.id()),
            None,
            signed([NF, NF, FB, S::NO_CONTENT]),
        ),
        (
            Method::POST,
            format!("/v1/documents/{d}/links"),
            Some(link_body),
            signed([NF, NF, FB, S::CREATED]),
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/links"),
            None,
            signed([NF, NF, FB, S::OK]),
        ),
        (
            Method::DELETE,
            format!("/v1/links/{link_id}"),
            None,
            signed([NF, NF, FB, S::NO_CONTENT]),
        ),
        (
            Method::GET,
            "/v1/documents".into(),
            None,
            signed([S::OK, S::OK, S::OK, S::OK]),
        ),
        (
            Method::GET,
            "/v1/shared".into(),
            None,
            signed([S::OK, S::OK, S::OK, S::OK]),
        ),
        (
            Method::GET,
            "/v1/me".into(),
            None,
            signed([S::OK, S::OK, S::OK, S::OK]),
        ),
        // A person's key: to whom they share with (the revoked share no longer counts),
        // and themselves; a worker's: to everyone signed in.
        (
            Method::GET,
            "/v1/keys/owner".into(),
            None,
            signed([NF, NF, S::OK, S::OK]),
        ),
        (
            Method::GET,
            "/v1/keys/recipient".into(),
            None,
            signed([S::OK, S::OK, S::OK, S::OK]),
        ),
        (
            Method::POST,
            format!("/v1/accounts/{}/unlock", owner.id()),
            None,
            signed([FB, FB, FB, FB]),
        ),
        (
            Method::DELETE,
            format!("/v1/documents/{d}"),
            None,
            signed([NF, NF, FB, S::NO_CONTENT]),
        ),
    ];
    for (method, path, body, expected) in cases {
        for who in ORDER {
            let want = expected[who as usize];
            let mut req = s.req(method.clone(), &path, token(who).as_deref());
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, want, "{method} {path} as {who:?}: {text}");
            // Denials never echo what they protect.
            if !status.is_success() {
                assert!(
                    !text.contains(&own_env_b64(&own_env)),
                    "{method} {path} leaked an envelope"
                );
            }
        }
    }
    // Listings reveal nothing to the wrong people.
    for who in [Who::Stranger, Who::Revoked] {
        let v: Value = s
            .req(Method::GET, "/v1/shared", token(who).as_deref())
            .value()
            .await;
        assert_eq!(v, json!([]), "{who:?}");
    }
    // The expired session was deleted on first use.
    assert!(s
        .store
        .session(&coffre_server::auth::hash_token(&expired).unwrap())
        .await
        .unwrap()
        .is_none());
}

fn own_env_b64(e: &coffre_core::Envelope) -> String {
    b64(e.as_bytes())
}

/// Who calls an account route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Anonymous,
    /// An expired session of the same-organisation worker.
    Expired,
    /// A beneficiary of organisation A.
    Beneficiary,
    /// A worker of organisation A.
    WorkerA,
    /// A worker of organisation B.
    WorkerB,
    /// A worker of no organisation.
    Orphan,
}

const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Expired,
    Caller::Beneficiary,
    Caller::WorkerA,
    Caller::WorkerB,
    Caller::Orphan,
];

/// A real client registration for `pass`: (account id, registration upload, bundle).
async fn registration(s: &TestServer, pass: &[u8]) -> (String, Vec<u8>, Vec<u8>) {
    use coffre_core::bundle::KeyBundle;
    use coffre_core::opaque::{ClientRegistration, KSF_V1};
    let (client, request) = ClientRegistration::start(pass).unwrap();
    let started: Value = s
        .req(Method::POST, "/v1/registrations/start", None)
        .json(&json!({"registration_request": b64(&request)}))
        .value()
        .await;
    let id = started["account_id"].as_str().unwrap().to_owned();
    let (upload, export_key) = client
        .finish(
            pass,
            &unb64(started["registration_response"].as_str().unwrap()),
            KSF_V1,
        )
        .unwrap();
    let identity = coffre_core::Identity::generate().unwrap();
    let bundle = KeyBundle::seal_with_export_key(&identity, &export_key, &id).unwrap();
    (id, upload, bundle.to_bytes())
}

#[tokio::test]
async fn key_look_ups_are_budgeted_per_account() {
    let s = TestServer::start().await;
    let worker = s.user("worker", Role::Worker, None).await;
    let person = s.user("person", Role::Beneficiary, None).await;
    let other = s.user("other", Role::Beneficiary, None).await;
    let look = async |who: &common::User, handle: &str| {
        s.req(Method::GET, &format!("/v1/keys/{handle}"), Some(&who.token))
            .sent()
            .await
    };
    // The minute's budget is spent alike by found and unknown handles.
    for i in 0..30 {
        let handle = if i % 2 == 0 { "worker" } else { "nobody.here" };
        let status = look(&person, handle).await.status();
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "look-up {i}");
    }
    let r = look(&person, "worker").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "/problems/too-many-lookups");
    assert_eq!(body["retry_after"], wait);
    // Another account has its own budget; the next minute gives the person some back.
    assert_eq!(look(&other, "worker").await.status(), StatusCode::OK);
    s.advance(wait);
    assert_eq!(look(&person, "worker").await.status(), StatusCode::OK);
    // And the day's: 300 (waiting out each minute's), then nothing until the day ends.
    let mut answered = 0;
    loop {
        let r = look(&worker, "person").await;
        if r.status() != StatusCode::TOO_MANY_REQUESTS {
            answered += 1;
            assert!(answered <= 300, "past the day's budget");
            continue;
        }
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if wait > 60 {
            break;
        }
        s.advance(wait);
    }
    assert_eq!(answered, 300, "the day's budget");
}

#[tokio::test]
async fn account_routes_matrix() {
    use coffre_core::opaque::ClientRegistration;
    use coffre_server::admin;
    use coffre_server::store::Id;
    let s = TestServer::start().await;
    let org_a = admin::create_org(s.store.as_ref(), "CCAS Nord", s.now())
        .await
        .unwrap();
    let org_b = admin::create_org(s.store.as_ref(), "Accueil Sud", s.now())
        .await
        .unwrap();
    let beneficiary = s.user("amina", Role::Beneficiary, Some(org_a.id)).await;
    let worker_a = s.user("worker.a", Role::Worker, Some(org_a.id)).await;
    let worker_b = s.user("worker.b", Role::Worker, Some(org_b.id)).await;
    let orphan = s.user("orphan", Role::Worker, None).await;
    let expired = s.session_for(worker_a.id(), 10).await;
    s.advance(60);
    let account = |who: Caller| match who {
        Caller::Anonymous => None,
        Caller::Expired | Caller::WorkerA => Some(worker_a.id()),
        Caller::Beneficiary => Some(beneficiary.id()),
        Caller::WorkerB => Some(worker_b.id()),
        Caller::Orphan => Some(orphan.id()),
    };
    // A fresh session per request, so that logging out or changing a passphrase in one
    // row does not change the next; the expired one is always the same.
    let token = async |who: Caller| -> Option<String> {
        match (who, account(who)) {
            (Caller::Anonymous, _) => None,
            (Caller::Expired, _) => Some(expired.clone()),
            (_, Some(id)) => Some(s.session_for(id, 3600).await),
            (_, None) => None,
        }
    };
    let send = async |who: Caller, method: Method, path: String, body: Option<Value>| {
        let token = token(who).await;
        let mut r = s.req(method, &path, token.as_deref());
        if let Some(b) = body {
            r = r.json(&b);
        }
        {
            let r = r.send().await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            (status, text, token)
        }
    };
    use StatusCode as S;
    const U: S = S::UNAUTHORIZED;
    const FB: S = S::FORBIDDEN;

    // Creating a beneficiary: workers of an organisation only, in their organisation.
    let want = [U, U, FB, S::CREATED, S::CREATED, FB];
    for (who, want) in CALLERS.into_iter().zip(want) {
        let (id, upload, bundle) = if want == S::CREATED {
            registration(&s, b"pin").await
        } else {
            ("00".repeat(16), vec![0; 10], vec![0; 10])
        };
        let handle = format!("new.{}", format!("{who:?}").to_lowercase());
        let body = json!({"consent": true, "account": {
            "account_id": id, "handle": handle, "registration_upload": b64(&upload),
            "public_key": beneficiary.account.public_key, "bundle": b64(&bundle),
        }});
        let (status, text, _) =
            send(who, Method::POST, "/v1/beneficiaries".into(), Some(body)).await;
        assert_eq!(status, want, "beneficiaries as {who:?}: {text}");
        if want == S::CREATED {
            let created = s.store.account_by_handle(&handle).await.unwrap().unwrap();
            let org = if who == Caller::WorkerA {
                org_a.id
            } else {
                org_b.id
            };
            assert_eq!(created.org, Some(org), "{who:?}");
            assert_eq!(created.created_by, account(who));
        } else {
            assert!(s.store.account_by_handle(&handle).await.unwrap().is_none());
        }
    }

    // Unlocking: a worker of the account's own organisation only.
    // Throttled as ten failed logins from strangers' devices throttle it.
    let policy = AttemptPolicy::default();
    const NOW: u64 = 1_900_000_000;
    let budget_of = async |id: Id| {
        let handle = s.store.account(id).await.unwrap().unwrap().handle;
        handle_key(&handle)
    };
    let lock = async |id: Id| {
        let key = budget_of(id).await;
        while s
            .store
            .count_login_attempt(&key, NOW, &policy)
            .await
            .is_ok()
        {}
    };
    for (target, want) in [
        // A beneficiary of organisation A.
        (beneficiary.id(), [U, U, FB, S::NO_CONTENT, FB, FB]),
        // A worker of organisation A (unlocking themselves included).
        (worker_a.id(), [U, U, FB, S::NO_CONTENT, FB, FB]),
        // A worker of no organisation: nobody's to unlock.
        (orphan.id(), [U, U, FB, FB, FB, FB]),
    ] {
        for (who, want) in CALLERS.into_iter().zip(want) {
            lock(target).await;
            let (status, text, _) = send(
                who,
                Method::POST,
                format!("/v1/accounts/{target}/unlock"),
                None,
            )
            .await;
            assert_eq!(status, want, "unlock {target} as {who:?}: {text}");
            let after = s
                .store
                .login_budget(&budget_of(target).await)
                .await
                .unwrap();
            assert_eq!(after.is_none(), want == S::NO_CONTENT, "{who:?}");
        }
    }
    let unknown = format!("/v1/accounts/{}/unlock", "77".repeat(16));
    for (who, want) in CALLERS
        .into_iter()
        .zip([U, U, FB, S::NOT_FOUND, S::NOT_FOUND, FB])
    {
        let (status, text, _) = send(who, Method::POST, unknown.clone(), None).await;
        assert_eq!(
            status, want,
            "unlock of an unknown account as {who:?}: {text}"
        );
    }

    // Reading one's own account and public keys: a worker's for any session; a person's
    // for themselves and the workers of their structure, and for nobody else, who is
    // told exactly what a handle nobody has gets.
    const OK: S = S::OK;
    const NF: S = S::NOT_FOUND;
    for (path, wants) in [
        ("/v1/me".to_owned(), [U, U, OK, OK, OK, OK]),
        ("/v1/keys/worker.b".to_owned(), [U, U, OK, OK, OK, OK]),
        ("/v1/keys/amina".to_owned(), [U, U, OK, OK, NF, NF]),
        ("/v1/keys/nobody.here".to_owned(), [U, U, NF, NF, NF, NF]),
    ] {
        for (who, want) in CALLERS.into_iter().zip(wants) {
            let (status, text, _) = send(who, Method::GET, path.clone(), None).await;
            assert_eq!(status, want, "GET {path} as {who:?}: {text}");
            if want == NF {
                assert_eq!(
                    serde_json::from_str::<Value>(&text).unwrap(),
                    json!({"type": "/problems/not-found", "title": "Not found", "status": 404}),
                    "{who:?}"
                );
            }
            if path == "/v1/me" && want == S::OK {
                let me: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(me["id"], account(who).unwrap().to_string(), "{who:?}");
            }
        }
    }

    // Logout: ends the caller's own session, and only that one.
    for who in CALLERS {
        let other = match account(who) {
            Some(id) => Some(s.session_for(id, 3600).await),
            None => None,
        };
        let (status, text, used) = send(who, Method::POST, "/v1/logout".into(), None).await;
        match who {
            Caller::Anonymous | Caller::Expired => assert_eq!(status, U, "{who:?}: {text}"),
            _ => {
                assert_eq!(status, S::NO_CONTENT, "{who:?}: {text}");
                let r = s.req(Method::GET, "/v1/me", used.as_deref()).sent().await;
                assert_eq!(r.status(), U, "{who:?}: logged out session still works");
            }
        }
        if let Some(other) = other {
            let r = s.req(Method::GET, "/v1/me", Some(&other)).sent().await;
            assert_eq!(r.status(), S::OK, "{who:?}: another session was ended");
        }
    }

    // Changing the passphrase: any session, for its own account only.
    for who in CALLERS {
        let (client, request) = ClientRegistration::start(b"new pin").unwrap();
        let (status, text, used) = send(
            who,
            Method::POST,
            "/v1/me/passphrase/start".into(),
            Some(json!({"registration_request": b64(&request)})),
        )
        .await;
        let mut epochs_before: Vec<u64> = Vec::new();
        for id in [beneficiary.id(), worker_a.id(), worker_b.id(), orphan.id()] {
            epochs_before.push(s.store.account(id).await.unwrap().unwrap().credential_epoch);
        }
        if matches!(who, Caller::Anonymous | Caller::Expired) {
            assert_eq!(status, U, "passphrase start as {who:?}: {text}");
            let (status, text, _) = send(
                who,
                Method::POST,
                "/v1/me/passphrase".into(),
                Some(json!({"registration_upload": b64(&[0; 192]), "bundle": b64(&[0; 62])})),
            )
            .await;
            assert_eq!(status, U, "passphrase finish as {who:?}: {text}");
            continue;
        }
        assert_eq!(status, S::OK, "passphrase start as {who:?}: {text}");
        let started: Value = serde_json::from_str(&text).unwrap();
        let id = account(who).unwrap().to_string();
        let (upload, export_key) = client
            .finish(
                b"new pin",
                &unb64(started["registration_response"].as_str().unwrap()),
                coffre_core::opaque::KSF_V1,
            )
            .unwrap();
        let identity = coffre_core::Identity::generate().unwrap();
        let bundle =
            coffre_core::bundle::KeyBundle::seal_with_export_key(&identity, &export_key, &id)
                .unwrap()
                .to_bytes();
        let r = s
            .req(Method::POST, "/v1/me/passphrase", used.as_deref())
            .json(&json!({"registration_upload": b64(&upload), "bundle": b64(&bundle)}))
            .sent()
            .await;
        assert_eq!(r.status(), S::NO_CONTENT, "passphrase finish as {who:?}");
        let mut epochs_after: Vec<u64> = Vec::new();
        for id in [beneficiary.id(), worker_a.id(), worker_b.id(), orphan.id()] {
            epochs_after.push(s.store.account(id).await.unwrap().unwrap().credential_epoch);
        }
        for (i, (b, a)) in epochs_before.iter().zip(&epochs_after).enumerate() {
            let own = [beneficiary.id(), worker_a.id(), worker_b.id(), orphan.id()][i]
                == account(who).unwrap();
            assert_eq!(*a, b + u64::from(own), "{who:?} changed account {i}");
        }
    }
}
