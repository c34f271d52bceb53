//! HKDF-SHA-256 (RFC 5869) into fixed-size keys: the one place the format's keys are
//! expanded, so that no caller can discard `expand`'s result and keep a key that was
//! never written.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The most HKDF-SHA-256 gives: 255 blocks of 32 bytes (RFC 5869, section 2.3).
const MAX_OUTPUT: usize = 255 * 32;

/// `N` bytes of HKDF-SHA-256 of `ikm` under `salt` and `info`. `expand` refuses only an
/// output longer than [`MAX_OUTPUT`], which the compile-time check rules out for every
/// `N` this is used with.
pub(crate) fn hkdf_sha256<const N: usize>(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
) -> Zeroizing<[u8; N]> {
    const { assert!(N <= MAX_OUTPUT, "HKDF-SHA-256 cannot give that many bytes") };
    let mut out = Zeroizing::new([0u8; N]);
    if Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, out.as_mut_slice())
        .is_err()
    {
        refused_within_limit();
    }
    out
}

#[cold]
#[allow(clippy::panic)]
fn refused_within_limit() -> ! {
    // Not reachable while the hkdf crate keeps RFC 5869's limit: stop rather than hand
    // out an all-zero key.
    panic!("HKDF-SHA-256 refused an output length within its limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869, appendix A.1 (test case 1): the helper is plain HKDF-SHA-256.
    #[test]
    fn rfc5869_test_case_1() {
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256::<42>(Some(&salt), &ikm, &info);
        assert_eq!(
            hex::encode(okm.as_slice()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
             34007208d5b887185865"
        );
    }

    /// RFC 5869, appendix A.3 (test case 3): no salt and no info.
    #[test]
    fn rfc5869_test_case_3() {
        let okm = hkdf_sha256::<42>(None, &[0x0b; 22], &[]);
        assert_eq!(
            hex::encode(okm.as_slice()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d\
             9d201395faa4b61a96c8"
        );
    }
}
