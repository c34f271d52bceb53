//! Shares (envelopes per recipient, revoke, expiry) and links (expiry, download limit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_core::Identity;
use coffre_server::store::Role;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn recipient_decrypts_then_loses_access_on_revoke() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let worker = s.user("worker", Role::Worker, None).await;
    let plain = b"attestation d'hebergement".to_vec();
    let (id, _, own) = s.upload(&amina, &plain).await;
    s.share(&amina, &id, &own, &worker, None).await;

    let shared: Value = s
        .req(Method::GET, "/v1/shared", Some(&worker.token))
        .value()
        .await;
    assert_eq!(shared.as_array().unwrap().len(), 1);
    assert_eq!(shared[0]["id"], id);
    // The worker learns whose paper it is (the share graph is stored in clear anyway).
    assert_eq!(shared[0]["owner_handle"], "amina");
    let env = unb64(shared[0]["envelope"].as_str().unwrap());
    let payload = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}/payload"),
            Some(&worker.token),
        )
        .sent()
        .await
        .bytes()
        .await
        .unwrap();
    let mut file = env.clone();
    file.extend_from_slice(&payload);
    assert_eq!(
        coffre_core::decrypt(&file, std::slice::from_ref(&worker.identity)).unwrap(),
        plain
    );

    let shares: Value = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}/envelopes"),
            Some(&amina.token),
        )
        .value()
        .await;
    let recipients: Vec<&str> = shares
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["handle"].as_str().unwrap())
        .collect();
    assert!(
        recipients.contains(&"worker") && recipients.contains(&"amina"),
        "{shares}"
    );

    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{id}/envelopes/{}", worker.id()),
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}/payload"),
            Some(&worker.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
    let shared: Value = s
        .req(Method::GET, "/v1/shared", Some(&worker.token))
        .value()
        .await;
    assert_eq!(shared, json!([]));
    // Revoking twice: nothing left to revoke.
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{id}/envelopes/{}", worker.id()),
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
    // The owner's own envelope cannot be revoked.
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{id}/envelopes/{}", amina.id()),
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn a_recipient_can_drop_their_own_share_only() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let w1 = s.user("w1", Role::Worker, None).await;
    let w2 = s.user("w2", Role::Worker, None).await;
    let (id, _, own) = s.upload(&amina, b"doc").await;
    s.share(&amina, &id, &own, &w1, None).await;
    s.share(&amina, &id, &own, &w2, None).await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{id}/envelopes/{}", w2.id()),
            Some(&w1.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{id}/envelopes/{}", w1.id()),
            Some(&w1.token),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(s
        .store
        .envelope(id.parse().unwrap(), w2.id())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn shares_expire_and_are_purged() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let worker = s.user("worker", Role::Worker, None).await;
    let (id, _, own) = s.upload(&amina, b"doc").await;
    s.share(&amina, &id, &own, &worker, Some(s.now() + 100))
        .await;
    let r = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}"),
            Some(&worker.token),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_at"], s.now() + 100);
    s.advance(100);
    let r = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}/payload"),
            Some(&worker.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
    assert!(
        s.store
            .envelope(id.parse().unwrap(), worker.id())
            .await
            .unwrap()
            .is_none(),
        "expired envelope not purged"
    );
    // An expiry in the past is refused.
    let env = own
        .rewrap(
            std::slice::from_ref(&amina.identity),
            &worker.identity.to_recipient(),
        )
        .unwrap();
    let r = s
        .req(
            Method::PUT,
            &format!("/v1/documents/{id}/envelopes/{}", worker.id()),
            Some(&amina.token),
        )
        .json(&json!({"envelope": b64(env.as_bytes()), "expires_at": s.now()}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
}

/// An expiry past what the document's `int64` allows is refused like a malformed one, on
/// every backend: PostgreSQL stores times as bigint, and such a share or link was a 500
/// there while sled kept it (found looking into schemathesis's report of a `size` beyond
/// int64).
#[tokio::test]
async fn expiries_beyond_int64_are_refused() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let worker = s.user("worker", Role::Worker, None).await;
    let (id, _, own) = s.upload(&amina, b"doc").await;
    let env = own
        .rewrap(
            std::slice::from_ref(&amina.identity),
            &worker.identity.to_recipient(),
        )
        .unwrap();
    let beyond = i64::MAX as u64 + 1;
    for expires_at in [beyond, u64::MAX] {
        let r = s
            .req(
                Method::PUT,
                &format!("/v1/documents/{id}/envelopes/{}", worker.id()),
                Some(&amina.token),
            )
            .json(&json!({"envelope": b64(env.as_bytes()), "expires_at": expires_at}))
            .sent()
            .await;
        let v = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
        assert!(v["detail"].as_str().unwrap().contains("expires_at"), "{v}");
        let r = s
            .req(
                Method::POST,
                &format!("/v1/documents/{id}/links"),
                Some(&amina.token),
            )
            .json(&json!({"envelope": b64(env.as_bytes()), "expires_at": expires_at}))
            .sent()
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
    // Nothing was stored; the largest int64 itself is a time like any other.
    assert!(s
        .store
        .envelope(id.parse().unwrap(), worker.id())
        .await
        .unwrap()
        .is_none());
    s.share(&amina, &id, &own, &worker, Some(i64::MAX as u64))
        .await;
}

#[tokio::test]
async fn sharing_checks_envelope_recipient_and_commit() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let worker = s.user("worker", Role::Worker, None).await;
    let (id, _, own) = s.upload(&amina, b"doc").await;
    let path = format!("/v1/documents/{id}/envelopes/{}", worker.id());
    // Two stanzas: a valid age header, but not an envelope.
    let two = coffre_core::encrypt(
        b"x",
        &[
            amina.identity.to_recipient(),
            worker.identity.to_recipient(),
        ],
    )
    .unwrap();
    let header_len = two.windows(4).position(|w| w == b"--- ").unwrap();
    let header_end = header_len + two[header_len..].iter().position(|&b| b == b'\n').unwrap() + 1;
    for env in [
        two[..header_end].to_vec(),
        b"age-encryption.org/v1\n".to_vec(),
        vec![0xff; 100],
    ] {
        let r = s
            .req(Method::PUT, &path, Some(&amina.token))
            .json(&json!({"envelope": b64(&env)}))
            .sent()
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-envelope").await;
    }
    assert!(s
        .store
        .envelope(id.parse().unwrap(), worker.id())
        .await
        .unwrap()
        .is_none());
    // Unknown recipient account.
    let env = own
        .rewrap(
            std::slice::from_ref(&amina.identity),
            &worker.identity.to_recipient(),
        )
        .unwrap();
    let r = s
        .req(
            Method::PUT,
            &format!("/v1/documents/{id}/envelopes/{}", "11".repeat(16)),
            Some(&amina.token),
        )
        .json(&json!({"envelope": b64(env.as_bytes())}))
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
    // Not committed yet.
    let (e2, p2) = encrypt_for(&amina.identity, b"later");
    let pending = s.create(&amina, &e2, p2.len()).await;
    let r = s
        .req(
            Method::PUT,
            &format!("/v1/documents/{pending}/envelopes/{}", worker.id()),
            Some(&amina.token),
        )
        .json(&json!({"envelope": b64(env.as_bytes())}))
        .sent()
        .await;
    assert_problem(r, StatusCode::CONFLICT, "not-committed").await;
}

#[tokio::test]
async fn links_open_anonymously_until_expiry_or_limit() {
    let s = TestServer::start().await;
    let mut amina = s.user("amina", Role::Beneficiary, None).await;
    // The test moves the clock past a download grant's lifetime.
    amina.token = s.session_for(amina.id(), 24 * 3600).await;
    let plain = plaintext(70_000);
    let (id, payload, own) = s.upload(&amina, &plain).await;
    let link_key = Identity::generate().unwrap();
    let env = own
        .rewrap(
            std::slice::from_ref(&amina.identity),
            &link_key.to_recipient(),
        )
        .unwrap();
    let create = |body: Value| {
        s.req(
            Method::POST,
            &format!("/v1/documents/{id}/links"),
            Some(&amina.token),
        )
        .json(&body)
    };

    // Limit of 2 downloads, counted when the link is opened.
    let link: Value = create(json!({"envelope": b64(env.as_bytes()), "max_downloads": 2}))
        .value()
        .await;
    let lid = link["id"].as_str().unwrap().to_owned();
    let payload_path = format!("/v1/links/{lid}/payload");
    let fetch = |grant: Option<&str>, range: Option<&str>| {
        let path = match grant {
            Some(g) => format!("{payload_path}?grant={g}"),
            None => payload_path.clone(),
        };
        let mut r = s.req(Method::GET, &path, None);
        if let Some(range) = range {
            r = r.header("range", range);
        }
        r.send()
    };
    // Not opened yet: no grant, nothing to download.
    assert_problem(
        fetch(None, None).await.unwrap(),
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    let mut grants = Vec::new();
    for (n, left) in [(1, 1), (2, 0)] {
        // Showing the link counts nothing, however often.
        for _ in 0..3 {
            let shown: Value = s
                .req(Method::GET, &format!("/v1/links/{lid}"), None)
                .value()
                .await;
            assert_eq!(shown["downloads_left"], left + 1);
            assert!(shown.get("download_token").is_none());
        }
        let opened: Value = s
            .req(Method::GET, &format!("/v1/links/{lid}"), None)
            .value()
            .await;
        let granted: Value = s.link_grant(&lid, &grant_id(n)).value().await;
        assert_eq!(granted["downloads_left"], left);
        assert_eq!(granted["counted"], true);
        let grant = granted["download_token"].as_str().unwrap().to_owned();
        assert_eq!(
            granted["download_expires_at"],
            s.now() + coffre_server::store::LINK_GRANT_SECONDS
        );
        let got = fetch(Some(&grant), None).await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        let got = got.bytes().await.unwrap();
        let mut file = unb64(opened["envelope"].as_str().unwrap());
        file.extend_from_slice(&got);
        assert_eq!(
            coffre_core::decrypt(&file, std::slice::from_ref(&link_key)).unwrap(),
            plain
        );
        grants.push(grant);
    }
    // Used up: no third grant, the link is not shown any more (except to the holders of
    // its recent grants, reloading), and no payload without the token of a grant.
    let r = s
        .req(Method::GET, &format!("/v1/links/{lid}"), None)
        .sent()
        .await;
    assert_problem(r, StatusCode::GONE, "gone").await;
    let r = s.link_grant(&lid, &grant_id(3)).sent().await;
    assert_problem(r, StatusCode::GONE, "gone").await;
    for shown_to in [grant_id(3), "not-a-grant".to_owned()] {
        let r = s
            .req(
                Method::GET,
                &format!("/v1/links/{lid}?grant={shown_to}"),
                None,
            )
            .sent()
            .await;
        assert_problem(r, StatusCode::GONE, "gone").await;
    }
    let shown: Value = s
        .req(
            Method::GET,
            &format!("/v1/links/{lid}?grant={}", grant_id(2)),
            None,
        )
        .value()
        .await;
    assert_eq!(shown["downloads_left"], 0);
    for bad in ["", "short", &"A".repeat(40)] {
        let r = s.link_grant(&lid, bad).sent().await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
    assert_problem(fetch(None, None).await.unwrap(), StatusCode::GONE, "gone").await;
    assert_problem(
        fetch(None, Some("bytes=10-19")).await.unwrap(),
        StatusCode::GONE,
        "gone",
    )
    .await;
    // Forged, altered or truncated grants are no grants.
    let last = grants[1].clone();
    let mut altered = last.clone().into_bytes();
    altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
    for bad in [
        "x".to_owned(),
        String::from_utf8(altered).unwrap(),
        last[..last.len() - 2].to_owned(),
        "A".repeat(last.len()),
    ] {
        assert_problem(
            fetch(Some(&bad), None).await.unwrap(),
            StatusCode::GONE,
            "gone",
        )
        .await;
    }
    // A grant is for its own link only.
    let other: Value = create(json!({"envelope": b64(env.as_bytes())}))
        .value()
        .await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let opened: Value = s.link_grant(&other_id, &grant_id(1)).value().await;
    assert_eq!(opened["downloads_left"], Value::Null);
    let other_grant = opened["download_token"].as_str().unwrap().to_owned();
    assert_problem(
        fetch(Some(&other_grant), None).await.unwrap(),
        StatusCode::GONE,
        "gone",
    )
    .await;
    let r = s
        .req(
            Method::GET,
            &format!("/v1/links/{other_id}/payload?grant={other_grant}"),
            None,
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The visitor of the last opening resumes their interrupted download with Range.
    let r = fetch(Some(&last), Some("bytes=10-19")).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(r.bytes().await.unwrap()[..] == payload[10..20]);
    let r = fetch(Some(&last), Some("bytes=60000-")).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(r.bytes().await.unwrap()[..] == payload[60000..]);
    // ...until the grant runs out.
    s.advance(coffre_server::store::LINK_GRANT_SECONDS);
    assert_problem(
        fetch(Some(&last), Some("bytes=10-19")).await.unwrap(),
        StatusCode::GONE,
        "gone",
    )
    .await;

    // Expiry.
    let link: Value = create(json!({"envelope": b64(env.as_bytes()), "expires_at": s.now() + 50}))
        .value()
        .await;
    let lid = link["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.req(Method::GET, &format!("/v1/links/{lid}"), None)
            .sent()
            .await
            .status(),
        StatusCode::OK
    );
    let opened: Value = s.link_grant(&lid, &grant_id(1)).value().await;
    // The grant never outlives the link.
    assert_eq!(opened["download_expires_at"], s.now() + 50);
    let grant = opened["download_token"].as_str().unwrap().to_owned();
    s.advance(50);
    let r = s
        .req(Method::GET, &format!("/v1/links/{lid}"), None)
        .sent()
        .await;
    assert_problem(r, StatusCode::GONE, "gone").await;
    // Not even to the holder of a recent grant.
    let r = s.link_grant(&lid, &grant_id(1)).sent().await;
    assert_problem(r, StatusCode::GONE, "gone").await;
    for query in [String::new(), format!("?grant={grant}")] {
        let r = s
            .req(
                Method::GET,
                &format!("/v1/links/{lid}/payload{query}"),
                None,
            )
            .sent()
            .await;
        assert_problem(r, StatusCode::GONE, "gone").await;
    }

    // Bad inputs.
    let r = create(json!({"envelope": b64(env.as_bytes()), "max_downloads": 0}))
        .sent()
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    let r = create(json!({"envelope": b64(b"nope")})).sent().await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-envelope").await;
    let r = s
        .req(Method::GET, &format!("/v1/links/{}", "22".repeat(16)), None)
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;

    // Deleting the document takes its links with it.
    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .req(Method::GET, &format!("/v1/links/{lid}"), None)
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
}

#[tokio::test]
async fn sweep_purges_expired_and_abandoned_records() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let worker = s.user("worker", Role::Worker, None).await;
    let short_session = s.session_for(worker.id(), 10).await;
    let (id, _, own) = s.upload(&amina, b"doc").await;
    s.share(&amina, &id, &own, &worker, Some(s.now() + 10))
        .await;
    let env = own
        .rewrap(
            std::slice::from_ref(&amina.identity),
            &Identity::generate().unwrap().to_recipient(),
        )
        .unwrap();
    let r = s
        .req(
            Method::POST,
            &format!("/v1/documents/{id}/links"),
            Some(&amina.token),
        )
        .json(&json!({"envelope": b64(env.as_bytes()), "expires_at": s.now() + 10}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // An upload abandoned half-way, and a payload left by a crash in the middle of a delete.
    let (e2, p2) = encrypt_for(&amina.identity, &plaintext(5000));
    let abandoned = s.create(&amina, &e2, p2.len()).await;
    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{abandoned}/payload?offset=0"),
            Some(&amina.token),
        )
        .body(p2[..100].to_vec())
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let orphan: coffre_server::store::Id = "42424242424242424242424242424242".parse().unwrap();
    s.payloads.begin(orphan).await.unwrap();
    s.payloads
        .append(orphan, 0, 0, vec![bytes::Bytes::from_static(b"left over")])
        .await
        .unwrap();

    // Nothing is due yet: a sweep removes only the orphan payload.
    let first = s.sweep(3600).await.unwrap();
    assert_eq!(first.orphan_payloads, 1);
    assert!(!s.payload_ids().await.contains(&orphan));
    assert_eq!(
        (
            first.sessions,
            first.envelopes,
            first.links,
            first.stale_uploads
        ),
        (0, 0, 0, 0)
    );

    s.advance(3600 + 10);
    let swept = s.sweep(3600).await.unwrap();
    // The short session and the two one-hour sessions of the users.
    assert_eq!(swept.sessions, 3);
    assert_eq!(swept.envelopes, 1);
    assert_eq!(swept.links, 1);
    assert_eq!(swept.stale_uploads, 1);
    let doc: coffre_server::store::Id = id.parse().unwrap();
    assert!(s.store.envelope(doc, worker.id()).await.unwrap().is_none());
    assert!(s.store.links_of(doc).await.unwrap().is_empty());
    assert!(s
        .store
        .document(abandoned.parse().unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(!s.payload_ids().await.contains(&abandoned.parse().unwrap()));
    assert!(s
        .store
        .session(&coffre_server::auth::hash_token(&short_session).unwrap())
        .await
        .unwrap()
        .is_none());
    // The committed document and the owner's own envelope stay.
    assert!(s.store.document(doc).await.unwrap().is_some());
    assert!(s.store.envelope(doc, amina.id()).await.unwrap().is_some());
}

#[tokio::test]
async fn sweep_keeps_a_used_up_link_for_an_hour_after_its_last_opening() {
    use coffre_server::store::LINK_GRANT_SECONDS;
    let s = TestServer::start().await;
    let mut amina = s.user("amina", Role::Beneficiary, None).await;
    amina.token = s.session_for(amina.id(), 24 * 3600).await;
    let (id, payload, own) = s.upload(&amina, &plaintext(5000)).await;
    let doc: coffre_server::store::Id = id.parse().unwrap();
    let env = own
        .rewrap(
            std::slice::from_ref(&amina.identity),
            &Identity::generate().unwrap().to_recipient(),
        )
        .unwrap();
    let mut links = Vec::new();
    for body in [
        json!({"envelope": b64(env.as_bytes()), "max_downloads": 1}),
        json!({"envelope": b64(env.as_bytes()), "max_downloads": 2}),
        json!({"envelope": b64(env.as_bytes())}),
    ] {
        let link: Value = s
            .req(
                Method::POST,
                &format!("/v1/documents/{id}/links"),
                Some(&amina.token),
            )
            .json(&body)
            .value()
            .await;
        links.push(link["id"].as_str().unwrap().to_owned());
    }
    let open = |lid: &str| s.link_grant(lid, &grant_id(1)).send();
    // Opened (and so used up) 50 minutes after its creation.
    s.advance(50 * 60);
    let opened: Value = open(&links[0]).await.unwrap().json().await.unwrap();
    assert_eq!(opened["downloads_left"], 0);
    let grant = opened["download_token"].as_str().unwrap().to_owned();
    assert_eq!(open(&links[1]).await.unwrap().status(), StatusCode::OK);
    assert_eq!(open(&links[2]).await.unwrap().status(), StatusCode::OK);

    // More than an hour after creation, 20 minutes after the last opening: the visitor
    // may still be downloading, so the sweep keeps the link.
    s.advance(20 * 60);
    let swept = s.store.sweep(s.now(), 0).await.unwrap();
    assert_eq!(swept.links, 0, "{swept:?}");
    assert_eq!(s.store.links_of(doc).await.unwrap().len(), 3);
    let r = s
        .req(
            Method::GET,
            &format!("/v1/links/{}/payload?grant={grant}", links[0]),
            None,
        )
        .header("range", "bytes=100-")
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert!(r.bytes().await.unwrap()[..] == payload[100..]);

    // Once the last opening's grant is over, the used-up link goes; the link with a
    // download left and the unlimited one stay.
    s.advance(LINK_GRANT_SECONDS - 20 * 60 - 1);
    assert_eq!(s.store.sweep(s.now(), 0).await.unwrap().links, 0);
    s.advance(1);
    let swept = s.store.sweep(s.now(), 0).await.unwrap();
    assert_eq!(swept.links, 1, "{swept:?}");
    let left: Vec<String> = s
        .store
        .links_of(doc)
        .await
        .unwrap()
        .iter()
        .map(|l| l.id.to_string())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&links[0]));
    assert_problem(
        open(&links[0]).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    // The owner sees when each link was last opened.
    let listed: Value = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}/links"),
            Some(&amina.token),
        )
        .value()
        .await;
    for l in listed.as_array().unwrap() {
        assert_eq!(l["last_opened_at"], START_TIME + 50 * 60, "{l}");
    }
}

/// Posts a link to a fresh document of amina's, returning (link id, payload, link key).
async fn link_with(s: &TestServer, amina: &User, body: Value) -> (String, Vec<u8>) {
    let (id, payload, own) = s.upload(amina, &plaintext(1000)).await;
    let key = Identity::generate().unwrap();
    let env = own
        .rewrap(std::slice::from_ref(&amina.identity), &key.to_recipient())
        .unwrap();
    let mut body = body;
    body["envelope"] = json!(b64(env.as_bytes()));
    let link: Value = s
        .req(
            Method::POST,
            &format!("/v1/documents/{id}/links"),
            Some(&amina.token),
        )
        .json(&body)
        .value()
        .await;
    (link["id"].as_str().unwrap().to_owned(), payload)
}

#[tokio::test]
async fn a_reload_reuses_its_grant_within_the_window() {
    use coffre_server::store::LINK_REUSE_SECONDS;
    let s = TestServer::start().await;
    let mut amina = s.user("amina", Role::Beneficiary, None).await;
    amina.token = s.session_for(amina.id(), 24 * 3600).await;
    let (lid, payload) = link_with(&s, &amina, json!({"max_downloads": 3})).await;
    let downloads = || async {
        let link = s.store.link(lid.parse().unwrap()).await.unwrap().unwrap();
        link.downloads
    };
    let fetch = |token: String| {
        s.req(
            Method::GET,
            &format!("/v1/links/{lid}/payload?grant={token}"),
            None,
        )
        .sent()
    };
    // The first visit, then reloads of the page (the same grant id) within ten minutes:
    // one opening, the same token each time.
    let start = s.now();
    let first: Value = s.link_grant(&lid, &grant_id(7)).value().await;
    assert_eq!(
        (first["counted"].clone(), first["downloads_left"].clone()),
        (json!(true), json!(2))
    );
    for after in [1, 60, LINK_REUSE_SECONDS - 1] {
        s.advance(start + after - s.now());
        let again: Value = s.link_grant(&lid, &grant_id(7)).value().await;
        assert_eq!(again["counted"], false, "{after}");
        assert_eq!(again["downloads_left"], 2);
        assert_eq!(again["download_token"], first["download_token"]);
        let token = again["download_token"].as_str().unwrap().to_owned();
        let r = fetch(token).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.bytes().await.unwrap()[..] == payload[..]);
        assert_eq!(downloads().await, 1);
    }
    // Ten minutes after it was counted, the same id is a new visit: it counts again.
    s.advance(start + LINK_REUSE_SECONDS - s.now());
    let later: Value = s.link_grant(&lid, &grant_id(7)).value().await;
    assert_eq!(
        (later["counted"].clone(), later["downloads_left"].clone()),
        (json!(true), json!(1))
    );
    assert_eq!(downloads().await, 2);
    // Another visitor takes the last one; its reload still works, a third is refused.
    let other: Value = s.link_grant(&lid, &grant_id(8)).value().await;
    assert_eq!(other["downloads_left"], 0);
    let again: Value = s.link_grant(&lid, &grant_id(8)).value().await;
    assert_eq!(again["counted"], false);
    let shown = s
        .req(
            Method::GET,
            &format!("/v1/links/{lid}?grant={}", grant_id(8)),
            None,
        )
        .sent()
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    let r = s.link_grant(&lid, &grant_id(9)).sent().await;
    assert_problem(r, StatusCode::GONE, "gone").await;
    // Past the window even the last visitor's reload is a new opening, and there is none.
    s.advance(LINK_REUSE_SECONDS);
    let r = s.link_grant(&lid, &grant_id(8)).sent().await;
    assert_problem(r, StatusCode::GONE, "gone").await;
    assert_eq!(downloads().await, 3);
}

#[tokio::test]
async fn concurrent_visitors_of_a_one_opening_link_get_one_payload() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (lid, payload) = link_with(&s, &amina, json!({"max_downloads": 1})).await;
    let tries = (0..12u8).map(|n| {
        let s = &s;
        let lid = &lid;
        async move {
            let r = s.link_grant(lid, &grant_id(n)).sent().await;
            if r.status() != StatusCode::OK {
                assert_eq!(r.status(), StatusCode::GONE);
                return None;
            }
            let token = r.json::<Value>().await.unwrap()["download_token"]
                .as_str()
                .unwrap()
                .to_owned();
            let r = s
                .req(
                    Method::GET,
                    &format!("/v1/links/{lid}/payload?grant={token}"),
                    None,
                )
                .sent()
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            Some(r.bytes().await.unwrap())
        }
    });
    let delivered: Vec<_> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0][..] == payload[..]);
}
