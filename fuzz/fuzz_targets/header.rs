//! The age v1 header parser (`Header::parse`): never panics, and whatever it accepts is
//! canonical — written back from the parsed stanzas it gives the same bytes up to the MAC
//! (which needs the file key), the kept bytes equal the input, the same bytes parse the
//! same alone, and one byte less is "incomplete", not an error.
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run header` from the repository root.
#![no_main]

use coffre_core::format::header::{Header, HeaderError, HEADER_MAX_BYTES};
use coffre_core::FileKey;
use libfuzzer_sys::fuzz_target;

/// `' '`, 43 base64 characters of MAC and the line feed, after the `---` the MAC covers.
const MAC_LINE_TAIL_BYTES: usize = 1 + 43 + 1;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(header)) = Header::parse(data) else {
        return;
    };
    let len = header.encoded_len();
    let bytes = &data[..len];
    assert_eq!(header.to_bytes(), bytes);

    let key = FileKey::from_bytes([0x2a; 16]);
    let rebuilt = Header::new(header.stanzas.clone(), &key).to_bytes();
    assert_eq!(rebuilt.len(), len);
    let covered = len - MAC_LINE_TAIL_BYTES;
    assert_eq!(rebuilt[..covered], bytes[..covered]);
    // A MAC made with this key, and only that one, verifies.
    assert!(Header::parse(&rebuilt)
        .ok()
        .flatten()
        .is_some_and(|h| h.verify_mac(&key)));
    let _ = header.verify_mac(&key);

    assert_eq!(Header::parse(bytes), Ok(Some(header)));
    match Header::parse(&bytes[..len - 1]) {
        Ok(None) => {}
        Err(HeaderError::TooLarge) if len > HEADER_MAX_BYTES => {}
        other => panic!("a header without its last byte gave {other:?}"),
    }
});
