//! The dependency policy step: `cargo deny check` (advisories, licences, bans, sources;
//! `deny.toml`) on the root workspace and on the fuzz workspace, against the snapshot of
//! the RustSec advisory database kept in `deny/advisory-db/` (see `deny/README.md`).

#[allow(clippy::wildcard_imports)]
use super::*;

/// The cargo-deny release the step installs when it is missing (`cargo install --locked`).
pub(crate) const CARGO_DENY_VERSION: &str = "0.20.2";

/// Where `deny.toml`'s `db-path` points, under the repository root.
const DB_PATH: &str = "target/advisory-dbs";

/// Installs cargo-deny at [`CARGO_DENY_VERSION`] unless that version is there.
pub(crate) fn ensure_cargo_deny() -> Result {
    let installed = probe(Command::new("cargo").args(["deny", "--version"])).unwrap_or_default();
    if installed.split_whitespace().nth(1) == Some(CARGO_DENY_VERSION) {
        println!("cargo-deny {CARGO_DENY_VERSION}: present");
        return Ok(());
    }
    println!(
        "cargo-deny {CARGO_DENY_VERSION} not found (have: {:?}); installing it",
        installed.trim()
    );
    // cargo-deny's own release profile asks for fat LTO in one codegen unit, which makes
    // its build minutes longer on a 2-core machine; a policy check run twice per test
    // command does not need that speed, so the profile is relaxed for this build only.
    status(
        Command::new("cargo")
            .args([
                "install",
                "cargo-deny",
                "--version",
                CARGO_DENY_VERSION,
                "--locked",
            ])
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1"),
    )
}

/// The folder cargo-deny opens for `db-urls = ["https://github.com/rustsec/advisory-db"]`
/// under `db-path`: the repository's name and a hash of the URL (cargo-deny's naming, read
/// off its error message when the folder is missing). With `--offline` it opens that
/// folder as a git repository, reads the commit date of HEAD for the database's age, and
/// touches no network.
const DB_FOLDER: &str = "advisory-db-3157b0e258782691";

/// Makes `target/advisory-dbs/<DB_FOLDER>` a git repository holding exactly the snapshot,
/// committed with the snapshot's own date so that cargo-deny's staleness is the
/// snapshot's age, not the time of this run.
fn prepare_db(ctx: &Ctx) -> Result<PathBuf> {
    let snapshot = ctx.root.join("deny/advisory-db");
    let stamp = fs::read_to_string(ctx.root.join("deny/SNAPSHOT"))
        .map_err(|e| Failure(format!("deny/SNAPSHOT: {e}")))?;
    let date = snapshot_field(&stamp, "date")?;
    let db = ctx.root.join(DB_PATH).join(DB_FOLDER);
    let _ = fs::remove_dir_all(&db);
    fs::create_dir_all(&db).map_err(|e| Failure(format!("{}: {e}", db.display())))?;
    copy_tree(&snapshot, &db)?;
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.current_dir(&db)
            .args([
                "-c",
                "user.name=coffre-xtask",
                "-c",
                "user.email=xtask@invalid",
            ])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .stdout(Stdio::null());
        status(&mut cmd)
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "RustSec advisory database snapshot"])?;
    Ok(db)
}

/// `key = value` from `deny/SNAPSHOT`.
fn snapshot_field(stamp: &str, key: &str) -> Result<String> {
    stamp
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .ok_or_else(|| Failure(format!("deny/SNAPSHOT has no `{key} = …` line")))
}

fn copy_tree(from: &Path, to: &Path) -> Result {
    let entries = fs::read_dir(from).map_err(|e| Failure(format!("{}: {e}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| Failure(format!("{}: {e}", from.display())))?;
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| Failure(format!("{}: {e}", entry.path().display())))?;
        if kind.is_dir() {
            fs::create_dir_all(&target)
                .map_err(|e| Failure(format!("{}: {e}", target.display())))?;
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)
                .map_err(|e| Failure(format!("{}: {e}", target.display())))?;
        }
    }
    Ok(())
}

pub(crate) fn deny_step(ctx: &Ctx) -> Result {
    ensure_cargo_deny()?;
    let db = prepare_db(ctx)?;
    println!(
        "advisory database: the snapshot in deny/advisory-db/, opened at {}",
        db.display()
    );
    let config = ctx.root.join("deny.toml");
    for manifest in ["Cargo.toml", "fuzz/Cargo.toml"] {
        println!("\ncargo deny: {manifest}");
        // `--frozen` keeps cargo deny off the network (the advisory snapshot), and so
        // cargo metadata too: every crate of the lock, for every platform, must already be
        // downloaded. A fresh machine has only what its builds needed.
        status(
            ctx.cargo()
                .args(["fetch", "--locked", "--manifest-path"])
                .arg(ctx.root.join(manifest)),
        )?;
        status(
            ctx.cargo()
                .args(["deny", "--frozen", "--manifest-path"])
                .arg(ctx.root.join(manifest))
                .arg("--config")
                .arg(&config)
                .args(["check", "--show-stats", "--hide-inclusion-graph"]),
        )?;
    }
    check_db_is_read(ctx)
}

/// The advisories the policy accepts, which the database must still report when the
/// policy's `ignore` list is emptied: proof that the snapshot was opened and matched
/// against the lock file, not silently empty.
const ACCEPTED_ADVISORIES: [&str; 2] = ["RUSTSEC-2024-0384", "RUSTSEC-2025-0057"];

fn check_db_is_read(ctx: &Ctx) -> Result {
    let policy = fs::read_to_string(ctx.root.join("deny.toml"))
        .map_err(|e| Failure(format!("deny.toml: {e}")))?;
    let start = policy
        .find("\nignore = [")
        .ok_or_else(|| Failure("deny.toml: no `ignore = [` list under [advisories]".into()))?;
    let end = policy[start..]
        .find("\n]")
        .map(|i| start + i + 2)
        .ok_or_else(|| Failure("deny.toml: the `ignore` list is not closed".into()))?;
    let db_path = ctx.root.join(DB_PATH);
    let stripped = format!("{}\nignore = []{}", &policy[..start], &policy[end..]).replace(
        &format!("db-path = \"{DB_PATH}\""),
        &format!("db-path = {:?}", db_path.display().to_string()),
    );
    let config = ctx.target_dir().join("deny-without-ignores.toml");
    fs::write(&config, stripped).map_err(|e| Failure(format!("{}: {e}", config.display())))?;
    println!("\ncargo deny without the accepted advisories (must fail, naming them)");
    let out = ctx
        .cargo()
        .args(["deny", "--frozen", "--config"])
        .arg(&config)
        .args(["check", "advisories"])
        .output()
        .map_err(|e| Failure(format!("cannot run cargo deny: {e}")))?;
    let said = String::from_utf8_lossy(&out.stderr);
    let missing: Vec<&str> = ACCEPTED_ADVISORIES
        .into_iter()
        .filter(|id| !said.contains(id))
        .collect();
    if out.status.success() || !missing.is_empty() {
        return fail(format!(
            "the advisory snapshot does not report what deny.toml accepts (missing: {missing:?}); \
             is deny/advisory-db/ complete?\n{said}"
        ));
    }
    println!("it failed on {ACCEPTED_ADVISORIES:?}, as it must: the snapshot is read");
    Ok(())
}

/// `cargo xtask deny-update --from DIR`: rebuilds the snapshot from a clone of
/// github.com/rustsec/advisory-db at DIR, and records its commit and date.
///
/// What is kept is the facts cargo-deny matches on, for the crates named in either lock
/// file: each advisory's TOML front matter (id, package, date, kind, affected and patched
/// versions, references), under a title of ours naming the id. The advisories' prose is
/// left in the database it belongs to (each entry links to it); a crate that enters a lock
/// file is covered from the next refresh on, which is why dependency changes come with one.
pub(crate) fn deny_update(ctx: &Ctx, clone: &Path) -> Result {
    let head =
        probe(
            Command::new("git")
                .arg("-C")
                .arg(clone)
                .args(["log", "-1", "--format=%H %cI"]),
        )
        .ok_or_else(|| Failure(format!("{}: not a git clone", clone.display())))?;
    let (commit, date) = head
        .trim()
        .split_once(' ')
        .ok_or_else(|| Failure(format!("unexpected `git log` output: {head:?}")))?;
    let mut crates = std::collections::BTreeSet::new();
    for lock in ["Cargo.lock", "fuzz/Cargo.lock"] {
        let text =
            fs::read_to_string(ctx.root.join(lock)).map_err(|e| Failure(format!("{lock}: {e}")))?;
        crates.extend(text.lines().filter_map(|l| {
            l.strip_prefix("name = \"")
                .and_then(|rest| rest.strip_suffix('"'))
                .map(str::to_owned)
        }));
    }
    let snapshot = ctx.root.join("deny/advisory-db");
    let _ = fs::remove_dir_all(&snapshot);
    let mut kept = 0;
    for name in &crates {
        let Ok(entries) = fs::read_dir(clone.join("crates").join(name)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_suffix(".md"))
            else {
                continue;
            };
            let text = fs::read_to_string(&path)
                .map_err(|e| Failure(format!("{}: {e}", path.display())))?;
            let front = text
                .strip_prefix("```toml\n")
                .and_then(|rest| rest.split_once("\n```").map(|(toml, _)| toml))
                .ok_or_else(|| Failure(format!("{}: no TOML front matter", path.display())))?;
            let dir = snapshot.join("crates").join(name);
            fs::create_dir_all(&dir).map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
            let kept_text = format!(
                "```toml\n{front}\n```\n\n# {id} ({name})\n\n\
                 See https://rustsec.org/advisories/{id} for the advisory itself.\n"
            );
            fs::write(dir.join(format!("{id}.md")), kept_text)
                .map_err(|e| Failure(format!("{id}: {e}")))?;
            kept += 1;
        }
    }
    let stamp = format!(
        "# The facts of the RustSec advisory database that deny/advisory-db/ keeps, for the\n\
         # crates of Cargo.lock and fuzz/Cargo.lock (cargo xtask deny-update).\n\
         source = https://github.com/rustsec/advisory-db\ncommit = {commit}\ndate = {date}\n\
         advisories = {kept}\n"
    );
    fs::write(ctx.root.join("deny/SNAPSHOT"), stamp)
        .map_err(|e| Failure(format!("deny/SNAPSHOT: {e}")))?;
    println!(
        "deny/advisory-db/: {kept} advisories for {} crates, from {commit} ({date})",
        crates.len()
    );
    Ok(())
}
