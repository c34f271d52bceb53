//! The surface a browser and the network see: the security headers on every kind of
//! answer, HSTS only for TLS clients of a trusted proxy, only the package's shipped files
//! under `/pkg/`, per-class budgets keyed on the forwarded client address, and the read
//! timeouts (a slowloris client is cut, an idle body is cut, a slow but moving body is
//! not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffre_core::opaque::{ClientLogin, ServerSetup};
use coffre_server::client::TrustedProxies;
use coffre_server::statics::StaticDirs;
use coffre_server::store::{self, Role};
use coffre_server::{AppState, Limits};
use common::*;
use futures_util::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
img-src 'self' blob:; frame-src blob:; worker-src 'self'; connect-src 'self'; \
object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// A server with a web app and a package folder laid out as the repository's is: shipped
/// files next to node_modules, tests and a lock file.
async fn start_with_statics(proxies: &str) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    let pkg = dir.path().join("pkg");
    for sub in ["gen", "node_modules/typescript", "test/node", "bench"] {
        std::fs::create_dir_all(pkg.join(sub)).unwrap();
    }
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>Coffre</title>",
    )
    .unwrap();
    std::fs::write(
        pkg.join("package.json"),
        r#"{"name":"coffre","files":["index.js","worker.js","gen/coffre_wasm.js","gen/coffre_wasm_bg.wasm","README.md"]}"#,
    )
    .unwrap();
    for file in [
        "index.js",
        "worker.js",
        "gen/coffre_wasm.js",
        "README.md",
        "node_modules/typescript/package.json",
        "test/node/api.test.js",
        "package-lock.json",
        "bench/run.js",
        "gen/unlisted.js",
    ] {
        std::fs::write(pkg.join(file), "export {};\n").unwrap();
    }
    std::fs::write(pkg.join("gen/coffre_wasm_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let (records, payloads) = store::open_embedded(&dir.path().join("data"), 8 << 20).unwrap();
    let mut state = AppState::new(
        Arc::new(records),
        Arc::new(payloads),
        ServerSetup::generate(),
        Limits::default(),
    );
    state.statics = StaticDirs {
        web: Some(web),
        pkg: Some(pkg),
    };
    state.proxies = Arc::new(TrustedProxies::parse(proxies).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffre_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    (url, dir)
}

fn assert_security_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(
            h.get_all(name).iter().collect::<Vec<_>>(),
            [value],
            "{what}: {name}"
        );
    }
    let permissions = h["permissions-policy"].to_str().unwrap();
    let features: Vec<&str> = permissions.split(", ").collect();
    assert!(features.contains(&"camera=(self)"), "{what}: {permissions}");
    for feature in &features {
        assert!(
            *feature == "camera=(self)" || feature.ends_with("=()"),
            "{what}: {feature} is allowed"
        );
    }
    assert!(features.contains(&"microphone=()") && features.contains(&"geolocation=()"));
}

#[tokio::test]
async fn every_kind_of_answer_carries_the_security_headers() {
    let (url, _dir) = start_with_statics("").await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{url}{path}")).send();

    let page = get("/").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(&page, "app page");
    assert_eq!(page.headers()["cache-control"], "no-cache");

    let module = get("/pkg/gen/coffre_wasm.js").await.unwrap();
    assert_eq!(module.status(), StatusCode::OK);
    assert_security_headers(&module, "package file");

    let api = get("/v1/openapi.json").await.unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    assert_security_headers(&api, "API answer");
    assert_eq!(api.headers()["cache-control"], "no-store");

    let error = client
        .post(format!("{url}/v1/login/start"))
        .json(&json!({"handle": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error.headers()["content-type"], "application/problem+json");
    assert_security_headers(&error, "API error");
    assert_eq!(error.headers()["cache-control"], "no-store");

    let missing = get("/v1/nope").await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&missing, "no route");

    // Plain HTTP, and no proxy trusted: no HSTS, whatever the client claims.
    for r in [&page, &module, &api, &error, &missing] {
        assert!(!r.headers().contains_key("strict-transport-security"));
    }
    let claimed = client
        .get(format!("{url}/"))
        .header("x-forwarded-proto", "https")
        .header("forwarded", "for=192.0.2.1;proto=https")
        .send()
        .await
        .unwrap();
    assert!(!claimed.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn hsts_only_when_a_trusted_proxy_says_the_client_spoke_tls() {
    let (url, _dir) = start_with_statics("127.0.0.1/32").await;
    let client = reqwest::Client::new();
    let with = |name: &'static str, value: &'static str| {
        client.get(format!("{url}/")).header(name, value).send()
    };
    for (name, value) in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.1;proto=https"),
    ] {
        let r = with(name, value).await.unwrap();
        assert_eq!(
            r.headers()
                .get_all("strict-transport-security")
                .iter()
                .collect::<Vec<_>>(),
            ["max-age=31536000"],
            "{name}: {value}"
        );
        assert_security_headers(&r, "through the proxy");
    }
    for (name, value) in [
        ("x-forwarded-proto", "http"),
        ("forwarded", "for=192.0.2.1;proto=http"),
    ] {
        let r = with(name, value).await.unwrap();
        assert!(!r.headers().contains_key("strict-transport-security"));
    }
    let api = client
        .get(format!("{url}/v1/nope"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[tokio::test]
async fn only_the_packages_shipped_files_are_served() {
    let (url, _dir) = start_with_statics("").await;
    let client = reqwest::Client::new();
    for shipped in [
        "/pkg/index.js",
        "/pkg/worker.js",
        "/pkg/gen/coffre_wasm.js",
        "/pkg/gen/coffre_wasm_bg.wasm",
        "/pkg/README.md",
        "/pkg/package.json",
    ] {
        let r = client.get(format!("{url}{shipped}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{shipped}");
    }
    for hidden in [
        "/pkg/node_modules/typescript/package.json",
        "/pkg/package-lock.json",
        "/pkg/test/node/api.test.js",
        "/pkg/bench/run.js",
        "/pkg/gen/unlisted.js",
        "/pkg/",
        "/pkg",
        "/pkg/gen/",
        // Escapes and dot segments do not reach past the list.
        "/pkg/node%5fmodules/typescript/package.json",
        "/pkg/gen/%2e%2e/package-lock.json",
        "/pkg/./package-lock.json",
        "/pkg/%69ndex.js",
    ] {
        let r = client.get(format!("{url}{hidden}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{hidden}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

async fn login_attempt(s: &TestServer, forwarded_for: Option<&str>) -> StatusCode {
    // A handle of its own each time: this is about the per-address budget, not the
    // handle's (three tries, then waits).
    static HANDLES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (_client, request) = ClientLogin::start(b"guess").unwrap();
    let mut r = s
        .req(Method::POST, "/v1/login/start", None)
        .json(&json!({"handle": format!("nobody.{n}"), "login_request": b64(&request)}));
    if let Some(address) = forwarded_for {
        r = r.header("x-forwarded-for", address);
    }
    r.send().await.unwrap().status()
}

async fn registration_attempt(s: &TestServer, forwarded_for: &str) -> StatusCode {
    s.req(Method::POST, "/v1/registrations/start", None)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"registration_request": "AAAA"}))
        .send()
        .await
        .unwrap()
        .status()
}

fn small_budgets() -> Limits {
    Limits {
        login_attempts_per_ip_per_minute: 3,
        registrations_per_ip_per_minute: 2,
        ..Limits::default()
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let s = TestServer::start_behind(
        small_budgets(),
        TrustedProxies::parse("127.0.0.1/32").unwrap(),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(login_attempt(&s, Some("203.0.113.1")).await, StatusCode::OK);
    }
    assert_eq!(
        login_attempt(&s, Some("203.0.113.1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is untouched…
    assert_eq!(login_attempt(&s, Some("203.0.113.2")).await, StatusCode::OK);
    // …and the spent client cannot get a fresh budget by writing an address of its
    // choosing in front of what the proxy appended.
    assert_eq!(
        login_attempt(&s, Some("198.51.100.7, 203.0.113.1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The proxy's own address (no header) is one more client, with its own budget.
    assert_eq!(login_attempt(&s, None).await, StatusCode::OK);

    // Budgets per class: the spent login budget leaves registrations alone, which have
    // their own limit.
    let first = registration_attempt(&s, "203.0.113.1").await;
    assert_ne!(first, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(registration_attempt(&s, "203.0.113.1").await, first);
    assert_eq!(
        registration_attempt(&s, "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(registration_attempt(&s, "203.0.113.2").await, first);
    s.advance(60);
    assert_eq!(login_attempt(&s, Some("203.0.113.1")).await, StatusCode::OK);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // Trusts a proxy range the test client is not in.
    let s = TestServer::start_behind(
        small_budgets(),
        TrustedProxies::parse("10.0.0.0/8").unwrap(),
    )
    .await;
    for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(login_attempt(&s, Some(address)).await, StatusCode::OK);
    }
    // Every address it claimed was 127.0.0.1's budget.
    assert_eq!(
        login_attempt(&s, Some("203.0.113.4")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(login_attempt(&s, None).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn link_openings_have_their_own_budget() {
    let s = TestServer::start_with(Limits {
        link_openings_per_ip_per_minute: 2,
        ..Limits::default()
    })
    .await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (doc, _, envelope) = s.upload(&amina, &plaintext(100)).await;
    let r = s
        .req(
            Method::POST,
            &format!("/v1/documents/{doc}/links"),
            Some(&amina.token),
        )
        .json(&json!({"envelope": b64(envelope.as_bytes()), "max_downloads": 10}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let link = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let open = || {
        s.req(Method::GET, &format!("/v1/links/{link}"), None)
            .sent()
    };
    assert_eq!(open().await.status(), StatusCode::OK);
    assert_eq!(open().await.status(), StatusCode::OK);
    let r = open().await;
    assert_eq!(r.headers()["retry-after"], "60");
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "too-many-requests").await;
    // Logins from the same address are another budget.
    assert_eq!(login_attempt(&s, None).await, StatusCode::OK);
}

fn quick_timeouts() -> Limits {
    Limits {
        header_read_seconds: 1,
        body_idle_seconds: 1,
        ..Limits::default()
    }
}

/// Reads until the server closes the connection (or 10 s pass); returns what it sent
/// and when it closed.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open: {got:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_after_the_header_timeout() {
    let s = TestServer::start_with(quick_timeouts()).await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let start = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let trickle = async {
        for byte in head {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The whole head would take 7 s at this pace.
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let (got, closed) = until_closed(&mut stream).await;
    let after = closed - start;
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(4),
        "{after:?}"
    );
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
    // A normal client is served as before.
    let r = s.req(Method::GET, "/healthz", None).sent().await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_stops_coming_is_cut_and_a_slow_moving_one_is_not() {
    let s = TestServer::start_with(quick_timeouts()).await;
    let amina = s.user("amina", Role::Beneficiary, None).await;

    // Idle: a JSON body announced at 100 bytes, of which 10 come.
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /v1/login/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"handle\":",
        )
        .await
        .unwrap();
    let start = Instant::now();
    let (got, closed) = until_closed(&mut stream).await;
    let after = closed - start;
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(4),
        "{after:?}"
    );
    let answer = String::from_utf8_lossy(&got);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");

    // Idle upload: what arrived is kept for the resume, and the request ends.
    let (envelope, payload) = encrypt_for(&amina.identity, &plaintext(64 * 1024));
    let doc = s.create(&amina, &envelope, payload.len()).await;
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH /v1/documents/{doc}/payload?offset=0 HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        amina.token,
        payload.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&payload[..1000]).await.unwrap();
    let start = Instant::now();
    let (got, closed) = until_closed(&mut stream).await;
    let after = closed - start;
    assert!(after < Duration::from_secs(4), "{after:?}");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 400"));
    let status = s
        .req(
            Method::GET,
            &format!("/v1/documents/{doc}/upload"),
            Some(&amina.token),
        )
        .sent()
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(status["stored"], 1000);

    // Slow but moving: the rest in 4 KiB pieces, one every 300 ms, about 5 s in all,
    // five times the idle timeout; every piece resets it.
    let rest = payload[1000..].to_vec();
    let pieces: Vec<Vec<u8>> = rest.chunks(4096).map(<[u8]>::to_vec).collect();
    let count = pieces.len();
    let body = futures_util::stream::iter(pieces).then(|piece| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, std::io::Error>(piece)
    });
    let start = Instant::now();
    let r = s
        .req(
            Method::PATCH,
            &format!("/v1/documents/{doc}/payload?offset=1000"),
            Some(&amina.token),
        )
        .header("content-length", rest.len())
        .body(reqwest::Body::wrap_stream(body))
        .sent()
        .await;
    let took = start.elapsed();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(took > Duration::from_secs(3), "{count} pieces in {took:?}");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["stored"],
        payload.len()
    );
    s.commit(&amina, &doc).await;
    assert_eq!(s.payload(&amina, &doc).await, payload);
}
