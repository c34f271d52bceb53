//! Load and streaming benchmark of `coffre-server` on loopback:
//! `cargo bench -p coffre-server --bench load` (or `cargo xtask bench`). Needs `wrk`
//! (Debian package `wrk`), which `cargo xtask bench` installs.
//!
//! It spawns the real server binary (built in the bench profile) on 127.0.0.1 with a
//! fresh data directory and measures, in one run:
//! - requests/s and p50/p99 latency of "list own documents" and "add an envelope" at 64
//!   connections (wrk, 10 s each);
//! - upload and download MB/s of a 100 MB document next to a plain file write (synced)
//!   and read of the same bytes in the same directory;
//! - the server's peak resident memory (VmHWM) after a 1 GiB upload streamed through.
//!
//! The Markdown report goes to stdout and to `docs/server-bench.md`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use bytes::Bytes;
use coffre_core::{Envelope, Identity};
use coffre_server::store::{Account, Id, Role, Session, SledStore, Store};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_coffre-server");
/// Size of one encrypted age STREAM chunk (64 KiB of plaintext + 16-byte tag).
const ENCRYPTED_CHUNK_BYTES: u64 = 65_536 + 16;
/// Nonce at the start of every payload.
const NONCE_BYTES: u64 = 16;
/// Pieces the client sends, like a browser stream would.
const SEND_PIECE_BYTES: usize = 256 * 1024;
const CONNECTIONS: &str = "64";
const WRK_SECONDS: &str = "10s";
/// Documents in the listed account, so the list is not trivially empty.
const LISTED_DOCUMENTS: usize = 20;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A payload length that is a valid age STREAM of `full_chunks` full chunks and a short
/// last one.
fn stream_length(full_chunks: u64) -> u64 {
    NONCE_BYTES + full_chunks * ENCRYPTED_CHUNK_BYTES + 1_000
}

/// An account and a live session written into the (stopped) store; returns (id, token).
fn seed_account(store: &SledStore, handle: &str) -> (Id, String) {
    let identity = Identity::generate().unwrap();
    let account = Account {
        id: Id::generate().unwrap(),
        handle: handle.into(),
        role: Role::Beneficiary,
        org: None,
        public_key: identity.to_recipient().to_string(),
        // Stand-ins: the bench never logs in, it uses the seeded session.
        password_file: vec![0; 192],
        ksf_version: 1,
        bundle: vec![0; 62],
        recovery_bundle: None,
        recovery_verifier: None,
        created_by: None,
        consent_at: None,
        created_at: now(),
        failed_logins: 0,
        locked: false,
    };
    store.create_account(&account, None).unwrap();
    let (token, hash) = coffre_server::auth::generate_token().unwrap();
    let session = Session {
        account: account.id,
        created_at: now(),
        expires_at: now() + 24 * 3600,
    };
    store.put_session(&hash, &session).unwrap();
    (account.id, token)
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn spawn(dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data", "data"])
            .args(["--server-key", "server.key", "--cache-mib", "16"])
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no URL line: {line:?}"))
            .to_owned();
        Self { child, url }
    }

    /// Peak resident memory of the server so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One byte buffer sent again and again: the server stores bytes, it cannot tell.
fn body_of(size: u64, piece: &Bytes) -> reqwest::Body {
    let piece = piece.clone();
    let pieces = size.div_ceil(SEND_PIECE_BYTES as u64);
    let stream = futures_util::stream::iter((0..pieces).map(move |i| {
        let start = i * SEND_PIECE_BYTES as u64;
        let len = (size - start).min(SEND_PIECE_BYTES as u64) as usize;
        Ok::<_, std::io::Error>(piece.slice(..len))
    }));
    reqwest::Body::wrap_stream(stream)
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    envelope: String,
}

impl Client {
    async fn create(&self, size: u64) -> String {
        let r = self
            .http
            .post(format!("{}/v1/documents", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"metadata": b64(&[9u8; 300]), "size": size, "envelope": self.envelope}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create: {}", r.status());
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// Uploads `size` bytes in one streamed request and commits; returns the seconds the
    /// upload took (until the server acknowledged it, synced).
    async fn upload(&self, id: &str, size: u64, piece: &Bytes) -> f64 {
        let started = Instant::now();
        let r = self
            .http
            .patch(format!("{}/v1/documents/{id}/payload?offset=0", self.url))
            .bearer_auth(&self.token)
            .body(body_of(size, piece))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "upload: {}", r.status());
        let secs = started.elapsed().as_secs_f64();
        let r = self
            .http
            .post(format!("{}/v1/documents/{id}/commit", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "commit: {}", r.status());
        secs
    }

    /// Downloads the payload, counting bytes; returns the seconds it took.
    async fn download(&self, id: &str, size: u64) -> f64 {
        let started = Instant::now();
        let mut r = self
            .http
            .get(format!("{}/v1/documents/{id}/payload", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "download: {}", r.status());
        let mut got = 0u64;
        while let Some(chunk) = r.chunk().await.unwrap() {
            got += chunk.len() as u64;
        }
        assert_eq!(got, size);
        started.elapsed().as_secs_f64()
    }
}

/// What wrk measured.
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

/// wrk's latency as milliseconds ("812.00us", "1.23ms", "2.01s").
fn millis(text: &str) -> f64 {
    let (number, factor) = if let Some(v) = text.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1e3)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap() * factor
}

fn wrk(url: &str, token: &str, script: Option<&Path>) -> Load {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c", CONNECTIONS, "-d", WRK_SECONDS, "--latency"])
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk not found: apt-get install wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed:\n{text}");
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    };
    let non_2xx = field("Non-2xx or 3xx responses:")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    Load {
        requests_per_second: field("Requests/sec:").unwrap().parse().unwrap(),
        p50_ms: millis(&field("50%").unwrap()),
        p99_ms: millis(&field("99%").unwrap()),
        non_2xx,
    }
}

/// Writes `size` bytes in SEND_PIECE_BYTES pieces and syncs: the disk's own speed for the
/// same job the upload does. Returns (write seconds, read seconds).
fn plain_file(path: &Path, size: u64, piece: &Bytes) -> (f64, f64) {
    let started = Instant::now();
    let mut file = std::fs::File::create(path).unwrap();
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        file.write_all(&piece[..n]).unwrap();
        left -= n as u64;
    }
    file.sync_all().unwrap();
    let write = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; SEND_PIECE_BYTES];
    let mut got = 0u64;
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    assert_eq!(got, size);
    (write, started.elapsed().as_secs_f64())
}

/// The current UTC time as `date` prints it (the bench has no date crate).
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| format!("unix time {}", now()))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} × {cpu}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let dir = tempfile::tempdir().unwrap();
    let (recipient, token) = {
        let store = SledStore::open(&dir.path().join("data"), 8 << 20).unwrap();
        let (_, token) = seed_account(&store, "owner");
        let (recipient, _) = seed_account(&store, "worker");
        store.flush().unwrap();
        (recipient, token)
    };
    let server = Server::spawn(dir.path());
    let owner_identity = Identity::generate().unwrap();
    let file = coffre_core::encrypt(b"x", &[owner_identity.to_recipient()]).unwrap();
    let (envelope, _) = Envelope::split(&file).unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        url: server.url.clone(),
        token: token.clone(),
        envelope: b64(envelope.as_bytes()),
    };
    let piece = Bytes::from(
        (0..SEND_PIECE_BYTES)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    );

    // --- requests per second ---
    let small = stream_length(0);
    let mut shared_doc = String::new();
    for _ in 0..LISTED_DOCUMENTS {
        let id = client.create(small).await;
        client.upload(&id, small, &piece).await;
        shared_doc = id;
    }
    let list = wrk(&format!("{}/v1/documents", server.url), &token, None);
    // The recipient's envelope: any valid single-X25519 header is accepted.
    let worker_identity = Identity::generate().unwrap();
    let worker_envelope = envelope
        .rewrap(&[owner_identity], &worker_identity.to_recipient())
        .unwrap();
    let script = dir.path().join("put-envelope.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"PUT\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{}'\n",
            json!({"envelope": b64(worker_envelope.as_bytes())})
        ),
    )
    .unwrap();
    let put = wrk(
        &format!(
            "{}/v1/documents/{shared_doc}/envelopes/{recipient}",
            server.url
        ),
        &token,
        Some(&script),
    );

    // --- 100 MB up and down, next to the disk ---
    let size_100 = stream_length(1_525); // 99 967 816 bytes
    let id = client.create(size_100).await;
    let upload_secs = client.upload(&id, size_100, &piece).await;
    let download_secs = client.download(&id, size_100).await;
    let (plain_write_secs, plain_read_secs) =
        plain_file(&dir.path().join("plain.bin"), size_100, &piece);
    std::fs::remove_file(dir.path().join("plain.bin")).unwrap();
    let mb = |bytes: u64, secs: f64| bytes as f64 / 1e6 / secs;

    // --- memory while 1 GiB streams through ---
    let before_gib = server.peak_rss_kib();
    let size_gib = stream_length(16_384); // 1 074 004 984 bytes
    let id = client.create(size_gib).await;
    let gib_upload_secs = client.upload(&id, size_gib, &piece).await;
    let peak_kib = server.peak_rss_kib();

    let mut report = String::new();
    let _ = writeln!(report, "# coffre-server benchmark\n");
    let _ = writeln!(
        report,
        "Latest run: {}, {} (shared virtual machine: numbers vary ±10 % between runs), \
         server in the bench profile (release, thin LTO), wrk on the same 2 cores over \
         loopback. Regenerate with `cargo xtask bench` or `cargo bench -p coffre-server \
         --bench load`.\n",
        utc_now(),
        machine()
    );
    let _ = writeln!(
        report,
        "## Requests ({CONNECTIONS} connections, wrk -t2, {WRK_SECONDS} each)\n"
    );
    let _ = writeln!(
        report,
        "| request | req/s | p50 | p99 | non-2xx | goal |\n| --- | ---: | ---: | ---: | ---: | --- |"
    );
    for (name, load) in [
        (
            format!("GET /v1/documents (list own, {LISTED_DOCUMENTS} documents)"),
            &list,
        ),
        (
            "PUT /v1/documents/{id}/envelopes/{recipient} (add envelope, synced)".to_owned(),
            &put,
        ),
    ] {
        let _ = writeln!(
            report,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | ≥ 5000 req/s, p99 ≤ 20 ms |",
            load.requests_per_second, load.p50_ms, load.p99_ms, load.non_2xx
        );
    }
    let _ = writeln!(report, "\n## Payloads\n");
    let _ = writeln!(report, "| measure | value | goal |\n| --- | ---: | --- |");
    let up = mb(size_100, upload_secs);
    let down = mb(size_100, download_secs);
    let plain_w = mb(size_100, plain_write_secs);
    let plain_r = mb(size_100, plain_read_secs);
    let _ = writeln!(
        report,
        "| upload of a 100 MB document (streamed, synced, acknowledged) | {up:.0} MB/s | |"
    );
    let _ = writeln!(
        report,
        "| plain file write of the same bytes + fsync, same disk | {plain_w:.0} MB/s | |"
    );
    let _ = writeln!(
        report,
        "| upload / plain write | {:.2}× | ≥ 0.7× |",
        up / plain_w
    );
    let _ = writeln!(
        report,
        "| download of the same document | {down:.0} MB/s | |"
    );
    let _ = writeln!(
        report,
        "| plain file read of the same bytes (page cache warm) | {plain_r:.0} MB/s | |"
    );
    let _ = writeln!(
        report,
        "| download / plain write | {:.2}× | ≥ 0.7× |",
        down / plain_w
    );
    let _ = writeln!(
        report,
        "| upload of 1 GiB ({size_gib} bytes) | {:.0} MB/s | |",
        mb(size_gib, gib_upload_secs)
    );
    let _ = writeln!(
        report,
        "| server peak RSS (VmHWM) after the 1 GiB upload | {:.1} MiB (before it: {:.1} MiB) | ≤ 64 MiB |",
        peak_kib as f64 / 1024.0,
        before_gib as f64 / 1024.0
    );
    print!("{report}");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/server-bench.md");
    std::fs::write(&docs, &report).unwrap();
    println!("\nwritten to {}", docs.display());
    drop(server);
}
