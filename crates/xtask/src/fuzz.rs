//! The test task's bounded fuzz run: every cargo-fuzz target in `fuzz/` (docs/fuzzing.md)
//! built with libFuzzer and AddressSanitizer, seeded from the format test vectors, and run
//! for [`FUZZ_SECONDS_PER_TARGET`] seconds each; any crash fails the step.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The cargo-fuzz release the step installs when it is missing (`cargo install --locked`).
pub(crate) const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// How long each target runs. Long enough to shake out a shallow regression in every
/// parser, short enough to keep the step (build included) within a few minutes; the long
/// runs of docs/fuzzing.md are done by hand, with optimised builds.
pub(crate) const FUZZ_SECONDS_PER_TARGET: u32 = 6;

/// Targets whose input is an age file or header: seeded with every test vector's bytes.
/// `decrypt` takes a piece-size byte first.
const AGE_FILE_TARGETS: [(&str, &[u8]); 3] =
    [("header", b""), ("envelope", b""), ("decrypt", b"?")];

/// Installs cargo-fuzz at [`CARGO_FUZZ_VERSION`] unless that version is there.
pub(crate) fn ensure_cargo_fuzz() -> Result {
    let installed = probe(Command::new("cargo").args(["fuzz", "--version"])).unwrap_or_default();
    if installed.split_whitespace().nth(1) == Some(CARGO_FUZZ_VERSION) {
        println!("cargo-fuzz {CARGO_FUZZ_VERSION}: present");
        return Ok(());
    }
    println!(
        "cargo-fuzz {CARGO_FUZZ_VERSION} not found (have: {:?}); installing it",
        installed.trim()
    );
    status(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
        "--locked",
    ]))
}

/// `cargo fuzz` from the repository root. cargo-fuzz needs nightly compiler flags
/// (`-Zsanitizer`, `-Cpasses=sancov-module`); the stable toolchain accepts them with
/// `RUSTC_BOOTSTRAP=1`, which this crate alone gets, so that no nightly is installed.
fn cargo_fuzz(ctx: &Ctx, args: &[&str]) -> Command {
    let mut cmd = ctx.cargo();
    cmd.arg("fuzz").args(args).env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// The build flags, the same for `build` and `run` so that `run` does not rebuild. An
/// unoptimised build (with debug assertions, ASan and coverage as always): a build that
/// runs for seconds should compile fast, and compiling the server's dependency tree with
/// optimisations took most of the step (6 of its 9.5 minutes in CI; `--dev` builds it in
/// about half the time, while each target still runs thousands of inputs).
const BUILD_FLAGS: [&str; 1] = ["--dev"];

pub(crate) fn fuzz_step(ctx: &Ctx) -> Result {
    let started = Instant::now();
    ensure_cargo_fuzz()?;
    let manifest = ctx.root.join("fuzz/Cargo.toml");
    // cargo fuzz has no --locked: check first that fuzz/Cargo.lock needs no change.
    status(
        ctx.cargo()
            .args(["fetch", "--locked", "--manifest-path"])
            .arg(&manifest),
    )?;
    let listed = probe(&mut cargo_fuzz(ctx, &["list"]))
        .ok_or_else(|| Failure("`cargo fuzz list` failed".into()))?;
    let targets: Vec<&str> = listed.split_whitespace().collect();
    if targets.is_empty() {
        return fail("`cargo fuzz list` names no target");
    }
    let mut build_args = vec!["build"];
    build_args.extend(BUILD_FLAGS);
    status(&mut cargo_fuzz(ctx, &build_args))?;
    let built = started.elapsed();
    println!("fuzz targets built in {:.0?}", built);

    let corpora = ctx.target_dir().join("fuzz-corpus");
    let _ = fs::remove_dir_all(&corpora);
    let vectors = age_test_vectors(&ctx.root)?;
    let max_time = format!("-max_total_time={FUZZ_SECONDS_PER_TARGET}");
    for target in &targets {
        let corpus = corpora.join(target);
        fs::create_dir_all(&corpus)
            .map_err(|e| Failure(format!("cannot create {}: {e}", corpus.display())))?;
        if let Some((_, prefix)) = AGE_FILE_TARGETS.iter().find(|(t, _)| t == target) {
            for (name, bytes) in &vectors {
                let seed = [prefix, bytes.as_slice()].concat();
                fs::write(corpus.join(name), seed)
                    .map_err(|e| Failure(format!("cannot write a seed: {e}")))?;
            }
        }
        let corpus_arg = corpus.to_string_lossy().into_owned();
        let mut args = vec!["run"];
        args.extend(BUILD_FLAGS);
        args.extend([
            *target,
            &corpus_arg,
            "--",
            &max_time,
            "-print_final_stats=1",
        ]);
        let run_started = Instant::now();
        let mut cmd = cargo_fuzz(ctx, &args);
        println!("$ {}", show(&cmd));
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Failure(format!("cannot run cargo fuzz: {e}")))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            eprintln!("{log}");
            return fail(format!(
                "fuzz target `{target}` failed ({}); the input is in fuzz/artifacts/{target}/, \
                 rerun it with `RUSTC_BOOTSTRAP=1 cargo fuzz run {target} <file>`",
                out.status
            ));
        }
        // libFuzzer's last status line: `#<executions>\tDONE   cov: … ft: … exec/s: …`.
        let last = log
            .lines()
            .rev()
            .find(|l| l.starts_with('#') && l.contains("DONE "))
            .unwrap_or("(no libFuzzer summary)");
        println!("  {target}: {:.0?}; {}", run_started.elapsed(), last.trim());
    }
    println!(
        "bounded fuzz run: {} targets, build {:.0?}, total {:.0?}",
        targets.len(),
        built,
        started.elapsed()
    );
    Ok(())
}

/// The bytes after the header of every file under crates/coffre-core/tests/testdata/
/// (one folder per suite, one file per case: `key: value` lines, a blank line, the bytes).
fn age_test_vectors(root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let testdata = root.join("crates/coffre-core/tests/testdata");
    let read_dir = |dir: &Path| {
        fs::read_dir(dir).map_err(|e| Failure(format!("cannot read {}: {e}", dir.display())))
    };
    let mut vectors = Vec::new();
    for suite in read_dir(&testdata)?.flatten() {
        if !suite.path().is_dir() {
            continue;
        }
        for case in read_dir(&suite.path())?.flatten() {
            let bytes = fs::read(case.path())
                .map_err(|e| Failure(format!("cannot read {}: {e}", case.path().display())))?;
            if let Some(at) = bytes.windows(2).position(|w| w == b"\n\n") {
                let name = format!(
                    "{}-{}",
                    suite.file_name().to_string_lossy(),
                    case.file_name().to_string_lossy()
                );
                vectors.push((name, bytes[at + 2..].to_vec()));
            }
        }
    }
    if vectors.is_empty() {
        return fail(format!("no test vectors under {}", testdata.display()));
    }
    Ok(vectors)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seeds_are_the_test_vectors_bytes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap();
        let vectors = age_test_vectors(root).unwrap();
        let (_, pinned) = vectors
            .iter()
            .find(|(name, _)| name == "coffre-pinned_v1_two_recipients")
            .unwrap();
        assert!(pinned.starts_with(b"age-encryption.org/v1\n"));
        assert!(vectors.len() > 50);
    }
}
