//! Documents: upload in pieces, resume, commit, list, Range download, delete, limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_server::store::{Id, Role, PIECE_BYTES};
use coffre_server::Limits;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn upload_commit_list_download_roundtrip_over_several_pieces() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    // 2.5 MiB of plaintext: three pieces, the last one short.
    let plain = plaintext(PIECE_BYTES * 5 / 2);
    let (id, payload, envelope) = s.upload(&amina, &plain).await;

    let list: Value = s
        .req(Method::GET, "/v1/documents", Some(&amina.token))
        .value()
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["committed"], true);
    assert_eq!(list[0]["size"], payload.len());
    assert_eq!(
        unb64(list[0]["envelope"].as_str().unwrap()),
        envelope.as_bytes()
    );

    let r = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}/payload"),
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let got = r.bytes().await.unwrap();
    assert_eq!(got.len(), payload.len());
    assert!(got[..] == payload[..]);
    // envelope || payload is a standard age file that opens with the owner's identity.
    let file = envelope.join(&got);
    assert_eq!(
        coffre_core::decrypt(&file, &[amina.identity]).unwrap(),
        plain
    );
}

#[tokio::test]
async fn range_requests_cross_piece_boundaries() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (id, payload, _) = s.upload(&amina, &plaintext(PIECE_BYTES * 2)).await;
    let n = payload.len() as u64;
    let p = PIECE_BYTES as u64;
    let path = format!("/v1/documents/{id}/payload");
    for (header, start, end) in [
        (format!("bytes={}-{}", p - 10, p + 9), p - 10, p + 10),
        ("bytes=0-0".to_owned(), 0, 1),
        (format!("bytes={}-", n - 5), n - 5, n),
        ("bytes=-7".to_owned(), n - 7, n),
        (format!("bytes=5-{}", n * 2), 5, n),
    ] {
        let r = s
            .req(Method::GET, &path, Some(&amina.token))
            .header("range", &header)
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{header}");
        assert_eq!(
            r.headers()["content-range"].to_str().unwrap(),
            format!("bytes {start}-{}/{n}", end - 1)
        );
        let body = r.bytes().await.unwrap();
        assert!(
            body[..] == payload[start as usize..end as usize],
            "{header}"
        );
    }
    let r = s
        .req(Method::GET, &path, Some(&amina.token))
        .header("range", format!("bytes={n}-"))
        .sent()
        .await;
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{n}").as_str()
    );
    assert_problem(
        r,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
    )
    .await;
}

#[tokio::test]
async fn interrupted_upload_resumes_from_the_stored_offset() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let plain = plaintext(3 * PIECE_BYTES);
    let (envelope, payload) = encrypt_for(&amina.identity, &plain);
    let id = s.create(&amina, &envelope, payload.len()).await;

    // A body stream that dies after 1.5 pieces: the connection breaks mid-request.
    let cut = PIECE_BYTES + PIECE_BYTES / 2;
    let first: Vec<u8> = payload[..cut].to_vec();
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(first),
        Err(std::io::Error::other("network down")),
    ]);
    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{id}/payload?offset=0"),
            Some(&amina.token),
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    assert!(r.is_err() || !r.unwrap().status().is_success());

    // Not visible, not downloadable, not committable yet.
    let r = s
        .req(
            Method::POST,
            &format!("/v1/documents/{id}/commit"),
            Some(&amina.token),
        )
        .sent()
        .await;
    let v = assert_problem(r, StatusCode::CONFLICT, "upload-incomplete").await;
    assert!(v["stored"].as_u64().unwrap() < payload.len() as u64, "{v}");

    // The cut request may still be storing what arrived when this one comes (on a
    // networked store it can even take its lease after it): what it kept shows within a
    // moment, and never more than was sent.
    let mut stored = 0;
    for _ in 0..100 {
        let status: Value = s
            .req(
                Method::GET,
                &format!("/v1/documents/{id}/upload"),
                Some(&amina.token),
            )
            .value()
            .await;
        stored = status["stored"].as_u64().unwrap() as usize;
        if stored >= PIECE_BYTES {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stored <= cut, "stored {stored} > sent {cut}");
    assert!(
        stored >= PIECE_BYTES,
        "the full first piece must have been kept, got {stored}"
    );

    // Wrong offset: 409, nothing written.
    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{id}/payload?offset=0"),
            Some(&amina.token),
        )
        .body(payload.clone())
        .sent()
        .await;
    // The problem says where to resume, as `GET …/upload` does.
    let v = assert_problem(r, StatusCode::CONFLICT, "offset-mismatch").await;
    assert_eq!(v["stored"].as_u64().unwrap() as usize, stored, "{v}");

    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{id}/payload?offset={stored}"),
            Some(&amina.token),
        )
        .body(payload[stored..].to_vec())
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stored"], payload.len());
    s.commit(&amina, &id).await;
    let got = s.payload(&amina, &id).await;
    assert!(got[..] == payload[..]);
}

#[tokio::test]
async fn body_longer_than_declared_is_413_and_commit_refused() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (envelope, payload) = encrypt_for(&amina.identity, b"short");
    let id = s.create(&amina, &envelope, payload.len()).await;
    let mut longer = payload.clone();
    longer.extend_from_slice(&[0u8; 100]);
    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{id}/payload?offset=0"),
            Some(&amina.token),
        )
        .body(longer)
        .sent()
        .await;
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    let status: Value = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}/upload"),
            Some(&amina.token),
        )
        .value()
        .await;
    assert_eq!(status["stored"], 0);
    assert_eq!(status["committed"], false);
}

#[tokio::test]
async fn declared_sizes_must_be_age_stream_lengths_within_limits_and_quota() {
    let limits = Limits {
        quota_bytes: 200_000,
        max_document_bytes: 140_000,
        ..Limits::default()
    };
    let s = TestServer::start_with(limits).await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (envelope, _) = encrypt_for(&amina.identity, b"x");
    let create = |size: u64| {
        s.req(Method::POST, "/v1/documents", Some(&amina.token))
            .json(&json!({
                "metadata": b64(b"m"), "size": size, "envelope": b64(envelope.as_bytes())
            }))
    };
    for bad in [0u64, 16, 31, 16 + 65552 + 10] {
        let r = create(bad).send().await.unwrap();
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-payload").await;
    }
    let r = create(16 + 3 * 65552).send().await.unwrap();
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    assert_eq!(
        create(16 + 65552 + 65552).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let r = create(16 + 65552 + 65552).send().await.unwrap();
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "quota-exceeded").await;
    // Metadata over its own limit.
    let r = s
        .req(Method::POST, "/v1/documents", Some(&amina.token))
        .json(&json!({
            "metadata": b64(&vec![0u8; 65 * 1024]), "size": 32, "envelope": b64(envelope.as_bytes())
        }))
        .sent()
        .await;
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
}

#[tokio::test]
async fn uncommitted_documents_are_invisible_to_recipients_and_delete_removes_bytes() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (id, _, envelope) = s.upload(&amina, &plaintext(PIECE_BYTES + 5)).await;
    let doc: Id = id.parse().unwrap();
    assert!(s.payload_ids().await.contains(&doc));
    let worker = s.user("worker", Role::Worker, None).await;
    s.share(&amina, &id, &envelope, &worker, None).await;

    let r = s
        .req(
            Method::DELETE,
            &format!("/v1/documents/{id}"),
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The bytes themselves are gone, not only the record pointing at them.
    assert!(!s.payload_ids().await.contains(&doc));
    assert!(s.store.envelope(doc, worker.id()).await.unwrap().is_none());
    assert!(s.store.shared_with(worker.id()).await.unwrap().is_empty());
    let r = s
        .req(
            Method::GET,
            &format!("/v1/documents/{id}"),
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not-found").await;
    let list: Value = s
        .req(Method::GET, "/v1/documents", Some(&amina.token))
        .value()
        .await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn bodies_in_chunks_of_every_size_are_stored_in_order() {
    // The server writes a piece from the body's own chunks and copies only the small ones
    // together: a chunked body mixing 1-byte, small, large and piece-crossing chunks must
    // come back byte for byte.
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let plain = plaintext(PIECE_BYTES * 5 / 2 + 12_345);
    let (envelope, payload) = encrypt_for(&amina.identity, &plain);
    let id = s.create(&amina, &envelope, payload.len()).await;
    let sizes = [
        1,
        7,
        20_000,
        3,
        300_000,
        16_383,
        16_384,
        1,
        PIECE_BYTES + 5,
        65_536,
    ];
    let mut chunks = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < payload.len() {
        let end = (at + sizes[i % sizes.len()]).min(payload.len());
        chunks.push(Ok::<_, std::io::Error>(payload[at..end].to_vec()));
        (at, i) = (end, i + 1);
    }
    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{id}/payload?offset=0"),
            Some(&amina.token),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.commit(&amina, &id).await;
    let got = s.payload(&amina, &id).await;
    assert!(got[..] == payload[..], "stored bytes differ from the body");
    assert_eq!(
        coffre_core::decrypt(&envelope.join(&got), &[amina.identity]).unwrap(),
        plain
    );
}

#[tokio::test]
async fn empty_plaintext_document_round_trips() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (id, payload, envelope) = s.upload(&amina, b"").await;
    assert_eq!(payload.len(), 32);
    let got = s.payload(&amina, &id).await;
    assert_eq!(
        coffre_core::decrypt(&envelope.join(&got), &[amina.identity]).unwrap(),
        b""
    );
}

#[tokio::test]
async fn concurrent_creates_cannot_overrun_the_quota() {
    let size = 16 + 65552u64 * 3; // a valid STREAM length
    let limits = Limits {
        quota_bytes: size * 2 + 100,
        ..Limits::default()
    };
    let s = TestServer::start_with(limits).await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (envelope, _) = encrypt_for(&amina.identity, b"x");
    let body = json!({"metadata": b64(b"m"), "size": size, "envelope": b64(envelope.as_bytes())});
    let requests = (0..10).map(|_| {
        s.req(Method::POST, "/v1/documents", Some(&amina.token))
            .json(&body)
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2, "{statuses:?}");
    assert_eq!(s.store.documents_of(amina.id()).await.unwrap().len(), 2);
}

/// A crash after pieces reached the file but before their checkpoint: the record still
/// says 0, the file holds garbage past it. The resumed upload cuts that tail off, and
/// the document is exactly what was uploaded.
#[tokio::test]
async fn unacknowledged_bytes_of_a_crashed_upload_are_cut_off() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (envelope, payload) = encrypt_for(&amina.identity, &plaintext(PIECE_BYTES / 2));
    let id = s.create(&amina, &envelope, payload.len()).await;
    let doc: coffre_server::store::Id = id.parse().unwrap();
    // What a killed server leaves: written, never counted.
    let junk = bytes::Bytes::from(vec![0xee; payload.len() - 1]);
    s.payloads.append(doc, 0, 0, vec![junk]).await.unwrap();
    assert_eq!(s.store.document(doc).await.unwrap().unwrap().stored, 0);

    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{id}/payload?offset=0"),
            Some(&amina.token),
        )
        .body(payload[..100].to_vec())
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{id}/payload?offset=100"),
            Some(&amina.token),
        )
        .body(payload[100..].to_vec())
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.commit(&amina, &id).await;
    let got = s.payload(&amina, &id).await;
    assert!(got[..] == payload[..]);
}
