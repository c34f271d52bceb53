//! schemathesis against a real server: it reads `/v1/openapi.json`, generates requests
//! from it (valid and invalid), and checks every answer against the document — no server
//! error, only documented statuses, media types, headers and body shapes, and invalid
//! requests refused. Ignored by a plain `cargo test` (it needs schemathesis from PyPI);
//! `cargo xtask test` installs it and runs this (`cargo xtask schemathesis` alone). Set
//! `COFFRE_SCHEMATHESIS_ARGS` to add options, e.g. `--include-path-regex … --report har`.
//!
//! The server is seeded first with what a structure really holds — two workers, two
//! people, documents committed or not, shares both ways, links and an opening's grant,
//! referents and open recovery requests — and schemathesis is handed those ids, handles
//! and well-formed client messages (OPAQUE requests, an envelope, age recipients) as
//! dictionaries, drawn half the time, so that requests get past the access checks and the
//! decoding into what the handlers do. Routes that end something (logging out, deleting,
//! removing referents, cancelling a request) are called as someone else, on things of
//! their own, so that the rest of the run keeps its fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coffre_core::bundle::KeyBundle;
use coffre_core::opaque::{ClientLogin, ClientRegistration};
use coffre_core::recovery::recovery_verifier;
use coffre_core::referents::RecoverySecret;
use coffre_core::{Envelope, Identity};
use coffre_server::store::Role;
use coffre_server::Limits;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The schemathesis release the run is written for (its CLI and checks).
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Fixed, so that a failure reproduces with the same requests.
const SEED: u64 = 20_251_113;

/// Test cases per operation and phase: enough to reach every documented status of most
/// operations, few enough for the bound below.
const MAX_EXAMPLES: u32 = 25;

/// The whole run is stopped (and the test fails) past this.
const RUN_BOUND: Duration = Duration::from_secs(240);

/// What every answer is checked for. `negative_data_rejection` sends requests the
/// document says are invalid and expects them refused; the others check the answers to
/// every request against the document.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance,\
                      negative_data_rejection";

/// How far the server's clock moves at each tick of the run, and how often: the budgets
/// counted per account and minute (key look-ups, referents' decisions) refill as they
/// would for a person, instead of answering 429 for the rest of a run that sends in
/// seconds what a person sends in a day.
const TICK_SECONDS: u64 = 60;
const TICK_EVERY: Duration = Duration::from_secs(5);

/// Sessions of the run: longer than the clock moves during it.
const SESSION_SECONDS: u64 = 30 * 86_400;

/// `schemathesis`: `$COFFRE_SCHEMATHESIS`, else in the scripts directories of `python3`
/// (where `pip install` puts it, system-wide or `--user`), else on `PATH`.
fn schemathesis_program() -> PathBuf {
    if let Some(path) = std::env::var_os("COFFRE_SCHEMATHESIS") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "COFFRE_SCHEMATHESIS is {}, which does not exist",
            path.display()
        );
        return path;
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import os, sysconfig\n\
             print(sysconfig.get_path('scripts'))\n\
             print(sysconfig.get_path('scripts', os.name + '_user'))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut looked = Vec::new();
    for dir in scripts
        .lines()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
    {
        let candidate = dir.join("schemathesis");
        if candidate.is_file() {
            return candidate;
        }
        looked.push(dir.display().to_string());
    }
    panic!(
        "schemathesis is not installed (looked in {}): run `python3 -m pip install \
         schemathesis=={SCHEMATHESIS_VERSION}` (`cargo xtask test` does), or set \
         COFFRE_SCHEMATHESIS to the program",
        looked.join(", ")
    )
}

/// What the seeded server holds, as schemathesis is handed it.
struct Seeded {
    /// Default caller: a worker of the structure, owner of documents and links, one of
    /// the people's referents.
    worker: String,
    /// Another worker of the structure, the other referent, for deleting.
    other_worker: String,
    /// A person (beneficiary) of the structure, for the routes about their own vault.
    person: String,
    /// Another person, for the routes that end something of theirs (removing their
    /// referents, cancelling their recovery request), so that the first person's stay.
    other_person: String,
    /// A session of the worker's that only `POST /v1/logout` uses, so that logging out
    /// does not end the run's own session.
    spare: String,
    /// Named lists of values (as TOML arrays), each a schemathesis dictionary.
    dictionaries: Vec<(&'static str, String)>,
}

/// A link to `doc` (the owner's envelope `own` rewrapped to a fresh link key); its id.
async fn link_to(s: &TestServer, owner: &User, doc: &str, own: &Envelope) -> String {
    let link_key = Identity::generate().unwrap();
    let envelope = own
        .rewrap(
            std::slice::from_ref(&owner.identity),
            &link_key.to_recipient(),
        )
        .unwrap();
    let link: Value = s
        .req(
            Method::POST,
            &format!("/v1/documents/{doc}/links"),
            Some(&owner.token),
        )
        .json(&json!({ "envelope": b64(envelope.as_bytes()), "max_downloads": 1000 }))
        .value()
        .await;
    link["id"].as_str().expect("a link id").to_owned()
}

/// What the person's browser does to choose referents (one of them needed), then a new
/// device asking for recovery of the vault; the request's id.
async fn referents_and_a_request(s: &TestServer, person: &User, referents: [&User; 2]) -> String {
    let account_id = person.id().to_string();
    let secret = RecoverySecret::generate().unwrap();
    let shares = secret.split(1, referents.len() as u8).unwrap();
    let bundle =
        KeyBundle::seal_with_recovery_secret(&person.identity, &secret, &account_id).unwrap();
    let deal = json!({
        "threshold": 1,
        "bundle": b64(&bundle.to_bytes()),
        "verifier": b64(&recovery_verifier(&secret.derive_auth_token(&account_id))),
        "shares": shares.iter().zip(referents).map(|(share, referent)| json!({
            "referent": referent.id().to_string(),
            "index": share.index(),
            "sealed_share": b64(&share.seal_to(&referent.identity.to_recipient()).unwrap()),
            "commitment": b64(&share.commitment(&account_id)),
        })).collect::<Vec<_>>(),
    });
    let r = s
        .req(Method::PUT, "/v1/me/referents", Some(&person.token))
        .json(&deal)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let ephemeral = Identity::generate().unwrap();
    let r = s
        .req(Method::POST, "/v1/recovery/requests", None)
        .json(&json!({
            "handle": person.account.handle,
            "ephemeral_key": ephemeral.to_recipient().to_string(),
        }))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let request: Value = r.json().await.unwrap();
    request["id"].as_str().expect("a request id").to_owned()
}

/// Seeds `s` through its API as the browser would, with real age envelopes and real
/// referents deals.
async fn seed(s: &TestServer) -> Seeded {
    let (org, _) = s.org_with_invite("CCAS Nord").await;
    let nadia = s.user("nadia.w", Role::Worker, Some(org.id)).await;
    let paul = s.user("paul.w", Role::Worker, Some(org.id)).await;
    let amina = s.user("amina", Role::Beneficiary, Some(org.id)).await;
    let sami = s.user("sami", Role::Beneficiary, Some(org.id)).await;
    // The run's own sessions outlast the hours the clock moves by during it.
    let session = |u: &User| s.session_for(u.id(), SESSION_SECONDS);
    let (worker, other_worker, person, other_person, spare) = (
        session(&nadia).await,
        session(&paul).await,
        session(&amina).await,
        session(&sami).await,
        session(&nadia).await,
    );

    // The worker's own documents: one committed and shared with the person, one still
    // uploading; the person's, shared with the worker. Deleting is done as the other
    // worker, owner of a document and a link of its own: schemathesis reuses
    // the ids it sees in answers, and would otherwise delete what every other route needs.
    let (shared, _, own_envelope) = s.upload(&nadia, &plaintext(1000)).await;
    s.share(&nadia, &shared, &own_envelope, &amina, None).await;
    let (envelope, payload) = encrypt_for(&nadia.identity, &plaintext(70_000));
    let uploading = s.create(&nadia, &envelope, payload.len()).await;
    let (theirs, _, their_envelope) = s.upload(&amina, &plaintext(5000)).await;
    s.share(&amina, &theirs, &their_envelope, &nadia, None)
        .await;
    let (doomed, _, doomed_envelope) = s.upload(&paul, &plaintext(300)).await;
    s.share(&paul, &doomed, &doomed_envelope, &amina, None)
        .await;
    let (linked, _, linked_envelope) = s.upload(&paul, &plaintext(300)).await;
    let doomed_link = link_to(s, &paul, &linked, &linked_envelope).await;

    // A link to the shared document, granted once as a visitor's page does: its grant
    // serves the payload.
    let link = link_to(s, &nadia, &shared, &own_envelope).await;
    let opened: Value = s.link_grant(&link, &grant_id(1)).value().await;
    let grant = opened["download_token"]
        .as_str()
        .expect("a grant")
        .to_owned();

    // Both people chose the two workers as referents; a recovery request is open for
    // each vault.
    let request = referents_and_a_request(s, &amina, [&nadia, &paul]).await;
    let other_request = referents_and_a_request(s, &sami, [&nadia, &paul]).await;

    // Well-formed client messages for the bodies: an OPAQUE registration request and
    // login request, an envelope and age recipients, so that requests get past decoding
    // into what the server does with them.
    let (_, registration_request) = ClientRegistration::start(b"schemathesis").unwrap();
    let (_, login_request) = ClientLogin::start(b"schemathesis").unwrap();
    let envelope_to_amina = own_envelope
        .rewrap(
            std::slice::from_ref(&nadia.identity),
            &amina.identity.to_recipient(),
        )
        .unwrap();
    let recipients = [&amina, &sami, &nadia].map(|u| u.identity.to_recipient().to_string());

    let ids =
        |users: &[&User]| -> Vec<String> { users.iter().map(|u| u.id().to_string()).collect() };
    Seeded {
        worker,
        other_worker,
        person,
        other_person,
        spare,
        dictionaries: vec![
            ("documents", strings(&[shared, uploading, theirs])),
            ("doomed_documents", strings(&[doomed])),
            ("accounts", strings(&ids(&[&amina, &sami, &paul, &nadia]))),
            ("handles", strings(&["amina", "sami", "paul.w", "nadia.w"])),
            ("links", strings(&[link])),
            ("doomed_links", strings(&[doomed_link])),
            ("grants", strings(&[grant])),
            ("requests", strings(&[request])),
            ("other_requests", strings(&[other_request])),
            ("ranges", strings(&RANGES)),
            (
                "registration_requests",
                strings(&[b64(&registration_request)]),
            ),
            ("login_requests", strings(&[b64(&login_request)])),
            ("envelopes", strings(&[b64(envelope_to_amina.as_bytes())])),
            ("recipients", strings(&recipients)),
            // Where the uploading document resumes (nothing stored yet), and beyond.
            ("offsets", "[0, 65536]".into()),
        ],
    }
}

/// Ranges of every kind `parse_range` tells apart: served in part, past the end (416), and
/// ignored (several, another unit, reversed).
const RANGES: [&str; 7] = [
    "bytes=0-99",
    "bytes=500-",
    "bytes=-64",
    "bytes=99999999-",
    "bytes=0-1,5-6",
    "items=0-1",
    "bytes=9-1",
];

/// A TOML array of strings (ids, handles, grants, ranges: nothing to escape).
fn strings(values: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| format!("\"{}\"", v.as_ref()))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// One `[[operations]]` entry for the operations whose label (`METHOD /path`) matches
/// `name_regex`.
fn operations(name_regex: &str, settings: &str) -> String {
    format!("[[operations]]\ninclude-name-regex = '{name_regex}'\n{settings}\n\n")
}

/// Parameters drawn from dictionaries half the time (generated the other half).
fn drawn(params: &[(&str, &str)]) -> String {
    let bound: Vec<String> = params
        .iter()
        .map(|(param, dictionary)| {
            format!("\"{param}\" = {{ dictionary = \"{dictionary}\", probability = 0.5 }}")
        })
        .collect();
    format!("parameters = {{ {} }}", bound.join(", "))
}

/// Requests sent with `token` instead of the worker's.
fn as_caller(token: &str) -> String {
    format!("headers = {{ Authorization = \"Bearer {token}\" }}")
}

/// The schemathesis configuration: the dictionaries of real values, which parameters
/// draw from which, and the routes called as someone other than the worker.
fn config(seeded: &Seeded) -> String {
    // Body fields of every operation that has them (top-level keys: before any table).
    let mut text = format!(
        "{}\n\n",
        drawn(&[
            ("body.registration_request", "registration_requests"),
            ("body.login_request", "login_requests"),
            ("body.envelope", "envelopes"),
            ("body.public_key", "recipients"),
            ("body.ephemeral_key", "recipients"),
            ("body.handle", "handles"),
        ])
    );
    for (name, values) in &seeded.dictionaries {
        text += &format!("[dictionaries.{name}]\nvalues = {values}\n\n");
    }
    for (name_regex, settings) in [
        (
            r"^[A-Z]+ /v1/documents/\{id\}/envelopes/\{recipient\}$",
            drawn(&[("path.id", "documents"), ("path.recipient", "accounts")]),
        ),
        (
            r"^(GET|POST) /v1/documents/\{id\}(/(upload|commit|envelopes|links))?$",
            drawn(&[("path.id", "documents")]),
        ),
        (
            r"^DELETE /v1/documents/\{id\}$",
            format!(
                "{}\n{}",
                drawn(&[("path.id", "doomed_documents")]),
                as_caller(&seeded.other_worker)
            ),
        ),
        (
            r"^GET /v1/documents/\{id\}/payload$",
            drawn(&[("path.id", "documents"), ("header.Range", "ranges")]),
        ),
        (
            r"^PATCH /v1/documents/\{id\}/payload$",
            drawn(&[("path.id", "documents"), ("query.offset", "offsets")]),
        ),
        (r"^GET /v1/links/\{id\}$", drawn(&[("path.id", "links")])),
        (
            r"^DELETE /v1/links/\{id\}$",
            format!(
                "{}\n{}",
                drawn(&[("path.id", "doomed_links")]),
                as_caller(&seeded.other_worker)
            ),
        ),
        (
            r"^GET /v1/links/\{id\}/payload$",
            drawn(&[
                ("path.id", "links"),
                ("query.grant", "grants"),
                ("header.Range", "ranges"),
            ]),
        ),
        (
            r"^[A-Z]+ /v1/recovery/(requests|asks)/\{id\}",
            drawn(&[("path.id", "requests")]),
        ),
        (
            r"^POST /v1/me/recovery/\{id\}/cancel$",
            format!(
                "{}\n{}",
                drawn(&[("path.id", "other_requests")]),
                as_caller(&seeded.other_person)
            ),
        ),
        (
            r"^POST /v1/accounts/\{id\}/unlock$",
            drawn(&[("path.id", "accounts")]),
        ),
        (
            r"^GET /v1/keys/\{handle\}$",
            drawn(&[("path.handle", "handles")]),
        ),
        (r"^POST /v1/logout$", as_caller(&seeded.spare)),
        (
            r"^(GET|PUT) /v1/me/referents$|^GET /v1/me/recovery$|^POST /v1/me/recovery-kit$",
            as_caller(&seeded.person),
        ),
        (
            r"^DELETE /v1/me/referents$",
            as_caller(&seeded.other_person),
        ),
    ] {
        text += &operations(name_regex, &settings);
    }
    // schemathesis's list of refusals, and 413: a declared size beyond what the
    // document's `int64` allows is beyond the server's largest document too, and refused
    // as too large before anything is stored.
    text += "[checks.negative_data_rejection]\n\
             expected-statuses = [\"400\", \"401\", \"403\", \"404\", \"405\", \"406\", \"409\", \
             \"413\", \"415\", \"422\", \"428\", \"429\", \"5xx\"]\n";
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by cargo xtask test (schemathesis step)"]
async fn schemathesis_finds_no_server_error_and_no_divergence_from_the_document() {
    let program = schemathesis_program();
    // The per-address budgets are counted in minutes of a clock that stands still here:
    // at their defaults schemathesis would spend them in seconds and then see only 429s.
    // Raised, every route answers what its code decides (429 stays documented).
    let generous = 1_000_000;
    let s = TestServer::start_with(Limits {
        login_attempts_per_ip_per_minute: generous,
        registrations_per_ip_per_minute: generous,
        recovery_attempts_per_ip_per_minute: generous,
        link_openings_per_ip_per_minute: generous,
        ..Limits::default()
    })
    .await;
    let seeded = seed(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config(&seeded)).unwrap();

    let report_path = dir.path().join("run.json");
    let mut cmd = Command::new(&program);
    cmd.current_dir(dir.path())
        .arg("--config-file")
        .arg(&config_path)
        .args(["run", &format!("{}/v1/openapi.json", s.url)])
        .args(["--checks", CHECKS])
        .args(["--seed", &SEED.to_string()])
        .args(["--max-examples", &MAX_EXAMPLES.to_string()])
        .args(["--workers", "1"])
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "10"])
        .args(["--no-color"])
        .arg("--report-json-path")
        .arg(&report_path)
        .args([
            "--header",
            &format!("Authorization: Bearer {}", seeded.worker),
        ])
        .stdin(Stdio::null());
    // More options for a closer look (`--include-path-regex …`, `--report har`, …).
    let extra = std::env::var("COFFRE_SCHEMATHESIS_ARGS").unwrap_or_default();
    cmd.args(extra.split_whitespace());
    println!(
        "schemathesis: {} (seed {SEED}, at most {MAX_EXAMPLES} cases per operation and phase)",
        program.display()
    );
    // schemathesis runs in a thread of its own, so the server keeps both of the
    // runtime's workers; its output goes straight to the terminal.
    let clock = s.clock.clone();
    let ticking = tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK_EVERY).await;
            clock.fetch_add(TICK_SECONDS, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let started = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("schemathesis starts");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() > RUN_BOUND {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    ticking.abort();
    let took = started.elapsed();
    println!("schemathesis run: {:.1} s", took.as_secs_f64());
    let Some(status) = outcome else {
        panic!("schemathesis ran past its bound of {RUN_BOUND:?} and was stopped");
    };
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let (operations, cases) = (&report["operations"], &report["test_cases"]);
    println!(
        "schemathesis: {} of {} operations tested, {} test cases, {} failures, {} errors, \
         {:.1} s of requests",
        operations["tested"],
        operations["total"],
        cases["generated"],
        cases["unique_failures"],
        cases["errored"],
        report["running_time"].as_f64().unwrap_or_default()
    );
    assert!(
        status.success(),
        "schemathesis found failures ({status}): see its report above"
    );
    assert_eq!(report["complete"], true, "{}", report["stop_reason"]);
    assert_eq!(report["errors"], json!([]), "schemathesis errors");
    // Every pattern of the document was usable as written (schemathesis reports the
    // regular expressions it cannot read, and then generates without them).
    assert_eq!(report["warnings"]["unsupported_regex"], json!([]));
    if extra.is_empty() {
        // The document's operations are the router's (see http_basics); all were run but
        // `GET /v1/openapi.json`, which schemathesis leaves out when it reads the document
        // from there.
        let routed = coffre_server::operations().len();
        assert_eq!(operations["total"], routed - 1, "{operations}");
        assert_eq!(operations["tested"], operations["total"], "{operations}");
    }
}
