//! Reference points for `pkg/bench/`: the same work as the public API, done entirely
//! inside wasm, so the benchmark can show what the JS boundary costs. Only in the bench
//! module (cargo feature `bench`, `pkg/bench/gen/`): the shipped package does not carry
//! these exports.

use coffre_core::opaque::KsfParams;
use wasm_bindgen::prelude::*;

use crate::error::CoffreError;
use crate::keys::parse_recipients;

/// Encrypts `total` zero bytes in pieces of `piece` bytes with one Encryptor, reusing one
/// output buffer and never crossing to JS; returns the ciphertext length.
#[doc(hidden)]
#[wasm_bindgen(js_name = benchEncryptInWasm)]
pub fn bench_encrypt_in_wasm(
    recipient: String,
    total: usize,
    piece: usize,
) -> Result<usize, CoffreError> {
    let recipients = parse_recipients(&[recipient])?;
    let mut enc = coffre_core::Encryptor::new(&recipients)?;
    let input = vec![0u8; piece.max(1)];
    let mut out = Vec::with_capacity(piece + 4096);
    let mut written = 0;
    let mut left = total;
    while left > 0 {
        let n = left.min(input.len());
        enc.push(&input[..n], &mut out)?;
        written += out.len();
        out.clear();
        left -= n;
    }
    enc.finish(&mut out)?;
    Ok(written + out.len())
}

/// Runs Coffre's login key stretching (Argon2id at KSF version `ksf_version`) once on a
/// fixed input; returns the first output byte.
#[doc(hidden)]
#[wasm_bindgen(js_name = benchArgon2id)]
pub fn bench_argon2id(ksf_version: u16) -> Result<u8, CoffreError> {
    let argon2 = KsfParams::from_version(ksf_version)?.argon2()?;
    let mut out = [0u8; 64];
    argon2
        .hash_password_into(
            b"correct horse battery staple",
            b"coffre-bench-salt",
            &mut out,
        )
        .map_err(|_| CoffreError::from_code(crate::error::ErrorCode::KeyStretchingFailed))?;
    Ok(out[0])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn in_wasm_encryption_has_the_age_length() {
        let id = coffre_core::Identity::generate().unwrap();
        let n = bench_encrypt_in_wasm(id.to_recipient().to_string(), 200_000, 65_536).unwrap();
        // Header (one X25519 stanza, ~200 bytes), 16-byte nonce, 4 chunks with tags.
        assert!(n > 200_000 + 16 + 4 * 16 && n < 200_000 + 400);
    }
}
