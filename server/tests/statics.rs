//! The web app and the package as static files: types, caching, compression, and the
//! API still answering with problems next to them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

mod common;

use coffre_core::opaque::ServerSetup;
use coffre_server::statics::StaticDirs;
use coffre_server::store;
use coffre_server::{AppState, Limits};
use common::Sent as _;

#[tokio::test]
async fn serves_web_and_pkg_with_wasm_type_caching_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    let index = "<!doctype html><title>Coffre</title>".repeat(100);
    std::fs::write(web.join("index.html"), &index).unwrap();
    std::fs::write(web.join("app.js"), "export const x = 1;\n".repeat(200)).unwrap();
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0u8, 4000))
        .collect();
    std::fs::write(pkg.join("coffre_wasm_bg.wasm"), &wasm).unwrap();
    // Only what package.json ships is served (tests/hardening.rs has the rest).
    std::fs::write(
        pkg.join("package.json"),
        r#"{"files": ["coffre_wasm_bg.wasm"]}"#,
    )
    .unwrap();

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(coffre_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();

    let r = client
        .get(format!("{url}/pkg/coffre_wasm_bg.wasm"))
        .sent()
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/wasm");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(
        r.headers()["content-security-policy"],
        coffre_server::CONTENT_SECURITY_POLICY
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.bytes().await.unwrap().to_vec(), wasm);

    let r = client
        .get(format!("{url}/"))
        .header("accept-encoding", "gzip")
        .sent()
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let compressed = r.bytes().await.unwrap();
    assert!(
        compressed.len() < index.len() / 4,
        "{} bytes",
        compressed.len()
    );

    let r = client.get(format!("{url}/app.js")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    // Unknown files are 404; the API keeps its own problems.
    assert_eq!(
        client
            .get(format!("{url}/missing.js"))
            .sent()
            .await
            .status(),
        404
    );
    let r = client.get(format!("{url}/v1/nothing")).sent().await;
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        client
            .get(format!("{url}/healthz"))
            .sent()
            .await
            .text()
            .await
            .unwrap(),
        "ok"
    );
}
