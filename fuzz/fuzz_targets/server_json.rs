//! The JSON bodies of the HTTP API, read as the handlers read them (axum's `Json`, which
//! `ApiJson` wraps) into the request types of server/src/api, then given to the same
//! field checks the handlers run before touching the store: ids, handles, base64 fields,
//! OPAQUE uploads, key bundles, envelopes, sealed shares, digests. The first byte picks
//! the body type. None of it may panic.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run server_json` from the repository root.
#![no_main]

use axum::Json;
use coffre_core::bundle::BundleKind;
use coffre_core::Recipient;
use coffre_server::api::accounts::{
    check_handle, LoginFinish, LoginStart, NewAccount, PassphraseFinish, PassphraseStart,
    RecoveryFinish, RecoveryLookup, RecoveryStart, RegisterBeneficiary, RegisterWorker,
    RegistrationStart,
};
use coffre_server::api::documents::CreateDocument;
use coffre_server::api::recovery::{
    ApproveBody, CancelWithCode, DealBody, FinishBody, NewKit, NewRequest, Proof, ReleaseBody,
};
use coffre_server::api::shares::{CreateLink, PutEnvelope};
use coffre_server::api::{check_envelope, decode_b64};
use coffre_server::fuzzing;
use coffre_server::store::Role;
use libfuzzer_sys::fuzz_target;

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    Json::<T>::from_bytes(bytes).ok().map(|Json(t)| t)
}

fn b64(text: &str) {
    let _ = decode_b64("field", text);
}

fn envelope(text: &str) {
    if let Ok(bytes) = decode_b64("envelope", text) {
        let _ = check_envelope(&bytes);
    }
}

fn bundle(text: &str, kind: BundleKind) {
    if let Ok(bytes) = decode_b64("bundle", text) {
        let _ = fuzzing::check_bundle(&bytes, kind);
    }
}

fn account(new: &NewAccount, role: Role) {
    if let Ok(account) = fuzzing::build_account(new, role) {
        // What is stored is what was checked.
        assert_eq!(check_handle(&new.handle).ok(), Some(account.handle));
    }
}

fn deal(deal: &DealBody) {
    bundle(&deal.bundle, BundleKind::Referents);
    let _ = fuzzing::digest_field(&deal.verifier);
    for share in &deal.shares {
        let _ = fuzzing::parse_id(&share.referent);
        let _ = fuzzing::digest_field(&share.commitment);
        if let Ok(bytes) = decode_b64("sealed_share", &share.sealed_share) {
            let _ = fuzzing::check_sealed_share(&bytes);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, json)) = data.split_first() else {
        return;
    };
    match kind % 22 {
        0 => body::<NewAccount>(json).map(|b| account(&b, Role::Beneficiary)),
        1 => body::<RegisterWorker>(json).map(|b| account(&b.account, Role::Worker)),
        2 => body::<RegisterBeneficiary>(json).map(|b| {
            account(&b.account, Role::Beneficiary);
            b.referents.as_ref().map(deal);
        }),
        3 => body::<RegistrationStart>(json).map(|b| b64(&b.registration_request)),
        4 => body::<PassphraseStart>(json).map(|b| b64(&b.registration_request)),
        5 => body::<PassphraseFinish>(json).map(|b| {
            let _ = fuzzing::re_registration(&b.registration_upload, &b.bundle);
        }),
        6 => body::<RecoveryLookup>(json).map(|b| {
            let _ = check_handle(&b.handle);
        }),
        7 => body::<RecoveryStart>(json).map(|b| {
            let _ = check_handle(&b.handle);
            b64(&b.recovery_token);
            b64(&b.registration_request);
        }),
        8 => body::<RecoveryFinish>(json).map(|b| {
            let _ = check_handle(&b.handle);
            b64(&b.recovery_token);
            let _ = fuzzing::re_registration(&b.registration_upload, &b.bundle);
        }),
        9 => body::<LoginStart>(json).map(|b| {
            let _ = check_handle(&b.handle);
            b64(&b.login_request);
        }),
        10 => body::<LoginFinish>(json).map(|b| {
            let _ = fuzzing::parse_id(&b.login_id);
            b64(&b.login_finalization);
        }),
        11 => body::<CreateDocument>(json).map(|b| {
            b64(&b.metadata);
            envelope(&b.envelope);
        }),
        12 => body::<PutEnvelope>(json).map(|b| envelope(&b.envelope)),
        13 => body::<CreateLink>(json).map(|b| envelope(&b.envelope)),
        14 => body::<NewRequest>(json).map(|b| {
            let _ = check_handle(&b.handle);
            let _ = b.ephemeral_key.parse::<Recipient>();
        }),
        15 => body::<Proof>(json).map(|b| b64(&b.proof)),
        16 => body::<CancelWithCode>(json).map(|b| {
            let _ = check_handle(&b.handle);
            b64(&b.recovery_token);
        }),
        17 => body::<ReleaseBody>(json).map(|b| {
            b64(&b.proof);
            b64(&b.registration_request);
        }),
        18 => body::<FinishBody>(json).map(|b| {
            b64(&b.proof);
            b64(&b.secret_token);
            let _ = fuzzing::re_registration(&b.registration_upload, &b.bundle);
            bundle(&b.recovery_bundle, BundleKind::Recovery);
            let _ = fuzzing::digest_field(&b.recovery_verifier);
            b.deal.as_ref().map(deal);
        }),
        19 => body::<NewKit>(json).map(|b| {
            bundle(&b.recovery_bundle, BundleKind::Recovery);
            let _ = fuzzing::digest_field(&b.recovery_verifier);
        }),
        20 => body::<ApproveBody>(json).map(|b| {
            if let Ok(bytes) = decode_b64("sealed_share", &b.sealed_share) {
                let _ = fuzzing::check_sealed_share(&bytes);
            }
        }),
        _ => body::<DealBody>(json).map(|b| deal(&b)),
    };
});
