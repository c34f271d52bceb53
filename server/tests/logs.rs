//! The server's logs never contain tokens, invite codes, envelopes or other secrets.
//! One test per binary: it installs the process-wide tracing subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use coffre_core::bundle::KeyBundle;
use coffre_core::opaque::{ClientLogin, ClientRegistration, KSF_V1};
use coffre_core::Identity;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_hold_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    let pass = "secret pin 4711";
    let (client, request) = ClientRegistration::start(pass.as_bytes()).unwrap();
    let started: Value = s
        .req(Method::POST, "/v1/registrations/start", None)
        .json(&json!({"registration_request": b64(&request)}))
        .value()
        .await;
    let account_id = started["account_id"].as_str().unwrap().to_owned();
    let (upload, export_key) = client
        .finish(
            pass.as_bytes(),
            &unb64(started["registration_response"].as_str().unwrap()),
            KSF_V1,
        )
        .unwrap();
    let identity = Identity::generate().unwrap();
    let bundle = KeyBundle::seal_with_export_key(&identity, &export_key, &account_id).unwrap();
    let r = s
        .req(Method::POST, "/v1/workers", None)
        .json(&json!({"invite": invite, "account": {
            "account_id": account_id, "handle": "worker", "registration_upload": b64(&upload),
            "public_key": identity.to_recipient().to_string(), "bundle": b64(&bundle.to_bytes()),
        }}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // A failed login, then a good one.
    for p in ["wrong", pass] {
        let (client, ke1) = ClientLogin::start(p.as_bytes()).unwrap();
        let started: Value = s
            .req(Method::POST, "/v1/login/start", None)
            .json(&json!({"handle": "worker", "login_request": b64(&ke1)}))
            .value()
            .await;
        let ke3 = client
            .finish(
                p.as_bytes(),
                &unb64(started["login_response"].as_str().unwrap()),
                KSF_V1,
            )
            .map(|(ke3, _, _)| ke3)
            .unwrap_or_else(|_| vec![1; 64]);
        let r = s
            .req(Method::POST, "/v1/login/finish", None)
            .json(&json!({"login_id": started["login_id"], "login_finalization": b64(&ke3)}))
            .sent()
            .await;
        if p == pass {
            let body: Value = r.json().await.unwrap();
            let token = body["token"].as_str().unwrap().to_owned();
            let worker = common::User {
                account: s.store.account_by_handle("worker").await.unwrap().unwrap(),
                identity: Identity::generate().unwrap(),
                token: token.clone(),
            };
            let (id, _, own) = s.upload(&worker, b"doc").await;
            // A link opened anonymously, and its payload fetched with the opening's grant.
            let link_env = own
                .rewrap(
                    std::slice::from_ref(&worker.identity),
                    &Identity::generate().unwrap().to_recipient(),
                )
                .unwrap();
            let link: Value = s
                .req(
                    Method::POST,
                    &format!("/v1/documents/{id}/links"),
                    Some(&token),
                )
                .json(&json!({"envelope": b64(link_env.as_bytes()), "max_downloads": 1}))
                .value()
                .await;
            let link_id = link["id"].as_str().unwrap().to_owned();
            let grant_name = common::grant_id(1);
            let opened: Value = s.link_grant(&link_id, &grant_name).value().await;
            let grant = opened["download_token"].as_str().unwrap().to_owned();
            let r = s
                .req(
                    Method::GET,
                    &format!("/v1/links/{link_id}/payload?grant={grant}"),
                    None,
                )
                .sent()
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            let secrets: Vec<String> = vec![
                grant,
                grant_name,
                b64(link_env.as_bytes()),
                token,
                invite.clone(),
                pass.to_owned(),
                b64(own.as_bytes()),
                b64(&bundle.to_bytes()),
                b64(&upload),
                b64(&s.server_key),
                started["login_id"].as_str().unwrap().to_owned(),
            ];
            // A spent budget is logged with the client's address (for the operator).
            for _ in 0..4 {
                let (_, request) = ClientLogin::start(b"guess").unwrap();
                s.req(Method::POST, "/v1/login/start", None)
                    .json(&json!({"handle": "someone", "login_request": b64(&request)}))
                    .sent()
                    .await;
            }
            let _ = s.stop().await;
            let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
            assert!(logs.contains("login"), "the capture works: {logs}");
            assert!(logs.contains("failed login"));
            let throttled = logs
                .lines()
                .find(|l| l.contains("login throttled"))
                .expect("the throttle is logged");
            assert!(throttled.contains("client=\"127.0.0.1\""), "{throttled}");
            assert!(throttled.contains("retry_after=30"), "{throttled}");
            for secret in secrets {
                assert!(!logs.contains(&secret), "a secret is in the logs: {secret}");
            }
            return;
        }
    }
    panic!("never logged in");
}
