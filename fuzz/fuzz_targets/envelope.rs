//! Envelopes (`Envelope::parse`, `Envelope::split`, `Envelope::open`): what the server
//! stores for each recipient. Whatever parses keeps exactly the input's bytes; a split
//! joins back to the input, its envelope parses alone, and a file parses as an envelope
//! exactly when it splits with nothing after the header. Opening uses one fixed identity
//! (the c2sp.org/age test vectors'), so no KDF runs.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run envelope` from the repository root.
#![no_main]

use std::sync::LazyLock;

use coffre_core::{Envelope, Identity};
use libfuzzer_sys::fuzz_target;

static IDENTITY: LazyLock<Vec<Identity>> = LazyLock::new(|| {
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
        .parse()
        .map(|identity| vec![identity])
        .unwrap_or_default()
});

fuzz_target!(|data: &[u8]| {
    let parsed = Envelope::parse(data);
    if let Ok(envelope) = &parsed {
        assert_eq!(envelope.as_bytes(), data);
        let _ = envelope.open(&IDENTITY);
    }
    match Envelope::split(data) {
        Ok((envelope, payload)) => {
            assert_eq!(envelope.join(payload), data);
            assert_eq!(Envelope::parse(envelope.as_bytes()).as_ref(), Ok(&envelope));
            assert_eq!(parsed.is_ok(), payload.is_empty());
        }
        Err(_) => assert!(parsed.is_err()),
    }
});
