//! Administrator operations run from the command line on a stopped server's store:
//! creating organisations and worker invites.

use crate::auth::generate_token;
use crate::error::AppError;
use crate::store::{Id, Invite, Org, Store, StoreError};

/// How long an invite code stays valid.
pub const INVITE_SECONDS: u64 = 14 * 24 * 3600;

/// Creates an organisation.
pub fn create_org(store: &dyn Store, name: &str, now: u64) -> Result<Org, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(StoreError::Conflict(
            "the name must have 1 to 200 bytes".into(),
        ));
    }
    let org = Org {
        id: Id::generate()?,
        name: name.to_owned(),
        created_at: now,
    };
    store.put_org(&org)?;
    store.flush()?;
    Ok(org)
}

/// Creates a one-time invite for a worker of `org`; returns the code to hand over. Only
/// its hash is stored.
pub fn create_invite(store: &dyn Store, org: Id, now: u64) -> Result<String, AppError> {
    if store.org(org)?.is_none() {
        return Err(AppError::NotFound);
    }
    let (code, hash) = generate_token()?;
    store.put_invite(
        &hash,
        &Invite {
            org,
            created_at: now,
            expires_at: now + INVITE_SECONDS,
        },
    )?;
    store.flush()?;
    Ok(code)
}
