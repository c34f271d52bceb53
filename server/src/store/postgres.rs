//! The PostgreSQL [`Records`] backend, for deployments with several `coffre-server`
//! processes: any request can go to any process, and the database decides.
//!
//! Each atomic rule of the trait is one statement or one transaction: conditional
//! `UPDATE … RETURNING` for counters and offsets (the row lock serialises concurrent
//! callers, and the condition is evaluated on the locked row), `DELETE … RETURNING` for
//! one-use things (invites, pending logins), `INSERT … ON CONFLICT` for leases and rate
//! windows, and a transaction with the owner's row locked (`FOR UPDATE`) for the quota.
//! A recovery request changes in a transaction that locks its row and applies the rule
//! every backend shares ([`RecoveryRequest::apply`]); its creation takes an advisory lock
//! per handle for the one-open-request rule, which depends on the time.
//! Foreign keys with `ON DELETE CASCADE` make a share, link or lease that outlives its
//! document impossible. A statement that returns has committed: every method is durable
//! on return (the database's `synchronous_commit` decides how durable; keep it `on`).
//!
//! The schema is versioned in `server/migrations/`; [`migrate`] applies what is missing
//! (`coffre-server migrate`), and [`PgRecords::connect`] refuses a database that is not
//! at the version this build expects.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::attempts::{DEVICE_TTL_SECONDS, MAX_DEVICES_PER_ACCOUNT};
use super::{
    Account, AttemptPolicy, Attempts, Budget, CredentialChange, Device, Digest, Document,
    EnvelopeRecord, Export, Id, Invite, Link, LinkGrant, LinkOpen, Org, PendingLogin, Records,
    RecoveryDeal, RecoveryFinish, RecoveryRequest, RequestChange, RequestState, Role, Session,
    StoreError, StoreResult, Sweep, Throttled, LINK_GRANT_SECONDS, MAX_PENDING_LOGINS,
};

/// The schema versions, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "records",
        include_str!("../../migrations/0001_records.sql"),
    ),
    (
        2,
        "recovery",
        include_str!("../../migrations/0002_recovery.sql"),
    ),
    (
        3,
        "disabled accounts",
        include_str!("../../migrations/0003_disabled_accounts.sql"),
    ),
    (
        4,
        "login budgets",
        include_str!("../../migrations/0004_login_budgets.sql"),
    ),
    (
        5,
        "link grants",
        include_str!("../../migrations/0005_links.sql"),
    ),
    (
        6,
        "sessions list",
        include_str!("../../migrations/0006_sessions.sql"),
    ),
];

/// Key of the advisory lock that serialises concurrent `migrate` runs.
const MIGRATION_LOCK: i64 = 0x636f_6666_7265_0001;

/// First half of the advisory locks that serialise the creation of recovery requests for
/// one handle (the second half comes from the handle's digest). Two-key advisory locks
/// never clash with one-key ones such as [`MIGRATION_LOCK`].
const RECOVERY_HANDLE_LOCK: i32 = 0x636f_0002;

/// Connections the pool opens at most.
const POOL_SIZE: usize = 16;
/// The session settings of every connection (see [`pool`]).
const SESSION_OPTIONS: &str = "-c lock_timeout=15s -c idle_in_transaction_session_timeout=60s";

/// How long a request waits for a connection, or for one to be made, before the store
/// counts as unavailable (503 with `Retry-After`).
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Records in a PostgreSQL database.
pub struct PgRecords {
    pool: Pool,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A database error: lost connections and refusals to connect are `Unavailable` (the
/// client retries), everything else is a backend failure.
fn db(e: tokio_postgres::Error) -> StoreError {
    let unavailable = e.is_closed()
        || e.code().is_some_and(|c| {
            c.code().starts_with("08") // connection exception
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                // lock_timeout, idle_in_transaction_session_timeout (see `pool`)
                || *c == SqlState::LOCK_NOT_AVAILABLE
                || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
        })
        || e.code().is_none() && std::error::Error::source(&e).is_some();
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => db(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The constraint a unique violation broke, if it is one.
fn unique_violation(e: &tokio_postgres::Error) -> Option<String> {
    let db_error = e.as_db_error()?;
    (*db_error.code() == SqlState::UNIQUE_VIOLATION)
        .then(|| db_error.constraint().unwrap_or_default().to_owned())
}

fn foreign_key_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

fn i64_of(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| backend(format!("{v} does not fit a bigint")))
}

fn u64_of(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| backend(format!("negative value {v} in the database")))
}

fn opt_i64(v: Option<u64>) -> StoreResult<Option<i64>> {
    v.map(i64_of).transpose()
}

fn opt_u64(v: Option<i64>) -> StoreResult<Option<u64>> {
    v.map(u64_of).transpose()
}

fn id_of(bytes: &[u8]) -> StoreResult<Id> {
    Id::from_slice(bytes).ok_or_else(|| backend("an id column does not hold 16 bytes"))
}

fn opt_id(bytes: Option<Vec<u8>>) -> StoreResult<Option<Id>> {
    bytes.as_deref().map(id_of).transpose()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Worker => "worker",
        Role::Beneficiary => "beneficiary",
    }
}

fn role_of(name: &str) -> StoreResult<Role> {
    match name {
        "worker" => Ok(Role::Worker),
        "beneficiary" => Ok(Role::Beneficiary),
        other => Err(backend(format!("unknown role {other:?}"))),
    }
}

const ACCOUNT_COLUMNS: &str = "id, handle, role, org, public_key, password_file, ksf_version, \
     bundle, recovery_bundle, recovery_verifier, created_by, consent_at, created_at, \
     credential_epoch, disabled_at";

fn account_of(row: &Row) -> StoreResult<Account> {
    let id: Vec<u8> = row.try_get("id").map_err(db)?;
    let role: String = row.try_get("role").map_err(db)?;
    let ksf: i32 = row.try_get("ksf_version").map_err(db)?;
    Ok(Account {
        id: id_of(&id)?,
        handle: row.try_get("handle").map_err(db)?,
        role: role_of(&role)?,
        org: opt_id(row.try_get("org").map_err(db)?)?,
        public_key: row.try_get("public_key").map_err(db)?,
        password_file: row.try_get("password_file").map_err(db)?,
        ksf_version: u16::try_from(ksf).map_err(backend)?,
        bundle: row.try_get("bundle").map_err(db)?,
        recovery_bundle: row.try_get("recovery_bundle").map_err(db)?,
        recovery_verifier: row.try_get("recovery_verifier").map_err(db)?,
        created_by: opt_id(row.try_get("created_by").map_err(db)?)?,
        consent_at: opt_u64(row.try_get("consent_at").map_err(db)?)?,
        created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
        credential_epoch: u64_of(row.try_get("credential_epoch").map_err(db)?)?,
        disabled_at: opt_u64(row.try_get("disabled_at").map_err(db)?)?,
    })
}

const DOCUMENT_COLUMNS: &str =
    "id, owner, metadata, size, stored, committed, created_at, committed_at";

fn document_of(row: &Row) -> StoreResult<Document> {
    let id: Vec<u8> = row.try_get("id").map_err(db)?;
    let owner: Vec<u8> = row.try_get("owner").map_err(db)?;
    Ok(Document {
        id: id_of(&id)?,
        owner: id_of(&owner)?,
        metadata: row.try_get("metadata").map_err(db)?,
        size: u64_of(row.try_get("size").map_err(db)?)?,
        stored: u64_of(row.try_get("stored").map_err(db)?)?,
        committed: row.try_get("committed").map_err(db)?,
        created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
        committed_at: opt_u64(row.try_get("committed_at").map_err(db)?)?,
    })
}

fn session_of(row: &Row) -> StoreResult<Session> {
    let account: Vec<u8> = row.try_get("account").map_err(db)?;
    Ok(Session {
        account: id_of(&account)?,
        created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
        expires_at: u64_of(row.try_get("expires_at").map_err(db)?)?,
        credential_epoch: u64_of(row.try_get("credential_epoch").map_err(db)?)?,
        last_used_at: u64_of(row.try_get("last_used_at").map_err(db)?)?,
        device: row.try_get("device").map_err(db)?,
        shared: row.try_get("shared").map_err(db)?,
    })
}

/// The columns [`session_of`] reads.
const SESSION_COLUMNS: &str =
    "account, created_at, expires_at, credential_epoch, last_used_at, device, shared";

fn envelope_of(row: &Row) -> StoreResult<EnvelopeRecord> {
    let granted_by: Vec<u8> = row.try_get("granted_by").map_err(db)?;
    Ok(EnvelopeRecord {
        envelope: row.try_get("envelope").map_err(db)?,
        granted_by: id_of(&granted_by)?,
        created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
        expires_at: opt_u64(row.try_get("expires_at").map_err(db)?)?,
    })
}

const LINK_COLUMNS: &str =
    "id, doc, envelope, created_at, expires_at, max_downloads, downloads, last_opened_at, grants";

/// Bytes of one remembered link grant in the `grants` column: the digest (32) and the
/// time it was counted (8, big-endian).
const LINK_GRANT_ROW_BYTES: usize = 32 + 8;

fn grants_bytes(grants: &[LinkGrant]) -> StoreResult<Vec<u8>> {
    let mut out = Vec::with_capacity(grants.len() * LINK_GRANT_ROW_BYTES);
    for g in grants {
        out.extend_from_slice(&g.grant.0);
        out.extend_from_slice(&i64_of(g.issued_at)?.to_be_bytes());
    }
    Ok(out)
}

fn grants_of(bytes: &[u8]) -> StoreResult<Vec<LinkGrant>> {
    if bytes.len() % LINK_GRANT_ROW_BYTES != 0 {
        return Err(StoreError::Backend(
            "links.grants is not whole grants".into(),
        ));
    }
    bytes
        .chunks_exact(LINK_GRANT_ROW_BYTES)
        .map(|row| {
            let (digest, at) = row.split_at(32);
            let mut d = [0u8; 32];
            d.copy_from_slice(digest);
            let mut be = [0u8; 8];
            be.copy_from_slice(at);
            Ok(LinkGrant {
                grant: Digest(d),
                issued_at: u64_of(i64::from_be_bytes(be))?,
            })
        })
        .collect()
}

fn link_of(row: &Row) -> StoreResult<Link> {
    let id: Vec<u8> = row.try_get("id").map_err(db)?;
    let doc: Vec<u8> = row.try_get("doc").map_err(db)?;
    let max: Option<i32> = row.try_get("max_downloads").map_err(db)?;
    let downloads: i32 = row.try_get("downloads").map_err(db)?;
    Ok(Link {
        id: id_of(&id)?,
        doc: id_of(&doc)?,
        envelope: row.try_get("envelope").map_err(db)?,
        created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
        expires_at: opt_u64(row.try_get("expires_at").map_err(db)?)?,
        max_downloads: max.map(u32::try_from).transpose().map_err(backend)?,
        downloads: u32::try_from(downloads).map_err(backend)?,
        last_opened_at: opt_u64(row.try_get("last_opened_at").map_err(db)?)?,
        grants: grants_of(&row.try_get::<_, Vec<u8>>("grants").map_err(db)?)?,
    })
}

fn i32_of(v: u32) -> StoreResult<i32> {
    i32::try_from(v).map_err(backend)
}

const ORG_COLUMNS: &str = "id, name, created_at, recovery_delay_seconds";

fn org_of(row: &Row) -> StoreResult<Org> {
    let id: Vec<u8> = row.try_get("id").map_err(db)?;
    Ok(Org {
        id: id_of(&id)?,
        name: row.try_get("name").map_err(db)?,
        created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
        recovery_delay_seconds: opt_u64(row.try_get("recovery_delay_seconds").map_err(db)?)?,
    })
}

/// A record kept whole as JSON (a recovery deal or request), from a `body::text AS body`
/// column: tokio-postgres reads `jsonb` only with a feature this build does not enable,
/// and text keeps the numbers exact.
fn body_of<T: serde::de::DeserializeOwned>(row: &Row) -> StoreResult<T> {
    let body: String = row.try_get("body").map_err(db)?;
    serde_json::from_str(&body).map_err(|e| backend(format!("a stored record does not parse: {e}")))
}

fn json_of<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(backend)
}

fn state_name(state: RequestState) -> &'static str {
    match state {
        RequestState::Open => "open",
        RequestState::Cancelled => "cancelled",
        RequestState::Refused => "refused",
        RequestState::Finished => "finished",
    }
}

/// A pool for `url` (`postgres://user:password@host:port/database`); connects once to
/// check the address and credentials, so that a wrong URL fails at start-up.
async fn pool(url: &str) -> StoreResult<Pool> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| backend(format!("not a PostgreSQL URL: {e}")))?;
    // No request waits for ever: a statement stuck behind a lock fails after
    // LOCK_TIMEOUT (the client sees 503 and retries), and a connection left idle inside a
    // transaction, which would hold its locks, is closed by the server.
    let options = [config.get_options().unwrap_or_default(), SESSION_OPTIONS].join(" ");
    config.options(options.trim());
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(POOL_WAIT))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(backend)?;
    drop(pool.get().await.map_err(pool_error)?);
    Ok(pool)
}

/// Creates the migrations table if needed and applies every migration not yet applied,
/// each in its own transaction, under an advisory lock (two `migrate` runs at once apply
/// each migration once). Returns the versions it applied.
pub async fn migrate(url: &str) -> StoreResult<Vec<i32>> {
    let pool = pool(url).await?;
    let mut client = pool.get().await.map_err(pool_error)?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS coffre_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(db)?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await.map_err(db)?;
        exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db)?;
        let done = opt(
            &tx,
            "SELECT 1 FROM coffre_migrations WHERE version = $1",
            &[version],
        )
        .await
        .map_err(db)?
        .is_some();
        if !done {
            tx.batch_execute(sql).await.map_err(db)?;
            exec(
                &tx,
                "INSERT INTO coffre_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(db)?;
            applied.push(*version);
        }
        tx.commit().await.map_err(db)?;
    }
    Ok(applied)
}

impl PgRecords {
    /// Connects to `url`; refuses a database whose schema is not at this build's version
    /// (run `coffre-server migrate`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = pool(url).await?;
        let client = pool.get().await.map_err(pool_error)?;
        let latest = MIGRATIONS.last().map_or(0, |m| m.0);
        let current: Option<i32> = opt(&client,
                "SELECT max(version) FROM coffre_migrations WHERE to_regclass('coffre_migrations') IS NOT NULL",
                &[],
            )
            .await
            .ok()
            .flatten()
            .and_then(|row| row.get(0));
        if current != Some(latest) {
            return Err(StoreError::Backend(format!(
                "the database schema is at version {}, this server needs {latest}: run `coffre-server migrate`",
                current.map_or_else(|| "none".to_owned(), |v| v.to_string())
            )));
        }
        drop(client);
        Ok(Self { pool })
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Stores (or, with `None`, removes) the account's deal and closes the account's open
    /// requests, made under the deal being replaced, in one transaction; whether a deal
    /// was there.
    async fn set_recovery_deal(
        &self,
        account: Id,
        deal: Option<&RecoveryDeal>,
        now: u64,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // Locks the account, then its open requests, then writes its deal: the order
        // `finish_recovery` takes them in. (No key update: concurrent inserts that only
        // reference the account, such as sessions or requests, do not wait.)
        if opt(
            &tx,
            "SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
            &[&account.0.as_slice()],
        )
        .await
        .map_err(db)?
        .is_none()
        {
            return Err(StoreError::NotFound);
        }
        // A request created after this select names the old deal: every later step checks
        // that it is still the current one, so that request can never move.
        let open = all(
            &tx,
            "SELECT body::text AS body FROM recovery_requests
             WHERE account = $1 AND state = 'open' AND expires_at > $2 FOR UPDATE",
            &[&account.0.as_slice(), &i64_of(now)?],
        )
        .await
        .map_err(db)?;
        for row in &open {
            let mut r: RecoveryRequest = body_of(row)?;
            r.replaced(now);
            update_request(&tx, &r).await?;
        }
        let had = match deal {
            Some(deal) => {
                write_deal(&tx, account, deal).await?;
                true
            }
            None => {
                exec(
                    &tx,
                    "DELETE FROM recovery_deals WHERE account = $1",
                    &[&account.0.as_slice()],
                )
                .await
                .map_err(db)?
                    > 0
            }
        };
        tx.commit().await.map_err(db)?;
        Ok(had)
    }

    /// Why a conditional update of a document changed nothing.
    async fn why_not(&self, id: Id, from: Option<(u64, u64)>) -> StoreError {
        let doc = match self.document(id).await {
            Ok(Some(doc)) => doc,
            Ok(None) => return StoreError::NotFound,
            Err(e) => return e,
        };
        if doc.committed {
            return StoreError::AlreadyCommitted;
        }
        match from {
            Some((from, to)) if doc.stored != from || to < from => {
                StoreError::OffsetMismatch { stored: doc.stored }
            }
            Some(_) => StoreError::BeyondDeclaredSize { size: doc.size },
            None => StoreError::Incomplete {
                stored: doc.stored,
                size: doc.size,
            },
        }
    }
}

#[async_trait]
impl Records for PgRecords {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let client = self.client().await?;
        insert_account(&client, account).await
    }

    async fn create_account_with_invite(
        &self,
        account: &Account,
        invite_hash: &[u8; 32],
        now: u64,
    ) -> StoreResult<Account> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // Consumed here, restored by the rollback if the account cannot be created.
        let Some(row) = opt(
            &tx,
            "DELETE FROM invites WHERE code_hash = $1 AND expires_at > $2 RETURNING org",
            &[&invite_hash.as_slice(), &i64_of(now)?],
        )
        .await
        .map_err(db)?
        else {
            return Err(StoreError::InviteInvalid);
        };
        let org: Vec<u8> = row.try_get(0).map_err(db)?;
        let mut account = account.clone();
        account.org = Some(id_of(&org)?);
        insert_account(&tx, &account).await?;
        tx.commit().await.map_err(db)?;
        Ok(account)
    }

    async fn account(&self, id: Id) -> StoreResult<Option<Account>> {
        let client = self.client().await?;
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        opt(&client, &sql, &[&id.0.as_slice()])
            .await
            .map_err(db)?
            .as_ref()
            .map(account_of)
            .transpose()
    }

    async fn account_by_handle(&self, handle: &str) -> StoreResult<Option<Account>> {
        let client = self.client().await?;
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE handle = $1");
        opt(&client, &sql, &[&handle])
            .await
            .map_err(db)?
            .as_ref()
            .map(account_of)
            .transpose()
    }

    async fn count_login_attempt(
        &self,
        key: &[u8; 32],
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        exec(
            &tx,
            "INSERT INTO login_budgets (key, failures, window_start, window_count, next_at, idle_at)
             VALUES ($1, 0, 0, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
            &[&key.as_slice()],
        )
        .await
        .map_err(db)?;
        let sql = format!("SELECT {BUDGET_COLUMNS} FROM login_budgets WHERE key = $1 FOR UPDATE");
        let row = one(&tx, &sql, &[&key.as_slice()]).await.map_err(db)?;
        let mut budget = attempts_of(&row)?;
        // Refused: nothing changes (the transaction rolls back as it is dropped).
        let left = budget.take(now, policy).map_err(throttled)?;
        write_budget(&tx, "login_budgets", key, &budget).await?;
        tx.commit().await.map_err(db)?;
        Ok(left)
    }

    async fn count_device_attempt(
        &self,
        device: &[u8; 32],
        account: Id,
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let sql = format!(
            "SELECT {BUDGET_COLUMNS} FROM devices WHERE key = $1 AND account = $2 FOR UPDATE"
        );
        let row = opt(&tx, &sql, &[&device.as_slice(), &account.0.as_slice()])
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        let mut budget = attempts_of(&row)?;
        let left = budget.take(now, policy).map_err(throttled)?;
        if budget.forget_device(policy) {
            exec(
                &tx,
                "DELETE FROM devices WHERE key = $1",
                &[&device.as_slice()],
            )
            .await
            .map_err(db)?;
        } else {
            write_budget(&tx, "devices", device, &budget).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(left)
    }

    async fn login_budget(&self, key: &[u8; 32]) -> StoreResult<Option<Attempts>> {
        let client = self.client().await?;
        let sql = format!("SELECT {BUDGET_COLUMNS} FROM login_budgets WHERE key = $1");
        opt(&client, &sql, &[&key.as_slice()])
            .await
            .map_err(db)?
            .as_ref()
            .map(attempts_of)
            .transpose()
    }

    async fn attempt_succeeded(
        &self,
        budget: &Budget,
        started_at: u64,
        now: u64,
    ) -> StoreResult<()> {
        let (table, key) = match budget {
            Budget::Handle(key) => ("login_budgets", &key.0),
            Budget::Device(key) => ("devices", &key.0),
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let sql = format!("SELECT {BUDGET_COLUMNS} FROM {table} WHERE key = $1 FOR UPDATE");
        let Some(row) = opt(&tx, &sql, &[&key.as_slice()]).await.map_err(db)? else {
            return Ok(()); // swept, reset or forgotten meanwhile
        };
        let mut attempts = attempts_of(&row)?;
        attempts.succeeded(started_at);
        write_budget(&tx, table, key, &attempts).await?;
        if matches!(budget, Budget::Device(_)) {
            exec(
                &tx,
                "UPDATE devices SET last_used_at = GREATEST(last_used_at, $2) WHERE key = $1",
                &[&key.as_slice(), &i64_of(now)?],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn reset_login_budget(&self, key: &[u8; 32]) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM login_budgets WHERE key = $1",
            &[&key.as_slice()],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn put_device(&self, device: &[u8; 32], record: &Device) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        insert_device(&tx, device, record).await?;
        // The newest uses stay, and the one just issued whatever the clocks say.
        let keep = i64::try_from(MAX_DEVICES_PER_ACCOUNT.saturating_sub(1)).map_err(backend)?;
        exec(
            &tx,
            "DELETE FROM devices WHERE key IN (
                 SELECT key FROM devices WHERE account = $1 AND key <> $2
                 ORDER BY last_used_at DESC, key OFFSET $3)",
            &[&record.account.0.as_slice(), &device.as_slice(), &keep],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn devices_of(&self, account: Id) -> StoreResult<Vec<(Digest, Device)>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT key, {DEVICE_COLUMNS} FROM devices WHERE account = $1
             ORDER BY last_used_at DESC, key"
        );
        all(&client, &sql, &[&account.0.as_slice()])
            .await
            .map_err(db)?
            .iter()
            .map(|row| Ok((digest_of(row, "key")?, device_of(row)?)))
            .collect()
    }

    async fn delete_devices_of(&self, account: Id) -> StoreResult<u64> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM devices WHERE account = $1",
            &[&account.0.as_slice()],
        )
        .await
        .map_err(db)
    }

    async fn login_succeeded(&self, id: Id, epoch: u64) -> StoreResult<Account> {
        let account = self.account(id).await?.ok_or(StoreError::NotFound)?;
        if account.credential_epoch != epoch {
            // The passphrase changed since this login started: it proved the old one. (A
            // change after this check is caught by the session's epoch.)
            return Err(StoreError::CredentialsChanged);
        }
        Ok(account)
    }

    async fn disable_account(&self, id: Id, now: u64) -> StoreResult<Account> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The account row locked first: a concurrent share (which locks it FOR SHARE)
        // either lands before and is deleted below, or waits and then sees it disabled.
        let sql = format!(
            "UPDATE accounts SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1
             RETURNING {ACCOUNT_COLUMNS}"
        );
        let row = opt(&tx, &sql, &[&id.0.as_slice(), &i64_of(now)?])
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        let account = account_of(&row)?;
        exec(
            &tx,
            "DELETE FROM sessions WHERE account = $1",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?;
        exec(
            &tx,
            "DELETE FROM envelopes e USING documents d
             WHERE e.recipient = $1 AND d.id = e.doc AND d.owner <> $1",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(account)
    }

    async fn replace_credentials(
        &self,
        id: Id,
        change: &CredentialChange,
        keep: Option<&[u8; 32]>,
    ) -> StoreResult<Account> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let sql = format!(
            "UPDATE accounts SET password_file = $2, bundle = $3, ksf_version = $4,
                 credential_epoch = credential_epoch + 1
             WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        );
        let row = opt(
            &tx,
            &sql,
            &[
                &id.0.as_slice(),
                &change.password_file,
                &change.bundle,
                &i32::from(change.ksf_version),
            ],
        )
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
        let account = account_of(&row)?;
        let keep: &[u8] = keep.map_or(&[], |k| k.as_slice());
        exec(
            &tx,
            "DELETE FROM sessions WHERE account = $1 AND token_hash <> $2",
            &[&id.0.as_slice(), &keep],
        )
        .await
        .map_err(db)?;
        exec(
            &tx,
            "UPDATE sessions SET credential_epoch = $3 WHERE account = $1 AND token_hash = $2",
            &[&id.0.as_slice(), &keep, &i64_of(account.credential_epoch)?],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(account)
    }

    async fn put_pending_login(&self, id: Id, login: &PendingLogin, now: u64) -> StoreResult<()> {
        let client = self.client().await?;
        let waiting: i64 = one(
            &client,
            "SELECT count(*) FROM pending_logins WHERE expires_at > $1",
            &[&i64_of(now)?],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        if u64_of(waiting)? >= MAX_PENDING_LOGINS {
            return Err(StoreError::TooManyPending);
        }
        let (account, epoch) = match login.account {
            Some((a, e)) => (Some(a.0.to_vec()), Some(i64_of(e)?)),
            None => (None, None),
        };
        let (Budget::Handle(budget_key) | Budget::Device(budget_key)) = login.budget;
        let budget_key = budget_key.0;
        exec(
            &client,
            "INSERT INTO pending_logins (id, sealed_state, account, epoch, expires_at,
                     budget_device, budget_key, started_at, remember_device)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &id.0.as_slice(),
                &login.sealed_state,
                &account,
                &epoch,
                &i64_of(login.expires_at)?,
                &matches!(login.budget, Budget::Device(_)),
                &budget_key.as_slice(),
                &i64_of(login.started_at)?,
                &login.remember_device,
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn take_pending_login(&self, id: Id, now: u64) -> StoreResult<Option<PendingLogin>> {
        let client = self.client().await?;
        let Some(row) = opt(
            &client,
            "DELETE FROM pending_logins WHERE id = $1
                 RETURNING sealed_state, account, epoch, expires_at,
                     budget_device, budget_key, started_at, remember_device",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let account: Option<Vec<u8>> = row.try_get("account").map_err(db)?;
        let epoch: Option<i64> = row.try_get("epoch").map_err(db)?;
        let budget_key = digest_of(&row, "budget_key")?;
        let budget = if row.try_get("budget_device").map_err(db)? {
            Budget::Device(budget_key)
        } else {
            Budget::Handle(budget_key)
        };
        let login = PendingLogin {
            budget,
            started_at: u64_of(row.try_get("started_at").map_err(db)?)?,
            remember_device: row.try_get("remember_device").map_err(db)?,
            sealed_state: row.try_get("sealed_state").map_err(db)?,
            account: match (account, epoch) {
                (Some(a), Some(e)) => Some((id_of(&a)?, u64_of(e)?)),
                _ => None,
            },
            expires_at: u64_of(row.try_get("expires_at").map_err(db)?)?,
        };
        Ok((login.expires_at > now).then_some(login))
    }

    async fn count_rate(&self, key: &str, now: u64, seconds: u64) -> StoreResult<u32> {
        let seconds = seconds.max(1);
        let start = now - now % seconds;
        let client = self.client().await?;
        let count: i32 = one(
            &client,
            "INSERT INTO rate_windows (key, start, seconds, count) VALUES ($1, $2, $3, 1)
                 ON CONFLICT (key) DO UPDATE SET
                   count = CASE WHEN rate_windows.start = EXCLUDED.start
                                 AND rate_windows.seconds = EXCLUDED.seconds
                            THEN rate_windows.count + 1 ELSE 1 END,
                   start = EXCLUDED.start, seconds = EXCLUDED.seconds
                 RETURNING count",
            &[&key, &i64_of(start)?, &i64_of(seconds)?],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        u32::try_from(count).map_err(backend)
    }

    async fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO sessions (token_hash, account, created_at, expires_at, credential_epoch,
                   last_used_at, device, shared)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (token_hash) DO UPDATE SET account = EXCLUDED.account,
                   created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
                   credential_epoch = EXCLUDED.credential_epoch,
                   last_used_at = EXCLUDED.last_used_at, device = EXCLUDED.device,
                   shared = EXCLUDED.shared",
            &[
                &token_hash.as_slice(),
                &session.account.0.as_slice(),
                &i64_of(session.created_at)?,
                &i64_of(session.expires_at)?,
                &i64_of(session.credential_epoch)?,
                &i64_of(session.last_used_at)?,
                &session.device,
                &session.shared,
            ],
        )
        .await
        .map_err(|e| {
            if foreign_key_violation(&e) {
                StoreError::NotFound
            } else {
                db(e)
            }
        })?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8; 32]) -> StoreResult<Option<Session>> {
        let client = self.client().await?;
        opt(
            &client,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"),
            &[&token_hash.as_slice()],
        )
        .await
        .map_err(db)?
        .as_ref()
        .map(session_of)
        .transpose()
    }

    async fn session_with_account(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(Session, Option<Account>)>> {
        let client = self.client().await?;
        let columns = ACCOUNT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT s.account, s.created_at AS s_created_at, s.expires_at, s.credential_epoch AS s_epoch,
                    s.last_used_at AS s_last_used_at, s.device AS s_device, s.shared AS s_shared,
                    {columns}
             FROM sessions s LEFT JOIN accounts a ON a.id = s.account WHERE s.token_hash = $1"
        );
        let Some(row) = opt(&client, &sql, &[&token_hash.as_slice()])
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let account: Vec<u8> = row.try_get("account").map_err(db)?;
        let session = Session {
            account: id_of(&account)?,
            created_at: u64_of(row.try_get("s_created_at").map_err(db)?)?,
            expires_at: u64_of(row.try_get("expires_at").map_err(db)?)?,
            credential_epoch: u64_of(row.try_get("s_epoch").map_err(db)?)?,
            last_used_at: u64_of(row.try_get("s_last_used_at").map_err(db)?)?,
            device: row.try_get("s_device").map_err(db)?,
            shared: row.try_get("s_shared").map_err(db)?,
        };
        let present: Option<Vec<u8>> = row.try_get("id").map_err(db)?;
        let account = match present {
            Some(_) => Some(account_of(&row)?),
            None => None,
        };
        Ok(Some((session, account)))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM sessions WHERE token_hash = $1",
            &[&token_hash.as_slice()],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn sessions_of_account(&self, account: Id) -> StoreResult<Vec<(Digest, Session)>> {
        let client = self.client().await?;
        all(
            &client,
            &format!(
                "SELECT token_hash, {SESSION_COLUMNS} FROM sessions WHERE account = $1
                 ORDER BY created_at, token_hash"
            ),
            &[&account.0.as_slice()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|row| Ok((digest_of(row, "token_hash")?, session_of(row)?)))
        .collect()
    }

    async fn touch_session(&self, token_hash: &[u8; 32], now: u64) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "UPDATE sessions SET last_used_at = GREATEST(last_used_at, $2) WHERE token_hash = $1",
            &[&token_hash.as_slice(), &i64_of(now)?],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn delete_other_sessions(&self, account: Id, keep: &[u8; 32]) -> StoreResult<u64> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM sessions WHERE account = $1 AND token_hash <> $2",
            &[&account.0.as_slice(), &keep.as_slice()],
        )
        .await
        .map_err(db)
    }

    async fn put_org(&self, org: &Org) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO orgs (id, name, created_at, recovery_delay_seconds) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                   recovery_delay_seconds = EXCLUDED.recovery_delay_seconds",
            &[
                &org.id.0.as_slice(),
                &org.name,
                &i64_of(org.created_at)?,
                &opt_i64(org.recovery_delay_seconds)?,
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn org(&self, id: Id) -> StoreResult<Option<Org>> {
        let client = self.client().await?;
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1");
        opt(&client, &sql, &[&id.0.as_slice()])
            .await
            .map_err(db)?
            .as_ref()
            .map(org_of)
            .transpose()
    }

    async fn put_invite(&self, code_hash: &[u8; 32], invite: &Invite) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO invites (code_hash, org, created_at, expires_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (code_hash) DO UPDATE SET org = EXCLUDED.org,
                   created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
            &[
                &code_hash.as_slice(),
                &invite.org.0.as_slice(),
                &i64_of(invite.created_at)?,
                &i64_of(invite.expires_at)?,
            ],
        )
        .await
        .map_err(|e| {
            if foreign_key_violation(&e) {
                StoreError::NotFound
            } else {
                db(e)
            }
        })?;
        Ok(())
    }

    async fn invite(&self, code_hash: &[u8; 32]) -> StoreResult<Option<Invite>> {
        let client = self.client().await?;
        let Some(row) = opt(
            &client,
            "SELECT org, created_at, expires_at FROM invites WHERE code_hash = $1",
            &[&code_hash.as_slice()],
        )
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let org: Vec<u8> = row.try_get("org").map_err(db)?;
        Ok(Some(Invite {
            org: id_of(&org)?,
            created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
            expires_at: u64_of(row.try_get("expires_at").map_err(db)?)?,
        }))
    }

    async fn create_document(
        &self,
        doc: &Document,
        owner_envelope: &EnvelopeRecord,
        quota: u64,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The owner's row lock serialises this owner's creates: the sum below cannot be
        // overtaken by a concurrent insert.
        if opt(
            &tx,
            "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE",
            &[&doc.owner.0.as_slice()],
        )
        .await
        .map_err(db)?
        .is_none()
        {
            return Err(StoreError::NotFound);
        }
        let used: i64 = one(
            &tx,
            "SELECT COALESCE(sum(size), 0)::bigint FROM documents WHERE owner = $1",
            &[&doc.owner.0.as_slice()],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        if u64_of(used)?.saturating_add(doc.size) > quota {
            return Err(StoreError::QuotaExceeded);
        }
        exec(&tx,
            "INSERT INTO documents (id, owner, metadata, size, stored, committed, created_at, committed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &doc.id.0.as_slice(),
                &doc.owner.0.as_slice(),
                &doc.metadata,
                &i64_of(doc.size)?,
                &i64_of(doc.stored)?,
                &doc.committed,
                &i64_of(doc.created_at)?,
                &opt_i64(doc.committed_at)?,
            ],
        )
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => StoreError::IdTaken,
            None => db(e),
        })?;
        insert_envelope(&tx, doc.id, doc.owner, owner_envelope).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn document(&self, id: Id) -> StoreResult<Option<Document>> {
        let client = self.client().await?;
        let sql = format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = $1");
        opt(&client, &sql, &[&id.0.as_slice()])
            .await
            .map_err(db)?
            .as_ref()
            .map(document_of)
            .transpose()
    }

    async fn documents_of(&self, owner: Id) -> StoreResult<Vec<Document>> {
        let client = self.client().await?;
        let sql = format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE owner = $1 ORDER BY id");
        all(&client, &sql, &[&owner.0.as_slice()])
            .await
            .map_err(db)?
            .iter()
            .map(document_of)
            .collect()
    }

    async fn documents_with_envelopes(
        &self,
        owner: Id,
    ) -> StoreResult<Vec<(Document, Option<EnvelopeRecord>)>> {
        let client = self.client().await?;
        let rows = all(
            &client,
            "SELECT d.id, d.owner, d.metadata, d.size, d.stored, d.committed, d.created_at,
                    d.committed_at, e.envelope, e.granted_by, e.created_at AS e_created_at,
                    e.expires_at AS e_expires_at
             FROM documents d LEFT JOIN envelopes e ON e.doc = d.id AND e.recipient = d.owner
             WHERE d.owner = $1 ORDER BY d.id",
            &[&owner.0.as_slice()],
        )
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let doc = document_of(row)?;
                let envelope: Option<Vec<u8>> = row.try_get("envelope").map_err(db)?;
                let envelope = match envelope {
                    None => None,
                    Some(envelope) => {
                        let granted_by: Vec<u8> = row.try_get("granted_by").map_err(db)?;
                        Some(EnvelopeRecord {
                            envelope,
                            granted_by: id_of(&granted_by)?,
                            created_at: u64_of(row.try_get("e_created_at").map_err(db)?)?,
                            expires_at: opt_u64(row.try_get("e_expires_at").map_err(db)?)?,
                        })
                    }
                };
                Ok((doc, envelope))
            })
            .collect()
    }

    async fn advance_upload(&self, id: Id, from: u64, to: u64) -> StoreResult<u64> {
        let client = self.client().await?;
        let moved = exec(
            &client,
            "UPDATE documents SET stored = $3
                 WHERE id = $1 AND NOT committed AND stored = $2 AND $3 >= $2 AND $3 <= size",
            &[&id.0.as_slice(), &i64_of(from)?, &i64_of(to)?],
        )
        .await
        .map_err(db)?;
        if moved == 1 {
            return Ok(to);
        }
        drop(client);
        Err(self.why_not(id, Some((from, to))).await)
    }

    async fn commit_document(&self, id: Id, now: u64) -> StoreResult<Document> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE documents SET committed = true, committed_at = $2
             WHERE id = $1 AND NOT committed AND stored = size RETURNING {DOCUMENT_COLUMNS}"
        );
        if let Some(row) = opt(&client, &sql, &[&id.0.as_slice(), &i64_of(now)?])
            .await
            .map_err(db)?
        {
            return document_of(&row);
        }
        drop(client);
        Err(self.why_not(id, None).await)
    }

    async fn delete_document(&self, id: Id) -> StoreResult<Document> {
        let client = self.client().await?;
        // Envelopes, links and the lease go with it (ON DELETE CASCADE), in one statement.
        let sql = format!("DELETE FROM documents WHERE id = $1 RETURNING {DOCUMENT_COLUMNS}");
        let row = opt(&client, &sql, &[&id.0.as_slice()])
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        document_of(&row)
    }

    async fn acquire_upload(
        &self,
        doc: Id,
        holder: Id,
        now: u64,
        seconds: u64,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let got = opt(
            &client,
            "INSERT INTO upload_leases (doc, holder, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (doc) DO UPDATE SET holder = EXCLUDED.holder,
                   expires_at = EXCLUDED.expires_at
                   WHERE upload_leases.holder = EXCLUDED.holder OR upload_leases.expires_at <= $4
                 RETURNING holder",
            &[
                &doc.0.as_slice(),
                &holder.0.as_slice(),
                &i64_of(now.saturating_add(seconds))?,
                &i64_of(now)?,
            ],
        )
        .await
        .map_err(|e| {
            if foreign_key_violation(&e) {
                StoreError::NotFound
            } else {
                db(e)
            }
        })?;
        Ok(got.is_some())
    }

    async fn release_upload(&self, doc: Id, holder: Id) -> StoreResult<()> {
        let client = self.client().await?;
        exec(
            &client,
            "DELETE FROM upload_leases WHERE doc = $1 AND holder = $2",
            &[&doc.0.as_slice(), &holder.0.as_slice()],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn put_envelope(
        &self,
        doc: Id,
        recipient: Id,
        record: &EnvelopeRecord,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // FOR SHARE holds off a concurrent delete until this share is in (and the
        // cascade then takes it), or finds the document gone.
        let committed: bool = opt(
            &tx,
            "SELECT committed FROM documents WHERE id = $1 FOR SHARE",
            &[&doc.0.as_slice()],
        )
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?
        .try_get(0)
        .map_err(db)?;
        if !committed {
            return Err(StoreError::NotCommitted);
        }
        // A disabled account is no recipient any more (see disable_account, which locks
        // the row this waits on).
        let live = opt(
            &tx,
            "SELECT 1 FROM accounts WHERE id = $1 AND disabled_at IS NULL FOR SHARE",
            &[&recipient.0.as_slice()],
        )
        .await
        .map_err(db)?;
        if live.is_none() {
            return Err(StoreError::RecipientNotFound);
        }
        insert_envelope(&tx, doc, recipient, record).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn envelope(&self, doc: Id, recipient: Id) -> StoreResult<Option<EnvelopeRecord>> {
        let client = self.client().await?;
        opt(
            &client,
            "SELECT envelope, granted_by, created_at, expires_at FROM envelopes
                 WHERE doc = $1 AND recipient = $2",
            &[&doc.0.as_slice(), &recipient.0.as_slice()],
        )
        .await
        .map_err(db)?
        .as_ref()
        .map(envelope_of)
        .transpose()
    }

    async fn delete_envelope(&self, doc: Id, recipient: Id) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = exec(
            &client,
            "DELETE FROM envelopes WHERE doc = $1 AND recipient = $2",
            &[&doc.0.as_slice(), &recipient.0.as_slice()],
        )
        .await
        .map_err(db)?;
        Ok(n > 0)
    }

    async fn envelopes_of(&self, doc: Id) -> StoreResult<Vec<(Id, EnvelopeRecord)>> {
        let client = self.client().await?;
        all(
            &client,
            "SELECT recipient, envelope, granted_by, created_at, expires_at FROM envelopes
                 WHERE doc = $1 ORDER BY recipient",
            &[&doc.0.as_slice()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|row| {
            let recipient: Vec<u8> = row.try_get("recipient").map_err(db)?;
            Ok((id_of(&recipient)?, envelope_of(row)?))
        })
        .collect()
    }

    async fn shared_with(&self, recipient: Id) -> StoreResult<Vec<Id>> {
        let client = self.client().await?;
        all(
            &client,
            "SELECT e.doc FROM envelopes e JOIN documents d ON d.id = e.doc
                 WHERE e.recipient = $1 AND d.owner <> $1 ORDER BY e.doc",
            &[&recipient.0.as_slice()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|row| {
            let doc: Vec<u8> = row.try_get(0).map_err(db)?;
            id_of(&doc)
        })
        .collect()
    }

    async fn put_link(&self, link: &Link) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let committed: bool = opt(
            &tx,
            "SELECT committed FROM documents WHERE id = $1 FOR SHARE",
            &[&link.doc.0.as_slice()],
        )
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?
        .try_get(0)
        .map_err(db)?;
        if !committed {
            return Err(StoreError::NotCommitted);
        }
        exec(&tx,
            "INSERT INTO links (id, doc, envelope, created_at, expires_at, max_downloads, downloads, last_opened_at, grants)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &link.id.0.as_slice(),
                &link.doc.0.as_slice(),
                &link.envelope,
                &i64_of(link.created_at)?,
                &opt_i64(link.expires_at)?,
                &link.max_downloads.map(i32_of).transpose()?,
                &i32_of(link.downloads)?,
                &opt_i64(link.last_opened_at)?,
                &grants_bytes(&link.grants)?,
            ],
        )
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => StoreError::IdTaken,
            None => db(e),
        })?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn link(&self, id: Id) -> StoreResult<Option<Link>> {
        let client = self.client().await?;
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE id = $1");
        opt(&client, &sql, &[&id.0.as_slice()])
            .await
            .map_err(db)?
            .as_ref()
            .map(link_of)
            .transpose()
    }

    async fn grant_link(&self, id: Id, grant: Digest, now: u64) -> StoreResult<Option<LinkOpen>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The row lock orders concurrent grants of one link: each sees the count and the
        // remembered grants the previous one committed.
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE id = $1 FOR UPDATE");
        let Some(row) = opt(&tx, &sql, &[&id.0.as_slice()]).await.map_err(db)? else {
            return Ok(None);
        };
        let mut link = link_of(&row)?;
        let Some(granted) = link.grant(grant, now) else {
            return Ok(Some(LinkOpen::Exhausted));
        };
        if granted.counted {
            exec(
                &tx,
                "UPDATE links SET downloads = $2, last_opened_at = $3, grants = $4 WHERE id = $1",
                &[
                    &id.0.as_slice(),
                    &i32_of(link.downloads)?,
                    &opt_i64(link.last_opened_at)?,
                    &grants_bytes(&link.grants)?,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(LinkOpen::Opened(link, granted)))
    }

    async fn links_of(&self, doc: Id) -> StoreResult<Vec<Link>> {
        let client = self.client().await?;
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE doc = $1 ORDER BY id");
        all(&client, &sql, &[&doc.0.as_slice()])
            .await
            .map_err(db)?
            .iter()
            .map(link_of)
            .collect()
    }

    async fn delete_link(&self, id: Id) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = exec(
            &client,
            "DELETE FROM links WHERE id = $1",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?;
        Ok(n > 0)
    }

    async fn replace_recovery_code(
        &self,
        account: Id,
        bundle: &[u8],
        verifier: &[u8],
    ) -> StoreResult<Account> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE accounts SET recovery_bundle = $2, recovery_verifier = $3 WHERE id = $1
             RETURNING {ACCOUNT_COLUMNS}"
        );
        let row = opt(&client, &sql, &[&account.0.as_slice(), &bundle, &verifier])
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        account_of(&row)
    }

    async fn set_org_recovery_delay(&self, org: Id, seconds: Option<u64>) -> StoreResult<Org> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE orgs SET recovery_delay_seconds = $2 WHERE id = $1 RETURNING {ORG_COLUMNS}"
        );
        let row = opt(&client, &sql, &[&org.0.as_slice(), &opt_i64(seconds)?])
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        org_of(&row)
    }

    async fn put_recovery_deal(&self, deal: &RecoveryDeal, now: u64) -> StoreResult<()> {
        self.set_recovery_deal(deal.account, Some(deal), now)
            .await
            .map(|_| ())
    }

    async fn recovery_deals_naming(&self, referent: Id) -> StoreResult<Vec<RecoveryDeal>> {
        let client = self.client().await?;
        // The deal's JSON names referents by their hex id (store::Id's serde form).
        let needle = serde_json::json!({ "shares": [{ "referent": referent.to_string() }] });
        all(
            &client,
            "SELECT body::text AS body FROM recovery_deals WHERE body @> $1::text::jsonb
                 ORDER BY account",
            &[&needle.to_string()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(body_of)
        .collect()
    }

    async fn recovery_deal(&self, account: Id) -> StoreResult<Option<RecoveryDeal>> {
        let client = self.client().await?;
        opt(
            &client,
            "SELECT body::text AS body FROM recovery_deals WHERE account = $1",
            &[&account.0.as_slice()],
        )
        .await
        .map_err(db)?
        .as_ref()
        .map(body_of)
        .transpose()
    }

    async fn delete_recovery_deal(&self, account: Id, now: u64) -> StoreResult<bool> {
        self.set_recovery_deal(account, None, now).await
    }

    async fn create_recovery_request(
        &self,
        request: &RecoveryRequest,
        now: u64,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // One open request per handle, where "open" depends on the time: an expired
        // request keeps its 'open' state (as in every backend), so a unique index cannot
        // say whether another may be made. Instead, the creates for one handle take turns
        // on an advisory lock held until commit: each then sees every request the earlier
        // ones committed (a read-committed statement takes a fresh snapshot), so the check
        // below and the insert are one step for that handle. Handles sharing a lock key
        // only wait for each other.
        let [a, b, c, d, ..] = request.handle_key.0;
        exec(
            &tx,
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&RECOVERY_HANDLE_LOCK, &i32::from_be_bytes([a, b, c, d])],
        )
        .await
        .map_err(db)?;
        if opt(
            &tx,
            "SELECT 1 FROM recovery_requests WHERE id = $1",
            &[&request.id.0.as_slice()],
        )
        .await
        .map_err(db)?
        .is_some()
        {
            return Err(StoreError::IdTaken);
        }
        if opt(
            &tx,
            "SELECT 1 FROM recovery_requests
             WHERE handle_key = $1 AND state = 'open' AND expires_at > $2 LIMIT 1",
            &[&request.handle_key.0.as_slice(), &i64_of(now)?],
        )
        .await
        .map_err(db)?
        .is_some()
        {
            return Err(StoreError::RecoveryPending);
        }
        insert_request(&tx, request).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn recovery_request(&self, id: Id) -> StoreResult<Option<RecoveryRequest>> {
        let client = self.client().await?;
        opt(
            &client,
            "SELECT body::text AS body FROM recovery_requests WHERE id = $1",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?
        .as_ref()
        .map(body_of)
        .transpose()
    }

    async fn recovery_requests_of(&self, account: Id) -> StoreResult<Vec<RecoveryRequest>> {
        let client = self.client().await?;
        all(
            &client,
            "SELECT body::text AS body FROM recovery_requests WHERE account = $1
             ORDER BY created_at DESC, id",
            &[&account.0.as_slice()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(body_of)
        .collect()
    }

    async fn recovery_requests_for(
        &self,
        referent: Id,
        now: u64,
    ) -> StoreResult<Vec<RecoveryRequest>> {
        let client = self.client().await?;
        // `@>` (not `= ANY`) so that the GIN index on open requests' referents serves it.
        all(
            &client,
            "SELECT body::text AS body FROM recovery_requests
             WHERE state = 'open' AND expires_at > $2 AND referents @> ARRAY[$1::bytea]
             ORDER BY created_at DESC, id",
            &[&referent.0.as_slice(), &i64_of(now)?],
        )
        .await
        .map_err(db)?
        .iter()
        .map(body_of)
        .collect()
    }

    async fn change_recovery_request(
        &self,
        id: Id,
        change: &RequestChange,
        now: u64,
    ) -> StoreResult<RecoveryRequest> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The row lock serialises every change of this request (and a re-deal or a finish,
        // which lock it too): the rule is applied to the latest version, then written back.
        let row = opt(
            &tx,
            "SELECT body::text AS body FROM recovery_requests WHERE id = $1 FOR UPDATE",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
        let mut r: RecoveryRequest = body_of(&row)?;
        if let RequestChange::Decide { referent, .. } = change {
            // Someone who is not a referent learns nothing, not even that it closed.
            if !r.referents.contains(referent) {
                return Err(StoreError::NotReferent);
            }
        }
        if let (RequestChange::Decide { .. }, Some(account)) = (change, r.account) {
            // A decision counts only under the deal the request was made with. A re-deal
            // committing after this read closes the request right after this change (it
            // waits for the row lock), as if it had come later.
            let current = current_deal(&tx, account, false).await?;
            if r.is_open(now) && current != r.deal {
                return Err(StoreError::RecoveryClosed);
            }
        }
        r.apply(change, now)?;
        update_request(&tx, &r).await?;
        tx.commit().await.map_err(db)?;
        Ok(r)
    }

    async fn finish_recovery(
        &self,
        id: Id,
        finish: &RecoveryFinish,
        now: u64,
    ) -> StoreResult<Account> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let row = opt(
            &tx,
            "SELECT account FROM recovery_requests WHERE id = $1",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
        let account_id =
            opt_id(row.try_get("account").map_err(db)?)?.ok_or(StoreError::RecoveryClosed)?;
        // Locks in the order a re-deal takes them (account, request, deal), so the two
        // cannot deadlock; a concurrent login count or passphrase change waits its turn.
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 FOR NO KEY UPDATE");
        let mut account = account_of(
            &opt(&tx, &sql, &[&account_id.0.as_slice()])
                .await
                .map_err(db)?
                .ok_or(StoreError::NotFound)?,
        )?;
        let row = opt(
            &tx,
            "SELECT body::text AS body FROM recovery_requests WHERE id = $1 FOR UPDATE",
            &[&id.0.as_slice()],
        )
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
        let mut r: RecoveryRequest = body_of(&row)?;
        r.check_releasable(now)?;
        let current = current_deal(&tx, account_id, true).await?;
        if current != r.deal || r.deal.is_none() {
            return Err(StoreError::RecoveryClosed);
        }
        account.apply_credentials(&finish.credentials)?;
        account.recovery_bundle = Some(finish.recovery_bundle.clone());
        account.recovery_verifier = Some(finish.recovery_verifier.clone());
        let sql = format!(
            "UPDATE accounts SET password_file = $2, bundle = $3, ksf_version = $4,
                 credential_epoch = $5, recovery_bundle = $6, recovery_verifier = $7
             WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        );
        let row = one(
            &tx,
            &sql,
            &[
                &account_id.0.as_slice(),
                &account.password_file,
                &account.bundle,
                &i32::from(account.ksf_version),
                &i64_of(account.credential_epoch)?,
                &account.recovery_bundle,
                &account.recovery_verifier,
            ],
        )
        .await
        .map_err(db)?;
        let account = account_of(&row)?;
        // Every session ends, the one of the asking device too (it has none of its own).
        exec(
            &tx,
            "DELETE FROM sessions WHERE account = $1",
            &[&account_id.0.as_slice()],
        )
        .await
        .map_err(db)?;
        match &finish.deal {
            Some(deal) => write_deal(&tx, account_id, deal).await?,
            None => {
                exec(
                    &tx,
                    "DELETE FROM recovery_deals WHERE account = $1",
                    &[&account_id.0.as_slice()],
                )
                .await
                .map_err(db)?;
            }
        }
        r.state = RequestState::Finished;
        r.closed_at = Some(now);
        update_request(&tx, &r).await?;
        tx.commit().await.map_err(db)?;
        Ok(account)
    }

    async fn sweep(&self, now: u64, stale_before: u64) -> StoreResult<Sweep> {
        let client = self.client().await?;
        let now = i64_of(now)?;
        let grant = i64_of(LINK_GRANT_SECONDS)?;
        let stale_before = i64_of(stale_before)?;
        let delete = |sql: &'static str| {
            let client = &client;
            async move { exec(client, sql, &[&now]).await.map_err(db) }
        };
        Ok(Sweep {
            sessions: delete("DELETE FROM sessions WHERE expires_at <= $1").await?,
            invites: delete("DELETE FROM invites WHERE expires_at <= $1").await?,
            envelopes: delete(
                "DELETE FROM envelopes WHERE expires_at IS NOT NULL AND expires_at <= $1",
            )
            .await?,
            // A used-up link is kept while its last opener may still be downloading.
            links: exec(
                &client,
                "DELETE FROM links WHERE (expires_at IS NOT NULL AND expires_at <= $1)
                       OR (max_downloads IS NOT NULL AND downloads >= max_downloads
                           AND COALESCE(last_opened_at, created_at) + $2 <= $1)",
                &[&now, &grant],
            )
            .await
            .map_err(db)?,
            stale_uploads: exec(
                &client,
                "DELETE FROM documents WHERE NOT committed AND created_at < $1",
                &[&stale_before],
            )
            .await
            .map_err(db)?,
            orphan_payloads: 0,
            pending_logins: delete("DELETE FROM pending_logins WHERE expires_at <= $1").await?,
            rate_windows: delete("DELETE FROM rate_windows WHERE start + seconds <= $1").await?,
            upload_leases: delete("DELETE FROM upload_leases WHERE expires_at <= $1").await?,
            recovery_requests: delete("DELETE FROM recovery_requests WHERE removable_at <= $1")
                .await?,
            login_budgets: delete("DELETE FROM login_budgets WHERE idle_at <= $1").await?,
            devices: exec(
                &client,
                "DELETE FROM devices WHERE last_used_at <= $1",
                &[&now.saturating_sub(i64_of(DEVICE_TTL_SECONDS)?)],
            )
            .await
            .map_err(db)?,
        })
    }

    async fn close(&self) -> StoreResult<()> {
        self.pool.close();
        Ok(())
    }

    async fn export(&self) -> StoreResult<Export> {
        let mut client = self.client().await?;
        // One snapshot for every table: writes committed meanwhile are not seen at all.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let rows = |sql: String| {
            let tx = &tx;
            async move { all(tx, &sql, &[]).await.map_err(db) }
        };
        let mut export = Export::default();
        for row in rows(format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY id")).await? {
            export.orgs.push(org_of(&row)?);
        }
        for row in rows(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
        ))
        .await?
        {
            export.accounts.push(account_of(&row)?);
        }
        for row in rows(format!(
            "SELECT token_hash, {SESSION_COLUMNS} FROM sessions ORDER BY token_hash"
        ))
        .await?
        {
            export
                .sessions
                .push((digest_of(&row, "token_hash")?, session_of(&row)?));
        }
        for row in rows(
            "SELECT code_hash, org, created_at, expires_at FROM invites ORDER BY code_hash".into(),
        )
        .await?
        {
            let org: Vec<u8> = row.try_get("org").map_err(db)?;
            export.invites.push((
                digest_of(&row, "code_hash")?,
                Invite {
                    org: id_of(&org)?,
                    created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
                    expires_at: u64_of(row.try_get("expires_at").map_err(db)?)?,
                },
            ));
        }
        for row in rows(format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents ORDER BY id"
        ))
        .await?
        {
            export.documents.push(document_of(&row)?);
        }
        for row in rows(
            "SELECT doc, recipient, envelope, granted_by, created_at, expires_at FROM envelopes
             ORDER BY doc, recipient"
                .into(),
        )
        .await?
        {
            let doc: Vec<u8> = row.try_get("doc").map_err(db)?;
            let recipient: Vec<u8> = row.try_get("recipient").map_err(db)?;
            export
                .envelopes
                .push((id_of(&doc)?, id_of(&recipient)?, envelope_of(&row)?));
        }
        for row in rows(format!("SELECT {LINK_COLUMNS} FROM links ORDER BY id")).await? {
            export.links.push(link_of(&row)?);
        }
        for row in rows(format!(
            "SELECT key, {BUDGET_COLUMNS} FROM login_budgets ORDER BY key"
        ))
        .await?
        {
            export
                .login_budgets
                .push((digest_of(&row, "key")?, attempts_of(&row)?));
        }
        for row in rows(format!(
            "SELECT key, {DEVICE_COLUMNS} FROM devices ORDER BY key"
        ))
        .await?
        {
            export
                .devices
                .push((digest_of(&row, "key")?, device_of(&row)?));
        }
        for row in
            rows("SELECT body::text AS body FROM recovery_deals ORDER BY account".into()).await?
        {
            export.recovery_deals.push(body_of(&row)?);
        }
        for row in
            rows("SELECT body::text AS body FROM recovery_requests ORDER BY id".into()).await?
        {
            export.recovery_requests.push(body_of(&row)?);
        }
        tx.commit().await.map_err(db)?;
        Ok(export)
    }

    async fn import(&self, export: &Export) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let held: i64 = one(
            &tx,
            "SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM orgs)
                      + (SELECT count(*) FROM documents)",
            &[],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        if held > 0 {
            return Err(StoreError::NotEmpty);
        }
        for org in &export.orgs {
            exec(
                &tx,
                "INSERT INTO orgs (id, name, created_at, recovery_delay_seconds)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &org.id.0.as_slice(),
                    &org.name,
                    &i64_of(org.created_at)?,
                    &opt_i64(org.recovery_delay_seconds)?,
                ],
            )
            .await
            .map_err(db)?;
        }
        for a in &export.accounts {
            insert_account(&tx, a).await?;
        }
        for (hash, session) in &export.sessions {
            exec(&tx,
                "INSERT INTO sessions (token_hash, account, created_at, expires_at, credential_epoch,
                   last_used_at, device, shared)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &hash.0.as_slice(),
                    &session.account.0.as_slice(),
                    &i64_of(session.created_at)?,
                    &i64_of(session.expires_at)?,
                    &i64_of(session.credential_epoch)?,
                    &i64_of(session.last_used_at)?,
                    &session.device,
                    &session.shared,
                ],
            )
            .await
            .map_err(db)?;
        }
        for (hash, invite) in &export.invites {
            exec(&tx,
                "INSERT INTO invites (code_hash, org, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                &[
                    &hash.0.as_slice(),
                    &invite.org.0.as_slice(),
                    &i64_of(invite.created_at)?,
                    &i64_of(invite.expires_at)?,
                ],
            )
            .await
            .map_err(db)?;
        }
        for d in &export.documents {
            exec(&tx,
                "INSERT INTO documents (id, owner, metadata, size, stored, committed, created_at, committed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &d.id.0.as_slice(),
                    &d.owner.0.as_slice(),
                    &d.metadata,
                    &i64_of(d.size)?,
                    &i64_of(d.stored)?,
                    &d.committed,
                    &i64_of(d.created_at)?,
                    &opt_i64(d.committed_at)?,
                ],
            )
            .await
            .map_err(db)?;
        }
        for (doc, recipient, record) in &export.envelopes {
            insert_envelope(&tx, *doc, *recipient, record).await?;
        }
        for l in &export.links {
            exec(&tx,
                "INSERT INTO links (id, doc, envelope, created_at, expires_at, max_downloads, downloads, last_opened_at, grants)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &l.id.0.as_slice(),
                    &l.doc.0.as_slice(),
                    &l.envelope,
                    &i64_of(l.created_at)?,
                    &opt_i64(l.expires_at)?,
                    &l.max_downloads.map(i32_of).transpose()?,
                    &i32_of(l.downloads)?,
                    &opt_i64(l.last_opened_at)?,
                    &grants_bytes(&l.grants)?,
                ],
            )
            .await
            .map_err(db)?;
        }
        for (key, budget) in &export.login_budgets {
            exec(
                &tx,
                "INSERT INTO login_budgets (key, failures, window_start, window_count, next_at, idle_at)
                 VALUES ($1, 0, 0, 0, 0, 0)",
                &[&key.0.as_slice()],
            )
            .await
            .map_err(db)?;
            write_budget(&tx, "login_budgets", &key.0, budget).await?;
        }
        for (key, device) in &export.devices {
            insert_device(&tx, &key.0, device).await?;
        }
        for deal in &export.recovery_deals {
            write_deal(&tx, deal.account, deal).await?;
        }
        for r in &export.recovery_requests {
            insert_request(&tx, r).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

fn digest_of(row: &Row, column: &str) -> StoreResult<Digest> {
    let bytes: Vec<u8> = row.try_get(column).map_err(db)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Digest)
        .map_err(|_| backend(format!("{column} does not hold 32 bytes")))
}

/// `query_opt` with the statement prepared once per connection (deadpool caches it): a
/// statement sent as text is parsed and planned at every call, a round trip and most of
/// the database's CPU per request (measured: 126–172 µs per statement, 2.2× fewer
/// transactions per second than prepared ones on this machine).
async fn opt<C: deadpool_postgres::GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_opt(&statement, params).await
}

/// `query_one`, prepared once per connection (see [`opt`]).
async fn one<C: deadpool_postgres::GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Row, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_one(&statement, params).await
}

/// `query`, prepared once per connection (see [`opt`]).
async fn all<C: deadpool_postgres::GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

/// `execute`, prepared once per connection (see [`opt`]).
async fn exec<C: deadpool_postgres::GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}

const BUDGET_COLUMNS: &str = "failures, window_start, window_count, next_at, idle_at";
const DEVICE_COLUMNS: &str =
    "account, created_at, last_used_at, failures, window_start, window_count, next_at, idle_at";

fn throttled(t: Throttled) -> StoreError {
    StoreError::Throttled {
        retry_after: t.retry_after,
    }
}

fn attempts_of(row: &Row) -> StoreResult<Attempts> {
    let count = |c: &str| -> StoreResult<u32> {
        u32::try_from(row.try_get::<_, i32>(c).map_err(db)?).map_err(backend)
    };
    let time = |c: &str| -> StoreResult<u64> { u64_of(row.try_get(c).map_err(db)?) };
    Ok(Attempts {
        failures: count("failures")?,
        window_start: time("window_start")?,
        window_count: count("window_count")?,
        next_at: time("next_at")?,
        idle_at: time("idle_at")?,
    })
}

fn device_of(row: &Row) -> StoreResult<Device> {
    let account: Vec<u8> = row.try_get("account").map_err(db)?;
    Ok(Device {
        account: id_of(&account)?,
        created_at: u64_of(row.try_get("created_at").map_err(db)?)?,
        last_used_at: u64_of(row.try_get("last_used_at").map_err(db)?)?,
        attempts: attempts_of(row)?,
    })
}

/// Writes a budget's state into an existing row of `table` (`login_budgets` or
/// `devices`, both keyed by `key`).
async fn write_budget<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    table: &str,
    key: &[u8; 32],
    b: &Attempts,
) -> StoreResult<()> {
    let sql = format!(
        "UPDATE {table} SET failures = $2, window_start = $3, window_count = $4,
             next_at = $5, idle_at = $6 WHERE key = $1"
    );
    exec(
        client,
        &sql,
        &[
            &key.as_slice(),
            &i32_of(b.failures)?,
            &i64_of(b.window_start)?,
            &i32_of(b.window_count)?,
            &i64_of(b.next_at)?,
            &i64_of(b.idle_at)?,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Inserts (or replaces) a device credential.
async fn insert_device<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    key: &[u8; 32],
    d: &Device,
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO devices (key, {DEVICE_COLUMNS}) VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0)
         ON CONFLICT (key) DO UPDATE SET account = EXCLUDED.account,
             created_at = EXCLUDED.created_at, last_used_at = EXCLUDED.last_used_at"
    );
    exec(
        client,
        &sql,
        &[
            &key.as_slice(),
            &d.account.0.as_slice(),
            &i64_of(d.created_at)?,
            &i64_of(d.last_used_at)?,
        ],
    )
    .await
    .map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
            StoreError::NotFound
        } else {
            db(e)
        }
    })?;
    write_budget(client, "devices", key, &d.attempts).await
}

/// Inserts an account; the unique constraint tells a taken handle from a reused id.
async fn insert_account<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    a: &Account,
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO accounts ({ACCOUNT_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    exec(
        client,
        &sql,
        &[
            &a.id.0.as_slice(),
            &a.handle,
            &role_name(a.role),
            &a.org.map(|o| o.0.to_vec()),
            &a.public_key,
            &a.password_file,
            &i32::from(a.ksf_version),
            &a.bundle,
            &a.recovery_bundle,
            &a.recovery_verifier,
            &a.created_by.map(|w| w.0.to_vec()),
            &opt_i64(a.consent_at)?,
            &i64_of(a.created_at)?,
            &i64_of(a.credential_epoch)?,
            &opt_i64(a.disabled_at)?,
        ],
    )
    .await
    .map_err(|e| match unique_violation(&e).as_deref() {
        Some("accounts_handle_key") => StoreError::HandleTaken,
        Some(_) => StoreError::IdTaken,
        None => db(e),
    })?;
    Ok(())
}

/// Inserts or replaces an envelope; a missing recipient is `RecipientNotFound`.
async fn insert_envelope<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    doc: Id,
    recipient: Id,
    record: &EnvelopeRecord,
) -> StoreResult<()> {
    exec(
        client,
        "INSERT INTO envelopes (doc, recipient, envelope, granted_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (doc, recipient) DO UPDATE SET envelope = EXCLUDED.envelope,
               granted_by = EXCLUDED.granted_by, created_at = EXCLUDED.created_at,
               expires_at = EXCLUDED.expires_at",
        &[
            &doc.0.as_slice(),
            &recipient.0.as_slice(),
            &record.envelope,
            &record.granted_by.0.as_slice(),
            &i64_of(record.created_at)?,
            &opt_i64(record.expires_at)?,
        ],
    )
    .await
    .map_err(|e| {
        if foreign_key_violation(&e) {
            StoreError::RecipientNotFound
        } else {
            db(e)
        }
    })?;
    Ok(())
}

/// The id of `account`'s current deal (row-locked until the end of the transaction with
/// `lock`).
async fn current_deal<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    account: Id,
    lock: bool,
) -> StoreResult<Option<Id>> {
    let sql = if lock {
        "SELECT id FROM recovery_deals WHERE account = $1 FOR UPDATE"
    } else {
        "SELECT id FROM recovery_deals WHERE account = $1"
    };
    let row = opt(client, sql, &[&account.0.as_slice()])
        .await
        .map_err(db)?;
    match row {
        Some(row) => {
            let id: Vec<u8> = row.try_get("id").map_err(db)?;
            Ok(Some(id_of(&id)?))
        }
        None => Ok(None),
    }
}

/// Stores `deal` as `account`'s, in place of any earlier one.
async fn write_deal<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    account: Id,
    deal: &RecoveryDeal,
) -> StoreResult<()> {
    exec(
        client,
        "INSERT INTO recovery_deals (account, id, body) VALUES ($1, $2, $3::text::jsonb)
             ON CONFLICT (account) DO UPDATE SET id = EXCLUDED.id, body = EXCLUDED.body",
        &[
            &account.0.as_slice(),
            &deal.id.0.as_slice(),
            &json_of(deal)?,
        ],
    )
    .await
    .map_err(|e| {
        if foreign_key_violation(&e) {
            StoreError::NotFound
        } else {
            db(e)
        }
    })?;
    Ok(())
}

/// When the sweeper may remove `r`, as a bigint (a time beyond the column's range is
/// never reached).
fn removable_at(r: &RecoveryRequest) -> i64 {
    i64::try_from(r.removable_after()).unwrap_or(i64::MAX)
}

/// Inserts a request; a reused id is `IdTaken`, an account that does not exist `NotFound`.
async fn insert_request<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    r: &RecoveryRequest,
) -> StoreResult<()> {
    let referents: Vec<&[u8]> = r.referents.iter().map(|id| id.0.as_slice()).collect();
    exec(
        client,
        "INSERT INTO recovery_requests
             (id, handle_key, account, state, created_at, expires_at, removable_at, referents, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)",
        &[
            &r.id.0.as_slice(),
            &r.handle_key.0.as_slice(),
            &r.account.map(|a| a.0.to_vec()),
            &state_name(r.state),
            &i64_of(r.created_at)?,
            &i64_of(r.expires_at)?,
            &removable_at(r),
            &referents,
            &json_of(r)?,
        ],
    )
    .await
    .map_err(|e| {
        if unique_violation(&e).is_some() {
            StoreError::IdTaken
        } else if foreign_key_violation(&e) {
            StoreError::NotFound
        } else {
            db(e)
        }
    })?;
    Ok(())
}

/// Writes a changed request back: its body and the columns queries use, from the same
/// record. (Its id, handle, account, creation time and referents never change.)
async fn update_request<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    r: &RecoveryRequest,
) -> StoreResult<()> {
    let n = exec(
        client,
        "UPDATE recovery_requests SET state = $2, expires_at = $3, removable_at = $4,
             body = $5::text::jsonb
         WHERE id = $1",
        &[
            &r.id.0.as_slice(),
            &state_name(r.state),
            &i64_of(r.expires_at)?,
            &removable_at(r),
            &json_of(r)?,
        ],
    )
    .await
    .map_err(db)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
