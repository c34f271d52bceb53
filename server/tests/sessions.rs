//! The sessions list: a person sees where they are signed in (a coarse device label,
//! login and last use, this one, shared computer or not) and closes one or all others,
//! from any of their sessions. Nobody sees or closes another person's sessions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::accounts::{login_with, register};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PHONE: &str = "Mozilla/5.0 (Linux; Android 13; SM-A136B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
const SHELTER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";

async fn log_in(s: &TestServer, handle: &str, pass: &str, ua: &str, shared: bool) -> String {
    let (status, body, _) = login_with(
        s,
        handle,
        pass,
        json!({}),
        json!({ "shared_computer": shared }),
        Some(ua),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn sessions(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s
        .req(Method::GET, "/v1/me/sessions", Some(token))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn status_of_me(s: &TestServer, token: &str) -> StatusCode {
    s.req(Method::GET, "/v1/me", Some(token))
        .sent()
        .await
        .status()
}

#[tokio::test]
async fn a_person_lists_and_closes_their_own_sessions_only() {
    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    register(&s, "worker.a", "worker pass one", Some(&invite), None).await;
    let worker = log_in(&s, "worker.a", "worker pass one", SHELTER, false).await;
    register(&s, "amina", "1234 5678", None, Some(&worker)).await;
    register(&s, "bilal", "8765 4321", None, Some(&worker)).await;

    let phone = log_in(&s, "amina", "1234 5678", PHONE, false).await;
    s.advance(120);
    let shelter = log_in(&s, "amina", "1234 5678", SHELTER, true).await;
    let bilal = log_in(&s, "bilal", "8765 4321", PHONE, false).await;

    // From the shelter's computer: two sessions, this one first, labels without versions.
    let list = sessions(&s, &shelter).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[0]["device"], "Firefox on Windows");
    assert_eq!(list[0]["shared_computer"], true);
    assert_eq!(list[1]["current"], false);
    assert_eq!(list[1]["device"], "Chrome on Android");
    assert_eq!(list[1]["shared_computer"], false);
    assert_eq!(
        list[0]["created_at"].as_u64().unwrap() - list[1]["created_at"].as_u64().unwrap(),
        120
    );
    // The public id is neither the token nor shown anywhere as one.
    let phone_id = list[1]["id"].as_str().unwrap().to_owned();
    for entry in &list {
        let id = entry["id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id != phone && id != shelter);
        let text = entry.to_string();
        assert!(!text.contains(&phone) && !text.contains(&shelter), "{text}");
    }

    // Last use moves at most once a minute: the phone was not used since its login...
    let login_time = list[1]["created_at"].as_u64().unwrap();
    assert_eq!(list[1]["last_used_at"].as_u64().unwrap(), login_time);
    // ...then is, two minutes later (the listing itself is a use).
    let used = sessions(&s, &phone).await[0]["last_used_at"]
        .as_u64()
        .unwrap();
    assert_eq!(used, login_time + 120);
    s.advance(30);
    assert_eq!(status_of_me(&s, &phone).await, StatusCode::OK);
    assert_eq!(
        sessions(&s, &phone).await[0]["last_used_at"]
            .as_u64()
            .unwrap(),
        used,
        "not written again within the minute"
    );
    s.advance(40);
    assert_eq!(
        sessions(&s, &phone).await[0]["last_used_at"]
            .as_u64()
            .unwrap(),
        used + 70
    );

    // Bilal sees only his own session, and cannot close Amina's: the same answer as an
    // id that does not exist.
    let his = sessions(&s, &bilal).await;
    assert_eq!(his.len(), 1);
    assert_ne!(his[0]["id"], phone_id.as_str());
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/me/sessions/{phone_id}"),
            Some(&bilal),
        )
        .sent()
        .await;
    let theirs = assert_problem(r, StatusCode::NOT_FOUND, "session-not-found").await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/me/sessions/{}", "0".repeat(32)),
            Some(&bilal),
        )
        .sent()
        .await;
    let none = assert_problem(r, StatusCode::NOT_FOUND, "session-not-found").await;
    assert_eq!(theirs, none);
    // Nor by knowing the token itself: a token is not an id.
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/me/sessions/{phone}"),
            Some(&bilal),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "session-not-found").await;
    let r = s
        .req(Method::POST, "/v1/me/sessions/close-others", Some(&bilal))
        .sent()
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["closed"], 0);
    assert_eq!(status_of_me(&s, &phone).await, StatusCode::OK);
    assert_eq!(status_of_me(&s, &shelter).await, StatusCode::OK);
    // Without a session, nothing.
    let r = s.req(Method::GET, "/v1/me/sessions", None).sent().await;
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // From her phone, Amina closes the shelter's session: its next request is refused.
    let shelter_id = sessions(&s, &phone).await[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/me/sessions/{shelter_id}"),
            Some(&phone),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(status_of_me(&s, &shelter).await, StatusCode::UNAUTHORIZED);
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/me/sessions/{shelter_id}"),
            Some(&phone),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "session-not-found").await;

    // Two more logins elsewhere; "close all others" ends them and keeps the phone's.
    let a = log_in(&s, "amina", "1234 5678", SHELTER, true).await;
    let b = log_in(&s, "amina", "1234 5678", SHELTER, false).await;
    let r = s
        .req(Method::POST, "/v1/me/sessions/close-others", Some(&phone))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["closed"], 2);
    assert_eq!(status_of_me(&s, &a).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of_me(&s, &b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of_me(&s, &phone).await, StatusCode::OK);
    assert_eq!(status_of_me(&s, &bilal).await, StatusCode::OK);
    let left = sessions(&s, &phone).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["current"], true);

    // Closing the current session is a logout.
    let own = left[0]["id"].as_str().unwrap().to_owned();
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/me/sessions/{own}"),
            Some(&phone),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(status_of_me(&s, &phone).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_raw_user_agent_is_never_stored() {
    let s = TestServer::start().await;
    let (_, invite) = s.org_with_invite("Relais").await;
    register(&s, "worker.b", "worker pass two", Some(&invite), None).await;
    let ua = "Mozilla/5.0 (Linux; Android 13; SM-A136B Build/TP1A.220624.014; wv) Chrome/120.0.6099.43 Mobile Safari/537.36 UniqueMarker/42";
    log_in(&s, "worker.b", "worker pass two", ua, false).await;
    let export = s.store.export().await.unwrap();
    let stored = serde_json::to_string(&export.sessions).unwrap();
    assert!(stored.contains("Chrome on Android"), "{stored}");
    for part in ["UniqueMarker", "SM-A136B", "6099", "TP1A"] {
        assert!(!stored.contains(part), "{part} kept: {stored}");
    }
}
