//! The recovery records of the sled backend: deals by account, requests by id, and the
//! index of open requests by handle digest that keeps one open per handle. Each change
//! is one sled transaction over the trees it touches.

use sled::transaction::{ConflictableTransactionError, Transactional};

use super::{abort, backend, decode, get_tx, session_index, tx_encode, tx_result, Trees};
use crate::store::{
    Account, Id, RecoveryDeal, RecoveryFinish, RecoveryRequest, RequestChange, RequestState,
    StoreError, StoreResult,
};

impl Trees {
    /// Every request that `keep` selects.
    pub(super) fn requests_where(
        &self,
        keep: impl Fn(&RecoveryRequest) -> bool,
    ) -> StoreResult<Vec<RecoveryRequest>> {
        let mut out = Vec::new();
        for v in self.recovery_requests.iter().values() {
            let r: RecoveryRequest = decode(&v.map_err(backend)?)?;
            if keep(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Stores (or, with `None`, removes) the account's deal and closes the account's open
    /// requests, which were made under the deal being replaced; whether a deal was there.
    pub(super) fn put_recovery_deal(
        &self,
        account: Id,
        deal: Option<&RecoveryDeal>,
        now: u64,
    ) -> StoreResult<bool> {
        // Requests cannot be scanned inside a transaction: list them first. One created
        // after the scan names the old deal, and every later step checks that the deal is
        // still the current one, so it can never complete.
        let open: Vec<Id> = self
            .requests_where(|r| r.account == Some(account) && r.is_open(now))?
            .iter()
            .map(|r| r.id)
            .collect();
        let value = deal.map(tx_encode_plain).transpose()?;
        tx_result(
            (
                &self.accounts,
                &self.recovery_deals,
                &self.recovery_requests,
                &self.recovery_open,
            )
                .transaction(|(accounts, deals, requests, open_index)| {
                    if accounts.get(account.0)?.is_none() {
                        return abort(StoreError::NotFound);
                    }
                    let had = match &value {
                        Some(v) => deals.insert(account.0.as_slice(), v.as_slice())?,
                        None => deals.remove(account.0.as_slice())?,
                    }
                    .is_some();
                    for id in &open {
                        if let Some(mut r) = get_tx::<RecoveryRequest>(requests, &id.0)? {
                            r.replaced(now);
                            requests.insert(id.0.as_slice(), tx_encode(&r)?)?;
                            if open_index.get(r.handle_key.0)?.as_deref() == Some(&id.0[..]) {
                                open_index.remove(r.handle_key.0.as_slice())?;
                            }
                        }
                    }
                    Ok(had)
                }),
        )
    }

    pub(super) fn create_recovery_request(
        &self,
        request: &RecoveryRequest,
        now: u64,
    ) -> StoreResult<()> {
        let value = tx_encode_plain(request)?;
        tx_result(
            (&self.recovery_requests, &self.recovery_open).transaction(|(requests, open)| {
                if requests.get(request.id.0)?.is_some() {
                    return abort(StoreError::IdTaken);
                }
                if let Some(existing) = open.get(request.handle_key.0)? {
                    if let Some(r) = get_tx::<RecoveryRequest>(requests, &existing)? {
                        if r.is_open(now) {
                            return abort(StoreError::RecoveryPending);
                        }
                    }
                }
                requests.insert(request.id.0.as_slice(), value.as_slice())?;
                open.insert(request.handle_key.0.as_slice(), request.id.0.as_slice())?;
                Ok(())
            }),
        )
    }

    pub(super) fn change_recovery_request(
        &self,
        id: Id,
        change: &RequestChange,
        now: u64,
    ) -> StoreResult<RecoveryRequest> {
        tx_result(
            (
                &self.recovery_requests,
                &self.recovery_open,
                &self.recovery_deals,
            )
                .transaction(|(requests, open, deals)| {
                    let Some(mut r) = get_tx::<RecoveryRequest>(requests, &id.0)? else {
                        return abort(StoreError::NotFound);
                    };
                    if let RequestChange::Decide { referent, .. } = change {
                        // Someone who is not a referent learns nothing, not even that it
                        // closed.
                        if !r.referents.contains(referent) {
                            return abort(StoreError::NotReferent);
                        }
                    }
                    if let (RequestChange::Decide { .. }, Some(account)) = (change, r.account) {
                        // A decision counts only under the deal the request was made with.
                        let current = get_tx::<RecoveryDeal>(deals, &account.0)?.map(|d| d.id);
                        if r.is_open(now) && current != r.deal {
                            return abort(StoreError::RecoveryClosed);
                        }
                    }
                    r.apply(change, now)
                        .map_err(ConflictableTransactionError::Abort)?;
                    requests.insert(id.0.as_slice(), tx_encode(&r)?)?;
                    if !r.is_open(now) && open.get(r.handle_key.0)?.as_deref() == Some(&id.0[..]) {
                        open.remove(r.handle_key.0.as_slice())?;
                    }
                    Ok(r)
                }),
        )
    }

    pub(super) fn finish_recovery(
        &self,
        id: Id,
        finish: &RecoveryFinish,
        now: u64,
    ) -> StoreResult<Account> {
        let Some(request) = super::get::<RecoveryRequest>(&self.recovery_requests, &id.0)? else {
            return Err(StoreError::NotFound);
        };
        let account_id = request.account.ok_or(StoreError::RecoveryClosed)?;
        // As for a passphrase change: sessions are listed first; one opened after the scan
        // is under the old credential epoch, which the transaction ends.
        let sessions = self.sessions_of(account_id, None)?;
        let new_deal = finish.deal.as_ref().map(tx_encode_plain).transpose()?;
        tx_result(
            (
                &self.accounts,
                &self.sessions,
                &self.account_sessions,
                &self.recovery_deals,
                &self.recovery_requests,
                &self.recovery_open,
            )
                .transaction(
                    |(accounts, session_tree, index_tree, deals, requests, open)| {
                        let Some(mut r) = get_tx::<RecoveryRequest>(requests, &id.0)? else {
                            return abort(StoreError::NotFound);
                        };
                        r.check_releasable(now)
                            .map_err(ConflictableTransactionError::Abort)?;
                        let current = get_tx::<RecoveryDeal>(deals, &account_id.0)?.map(|d| d.id);
                        if current != r.deal || r.deal.is_none() {
                            return abort(StoreError::RecoveryClosed);
                        }
                        let Some(mut account) = get_tx::<Account>(accounts, &account_id.0)? else {
                            return abort(StoreError::NotFound);
                        };
                        account
                            .apply_credentials(&finish.credentials)
                            .map_err(ConflictableTransactionError::Abort)?;
                        account.recovery_bundle = Some(finish.recovery_bundle.clone());
                        account.recovery_verifier = Some(finish.recovery_verifier.clone());
                        accounts.insert(account_id.0.as_slice(), tx_encode(&account)?)?;
                        for hash in &sessions {
                            session_tree.remove(hash.as_slice())?;
                            index_tree.remove(session_index(account_id, hash).as_slice())?;
                        }
                        match &new_deal {
                            Some(v) => deals.insert(account_id.0.as_slice(), v.as_slice())?,
                            None => deals.remove(account_id.0.as_slice())?,
                        };
                        r.state = RequestState::Finished;
                        r.closed_at = Some(now);
                        requests.insert(id.0.as_slice(), tx_encode(&r)?)?;
                        if open.get(r.handle_key.0)?.as_deref() == Some(&id.0[..]) {
                            open.remove(r.handle_key.0.as_slice())?;
                        }
                        Ok(account)
                    },
                ),
        )
    }

    /// Removes requests closed or expired more than a while ago; how many.
    pub(super) fn sweep_recovery_requests(&self, now: u64) -> StoreResult<u64> {
        let old = self.requests_where(|r| r.removable_after() <= now)?;
        let mut removed = 0;
        for r in old {
            tx_result((&self.recovery_requests, &self.recovery_open).transaction(
                |(requests, open)| {
                    requests.remove(r.id.0.as_slice())?;
                    if open.get(r.handle_key.0)?.as_deref() == Some(&r.id.0[..]) {
                        open.remove(r.handle_key.0.as_slice())?;
                    }
                    Ok(())
                },
            ))?;
            removed += 1;
        }
        Ok(removed)
    }
}

fn tx_encode_plain<T: serde::Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    super::encode(value)
}
