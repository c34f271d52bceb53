//! Sealed document metadata (`open_metadata`). Random bytes never get past the AEAD, so
//! with the first byte odd the target seals the rest itself, as the format in
//! crates/coffre-core/src/metadata.rs documents it (HKDF-SHA-256 key from a fixed file key,
//! ChaCha20-Poly1305, zero padding to 256 bytes), and the decoder behind the tag is
//! fuzzed: whatever opens must seal again to the very same plaintext (one encoding per
//! value) and open to the same value. With the first byte even the rest is given to
//! `open_metadata` as is (the layout checks before the AEAD).
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run metadata` from the repository root.
#![no_main]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use coffre_core::metadata::{open_metadata, seal_metadata, METADATA_VERSION, PAD_BLOCK_BYTES};
use coffre_core::FileKey;
use hkdf::Hkdf;
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const FILE_KEY: [u8; 16] = [0x17; 16];
const NONCE_BYTES: usize = 12;
const KEY_LABEL: &[u8] = b"coffre/v1/metadata/key";
const AD_LABEL: &[u8] = b"coffre/v1/metadata/ad";

fn cipher() -> ChaCha20Poly1305 {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, &FILE_KEY)
        .expand(KEY_LABEL, &mut key)
        .expect("32 bytes of HKDF-SHA-256");
    ChaCha20Poly1305::new(&key.into())
}

fn ad() -> Vec<u8> {
    [AD_LABEL, &[METADATA_VERSION]].concat()
}

fuzz_target!(|data: &[u8]| {
    let file_key = FileKey::from_bytes(FILE_KEY);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let _ = open_metadata(rest, &file_key);
        return;
    }
    let mut plain = rest.to_vec();
    plain.resize(
        rest.len().div_ceil(PAD_BLOCK_BYTES).max(1) * PAD_BLOCK_BYTES,
        0,
    );
    let nonce = [0u8; NONCE_BYTES];
    let sealed_body = cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &ad(),
            },
        )
        .expect("ChaCha20-Poly1305 seals");
    let mut sealed = vec![METADATA_VERSION];
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&sealed_body);
    let Ok(metadata) = open_metadata(&sealed, &file_key) else {
        return;
    };
    let resealed = seal_metadata(&metadata, &file_key).expect("opened metadata seals again");
    let (nonce, body) = resealed[1..].split_at(NONCE_BYTES);
    let replain = cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &ad(),
            },
        )
        .expect("the documented key and associated data open what seal_metadata wrote");
    assert_eq!(replain, plain, "metadata with two encodings");
    assert_eq!(open_metadata(&resealed, &file_key), Ok(metadata));
});
