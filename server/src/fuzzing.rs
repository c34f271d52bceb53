//! The server's checks of client bytes that are not otherwise public, for the cargo-fuzz
//! targets in `fuzz/` (docs/fuzzing.md). Each function only forwards to the check a
//! handler runs, with the same arguments it gets there; nothing here changes behaviour.
//! Hidden from the docs: not an API for anything but the fuzz targets.

use coffre_core::bundle::BundleKind;

use crate::api::accounts::NewAccount;
use crate::store::{Account, Id, Role};
use crate::AppResult;

/// A path or body id, as handlers parse it (`parse_id`).
pub fn parse_id(text: &str) -> AppResult<Id> {
    crate::api::accounts::parse_id("id", text)
}

/// A registration's fields, as the beneficiary and worker registrations check them.
pub fn build_account(new: &NewAccount, role: Role) -> AppResult<Account> {
    crate::api::accounts::build_account(new, role, 0)
}

/// A new OPAQUE record and re-sealed bundle (passphrase change, recovery by code).
pub fn re_registration(upload: &str, bundle: &str) -> AppResult<(Vec<u8>, Vec<u8>)> {
    crate::api::accounts::re_registration(upload, bundle)
}

/// A decoded key bundle of the expected kind.
pub fn check_bundle(bytes: &[u8], kind: BundleKind) -> AppResult<()> {
    crate::api::accounts::check_bundle("bundle", bytes, kind)
}

/// A decoded sealed share (deal, approval).
pub fn check_sealed_share(bytes: &[u8]) -> AppResult<()> {
    crate::api::recovery::check_sealed_share("sealed_share", bytes)
}

/// A 32-byte base64 field (commitment, verifier).
pub fn digest_field(text: &str) -> AppResult<Vec<u8>> {
    crate::api::recovery::digest_field("digest", text)
}
