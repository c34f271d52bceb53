//! The login budgets of the sled backend: handle budgets by handle key, device
//! credentials by token hash with an index by account. A budget changes by
//! compare-and-swap (every concurrent attempt is counted); a device with its index in one
//! transaction.

use sled::transaction::{ConflictableTransactionError, Transactional};

use super::{abort, backend, decode, encode, get, get_tx, tx_encode, tx_result, Trees};
use crate::store::attempts::{DEVICE_TTL_SECONDS, MAX_DEVICES_PER_ACCOUNT};
use crate::store::{
    upgrade_legacy_account, AttemptPolicy, Attempts, Budget, Device, Digest, Id, StoreError,
    StoreResult, Throttled, ID_BYTES,
};

/// The index key of one device credential of an account.
fn device_index(account: Id, device: &[u8; 32]) -> [u8; ID_BYTES + 32] {
    let mut key = [0u8; ID_BYTES + 32];
    key[..ID_BYTES].copy_from_slice(&account.0);
    key[ID_BYTES..].copy_from_slice(device);
    key
}

fn throttled(t: Throttled) -> StoreError {
    StoreError::Throttled {
        retry_after: t.retry_after,
    }
}

impl Trees {
    /// Accounts written before login budgets lose their `failed_logins` and `locked`
    /// fields, and the counters of unknown handles (now handle budgets) are dropped.
    pub(super) fn upgrade_legacy_records(&self) -> StoreResult<()> {
        for entry in self.accounts.iter() {
            let (k, v) = entry.map_err(backend)?;
            let mut value: serde_json::Value = decode(&v)?;
            if upgrade_legacy_account(&mut value) {
                self.accounts.insert(k, encode(&value)?).map_err(backend)?;
            }
        }
        self.db.drop_tree("unknown_attempts").map_err(backend)?;
        Ok(())
    }

    pub(super) fn count_login_attempt(
        &self,
        key: &[u8; 32],
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32> {
        loop {
            let old = self.login_budgets.get(key).map_err(backend)?;
            let mut budget: Attempts = match &old {
                Some(v) => decode(v)?,
                None => Attempts::default(),
            };
            let left = budget.take(now, policy).map_err(throttled)?;
            if self
                .login_budgets
                .compare_and_swap(key, old, Some(encode(&budget)?))
                .map_err(backend)?
                .is_ok()
            {
                return Ok(left);
            }
        }
    }

    pub(super) fn count_device_attempt(
        &self,
        device: &[u8; 32],
        account: Id,
        now: u64,
        policy: &AttemptPolicy,
    ) -> StoreResult<u32> {
        tx_result(
            (&self.devices, &self.account_devices).transaction(|(devices, index)| {
                let Some(mut record) = get_tx::<Device>(devices, device)? else {
                    return abort(StoreError::NotFound);
                };
                if record.account != account {
                    return abort(StoreError::NotFound);
                }
                let left = match record.attempts.take(now, policy) {
                    Ok(left) => left,
                    Err(t) => return abort(throttled(t)),
                };
                if record.attempts.forget_device(policy) {
                    devices.remove(device.as_slice())?;
                    index.remove(device_index(account, device).as_slice())?;
                } else {
                    devices.insert(device.as_slice(), tx_encode(&record)?)?;
                }
                Ok(left)
            }),
        )
    }

    pub(super) fn attempt_succeeded(
        &self,
        budget: &Budget,
        started_at: u64,
        now: u64,
    ) -> StoreResult<()> {
        let (tree, key) = match budget {
            Budget::Handle(key) => (&self.login_budgets, key.0),
            Budget::Device(key) => (&self.devices, key.0),
        };
        loop {
            let Some(old) = tree.get(key).map_err(backend)? else {
                return Ok(()); // swept, reset or forgotten meanwhile
            };
            let new = match budget {
                Budget::Handle(_) => {
                    let mut b: Attempts = decode(&old)?;
                    b.succeeded(started_at);
                    encode(&b)?
                }
                Budget::Device(_) => {
                    let mut d: Device = decode(&old)?;
                    d.attempts.succeeded(started_at);
                    d.last_used_at = d.last_used_at.max(now);
                    encode(&d)?
                }
            };
            if tree
                .compare_and_swap(key, Some(old), Some(new))
                .map_err(backend)?
                .is_ok()
            {
                return Ok(());
            }
        }
    }

    pub(super) fn put_device(&self, device: &[u8; 32], record: &Device) -> StoreResult<()> {
        let account = record.account;
        tx_result(
            (&self.accounts, &self.devices, &self.account_devices).transaction(
                |(accounts, devices, index)| {
                    if accounts.get(account.0)?.is_none() {
                        return abort(StoreError::NotFound);
                    }
                    devices.insert(device.as_slice(), tx_encode(record)?)?;
                    index.insert(device_index(account, device).as_slice(), &[][..])?;
                    Ok(())
                },
            ),
        )?;
        let mut held = self.devices_of(account)?;
        if held.len() > MAX_DEVICES_PER_ACCOUNT {
            // Newest use first; the one just issued stays whatever the clocks say.
            held.sort_by_key(|(hash, d)| (hash.0 != *device, std::cmp::Reverse(d.last_used_at)));
            for (hash, _) in held.into_iter().skip(MAX_DEVICES_PER_ACCOUNT) {
                self.delete_device(account, &hash.0)?;
            }
        }
        Ok(())
    }

    pub(super) fn devices_of(&self, account: Id) -> StoreResult<Vec<(Digest, Device)>> {
        let mut out = Vec::new();
        for k in self.account_devices.scan_prefix(account.0).keys() {
            let k = k.map_err(backend)?;
            let Some(hash) = k.get(ID_BYTES..).and_then(|h| <[u8; 32]>::try_from(h).ok()) else {
                return Err(backend("malformed device index key"));
            };
            if let Some(d) = get::<Device>(&self.devices, &hash)? {
                out.push((Digest(hash), d));
            }
        }
        Ok(out)
    }

    fn delete_device(&self, account: Id, device: &[u8; 32]) -> StoreResult<()> {
        tx_result(
            (&self.devices, &self.account_devices).transaction(|(devices, index)| {
                devices.remove(device.as_slice())?;
                index.remove(device_index(account, device).as_slice())?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            }),
        )
    }

    pub(super) fn delete_devices_of(&self, account: Id) -> StoreResult<u64> {
        let held = self.devices_of(account)?;
        for (hash, _) in &held {
            self.delete_device(account, &hash.0)?;
        }
        Ok(held.len() as u64)
    }

    /// Puts imported device credentials back with their index.
    pub(super) fn import_devices(&self, devices: &[(Digest, Device)]) -> StoreResult<()> {
        for (hash, d) in devices {
            super::put(&self.devices, &hash.0, d)?;
            self.account_devices
                .insert(device_index(d.account, &hash.0).as_slice(), &[][..])
                .map_err(backend)?;
        }
        Ok(())
    }

    /// Deletes idle handle budgets and device credentials unused for
    /// [`DEVICE_TTL_SECONDS`]: (budgets, devices).
    pub(super) fn sweep_attempts(&self, now: u64) -> StoreResult<(u64, u64)> {
        let budgets = Self::sweep_tree(&self.login_budgets, |b: &Attempts| b.idle_at <= now)?;
        let mut stale = Vec::new();
        for entry in self.devices.iter() {
            let (k, v) = entry.map_err(backend)?;
            let d: Device = decode(&v)?;
            if d.last_used_at.saturating_add(DEVICE_TTL_SECONDS) <= now {
                if let Ok(hash) = <[u8; 32]>::try_from(k.as_ref()) {
                    stale.push((d.account, hash));
                }
            }
        }
        for (account, hash) in &stale {
            self.delete_device(*account, hash)?;
        }
        Ok((budgets, stale.len() as u64))
    }
}
