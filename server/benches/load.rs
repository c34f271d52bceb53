//! Load and streaming benchmark of `coffre-server` on loopback:
//! `cargo bench -p coffre-server --bench load --locked` (or `cargo xtask bench`, which
//! also installs `wrk`, Debian package `wrk`). Takes about a minute after the build.
//!
//! It writes an account and a session for an owner and a recipient straight into a
//! fresh, stopped store (as `tests/binary.rs` does: no login, whose Argon2id would only
//! add noise), spawns the real server binary (bench profile) on 127.0.0.1:0 with its
//! default `info` logging going to a file, and measures:
//! - requests/s and p50/p99 latency of "list own documents" and "add an envelope" at 64
//!   connections (wrk, 10 s each, 127.0.0.1 only), next to `GET /healthz` under the same
//!   load as a control that touches no storage;
//! - upload and download MB/s of a 100 MB document next to a plain file write (synced)
//!   and read of the same bytes in the same directory: three alternating rounds, median,
//!   each measured write right after a write that makes it reuse already-touched memory
//!   (see `warm_up_memory`);
//! - the peak resident memory (VmHWM) of a freshly started server while a 1 GiB upload
//!   streams through, next to a plain synced write of 1 GiB (both warmed up the same way).
//!
//! CPU use is sampled around each phase (server, client or wrk, everything else from
//! /proc/stat): they all share the machine's cores, so the table shows whether the
//! machine, a build running beside the bench, or the server itself set a number. The
//! Markdown report goes to stdout and to `docs/server-bench.md`. `COFFRE_BENCH_RUST_LOG` overrides the server's log filter
//! (e.g. `warn`, to see what per-request logging costs).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use bytes::Bytes;
use coffre_core::{Envelope, Identity};
use coffre_server::store::{Id, Records, SledRecords};
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
/// Rounds of the 100 MB comparison; the disk's speed moves between runs on a shared VM,
/// so server and plain file alternate, each reports its median, and the ratio is also
/// taken round by round (each upload next to the plain write of its own round).
const ROUNDS: usize = 5;

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
/// last one (`is_stream_length` in src/api/documents.rs).
fn stream_length(full_chunks: u64) -> u64 {
    NONCE_BYTES + full_chunks * ENCRYPTED_CHUNK_BYTES + 1_000
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[path = "../tests/common/seed.rs"]
mod seed;

/// PostgreSQL 15 and SeaweedFS on 127.0.0.1, as the cluster tests start them.
#[path = "../tests/common/cluster.rs"]
mod cluster;

/// The PostgreSQL and S3 part of the bench.
#[path = "load/backends.rs"]
mod backends;

/// In docs/server-bench.md, the start of the hand-written part, which a run keeps.
const NOTES_MARKER: &str = "<!-- hand-written from here on";

/// An account and a live session written into the (stopped) store; returns (id, token).
async fn seed_account(store: &dyn Records, handle: &str) -> (Id, String) {
    let (_, id, token) = seed::seed_account(store, handle, 24 * 3600).await;
    (id, token)
}

/// Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 on Linux).
/// Asked once: a `getconf` child inside a measured phase would count as wrk's CPU.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts `coffre-server serve` on `dir/data`; its log (stderr) is appended to
    /// `dir/server.log`, so logging costs what it costs in production, without flooding
    /// the bench output.
    fn spawn(dir: &Path) -> Self {
        Self::spawn_with(dir, "data", "server.log", &[], &[])
    }

    /// [`Server::spawn`] with data directory `data` and log file `log` (both relative to
    /// `dir`, whose `server.key` every node shares), extra `serve` arguments (the
    /// storage backends) and environment variables (their credentials).
    fn spawn_with(dir: &Path, data: &str, log: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(log))
            .unwrap();
        let filter = std::env::var("COFFRE_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data", data])
            .args(["--server-key", "server.key"])
            .args(args)
            .envs(envs.iter().copied())
            .current_dir(dir)
            .env("RUST_LOG", filter)
            .stdout(Stdio::piped())
            .stderr(log)
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
        assert!(url.starts_with("http://127.0.0.1:"), "not loopback: {url}");
        Self { child, url }
    }

    fn status_field(&self, name: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// Peak resident memory of the server so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        self.status_field("VmHWM:")
    }

    /// User + system CPU seconds the server has used so far.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / clock_ticks()
    }

    /// SIGTERM, so the server flushes and exits as in production; SIGKILL if it hangs.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Drop kills it.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// CPU seconds of the whole machine (all but idle and iowait, /proc/stat), of this
/// process, and of its waited-for children (wrk, once `output()` returned).
fn machine_self_children_seconds() -> (f64, f64, f64) {
    let ticks = clock_ticks();
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7];
    let me = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &me[me.rfind(')').unwrap() + 2..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // utime 14, stime 15, cutime 16, cstime 17 (indices from field 3).
    (
        busy / ticks,
        (f[11] + f[12]) / ticks,
        (f[13] + f[14]) / ticks,
    )
}

/// Where the machine's cores went during a phase, in cores (CPU seconds per second).
#[derive(Clone, Copy)]
struct CpuUse {
    server: f64,
    /// This bench process (the Rust client).
    client: f64,
    /// wrk, when the phase ran it.
    wrk: f64,
    /// Everything else on the machine: kernel threads (loopback softirqs, writeback),
    /// another build, the hypervisor's steal.
    others: f64,
}

/// Measures CPU use over a phase.
struct CpuWatch<'a> {
    server: &'a Server,
    cpu: f64,
    machine: (f64, f64, f64),
    started: Instant,
}

impl<'a> CpuWatch<'a> {
    fn start(server: &'a Server) -> Self {
        Self {
            server,
            cpu: server.cpu_seconds(),
            machine: machine_self_children_seconds(),
            started: Instant::now(),
        }
    }

    fn finish(&self) -> CpuUse {
        let secs = self.started.elapsed().as_secs_f64();
        let server = self.server.cpu_seconds() - self.cpu;
        let (busy, me, children) = machine_self_children_seconds();
        let (busy, me, children) = (
            busy - self.machine.0,
            me - self.machine.1,
            children - self.machine.2,
        );
        CpuUse {
            server: server / secs,
            client: me / secs,
            wrk: children / secs,
            others: (busy - server - me - children).max(0.0) / secs,
        }
    }
}

/// "server 1.40, wrk 0.52, others 0.05" (cores); the client when no wrk ran.
fn describe(cpu: CpuUse) -> String {
    let (name, load) = if cpu.wrk > 0.0 {
        ("wrk", cpu.wrk)
    } else {
        ("client", cpu.client)
    };
    format!(
        "server {:.2}, {name} {load:.2}, others {:.2}",
        cpu.server, cpu.others
    )
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

    /// Uploads `size` bytes in one streamed request (`PATCH …/payload?offset=0`) and
    /// commits; returns the seconds until the server acknowledged the upload (synced).
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
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["stored"].as_u64(), Some(size), "upload stored {v}");
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

    /// Deletes a measured document, so that its page cache is freed for the next round
    /// (see `warm_up_memory`).
    async fn delete(&self, id: &str) {
        let r = self
            .http
            .delete(format!("{}/v1/documents/{id}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "delete: {}", r.status());
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
    errors: String,
    cpu: CpuUse,
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

/// Runs wrk for WRK_SECONDS against `url` (always the server's 127.0.0.1 address).
fn wrk(server: &Server, url: &str, token: &str, script: Option<&Path>) -> Load {
    let mut cmd = wrk_command(url, token, script, CONNECTIONS);
    let watch = CpuWatch::start(server);
    let out = cmd.output().expect("wrk not found: apt-get install wrk");
    let cpu = watch.finish();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed:\n{text}");
    let (load, _) = parse_wrk(&text, cpu);
    load
}

/// The wrk command line for WRK_SECONDS of load on `url` (always a 127.0.0.1 address)
/// over `connections` connections.
fn wrk_command(url: &str, token: &str, script: Option<&Path>, connections: &str) -> Command {
    assert!(url.starts_with("http://127.0.0.1:"), "loopback only: {url}");
    let mut cmd = Command::new("wrk");
    // `--timeout 2s`: wrk counts slower answers as errors instead of latency; 2 s is
    // far above any goal, so a timeout shows up as a failure in the table.
    cmd.args([
        "-t2",
        "-c",
        connections,
        "-d",
        WRK_SECONDS,
        "--timeout",
        "2s",
    ])
    .arg("--latency")
    .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url);
    cmd
}

/// What wrk printed, as a [`Load`] with `cpu`, and the number of requests it completed.
fn parse_wrk(text: &str, cpu: CpuUse) -> (Load, u64) {
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    };
    let non_2xx = field("Non-2xx or 3xx responses:")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    // "  123456 requests in 10.00s, 12.34MB read"
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0);
    let load = Load {
        requests_per_second: field("Requests/sec:").unwrap().parse().unwrap(),
        p50_ms: millis(&field("50%").unwrap()),
        p99_ms: millis(&field("99%").unwrap()),
        non_2xx,
        errors: field("Socket errors:").unwrap_or_else(|| "none".into()),
        cpu,
    };
    (load, requests)
}

/// Writes `size` bytes in SEND_PIECE_BYTES pieces and syncs: the disk's own speed for the
/// job the upload does. Returns the seconds it took.
fn plain_write(path: &Path, size: u64, piece: &Bytes) -> f64 {
    let started = Instant::now();
    let mut file = std::fs::File::create(path).unwrap();
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        file.write_all(&piece[..n]).unwrap();
        left -= n as u64;
    }
    file.sync_all().unwrap();
    started.elapsed().as_secs_f64()
}

/// Reads the file back (page cache warm, as the server's download of a just-uploaded
/// document is). Returns the seconds it took.
fn plain_read(path: &Path, size: u64) -> f64 {
    let started = Instant::now();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; SEND_PIECE_BYTES];
    let mut got = 0u64;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    assert_eq!(got, size);
    started.elapsed().as_secs_f64()
}

/// Writes and removes a file of `size` bytes, right before a measured write of less. On
/// this VM a page the guest has not touched lately costs a host page fault on first use:
/// the guest hands freed pages back to its host within seconds (virtio-balloon free page
/// reporting), and writing into such pages fills the page cache at ~0.4 GB/s instead of
/// ~4 GB/s (a plain 1 GiB write: 0.36-0.42 GB/s 10 s after the last one freed its pages,
/// 1.9-2.1 GB/s right after). Without this, whichever of the server or the plain file
/// write came second after a pause looked four times slower: the 1 GiB upload's
/// "424 MB/s" next to a 1847 MB/s plain write was that, not the server. So every
/// measured write, server or plain, follows one of these within the second.
fn warm_up_memory(dir: &Path, size: u64, piece: &Bytes) {
    let path = dir.join("warm-up.bin");
    plain_write(&path, size, piece);
    std::fs::remove_file(&path).unwrap();
}

/// The current UTC time as `date` prints it (the bench has no date crate).
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("unix time {}", now()))
}

/// `nproc`, the CPU model and the memory, for the report.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    format!("`nproc` = {cores}, CPU \"{cpu}\", {mem_gib:.0} GiB RAM")
}

/// The 1-minute load average: a second build on the machine shows up here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; there are no options. COFFRE_BENCH_ONLY=backends runs
    // the PostgreSQL + S3 part alone and prints it (docs/server-bench.md is left as is).
    if std::env::var("COFFRE_BENCH_ONLY").as_deref() == Ok("backends") {
        let owner = Identity::generate().unwrap();
        let file = coffre_core::encrypt(b"x", &[owner.to_recipient()]).unwrap();
        let (envelope, _) = Envelope::split(&file).unwrap();
        let worker = Identity::generate().unwrap();
        let shared = envelope.rewrap(&[owner], &worker.to_recipient()).unwrap();
        let piece = Bytes::from(
            (0..SEND_PIECE_BYTES)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect::<Vec<u8>>(),
        );
        print!(
            "{}",
            backends::run(&piece, envelope.as_bytes(), shared.as_bytes()).await
        );
        return;
    }
    let load_before = load_average();
    clock_ticks();
    let dir = tempfile::tempdir().unwrap();
    let (recipient, token) = {
        let store = SledRecords::open(&dir.path().join("data"), 8 << 20).unwrap();
        let (_, token) = seed_account(&store, "owner").await;
        let (recipient, _) = seed_account(&store, "worker").await;
        store.close().await.unwrap();
        (recipient, token)
    };
    let server = Server::spawn(dir.path());
    let rss_start_kib = server.peak_rss_kib();
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
    // Control: the same load on a route that touches no storage. A p99 spike here too
    // is the machine or the runtime, not sled.
    let health = wrk(&server, &format!("{}/healthz", server.url), &token, None);
    let list = wrk(
        &server,
        &format!("{}/v1/documents", server.url),
        &token,
        None,
    );
    // The recipient's envelope: the owner's header rewrapped to a new X25519 recipient,
    // as a client sharing a document does (one stanza, valid MAC).
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
        &server,
        &format!(
            "{}/v1/documents/{shared_doc}/envelopes/{recipient}",
            server.url
        ),
        &token,
        Some(&script),
    );
    let rss_after_requests_kib = server.peak_rss_kib();

    // --- 100 MB up and down, next to the disk, alternating ---
    let size_100 = stream_length(1_525); // 99 967 816 bytes
    let size_gib = stream_length(16_384); // 1 074 004 984 bytes
    let plain_path = dir.path().join("plain.bin");
    let warm_100 = size_100 + (64 << 20);
    let warm_gib = size_gib + (256 << 20);
    let (mut ups, mut downs, mut plain_ws, mut plain_rs) = (vec![], vec![], vec![], vec![]);
    let (mut up_cpu, mut down_cpu) = (vec![], vec![]);
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always meets the other's dirty pages.
        let server_first = round % 2 == 1;
        let plain = |ws: &mut Vec<f64>, rs: &mut Vec<f64>| {
            warm_up_memory(dir.path(), warm_100, &piece);
            ws.push(plain_write(&plain_path, size_100, &piece));
            rs.push(plain_read(&plain_path, size_100));
            std::fs::remove_file(&plain_path).unwrap();
        };
        if !server_first {
            plain(&mut plain_ws, &mut plain_rs);
        }
        let id = client.create(size_100).await;
        warm_up_memory(dir.path(), warm_100, &piece);
        let watch = CpuWatch::start(&server);
        ups.push(client.upload(&id, size_100, &piece).await);
        up_cpu.push(watch.finish());
        let watch = CpuWatch::start(&server);
        downs.push(client.download(&id, size_100).await);
        down_cpu.push(watch.finish());
        client.delete(&id).await;
        if server_first {
            plain(&mut plain_ws, &mut plain_rs);
        }
    }
    let rss_after_100_kib = server.peak_rss_kib();
    server.stop();
    let mb = |bytes: u64, secs: f64| bytes as f64 / 1e6 / secs;
    // plain write time / upload time, round by round, in order: the spread says how much
    // of a verdict is the machine's mood, and rounds alternate which write came first
    // (odd rounds: the server's), so an order effect would show as a zigzag.
    let round_ratios: Vec<f64> = plain_ws.iter().zip(&ups).map(|(p, u)| p / u).collect();
    let up = mb(size_100, median(ups));
    let down = mb(size_100, median(downs));
    let plain_w = mb(size_100, median(plain_ws));
    let plain_r = mb(size_100, median(plain_rs));
    // CPU of the median-speed round would be fussier; the mean tells the same story.
    let mean_cpu = |v: &[CpuUse]| {
        let n = v.len() as f64;
        CpuUse {
            server: v.iter().map(|c| c.server).sum::<f64>() / n,
            client: v.iter().map(|c| c.client).sum::<f64>() / n,
            wrk: v.iter().map(|c| c.wrk).sum::<f64>() / n,
            others: v.iter().map(|c| c.others).sum::<f64>() / n,
        }
    };

    // --- memory while 1 GiB streams through a freshly started server ---
    // A fresh process, so that its VmHWM is the upload's alone and not the wrk runs'.
    warm_up_memory(dir.path(), warm_gib, &piece);
    let gib_plain_w = mb(size_gib, plain_write(&plain_path, size_gib, &piece));
    std::fs::remove_file(&plain_path).unwrap();
    let server = Server::spawn(dir.path());
    let client = Client {
        url: server.url.clone(),
        ..client
    };
    let gib_rss_start_kib = server.peak_rss_kib();
    let id = client.create(size_gib).await;
    warm_up_memory(dir.path(), warm_gib, &piece);
    let watch = CpuWatch::start(&server);
    let gib_up = mb(size_gib, client.upload(&id, size_gib, &piece).await);
    let gib_up_cpu = watch.finish();
    let gib_rss_kib = server.peak_rss_kib();
    server.stop();
    let load_after = load_average();

    let mut report = String::new();
    let _ = writeln!(report, "# coffre-server benchmark\n");
    let _ = writeln!(
        report,
        "Latest run: {}; {}; shared virtual machine (other builds may run beside it: \
         1-minute load average {load_before} before the run, {load_after} after; numbers \
         vary between runs). Server: the real binary in the bench profile (release, thin \
         LTO), default `info` logging to a file; wrk and the Rust client run on the same \
         cores over 127.0.0.1. Regenerate with `cargo xtask bench` or `cargo bench -p \
         coffre-server --bench load --locked` (`server/benches/load.rs`).\n",
        utc_now(),
        machine()
    );
    let _ = writeln!(
        report,
        "## Requests ({CONNECTIONS} connections, wrk -t2, {WRK_SECONDS} each)\n"
    );
    let _ = writeln!(
        report,
        "| request | req/s | p50 | p99 | non-2xx / socket errors | CPU (cores) | goal ≥ 5000 req/s, p99 ≤ 20 ms |\n| --- | ---: | ---: | ---: | --- | --- | --- |"
    );
    for (name, load) in [
        (
            format!("list own documents: `GET /v1/documents` ({LISTED_DOCUMENTS} documents)"),
            &list,
        ),
        (
            "add an envelope: `PUT /v1/documents/{id}/envelopes/{recipient}` (synced)".to_owned(),
            &put,
        ),
    ] {
        let _ = writeln!(
            report,
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} / {} | {} | {} req/s, {} p99 |",
            load.requests_per_second,
            load.p50_ms,
            load.p99_ms,
            load.non_2xx,
            load.errors,
            describe(load.cpu),
            verdict(load.requests_per_second >= 5000.0),
            verdict(load.p99_ms <= 20.0),
        );
    }
    let _ = writeln!(
        report,
        "| control, no storage: `GET /healthz` | {:.0} | {:.2} ms | {:.2} ms | {} / {} | {} | (for information) |",
        health.requests_per_second,
        health.p50_ms,
        health.p99_ms,
        health.non_2xx,
        health.errors,
        describe(health.cpu),
    );
    let _ = writeln!(
        report,
        "\n## Payloads (100 MB = {size_100} bytes; median of {ROUNDS} alternating rounds)\n"
    );
    let _ = writeln!(
        report,
        "| measure | value | CPU (cores) | goal |\n| --- | ---: | --- | --- |"
    );
    let _ = writeln!(
        report,
        "| upload: `PATCH …/payload?offset=0`, streamed, synced, acknowledged | {up:.0} MB/s | {} | |",
        describe(mean_cpu(&up_cpu))
    );
    let _ = writeln!(
        report,
        "| plain file write of the same bytes + fsync, same file system | {plain_w:.0} MB/s | | |"
    );
    let _ = writeln!(
        report,
        "| **upload / plain write** | **{:.2}×** | | ≥ 0.7× {} |",
        up / plain_w,
        verdict(up / plain_w >= 0.7)
    );
    let _ = writeln!(
        report,
        "| upload / plain write, round by round (server second, then first, …) | {} | | |",
        round_ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" · ")
    );
    let _ = writeln!(
        report,
        "| download: `GET …/payload` (just written, page cache warm) | {down:.0} MB/s | {} | |",
        describe(mean_cpu(&down_cpu))
    );
    let _ = writeln!(
        report,
        "| plain file read of the same bytes (page cache warm) | {plain_r:.0} MB/s | | |"
    );
    let _ = writeln!(
        report,
        "| download / plain write | {:.2}× | | ≥ 0.7× {} |",
        down / plain_w,
        verdict(down / plain_w >= 0.7)
    );
    let _ = writeln!(
        report,
        "| download / plain read (for information) | {:.2}× | | |",
        down / plain_r
    );
    let _ = writeln!(
        report,
        "\n## Memory (1 GiB = {size_gib} bytes, through a freshly started server)\n"
    );
    let _ = writeln!(report, "| measure | value | goal |\n| --- | ---: | --- |");
    let _ = writeln!(
        report,
        "| **server peak RSS (VmHWM) after the 1 GiB upload** | **{:.1} MiB** (at start: {:.1} MiB) | ≤ 64 MiB {} |",
        gib_rss_kib as f64 / 1024.0,
        gib_rss_start_kib as f64 / 1024.0,
        verdict(gib_rss_kib <= 64 * 1024)
    );
    let _ = writeln!(
        report,
        "| upload of the 1 GiB document | {gib_up:.0} MB/s (CPU: {}) | |",
        describe(gib_up_cpu)
    );
    let _ = writeln!(
        report,
        "| plain file write of 1 GiB + fsync, same file system | {gib_plain_w:.0} MB/s | |"
    );
    let _ = writeln!(
        report,
        "| first server's VmHWM: at start / after the wrk runs / after the 100 MB rounds | {:.1} / {:.1} / {:.1} MiB | |",
        rss_start_kib as f64 / 1024.0,
        rss_after_requests_kib as f64 / 1024.0,
        rss_after_100_kib as f64 / 1024.0
    );
    // The same measures on the other backends: PostgreSQL records, SeaweedFS payloads.
    report.push_str(&backends::run(&piece, envelope.as_bytes(), worker_envelope.as_bytes()).await);
    print!("{report}");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/server-bench.md");
    // What follows the marker is written by hand (the reading of the numbers): kept.
    let notes = std::fs::read_to_string(&docs)
        .ok()
        .and_then(|old| old.find(NOTES_MARKER).map(|at| old[at..].to_owned()));
    if let Some(notes) = notes {
        report.push('\n');
        report.push_str(&notes);
    }
    std::fs::write(&docs, &report).unwrap();
    println!("\nwritten to {}", docs.display());
}
