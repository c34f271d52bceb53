//! The authorization matrix: every endpoint × owner, current recipient, revoked
//! recipient, stranger, anonymous, expired session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_server::store::Role;
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
    let owner = s.user("owner", Role::Beneficiary, None);
    let recipient = s.user("recipient", Role::Worker, None);
    let revoked = s.user("revoked", Role::Worker, None);
    let stranger = s.user("stranger", Role::Beneficiary, None);
    let third = s.user("third", Role::Worker, None);
    // A session of the owner that has expired.
    let expired = s.session_for(owner.id(), 10);

    let (doc, payload, own_env) = s.upload(&owner, &plaintext(1000)).await;
    s.share(&owner, &doc, &own_env, &recipient, None).await;
    s.share(&owner, &doc, &own_env, &revoked, None).await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{doc}/envelopes/{}", revoked.id()),
            Some(&owner.token),
        )
        .send()
        .await
        .unwrap();
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
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link_id = link["id"].as_str().unwrap().to_owned();
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
    // (method, path, body, [stranger, revoked, recipient, owner]); anonymous and expired are always 401.
    let d = &doc;
    let env_body = json!({"envelope": b64(third_env.as_bytes())});
    let link_body = json!({"envelope": b64(link_env.as_bytes())});
    let cases: Vec<(Method, String, Option<Value>, [S; 4])> = vec![
        (
            Method::GET,
            format!("/v1/documents/{d}"),
            None,
            [NF, NF, S::OK, S::OK],
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/payload"),
            None,
            [NF, NF, S::OK, S::OK],
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/upload"),
            None,
            [NF, NF, FB, S::OK],
        ),
        (
            Method::PATCH,
            format!("/v1/documents/{d}/payload?offset={}", payload.len()),
            None,
            [NF, NF, FB, S::CONFLICT],
        ),
        (
            Method::POST,
            format!("/v1/documents/{d}/commit"),
            None,
            [NF, NF, FB, S::CONFLICT],
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/envelopes"),
            None,
            [NF, NF, FB, S::OK],
        ),
        (
            Method::PUT,
            format!("/v1/documents/{d}/envelopes/{}", third.id()),
            Some(env_body),
            [NF, NF, FB, S::NO_CONTENT],
        ),
        (
            Method::DELETE,
            format!("/v1/documents/{d}/envelopes/{}", third.id()),
            None,
            [NF, NF, FB, S::NO_CONTENT],
        ),
        (
            Method::POST,
            format!("/v1/documents/{d}/links"),
            Some(link_body),
            [NF, NF, FB, S::CREATED],
        ),
        (
            Method::GET,
            format!("/v1/documents/{d}/links"),
            None,
            [NF, NF, FB, S::OK],
        ),
        (
            Method::DELETE,
            format!("/v1/links/{link_id}"),
            None,
            [NF, NF, FB, S::NO_CONTENT],
        ),
        (
            Method::GET,
            "/v1/documents".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        (
            Method::GET,
            "/v1/shared".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        (
            Method::GET,
            "/v1/me".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        (
            Method::GET,
            "/v1/keys/owner".into(),
            None,
            [S::OK, S::OK, S::OK, S::OK],
        ),
        (
            Method::POST,
            format!("/v1/accounts/{}/unlock", owner.id()),
            None,
            [FB, FB, FB, FB],
        ),
        (
            Method::DELETE,
            format!("/v1/documents/{d}"),
            None,
            [NF, NF, FB, S::NO_CONTENT],
        ),
    ];
    for (method, path, body, expected) in cases {
        for who in ORDER {
            let want = match who {
                Who::Anonymous | Who::Expired => U,
                Who::Stranger => expected[0],
                Who::Revoked => expected[1],
                Who::Recipient => expected[2],
                Who::Owner => expected[3],
            };
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
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v, json!([]), "{who:?}");
    }
    // The expired session was deleted on first use.
    assert!(s
        .store
        .session(&coffre_server::auth::hash_token(&expired).unwrap())
        .unwrap()
        .is_none());
}

fn own_env_b64(e: &coffre_core::Envelope) -> String {
    b64(e.as_bytes())
}
