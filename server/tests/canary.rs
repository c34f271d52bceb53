//! Canary: documents whose content, name and type carry a canary string go through
//! coffre-core and the real server; afterwards no byte of the data directory shows the
//! canary and `audit` passes. Plus: audit catches what it must catch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffre_core::bundle::KeyBundle;
use coffre_core::metadata::{seal_metadata, Category, Metadata};
use coffre_core::opaque::{ClientRegistration, KSF_V1};
use coffre_core::{Encryptor, Identity};
use coffre_server::audit::audit;
use coffre_server::store::{Id, Role};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CANARY: &str = "CANARY-b1e5c0ffee-do-not-store";

async fn register_worker(s: &TestServer, handle: &str) -> (String, Identity) {
    let (_, invite) = s.org_with_invite("Relais").await;
    let (client, request) = ClientRegistration::start(CANARY.as_bytes()).unwrap();
    let started: Value = s
        .req(Method::POST, "/v1/registrations/start", None)
        .json(&json!({"registration_request": b64(&request)}))
        .value()
        .await;
    let account_id = started["account_id"].as_str().unwrap().to_owned();
    let (upload, export_key) = client
        .finish(
            CANARY.as_bytes(),
            &unb64(started["registration_response"].as_str().unwrap()),
            KSF_V1,
        )
        .unwrap();
    let identity = Identity::generate().unwrap();
    let bundle = KeyBundle::seal_with_export_key(&identity, &export_key, &account_id).unwrap();
    let r = s
        .req(Method::POST, "/v1/workers", None)
        .json(&json!({"invite": invite, "account": {
            "account_id": account_id, "handle": handle, "registration_upload": b64(&upload),
            "public_key": identity.to_recipient().to_string(), "bundle": b64(&bundle.to_bytes()),
        }}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    (account_id, identity)
}

fn all_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[tokio::test]
async fn no_canary_reaches_the_disk_and_audit_passes() {
    let s = TestServer::start().await;
    let (_, identity) = register_worker(&s, "worker").await;
    // A session for the registered account (login is covered in login.rs).
    let account = s.store.account_by_handle("worker").await.unwrap().unwrap();
    let token = s.session_for(account.id, 3600).await;
    let friend = s.user("friend", Role::Worker, None).await;
    let content = format!("{CANARY} ").repeat(40_000).into_bytes(); // ~1.2 MiB, two pieces
    for (i, category) in [Category::Identity, Category::Housing, Category::Other]
        .into_iter()
        .enumerate()
    {
        let (envelopes, mut encryptor) =
            Encryptor::detached(&[identity.to_recipient(), friend.identity.to_recipient()])
                .unwrap();
        let metadata = seal_metadata(
            &Metadata {
                name: format!("{CANARY}-passport-{i}.pdf"),
                mime_type: "application/x-canary-b1e5c0ffee-do-not-store".into(),
                category,
                created: Some("2026-11-22".into()),
                document_date: None,
            },
            encryptor.file_key(),
        )
        .unwrap();
        let mut payload = Vec::new();
        encryptor.push(&content, &mut payload).unwrap();
        encryptor.finish(&mut payload).unwrap();
        let created: Value = s.req(Method::POST, "/v1/documents", Some(&token)).json(&json!({
            "metadata": b64(&metadata), "size": payload.len(), "envelope": b64(envelopes[0].as_bytes()),
        })).send().await.unwrap().json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        let r = s
            .req(
                Method::PATCH,
                &format!("/v1/documents/{id}/payload?offset=0"),
                Some(&token),
            )
            .body(payload)
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            s.req(
                Method::POST,
                &format!("/v1/documents/{id}/commit"),
                Some(&token)
            )
            .sent()
            .await
            .status(),
            StatusCode::OK
        );
        let r = s
            .req(
                Method::PUT,
                &format!("/v1/documents/{id}/envelopes/{}", friend.id()),
                Some(&token),
            )
            .json(&json!({"envelope": b64(envelopes[1].as_bytes())}))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let link_env = envelopes[0]
            .rewrap(
                std::slice::from_ref(&identity),
                &Identity::generate().unwrap().to_recipient(),
            )
            .unwrap();
        let r = s
            .req(
                Method::POST,
                &format!("/v1/documents/{id}/links"),
                Some(&token),
            )
            .json(&json!({"envelope": b64(link_env.as_bytes()), "max_downloads": 3}))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let server_key = s.server_key.clone();
    let sled = s.sled().clone();
    let files = s.files.clone();
    let dir = s.stop().await;
    let data = dir.path().join("data");

    let needles: Vec<Vec<u8>> = vec![
        CANARY.as_bytes().to_vec(),
        CANARY.to_lowercase().into_bytes(),
        b64(CANARY.as_bytes()).into_bytes()[..20].to_vec(),
        b"passport".to_vec(),
        b"x-canary".to_vec(),
    ];
    let mut scanned = 0;
    // Positive control: what is in clear by design (a handle) is found by the same scan.
    let mut control = false;
    for file in all_files(&data) {
        let bytes = std::fs::read(&file).unwrap();
        scanned += bytes.len();
        control |= bytes.windows(6).any(|w| w == b"friend");
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == &n[..]),
                "{:?} found in {file:?}",
                String::from_utf8_lossy(n)
            );
        }
    }
    assert!(control, "the scan does not see stored values");
    assert!(
        scanned > 3 * 1_000_000,
        "the data directory holds only {scanned} bytes: was anything stored?"
    );

    let report = audit(&sled, &files, Some(&server_key));
    assert!(report.passed(), "{:?}", report.violations);
    assert!(report.violations.is_empty());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.committed_documents, 3);
    assert_eq!(report.envelopes_checked, 3 * 3);
    assert!(report.server_key_searched);
    assert!(report.in_clear["documents"].contains(&"size"));
}

#[tokio::test]
async fn audit_finds_key_material_bad_envelopes_and_broken_payloads() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let (id, _, _) = s.upload(&amina, &plaintext(1000)).await;
    let doc: Id = id.parse().unwrap();
    let clean = s.audit(Some(&s.server_key));
    assert!(clean.passed(), "{:?}", clean.violations);

    // The OPAQUE key hidden inside a stored value (base64 in JSON, as a bug would put it).
    let mut d = s.store.document(doc).await.unwrap().unwrap();
    d.metadata = s.server_key[32..64].to_vec();
    s.sled()
        .db()
        .open_tree("documents")
        .unwrap()
        .insert(doc.0, serde_json::to_vec(&d).unwrap())
        .unwrap();
    let report = s.audit(Some(&s.server_key));
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("server key material")),
        "{:?}",
        report.violations
    );

    // A broken envelope and a truncated payload.
    let envelopes = s.sled().db().open_tree("envelopes").unwrap();
    let (k, _) = envelopes.iter().next().unwrap().unwrap();
    envelopes.insert(k, serde_json::to_vec(&json!({"envelope": b64(b"junk"), "granted_by": amina.id().to_string(), "created_at": 1, "expires_at": null})).unwrap()).unwrap();
    let payload = std::fs::read_dir(s.files.dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = std::fs::metadata(&payload).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&payload)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let report = s.audit(None);
    assert!(
        report.violations.iter().any(|v| v.contains("envelope")),
        "{:?}",
        report.violations
    );
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("payload file holds")),
        "{:?}",
        report.violations
    );
    assert!(!report.passed());
}

#[tokio::test]
async fn audit_finds_dangling_and_missing_index_entries() {
    let s = TestServer::start().await;
    let amina = s.user("amina", Role::Beneficiary, None).await;
    let worker = s.user("worker", Role::Worker, None).await;
    let (id, _, own) = s.upload(&amina, &plaintext(1000)).await;
    s.share(&amina, &id, &own, &worker, None).await;
    let link_env = own
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
        .json(&json!({"envelope": b64(link_env.as_bytes())}))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let link: Id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let doc: Id = id.parse().unwrap();
    let report = s.audit(Some(&s.server_key));
    assert!(report.passed(), "{:?}", report.violations);

    let db = s.sled().db();
    let tree = |name: &str| db.open_tree(name).unwrap();
    let pair = |a: Id, b: Id| [a.0, b.0].concat();
    let ghost: Id = "42424242424242424242424242424242".parse().unwrap();
    // Each tampering alone makes the audit fail, naming the tree; undone afterwards.
    type Tamper<'a> = (&'a str, Box<dyn Fn(bool) + 'a>);
    let cases: Vec<Tamper> = vec![
        // An index entry pointing at a document that does not exist.
        (
            "owned",
            Box::new(|on| toggle(&tree("owned"), &pair(amina.id(), ghost), on)),
        ),
        // An owner index entry of someone else's document.
        (
            "owned",
            Box::new(|on| toggle(&tree("owned"), &pair(worker.id(), doc), on)),
        ),
        // A "shared with me" entry without the envelope.
        (
            "inbox",
            Box::new(|on| toggle(&tree("inbox"), &pair(amina.id(), doc), on)),
        ),
        (
            "inbox",
            Box::new(|on| toggle(&tree("inbox"), &pair(worker.id(), ghost), on)),
        ),
        // A link index entry without the link.
        (
            "doc_links",
            Box::new(|on| toggle(&tree("doc_links"), &pair(doc, ghost), on)),
        ),
        // A session index entry without the session.
        (
            "account_sessions",
            Box::new(|on| toggle(&tree("account_sessions"), &pair(amina.id(), ghost), on)),
        ),
        // Records whose index entries are missing.
        (
            "documents",
            Box::new(|on| toggle(&tree("owned"), &pair(amina.id(), doc), !on)),
        ),
        (
            "envelopes",
            Box::new(|on| toggle(&tree("inbox"), &pair(worker.id(), doc), !on)),
        ),
        (
            "links",
            Box::new(|on| toggle(&tree("doc_links"), &pair(doc, link), !on)),
        ),
        (
            "accounts",
            Box::new(|on| {
                if on {
                    tree("handles").remove(b"worker").unwrap();
                } else {
                    tree("handles").insert(b"worker", &worker.id().0).unwrap();
                }
            }),
        ),
        // A handle entry pointing at an account with another handle.
        (
            "handles",
            Box::new(|on| {
                if on {
                    tree("handles").insert(b"someone", &worker.id().0).unwrap();
                } else {
                    tree("handles").remove(b"someone").unwrap();
                }
            }),
        ),
    ];
    for (name, tamper) in cases {
        tamper(true);
        let report = s.audit(None);
        assert!(!report.passed(), "{name}: tampering not found");
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.starts_with(&format!("tree {name},"))),
            "{name}: {:?}",
            report.violations
        );
        tamper(false);
        let report = s.audit(None);
        assert!(report.passed(), "{name} undone: {:?}", report.violations);
    }
}

/// Puts an empty index entry under `key` (`on`) or removes it.
fn toggle(tree: &sled::Tree, key: &[u8], on: bool) {
    if on {
        tree.insert(key, &[][..]).unwrap();
    } else {
        tree.remove(key).unwrap();
    }
}
