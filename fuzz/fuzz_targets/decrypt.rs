//! Whole age files through the push decryptor (`Decryptor`): fed in pieces whose sizes the
//! input chooses, it must give the same answer as the one-shot `decrypt` — the same
//! plaintext when both succeed, and never success for one and failure for the other.
//! The identity is the c2sp.org/age test vectors' one, so seeds from
//! crates/coffre-core/tests/testdata/cctv/ reach the STREAM payload.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run decrypt` from the repository root.
#![no_main]

use std::sync::LazyLock;

use coffre_core::{decrypt, Decryptor, Identity};
use libfuzzer_sys::fuzz_target;

static IDENTITY: LazyLock<Vec<Identity>> = LazyLock::new(|| {
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"
        .parse()
        .map(|identity| vec![identity])
        .unwrap_or_default()
});

fuzz_target!(|data: &[u8]| {
    // The first byte sets the piece size (1 to 256 bytes), the rest is the file.
    let Some((&step, file)) = data.split_first() else {
        return;
    };
    let step = usize::from(step) + 1;
    let whole = decrypt(file, &IDENTITY);

    let mut decryptor = Decryptor::new(&IDENTITY);
    let mut streamed = Vec::new();
    let mut pushed = Ok(());
    for piece in file.chunks(step) {
        pushed = decryptor.push(piece, &mut streamed);
        if pushed.is_err() {
            break;
        }
    }
    let finished = pushed.and_then(|()| decryptor.finish(&mut streamed));
    match (&whole, &finished) {
        (Ok(plain), Ok(())) => assert_eq!(plain, &streamed),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "one-shot {:?} but streamed {:?}",
            whole.map(|p| p.len()),
            finished
        ),
    }
});
