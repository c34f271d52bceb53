//! Keys the server derives from its OPAQUE key file, one per purpose, so that no secret
//! serves two jobs. Each is HKDF-SHA-256 (RFC 5869) of the key file's bytes with its own
//! label as `info`; the key file stays outside the data directory, so none of these keys
//! is in the store or its backups.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use coffre_core::opaque::ServerSetup;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Label of the key that seals pending logins in the store.
const PENDING_LOGIN_LABEL: &[u8] = b"coffre/v1/server/pending-login";
/// Label of the key that tags links' download grants.
const LINK_GRANT_KEY_LABEL: &[u8] = b"coffre/v1/server/link-grant-key";
/// Label of the key behind the stand-in ids given for handles nobody has.
const STAND_IN_KEY_LABEL: &[u8] = b"coffre/v1/server/stand-in-key";
/// Bytes of a ChaCha20-Poly1305 nonce.
const NONCE_BYTES: usize = 12;

/// The key file's bytes, from which each purpose's key is derived when it is used.
#[derive(Clone)]
pub struct ServerKeys {
    ikm: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(..)")
    }
}

/// Sealing or opening server state failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The sealed value did not open: altered, truncated, bound to another id, or sealed
    /// under another key file.
    #[error("sealed server state does not authenticate")]
    Unauthentic,
    /// The OS random source failed.
    #[error("no randomness for a nonce")]
    Random,
    /// A key derivation or the cipher refused its input (cannot happen for these
    /// lengths; kept as an error rather than a panic).
    #[error("key derivation or cipher refused its input")]
    Primitive,
}

/// A 32-byte key for one purpose.
#[derive(Zeroize, ZeroizeOnDrop)]
struct PurposeKey([u8; 32]);

impl ServerKeys {
    /// The keys of this server setup.
    pub fn new(setup: &ServerSetup) -> Self {
        Self {
            ikm: setup.to_bytes(),
        }
    }

    fn derive(&self, label: &[u8]) -> Result<PurposeKey, SealError> {
        let mut key = PurposeKey([0u8; 32]);
        Hkdf::<Sha256>::new(None, &self.ikm)
            .expand(label, &mut key.0)
            .map_err(|_| SealError::Primitive)?;
        Ok(key)
    }

    /// An HMAC-SHA-256 under the links' grant key (a download grant's tag).
    pub fn link_grant_mac(&self) -> Result<Hmac<Sha256>, SealError> {
        let key = self.derive(LINK_GRANT_KEY_LABEL)?;
        <Hmac<Sha256> as Mac>::new_from_slice(&key.0).map_err(|_| SealError::Primitive)
    }

    /// A stand-in id for `value` (a handle nobody has) in `domain`: HMAC-SHA-256 under
    /// the stand-in key, cut to 16 bytes. The same at every call, and without the key
    /// file nobody can tell it from a random id.
    pub fn stand_in(&self, domain: &[u8], value: &[u8]) -> Result<[u8; 16], SealError> {
        let key = self.derive(STAND_IN_KEY_LABEL)?;
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&key.0).map_err(|_| SealError::Primitive)?;
        mac.update(&(domain.len() as u64).to_be_bytes());
        mac.update(domain);
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&tag[..16]);
        Ok(id)
    }

    /// Seals a pending login's OPAQUE state, bound to its login id: nonce || ciphertext.
    pub fn seal_pending_login(&self, login_id: &[u8], state: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self.derive(PENDING_LOGIN_LABEL)?;
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).map_err(|_| SealError::Random)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: state,
                    aad: login_id,
                },
            )
            .map_err(|_| SealError::Primitive)?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`ServerKeys::seal_pending_login`] sealed for the same login id.
    pub fn open_pending_login(
        &self,
        login_id: &[u8],
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealError::Unauthentic);
        }
        let key = self.derive(PENDING_LOGIN_LABEL)?;
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: login_id,
                },
            )
            .map(zeroize::Zeroizing::new)
            .map_err(|_| SealError::Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_purpose_has_its_own_key() {
        let setup = ServerSetup::generate();
        let keys = ServerKeys::new(&setup);
        let other = ServerKeys::new(&ServerSetup::generate());
        // Stand-ins: stable, per value, per domain, per key file.
        let a = keys.stand_in(b"recovery", b"amina").unwrap();
        assert_eq!(a, keys.stand_in(b"recovery", b"amina").unwrap());
        assert_ne!(a, keys.stand_in(b"recovery", b"amine").unwrap());
        assert_ne!(a, keys.stand_in(b"other", b"amina").unwrap());
        assert_ne!(a, other.stand_in(b"recovery", b"amina").unwrap());
        // Domain and value cannot slide into each other.
        assert_ne!(
            keys.stand_in(b"ab", b"c").unwrap(),
            keys.stand_in(b"a", b"bc").unwrap()
        );
        // No purpose key is the key file itself, nor another purpose's key.
        let grant = keys.link_grant_mac().unwrap().finalize().into_bytes();
        let with_file = <Hmac<Sha256> as Mac>::new_from_slice(&setup.to_bytes())
            .unwrap()
            .finalize()
            .into_bytes();
        assert_ne!(grant, with_file);
        let keyed = |label: &[u8]| keys.derive(label).unwrap().0;
        assert_ne!(keyed(LINK_GRANT_KEY_LABEL), keyed(STAND_IN_KEY_LABEL));
        assert_ne!(keyed(LINK_GRANT_KEY_LABEL), keyed(PENDING_LOGIN_LABEL));
        assert_eq!(
            grant,
            <Hmac<Sha256> as Mac>::new_from_slice(&keyed(LINK_GRANT_KEY_LABEL))
                .unwrap()
                .finalize()
                .into_bytes()
        );
    }

    #[test]
    fn pending_login_seal_is_bound_to_its_id_and_key() {
        let setup = ServerSetup::generate();
        let keys = ServerKeys::new(&setup);
        let sealed = keys.seal_pending_login(b"login-1", b"state bytes").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"state bytes"));
        assert_eq!(
            &*keys.open_pending_login(b"login-1", &sealed).unwrap(),
            b"state bytes"
        );
        // Another slot, another key file, a flipped bit, a truncation: refused.
        assert!(keys.open_pending_login(b"login-2", &sealed).is_err());
        let other = ServerKeys::new(&ServerSetup::generate());
        assert!(other.open_pending_login(b"login-1", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                keys.open_pending_login(b"login-1", &bad).is_err(),
                "bit flip at {i}"
            );
        }
        assert!(keys
            .open_pending_login(b"login-1", &sealed[..sealed.len() - 1])
            .is_err());
        assert!(keys.open_pending_login(b"login-1", &sealed[..5]).is_err());
    }

    #[test]
    fn purposes_get_different_keys() {
        let setup = ServerSetup::generate();
        let keys = ServerKeys::new(&setup);
        assert_ne!(
            keys.derive(PENDING_LOGIN_LABEL).unwrap().0,
            keys.derive(b"coffre/v1/server/other").unwrap().0
        );
    }
}
