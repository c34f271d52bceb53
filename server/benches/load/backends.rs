//! The bench on the storage backends of a several-machine deployment, all on 127.0.0.1:
//! PostgreSQL 15 records and SeaweedFS payloads (a master, three volume servers, every
//! object on two of them, a filer and its S3 gateway), started by the cluster tests'
//! harness (`tests/common/cluster.rs`). It measures:
//! - "list own documents" and "add an envelope" with wrk at 64 connections on one node
//!   (PostgreSQL records, payloads in files), then on two nodes on the same database
//!   (two wrk processes at once, 32 connections each, one per node): req/s, p50, p99, and
//!   from `pg_stat_statements` the statements and database time each request costs;
//! - a 100 MB upload through a node on PostgreSQL + S3 next to plain S3 PUTs of the same
//!   bytes to the same bucket with the same client library (object_store): one object,
//!   1 MiB objects one at a time (what the server does: one piece in flight), and 1 MiB
//!   objects four at a time; alternating rounds, medians;
//! - the peak RSS of a fresh node on PostgreSQL + S3 through a 1 GiB upload, and what the
//!   object store's disks took for it;
//! - the database size per account, session, document and envelope, from a fresh database
//!   filled through the `Records` trait.
//!
//! PostgreSQL runs durable here (fsync, full_page_writes and synchronous_commit on: the
//! harness turns the first two off for tests), so an acknowledged write is on disk as
//! with sled. SeaweedFS runs with its defaults (volume servers do not fsync each write).
//! Bounded: about two minutes after the clusters are up.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use coffre_server::store::{Document, EnvelopeRecord, Id, PgRecords, Records};
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

use super::cluster::{Postgres, Seaweed};
use super::{
    b64, clock_ticks, load_average, machine, machine_self_children_seconds, median, parse_wrk,
    seed_account, stream_length, utc_now, verdict, wrk_command, Client, CpuUse, Load, Server, BIN,
    LISTED_DOCUMENTS, ROUNDS, WRK_SECONDS,
};

const BUCKET: &str = "coffre-bench";
/// Connections in all, on one node or split between two.
const CONNECTIONS: u32 = 64;
/// The object size the server writes (`store::PIECE_BYTES`).
const PIECE: usize = coffre_server::store::PIECE_BYTES;
/// 1 MiB PUTs in flight in the "for information" plain run.
const PARALLEL_PUTS: usize = 4;
/// Targets of the issue, for these backends on this 2-core machine.
const GOAL_RPS: f64 = 3000.0;
const GOAL_P99_MS: f64 = 30.0;
/// The database-size sample: accounts, each with this many documents, each document with
/// the owner's envelope and one share.
const SIZING_ACCOUNTS: usize = 1000;
const SIZING_DOCS_PER_ACCOUNT: usize = 10;
/// Sealed metadata of a sample document, as the rest of the bench sends.
const METADATA_BYTES: usize = 300;

/// CPU seconds so far of every process whose command name is `comm` (`postgres`: the
/// postmaster and every backend; `weed`: the SeaweedFS cluster).
fn cpu_of_command(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0.0;
    for entry in entries.filter_map(Result::ok) {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != comm {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) {
            ticks += u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0);
        }
    }
    ticks / clock_ticks()
}

/// Where the cores went during a phase, in cores.
#[derive(Clone, Copy, Default)]
struct ClusterCpu {
    servers: f64,
    postgres: f64,
    weed: f64,
    /// This bench process (the Rust client, object_store's PUTs).
    client: f64,
    /// wrk, when the phase ran it.
    wrk: f64,
    others: f64,
}

impl ClusterCpu {
    fn describe(&self) -> String {
        let (name, load) = if self.wrk > 0.0 {
            ("wrk", self.wrk)
        } else {
            ("client", self.client)
        };
        format!(
            "servers {:.2}, postgres {:.2}, weed {:.2}, {name} {load:.2}, others {:.2}",
            self.servers, self.postgres, self.weed, self.others
        )
    }

    fn mean(v: &[ClusterCpu]) -> ClusterCpu {
        let n = v.len() as f64;
        let sum = |f: fn(&ClusterCpu) -> f64| v.iter().map(f).sum::<f64>() / n;
        ClusterCpu {
            servers: sum(|c| c.servers),
            postgres: sum(|c| c.postgres),
            weed: sum(|c| c.weed),
            client: sum(|c| c.client),
            wrk: sum(|c| c.wrk),
            others: sum(|c| c.others),
        }
    }
}

/// CPU use of the servers, PostgreSQL, SeaweedFS and the rest over a phase.
struct Watch<'a> {
    servers: Vec<&'a Server>,
    start: (f64, f64, f64, (f64, f64, f64)),
    started: Instant,
}

impl<'a> Watch<'a> {
    fn sample(servers: &[&Server]) -> (f64, f64, f64, (f64, f64, f64)) {
        (
            servers.iter().map(|s| s.cpu_seconds()).sum(),
            cpu_of_command("postgres"),
            cpu_of_command("weed"),
            machine_self_children_seconds(),
        )
    }

    fn start(servers: &[&'a Server]) -> Self {
        Self {
            start: Self::sample(servers),
            servers: servers.to_vec(),
            started: Instant::now(),
        }
    }

    fn finish(&self) -> ClusterCpu {
        let secs = self.started.elapsed().as_secs_f64();
        let (sv, pg, weed, (busy, me, children)) = Self::sample(&self.servers);
        // A process that exits during the phase takes its CPU seconds with it, which
        // could make a difference negative: counted as nothing instead.
        let (sv, pg, weed) = (
            sv - self.start.0,
            (pg - self.start.1).max(0.0),
            (weed - self.start.2).max(0.0),
        );
        let (busy, me, children) = (
            busy - self.start.3 .0,
            me - self.start.3 .1,
            children - self.start.3 .2,
        );
        ClusterCpu {
            servers: sv / secs,
            postgres: pg / secs,
            weed: weed / secs,
            client: me / secs,
            wrk: children / secs,
            others: (busy - sv - pg - weed - me - children).max(0.0) / secs,
        }
    }
}

/// What the database did for a wrk run, from `pg_stat_statements`.
#[derive(Default)]
struct DbWork {
    /// Statements executed (BEGIN and COMMIT included), all of them.
    statements: u64,
    /// Their summed execution time inside PostgreSQL, in ms.
    exec_ms: f64,
    /// The three most executed statements: (calls, mean ms, first words).
    top: Vec<(u64, f64, String)>,
}

fn reset_statements(pg: &Postgres) {
    pg.psql("bench", "SELECT pg_stat_statements_reset()");
}

fn read_statements(pg: &Postgres) -> DbWork {
    let out = pg.psql(
        "bench",
        "SELECT calls, total_exec_time, regexp_replace(left(query, 60), '\\s+', ' ', 'g') \
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
         WHERE d.datname = 'bench' AND query NOT LIKE '%pg_stat_statements%' \
         ORDER BY calls DESC",
    );
    let mut work = DbWork::default();
    for line in out.lines() {
        let mut f = line.splitn(3, '|');
        let (Some(calls), Some(ms), Some(query)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let calls: u64 = calls.parse().unwrap_or(0);
        let ms: f64 = ms.parse().unwrap_or(0.0);
        work.statements += calls;
        work.exec_ms += ms;
        if work.top.len() < 3 {
            work.top
                .push((calls, ms / calls.max(1) as f64, query.trim().to_owned()));
        }
    }
    work
}

/// One measured load: one wrk per node at once, `CONNECTIONS` connections in all.
struct Measured {
    per_node: Vec<Load>,
    requests: u64,
    cpu: ClusterCpu,
    db: DbWork,
}

impl Measured {
    fn requests_per_second(&self) -> f64 {
        self.per_node.iter().map(|l| l.requests_per_second).sum()
    }

    fn worst_p99(&self) -> f64 {
        self.per_node.iter().map(|l| l.p99_ms).fold(0.0, f64::max)
    }
}

/// Runs wrk on `path` of every node at once (CONNECTIONS split between them).
fn load(
    pg: &Postgres,
    nodes: &[&Server],
    path: &str,
    token: &str,
    script: Option<&Path>,
) -> Measured {
    let per = (CONNECTIONS / nodes.len() as u32).to_string();
    reset_statements(pg);
    let watch = Watch::start(nodes);
    let children: Vec<_> = nodes
        .iter()
        .map(|n| {
            wrk_command(&format!("{}{path}", n.url), token, script, &per)
                .stdout(Stdio::piped())
                .spawn()
                .expect("wrk not found: apt-get install wrk")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let cpu = watch.finish();
    let db = read_statements(pg);
    let mut per_node = Vec::new();
    let mut requests = 0;
    for out in outputs {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "wrk failed:\n{text}");
        // The CPU of the whole phase is in `cpu`; each Load's is unused.
        let (l, n) = parse_wrk(
            &text,
            CpuUse {
                server: 0.0,
                client: 0.0,
                wrk: 0.0,
                others: 0.0,
            },
        );
        per_node.push(l);
        requests += n;
    }
    Measured {
        per_node,
        requests,
        cpu,
        db,
    }
}

/// The S3 client the server uses, on the bench's bucket.
fn object_store(weed: &Seaweed) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region(weed.region())
            .with_access_key_id(weed.access_key())
            .with_secret_access_key(weed.secret_key())
            .with_endpoint(weed.endpoint())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .unwrap(),
    )
}

/// `size` bytes of `piece` repeated, as one PUT body (no copy).
fn payload_of(size: u64, piece: &Bytes) -> PutPayload {
    let mut parts = Vec::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        parts.push(piece.slice(..n));
        left -= n as u64;
    }
    parts.into_iter().collect()
}

/// PUTs `size` bytes under `folder`, as one object; returns the seconds it took.
async fn plain_put_one(
    store: &Arc<dyn ObjectStore>,
    folder: &str,
    size: u64,
    piece: &Bytes,
) -> f64 {
    let started = Instant::now();
    store
        .put(
            &ObjectPath::from(format!("{folder}/all")),
            payload_of(size, piece),
        )
        .await
        .unwrap();
    started.elapsed().as_secs_f64()
}

/// PUTs `size` bytes under `folder` as 1 MiB objects, `in_flight` at a time; returns the
/// seconds it took.
async fn plain_put_pieces(
    store: &Arc<dyn ObjectStore>,
    folder: &str,
    size: u64,
    piece: &Bytes,
    in_flight: usize,
) -> f64 {
    let offsets: Vec<u64> = (0..size.div_ceil(PIECE as u64))
        .map(|i| i * PIECE as u64)
        .collect();
    let started = Instant::now();
    futures_util::stream::iter(offsets)
        .map(|offset| {
            let store = store.clone();
            let body = payload_of((size - offset).min(PIECE as u64), piece);
            let path = ObjectPath::from(format!("{folder}/{offset:016x}"));
            async move { store.put(&path, body).await.map(|_| ()) }
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    started.elapsed().as_secs_f64()
}

async fn delete_folder(store: &Arc<dyn ObjectStore>, folder: &str) {
    let names: Vec<ObjectPath> = store
        .list(Some(&ObjectPath::from(folder)))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .unwrap();
    for name in names {
        store.delete(&name).await.unwrap();
    }
}

/// One round of plain PUTs of `size` bytes under `folder`: 1 MiB objects one at a time
/// (with the CPU it took), one object, 1 MiB objects PARALLEL_PUTS at a time; then
/// removes them. Returns the seconds of each.
async fn plain_round(
    store: &Arc<dyn ObjectStore>,
    node: &Server,
    folder: String,
    size: u64,
    piece: &Bytes,
) -> (f64, f64, f64, ClusterCpu) {
    let watch = Watch::start(&[node]);
    let seq = plain_put_pieces(store, &format!("{folder}/seq"), size, piece, 1).await;
    let cpu = watch.finish();
    let one = plain_put_one(store, &format!("{folder}/one"), size, piece).await;
    let par = plain_put_pieces(store, &format!("{folder}/par"), size, piece, PARALLEL_PUTS).await;
    delete_folder(store, &folder).await;
    (seq, one, par, cpu)
}

/// Applies the schema the way operators do.
fn migrate(url: &str) {
    let out = Command::new(BIN)
        .args(["migrate", "--records", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "coffre-server migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Table sizes of a database filled through the `Records` trait: (table, rows, bytes
/// with indexes and TOAST), and the database size before and after.
struct Sizing {
    tables: Vec<(String, u64, u64)>,
    empty_bytes: u64,
    full_bytes: u64,
    seconds: f64,
}

async fn sizing(pg: &Postgres, owner_envelope: &[u8], share_envelope: &[u8]) -> Sizing {
    let url = pg.create_database("sizing");
    migrate(&url);
    pg.psql("sizing", "VACUUM ANALYZE");
    let empty_bytes: u64 = pg
        .psql("sizing", "SELECT pg_database_size('sizing')")
        .parse()
        .unwrap();
    let records = Arc::new(PgRecords::connect(&url).await.unwrap());
    let started = Instant::now();
    let mut accounts = Vec::new();
    for i in 0..SIZING_ACCOUNTS {
        let (id, _) = seed_account(records.as_ref(), &format!("beneficiary-{i:06}")).await;
        accounts.push(id);
    }
    let now = super::now();
    let jobs: Vec<(Id, Id)> = (0..SIZING_ACCOUNTS)
        .flat_map(|i| {
            let owner = accounts[i];
            let recipient = accounts[(i + 1) % SIZING_ACCOUNTS];
            (0..SIZING_DOCS_PER_ACCOUNT).map(move |_| (owner, recipient))
        })
        .collect();
    let size = stream_length(30); // ~2 MB: 2 TB / 1 M papers
    futures_util::stream::iter(jobs)
        .map(|(owner, recipient)| {
            let records = records.clone();
            let owner_envelope = owner_envelope.to_vec();
            let share_envelope = share_envelope.to_vec();
            async move {
                let doc = Document {
                    id: Id::generate().unwrap(),
                    owner,
                    metadata: vec![7u8; METADATA_BYTES],
                    size,
                    stored: size,
                    committed: true,
                    created_at: now,
                    committed_at: Some(now),
                };
                let own = EnvelopeRecord {
                    envelope: owner_envelope,
                    granted_by: owner,
                    created_at: now,
                    expires_at: None,
                };
                records
                    .create_document(&doc, &own, u64::MAX / 2)
                    .await
                    .unwrap();
                let share = EnvelopeRecord {
                    envelope: share_envelope,
                    granted_by: owner,
                    created_at: now,
                    expires_at: None,
                };
                records
                    .put_envelope(doc.id, recipient, &share)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    drop(records);
    pg.psql("sizing", "VACUUM ANALYZE");
    let full_bytes: u64 = pg
        .psql("sizing", "SELECT pg_database_size('sizing')")
        .parse()
        .unwrap();
    let mut tables = Vec::new();
    for table in ["accounts", "sessions", "documents", "envelopes"] {
        let out = pg.psql(
            "sizing",
            &format!("SELECT count(*), pg_total_relation_size('{table}') FROM {table}"),
        );
        let (rows, bytes) = out.split_once('|').unwrap();
        tables.push((
            table.to_owned(),
            rows.parse().unwrap(),
            bytes.parse().unwrap(),
        ));
    }
    Sizing {
        tables,
        empty_bytes,
        full_bytes,
        seconds,
    }
}

/// Runs the whole part; returns its Markdown sections.
pub async fn run(piece: &Bytes, owner_envelope: &[u8], share_envelope: &[u8]) -> String {
    let load_before = load_average();
    let started = Instant::now();
    let (pg, weed) = tokio::task::spawn_blocking(|| {
        let pg = Postgres::start();
        // Durable, as a deployment runs it (the harness turns these off for tests), and
        // with per-statement counters for the profile.
        for sql in [
            "ALTER SYSTEM SET fsync = on",
            "ALTER SYSTEM SET full_page_writes = on",
            "ALTER SYSTEM SET synchronous_commit = on",
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
        ] {
            pg.psql("postgres", sql);
        }
        pg.restart();
        let weed = Seaweed::start();
        weed.create_bucket(BUCKET);
        (pg, weed)
    })
    .await
    .unwrap();
    let pg_settings = pg.psql(
        "postgres",
        "SELECT string_agg(name || ' = ' || setting || coalesce(unit, ''), ', ' ORDER BY name) \
         FROM pg_settings WHERE name IN ('fsync', 'full_page_writes', 'synchronous_commit', \
         'shared_buffers', 'max_connections')",
    );
    let pg_version = pg.psql("postgres", "SHOW server_version");
    let weed_version = Command::new(super::cluster::weed_binary())
        .arg("version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let db_url = pg.create_database("bench");
    migrate(&db_url);
    pg.psql("bench", "CREATE EXTENSION pg_stat_statements");
    let dir = tempfile::tempdir().unwrap();
    let (recipient, token) = {
        let records = PgRecords::connect(&db_url).await.unwrap();
        let (_, token) = seed_account(&records, "owner").await;
        let (recipient, _) = seed_account(&records, "worker").await;
        (recipient, token)
    };
    let records_args = ["--records", db_url.as_str()];
    let node1 = Server::spawn_with(dir.path(), "node1", "node1.log", &records_args, &[]);
    let client = Client {
        http: reqwest::Client::new(),
        url: node1.url.clone(),
        token: token.clone(),
        envelope: b64(owner_envelope),
    };

    // --- requests per second on PostgreSQL records ---
    let small = stream_length(0);
    let mut shared_doc = String::new();
    for _ in 0..LISTED_DOCUMENTS {
        let id = client.create(small).await;
        client.upload(&id, small, piece).await;
        shared_doc = id;
    }
    let script = dir.path().join("put-envelope.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"PUT\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{}'\n",
            serde_json::json!({"envelope": b64(share_envelope)})
        ),
    )
    .unwrap();
    let put_path = format!("/v1/documents/{shared_doc}/envelopes/{recipient}");
    let list_1 = load(&pg, &[&node1], "/v1/documents", &token, None);
    let put_1 = load(&pg, &[&node1], &put_path, &token, Some(&script));
    let node2 = Server::spawn_with(dir.path(), "node2", "node2.log", &records_args, &[]);
    let list_2 = load(&pg, &[&node1, &node2], "/v1/documents", &token, None);
    let put_2 = load(&pg, &[&node1, &node2], &put_path, &token, Some(&script));
    node1.stop();
    node2.stop();

    // --- 100 MB through PostgreSQL + S3, next to plain PUTs ---
    let payloads = format!(
        "s3://{BUCKET}?endpoint={}&region={}",
        weed.endpoint(),
        weed.region()
    );
    let s3_args = [
        "--records",
        db_url.as_str(),
        "--payloads",
        payloads.as_str(),
    ];
    let s3_env = [
        ("COFFRE_S3_ACCESS_KEY", weed.access_key()),
        ("COFFRE_S3_SECRET_KEY", weed.secret_key()),
    ];
    let node = Server::spawn_with(dir.path(), "node-s3", "node-s3.log", &s3_args, &s3_env);
    let client = Client {
        url: node.url.clone(),
        ..client
    };
    let store = object_store(&weed);
    let size_100 = stream_length(1_525); // 99 967 816 bytes, as the file bench
    let (mut ups, mut pieces_1, mut ones, mut pieces_n) = (vec![], vec![], vec![], vec![]);
    let (mut up_cpu, mut plain_cpu) = (vec![], vec![]);
    for round in 0..ROUNDS {
        let server_first = round % 2 == 1;
        let folder = format!("plain/{round}");
        let plain = |folder: String| plain_round(&store, &node, folder, size_100, piece);
        if !server_first {
            let (seq, one, par, cpu) = plain(folder.clone()).await;
            pieces_1.push(seq);
            ones.push(one);
            pieces_n.push(par);
            plain_cpu.push(cpu);
        }
        let id = client.create(size_100).await;
        let watch = Watch::start(&[&node]);
        ups.push(client.upload(&id, size_100, piece).await);
        up_cpu.push(watch.finish());
        client.delete(&id).await;
        if server_first {
            let (seq, one, par, cpu) = plain(folder).await;
            pieces_1.push(seq);
            ones.push(one);
            pieces_n.push(par);
            plain_cpu.push(cpu);
        }
    }
    node.stop();
    let mb = |bytes: u64, secs: f64| bytes as f64 / 1e6 / secs;
    let round_ratios: Vec<f64> = pieces_1.iter().zip(&ups).map(|(p, u)| p / u).collect();
    let up = mb(size_100, median(ups));
    let plain_seq = mb(size_100, median(pieces_1));
    let plain_one = mb(size_100, median(ones));
    let plain_par = mb(size_100, median(pieces_n));

    // --- memory of a fresh node through a 1 GiB upload on PostgreSQL + S3 ---
    let size_gib = stream_length(16_384); // 1 074 004 984 bytes
    let node = Server::spawn_with(dir.path(), "node-gib", "node-gib.log", &s3_args, &s3_env);
    let client = Client {
        url: node.url.clone(),
        ..client
    };
    let gib_rss_start_kib = node.peak_rss_kib();
    let id = client.create(size_gib).await;
    let weed_disk_before = weed.disk_bytes();
    let watch = Watch::start(&[&node]);
    let gib_up = mb(size_gib, client.upload(&id, size_gib, piece).await);
    let gib_cpu = watch.finish();
    let gib_rss_kib = node.peak_rss_kib();
    let weed_disk_growth = weed.disk_bytes().saturating_sub(weed_disk_before);
    let weed_rss = weed.resident_bytes();
    node.stop();

    // --- database bytes per record ---
    let sizes = sizing(&pg, owner_envelope, share_envelope).await;
    let load_after = load_average();
    let part_seconds = started.elapsed().as_secs_f64();

    // --- report ---
    let mut r = String::new();
    let _ = writeln!(r, "\n# PostgreSQL records and S3 payloads\n");
    let _ = writeln!(
        r,
        "Latest run: {}; {}; shared virtual machine (1-minute load average {load_before} \
         before this part, {load_after} after; it took {part_seconds:.0} s). Everything on \
         the same cores over 127.0.0.1, started as the cluster tests do \
         (`server/tests/common/cluster.rs`): PostgreSQL {pg_version} ({pg_settings}; \
         pg_stat_statements loaded for the per-request counts) and SeaweedFS ({weed_version}: \
         one master, three volume servers, replication `001` (every object on two of them), \
         a filer on its default leveldb store, the S3 gateway; volume servers do not fsync \
         each write, SeaweedFS's default). Nodes: the same binary as above, `info` logging \
         to a file, connection pool of 16 per node.\n",
        utc_now(),
        machine()
    );
    let _ = writeln!(
        r,
        "## Requests on PostgreSQL records ({CONNECTIONS} connections in all, wrk -t2 per \
         node, {WRK_SECONDS} each; payloads in files)\n"
    );
    let _ = writeln!(
        r,
        "| request | nodes | req/s | p50 | p99 | non-2xx / socket errors | SQL statements per request (PostgreSQL ms per request) | CPU (cores) | goal ≥ {GOAL_RPS:.0} req/s, p99 ≤ {GOAL_P99_MS:.0} ms |\n\
         | --- | --- | ---: | ---: | ---: | --- | --- | --- | --- |"
    );
    for (name, m) in [
        (
            format!("list own documents: `GET /v1/documents` ({LISTED_DOCUMENTS} documents)"),
            &list_1,
        ),
        (String::new(), &list_2),
        (
            "add an envelope: `PUT /v1/documents/{id}/envelopes/{recipient}` (one row, rewritten)"
                .to_owned(),
            &put_1,
        ),
        (String::new(), &put_2),
    ] {
        let join =
            |f: fn(&Load) -> String| m.per_node.iter().map(f).collect::<Vec<_>>().join(" + ");
        let nodes = if m.per_node.len() == 1 {
            "1".to_owned()
        } else {
            format!("{} (32 + 32 connections)", m.per_node.len())
        };
        let rps = if m.per_node.len() == 1 {
            format!("{:.0}", m.requests_per_second())
        } else {
            format!(
                "**{:.0}** ({})",
                m.requests_per_second(),
                join(|l| format!("{:.0}", l.requests_per_second))
            )
        };
        let p50 = m
            .per_node
            .iter()
            .map(|l| format!("{:.2} ms", l.p50_ms))
            .collect::<Vec<_>>()
            .join(" / ");
        let p99 = if m.per_node.len() == 1 {
            format!("{:.2} ms", m.worst_p99())
        } else {
            format!(
                "worst {:.2} ms ({})",
                m.worst_p99(),
                m.per_node
                    .iter()
                    .map(|l| format!("{:.2}", l.p99_ms))
                    .collect::<Vec<_>>()
                    .join(" / ")
            )
        };
        let non_2xx: u64 = m.per_node.iter().map(|l| l.non_2xx).sum();
        let errors = join(|l| l.errors.clone());
        let per_request = m.requests.max(1) as f64;
        let _ = writeln!(
            r,
            "| {name} | {nodes} | {rps} | {p50} | {p99} | {non_2xx} / {errors} | {:.1} ({:.3} ms) | {} | {} req/s, {} p99 |",
            m.db.statements as f64 / per_request,
            m.db.exec_ms / per_request,
            m.cpu.describe(),
            verdict(m.requests_per_second() >= GOAL_RPS),
            verdict(m.worst_p99() <= GOAL_P99_MS),
        );
    }
    let _ = writeln!(
        r,
        "\nMost executed statements per run (calls, mean execution time inside PostgreSQL):\n"
    );
    for (name, m) in [
        ("list, 1 node", &list_1),
        ("list, 2 nodes", &list_2),
        ("add an envelope, 1 node", &put_1),
        ("add an envelope, 2 nodes", &put_2),
    ] {
        let top =
            m.db.top
                .iter()
                .map(|(calls, mean, q)| format!("{calls} × `{q}…` ({mean:.3} ms)"))
                .collect::<Vec<_>>()
                .join("; ");
        let _ = writeln!(r, "- {name}: {} requests; {top}", m.requests);
    }
    let cpu_us =
        |m: &Measured, f: fn(&ClusterCpu) -> f64| f(&m.cpu) * 1e6 / m.requests_per_second();
    let _ = writeln!(
        r,
        "- CPU per request (µs of one core, servers / postgres): list {:.0} / {:.0} (1 node), \
         {:.0} / {:.0} (2 nodes); add an envelope {:.0} / {:.0} (1 node), {:.0} / {:.0} (2 nodes)",
        cpu_us(&list_1, |c| c.servers),
        cpu_us(&list_1, |c| c.postgres),
        cpu_us(&list_2, |c| c.servers),
        cpu_us(&list_2, |c| c.postgres),
        cpu_us(&put_1, |c| c.servers),
        cpu_us(&put_1, |c| c.postgres),
        cpu_us(&put_2, |c| c.servers),
        cpu_us(&put_2, |c| c.postgres),
    );
    let _ = writeln!(
        r,
        "\n## Payloads on S3 (PostgreSQL records + SeaweedFS; 100 MB = {size_100} bytes; median of {ROUNDS} alternating rounds)\n"
    );
    let _ = writeln!(
        r,
        "| measure | value | CPU (cores) | goal |\n| --- | ---: | --- | --- |"
    );
    let _ = writeln!(
        r,
        "| upload: `PATCH …/payload?offset=0`, streamed; the node PUTs 1 MiB objects, one in flight, and records the stored length | {up:.0} MB/s | {} | |",
        ClusterCpu::mean(&up_cpu).describe()
    );
    let _ = writeln!(
        r,
        "| plain PUTs of the same bytes as {} objects of 1 MiB, one at a time (object_store, as the node) | {plain_seq:.0} MB/s | {} | |",
        size_100.div_ceil(PIECE as u64),
        ClusterCpu::mean(&plain_cpu).describe()
    );
    let _ = writeln!(
        r,
        "| **upload / plain 1 MiB PUTs one at a time** | **{:.2}×** | | ≥ 0.7× {} |",
        up / plain_seq,
        verdict(up / plain_seq >= 0.7)
    );
    let _ = writeln!(
        r,
        "| upload / plain 1 MiB PUTs, round by round (server second, then first, …) | {} | | |",
        round_ratios
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" · ")
    );
    let _ = writeln!(
        r,
        "| plain PUT of the same bytes as one object | {plain_one:.0} MB/s | | |"
    );
    let _ = writeln!(
        r,
        "| upload / plain PUT of one object | {:.2}× | | ≥ 0.7× {} |",
        up / plain_one,
        verdict(up / plain_one >= 0.7)
    );
    let _ = writeln!(
        r,
        "| plain PUTs as 1 MiB objects, {PARALLEL_PUTS} in flight (for information) | {plain_par:.0} MB/s | | |"
    );
    let _ = writeln!(
        r,
        "\n## Memory on PostgreSQL + S3 (1 GiB = {size_gib} bytes, through a freshly started node)\n"
    );
    let _ = writeln!(r, "| measure | value | goal |\n| --- | ---: | --- |");
    let _ = writeln!(
        r,
        "| **node peak RSS (VmHWM) after the 1 GiB upload** | **{:.1} MiB** (at start: {:.1} MiB) | ≤ 64 MiB {} |",
        gib_rss_kib as f64 / 1024.0,
        gib_rss_start_kib as f64 / 1024.0,
        verdict(gib_rss_kib <= 64 * 1024)
    );
    let _ = writeln!(
        r,
        "| upload of the 1 GiB document | {gib_up:.0} MB/s (CPU: {}) | |",
        gib_cpu.describe()
    );
    let _ = writeln!(
        r,
        "| SeaweedFS disk growth for it (volume files, both copies) | {:.2} GB, {:.2} bytes per payload byte | |",
        weed_disk_growth as f64 / 1e9,
        weed_disk_growth as f64 / size_gib as f64
    );
    let _ = writeln!(
        r,
        "| SeaweedFS processes' resident memory afterwards (5 processes) | {:.0} MiB | |",
        weed_rss as f64 / (1024.0 * 1024.0)
    );
    let docs = SIZING_ACCOUNTS * SIZING_DOCS_PER_ACCOUNT;
    let _ = writeln!(
        r,
        "\n## Database size (a fresh database: {SIZING_ACCOUNTS} accounts with a session each, \
         {docs} committed documents with {METADATA_BYTES}-byte metadata, each with its owner's \
         envelope and one share; written through the `Records` trait in {:.1} s, then VACUUM ANALYZE)\n",
        sizes.seconds
    );
    let _ = writeln!(
        r,
        "| table | rows | size with indexes and TOAST | bytes per row |\n| --- | ---: | ---: | ---: |"
    );
    for (table, rows, bytes) in &sizes.tables {
        let _ = writeln!(
            r,
            "| `{table}` | {rows} | {:.2} MB | {:.0} |",
            *bytes as f64 / 1e6,
            *bytes as f64 / (*rows).max(1) as f64
        );
    }
    let _ = writeln!(
        r,
        "| `pg_database_size`, empty schema → filled | | {:.2} MB → {:.2} MB | {:.0} per document (all tables) |",
        sizes.empty_bytes as f64 / 1e6,
        sizes.full_bytes as f64 / 1e6,
        sizes.full_bytes.saturating_sub(sizes.empty_bytes) as f64 / docs as f64
    );
    drop(weed);
    drop(pg);
    r
}
