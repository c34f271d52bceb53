//! Referent recovery shares (`Share::from_bytes`, `RecoverySecret::combine`). Whatever
//! parses writes back to the same bytes and keeps its threshold and index, and checks
//! against its own commitment; the input cut into share-sized pieces is combined, and a
//! combination that succeeds gives the same secret from its shares in reverse order.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run share` from the repository root.
#![no_main]

use coffre_core::referents::{RecoverySecret, Share, SHARE_BYTES};
use libfuzzer_sys::fuzz_target;

const ACCOUNT_ID: &str = "00112233445566778899aabbccddeeff";

fuzz_target!(|data: &[u8]| {
    if let Ok(share) = Share::from_bytes(data) {
        assert_eq!(share.to_bytes().as_slice(), data);
        assert_eq!((share.threshold(), share.index()), (data[1], data[2]));
        let commitment = share.commitment(ACCOUNT_ID);
        assert!(share.check(ACCOUNT_ID, &commitment).is_ok());
        assert!(share.check("another account", &commitment).is_err());
        assert!(share.check(ACCOUNT_ID, &commitment[1..]).is_err());
    }
    let shares: Vec<Share> = data
        .chunks(SHARE_BYTES)
        .filter_map(|piece| Share::from_bytes(piece).ok())
        .collect();
    if let Ok(secret) = RecoverySecret::combine(&shares) {
        let used = usize::from(shares[0].threshold());
        let mut reversed = shares[..used].to_vec();
        reversed.reverse();
        assert_eq!(RecoverySecret::combine(&reversed).ok(), Some(secret));
    }
});
