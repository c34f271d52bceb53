//! `coffre-server`: Coffre's HTTP server and its administration commands.
//!
//! Run `coffre-server serve` (defaults: `--listen 127.0.0.1:8080 --data ./data
//! --server-key ./coffre-server.key --records sled --payloads files`),
//! `coffre-server migrate --records postgres://…`, `coffre-server audit --data DIR [--json]`,
//! `coffre-server org create NAME`, `coffre-server invite create --org ID`.
//! Every flag can also come from its `COFFRE_*` environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use coffre_server::admin_socket::{self, Request, Response};
use coffre_server::backends::{self, Opened, PayloadsSpec, RecordsSpec};
use coffre_server::client::TrustedProxies;
use coffre_server::store::postgres;
use coffre_server::{admin, audit, keyfile, statics::StaticDirs, AppState, Clock, Limits};

#[derive(Parser)]
#[command(
    name = "coffre-server",
    version,
    about = "Coffre: zero-knowledge document vault server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct DataDir {
    /// The data directory of the embedded backends (created on first run).
    #[arg(long, env = "COFFRE_DATA", default_value = "./data")]
    data: PathBuf,
    /// sled page cache size, in MiB.
    #[arg(long, env = "COFFRE_CACHE_MIB", default_value_t = 32)]
    cache_mib: u64,
    /// Where records live: `sled` (in the data directory) or a `postgres://` URL.
    #[arg(long, env = "COFFRE_RECORDS", default_value = "sled")]
    records: String,
    /// Where payloads live: `files` (in the data directory) or
    /// `s3://bucket[/prefix]?endpoint=…&region=…` (keys in COFFRE_S3_ACCESS_KEY and
    /// COFFRE_S3_SECRET_KEY).
    #[arg(long, env = "COFFRE_PAYLOADS", default_value = "files")]
    payloads: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the API, the web app and the package.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "COFFRE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        data: DataDir,
        /// The OPAQUE server key file, outside the data directory (created on first run).
        #[arg(long, env = "COFFRE_SERVER_KEY", default_value = "./coffre-server.key")]
        server_key: PathBuf,
        /// The web app directory, served at `/`.
        #[arg(long, env = "COFFRE_WEB")]
        web: Option<PathBuf>,
        /// The npm package directory, served at `/pkg/` (only the files its
        /// package.json ships).
        #[arg(long, env = "COFFRE_PKG")]
        pkg: Option<PathBuf>,
        /// Reverse proxies (addresses or CIDR ranges, e.g. `127.0.0.1/32`) whose
        /// `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Proto` headers name the client;
        /// from any other peer those headers are ignored. Repeatable, or comma-separated.
        #[arg(
            long = "trusted-proxy",
            env = "COFFRE_TRUSTED_PROXY",
            value_name = "CIDR",
            num_args = 1..,
            value_delimiter = ',',
            value_parser = coffre_server::client::parse_range
        )]
        trusted_proxy: Vec<ipnet::IpNet>,
        /// Largest document a person may upload, in MiB of ciphertext (the web app shows
        /// it and refuses bigger files before encrypting them).
        #[arg(long, env = "COFFRE_MAX_DOCUMENT_MIB", default_value_t = 4096)]
        max_document_mib: u64,
    },
    /// Writes a consistent copy of the whole store, while the server runs (through its
    /// admin socket on the embedded store): into a new embedded data directory, or into a
    /// bucket (`s3://bucket/prefix?endpoint=…`, keys in COFFRE_S3_ACCESS_KEY and
    /// COFFRE_S3_SECRET_KEY).
    Backup {
        #[command(flatten)]
        data: DataDir,
        /// A new data directory (must not exist), or an s3:// URL (a prefix holding no
        /// backup yet).
        #[arg(long)]
        to: String,
    },
    /// Copies a backup (an embedded data directory or a bucket backup) into an empty
    /// store.
    Restore {
        /// The backup: its data directory, or its s3:// URL.
        #[arg(long)]
        from: String,
        /// The store to restore into (must be empty).
        #[command(flatten)]
        data: DataDir,
        /// The server key file, searched for by the audits.
        #[arg(long, env = "COFFRE_SERVER_KEY")]
        server_key: Option<PathBuf>,
    },
    /// Copies a whole store into an empty one (e.g. a stopped embedded store, or a backup
    /// of it, into PostgreSQL + S3), then audits both sides.
    Copy {
        /// The store to copy from.
        #[command(flatten)]
        from: DataDir,
        /// Records of the target: `sled` (in --to-data) or a `postgres://` URL (migrated).
        #[arg(long)]
        to_records: String,
        /// Payloads of the target: `files` (in --to-data) or an `s3://` URL.
        #[arg(long)]
        to_payloads: String,
        /// Data directory of an embedded target.
        #[arg(long, default_value = "./data-copy")]
        to_data: PathBuf,
        /// The server key file, searched for on both sides by the audits.
        #[arg(long, env = "COFFRE_SERVER_KEY")]
        server_key: Option<PathBuf>,
    },
    /// Applies the database migrations this build needs (PostgreSQL records).
    Migrate {
        #[command(flatten)]
        data: DataDir,
    },
    /// Checks that the store holds only what it should; non-zero exit on any violation.
    Audit {
        #[command(flatten)]
        data: DataDir,
        /// The server key file, to check that none of it is inside the store.
        #[arg(long, env = "COFFRE_SERVER_KEY")]
        server_key: Option<PathBuf>,
        /// Machine-readable output (JSON).
        #[arg(
            long,
            env = "COFFRE_AUDIT_JSON",
            value_parser = clap::builder::BoolishValueParser::new()
        )]
        json: bool,
    },
    /// Organisations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Worker invites.
    Invite {
        #[command(subcommand)]
        command: InviteCommand,
    },
    /// Accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Disables an account (a worker who left): no more logins, its sessions end, shares
    /// to it are revoked, and it no longer counts as a referent. Prints its id.
    Disable {
        /// The account's handle.
        #[arg(long)]
        handle: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Creates an organisation and prints its id.
    Create {
        /// Display name.
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Sets how long a recovery through referents waits after the last approval needed,
    /// for the people of this organisation: 0 to 1209600 seconds (14 days), or
    /// `default` (72 h). With a single referent, 72 h apply at least.
    RecoveryDelay {
        /// Organisation id.
        #[arg(long, env = "COFFRE_ORG")]
        org: String,
        /// Seconds, or `default`.
        seconds: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum InviteCommand {
    /// Creates a one-time worker invite code and prints it.
    Create {
        /// Organisation id.
        #[arg(long, env = "COFFRE_ORG")]
        org: String,
        #[command(flatten)]
        data: DataDir,
    },
}

/// Opens the backends `data` names; a failure says which one, in one line.
async fn open_store(data: &DataDir) -> anyhow::Result<Opened> {
    let records = RecordsSpec::parse(&data.records)?;
    let payloads = PayloadsSpec::parse(&data.payloads, |k| std::env::var(k).ok())?;
    if records == RecordsSpec::Sled || matches!(payloads, PayloadsSpec::Files) {
        std::fs::create_dir_all(&data.data)
            .with_context(|| format!("creating {}", data.data.display()))?;
    }
    Ok(backends::open(&records, &payloads, &data.data, data.cache_mib << 20).await?)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: a log file or journald gets text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coffre-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            listen,
            data,
            server_key,
            web,
            pkg,
            trusted_proxy,
            max_document_mib,
        } => {
            if let Some(pkg) = &pkg {
                // A package folder that cannot say what it ships would serve nothing.
                coffre_server::statics::ShippedFiles::read(pkg)?;
            }
            let proxies = TrustedProxies::new(trusted_proxy);
            runtime()?.block_on(serve(
                listen,
                data,
                &server_key,
                StaticDirs { web, pkg },
                proxies,
                Limits {
                    max_document_bytes: max_document_mib.saturating_mul(1 << 20),
                    ..Limits::default()
                },
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { data, to } => {
            let bucket = if to.starts_with("s3://") {
                match PayloadsSpec::parse(&to, |k| std::env::var(k).ok())? {
                    PayloadsSpec::S3(config) => Some(config),
                    PayloadsSpec::Files => None,
                }
            } else {
                None
            };
            let copied = runtime()?.block_on(async {
                let request = match &bucket {
                    Some(config) => Request::BackupToBucket {
                        config: config.clone(),
                    },
                    None => Request::Backup {
                        to: PathBuf::from(&to),
                    },
                };
                if let Some(answer) = ask_server(&data, request).await? {
                    return match answer {
                        Response::Backup(copied) => Ok(copied),
                        other => Err(unexpected(other)),
                    };
                }
                let opened = open_store(&data).await?;
                match &bucket {
                    Some(config) => backends::backup_to_bucket(
                        opened.records.as_ref(),
                        opened.payloads.as_ref(),
                        config,
                    )
                    .await
                    .context("backing up into the bucket"),
                    None => admin_socket::backup(
                        opened.records.as_ref(),
                        opened.payloads.as_ref(),
                        Path::new(&to),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}")),
                }
            })?;
            println!(
                "backed up {} records and {} payloads ({} bytes) into {}",
                copied.records,
                copied.payloads,
                copied.payload_bytes,
                to.split('?').next().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore {
            from,
            data,
            server_key,
        } => {
            if from.starts_with("s3://") {
                let PayloadsSpec::S3(config) =
                    PayloadsSpec::parse(&from, |k| std::env::var(k).ok())?
                else {
                    anyhow::bail!("--from: not an s3:// URL");
                };
                return restore_bucket(&config, &data, server_key.as_deref());
            }
            let from = PathBuf::from(from);
            if !from.is_dir() {
                anyhow::bail!("no backup at {}", from.display());
            }
            let source = DataDir {
                data: from,
                cache_mib: data.cache_mib,
                records: "sled".into(),
                payloads: "files".into(),
            };
            copy_and_audit(&source, &data, server_key.as_deref())
        }
        Command::Copy {
            from,
            to_records,
            to_payloads,
            to_data,
            server_key,
        } => {
            let to = DataDir {
                data: to_data,
                cache_mib: from.cache_mib,
                records: to_records,
                payloads: to_payloads,
            };
            copy_and_audit(&from, &to, server_key.as_deref())
        }
        Command::Migrate { data } => {
            let RecordsSpec::Postgres(url) = RecordsSpec::parse(&data.records)? else {
                println!("sled records need no migration");
                return Ok(ExitCode::SUCCESS);
            };
            let applied = runtime()?
                .block_on(postgres::migrate(&url))
                .with_context(|| format!("migrating {}", backends::redact(&url)))?;
            match applied.as_slice() {
                [] => println!("the database schema is up to date"),
                versions => println!("applied migrations {versions:?}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            data,
            server_key,
            json,
        } => {
            if data.records == "sled" && !data.data.is_dir() {
                anyhow::bail!("no data directory at {}", data.data.display());
            }
            let key = server_key.as_deref().map(keyfile::read_raw).transpose()?;
            let report = runtime()?.block_on(async {
                let opened = open_store(&data).await?;
                Ok::<_, anyhow::Error>(match (&opened.sled, &opened.files) {
                    // The embedded store is read tree by tree, indexes included.
                    (Some(records), Some(payloads)) => {
                        audit::audit(records, payloads, key.as_deref())
                    }
                    _ => {
                        audit::audit_store(
                            opened.records.as_ref(),
                            opened.payloads.as_ref(),
                            key.as_deref(),
                        )
                        .await?
                    }
                })
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", audit::render_text(&report));
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Org {
            command: OrgCommand::Create { name, data },
        } => {
            let id = runtime()?.block_on(async {
                if let Some(answer) =
                    ask_server(&data, Request::OrgCreate { name: name.clone() }).await?
                {
                    return match answer {
                        Response::Org { id } => Ok(id),
                        other => Err(unexpected(other)),
                    };
                }
                let opened = open_store(&data).await?;
                admin::create_org(opened.records.as_ref(), &name, Clock::System.now())
                    .await
                    .map(|org| org.id)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Org {
            command: OrgCommand::RecoveryDelay { org, seconds, data },
        } => {
            let org = org.parse().context("--org is not an organisation id")?;
            let seconds = match seconds.as_str() {
                "default" => None,
                s => Some(
                    s.parse::<u64>()
                        .context("the delay is a number of seconds")?,
                ),
            };
            runtime()?.block_on(async {
                if let Some(answer) =
                    ask_server(&data, Request::OrgRecoveryDelay { org, seconds }).await?
                {
                    return match answer {
                        Response::Org { .. } => Ok(()),
                        other => Err(unexpected(other)),
                    };
                }
                let opened = open_store(&data).await?;
                admin::set_recovery_delay(opened.records.as_ref(), org, seconds)
                    .await
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            println!("{org}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Account {
            command: AccountCommand::Disable { handle, data },
        } => {
            let id = runtime()?.block_on(async {
                let request = Request::AccountDisable {
                    handle: handle.clone(),
                };
                if let Some(answer) = ask_server(&data, request).await? {
                    return match answer {
                        Response::Account { id } => Ok(id),
                        other => Err(unexpected(other)),
                    };
                }
                let opened = open_store(&data).await?;
                admin::disable_account(opened.records.as_ref(), &handle, Clock::System.now())
                    .await
                    .map(|a| a.id)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Invite {
            command: InviteCommand::Create { org, data },
        } => {
            let org = org.parse().context("--org is not an organisation id")?;
            let code = runtime()?.block_on(async {
                if let Some(answer) = ask_server(&data, Request::InviteCreate { org }).await? {
                    return match answer {
                        Response::Invite { code } => Ok(code),
                        other => Err(unexpected(other)),
                    };
                }
                let opened = open_store(&data).await?;
                admin::create_invite(opened.records.as_ref(), org, Clock::System.now())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            println!("{code}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Copies the store `from` names into the empty store `to` names, then audits both.
fn copy_and_audit(
    from: &DataDir,
    to: &DataDir,
    server_key: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let key = server_key.map(keyfile::read_raw).transpose()?;
    runtime()?.block_on(async {
        let source = open_store(from).await?;
        let target = open_store(to).await?;
        let copied = backends::copy(
            (source.records.as_ref(), source.payloads.as_ref()),
            (target.records.as_ref(), target.payloads.as_ref()),
        )
        .await
        .context("copying")?;
        println!(
            "copied {} records and {} payloads ({} bytes)",
            copied.records, copied.payloads, copied.payload_bytes
        );
        let mut passed = true;
        for (side, opened) in [("source", &source), ("target", &target)] {
            let report = audit::audit_store(
                opened.records.as_ref(),
                opened.payloads.as_ref(),
                key.as_deref(),
            )
            .await?;
            println!(
                "audit of the {side}: {} violations, {} committed documents",
                report.violations.len(),
                report.committed_documents
            );
            for v in &report.violations {
                println!("  violation: {v}");
            }
            passed &= report.passed();
        }
        target.records.close().await?;
        Ok::<_, anyhow::Error>(if passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Restores a bucket backup into the empty store `to` names, then audits it.
fn restore_bucket(
    config: &coffre_server::store::S3Config,
    to: &DataDir,
    server_key: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let key = server_key.map(keyfile::read_raw).transpose()?;
    runtime()?.block_on(async {
        let target = open_store(to).await?;
        let copied = backends::restore_from_bucket(
            config,
            target.records.as_ref(),
            target.payloads.as_ref(),
        )
        .await
        .context("restoring from the bucket")?;
        println!(
            "restored {} records and {} payloads ({} bytes)",
            copied.records, copied.payloads, copied.payload_bytes
        );
        let report = audit::audit_store(
            target.records.as_ref(),
            target.payloads.as_ref(),
            key.as_deref(),
        )
        .await?;
        println!(
            "audit of the restored store: {} violations, {} committed documents",
            report.violations.len(),
            report.committed_documents
        );
        for v in &report.violations {
            println!("  violation: {v}");
        }
        target.records.close().await?;
        Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Sends an admin request to the server running on the embedded store in `data`, if one
/// runs there; `None` means the caller opens the store itself.
async fn ask_server(data: &DataDir, request: Request) -> anyhow::Result<Option<Response>> {
    if data.records != "sled" {
        return Ok(None);
    }
    let answer = admin_socket::call(&data.data, &request)
        .await
        .with_context(|| format!("asking the server running on {}", data.data.display()))?;
    match answer {
        Some(Response::Error { message }) => anyhow::bail!("{message}"),
        other => Ok(other),
    }
}

fn unexpected(answer: Response) -> anyhow::Error {
    anyhow::anyhow!("unexpected answer from the server: {answer:?}")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn serve(
    listen: SocketAddr,
    data: DataDir,
    key: &Path,
    statics: StaticDirs,
    proxies: TrustedProxies,
    limits: Limits,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data.data)
        .with_context(|| format!("creating {}", data.data.display()))?;
    let (setup, created) = keyfile::load_or_create(key, &data.data)?;
    if created {
        tracing::warn!(path = %key.display(), "created a new OPAQUE server key file; keep it apart from backups of the data directory");
    }
    let opened = open_store(&data).await?;
    let embedded = opened.sled.is_some();
    let mut state = AppState::new(opened.records, opened.payloads, setup, limits);
    state.statics = statics;
    if proxies.is_empty() {
        tracing::info!("no trusted proxy: forwarding headers are ignored, clients are TCP peers");
    } else {
        tracing::info!(
            ?proxies,
            "forwarding headers are believed from these peers only"
        );
    }
    state.proxies = std::sync::Arc::new(proxies);
    // sled locks the store: admin commands reach this process through a socket instead.
    let admin = if embedded {
        Some(
            admin_socket::listen(&data.data, state.clone())
                .with_context(|| format!("admin socket in {}", data.data.display()))?,
        )
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    // Tests and scripts read this line to find the port.
    println!("listening on http://{addr}");
    tracing::info!(
        %addr,
        records = %backends::redact(&data.records),
        payloads = %data.payloads.split('?').next().unwrap_or_default(),
        "serving"
    );
    coffre_server::serve(listener, state, shutdown).await?;
    if let Some(admin) = admin {
        admin.abort();
        let _ = std::fs::remove_file(admin_socket::socket_path(&data.data));
    }
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers now (before the URL is announced, so that a
/// signal sent right after start is not lost) and returns the future that completes on
/// the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
    }
}
