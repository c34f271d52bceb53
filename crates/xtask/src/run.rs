//! The run task: release builds, the local organisation and invite, `coffre-server serve`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(crate) fn release_cli(ctx: &Ctx) -> PathBuf {
    ctx.target_dir().join("release").join("coffre")
}

pub(crate) fn build_release_cli(ctx: &Ctx) -> Result {
    cargo_step(ctx, &["build", "--release", "-p", "coffre-cli", "--locked"])
}

pub(crate) fn explain_cli(ctx: &Ctx) -> Result {
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
pub(crate) fn launch_server(ctx: &Ctx, listen: &str, data: &str) -> Result {
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
pub(crate) fn local_invite(ctx: &Ctx, server: &Path, data: &str) -> Result<String> {
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
