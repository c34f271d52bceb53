//! The npm package in `pkg/`: build it from scratch, test it in Node and in headless
//! Chromium, and benchmark it. Called by the `cargo xtask` tasks in `main.rs`.
//!
//! Standard library only. Tools, and why each:
//! - `cargo build --target wasm32-unknown-unknown --profile wasm-release` (root
//!   `Cargo.toml`: fat LTO, one codegen unit, panic = abort, size-optimised except the
//!   hot crates). The bench module (`pkg/bench/gen/`, [`build_bench_module`]) is the
//!   same build with the crate's `bench` feature, in its own target directory.
//! - `wasm-bindgen` (wasm-bindgen-cli) at exactly the version of the `wasm-bindgen` crate
//!   in `Cargo.lock`; installed with `cargo install` when missing (built from source, no
//!   binary download; wasm-pack is not used because it downloads binaries at run time).
//!   `--target web` gives one ES module that works without a bundler; `pkg/node.js`
//!   hands it the `.wasm` bytes read from disk, `pkg/index.js` lets it `fetch` them.
//! - `wasm-opt` from the npm `binaryen` package pinned in `pkg/package-lock.json`
//!   (Debian's binaryen 108 writes modules that fail to load with wasm-bindgen's
//!   externref table).
//! - `npm ci` in `pkg/` for typescript, binaryen and playwright-core.
//! - Chromium from Debian (`/usr/bin/chromium`, or `$CHROMIUM`) for the browser tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust crate compiled to WebAssembly.
pub const WASM_CRATE: &str = "coffre-wasm";
/// The target of every browser build.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Cargo profile of the shipped build (defined in the root `Cargo.toml`).
pub const WASM_PROFILE: &str = "wasm-release";
/// Base name of the generated files in `pkg/gen/`.
pub const OUT_NAME: &str = "coffre_wasm";
/// File name of the SIMD build in `pkg/gen/`, chosen at load time where the engine
/// validates SIMD (see `simdSupported` in `pkg/api.js`).
pub const SIMD_WASM: &str = "coffre_wasm_bg.simd.wasm";
/// Features wasm-opt may rely on: those rustc enables by default for wasm32 and that
/// every browser Coffre supports has (no SIMD here: that is a separate build).
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Runs a command, failing with its description if it cannot start or exits non-zero.
fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    eprintln!("+ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed: {status}"))
    }
}

/// Runs a command and returns its standard output.
fn output(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cargo target directory (`$CARGO_TARGET_DIR` or `<root>/target`).
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// The `pkg/` directory.
pub fn pkg_dir(root: &Path) -> PathBuf {
    root.join("pkg")
}

/// The version of the `wasm-bindgen` crate recorded in `Cargo.lock`.
pub fn locked_wasm_bindgen_version(root: &Path) -> Result<String, String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_owned());
            }
        }
    }
    Err("Cargo.lock has no wasm-bindgen package".to_owned())
}

/// Makes sure `wasm-bindgen` on PATH is exactly `version`, installing it from its
/// published sources (`cargo install`) otherwise.
pub fn ensure_wasm_bindgen(version: &str) -> Result<(), String> {
    let installed = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if installed.split_whitespace().nth(1) == Some(version) {
        return Ok(());
    }
    eprintln!("wasm-bindgen-cli {version} not found (have: {installed:?}); installing it");
    let install = |locked: bool| {
        let mut cmd = Command::new("cargo");
        cmd.args(["install", "wasm-bindgen-cli", "--version", version]);
        if locked {
            cmd.arg("--locked");
        }
        run(&mut cmd)
    };
    // `--locked` first; its lockfile has pinned a dependency version that some registry
    // mirrors lack, so fall back to resolving the CLI's dependencies afresh.
    install(true).or_else(|_| install(false))
}

/// Installs the package's dev dependencies (see [`npm_ci_if_needed`]).
pub fn ensure_npm_deps(root: &Path) -> Result<(), String> {
    npm_ci_if_needed(&pkg_dir(root))
}

/// Runs `npm ci` in `dir` when its `node_modules` is missing or older than its
/// `package-lock.json`.
pub fn npm_ci_if_needed(dir: &Path) -> Result<(), String> {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let lock = modified(dir.join("package-lock.json"));
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    match (lock, installed) {
        (Some(lock), Some(installed)) if installed >= lock => Ok(()),
        _ => run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)),
    }
}

/// One compilation of the wasm crate.
#[derive(Clone, Copy)]
struct WasmBuild<'a> {
    /// The shipped profile ([`WASM_PROFILE`]) rather than `dev`.
    release: bool,
    /// With `-C target-feature=+simd128`.
    simd: bool,
    /// Cargo features of the wasm crate (`bench` for the bench module).
    features: &'a [&'a str],
    /// Own target directory under the cargo one, so builds with other flags or features
    /// do not evict each other from cargo's cache (a cdylib's file name carries no hash,
    /// so two feature sets in one directory would also overwrite each other's module).
    target_subdir: Option<&'a str>,
}

/// Compiles the wasm crate; returns the path of the module.
fn cargo_build_wasm(root: &Path, build: WasmBuild<'_>) -> Result<PathBuf, String> {
    let profile = if build.release { WASM_PROFILE } else { "dev" };
    let mut target = target_dir(root);
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args([
            "build",
            "--locked",
            "-p",
            WASM_CRATE,
            "--target",
            WASM_TARGET,
        ])
        .args(["--profile", profile]);
    if !build.features.is_empty() {
        cmd.arg("--features").arg(build.features.join(","));
    }
    if let Some(subdir) = build.target_subdir {
        target = target.join(subdir);
        cmd.arg("--target-dir").arg(&target);
    }
    if build.simd {
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C target-feature=+simd128");
        cmd.env("RUSTFLAGS", flags.trim());
    }
    run(&mut cmd)?;
    let profile_dir = if build.release { WASM_PROFILE } else { "debug" };
    Ok(target
        .join(WASM_TARGET)
        .join(profile_dir)
        .join(format!("{}.wasm", WASM_CRATE.replace('-', "_"))))
}

/// Runs wasm-bindgen on `module`, writing the ES module glue and `.wasm` into `out`.
fn bindgen(module: &Path, out: &Path, release: bool) -> Result<(), String> {
    let mut cmd = Command::new("wasm-bindgen");
    cmd.arg(module)
        .args(["--target", "web", "--out-name", OUT_NAME, "--out-dir"])
        .arg(out);
    if !release {
        cmd.arg("--debug");
    }
    run(&mut cmd)
}

/// Optimises `wasm` in place with binaryen's wasm-opt (from npm).
fn wasm_opt(root: &Path, wasm: &Path, extra: &[&str]) -> Result<(), String> {
    let wasm_opt = pkg_dir(root).join("node_modules/.bin/wasm-opt");
    run(Command::new(wasm_opt)
        .arg("-O3")
        .args(WASM_OPT_FEATURES)
        .args(extra)
        .arg(wasm)
        .arg("-o")
        .arg(wasm))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path:?}: {e}"))
}

/// Builds `pkg/gen/` from scratch: the wasm crate, wasm-bindgen's ES module glue and,
/// for `release`, the shipped profile plus wasm-opt. The hand-written files of `pkg/`
/// import `pkg/gen/coffre_wasm.js`.
///
/// Two modules ship: the baseline one and a `+simd128` one ([`SIMD_WASM`]) that the
/// loader picks where the engine supports SIMD. Both are built from the same code with
/// the same imports and exports, so one glue file serves both; the build checks that
/// wasm-bindgen generated the same glue for each. A dev build copies the baseline
/// module under the SIMD name.
pub fn build_pkg(root: &Path, release: bool) -> Result<(), String> {
    let version = locked_wasm_bindgen_version(root)?;
    ensure_wasm_bindgen(&version)?;
    let gen = pkg_dir(root).join("gen");
    if gen.exists() {
        std::fs::remove_dir_all(&gen).map_err(|e| format!("cannot clear {gen:?}: {e}"))?;
    }
    let module = cargo_build_wasm(
        root,
        WasmBuild {
            release,
            simd: false,
            features: &[],
            target_subdir: None,
        },
    )?;
    bindgen(&module, &gen, release)?;
    let wasm = gen.join(format!("{OUT_NAME}_bg.wasm"));
    let simd_wasm = gen.join(SIMD_WASM);
    if !release {
        return std::fs::copy(&wasm, &simd_wasm)
            .map(|_| ())
            .map_err(|e| format!("cannot copy {wasm:?}: {e}"));
    }

    let simd_module = cargo_build_wasm(
        root,
        WasmBuild {
            release,
            simd: true,
            features: &[],
            target_subdir: Some("wasm-simd"),
        },
    )?;
    let simd_gen = target_dir(root).join("wasm-simd").join("gen");
    bindgen(&simd_module, &simd_gen, release)?;
    let glue = format!("{OUT_NAME}.js");
    if read(&gen.join(&glue))? != read(&simd_gen.join(&glue))? {
        return Err("wasm-bindgen generated different glue for the SIMD build".to_owned());
    }
    std::fs::rename(simd_gen.join(format!("{OUT_NAME}_bg.wasm")), &simd_wasm)
        .map_err(|e| format!("cannot move the SIMD module: {e}"))?;

    ensure_npm_deps(root)?;
    wasm_opt(root, &wasm, &[])?;
    wasm_opt(root, &simd_wasm, &["--enable-simd"])?;
    for file in [&wasm, &simd_wasm] {
        let size = read(file)?.len();
        eprintln!("{}: {size} bytes", file.display());
    }
    Ok(())
}

/// Where the bench module goes, inside `pkg/` but outside the package's `files`.
pub const BENCH_GEN: &str = "bench/gen";

/// Builds the bench module into `pkg/bench/gen/`: the shipped code plus the in-wasm
/// reference loops of the crate's `bench` feature, which the shipped modules leave out.
/// Same profile and wasm-opt pass as the shipped SIMD module, which is the one Node and
/// Chromium load; its own target directory keeps the shipped builds cached.
pub fn build_bench_module(root: &Path) -> Result<(), String> {
    let version = locked_wasm_bindgen_version(root)?;
    ensure_wasm_bindgen(&version)?;
    let out = pkg_dir(root).join(BENCH_GEN);
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("cannot clear {out:?}: {e}"))?;
    }
    let module = cargo_build_wasm(
        root,
        WasmBuild {
            release: true,
            simd: true,
            features: &["bench"],
            target_subdir: Some("wasm-bench"),
        },
    )?;
    bindgen(&module, &out, true)?;
    ensure_npm_deps(root)?;
    wasm_opt(
        root,
        &out.join(format!("{OUT_NAME}_bg.wasm")),
        &["--enable-simd"],
    )
}

/// Type-checks the package declarations and the typed examples (`tsc --noEmit`).
pub fn typecheck(root: &Path) -> Result<(), String> {
    ensure_npm_deps(root)?;
    run(Command::new("node_modules/.bin/tsc")
        .args(["--noEmit", "-p", "tsconfig.json"])
        .current_dir(pkg_dir(root)))
}

/// The Node tests (`node --test pkg/test/node/`). Needs a built `pkg/gen/`, the `age`
/// tool and the release `coffre` CLI (the interop tests require both).
pub fn test_node(root: &Path) -> Result<(), String> {
    run(Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/node/"])
        .env(
            "COFFRE_BIN",
            target_dir(root).join("release").join("coffre"),
        )
        // Interop tests fail instead of skipping when `age` or `coffre` is missing.
        .env("COFFRE_REQUIRE_TOOLS", "1")
        .current_dir(pkg_dir(root)))
}

/// The browser tests in headless Chromium (Playwright via playwright-core).
pub fn test_browser(root: &Path) -> Result<(), String> {
    ensure_npm_deps(root)?;
    run(Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/browser/"])
        .current_dir(pkg_dir(root)))
}

/// Builds `target/release/coffre`, which the interop tests decrypt with.
pub fn build_cli(root: &Path) -> Result<(), String> {
    run(Command::new("cargo").current_dir(root).args([
        "build",
        "--locked",
        "--release",
        "-p",
        "coffre-cli",
    ]))
}

/// How `node` runs the web tests: the stories, then recovery through referents, then a
/// shared computer and the sessions list, then the main flows once more through nginx
/// with TLS, under the Content-Security-Policy, then the safety checks (emoji, words,
/// the QR scan with Chromium's fake camera), then photos made small before encryption.
pub const WEB_TEST_ARGS: &[&str] = &[
    "--test",
    "--test-concurrency=1",
    "--test-reporter=spec",
    "web.test.js",
    "recovery.test.js",
    "shared.test.js",
    "proxy.test.js",
    "safety.test.js",
    "photos.test.js",
];

/// The web app's end-to-end tests (`tests/web/`): Playwright in Chromium against the
/// `coffre-server` (the debug build the workspace tests made) on 127.0.0.1, serving
/// `web/` and the built `pkg/`.
pub fn test_web(root: &Path) -> Result<(), String> {
    let dir = root.join("tests").join("web");
    npm_ci_if_needed(&dir)?;
    run(Command::new("node")
        // One file at a time: each starts its own server and browser, and web.test.js
        // clears the screenshot folder the other writes into.
        .args(WEB_TEST_ARGS)
        .env(
            "COFFRE_SERVER_BIN",
            target_dir(root).join("debug").join("coffre-server"),
        )
        .current_dir(&dir))
}

/// The JS benchmark (`pkg/bench/run.js`): Node and Chromium, numbers on stdout. Builds
/// the shipped package, the bench module ([`build_bench_module`]) and the release
/// `coffre-server`, whose real OPAQUE responses the login measurement uses.
pub fn bench_js(root: &Path) -> Result<(), String> {
    ensure_npm_deps(root)?;
    build_pkg(root, true)?;
    build_bench_module(root)?;
    run(Command::new("cargo").current_dir(root).args([
        "build",
        "--locked",
        "--release",
        "-p",
        "coffre-server",
    ]))?;
    run(Command::new("node")
        .arg("bench/run.js")
        .env(
            "COFFRE_SERVER_BIN",
            target_dir(root).join("release").join("coffre-server"),
        )
        .current_dir(pkg_dir(root)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_locked_wasm_bindgen_version() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let version = locked_wasm_bindgen_version(&root).unwrap();
        assert_eq!(version.split('.').count(), 3, "{version}");
    }
}
