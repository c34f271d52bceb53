//! Malformed and hostile bodies on every JSON route, table-driven: wrong media type,
//! broken syntax, invalid UTF-8, deep nesting, wrong shapes, missing, unknown and duplicate
//! fields, wrong types, huge numbers, invalid base64, oversized bodies. Every one gets a
//! 4xx `application/problem+json`, and the store is byte for byte what it was before.
//! The table is checked against the OpenAPI document, so a new JSON route cannot be
//! left out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use coffre_server::store::Role;
use coffre_server::{admin, Limits};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// What every base64 field of the templates holds: valid base64 of bytes that are no
/// valid value of any field.
const JUNK: &[u8] = b"junk";

/// A digest of everything the store holds, on any backend: every durable record (one
/// snapshot, [`coffre_server::store::Records::export`]) and every payload's bytes. Pending
/// logins, rate windows and leases are left out: counting an attempt, refused or not, is
/// the rate counters' job, and the others live for minutes.
async fn store_digest(s: &TestServer) -> String {
    use futures_util::TryStreamExt as _;
    let mut hash = Sha256::new();
    let export = s.store.export().await.unwrap();
    hash.update(serde_json::to_vec(&export).unwrap());
    for id in s.payload_ids().await {
        hash.update(id.0);
        let held = s.payloads.held_bytes(id).await.unwrap().unwrap_or(0);
        let bytes: Vec<bytes::Bytes> = s
            .payloads
            .read(id, 0, held)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        hash.update(bytes.concat());
    }
    hex::encode(hash.finalize())
}

/// Paths (object keys from the root) of every field of `v`, nested objects included.
fn fields(v: &Value, prefix: &[String], out: &mut Vec<Vec<String>>) {
    if let Some(map) = v.as_object() {
        for (k, child) in map {
            let mut path = prefix.to_vec();
            path.push(k.clone());
            out.push(path.clone());
            fields(child, &path, out);
        }
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| &mut v[k.as_str()])
}

/// `template` with the field at `path` replaced by `value` (raw JSON text, so that
/// numbers serde_json cannot hold and deep nesting can be written).
fn replaced(template: &Value, path: &[String], value: &str) -> String {
    let marker = "\"__hostile_marker__\"";
    let mut v = template.clone();
    *get_mut(&mut v, path) = json!("__hostile_marker__");
    v.to_string().replace(marker, value)
}

fn removed(template: &Value, path: &[String]) -> String {
    let mut v = template.clone();
    let (last, parent) = path.split_last().unwrap();
    get_mut(&mut v, parent)
        .as_object_mut()
        .unwrap()
        .remove(last);
    v.to_string()
}

/// One hostile request: its label, content type (None: no header), body, and the exact
/// status expected (None: any 4xx but 404/405).
struct Case {
    label: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: Option<StatusCode>,
}

fn cases(template: &Value) -> Vec<Case> {
    let json_case = |label: String, body: String, status: Option<StatusCode>| Case {
        label,
        content_type: Some("application/json"),
        body: body.into_bytes(),
        status,
    };
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let mut out = vec![
        Case {
            label: "text/plain".into(),
            content_type: Some("text/plain"),
            body: template.to_string().into_bytes(),
            status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        },
        Case {
            label: "form content type".into(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: b"a=1".to_vec(),
            status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        },
        Case {
            label: "no content type".into(),
            content_type: None,
            body: template.to_string().into_bytes(),
            status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        },
        json_case(
            "empty body".into(),
            String::new(),
            Some(StatusCode::BAD_REQUEST),
        ),
        json_case(
            "truncated".into(),
            "{".into(),
            Some(StatusCode::BAD_REQUEST),
        ),
        json_case(
            "trailing garbage".into(),
            format!("{template} x"),
            Some(StatusCode::BAD_REQUEST),
        ),
        Case {
            label: "invalid UTF-8".into(),
            content_type: Some("application/json"),
            body: b"{\"\xff\xfe\": 1}".to_vec(),
            status: Some(StatusCode::BAD_REQUEST),
        },
        // Refused early (400 or 422), never recursed into until the stack overflows.
        json_case("deep nesting".into(), deep(100_000), None),
        json_case(
            "deep nesting of objects".into(),
            format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)),
            None,
        ),
        json_case(
            "oversized".into(),
            format!("{{\"x\": \"{}\"}}", "A".repeat(300 * 1024)),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        ),
        json_case(
            "unknown field".into(),
            {
                let mut v = template.clone();
                v["unexpected"] = json!(1);
                v.to_string()
            },
            Some(StatusCode::UNPROCESSABLE_ENTITY),
        ),
        json_case(
            "{}".into(),
            "{}".into(),
            Some(StatusCode::UNPROCESSABLE_ENTITY),
        ),
    ];
    for other in ["[1, 2, 3]", "null", "\"text\"", "42", "true"] {
        out.push(json_case(
            format!("top-level {other}"),
            other.into(),
            Some(StatusCode::UNPROCESSABLE_ENTITY),
        ));
    }
    let mut paths = Vec::new();
    fields(template, &[], &mut paths);
    for path in paths {
        let name = path.join(".");
        let current = template
            .pointer(&format!("/{}", path.join("/")))
            .unwrap()
            .clone();
        let wrong_type = match current {
            Value::String(_) => "12345",
            _ => "\"12345\"",
        };
        out.push(json_case(
            format!("{name}: wrong type"),
            replaced(template, &path, wrong_type),
            Some(StatusCode::UNPROCESSABLE_ENTITY),
        ));
        out.push(json_case(
            format!("{name}: object instead"),
            replaced(template, &path, "{\"a\": 1}"),
            Some(StatusCode::UNPROCESSABLE_ENTITY),
        ));
        // Larger than any integer type, and larger than an f64.
        out.push(json_case(
            format!("{name}: huge integer"),
            replaced(template, &path, &"9".repeat(400)),
            None,
        ));
        out.push(json_case(
            format!("{name}: huge float"),
            replaced(template, &path, "1e999"),
            None,
        ));
        out.push(json_case(
            format!("{name}: negative"),
            replaced(template, &path, "-1"),
            None,
        ));
        out.push(json_case(
            format!("{name}: deep nesting"),
            replaced(template, &path, &deep(10_000)),
            None,
        ));
        if current == json!(b64(JUNK)) {
            // A base64 field.
            out.push(json_case(
                format!("{name}: invalid base64"),
                replaced(template, &path, "\"%%% not base64 \\u0000 %%%\""),
                Some(StatusCode::UNPROCESSABLE_ENTITY),
            ));
            out.push(json_case(
                format!("{name}: base64 without padding"),
                replaced(template, &path, "\"AAECAwQ\""),
                None,
            ));
            out.push(json_case(
                format!("{name}: base64url"),
                replaced(template, &path, "\"-_-_\""),
                None,
            ));
        }
        out.push(json_case(
            format!("{name}: missing"),
            removed(template, &path),
            None,
        ));
        out.push(json_case(
            format!("{name}: duplicate"),
            {
                let text = template.to_string();
                let key = format!("\"{}\":", path.last().unwrap());
                text.replacen(&key, &format!("{key}null,{key}"), 1)
            },
            None,
        ));
    }
    out
}

#[tokio::test]
async fn every_json_route_refuses_hostile_bodies_with_a_problem_and_writes_nothing() {
    let s = TestServer::start_with(Limits {
        // Hundreds of requests from one address: the per-address budgets are tested
        // elsewhere and must not answer for the body checks here.
        login_attempts_per_ip_per_minute: u32::MAX,
        registrations_per_ip_per_minute: u32::MAX,
        recovery_attempts_per_ip_per_minute: u32::MAX,
        link_openings_per_ip_per_minute: u32::MAX,
        ..Limits::default()
    })
    .await;
    let org = admin::create_org(s.store.as_ref(), "Relais", s.now())
        .await
        .unwrap();
    let worker = s.user("worker", Role::Worker, Some(org.id)).await;
    let amina = s.user("amina", Role::Beneficiary, Some(org.id)).await;
    let (doc, _, _) = s.upload(&amina, &plaintext(100)).await;
    let junk = b64(JUNK);
    let account = json!({
        "account_id": "00112233445566778899aabbccddeeff",
        "handle": "new.person",
        "registration_upload": junk,
        "public_key": amina.account.public_key,
        "bundle": junk,
        "recovery_bundle": junk,
        "recovery_verifier": junk,
    });
    // Each template is well-typed, and refused by its handler as it stands: whatever a
    // mutation leaves intact, nothing may be stored.
    let table: Vec<(Method, String, Option<&str>, Value)> = vec![
        (
            Method::POST,
            "/v1/registrations/start".into(),
            None,
            json!({"registration_request": junk}),
        ),
        (
            Method::POST,
            "/v1/workers".into(),
            None,
            json!({"invite": "made-up", "account": account}),
        ),
        (
            Method::POST,
            "/v1/beneficiaries".into(),
            Some(&worker.token),
            json!({"consent": false, "account": account}),
        ),
        (
            Method::POST,
            "/v1/login/start".into(),
            None,
            json!({"handle": "nobody.here", "login_request": junk}),
        ),
        (
            Method::POST,
            "/v1/login/finish".into(),
            None,
            json!({"login_id": "00".repeat(16), "login_finalization": junk}),
        ),
        (
            Method::POST,
            "/v1/me/passphrase/start".into(),
            Some(&amina.token),
            json!({"registration_request": junk}),
        ),
        (
            Method::POST,
            "/v1/me/passphrase".into(),
            Some(&amina.token),
            json!({"registration_upload": junk, "bundle": junk}),
        ),
        (
            Method::POST,
            "/v1/recovery/lookup".into(),
            None,
            json!({"handle": "nobody.here"}),
        ),
        (
            Method::POST,
            "/v1/recovery/start".into(),
            None,
            json!({"handle": "amina", "recovery_token": junk, "registration_request": junk}),
        ),
        (
            Method::POST,
            "/v1/recovery/finish".into(),
            None,
            json!({"handle": "amina", "recovery_token": junk, "registration_upload": junk, "bundle": junk}),
        ),
        (
            Method::POST,
            "/v1/documents".into(),
            Some(&amina.token),
            json!({"metadata": junk, "size": 5, "envelope": junk}),
        ),
        (
            Method::PUT,
            format!("/v1/documents/{doc}/envelopes/{}", worker.id()),
            Some(&amina.token),
            json!({"envelope": junk, "expires_at": s.now() + 60}),
        ),
        (
            Method::POST,
            format!("/v1/documents/{doc}/links"),
            Some(&amina.token),
            json!({"envelope": junk, "expires_at": s.now() + 60, "max_downloads": 3}),
        ),
        // A visitor's grant: the document's id is no link's, so refused whatever the body,
        // and nothing may be counted.
        (
            Method::POST,
            format!("/v1/links/{doc}/grants"),
            None,
            json!({"grant": junk}),
        ),
        // Recovery through referents. The request routes name the document's id, which is
        // no request's: refused whatever the body.
        (
            Method::PUT,
            "/v1/me/referents".into(),
            Some(&amina.token),
            json!({"threshold": 2, "bundle": junk, "verifier": junk, "shares": [
                {"referent": worker.id().to_string(), "index": 1, "sealed_share": junk, "commitment": junk}
            ]}),
        ),
        (
            Method::POST,
            "/v1/me/recovery-kit".into(),
            Some(&amina.token),
            json!({"recovery_bundle": junk, "recovery_verifier": junk}),
        ),
        (
            Method::POST,
            "/v1/recovery/requests".into(),
            None,
            json!({"handle": "amina", "ephemeral_key": "age1notakey"}),
        ),
        (
            Method::POST,
            "/v1/recovery/cancel".into(),
            None,
            json!({"handle": "amina", "recovery_token": junk}),
        ),
        (
            Method::POST,
            format!("/v1/recovery/requests/{doc}/cancel"),
            None,
            json!({"proof": junk}),
        ),
        (
            Method::POST,
            format!("/v1/recovery/requests/{doc}/release"),
            None,
            json!({"proof": junk, "registration_request": junk}),
        ),
        (
            Method::POST,
            format!("/v1/recovery/requests/{doc}/finish"),
            None,
            json!({"proof": junk, "secret_token": junk, "registration_upload": junk, "bundle": junk,
                   "recovery_bundle": junk, "recovery_verifier": junk, "deal": null}),
        ),
        (
            Method::POST,
            format!("/v1/recovery/requests/{doc}/approve"),
            Some(&worker.token),
            json!({"sealed_share": junk}),
        ),
    ];

    // The table covers every route whose OpenAPI request body is JSON.
    let openapi: Value = s.req(Method::GET, "/v1/openapi.json", None).value().await;
    let mut json_routes = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !op["requestBody"]["content"]["application/json"].is_null() {
                json_routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let tested: BTreeSet<(String, String)> = table
        .iter()
        .map(|(m, p, _, _)| {
            let generic = p
                .replace(&doc, "{id}")
                .replace(&worker.id().to_string(), "{recipient}");
            (m.to_string(), generic)
        })
        .collect();
    assert_eq!(tested, json_routes, "the table must hold every JSON route");

    let before = store_digest(&s).await;
    let mut requests = 0;
    for (method, path, token, template) in &table {
        // The template itself writes nothing (all are refused but the recovery lookup,
        // which only reads).
        let r = s
            .req(method.clone(), path, *token)
            .json(template)
            .sent()
            .await;
        assert!(
            r.status().is_client_error() || path == "/v1/recovery/lookup",
            "{method} {path}: template"
        );
        assert_eq!(
            store_digest(&s).await,
            before,
            "{method} {path}: template wrote"
        );
        for case in cases(template) {
            let mut req = s.req(method.clone(), path, *token).body(case.body);
            if let Some(ct) = case.content_type {
                req = req.header("content-type", ct);
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = r.text().await.unwrap();
            let what = format!("{method} {path} [{}]: {status} {text}", case.label);
            match case.status {
                Some(want) => assert_eq!(status, want, "{what}"),
                None => assert!(
                    status.is_client_error()
                        && status != StatusCode::NOT_FOUND
                        && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{what}"
                ),
            }
            assert_eq!(ct.as_deref(), Some("application/problem+json"), "{what}");
            let problem: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(problem["status"], status.as_u16(), "{what}");
            assert!(
                problem["type"].as_str().unwrap().starts_with("/problems/"),
                "{what}"
            );
            assert_eq!(store_digest(&s).await, before, "{what}: the store changed");
            requests += 1;
        }
    }
    assert!(requests > 13 * 30, "{requests}");
    // Still serving normally afterwards.
    let r = s
        .req(Method::GET, "/v1/documents", Some(&amina.token))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
