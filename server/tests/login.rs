//! Organisations, invites, OPAQUE registration and login, login budgets (strangers'
//! tries never shut out the person's own device) and unlock, and the offline-guessing
//! property of a stolen store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_core::bundle::KeyBundle;
use coffre_core::opaque::{self, ClientLogin, ClientRegistration, ServerSetup, KSF_V1};
use coffre_core::recovery::RecoveryCode;
use coffre_core::Identity;
use coffre_server::{admin, Limits};
use common::accounts::{login, login_from, register, register_with_code};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A login start with no finish: what an attacker testing one guess offline does.
async fn attempt(s: &TestServer, handle: &str) -> reqwest::Response {
    let (_client, request) = ClientLogin::start(b"guess").unwrap();
    s.req(Method::POST, "/v1/login/start", None)
        .json(&json!({"handle": handle, "login_request": b64(&request)}))
        .sent()
        .await
}

/// Sends login starts for `handle` (from a device without a credential), waiting out
/// each 429 as told, until the budget's window would have to end; returns the
/// `attempts_left` of every counted start and the last refusal's `retry_after`.
async fn spend_budget(s: &TestServer, handle: &str) -> (Vec<Value>, u64) {
    let mut counted = Vec::new();
    let window_end = s.now() + 86_400;
    loop {
        let r = attempt(s, handle).await;
        if r.status() == StatusCode::OK {
            let started: Value = r.json().await.unwrap();
            counted.push(started["attempts_left"].clone());
            continue;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let header: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["type"], "/problems/login-throttled");
        assert_eq!(body["retry_after"], header, "header and body agree");
        assert!(header >= 1);
        if s.now() + header >= window_end {
            return (counted, header);
        }
        s.advance(header);
    }
}

#[tokio::test]
async fn register_login_budget_and_unlock_by_same_organisation_only() {
    let s = TestServer::start().await;
    let now = s.now();
    let org_a = admin::create_org(s.store.as_ref(), "CCAS Nord", now)
        .await
        .unwrap();
    let org_b = admin::create_org(s.store.as_ref(), "Accueil Sud", now)
        .await
        .unwrap();
    let invite_a = admin::create_invite(s.store.as_ref(), org_a.id, now)
        .await
        .unwrap();
    let invite_b = admin::create_invite(s.store.as_ref(), org_b.id, now)
        .await
        .unwrap();

    let (w1_id, _) = register(&s, "worker.a", "w1 pass", Some(&invite_a), None).await;
    let (w1_status, w1_login, _) = login(&s, "worker.a", "w1 pass").await;
    assert_eq!(w1_status, StatusCode::OK, "{w1_login}");
    assert_eq!(w1_login["account"]["id"], w1_id);
    assert_eq!(w1_login["account"]["org"], org_a.id.to_string());
    let w1_token = w1_login["token"].as_str().unwrap().to_owned();

    let (b_id, b_identity) = register(&s, "amina", "1234 5678", None, Some(&w1_token)).await;
    let me: Value = s
        .req(Method::GET, "/v1/keys/amina", Some(&w1_token))
        .value()
        .await;
    assert_eq!(me["public_key"], b_identity.to_recipient().to_string());
    let stored = s
        .store
        .account(b_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.created_by.map(|i| i.to_string()),
        Some(w1_id.clone())
    );
    assert_eq!(stored.org, Some(org_a.id));
    assert_eq!(stored.consent_at, Some(now));

    let (w2_id, _) = register(&s, "worker.b", "w2 pass", Some(&invite_b), None).await;
    let (_, w2_login, _) = login(&s, "worker.b", "w2 pass").await;
    let w2_token = w2_login["token"].as_str().unwrap().to_owned();
    assert_ne!(w1_id, w2_id);

    // Wrong passphrase: 401 invalid-login, the same problem as for an unknown handle.
    let (status, body, _) = login(&s, "amina", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["type"], "/problems/invalid-login");
    let (status, body, _) = login(&s, "nobody.here", "whatever").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["type"], "/problems/invalid-login");

    // A correct login gives its attempt back (the wrong one above stays counted).
    let (status, _, identity) = login(&s, "amina", "1234 5678").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(identity.unwrap().to_recipient(), b_identity.to_recipient());
    // Three tries in a row freely, then a wait before each, growing; 9 more are counted
    // in the day, and only the last few are announced: 3, 2, 1, then 0.
    let start = s.now();
    let r = attempt(&s, "amina").await;
    assert_eq!(r.status(), StatusCode::OK);
    attempt(&s, "amina").await;
    attempt(&s, "amina").await;
    let r = attempt(&s, "amina").await;
    assert_eq!(r.headers()["retry-after"], "30", "the first wait");
    let (counted, last_wait) = spend_budget(&s, "amina").await;
    assert_eq!(counted.len(), 6, "{counted:?}");
    let nulls = vec![Value::Null; 2];
    assert_eq!(counted[..2], nulls[..]);
    assert_eq!(counted[2..], [json!(3), json!(2), json!(1), json!(0)]);
    let elapsed = s.now() - start;
    assert!(
        elapsed > 30 + 60 + 120 + 240 + 480,
        "the waits grew: {elapsed} s"
    );
    // Now even the right passphrase waits, from this unknown device, until the day ends.
    let (status, body, _) = login(&s, "amina", "1234 5678").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["type"], "/problems/login-throttled");
    assert!(body["retry_after"].as_u64().unwrap() <= last_wait);

    // Another organisation's worker cannot unlock; the beneficiary's own organisation can.
    let unlock = format!("/v1/accounts/{b_id}/unlock");
    let r = s.req(Method::POST, &unlock, Some(&w2_token)).sent().await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = s.req(Method::POST, &unlock, Some(&w1_token)).sent().await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body, _) = login(&s, "amina", "1234 5678").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Logout revokes the session.
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        s.req(Method::POST, "/v1/logout", Some(token))
            .sent()
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let r = s.req(Method::GET, "/v1/me", Some(token)).sent().await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn invites_are_single_use_and_beneficiaries_need_a_worker_and_consent() {
    let s = TestServer::start().await;
    let (org, invite) = s.org_with_invite("Relais").await;
    register(&s, "worker.one", "pass", Some(&invite), None).await;

    let (client, request) = ClientRegistration::start(b"pass").unwrap();
    let started: Value = s
        .req(Method::POST, "/v1/registrations/start", None)
        .json(&json!({"registration_request": b64(&request)}))
        .value()
        .await;
    let account_id = started["account_id"].as_str().unwrap();
    let (upload, export_key) = client
        .finish(
            b"pass",
            &unb64(started["registration_response"].as_str().unwrap()),
            KSF_V1,
        )
        .unwrap();
    let identity = Identity::generate().unwrap();
    let bundle = KeyBundle::seal_with_export_key(&identity, &export_key, account_id).unwrap();
    let account = json!({
        "account_id": account_id, "handle": "worker.two", "registration_upload": b64(&upload),
        "public_key": identity.to_recipient().to_string(), "bundle": b64(&bundle.to_bytes()),
    });
    let r = s
        .req(Method::POST, "/v1/workers", None)
        .json(&json!({"invite": invite, "account": account}))
        .sent()
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = s
        .req(Method::POST, "/v1/workers", None)
        .json(&json!({"invite": "made-up", "account": account}))
        .sent()
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // A beneficiary cannot create beneficiaries; consent is required.
    let beneficiary = s
        .user(
            "someone",
            coffre_server::store::Role::Beneficiary,
            Some(org.id),
        )
        .await;
    let r = s
        .req(Method::POST, "/v1/beneficiaries", Some(&beneficiary.token))
        .json(&json!({"consent": true, "account": account}))
        .sent()
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let worker = s
        .user("w", coffre_server::store::Role::Worker, Some(org.id))
        .await;
    let r = s
        .req(Method::POST, "/v1/beneficiaries", Some(&worker.token))
        .json(&json!({"consent": false, "account": account}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    // Hostile field values.
    for (field, value) in [
        ("handle", json!("A")),
        ("handle", json!("amina\u{0}")),
        ("public_key", json!("age1notakey")),
        ("registration_upload", json!(b64(&[0u8; 10]))),
        ("bundle", json!(b64(&[0u8; 62]))),
        ("bundle", json!(b64(&[1u8; 61]))),
        ("account_id", json!("zz")),
    ] {
        let mut bad = account.clone();
        bad[field] = value;
        let r = s
            .req(Method::POST, "/v1/beneficiaries", Some(&worker.token))
            .json(&json!({"consent": true, "account": bad}))
            .sent()
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
    assert!(s
        .store
        .account_by_handle("worker.two")
        .await
        .unwrap()
        .is_none());
    // Taken handle.
    let mut taken = account.clone();
    taken["handle"] = json!("worker.one");
    let r = s
        .req(Method::POST, "/v1/beneficiaries", Some(&worker.token))
        .json(&json!({"consent": true, "account": taken}))
        .sent()
        .await;
    assert_problem(r, StatusCode::CONFLICT, "handle-taken").await;
}

#[tokio::test]
async fn unknown_handles_get_a_well_formed_answer() {
    let s = TestServer::start().await;
    let (_client, request) = ClientLogin::start(b"x").unwrap();
    let r = s
        .req(Method::POST, "/v1/login/start", None)
        .json(&json!({"handle": "nobody", "login_request": b64(&request)}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        unb64(v["login_response"].as_str().unwrap()).len(),
        opaque::LOGIN_RESPONSE_BYTES
    );
    assert_eq!(v["ksf_version"], KSF_V1.version());
    // Malformed KE1.
    let r = s
        .req(Method::POST, "/v1/login/start", None)
        .json(&json!({"handle": "nobody", "login_request": b64(&[1, 2, 3])}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    // Unknown or replayed login ids.
    let r = s
        .req(Method::POST, "/v1/login/finish", None)
        .json(&json!({"login_id": "00".repeat(16), "login_finalization": b64(&[0u8; 64])}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "invalid-login").await;
}

/// One login with a wrong passphrase, as a guessing client runs it: what the server
/// answered at each step (status, problem type, and the shape of a 200).
async fn wrong_login_trace(s: &TestServer, handle: &str) -> Vec<(StatusCode, Value)> {
    let (client, request) = ClientLogin::start(b"not the passphrase").unwrap();
    let r = s
        .req(Method::POST, "/v1/login/start", None)
        .json(&json!({"handle": handle, "login_request": b64(&request)}))
        .sent()
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    if status != StatusCode::OK {
        return vec![(
            status,
            json!({"type": body["type"], "retry_after": body["retry_after"]}),
        )];
    }
    let response = unb64(body["login_response"].as_str().unwrap());
    let shape = json!({
        "fields": body.as_object().unwrap().keys().collect::<Vec<_>>(),
        "login_response": response.len(),
        "ksf_version": body["ksf_version"],
    });
    let ksf =
        opaque::KsfParams::from_version(body["ksf_version"].as_u64().unwrap() as u16).unwrap();
    // The wrong passphrase fails on the client; it sends something anyway.
    let fin = client
        .finish(b"not the passphrase", &response, ksf)
        .map(|(fin, _, _)| fin)
        .unwrap_or_else(|_| vec![7u8; 64]);
    let r = s
        .req(Method::POST, "/v1/login/finish", None)
        .json(&json!({"login_id": body["login_id"], "login_finalization": b64(&fin)}))
        .sent()
        .await;
    let finish_status = r.status();
    let finish: Value = r.json().await.unwrap();
    vec![(status, shape), (finish_status, finish["type"].clone())]
}

#[tokio::test]
async fn unknown_handles_are_throttled_like_accounts_so_they_cannot_be_told_apart() {
    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    register(&s, "amina", "the right pin", Some(&invite), None).await;

    // Side by side, waiting out every refusal as told.
    let mut existing = Vec::new();
    let mut unknown = Vec::new();
    // 3 free tries, 7 after a wait each, the wait until the day ends, a try the next day.
    for _ in 0..19 {
        let a = wrong_login_trace(&s, "amina").await;
        let u = wrong_login_trace(&s, "nobody.here").await;
        let wait = a[0].1["retry_after"].as_u64();
        existing.push(a);
        unknown.push(u);
        if let Some(wait) = wait {
            s.advance(wait);
        }
    }
    assert_eq!(existing, unknown);
    // And that sequence is: refused logins, with waits between them, ten in the day,
    // then a wait until the day is over.
    let refused = existing.iter().filter(|t| t.len() == 2).count();
    assert_eq!(
        refused,
        10 + 1,
        "ten in the first day, one in the next: {existing:?}"
    );
    for trace in existing.iter().filter(|t| t.len() == 2) {
        assert_eq!(trace[0].0, StatusCode::OK);
        assert_eq!(
            trace[1],
            (StatusCode::UNAUTHORIZED, json!("/problems/invalid-login"))
        );
    }
    assert!(existing
        .iter()
        .filter(|t| t.len() == 1)
        .all(|t| t[0].0 == StatusCode::TOO_MANY_REQUESTS
            && t[0].1["type"] == "/problems/login-throttled"));
    // Spelling variants of the unknown handle are the same handle, as for accounts.
    assert_eq!(
        wrong_login_trace(&s, " Nobody.Here ").await,
        wrong_login_trace(&s, " Amina ").await
    );
    // Other unknown handles are counted apart.
    assert_eq!(wrong_login_trace(&s, "someone.else").await.len(), 2);
}

#[tokio::test]
async fn strangers_cannot_shut_out_the_persons_own_device() {
    // The per-address budget is set aside: this is about the handle's budget.
    let s = TestServer::start_with(Limits {
        login_attempts_per_ip_per_minute: 1_000_000,
        ..Limits::default()
    })
    .await;
    let (_, invite) = s.org_with_invite("Relais").await;
    let (amina_id, identity) = register(&s, "amina", "240871", Some(&invite), None).await;
    let (_, invite) = s.org_with_invite("Autre relais").await;
    register(&s, "other", "999999", Some(&invite), None).await;

    // The person's phone logs in once and is remembered; a shared computer is not.
    let (status, body, _) =
        login_from(&s, "amina", "240871", json!({"remember_device": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let phone = body["device_token"].as_str().unwrap().to_owned();
    let (status, body, _) = login_from(&s, "amina", "240871", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["device_token"], Value::Null);
    // Another person's device credential, for the forgery below.
    let (_, body, _) = login_from(&s, "other", "999999", json!({"remember_device": true})).await;
    let others_phone = body["device_token"].as_str().unwrap().to_owned();

    // A stranger: 500 malformed starts, and 500 well-formed ones with wrong guesses (some
    // showing a made-up or another person's device credential), over three days.
    let mut counted = 0;
    for i in 0..500u32 {
        let garbage = match i % 4 {
            0 => json!({"handle": "amina", "login_request": "AAAA"}),
            1 => json!({"handle": "amina", "login_request": "not base64!"}),
            2 => json!({"handle": "amina", "login_request": b64(&[0u8; 96]), "device": "forged"}),
            _ => json!({"handle": "amina"}),
        };
        let r = s
            .req(Method::POST, "/v1/login/start", None)
            .json(&garbage)
            .sent()
            .await;
        assert!(r.status().is_client_error(), "{i}: {}", r.status());
        assert_ne!(
            r.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "garbage costs nothing"
        );
        let device = match i % 3 {
            0 => json!({}),
            1 => json!({"device": others_phone}),
            // Well-formed (43 characters of URL-safe base64), but nobody's.
            _ => json!({"device": b64(&[i as u8; 32])
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_")}),
        };
        let (status, _, _) = login_from(&s, "amina", &format!("{i:06}"), device).await;
        match status {
            StatusCode::UNAUTHORIZED => counted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("guess {i}: {other}"),
        }
        s.advance(3 * 86_400 / 500);
    }
    // Bounded: ten a day (three days, and the first day's window started with the logins
    // above), whatever was shown.
    assert!(counted <= 40, "{counted} guesses were counted");
    assert!(counted >= 20, "the stranger did get some tries: {counted}");
    // The phone, with the right PIN, at once.
    let (status, body, opened) = login_from(&s, "amina", "240871", json!({"device": phone})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(opened.unwrap().to_recipient(), identity.to_recipient());
    assert_eq!(body["device_token"], Value::Null, "it keeps its credential");
    // From a device without a credential, the handle's budget is spent right now.
    let r = attempt(&s, "amina").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // The phone's own wrong tries are bounded too: after ten in a row its credential is
    // forgotten, and it is a stranger like any other device.
    for i in 0..10u64 {
        let (status, body, _) = login_from(&s, "amina", "000000", json!({"device": phone})).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            s.advance(body["retry_after"].as_u64().unwrap());
            let (status, _, _) = login_from(&s, "amina", "000000", json!({"device": phone})).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "try {i}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "try {i}");
        }
    }
    let held = s.store.devices_of(amina_id.parse().unwrap()).await.unwrap();
    assert!(held.is_empty(), "{held:?}");
    spend_budget(&s, "amina").await;
    let (status, body, _) = login_from(&s, "amina", "240871", json!({"device": phone})).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the forgotten phone now shares the strangers' budget: {body}"
    );
    // A worker's unlock resets that budget; the phone can ask to be remembered again.
    let key = coffre_server::store::attempts::handle_key("amina");
    s.store.reset_login_budget(&key).await.unwrap();
    let (status, body, _) = login_from(
        &s,
        "amina",
        "240871",
        json!({"device": phone, "remember_device": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["device_token"].is_string());
}

#[tokio::test]
async fn login_attempts_are_throttled_per_ip() {
    let s = TestServer::start_with(Limits {
        login_attempts_per_ip_per_minute: 3,
        ..Limits::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(attempt(&s, "nobody").await.status(), StatusCode::OK);
    }
    let r = attempt(&s, "nobody").await;
    // When to come back: the budget is counted per minute.
    assert_eq!(r.headers()["retry-after"], "60");
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "too-many-requests").await;
    s.advance(60);
    assert_eq!(attempt(&s, "nobody").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_stolen_store_without_the_key_file_cannot_verify_a_guess() {
    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    let (id, _) = register(&s, "amina", "the right pin", Some(&invite), None).await;
    // What a thief of the sled directory has: the stored record and the account id.
    let stolen = s.store.account(id.parse().unwrap()).await.unwrap().unwrap();
    let record = opaque::PasswordFile::from_bytes(&stolen.password_file).unwrap();
    // Without the server's OPRF seed they must guess a setup: even the right passphrase
    // does not verify against the record.
    let guessed_setup = ServerSetup::generate();
    let (client, ke1) = ClientLogin::start(b"the right pin").unwrap();
    let (_, ke2) =
        opaque::server_login_start(&guessed_setup, Some(&record), &ke1, &stolen.id.0).unwrap();
    assert!(client.finish(b"the right pin", &ke2, KSF_V1).is_err());
    // With the real server (which has the key file) it does: the difference is the key.
    let (status, _, identity) = login(&s, "amina", "the right pin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(identity.is_some());
}

/// Client side of a re-registration: returns (upload, bundle) for `pass`.
fn re_register(
    response: &[u8],
    client: ClientRegistration,
    pass: &str,
    identity: &Identity,
    account_id: &str,
) -> (Vec<u8>, Vec<u8>) {
    let (upload, export_key) = client.finish(pass.as_bytes(), response, KSF_V1).unwrap();
    let bundle = KeyBundle::seal_with_export_key(identity, &export_key, account_id).unwrap();
    (upload, bundle.to_bytes())
}

#[tokio::test]
async fn change_passphrase_then_recover_with_the_printed_code() {
    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    let (id, identity, code) =
        register_with_code(&s, "amina", "old pin", Some(&invite), None).await;
    let (_, body, _) = login(&s, "amina", "old pin").await;
    let token = body["token"].as_str().unwrap().to_owned();

    let other_session = s.session_for(id.parse().unwrap(), 3600).await;
    // Change: new OPAQUE record and re-sealed bundle.
    let (client, request) = ClientRegistration::start(b"new pin").unwrap();
    let started: Value = s
        .req(Method::POST, "/v1/me/passphrase/start", Some(&token))
        .json(&json!({"registration_request": b64(&request)}))
        .value()
        .await;
    let (upload, bundle) = re_register(
        &unb64(started["registration_response"].as_str().unwrap()),
        client,
        "new pin",
        &identity,
        &id,
    );
    let r = s
        .req(Method::POST, "/v1/me/passphrase", Some(&token))
        .json(&json!({"registration_upload": b64(&upload), "bundle": b64(&bundle)}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Other sessions are signed out; the one that changed the passphrase stays.
    let r = s
        .req(Method::GET, "/v1/me", Some(&other_session))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = s.req(Method::GET, "/v1/me", Some(&token)).sent().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        login(&s, "amina", "old pin").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, opened) = login(&s, "amina", "new pin").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened.unwrap().to_recipient(), identity.to_recipient());

    // Forgot it, and strangers spent the day's tries on top: the recovery code resets
    // both.
    spend_budget(&s, "amina").await;
    assert_eq!(
        login(&s, "amina", "new pin").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let lookup: Value = s
        .req(Method::POST, "/v1/recovery/lookup", None)
        .json(&json!({"handle": "amina"}))
        .value()
        .await;
    assert_eq!(lookup["account_id"], id);
    let recovery_token = code.derive_auth_token(&id);
    let (client, request) = ClientRegistration::start(b"third pin").unwrap();
    // A wrong code gets nothing.
    let wrong = RecoveryCode::generate().unwrap().derive_auth_token(&id);
    let r = s.req(Method::POST, "/v1/recovery/start", None)
        .json(&json!({"handle": "amina", "recovery_token": b64(wrong.expose()), "registration_request": b64(&request)})).send().await.unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "invalid-login").await;
    let started: Value = s.req(Method::POST, "/v1/recovery/start", None)
        .json(&json!({"handle": "amina", "recovery_token": b64(recovery_token.expose()), "registration_request": b64(&request)}))
        .send().await.unwrap().json().await.unwrap();
    let recovery_bundle =
        KeyBundle::from_bytes(&unb64(started["recovery_bundle"].as_str().unwrap())).unwrap();
    let recovered = recovery_bundle.open_with_recovery_code(&code, &id).unwrap();
    assert_eq!(recovered.to_recipient(), identity.to_recipient());
    let (upload, bundle) = re_register(
        &unb64(started["registration_response"].as_str().unwrap()),
        client,
        "third pin",
        &recovered,
        &id,
    );
    let finish = json!({"handle": "amina", "recovery_token": b64(recovery_token.expose()), "registration_upload": b64(&upload), "bundle": b64(&bundle)});
    let mut wrong_finish = finish.clone();
    wrong_finish["recovery_token"] = json!(b64(wrong.expose()));
    let r = s
        .req(Method::POST, "/v1/recovery/finish", None)
        .json(&wrong_finish)
        .sent()
        .await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "invalid-login").await;
    let r = s
        .req(Method::POST, "/v1/recovery/finish", None)
        .json(&finish)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.req(Method::GET, "/v1/me", Some(&token)).sent().await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let (status, _, opened) = login(&s, "amina", "third pin").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened.unwrap().to_recipient(), identity.to_recipient());

    // Unknown handles get a stable stand-in id, not an error.
    let a: Value = s
        .req(Method::POST, "/v1/recovery/lookup", None)
        .json(&json!({"handle": "ghost"}))
        .value()
        .await;
    let b: Value = s
        .req(Method::POST, "/v1/recovery/lookup", None)
        .json(&json!({"handle": "ghost"}))
        .value()
        .await;
    assert_eq!(a, b);
    assert_eq!(a["account_id"].as_str().unwrap().len(), 32);
}

/// Starts a passphrase change with `token` and returns the client's (upload, bundle) for
/// `pass`.
async fn change_passphrase_upload(
    s: &TestServer,
    token: &str,
    pass: &str,
    identity: &Identity,
    account_id: &str,
) -> (Vec<u8>, Vec<u8>) {
    let (client, request) = ClientRegistration::start(pass.as_bytes()).unwrap();
    let r = s
        .req(Method::POST, "/v1/me/passphrase/start", Some(token))
        .json(&json!({"registration_request": b64(&request)}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let started: Value = r.json().await.unwrap();
    re_register(
        &unb64(started["registration_response"].as_str().unwrap()),
        client,
        pass,
        identity,
        account_id,
    )
}

async fn me_status(s: &TestServer, token: &str) -> StatusCode {
    s.req(Method::GET, "/v1/me", Some(token))
        .sent()
        .await
        .status()
}

#[tokio::test]
async fn a_passphrase_change_ends_every_other_session_even_a_login_in_flight() {
    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    let (id, identity) = register(&s, "amina", "old pin", Some(&invite), None).await;
    let (_, phone, _) = login(&s, "amina", "old pin").await;
    let phone = phone["token"].as_str().unwrap().to_owned();
    let (_, shelter_pc, _) = login(&s, "amina", "old pin").await;
    let shelter_pc = shelter_pc["token"].as_str().unwrap().to_owned();

    // Someone who knows the old passphrase is half-way through a login (KE2 received)
    // when the change happens.
    let (thief, ke1) = ClientLogin::start(b"old pin").unwrap();
    let started: Value = s
        .req(Method::POST, "/v1/login/start", None)
        .json(&json!({"handle": "amina", "login_request": b64(&ke1)}))
        .value()
        .await;
    let (ke3, _, _) = thief
        .finish(
            b"old pin",
            &unb64(started["login_response"].as_str().unwrap()),
            KSF_V1,
        )
        .unwrap();

    let (upload, bundle) = change_passphrase_upload(&s, &phone, "new pin", &identity, &id).await;
    let r = s
        .req(Method::POST, "/v1/me/passphrase", Some(&phone))
        .json(&json!({"registration_upload": b64(&upload), "bundle": b64(&bundle)}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // The old passphrase's login in flight completes the protocol but gets no session.
    let r = s
        .req(Method::POST, "/v1/login/finish", None)
        .json(&json!({"login_id": started["login_id"], "login_finalization": b64(&ke3)}))
        .sent()
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    if let Some(token) = body["token"].as_str() {
        assert_eq!(
            me_status(&s, token).await,
            StatusCode::UNAUTHORIZED,
            "a session opened with the old passphrase outlived the change"
        );
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["type"], "/problems/invalid-login");

    // Every other session is gone, the one that made the change works.
    assert_eq!(me_status(&s, &shelter_pc).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&s, &phone).await, StatusCode::OK);
    // Deleted, not merely refused: only the changing session is left.
    let stored = |token: &str| {
        let hash = coffre_server::auth::hash_token(token).unwrap();
        let store = s.store.clone();
        async move { store.session(&hash).await.unwrap() }
    };
    assert!(stored(&shelter_pc).await.is_none());
    assert!(stored(&phone).await.is_some());

    assert_eq!(
        login(&s, "amina", "old pin").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body, opened) = login(&s, "amina", "new pin").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened.unwrap().to_recipient(), identity.to_recipient());
    assert_eq!(
        me_status(&s, body["token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    // The session that made the change still works for another change.
    let (upload, bundle) = change_passphrase_upload(&s, &phone, "third pin", &identity, &id).await;
    let r = s
        .req(Method::POST, "/v1/me/passphrase", Some(&phone))
        .json(&json!({"registration_upload": b64(&upload), "bundle": b64(&bundle)}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&s, &phone).await, StatusCode::OK);
    assert_eq!(
        me_status(&s, body["token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_failed_passphrase_change_changes_nothing() {
    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    let (id, identity, code) =
        register_with_code(&s, "amina", "old pin", Some(&invite), None).await;
    let (_, phone, _) = login(&s, "amina", "old pin").await;
    let phone = phone["token"].as_str().unwrap().to_owned();
    let (_, other, _) = login(&s, "amina", "old pin").await;
    let other = other["token"].as_str().unwrap().to_owned();
    let before = s.store.account(id.parse().unwrap()).await.unwrap().unwrap();

    let (upload, bundle) = change_passphrase_upload(&s, &phone, "new pin", &identity, &id).await;
    let mut bad_key = upload.clone();
    bad_key[..32].fill(0xff); // not a ristretto255 point
    let recovery_kind = KeyBundle::seal_with_recovery_code(&identity, &code, &id)
        .unwrap()
        .to_bytes();
    let mut flipped_bundle = bundle.clone();
    flipped_bundle[0] ^= 0xff;
    let cases = [
        json!({"registration_upload": "%%% not base64 %%%", "bundle": b64(&bundle)}),
        json!({"registration_upload": b64(&upload[..100]), "bundle": b64(&bundle)}),
        json!({"registration_upload": b64(&[upload.clone(), vec![0]].concat()), "bundle": b64(&bundle)}),
        json!({"registration_upload": b64(&bad_key), "bundle": b64(&bundle)}),
        json!({"registration_upload": b64(&upload), "bundle": "%%%"}),
        json!({"registration_upload": b64(&upload), "bundle": b64(&bundle[..10])}),
        json!({"registration_upload": b64(&upload), "bundle": b64(&flipped_bundle)}),
        json!({"registration_upload": b64(&upload), "bundle": b64(&recovery_kind)}),
        json!({"registration_upload": b64(&upload)}),
    ];
    for body in cases {
        let r = s
            .req(Method::POST, "/v1/me/passphrase", Some(&phone))
            .json(&body)
            .sent()
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
    // Nothing moved: same record, bundle and epoch; both sessions alive; the old
    // passphrase still opens the vault and the new one does not.
    let after = s.store.account(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(after.password_file, before.password_file);
    assert_eq!(after.bundle, before.bundle);
    assert_eq!(after.credential_epoch, before.credential_epoch);
    assert_eq!(me_status(&s, &phone).await, StatusCode::OK);
    assert_eq!(me_status(&s, &other).await, StatusCode::OK);
    assert_eq!(
        login(&s, "amina", "new pin").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, opened) = login(&s, "amina", "old pin").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened.unwrap().to_recipient(), identity.to_recipient());
    assert_eq!(me_status(&s, &other).await, StatusCode::OK);
}
