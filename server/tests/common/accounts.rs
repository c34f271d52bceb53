//! Accounts through the real protocol: OPAQUE registration (worker or beneficiary) and
//! login, as a client does them, with coffre-core on the client side.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use coffre_core::bundle::KeyBundle;
use coffre_core::opaque::{self, ClientLogin, ClientRegistration, KSF_V1};
use coffre_core::recovery::{recovery_verifier, RecoveryCode};
use coffre_core::Identity;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{b64, unb64, Sent, TestServer};

/// Runs a client registration; `auth` is either an invite (worker) or a worker token
/// (beneficiary). Returns the account id and identity.
pub async fn register(
    s: &TestServer,
    handle: &str,
    pass: &str,
    invite: Option<&str>,
    worker_token: Option<&str>,
) -> (String, Identity) {
    let (id, identity, _) = register_with_code(s, handle, pass, invite, worker_token).await;
    (id, identity)
}

/// [`register`], also returning the printed recovery code.
pub async fn register_with_code(
    s: &TestServer,
    handle: &str,
    pass: &str,
    invite: Option<&str>,
    worker_token: Option<&str>,
) -> (String, Identity, RecoveryCode) {
    let (client, request) = ClientRegistration::start(pass.as_bytes()).unwrap();
    let started: Value = s
        .req(Method::POST, "/v1/registrations/start", None)
        .json(&json!({"registration_request": b64(&request)}))
        .value()
        .await;
    let account_id = started["account_id"].as_str().unwrap().to_owned();
    let response = unb64(started["registration_response"].as_str().unwrap());
    let (upload, export_key) = client.finish(pass.as_bytes(), &response, KSF_V1).unwrap();
    let identity = Identity::generate().unwrap();
    let bundle = KeyBundle::seal_with_export_key(&identity, &export_key, &account_id).unwrap();
    let code = RecoveryCode::generate().unwrap();
    let recovery = KeyBundle::seal_with_recovery_code(&identity, &code, &account_id).unwrap();
    let verifier = recovery_verifier(&code.derive_auth_token(&account_id));
    let account = json!({
        "account_id": account_id,
        "handle": handle,
        "registration_upload": b64(&upload),
        "public_key": identity.to_recipient().to_string(),
        "bundle": b64(&bundle.to_bytes()),
        "recovery_bundle": b64(&recovery.to_bytes()),
        "recovery_verifier": b64(&verifier),
    });
    let r = match (invite, worker_token) {
        (Some(code), _) => s
            .req(Method::POST, "/v1/workers", None)
            .json(&json!({"invite": code, "account": account})),
        (None, Some(t)) => s
            .req(Method::POST, "/v1/beneficiaries", Some(t))
            .json(&json!({"consent": true, "account": account})),
        _ => panic!("need an invite or a worker"),
    }
    .sent()
    .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    (account_id, identity, code)
}

/// Full login; returns the response (status, body) and, on success, the opened identity.
pub async fn login(
    s: &TestServer,
    handle: &str,
    pass: &str,
) -> (StatusCode, Value, Option<Identity>) {
    login_from(s, handle, pass, json!({})).await
}

/// [`login`] with more fields in the start (`device`, `remember_device`).
pub async fn login_from(
    s: &TestServer,
    handle: &str,
    pass: &str,
    device: Value,
) -> (StatusCode, Value, Option<Identity>) {
    login_with(s, handle, pass, device, json!({}), None).await
}

/// [`login`] with more fields in the start and the finish (`shared_computer`), and a
/// User-Agent of the browser it pretends to be.
pub async fn login_with(
    s: &TestServer,
    handle: &str,
    pass: &str,
    device: Value,
    finish: Value,
    user_agent: Option<&str>,
) -> (StatusCode, Value, Option<Identity>) {
    let (client, request) = ClientLogin::start(pass.as_bytes()).unwrap();
    let mut start = json!({"handle": handle, "login_request": b64(&request)});
    if let (Some(start), Some(extra)) = (start.as_object_mut(), device.as_object()) {
        start.extend(extra.clone());
    }
    let r = s
        .req(Method::POST, "/v1/login/start", None)
        .json(&start)
        .sent()
        .await;
    if r.status() != StatusCode::OK {
        let status = r.status();
        return (status, r.json().await.unwrap(), None);
    }
    let started: Value = r.json().await.unwrap();
    let response = unb64(started["login_response"].as_str().unwrap());
    let ksf =
        opaque::KsfParams::from_version(started["ksf_version"].as_u64().unwrap() as u16).unwrap();
    let finalization = match client.finish(pass.as_bytes(), &response, ksf) {
        Ok((fin, _, export_key)) => Some((fin, export_key)),
        Err(_) => None,
    };
    // A client that failed locally still tells the server nothing useful: send junk.
    let fin_bytes = finalization
        .as_ref()
        .map(|(f, _)| f.clone())
        .unwrap_or_else(|| vec![7u8; 64]);
    let mut body = json!({"login_id": started["login_id"], "login_finalization": b64(&fin_bytes)});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), finish.as_object()) {
        body.extend(extra.clone());
    }
    let mut r = s.req(Method::POST, "/v1/login/finish", None).json(&body);
    if let Some(ua) = user_agent {
        r = r.header(reqwest::header::USER_AGENT, ua);
    }
    let r = r.sent().await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    let identity = match (status, finalization) {
        (StatusCode::OK, Some((_, export_key))) => {
            let bundle = KeyBundle::from_bytes(&unb64(body["bundle"].as_str().unwrap())).unwrap();
            Some(
                bundle
                    .open_with_export_key(&export_key, body["account"]["id"].as_str().unwrap())
                    .unwrap(),
            )
        }
        _ => None,
    };
    (status, body, identity)
}
