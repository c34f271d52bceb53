//! Administrator operations: creating organisations and worker invites. They go through
//! the same [`Records`] as the server, so on a store that several processes share they
//! work while the server runs.

use crate::auth::generate_token;
use crate::error::AppError;
use crate::store::{Id, Invite, Org, Records};

/// How long an invite code stays valid.
pub const INVITE_SECONDS: u64 = 14 * 24 * 3600;

/// Longest organisation name, in bytes.
pub const ORG_NAME_MAX_BYTES: usize = 200;

/// Creates an organisation.
pub async fn create_org(records: &dyn Records, name: &str, now: u64) -> Result<Org, AppError> {
    let name = name.trim();
    if name.is_empty() || name.len() > ORG_NAME_MAX_BYTES {
        return Err(AppError::Unprocessable(format!(
            "the name must have 1 to {ORG_NAME_MAX_BYTES} bytes"
        )));
    }
    let org = Org {
        id: Id::generate()?,
        name: name.to_owned(),
        created_at: now,
        recovery_delay_seconds: None,
    };
    records.put_org(&org).await?;
    Ok(org)
}

/// Creates a one-time invite for a worker of `org`; returns the code to hand over. Only
/// its hash is stored.
pub async fn create_invite(records: &dyn Records, org: Id, now: u64) -> Result<String, AppError> {
    if records.org(org).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let (code, hash) = generate_token()?;
    records
        .put_invite(
            &hash,
            &Invite {
                org,
                created_at: now,
                expires_at: now + INVITE_SECONDS,
            },
        )
        .await?;
    Ok(code)
}

/// Sets how long a recovery through referents waits, for the people of `org`, from the
/// last approval needed to the release: 0 to 14 days (`None`: the default, 72 h). With a
/// single referent (k = 1) at least 72 h apply whatever is set here
/// ([`crate::store::recovery::effective_delay`]).
pub async fn set_recovery_delay(
    records: &dyn Records,
    org: Id,
    seconds: Option<u64>,
) -> Result<Org, AppError> {
    use crate::store::recovery::MAX_RECOVERY_DELAY_SECONDS;
    if seconds.is_some_and(|s| s > MAX_RECOVERY_DELAY_SECONDS) {
        return Err(AppError::Unprocessable(format!(
            "the recovery delay is at most {} days",
            MAX_RECOVERY_DELAY_SECONDS / 86_400
        )));
    }
    Ok(records.set_org_recovery_delay(org, seconds).await?)
}

/// Disables an account (a worker who left): it can no longer log in, its sessions end,
/// shares to it are revoked, and it no longer counts as anyone's referent.
pub async fn disable_account(
    records: &dyn Records,
    handle: &str,
    now: u64,
) -> Result<crate::store::Account, AppError> {
    let handle = handle.trim().to_ascii_lowercase();
    let account = records
        .account_by_handle(&handle)
        .await?
        .ok_or(AppError::NotFound)?;
    // Workers only: a person's vault is theirs to keep, and a disabled person's handle
    // would answer differently from an unknown one at login.
    if account.role != crate::store::Role::Worker {
        return Err(AppError::Unprocessable(
            "only a worker's account can be disabled".into(),
        ));
    }
    Ok(records.disable_account(account.id, now).await?)
}
