//! Health, problem documents for every kind of bad request, and the OpenAPI document
//! matching the router.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_server::store::Role;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_and_unknown_routes() {
    let s = TestServer::start().await;
    let r = s.req(Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = s.req(Method::GET, "/v1/nope", None).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "no-route").await;
    let r = s.req(Method::GET, "/elsewhere", None).send().await.unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "no-route").await;
    let r = s.req(Method::PUT, "/v1/documents", None).sent().await;
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
}

#[tokio::test]
async fn hostile_json_bodies_get_problems_and_write_nothing() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (envelope, _) = encrypt_for(&amina.identity, b"x");
    let post = || s.req(Method::POST, "/v1/documents", Some(&amina.token));

    // Not JSON at all / wrong media type.
    let r = post().body("{}").send().await.unwrap();
    assert_problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let r = post()
        .header("content-type", "text/plain")
        .body("{}")
        .sent()
        .await;
    assert_problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    // Broken syntax.
    for body in ["{", "[1,", "\u{0}", "{\"metadata\": \"\\ud800\"}"] {
        let r = post()
            .header("content-type", "application/json")
            .body(body)
            .sent()
            .await;
        let status = r.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {status}"
        );
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // Well-formed JSON of the wrong shape: missing field, wrong type, unknown field, negative size.
    for body in [
        json!({}),
        json!({"metadata": "", "size": "32", "envelope": ""}),
        json!({"metadata": "", "size": 32, "envelope": "", "extra": 1}),
        json!({"metadata": "", "size": -1, "envelope": ""}),
        json!([1, 2, 3]),
    ] {
        let r = post().json(&body).send().await.unwrap();
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    }
    // Bad base64, bad envelope.
    let r = post()
        .json(&json!({"metadata": "%%%", "size": 32, "envelope": b64(envelope.as_bytes())}))
        .sent()
        .await;
    let v = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable").await;
    assert!(v["detail"].as_str().unwrap().contains("metadata"));
    let mut bad = envelope.as_bytes().to_vec();
    bad.extend_from_slice(b"trailing");
    for env in [b"not an age header".to_vec(), bad, Vec::new()] {
        let r = post()
            .json(&json!({"metadata": "", "size": 32, "envelope": b64(&env)}))
            .sent()
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid-envelope").await;
    }
    // A body over the JSON limit (256 KiB) is 413 before it is parsed.
    let huge = format!("{{\"metadata\": \"{}\"}}", "A".repeat(300 * 1024));
    let r = post()
        .header("content-type", "application/json")
        .body(huge)
        .sent()
        .await;
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;

    // Hostile path and query values.
    let r = s
        .req(
            Method::GET,
            "/v1/documents/..%2F..%2Fetc",
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST, "bad-request").await;
    let r = s
        .req(
            Method::GET,
            "/v1/documents/ABCDEF00ABCDEF00ABCDEF00ABCDEF00",
            Some(&amina.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST, "bad-request").await;
    let id = s.create(&amina, &envelope, 32).await;
    for q in [
        "",
        "?offset=-1",
        "?offset=abc",
        "?offset=99999999999999999999999",
    ] {
        let r = s
            .req(
                Method::PATCH,
                &format!("/v1/documents/{id}/payload{q}"),
                Some(&amina.token),
            )
            .body("x")
            .sent()
            .await;
        assert_problem(r, StatusCode::BAD_REQUEST, "bad-request").await;
    }
    // Nothing half-written: exactly the one good document, nothing stored in it.
    let list: Value = s
        .req(Method::GET, "/v1/documents", Some(&amina.token))
        .value()
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["stored"], 0);
}

#[tokio::test]
async fn hostile_authorization_headers_are_401() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    for value in [
        "".to_owned(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Basic {}", amina.token),
        format!("Bearer {}x", amina.token),
        format!("Bearer {}", &amina.token[1..]),
        "Bearer ÿÿÿ".to_owned(),
        format!("Bearer {}", "A".repeat(10_000)),
    ] {
        let r = s
            .client
            .get(format!("{}/v1/documents", s.url))
            .header("authorization", value.as_bytes())
            .sent()
            .await;
        assert_problem(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let r = s
        .req(Method::GET, "/v1/documents", Some(&amina.token))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routed_operations() {
    use std::collections::BTreeSet;
    let s = TestServer::start().await;
    let doc: Value = s.req(Method::GET, "/v1/openapi.json", None).value().await;
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = coffre_server::operations()
        .into_iter()
        .map(|(op, path)| (op.name().to_owned(), path))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in the OpenAPI document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in the OpenAPI document but not routed: {unrouted:?}"
    );
    assert_eq!(
        routed.len(),
        coffre_server::operations().len(),
        "a route twice"
    );
    assert!(routed.len() >= 33, "{}", routed.len());

    // Every error answer is documented as what the server sends: a problem document
    // (RFC 9457) under its own media type, never plain JSON.
    let mut errors = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                if !status.starts_with('4') {
                    continue;
                }
                let content = response["content"].as_object();
                let types: Vec<&String> = content.into_iter().flatten().map(|(k, _)| k).collect();
                assert_eq!(
                    types,
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                errors += 1;
            }
        }
    }
    assert!(errors >= 33, "{errors} documented error answers");

    // The table is what the server really does: every documented operation answers (no
    // no-route, no method-not-allowed, no 500), and every other method on a documented
    // path is 405.
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path
            .replace("{id}", "00000000000000000000000000000000")
            .replace("{recipient}", "00000000000000000000000000000000")
            .replace("{handle}", "someone");
        for method in ["get", "post", "put", "patch", "delete"] {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.req(m.clone(), &concrete, None).send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert_ne!(body["type"], "/problems/no-route", "{m} {path} not routed");
                assert_ne!(
                    body["type"], "/problems/method-not-allowed",
                    "{m} {path} not routed"
                );
                assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{m} {path}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is served but not documented"
                );
                assert_eq!(body["type"], "/problems/method-not-allowed");
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // The path parameters are exactly the path's `{…}` segments: a query struct once
    // showed up as "in": "path" (required, with its name in no path).
    for (path, item) in doc["paths"].as_object().unwrap() {
        let segments: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let in_path: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(in_path, segments, "{method} {path}");
        }
    }
    for (path, method, query) in [
        ("/v1/documents/{id}/payload", "patch", "offset"),
        ("/v1/links/{id}/payload", "get", "grant"),
    ] {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
        let param = params.iter().find(|p| p["name"] == query).unwrap();
        assert_eq!(param["in"], "query", "{method} {path} {query}");
    }
    let grant = doc["paths"]["/v1/links/{id}/payload"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "grant")
        .unwrap();
    assert_eq!(grant["required"], false, "the grant is optional");
}

/// The schema a property or parameter ends up with: `Option<…>` fields are a `oneOf` of
/// null and the value's schema.
fn non_null(schema: &Value) -> &Value {
    match schema["oneOf"].as_array() {
        Some(options) => options
            .iter()
            .find(|o| o["type"] != "null")
            .unwrap_or(schema),
        None => schema,
    }
}

/// Whether a JSON property holds an id, by the API's naming.
fn is_id_property(name: &str) -> bool {
    name == "id"
        || name.ends_with("_id")
        || [
            "owner",
            "recipient",
            "referent",
            "document",
            "org",
            "created_by",
        ]
        .contains(&name)
}

#[tokio::test]
async fn every_id_and_handle_in_the_openapi_document_has_the_pattern_the_server_accepts() {
    let s = TestServer::start().await;
    let doc: Value = s.req(Method::GET, "/v1/openapi.json", None).value().await;
    let id_chars = 2 * coffre_server::store::ID_BYTES;
    assert_eq!(id_chars, 32);
    let id_pattern = "^[0-9a-f]{32}$";
    let check_id = |schema: &Value, what: &str| {
        let schema = non_null(schema);
        assert_eq!(schema["type"], "string", "{what}: {schema}");
        assert_eq!(schema["pattern"], id_pattern, "{what}: {schema}");
        assert_eq!(schema["minLength"], id_chars, "{what}: {schema}");
        assert_eq!(schema["maxLength"], id_chars, "{what}: {schema}");
    };

    // Every path parameter is an id or the handle, and says so.
    let mut ids = 0;
    let mut handle_pattern = None;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array();
            for param in params.into_iter().flatten() {
                if param["in"] != "path" {
                    continue;
                }
                let name = param["name"].as_str().unwrap();
                let what = format!("{method} {path} {{{name}}}");
                if name == "handle" {
                    let pattern = param["schema"]["pattern"].as_str();
                    assert!(pattern.is_some(), "{what}: {}", param["schema"]);
                    handle_pattern = pattern.map(str::to_owned);
                } else {
                    check_id(&param["schema"], &what);
                    ids += 1;
                }
            }
        }
    }
    assert!(ids >= 26, "{ids} id path parameters");
    // The handle's pattern is the server's reading of a handle: white space around
    // 3-64 ASCII letters of either case, digits, `.`, `_`, `-`.
    let handle_pattern = handle_pattern.expect("GET /v1/keys/{handle} is documented");
    assert!(
        handle_pattern.starts_with("^[\\u0009-\\u000d\\u0020\\u0085")
            && handle_pattern.contains("]*[A-Za-z0-9._-]{3,64}[")
            && handle_pattern.ends_with("\\u3000]*$"),
        "{handle_pattern}"
    );

    // Every id field of a request or answer body too.
    let mut fields = 0;
    let mut stack: Vec<(String, &Value)> = vec![("#".into(), &doc)];
    while let Some((at, value)) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (name, schema) in props {
                        if is_id_property(name) && non_null(schema)["type"] != "array" {
                            check_id(schema, &format!("{at}.{name}"));
                            fields += 1;
                        }
                    }
                }
                for (key, child) in map {
                    stack.push((format!("{at}/{key}"), child));
                }
            }
            Value::Array(items) => {
                for child in items {
                    stack.push((at.clone(), child));
                }
            }
            _ => {}
        }
    }
    assert!(fields >= 20, "{fields} id fields");

    // What the patterns admit, the server reads: a handle with white space and capitals
    // around it resolves like the plain one; an uppercase id is refused.
    let worker = s.user("nadia.w", Role::Worker, None).await;
    for handle in ["nadia.w", "%20NADIA.W%09", "%C2%85Nadia.W%E3%80%80"] {
        let r = s
            .req(
                Method::GET,
                &format!("/v1/keys/{handle}"),
                Some(&worker.token),
            )
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{handle}");
    }
    let r = s
        .req(
            Method::GET,
            &format!("/v1/documents/{}", "A".repeat(id_chars)),
            Some(&worker.token),
        )
        .sent()
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST, "bad-request").await;
}

#[tokio::test]
async fn payloads_ranges_and_base64_fields_are_documented_as_sent() {
    let s = TestServer::start().await;
    let doc: Value = s.req(Method::GET, "/v1/openapi.json", None).value().await;
    let binary = json!({"type": "string", "format": "binary"});
    for (path, method) in [
        ("/v1/documents/{id}/payload", "get"),
        ("/v1/links/{id}/payload", "get"),
    ] {
        let op = &doc["paths"][path][method];
        // Raw bytes, not the array of integers `Vec<u8>` would be in JSON.
        for status in ["200", "206"] {
            let content = &op["responses"][status]["content"]["application/octet-stream"];
            assert_eq!(content["schema"], binary, "{method} {path} {status}");
        }
        // The Range the server honours, and what says which part was sent.
        let range = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Range")
            .unwrap_or_else(|| panic!("{method} {path}: no Range"));
        assert_eq!(range["in"], "header");
        assert_eq!(range["required"], false);
        for status in ["206", "416"] {
            let headers = &op["responses"][status]["headers"];
            assert!(
                headers["Content-Range"].is_object(),
                "{method} {path} {status}"
            );
        }
    }
    let upload = &doc["paths"]["/v1/documents/{id}/payload"]["patch"]["requestBody"];
    assert_eq!(
        upload["content"]["application/octet-stream"]["schema"],
        binary
    );

    // Every field the server decodes as base64 says so.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("CreateDocument", "metadata"),
        ("CreateDocument", "envelope"),
        ("PutEnvelope", "envelope"),
        ("LoginStart", "login_request"),
        ("NewAccount", "bundle"),
        ("DealShareBody", "sealed_share"),
        ("DocumentView", "metadata"),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(property["contentEncoding"], "base64", "{schema}.{field}");
    }
}

#[tokio::test]
async fn every_answer_forbids_framing_and_referrers_and_api_answers_are_not_cached() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    for (path, token) in [
        ("/healthz", None),
        ("/v1/me", Some(amina.token.as_str())),
        ("/v1/me", None),
        ("/v1/no-such-route", None),
    ] {
        let r = s.req(Method::GET, path, token).sent().await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{path}");
        if path.starts_with("/v1/") {
            assert_eq!(h["cache-control"], "no-store", "{path} ({})", r.status());
        }
    }
}
