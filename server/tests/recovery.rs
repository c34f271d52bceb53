//! Recovery through referents, end to end on a real server: choosing referents, asking
//! on a new device, approving, the delay, the release, finishing with a new PIN, a new
//! kit and a new deal; cancelling, withdrawing, refusing; the authorization of every
//! endpoint; and what the data directory holds afterwards. The clock is the test's: no
//! sleeps. The client side is coffre-core, as the browser's wasm is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_core::bundle::KeyBundle;
use coffre_core::opaque::{ClientRegistration, KSF_V1};
use coffre_core::recovery::{recovery_verifier, RecoveryCode};
use coffre_core::referents::{RecoverySecret, Share};
use coffre_core::{Identity, Recipient};
use coffre_server::admin;
use coffre_server::store::Role;
use common::accounts::{login, register, register_with_code};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The delay the test structure sets (an hour, moved past with the clock).
const DELAY: u64 = 3600;

/// A worker or a person, with what their own device holds.
struct Person {
    id: String,
    handle: String,
    identity: Identity,
    token: String,
}

impl Person {
    fn user(&self) -> User {
        User {
            account: coffre_server::store::Account {
                id: self.id.parse().unwrap(),
                ..common::seed::stand_in_account(
                    &self.identity,
                    &self.handle,
                    Role::Beneficiary,
                    None,
                    0,
                )
            },
            identity: Identity::from_bytes(&self.identity.to_bytes()),
            token: self.token.clone(),
        }
    }
}

/// A real login, then a session that outlives the weeks the tests move the clock by.
async fn long_session(s: &TestServer, handle: &str, pass: &str) -> (String, Identity) {
    let (_, identity) = signed_in(s, handle, pass).await;
    let id = s.store.account_by_handle(handle).await.unwrap().unwrap().id;
    (s.session_for(id, 90 * 86_400).await, identity)
}

async fn signed_in(s: &TestServer, handle: &str, pass: &str) -> (String, Identity) {
    let (status, body, identity) = login(s, handle, pass).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        identity.unwrap(),
    )
}

struct World {
    s: TestServer,
    /// Referents: two workers of the person's structure, one of another.
    w1: Person,
    w2: Person,
    w3: Person,
    /// A worker who is not a referent, and a worker of a third structure.
    other: Person,
    stranger_worker: Person,
    /// Another beneficiary.
    stranger: Person,
    amina: Person,
    code: RecoveryCode,
}

async fn world() -> World {
    let s = TestServer::start().await;
    let now = s.now();
    let org_a = admin::create_org(s.store.as_ref(), "CCAS Nord", now)
        .await
        .unwrap();
    admin::set_recovery_delay(s.store.as_ref(), org_a.id, Some(DELAY))
        .await
        .unwrap();
    let org_b = admin::create_org(s.store.as_ref(), "Accueil Sud", now)
        .await
        .unwrap();
    let org_c = admin::create_org(s.store.as_ref(), "Relais Est", now)
        .await
        .unwrap();
    let mut workers = Vec::new();
    for (handle, org) in [
        ("nadia.w1", org_a.id),
        ("paul.w2", org_a.id),
        ("ines.w3", org_b.id),
        ("other", org_a.id),
        ("far", org_c.id),
    ] {
        let invite = admin::create_invite(s.store.as_ref(), org, now)
            .await
            .unwrap();
        let pass = format!("{handle} passphrase");
        let (id, _) = register(&s, handle, &pass, Some(&invite), None).await;
        let (token, identity) = long_session(&s, handle, &pass).await;
        workers.push(Person {
            id,
            handle: handle.into(),
            identity,
            token,
        });
    }
    let (amina_id, amina_identity, code) =
        register_with_code(&s, "amina", "482913", None, Some(&workers[0].token)).await;
    let (amina_token, opened) = long_session(&s, "amina", "482913").await;
    assert_eq!(opened.to_recipient(), amina_identity.to_recipient());
    let (stranger_id, _) = register(&s, "sami", "771903", None, Some(&workers[3].token)).await;
    let (stranger_token, stranger_identity) = long_session(&s, "sami", "771903").await;
    let mut w = workers.into_iter();
    World {
        w1: w.next().unwrap(),
        w2: w.next().unwrap(),
        w3: w.next().unwrap(),
        other: w.next().unwrap(),
        stranger_worker: w.next().unwrap(),
        stranger: Person {
            id: stranger_id,
            handle: "sami".into(),
            identity: stranger_identity,
            token: stranger_token,
        },
        amina: Person {
            id: amina_id,
            handle: "amina".into(),
            identity: amina_identity,
            token: amina_token,
        },
        code,
        s,
    }
}

/// What the person's browser does to choose referents: a fresh secret, the identity
/// sealed under it, one share per referent sealed to them. Returns the body and the
/// shares in clear (which only the test ever sees together).
fn deal(
    identity: &Identity,
    account_id: &str,
    threshold: u8,
    referents: &[(&str, Recipient)],
) -> (Value, RecoverySecret, Vec<Share>) {
    let secret = RecoverySecret::generate().unwrap();
    let shares = secret.split(threshold, referents.len() as u8).unwrap();
    let bundle = KeyBundle::seal_with_recovery_secret(identity, &secret, account_id).unwrap();
    let verifier = recovery_verifier(&secret.derive_auth_token(account_id));
    let body = json!({
        "threshold": threshold,
        "bundle": b64(&bundle.to_bytes()),
        "verifier": b64(&verifier),
        "shares": shares.iter().zip(referents).map(|(share, (id, key))| json!({
            "referent": id,
            "index": share.index(),
            "sealed_share": b64(&share.seal_to(key).unwrap()),
            "commitment": b64(&share.commitment(account_id)),
        })).collect::<Vec<_>>(),
    });
    (body, secret, shares)
}

fn referents_of(w: &World) -> Vec<(&str, Recipient)> {
    [&w.w1, &w.w2, &w.w3]
        .iter()
        .map(|p| (p.id.as_str(), p.identity.to_recipient()))
        .collect()
}

async fn set_referents(w: &World, threshold: u8) -> (RecoverySecret, Vec<Share>) {
    let (body, secret, shares) = deal(&w.amina.identity, &w.amina.id, threshold, &referents_of(w));
    let r =
        w.s.req(Method::PUT, "/v1/me/referents", Some(&w.amina.token))
            .json(&body)
            .sent()
            .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    (secret, shares)
}

/// A new device asks: its ephemeral key, the request id, the account id and the proof.
struct Asking {
    ephemeral: Identity,
    id: String,
    account_id: String,
    proof: String,
}

async fn ask(s: &TestServer, handle: &str) -> Asking {
    let ephemeral = Identity::generate().unwrap();
    let r = s
        .req(Method::POST, "/v1/recovery/requests", None)
        .json(&json!({"handle": handle, "ephemeral_key": ephemeral.to_recipient().to_string()}))
        .sent()
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let made: Value = r.json().await.unwrap();
    let challenge = coffre_core::decrypt(
        &unb64(made["challenge"].as_str().unwrap()),
        std::slice::from_ref(&ephemeral),
    )
    .unwrap();
    assert_eq!(challenge.len(), 32);
    assert_eq!(made["request"]["state"], "open");
    Asking {
        id: made["id"].as_str().unwrap().to_owned(),
        account_id: made["account_id"].as_str().unwrap().to_owned(),
        proof: b64(&challenge),
        ephemeral,
    }
}

/// What a referent's browser does to approve: open their share, reseal it to the
/// ephemeral key shown (after comparing its words with the person's device).
async fn approve(s: &TestServer, referent: &Person, request: &str) -> reqwest::Response {
    let ask: Value = s
        .req(
            Method::GET,
            &format!("/v1/recovery/asks/{request}"),
            Some(&referent.token),
        )
        .value()
        .await;
    let share = Share::open_sealed(
        &unb64(ask["my_share"].as_str().unwrap()),
        std::slice::from_ref(&referent.identity),
    )
    .unwrap();
    let ephemeral: Recipient = ask["ephemeral_key"].as_str().unwrap().parse().unwrap();
    s.req(
        Method::POST,
        &format!("/v1/recovery/requests/{request}/approve"),
        Some(&referent.token),
    )
    .json(&json!({"sealed_share": b64(&share.seal_to(&ephemeral).unwrap())}))
    .sent()
    .await
}

async fn decision(
    s: &TestServer,
    referent: &Person,
    request: &str,
    what: &str,
) -> reqwest::Response {
    s.req(
        Method::POST,
        &format!("/v1/recovery/requests/{request}/{what}"),
        Some(&referent.token),
    )
    .sent()
    .await
}

async fn release(
    s: &TestServer,
    asking: &Asking,
    registration_request: &[u8],
) -> reqwest::Response {
    s.req(
        Method::POST,
        &format!("/v1/recovery/requests/{}/release", asking.id),
        None,
    )
    .json(&json!({"proof": asking.proof, "registration_request": b64(registration_request)}))
    .sent()
    .await
}

/// The released shares opened with the ephemeral key and checked against their
/// commitments: (referent handle, share) for the good ones, handles of the wrong ones.
fn collect(released: &Value, asking: &Asking) -> (Vec<(String, Share)>, Vec<String>) {
    let mut good = Vec::new();
    let mut wrong = Vec::new();
    for s in released["shares"].as_array().unwrap() {
        let handle = s["referent_handle"].as_str().unwrap().to_owned();
        let opened = Share::open_sealed(
            &unb64(s["sealed_share"].as_str().unwrap()),
            std::slice::from_ref(&asking.ephemeral),
        );
        match opened {
            Ok(share)
                if share
                    .check(
                        &asking.account_id,
                        &unb64(s["commitment"].as_str().unwrap()),
                    )
                    .is_ok() =>
            {
                good.push((handle, share))
            }
            _ => wrong.push(handle),
        }
    }
    (good, wrong)
}

/// Everything the asking device sends at the end: new PIN, new kit, new deal.
struct Ending {
    body: Value,
    new_code: RecoveryCode,
    new_shares: Vec<Share>,
}

fn ending(
    released: &Value,
    asking: &Asking,
    client: ClientRegistration,
    pin: &str,
    secret: &RecoverySecret,
) -> (Ending, Identity) {
    let account_id = asking.account_id.as_str();
    let bundle = KeyBundle::from_bytes(&unb64(released["bundle"].as_str().unwrap())).unwrap();
    let identity = bundle
        .open_with_recovery_secret(secret, account_id)
        .unwrap();
    let response = unb64(released["registration_response"].as_str().unwrap());
    let (upload, export_key) = client.finish(pin.as_bytes(), &response, KSF_V1).unwrap();
    let new_bundle = KeyBundle::seal_with_export_key(&identity, &export_key, account_id).unwrap();
    let new_code = RecoveryCode::generate().unwrap();
    let kit = KeyBundle::seal_with_recovery_code(&identity, &new_code, account_id).unwrap();
    let targets: Vec<(String, Recipient)> = released["referents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["public_key"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let targets: Vec<(&str, Recipient)> = targets.iter().map(|(i, k)| (i.as_str(), *k)).collect();
    let (new_deal, _, new_shares) = deal(&identity, account_id, 2, &targets);
    let body = json!({
        "proof": asking.proof,
        "secret_token": b64(secret.derive_auth_token(account_id).expose()),
        "registration_upload": b64(&upload),
        "bundle": b64(&new_bundle.to_bytes()),
        "recovery_bundle": b64(&kit.to_bytes()),
        "recovery_verifier": b64(&recovery_verifier(&new_code.derive_auth_token(account_id))),
        "deal": new_deal,
    });
    (
        Ending {
            body,
            new_code,
            new_shares,
        },
        identity,
    )
}

async fn finish(s: &TestServer, asking: &Asking, body: &Value) -> reqwest::Response {
    s.req(
        Method::POST,
        &format!("/v1/recovery/requests/{}/finish", asking.id),
        None,
    )
    .json(body)
    .sent()
    .await
}

async fn my_requests(s: &TestServer, token: &str) -> Vec<Value> {
    let v: Value = s
        .req(Method::GET, "/v1/me/recovery", Some(token))
        .value()
        .await;
    v["requests"].as_array().unwrap().clone()
}

#[tokio::test]
async fn lost_pin_and_paper_two_referents_approve_and_the_vault_comes_back() {
    let w = world().await;
    let s = &w.s;
    let amina = w.amina.user();
    let (doc, _, _) = s.upload(&amina, b"titre de sejour, recto verso").await;
    let (old_secret, old_shares) = set_referents(&w, 2).await;

    let referents: Value = s
        .req(Method::GET, "/v1/me/referents", Some(&w.amina.token))
        .value()
        .await;
    assert_eq!(referents["threshold"], 2);
    assert_eq!(referents["active"], 3);
    assert_eq!(referents["delay_seconds"], DELAY);
    let orgs: Vec<&str> = referents["referents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["org_name"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, ["CCAS Nord", "CCAS Nord", "Accueil Sud"]);

    // A new device asks. The person's devices and every referent are told.
    let asking = ask(s, "amina").await;
    assert_eq!(asking.account_id, w.amina.id);
    let warned = my_requests(s, &w.amina.token).await;
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["id"], asking.id.as_str());
    assert_eq!(warned[0]["state"], "open");
    for referent in [&w.w1, &w.w2, &w.w3] {
        let asks: Value = s
            .req(Method::GET, "/v1/recovery/asks", Some(&referent.token))
            .value()
            .await;
        let asks = asks.as_array().unwrap();
        assert_eq!(asks.len(), 1, "{}", referent.handle);
        assert_eq!(asks[0]["handle"], "amina");
        assert_eq!(
            asks[0]["ephemeral_key"],
            asking.ephemeral.to_recipient().to_string(),
            "what the referent compares with the person's device"
        );
    }
    let none: Value = s
        .req(Method::GET, "/v1/recovery/asks", Some(&w.other.token))
        .value()
        .await;
    assert_eq!(none.as_array().unwrap().len(), 0);

    // A second request while this one is open is refused, clearly.
    let r = s
        .req(Method::POST, "/v1/recovery/requests", None)
        .json(&json!({"handle": "amina", "ephemeral_key": Identity::generate().unwrap().to_recipient().to_string()}))
        .sent()
        .await;
    assert_problem(r, StatusCode::CONFLICT, "recovery-pending").await;

    // Nothing is released before the approvals.
    let (client, registration) = ClientRegistration::start(b"305817").unwrap();
    let v = assert_problem(
        release(s, &asking, &registration).await,
        StatusCode::CONFLICT,
        "recovery-waiting",
    )
    .await;
    assert!(v.get("releasable_at").is_none());

    let r = approve(s, &w.w1, &asking.id).await;
    assert_eq!(r.status(), StatusCode::OK);
    let after_one: Value = r.json().await.unwrap();
    assert_eq!(after_one["my_decision"], "approved");
    assert_eq!(after_one["approvals"], 1);
    assert!(after_one["releasable_at"].is_null());
    // One referent counts once.
    assert_problem(
        approve(s, &w.w1, &asking.id).await,
        StatusCode::CONFLICT,
        "already-decided",
    )
    .await;
    let r = approve(s, &w.w3, &asking.id).await;
    let after_two: Value = r.json().await.unwrap();
    assert_eq!(after_two["releasable_at"], s.now() + DELAY);

    // The delay runs: still nothing for the device; the person sees when it ends.
    s.advance(DELAY - 1);
    let v = assert_problem(
        release(s, &asking, &registration).await,
        StatusCode::CONFLICT,
        "recovery-waiting",
    )
    .await;
    assert_eq!(v["releasable_at"], s.now() + 1);
    assert_eq!(my_requests(s, &w.amina.token).await[0]["approvals"], 2);
    s.advance(1);

    // Only the device holding the ephemeral key gets the shares.
    let thief = Asking {
        proof: b64(&[0u8; 32]),
        ephemeral: Identity::generate().unwrap(),
        id: asking.id.clone(),
        account_id: asking.account_id.clone(),
    };
    assert_problem(
        release(s, &thief, &registration).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = release(s, &asking, &registration).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let released: Value = r.json().await.unwrap();
    assert_eq!(released["threshold"], 2);
    let (good, wrong) = collect(&released, &asking);
    assert!(wrong.is_empty());
    let names: Vec<&str> = good.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(names, ["nadia.w1", "ines.w3"]);
    let shares: Vec<Share> = good.into_iter().map(|(_, s)| s).collect();
    let rebuilt = RecoverySecret::combine(&shares).unwrap();
    assert_eq!(rebuilt, old_secret);

    // A wrong token (not from the rebuilt secret) does not finish.
    let (end, identity) = ending(&released, &asking, client, "305817", &rebuilt);
    assert_eq!(identity.to_recipient(), w.amina.identity.to_recipient());
    let mut forged = end.body.clone();
    forged["secret_token"] = json!(b64(&[9u8; 32]));
    assert_problem(
        finish(s, &asking, &forged).await,
        StatusCode::UNAUTHORIZED,
        "invalid-login",
    )
    .await;
    let r = finish(s, &asking, &end.body).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "{}",
        r.text().await.unwrap()
    );

    // Every old session ended; the new PIN opens the same identity and the papers.
    let r = s
        .req(Method::GET, "/v1/me", Some(&w.amina.token))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (token, identity) = signed_in(s, "amina", "305817").await;
    assert_eq!(identity.to_recipient(), w.amina.identity.to_recipient());
    let docs: Value = s
        .req(Method::GET, "/v1/documents", Some(&token))
        .value()
        .await;
    assert_eq!(docs.as_array().unwrap()[0]["id"], doc.as_str());
    let envelope =
        coffre_core::Envelope::parse(&unb64(docs[0]["envelope"].as_str().unwrap())).unwrap();
    let recovered = User {
        token: token.clone(),
        ..w.amina.user()
    };
    let payload = s.payload(&recovered, &doc).await;
    let plain = coffre_core::decrypt(&envelope.join(&payload), &[identity]).unwrap();
    assert_eq!(plain, b"titre de sejour, recto verso");
    assert_eq!(my_requests(s, &token).await[0]["state"], "finished");

    // The old paper no longer works, the new one does.
    let old = w.code.derive_auth_token(&w.amina.id);
    let r = s
        .req(Method::POST, "/v1/recovery/cancel", None)
        .json(&json!({"handle": "amina", "recovery_token": b64(old.expose())}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "invalid-login").await;
    let new = end.new_code.derive_auth_token(&w.amina.id);
    let r = s
        .req(Method::POST, "/v1/recovery/cancel", None)
        .json(&json!({"handle": "amina", "recovery_token": b64(new.expose())}))
        .sent()
        .await;
    // Proven with the new code; there is just nothing open to cancel.
    assert_problem(r, StatusCode::CONFLICT, "recovery-closed").await;

    // The shares were dealt again: the released ones rebuild a secret that opens nothing.
    assert_problem(
        finish(s, &asking, &end.body).await,
        StatusCode::CONFLICT,
        "recovery-closed",
    )
    .await;
    let deal = s
        .store
        .recovery_deal(w.amina.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    for (dealt, old) in deal.shares.iter().zip(&old_shares) {
        assert_ne!(dealt.commitment, old.commitment(&w.amina.id).to_vec());
    }
    assert_eq!(end.new_shares.len(), 3);
    let new_bundle = KeyBundle::from_bytes(&deal.bundle).unwrap();
    assert!(new_bundle
        .open_with_recovery_secret(&old_secret, &w.amina.id)
        .is_err());
    let again = RecoverySecret::combine(&end.new_shares[..2]).unwrap();
    assert!(new_bundle
        .open_with_recovery_secret(&again, &w.amina.id)
        .is_ok());

    // The data directory (or, on a database, everything the records hold) has none of the
    // shares or secrets in clear, in any encoding.
    let files = match &s.sled_records {
        Some(_) => everything_in(s.dir.path()),
        None => serde_json::to_vec(&s.store.export().await.unwrap()).unwrap(),
    };
    for secret in old_shares
        .iter()
        .chain(&end.new_shares)
        .map(|s| s.to_bytes().to_vec())
        .chain([old_secret_bytes(&old_secret)])
    {
        for form in [
            secret.clone(),
            b64(&secret).into_bytes(),
            hex::encode(&secret).into_bytes(),
        ] {
            assert!(
                !files.windows(form.len()).any(|w| w == form.as_slice()),
                "a share or secret in clear in the data directory"
            );
        }
    }
    // And `audit` knows every new record.
    let report = match &s.sled_records {
        Some(_) => s.audit(Some(&s.server_key)),
        None => coffre_server::audit::audit_store(
            s.store.as_ref(),
            s.payloads.as_ref(),
            Some(&s.server_key),
        )
        .await
        .unwrap(),
    };
    assert!(
        report.trees["recovery_deals"].count >= 1,
        "{:?}",
        report.trees.keys()
    );
    assert!(
        report.passed(),
        "{}",
        coffre_server::audit::render_text(&report)
    );
}

/// The secret's bytes, through the only door coffre-core opens: the token derivation
/// is one-way, so the test looks for the 32-byte value split into the shares instead.
fn old_secret_bytes(secret: &RecoverySecret) -> Vec<u8> {
    // A threshold-1 split holds the secret itself as its only share's value.
    let share = secret.split(1, 1).unwrap().remove(0);
    share.to_bytes()[3..].to_vec()
}

fn everything_in(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(everything_in(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.extend(bytes);
        }
    }
    out
}

#[tokio::test]
async fn the_person_cancels_a_referent_withdraws_and_refusals_close_it() {
    let w = world().await;
    let s = &w.s;
    set_referents(&w, 2).await;

    // Cancelled from a logged-in device: approvals after it are refused.
    let asking = ask(s, "amina").await;
    assert_eq!(approve(s, &w.w1, &asking.id).await.status(), StatusCode::OK);
    let r = s
        .req(
            Method::POST,
            &format!("/v1/me/recovery/{}/cancel", asking.id),
            Some(&w.amina.token),
        )
        .sent()
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "cancelled");
    assert_problem(
        approve(s, &w.w2, &asking.id).await,
        StatusCode::CONFLICT,
        "recovery-closed",
    )
    .await;
    let (_, registration) = ClientRegistration::start(b"111111").unwrap();
    assert_problem(
        release(s, &asking, &registration).await,
        StatusCode::CONFLICT,
        "recovery-closed",
    )
    .await;
    let asks: Value = s
        .req(Method::GET, "/v1/recovery/asks", Some(&w.w2.token))
        .value()
        .await;
    assert!(
        asks.as_array().unwrap().is_empty(),
        "a closed request leaves the referents' screens"
    );

    // Cancelled with the printed code, without a session, during the delay.
    let asking = ask(s, "amina").await;
    approve(s, &w.w1, &asking.id).await;
    approve(s, &w.w2, &asking.id).await;
    s.advance(DELAY / 2);
    let token = w.code.derive_auth_token(&w.amina.id);
    let r = s
        .req(Method::POST, "/v1/recovery/cancel", None)
        .json(&json!({"handle": "amina", "recovery_token": b64(token.expose())}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.advance(DELAY);
    assert_problem(
        release(s, &asking, &registration).await,
        StatusCode::CONFLICT,
        "recovery-closed",
    )
    .await;

    // A referent withdraws during the delay: the release stops.
    let asking = ask(s, "amina").await;
    approve(s, &w.w1, &asking.id).await;
    approve(s, &w.w2, &asking.id).await;
    let v: Value = decision(s, &w.w2, &asking.id, "withdraw")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["my_decision"], "refused");
    assert!(v["releasable_at"].is_null());
    s.advance(DELAY);
    assert_problem(
        release(s, &asking, &registration).await,
        StatusCode::CONFLICT,
        "recovery-waiting",
    )
    .await;
    // w2 cannot approve again; w3 refuses: 2 of 3 said no, k = 2 is out of reach.
    assert_problem(
        approve(s, &w.w2, &asking.id).await,
        StatusCode::CONFLICT,
        "already-decided",
    )
    .await;
    let v: Value = decision(s, &w.w3, &asking.id, "refuse")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "refused");
    assert_eq!(my_requests(s, &w.amina.token).await[0]["state"], "refused");

    // The asking device can give up its own request.
    let asking = ask(s, "amina").await;
    let r = s
        .req(
            Method::POST,
            &format!("/v1/recovery/requests/{}/cancel", asking.id),
            None,
        )
        .json(&json!({"proof": asking.proof}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Five requests a day per handle at most, whoever asks.
    let asking = ask(s, "amina").await;
    s.req(
        Method::POST,
        &format!("/v1/recovery/requests/{}/cancel", asking.id),
        None,
    )
    .json(&json!({"proof": asking.proof}))
    .sent()
    .await;
    let r = s
        .req(Method::POST, "/v1/recovery/requests", None)
        .json(&json!({"handle": "amina", "ephemeral_key": Identity::generate().unwrap().to_recipient().to_string()}))
        .sent()
        .await;
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "too-many-requests").await;
    s.advance(86_400);

    // Choosing referents again closes a request made under the old deal.
    let asking = ask(s, "amina").await;
    approve(s, &w.w1, &asking.id).await;
    set_referents(&w, 2).await;
    let status: Value = s
        .req(
            Method::GET,
            &format!("/v1/recovery/requests/{}", asking.id),
            None,
        )
        .value()
        .await;
    assert_eq!(status["state"], "cancelled");

    // An open request expires after a week without enough approvals.
    let asking = ask(s, "amina").await;
    s.advance(7 * 86_400);
    let status: Value = s
        .req(
            Method::GET,
            &format!("/v1/recovery/requests/{}", asking.id),
            None,
        )
        .value()
        .await;
    assert_eq!(status["state"], "expired");
    assert_problem(
        approve_raw(s, &w.w1, &asking.id).await,
        StatusCode::CONFLICT,
        "recovery-closed",
    )
    .await;
    // ... and a new one may be made.
    ask(s, "amina").await;
}

/// An approval with a well-formed but meaningless share (the referent cannot read the
/// request any more, e.g. after it expired).
async fn approve_raw(s: &TestServer, referent: &Person, request: &str) -> reqwest::Response {
    let fake = Share::from_bytes(&[
        1, 2, 1, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7,
    ])
    .unwrap();
    s.req(
        Method::POST,
        &format!("/v1/recovery/requests/{request}/approve"),
        Some(&referent.token),
    )
    .json(&json!({"sealed_share": b64(&fake.seal_to(&referent.identity.to_recipient()).unwrap())}))
    .sent()
    .await
}

#[tokio::test]
async fn a_wrong_share_is_named_and_k_good_ones_still_recover() {
    let w = world().await;
    let s = &w.s;
    set_referents(&w, 2).await;
    let asking = ask(s, "amina").await;
    approve(s, &w.w1, &asking.id).await;
    approve(s, &w.w2, &asking.id).await;
    // w3 sends a share of another split under their index: well-formed, wrong.
    let other = RecoverySecret::generate().unwrap().split(2, 3).unwrap();
    let r = s
        .req(Method::POST, &format!("/v1/recovery/requests/{}/approve", asking.id), Some(&w.w3.token))
        .json(&json!({"sealed_share": b64(&other[2].seal_to(&asking.ephemeral.to_recipient()).unwrap())}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.advance(DELAY);
    let (_, registration) = ClientRegistration::start(b"222222").unwrap();
    let released: Value = release(s, &asking, &registration)
        .await
        .json()
        .await
        .unwrap();
    let (good, wrong) = collect(&released, &asking);
    assert_eq!(
        wrong,
        ["ines.w3"],
        "the wrong share is named by its referent"
    );
    let shares: Vec<Share> = good.into_iter().map(|(_, s)| s).collect();
    let secret = RecoverySecret::combine(&shares).unwrap();
    let bundle = KeyBundle::from_bytes(&unb64(released["bundle"].as_str().unwrap())).unwrap();
    let identity = bundle
        .open_with_recovery_secret(&secret, &asking.account_id)
        .unwrap();
    assert_eq!(identity.to_recipient(), w.amina.identity.to_recipient());
}

#[tokio::test]
async fn unknown_handles_and_vaults_without_referents_answer_alike() {
    let w = world().await;
    let s = &w.s;
    // "sami" has no referents, "nobody" no account: both requests look like amina's.
    set_referents(&w, 2).await;
    let mut shapes = Vec::new();
    for handle in ["amina", "sami", "nobody.here"] {
        let ephemeral = Identity::generate().unwrap();
        let r = s
            .req(Method::POST, "/v1/recovery/requests", None)
            .json(&json!({"handle": handle, "ephemeral_key": ephemeral.to_recipient().to_string()}))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{handle}");
        let v: Value = r.json().await.unwrap();
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        shapes.push((
            keys(&v),
            keys(&v["request"]),
            v["request"]["state"].clone(),
            v["request"]["approvals"].clone(),
        ));
        assert_eq!(v["account_id"].as_str().unwrap().len(), 32);
        // The same second-request answer for each.
        let r = s
            .req(Method::POST, "/v1/recovery/requests", None)
            .json(&json!({"handle": handle, "ephemeral_key": ephemeral.to_recipient().to_string()}))
            .sent()
            .await;
        assert_problem(r, StatusCode::CONFLICT, "recovery-pending").await;
    }
    assert!(shapes.windows(2).all(|p| p[0] == p[1]), "{shapes:?}");
    // The stand-in account id is stable (asking twice gives the same).
    let lookup: Value = s
        .req(Method::POST, "/v1/recovery/lookup", None)
        .json(&json!({"handle": "nobody.here"}))
        .value()
        .await;
    assert_eq!(lookup["account_id"].as_str().unwrap().len(), 32);
    // Bad input: a key that is not an age recipient.
    let r = s
        .req(Method::POST, "/v1/recovery/requests", None)
        .json(&json!({"handle": "amina", "ephemeral_key": "age1nope"}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
}

#[tokio::test]
async fn deals_are_checked() {
    let w = world().await;
    let s = &w.s;
    let token = w.amina.token.clone();
    let put = |body: Value| {
        let token = token.clone();
        async move {
            s.req(Method::PUT, "/v1/me/referents", Some(&token))
                .json(&body)
                .sent()
                .await
        }
    };
    let refs = referents_of(&w);
    // k > n, k = 0
    let (mut body, _, _) = deal(&w.amina.identity, &w.amina.id, 2, &refs);
    body["threshold"] = json!(4);
    assert_problem(
        put(body.clone()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    )
    .await;
    body["threshold"] = json!(0);
    assert_problem(
        put(body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    )
    .await;
    // A beneficiary as referent, oneself as referent, the same referent twice.
    for bad in [
        vec![(w.stranger.id.as_str(), w.stranger.identity.to_recipient())],
        vec![(w.amina.id.as_str(), w.amina.identity.to_recipient())],
        vec![
            (w.w1.id.as_str(), w.w1.identity.to_recipient()),
            (w.w1.id.as_str(), w.w1.identity.to_recipient()),
        ],
    ] {
        let (body, _, _) = deal(&w.amina.identity, &w.amina.id, 1, &bad);
        assert_problem(
            put(body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        )
        .await;
    }
    // A passphrase bundle where the referents bundle goes; a share that is not age.
    let (mut body, _, _) = deal(&w.amina.identity, &w.amina.id, 2, &refs);
    let code = RecoveryCode::generate().unwrap();
    body["bundle"] = json!(b64(&KeyBundle::seal_with_recovery_code(
        &w.amina.identity,
        &code,
        &w.amina.id
    )
    .unwrap()
    .to_bytes()));
    assert_problem(
        put(body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    )
    .await;
    let (mut body, _, _) = deal(&w.amina.identity, &w.amina.id, 2, &refs);
    body["shares"][0]["sealed_share"] = json!(b64(b"not an age file"));
    assert_problem(
        put(body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    )
    .await;
    // 1 of 1 is allowed, with at least 72 hours, even though the structure says 1 hour.
    let (body, _, _) = deal(&w.amina.identity, &w.amina.id, 1, &refs[..1]);
    let v: Value = put(body).await.json().await.unwrap();
    assert_eq!(v["threshold"], 1);
    assert_eq!(v["delay_seconds"], 72 * 3600);
    // Removing them.
    let r = s
        .req(Method::DELETE, "/v1/me/referents", Some(&w.amina.token))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let v: Value = s
        .req(Method::GET, "/v1/me/referents", Some(&w.amina.token))
        .value()
        .await;
    assert_eq!(v["threshold"], 0);
    let r = s
        .req(Method::DELETE, "/v1/me/referents", Some(&w.amina.token))
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
}

#[tokio::test]
async fn a_new_kit_replaces_the_old_code() {
    let w = world().await;
    let s = &w.s;
    let code = RecoveryCode::generate().unwrap();
    let bundle = KeyBundle::seal_with_recovery_code(&w.amina.identity, &code, &w.amina.id).unwrap();
    let r = s
        .req(Method::POST, "/v1/me/recovery-kit", Some(&w.amina.token))
        .json(&json!({
            "recovery_bundle": b64(&bundle.to_bytes()),
            "recovery_verifier": b64(&recovery_verifier(&code.derive_auth_token(&w.amina.id))),
        }))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, request) = ClientRegistration::start(b"999999").unwrap();
    for (which, c, expected) in [
        ("old", &w.code, StatusCode::UNAUTHORIZED),
        ("new", &code, StatusCode::OK),
    ] {
        let r = s
            .req(Method::POST, "/v1/recovery/start", None)
            .json(&json!({"handle": "amina", "recovery_token": b64(c.derive_auth_token(&w.amina.id).expose()), "registration_request": b64(&request)}))
            .sent()
            .await;
        assert_eq!(r.status(), expected, "{which} code");
    }
    // Wrong kind and wrong verifier length are refused.
    let r = s
        .req(Method::POST, "/v1/me/recovery-kit", Some(&w.amina.token))
        .json(&json!({"recovery_bundle": b64(&w.amina.user().account.bundle), "recovery_verifier": b64(&[1; 32])}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
}

/// Who may call what: the person, a referent, a worker of the same structure who is not
/// a referent, a worker of another structure, another beneficiary, and nobody.
#[tokio::test]
async fn authorization_of_every_recovery_endpoint() {
    let w = world().await;
    let s = &w.s;
    set_referents(&w, 2).await;
    let asking = ask(s, "amina").await;
    let id = asking.id.as_str();
    let ok = StatusCode::OK;
    let nf = StatusCode::NOT_FOUND;
    let ua = StatusCode::UNAUTHORIZED;
    let fb = StatusCode::FORBIDDEN;
    let who: [(&str, Option<&str>); 6] = [
        ("person", Some(&w.amina.token)),
        ("referent", Some(&w.w3.token)),
        ("same-structure worker", Some(&w.other.token)),
        ("other-structure worker", Some(&w.stranger_worker.token)),
        ("other beneficiary", Some(&w.stranger.token)),
        ("anonymous", None),
    ];
    // (method, path, body, expected per caller in the order above)
    let empty = json!({});
    let cases: Vec<(Method, String, Value, [StatusCode; 6])> = vec![
        (
            Method::GET,
            format!("/v1/recovery/asks/{id}"),
            empty.clone(),
            [nf, ok, nf, nf, nf, ua],
        ),
        (
            Method::GET,
            "/v1/recovery/referent-of".into(),
            empty.clone(),
            [fb, ok, ok, ok, fb, ua],
        ),
        (
            Method::GET,
            "/v1/recovery/asks".into(),
            empty.clone(),
            [fb, ok, ok, ok, fb, ua],
        ),
        (
            Method::GET,
            "/v1/me/recovery".into(),
            empty.clone(),
            [ok, ok, ok, ok, ok, ua],
        ),
        (
            Method::GET,
            "/v1/me/referents".into(),
            empty.clone(),
            [ok, ok, ok, ok, ok, ua],
        ),
        (
            Method::POST,
            format!("/v1/recovery/requests/{id}/refuse"),
            empty.clone(),
            [nf, ok, nf, nf, nf, ua],
        ),
        (
            Method::POST,
            format!("/v1/me/recovery/{id}/cancel"),
            empty.clone(),
            [ok, nf, nf, nf, nf, ua],
        ),
    ];
    for (method, path, body, expected) in cases {
        for ((name, token), want) in who.iter().zip(expected) {
            // Refuse and cancel change the request: everyone else goes first.
            let r = s
                .req(method.clone(), &path, *token)
                .json(&body)
                .sent()
                .await;
            assert_eq!(r.status(), want, "{name}: {method} {path}");
        }
    }
    // After the person cancelled, the referent's and the device's steps are refused.
    let asking = ask(s, "amina").await;
    let id = asking.id.as_str();
    for (name, token) in &who {
        let want = match *name {
            "referent" => StatusCode::OK,
            "anonymous" => ua,
            _ => nf,
        };
        let r = approve_as(s, *token, id, &asking).await;
        assert_eq!(r.status(), want, "{name}: approve");
    }
    // Anonymous endpoints: only the proof of the ephemeral key counts, never a session.
    for (name, token) in &who {
        let r = s
            .req(
                Method::POST,
                &format!("/v1/recovery/requests/{id}/cancel"),
                *token,
            )
            .json(&json!({"proof": b64(&[1u8; 32])}))
            .sent()
            .await;
        assert_eq!(r.status(), fb, "{name}: cancel without the proof");
        let r = s
            .req(
                Method::POST,
                &format!("/v1/recovery/requests/{id}/release"),
                *token,
            )
            .json(&json!({"proof": b64(&[1u8; 32]), "registration_request": b64(&[0; 32])}))
            .sent()
            .await;
        assert_eq!(r.status(), fb, "{name}: release without the proof");
    }
    let r = s
        .req(
            Method::GET,
            "/v1/recovery/requests/00000000000000000000000000000000",
            None,
        )
        .sent()
        .await;
    assert_problem(r, nf, "not-found").await;
}

async fn approve_as(
    s: &TestServer,
    token: Option<&str>,
    request: &str,
    asking: &Asking,
) -> reqwest::Response {
    let junk = Share::from_bytes(&[
        1, 2, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        7, 7, 7, 7, 7,
    ])
    .unwrap();
    s.req(
        Method::POST,
        &format!("/v1/recovery/requests/{request}/approve"),
        token,
    )
    .json(&json!({"sealed_share": b64(&junk.seal_to(&asking.ephemeral.to_recipient()).unwrap())}))
    .sent()
    .await
}

#[tokio::test]
async fn the_person_is_warned_at_login_too() {
    let w = world().await;
    let s = &w.s;
    set_referents(&w, 2).await;
    let asking = ask(s, "amina").await;
    let (token, _) = signed_in(s, "amina", "482913").await;
    let requests = my_requests(s, &token).await;
    assert_eq!(requests[0]["id"], asking.id.as_str());
    assert_eq!(requests[0]["state"], "open");
}

#[tokio::test]
async fn a_referent_who_leaves_no_longer_counts_and_everyone_is_told() {
    let w = world().await;
    let s = &w.s;
    set_referents(&w, 2).await;
    let amina = w.amina.user();
    let (doc, _, own) = s.upload(&amina, b"attestation CAF").await;
    let ines = w.w3.user();
    s.share(&amina, &doc, &own, &ines, None).await;
    // A request under way: nadia and ines approved before ines left.
    let asking = ask(s, "amina").await;
    approve(s, &w.w1, &asking.id).await;
    approve(s, &w.w3, &asking.id).await;

    // Only a worker's account can be disabled.
    assert!(admin::disable_account(s.store.as_ref(), "amina", s.now())
        .await
        .is_err());
    let disabled = admin::disable_account(s.store.as_ref(), "ines.w3", s.now())
        .await
        .unwrap();
    assert_eq!(disabled.disabled_at, Some(s.now()));
    // Her sessions ended, she cannot log in, nobody finds her key, shares to her are gone.
    let r = s.req(Method::GET, "/v1/me", Some(&w.w3.token)).sent().await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, body, _) = login(s, "ines.w3", "ines.w3 passphrase").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "/problems/account-disabled");
    let r = s
        .req(Method::GET, "/v1/keys/ines.w3", Some(&w.amina.token))
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
    assert!(s
        .store
        .envelope(doc.parse().unwrap(), w.w3.id.parse().unwrap())
        .await
        .unwrap()
        .is_none());
    let again = own
        .rewrap(
            std::slice::from_ref(&amina.identity),
            &w.w3.identity.to_recipient(),
        )
        .unwrap();
    let r = s
        .req(
            Method::PUT,
            &format!("/v1/documents/{doc}/envelopes/{}", w.w3.id),
            Some(&w.amina.token),
        )
        .json(&json!({"envelope": b64(again.as_bytes()), "expires_at": null}))
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;

    // The person sees two referents left of three; so do the other referents.
    let v: Value = s
        .req(Method::GET, "/v1/me/referents", Some(&w.amina.token))
        .value()
        .await;
    assert_eq!(v["active"], 2);
    assert_eq!(v["referents"][2]["active"], false);
    for other in [&w.w1, &w.w2] {
        let of: Value = s
            .req(Method::GET, "/v1/recovery/referent-of", Some(&other.token))
            .value()
            .await;
        assert_eq!(
            of,
            json!([{"account_id": w.amina.id, "handle": "amina", "threshold": 2, "referents": 3, "active": 2}])
        );
    }
    let r = s
        .req(
            Method::GET,
            "/v1/recovery/referent-of",
            Some(&w.amina.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // A disabled worker cannot be chosen again.
    let (body, _, _) = deal(&w.amina.identity, &w.amina.id, 2, &referents_of(&w));
    let r = s
        .req(Method::PUT, "/v1/me/referents", Some(&w.amina.token))
        .json(&body)
        .sent()
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    // Her approval no longer counts: after the delay nothing is released on it...
    s.advance(DELAY);
    let (client, registration) = ClientRegistration::start(b"808080").unwrap();
    assert_problem(
        release(s, &asking, &registration).await,
        StatusCode::CONFLICT,
        "recovery-waiting",
    )
    .await;
    // ... but the two referents left can still give the vault back, and the new shares go
    // to them only.
    approve(s, &w.w2, &asking.id).await;
    let r = release(s, &asking, &registration).await;
    assert_eq!(r.status(), StatusCode::OK);
    let released: Value = r.json().await.unwrap();
    let (good, wrong) = collect(&released, &asking);
    assert!(wrong.is_empty());
    let names: Vec<&str> = good.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(names, ["nadia.w1", "paul.w2"]);
    assert_eq!(released["referents"].as_array().unwrap().len(), 2);
    let shares: Vec<Share> = good.into_iter().map(|(_, s)| s).collect();
    let secret = RecoverySecret::combine(&shares).unwrap();
    let (end, _) = ending(&released, &asking, client, "808080", &secret);
    let r = finish(s, &asking, &end.body).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "{}",
        r.text().await.unwrap()
    );
    let deal = s
        .store
        .recovery_deal(w.amina.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut referents: Vec<String> = deal.shares.iter().map(|s| s.referent.to_string()).collect();
    referents.sort();
    let mut expected = vec![w.w1.id.clone(), w.w2.id.clone()];
    expected.sort();
    assert_eq!(referents, expected);
}
