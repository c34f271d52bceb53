//! `cargo xtask`: Coffre's build and test driver — run `cargo xtask test` (everything CI
//! checks), `cargo xtask lint`, `cargo xtask run` or `cargo xtask bench` from the repository.
//!
//! Standard library only, so the driver builds in seconds on a fresh machine. Each task is
//! a list of [`Step`]s, run in order with a banner; the first failing step stops the task
//! and the process exits non-zero. The npm package steps live in `wasm.rs`.

mod bench;
mod checks;
mod deny;
mod fuzz;
mod prereqs;
mod run;
mod wasm;

use bench::*;
use checks::*;
use deny::*;
use fuzz::*;
use prereqs::*;
use run::*;
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

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  test [--skip-lint]   the one test command (what CI runs): prerequisites, cargo fmt --check,
                       clippy -D warnings, coffre-core for wasm32, cargo deny,
                       cargo test --workspace, the server tests on PostgreSQL + S3,
                       a bounded schemathesis run against the OpenAPI document,
                       a bounded run of every fuzz target, then the npm package:
                       build pkg/, tsc, Node tests, Chromium tests,
                       then the web app end to end against the release server
  fuzz                 only the bounded fuzz run: cargo-fuzz (installed if missing), every
                       target in fuzz/ for a few seconds each
  deny                 only the dependency policy: cargo deny (installed if missing) on both
                       lock files, against the advisory snapshot in deny/advisory-db/
  deny-update --from DIR
                       replace deny/advisory-db/ with a clone of rustsec/advisory-db at DIR
  schemathesis         only the bounded schemathesis run (installed from PyPI if missing)
                       against a seeded server's OpenAPI document
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

/// The banner of the schemathesis step, in `test` and alone.
const SCHEMATHESIS_STEP: &str = "schemathesis against the OpenAPI document (bounded)";

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
            steps.push(Step::new("dependency policy (cargo deny)", deny_step));
            steps.push(Step::new("cargo test --workspace", cargo_test));
            steps.push(Step::new(
                "server HTTP tests on PostgreSQL + S3",
                cargo_test_postgres,
            ));
            steps.push(Step::new(SCHEMATHESIS_STEP, schemathesis_step));
            steps.push(Step::new("bounded fuzz run (fuzz/)", fuzz_step));
            steps.extend(js_test_steps());
            steps
        }
        "fuzz" => vec![Step::new("bounded fuzz run (fuzz/)", fuzz_step)],
        "deny" => vec![Step::new("dependency policy (cargo deny)", deny_step)],
        "deny-update" => {
            let from = flags.value("--from")?.ok_or_else(|| {
                Failure("deny-update needs --from DIR, a clone of rustsec/advisory-db".into())
            })?;
            vec![Step::new("refresh deny/advisory-db/", move |ctx| {
                deny_update(ctx, Path::new(&from))
            })]
        }
        "schemathesis" => vec![Step::new(SCHEMATHESIS_STEP, schemathesis_step)],
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
        print_disk_free(ctx);
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

/// The space left on the target folder's disk after a step: a CI machine's disk may be
/// small, and a build that fills it fails in the linker with little to say why.
fn print_disk_free(ctx: &Ctx) {
    let target = ctx.target_dir();
    let probe = if target.exists() {
        target
    } else {
        ctx.root.clone()
    };
    let free = Command::new("df")
        .arg("-Pk")
        .arg(&probe)
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text.lines().nth(1)?.to_owned();
            line.split_whitespace().nth(3)?.parse::<u64>().ok()
        });
    if let Some(kib) = free {
        let used = dir_size(&ctx.target_dir());
        println!(
            "xtask: disk: {:.1} GiB free; target/ holds {:.1} GiB",
            kib as f64 / (1024.0 * 1024.0),
            used as f64 / (1024.0 * 1024.0 * 1024.0)
        );
    }
}

/// Bytes under `dir` (0 when it cannot be read).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
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

// ---------------------------------------------------------------------------------------
// Lint

// ---------------------------------------------------------------------------------------
// Test

// ---------------------------------------------------------------------------------------
// Run

// ---------------------------------------------------------------------------------------
// Bench

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
        assert_eq!(plan(&args(&["test"])).unwrap().len(), 17);
        assert_eq!(plan(&args(&["test", "--skip-lint"])).unwrap().len(), 14);
        assert_eq!(plan(&args(&["fuzz"])).unwrap().len(), 1);
        assert_eq!(plan(&args(&["schemathesis"])).unwrap().len(), 1);
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
