//! Key bundles (`KeyBundle::from_bytes`): what the server stores and checks at
//! registration. Whatever parses writes back to the same bytes and keeps its kind byte;
//! opening it with a fixed recovery code or recovery secret (HKDF, no Argon2id) fails
//! cleanly or yields an identity.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run bundle` from the repository root.
#![no_main]

use std::sync::LazyLock;

use coffre_core::bundle::{BundleKind, KeyBundle};
use coffre_core::recovery::RecoveryCode;
use coffre_core::referents::{RecoverySecret, Share};
use libfuzzer_sys::fuzz_target;

const ACCOUNT_ID: &str = "00112233445566778899aabbccddeeff";

/// A code from a fixed 16 bytes: the recovery code's own encoding, read back.
static CODE: LazyLock<RecoveryCode> = LazyLock::new(|| {
    "qqqs-yqcy-q5rq-wzqf-pg9s-crgw-pudd-utwc"
        .parse()
        .expect("the fixed recovery code (bytes 0 to 15) is valid")
});

/// A 1-of-1 share's value is the secret itself.
static SECRET: LazyLock<RecoverySecret> = LazyLock::new(|| {
    let mut bytes = vec![1, 1, 1];
    bytes.extend_from_slice(&[0x5a; 32]);
    let share = Share::from_bytes(&bytes).expect("a 1-of-1 share");
    RecoverySecret::combine(&[share]).expect("one share of threshold 1")
});

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = KeyBundle::from_bytes(data) else {
        return;
    };
    assert_eq!(bundle.to_bytes(), data);
    let kind_byte = match bundle.kind() {
        BundleKind::Passphrase => 1,
        BundleKind::Recovery => 2,
        BundleKind::Referents => 3,
    };
    assert_eq!(data.get(1), Some(&kind_byte));
    let _ = bundle.open_with_recovery_code(&CODE, ACCOUNT_ID);
    let _ = bundle.open_with_recovery_secret(&SECRET, ACCOUNT_ID);
});
