//! The local admin socket of a server on the embedded store.
//!
//! sled locks its directory, so while `coffre-server serve` runs on it no other process
//! can open the store: the admin commands (`org create`, `invite create`, `backup`) talk
//! to the running server instead, through a Unix socket in the data directory
//! (`admin.sock`, mode 0600: whoever may read the data directory may administer it, and
//! nobody else). One request per connection, one JSON line each way. On the other
//! backends the commands open the shared store themselves and need no socket.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::backends::{self, Copied};
use crate::store::{self, Id, Payloads, Records};
use crate::{admin, AppState};

/// File name of the socket inside the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// Longest request line accepted.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// What an admin command asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Creates an organisation.
    OrgCreate {
        /// Display name.
        name: String,
    },
    /// Sets an organisation's recovery delay.
    OrgRecoveryDelay {
        /// The organisation.
        org: Id,
        /// Seconds, or `None` for the default.
        seconds: Option<u64>,
    },
    /// Disables an account.
    AccountDisable {
        /// Its handle.
        handle: String,
    },
    /// Creates a one-use worker invite.
    InviteCreate {
        /// The organisation.
        org: Id,
    },
    /// Writes a consistent copy of the whole store into `to`, a new directory.
    Backup {
        /// Where (must not exist yet).
        to: PathBuf,
    },
    /// Writes a consistent copy of the whole store into a bucket (see
    /// [`backends::backup_to_bucket`]); the keys travel over this 0600 socket only.
    BackupToBucket {
        /// The bucket, prefix and credentials.
        config: store::S3Config,
    },
}

/// The answer.
#[derive(Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Response {
    /// The new organisation's id.
    Org {
        /// Its id.
        id: Id,
    },
    /// The account acted on.
    Account {
        /// Its id.
        id: Id,
    },
    /// The invite code to hand over (only its hash is stored).
    Invite {
        /// The code.
        code: String,
    },
    /// What the backup holds.
    Backup(Copied),
    /// What went wrong.
    Error {
        /// One line, no secrets.
        message: String,
    },
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Org { id } => write!(f, "Org({id})"),
            Self::Account { id } => write!(f, "Account({id})"),
            Self::Invite { .. } => f.write_str("Invite(..)"),
            Self::Backup(c) => write!(f, "Backup({c:?})"),
            Self::Error { message } => write!(f, "Error({message})"),
        }
    }
}

/// The socket path of a data directory.
pub fn socket_path(data: &Path) -> PathBuf {
    data.join(SOCKET_NAME)
}

/// Binds the socket (replacing a stale one left by a killed server) and serves requests
/// until the task is aborted.
pub fn listen(data: &Path, state: AppState) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let path = socket_path(data);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &state).await {
                    tracing::warn!(error = %e, "admin socket request failed");
                }
            });
        }
    }))
}

async fn answer(stream: UnixStream, state: &AppState) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE_BYTES as u64));
    reader.read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => run(request, state).await,
        Err(e) => Response::Error {
            message: format!("not an admin request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// Carries out one request on the running server's store.
pub async fn run(request: Request, state: &AppState) -> Response {
    let error = |message: String| Response::Error { message };
    match request {
        Request::OrgCreate { name } => {
            match admin::create_org(state.records.as_ref(), &name, state.now()).await {
                Ok(org) => {
                    tracing::info!(org = %org.id, "organisation created (admin socket)");
                    Response::Org { id: org.id }
                }
                Err(e) => error(e.to_string()),
            }
        }
        Request::OrgRecoveryDelay { org, seconds } => {
            match admin::set_recovery_delay(state.records.as_ref(), org, seconds).await {
                Ok(org) => {
                    tracing::info!(org = %org.id, ?seconds, "recovery delay set (admin socket)");
                    Response::Org { id: org.id }
                }
                Err(e) => error(e.to_string()),
            }
        }
        Request::AccountDisable { handle } => {
            match admin::disable_account(state.records.as_ref(), &handle, state.now()).await {
                Ok(account) => {
                    tracing::info!(account = %account.id, "account disabled (admin socket)");
                    Response::Account { id: account.id }
                }
                Err(e) => error(e.to_string()),
            }
        }
        Request::InviteCreate { org } => {
            match admin::create_invite(state.records.as_ref(), org, state.now()).await {
                Ok(code) => {
                    tracing::info!(%org, "worker invite created (admin socket)");
                    Response::Invite { code }
                }
                Err(e) => error(e.to_string()),
            }
        }
        Request::BackupToBucket { config } => {
            match backends::backup_to_bucket(
                state.records.as_ref(),
                state.payloads.as_ref(),
                &config,
            )
            .await
            {
                Ok(copied) => {
                    tracing::info!(bucket = %config.bucket, ?copied, "backup written to a bucket (admin socket)");
                    Response::Backup(copied)
                }
                Err(e) => error(format!(
                    "backing up into s3://{}/{}: {e}",
                    config.bucket, config.prefix
                )),
            }
        }
        Request::Backup { to } => {
            match backup(state.records.as_ref(), state.payloads.as_ref(), &to).await {
                Ok(copied) => {
                    tracing::info!(to = %to.display(), ?copied, "backup written (admin socket)");
                    Response::Backup(copied)
                }
                Err(e) => error(e),
            }
        }
    }
}

/// Copies a store into a new embedded store at `to` (see [`backends::copy`]): a data
/// directory that `audit --data`, `serve --data` and `restore --from` read as any. The
/// records are one snapshot; payload bytes, which never change once acknowledged, are
/// copied up to the lengths that snapshot records.
pub async fn backup(
    records: &dyn Records,
    payloads: &dyn Payloads,
    to: &Path,
) -> Result<Copied, String> {
    if to.exists() {
        return Err(format!(
            "{} exists already: back up into a new directory",
            to.display()
        ));
    }
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let target =
        store::open_embedded(to, 8 << 20).map_err(|e| format!("opening {}: {e}", to.display()))?;
    let (target_records, target_payloads) = (records_of(&target), payloads_of(&target));
    let copied = backends::copy((records, payloads), (target_records, target_payloads))
        .await
        .map_err(|e| format!("copying into {}: {e}", to.display()))?;
    target.0.close().await.map_err(|e| e.to_string())?;
    Ok(copied)
}

fn records_of(target: &(store::SledRecords, store::FilePayloads)) -> &dyn Records {
    &target.0
}

fn payloads_of(target: &(store::SledRecords, store::FilePayloads)) -> &dyn Payloads {
    &target.1
}

/// Sends one request to the server running on `data`; `None` if no server listens there.
pub async fn call(data: &Path, request: &Request) -> std::io::Result<Option<Response>> {
    let path = socket_path(data);
    let stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        // No socket, or a stale one: no server runs there.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.shutdown().await?;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await?;
    serde_json::from_str(&answer)
        .map(Some)
        .map_err(std::io::Error::other)
}
