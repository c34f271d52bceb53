//! The test task's checks: lint gates, the workspace tests (again on the cluster
//! backends), the package and web tests; and the runner that echoes cargo's output and
//! ends with a recap of every test binary.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(crate) fn lint_steps() -> Vec<Step> {
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

/// The npm package: built from scratch, type-checked, tested in Node and in Chromium.
pub(crate) fn js_test_steps() -> Vec<Step> {
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
        // The debug server the workspace tests built (a no-op build here): its crypto
        // dependencies are optimised in the dev profile, and a release build of the whole
        // server (LTO, one codegen unit) would add about nine minutes to every run.
        Step::new("build coffre-server (web tests)", |ctx| {
            cargo_step(ctx, &["build", "-p", "coffre-server", "--locked"])
        }),
        Step::new(
            "web app end to end in headless Chromium (tests/web)",
            |ctx| wasm::test_web(&ctx.root).map_err(Failure),
        ),
        Step::new(
            "web app end to end on PostgreSQL + S3 (server/tests/cluster_web.rs)",
            cargo_test_web_cluster,
        ),
    ]
}

/// `cargo test --workspace`, streamed as it runs, then a recap of every test binary's
/// `test result:` line and the totals.
pub(crate) fn cargo_test(ctx: &Ctx) -> Result {
    run_cargo_tests(ctx, &["test", "--workspace", "--locked"], &[])
}

/// The server's HTTP tests again, on the cluster backends: PostgreSQL records (a fresh
/// database per test on the PostgreSQL the harness starts) and S3 payloads (SeaweedFS, a
/// prefix per test); the tests that read sled itself (its audit
/// and the audit's tamper tests) stay on the embedded run.
pub(crate) fn cargo_test_postgres(ctx: &Ctx) -> Result {
    let mut args = vec!["test", "-p", "coffre-server", "--locked"];
    for test in [
        "authz",
        "documents",
        "hostile_json",
        "http_basics",
        "login",
        "logs",
        "recovery",
        "shares",
    ] {
        args.extend(["--test", test]);
    }
    run_cargo_tests(
        ctx,
        &args,
        &[
            ("COFFRE_TEST_RECORDS", "postgres"),
            ("COFFRE_TEST_PAYLOADS", "s3"),
        ],
    )
}

/// The schemathesis run (server/tests/schemathesis.rs, an ignored test): a seeded server,
/// every operation of its OpenAPI document, bounded in cases and time; the very
/// schemathesis the prerequisites installed.
pub(crate) fn schemathesis_step(ctx: &Ctx) -> Result {
    ensure_schemathesis()?;
    let program = find_pypi_program(&SCHEMATHESIS)?
        .ok_or_else(|| Failure("schemathesis is missing after its installation".into()))?;
    let program = program.to_string_lossy().into_owned();
    run_cargo_tests(
        ctx,
        &[
            "test",
            "-p",
            "coffre-server",
            "--test",
            "schemathesis",
            "--locked",
            "--",
            "--ignored",
            "--nocapture",
        ],
        &[("COFFRE_SCHEMATHESIS", &program)],
    )
}

/// The web test again, with the server on PostgreSQL records and SeaweedFS payloads that
/// the server tests' harness starts (an ignored test, so that a plain `cargo test` does
/// not need the release server and Chromium).
pub(crate) fn cargo_test_web_cluster(ctx: &Ctx) -> Result {
    // The debug server the workspace tests built, as the web test on the embedded store
    // uses (see `js_test_steps`).
    let server = wasm::target_dir(&ctx.root)
        .join("debug")
        .join("coffre-server");
    let server = server.to_string_lossy().into_owned();
    run_cargo_tests(
        ctx,
        &[
            "test",
            "-p",
            "coffre-server",
            "--locked",
            "--test",
            "cluster_web",
            "--",
            "--ignored",
            "--nocapture",
        ],
        &[("COFFRE_SERVER_BIN", &server)],
    )
}

/// Runs `cargo ARGS` with `envs`, echoing its output, and ends with a recap of every test
/// binary and the totals.
pub(crate) fn run_cargo_tests(ctx: &Ctx, args: &[&str], envs: &[(&str, &str)]) -> Result {
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

pub(crate) fn forward_lines(
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
pub(crate) fn count_before(line: &str, word: &str) -> u64 {
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
