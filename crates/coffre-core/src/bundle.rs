//! Key bundles: a person's private [`Identity`] sealed for storage on the server.
//!
//! Each account has up to three bundles holding the same identity:
//!
//! - a **passphrase** bundle, sealed under a key derived from OPAQUE's [`ExportKey`]. The
//!   server hands it out after a successful login; only the client, which knows the export
//!   key, can open it. HKDF is applied to the export key (already stretched by Argon2id
//!   inside OPAQUE), never to the passphrase itself (DESIGN.md, "Key bundle").
//! - a **recovery** bundle, sealed under a key derived from the printed
//!   [`RecoveryCode`] (128 random bits).
//! - a **referents** bundle, sealed under a key derived from a [`RecoverySecret`]
//!   (256 random bits) that k of n referents can rebuild from their shares
//!   ([`crate::referents`]).
//!
//! Changing the passphrase is a new OPAQUE registration (new export key) followed by
//! sealing the same identity again: the recipient, and so every envelope, stays valid.
//!
//! # Format (version 1)
//!
//! ```text
//! offset  size  field
//! 0       1     version = 0x01
//! 1       1     kind: 0x01 passphrase (export key), 0x02 recovery code,
//!               0x03 referents (recovery secret)
//! 2       12    nonce, random
//! 14      48    ChaCha20-Poly1305(key, nonce, identity's 32 secret bytes, ad) || 16-byte tag
//! ```
//!
//! 62 bytes in all. `key` = HKDF-SHA-256(salt = `BUNDLE_SALT_LABEL` || account id,
//! ikm = export key, info = `BUNDLE_EXPORT_KEY_LABEL`) for the passphrase kind, the
//! recovery code's bundle key for the recovery kind (see [`crate::recovery`]), and the
//! recovery secret's bundle key for the referents kind (see [`crate::referents`]).
//! `ad` = `BUNDLE_AD_LABEL` || version || kind || account id: a bundle moved to another
//! account, or relabelled with another version or kind, does not open.

use chacha20poly1305::{
    aead::{Aead, Payload},
    ChaCha20Poly1305, KeyInit, Nonce,
};
use zeroize::Zeroizing;

use crate::{
    identity::{Identity, KEY_BYTES},
    opaque::ExportKey,
    random::{random_array, RandomError},
    recovery::RecoveryCode,
    referents::RecoverySecret,
};

/// The only bundle format version.
pub const BUNDLE_VERSION: u8 = 1;
/// Length of a version 1 bundle.
pub const BUNDLE_BYTES: usize = 2 + NONCE_BYTES + KEY_BYTES + TAG_BYTES;
/// ChaCha20-Poly1305 nonce length.
const NONCE_BYTES: usize = 12;
/// Poly1305 tag length.
const TAG_BYTES: usize = 16;

/// HKDF salt prefix of the passphrase bundle key; the account id follows.
const BUNDLE_SALT_LABEL: &[u8] = b"coffre/v1/bundle/salt";
/// HKDF info of the passphrase bundle key.
const BUNDLE_EXPORT_KEY_LABEL: &[u8] = b"coffre/v1/bundle/export-key";
/// Prefix of the associated data.
const BUNDLE_AD_LABEL: &[u8] = b"coffre/v1/bundle/ad";

/// Which secret seals a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleKind {
    /// Sealed under the OPAQUE export key of the current passphrase.
    Passphrase,
    /// Sealed under the printed recovery code.
    Recovery,
    /// Sealed under the recovery secret that k of n referents can rebuild.
    Referents,
}

impl BundleKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Passphrase => 1,
            Self::Recovery => 2,
            Self::Referents => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Passphrase),
            2 => Some(Self::Recovery),
            3 => Some(Self::Referents),
            _ => None,
        }
    }
}

/// Why a key bundle could not be sealed, read or opened.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle does not have the length of its version.
    #[error("malformed key bundle: expected {expected} bytes, found {found}")]
    WrongLength {
        /// The length of a bundle.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// The first byte names a version this build does not know.
    #[error("unsupported key bundle version {0}")]
    UnsupportedVersion(u8),
    /// The second byte names no known kind (passphrase, recovery, referents).
    #[error("malformed key bundle: unknown kind {0}")]
    UnknownKind(u8),
    /// The bundle is of another kind than the key offered (e.g. a recovery bundle
    /// opened with an export key).
    #[error("this is a {found:?} key bundle, not a {expected:?} one")]
    WrongKind {
        /// The kind the key can open.
        expected: BundleKind,
        /// The kind of the bundle.
        found: BundleKind,
    },
    /// Wrong key, wrong account, or a tampered bundle. Which one is not told.
    #[error("the key bundle could not be opened (wrong key or account, or tampered)")]
    Authentication,
    /// The secure random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A sealed identity, as stored by the server.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBundle {
    kind: BundleKind,
    nonce: [u8; NONCE_BYTES],
    ciphertext: [u8; KEY_BYTES + TAG_BYTES],
}

impl KeyBundle {
    /// Seals `identity` under a key derived from the login's export key.
    pub fn seal_with_export_key(
        identity: &Identity,
        export_key: &ExportKey,
        account_id: &str,
    ) -> Result<Self, BundleError> {
        let key = derive_export_bundle_key(export_key, account_id);
        seal(identity, &key, BundleKind::Passphrase, account_id)
    }

    /// Opens a passphrase bundle with the export key of a successful login.
    pub fn open_with_export_key(
        &self,
        export_key: &ExportKey,
        account_id: &str,
    ) -> Result<Identity, BundleError> {
        self.check_kind(BundleKind::Passphrase)?;
        let key = derive_export_bundle_key(export_key, account_id);
        self.open(&key, account_id)
    }

    /// Seals `identity` under a key derived from a recovery code.
    pub fn seal_with_recovery_code(
        identity: &Identity,
        code: &RecoveryCode,
        account_id: &str,
    ) -> Result<Self, BundleError> {
        let key = code.derive_bundle_key(account_id);
        seal(identity, &key, BundleKind::Recovery, account_id)
    }

    /// Opens a recovery bundle with the recovery code.
    pub fn open_with_recovery_code(
        &self,
        code: &RecoveryCode,
        account_id: &str,
    ) -> Result<Identity, BundleError> {
        self.check_kind(BundleKind::Recovery)?;
        let key = code.derive_bundle_key(account_id);
        self.open(&key, account_id)
    }

    /// Seals `identity` under a key derived from the recovery secret that referents
    /// hold shares of.
    pub fn seal_with_recovery_secret(
        identity: &Identity,
        secret: &RecoverySecret,
        account_id: &str,
    ) -> Result<Self, BundleError> {
        // No key only if HKDF failed, which cannot happen (see `referents`); never seal
        // under a fallback key.
        let key = secret
            .derive_bundle_key(account_id)
            .ok_or(BundleError::Authentication)?;
        seal(identity, &key, BundleKind::Referents, account_id)
    }

    /// Opens a referents bundle with the recovery secret rebuilt from k shares.
    pub fn open_with_recovery_secret(
        &self,
        secret: &RecoverySecret,
        account_id: &str,
    ) -> Result<Identity, BundleError> {
        self.check_kind(BundleKind::Referents)?;
        let key = secret
            .derive_bundle_key(account_id)
            .ok_or(BundleError::Authentication)?;
        self.open(&key, account_id)
    }

    /// Which secret seals this bundle.
    pub fn kind(&self) -> BundleKind {
        self.kind
    }

    /// The [`BUNDLE_BYTES`] bytes to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BUNDLE_BYTES);
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Reads a stored bundle. Checks the layout only; [`KeyBundle::open_with_export_key`],
    /// [`KeyBundle::open_with_recovery_code`] or [`KeyBundle::open_with_recovery_secret`]
    /// authenticate it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BundleError> {
        let (&version, rest) = bytes.split_first().ok_or(BundleError::WrongLength {
            expected: BUNDLE_BYTES,
            found: 0,
        })?;
        // The version comes first so that a future, longer format is named as such.
        if version != BUNDLE_VERSION {
            return Err(BundleError::UnsupportedVersion(version));
        }
        if bytes.len() != BUNDLE_BYTES {
            return Err(BundleError::WrongLength {
                expected: BUNDLE_BYTES,
                found: bytes.len(),
            });
        }
        let (&kind, rest) = rest.split_first().ok_or(BundleError::WrongLength {
            expected: BUNDLE_BYTES,
            found: bytes.len(),
        })?;
        let kind = BundleKind::from_byte(kind).ok_or(BundleError::UnknownKind(kind))?;
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let malformed = |_| BundleError::WrongLength {
            expected: BUNDLE_BYTES,
            found: bytes.len(),
        };
        Ok(Self {
            kind,
            nonce: nonce.try_into().map_err(malformed)?,
            ciphertext: ciphertext.try_into().map_err(malformed)?,
        })
    }

    fn header(&self) -> [u8; 2] {
        [BUNDLE_VERSION, self.kind.to_byte()]
    }

    fn check_kind(&self, expected: BundleKind) -> Result<(), BundleError> {
        if self.kind != expected {
            return Err(BundleError::WrongKind {
                expected,
                found: self.kind,
            });
        }
        Ok(())
    }

    fn open(&self, key: &[u8; 32], account_id: &str) -> Result<Identity, BundleError> {
        let aad = associated_data(self.header(), account_id);
        let plain = Zeroizing::new(
            ChaCha20Poly1305::new(key.as_slice().into())
                .decrypt(
                    Nonce::from_slice(&self.nonce),
                    Payload {
                        msg: &self.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| BundleError::Authentication)?,
        );
        let bytes: Zeroizing<[u8; KEY_BYTES]> = Zeroizing::new(
            plain
                .as_slice()
                .try_into()
                .map_err(|_| BundleError::Authentication)?,
        );
        Ok(Identity::from_bytes(&bytes))
    }
}

impl core::fmt::Debug for KeyBundle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyBundle")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

fn seal(
    identity: &Identity,
    key: &[u8; 32],
    kind: BundleKind,
    account_id: &str,
) -> Result<KeyBundle, BundleError> {
    let nonce = random_array::<NONCE_BYTES>()?;
    let aad = associated_data([BUNDLE_VERSION, kind.to_byte()], account_id);
    let secret = identity.to_bytes();
    let sealed = ChaCha20Poly1305::new(key.as_slice().into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_slice(),
                aad: &aad,
            },
        )
        // Encryption fails only for messages over 256 GiB; 32 bytes never do.
        .map_err(|_| BundleError::Authentication)?;
    let ciphertext = sealed
        .as_slice()
        .try_into()
        .map_err(|_| BundleError::Authentication)?;
    Ok(KeyBundle {
        kind,
        nonce,
        ciphertext,
    })
}

fn associated_data(header: [u8; 2], account_id: &str) -> Vec<u8> {
    // The label and the header have fixed lengths, so the account id needs no length
    // prefix to be unambiguous.
    [BUNDLE_AD_LABEL, &header, account_id.as_bytes()].concat()
}

fn derive_export_bundle_key(export_key: &ExportKey, account_id: &str) -> Zeroizing<[u8; 32]> {
    let salt = [BUNDLE_SALT_LABEL, account_id.as_bytes()].concat();
    crate::kdf::hkdf_sha256(Some(&salt), export_key.expose(), BUNDLE_EXPORT_KEY_LABEL)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::opaque::{register_for_tests, test_ksf, ClientLogin, ServerSetup};
    use proptest::prelude::*;

    const ACCOUNT: &str = "amina.k";

    fn export_key(byte: u8) -> ExportKey {
        ExportKey::from_bytes([byte; 64])
    }

    #[test]
    fn seal_and_open_with_export_key() {
        let identity = Identity::generate().unwrap();
        let bundle = KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT).unwrap();
        let bytes = bundle.to_bytes();
        assert_eq!(bytes.len(), BUNDLE_BYTES);
        assert_eq!(&bytes[..2], &[1, 1]);
        let parsed = KeyBundle::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, bundle);
        assert_eq!(parsed.kind(), BundleKind::Passphrase);
        let opened = parsed
            .open_with_export_key(&export_key(1), ACCOUNT)
            .unwrap();
        assert_eq!(opened.to_recipient(), identity.to_recipient());
    }

    #[test]
    fn passphrase_change_keeps_the_identity() {
        // Real OPAQUE runs: registration, new registration with a new passphrase, login.
        let setup = ServerSetup::generate();
        let (_, old_export) = register_for_tests(&setup, b"old passphrase", b"amina.k", test_ksf());
        let identity = Identity::generate().unwrap();
        let old_bundle = KeyBundle::seal_with_export_key(&identity, &old_export, ACCOUNT).unwrap();

        // Open with the old passphrase, then re-register and re-seal.
        let id = old_bundle
            .open_with_export_key(&old_export, ACCOUNT)
            .unwrap();
        let (record, new_export) =
            register_for_tests(&setup, b"new passphrase", b"amina.k", test_ksf());
        assert_ne!(new_export.expose(), old_export.expose());
        let new_bundle = KeyBundle::seal_with_export_key(&id, &new_export, ACCOUNT).unwrap();

        // A later login with the new passphrase opens it: same recipient as before.
        let (client, request) = ClientLogin::start(b"new passphrase").unwrap();
        let (_, response) =
            crate::opaque::server_login_start(&setup, Some(&record), &request, b"amina.k").unwrap();
        let (_, _, login_export) = client
            .finish(b"new passphrase", &response, test_ksf())
            .unwrap();
        let stored = KeyBundle::from_bytes(&new_bundle.to_bytes()).unwrap();
        let reopened = stored.open_with_export_key(&login_export, ACCOUNT).unwrap();
        assert_eq!(reopened.to_recipient(), identity.to_recipient());
        // The old bundle no longer opens with the new key.
        assert_eq!(
            old_bundle
                .open_with_export_key(&login_export, ACCOUNT)
                .unwrap_err(),
            BundleError::Authentication
        );
    }

    #[test]
    fn recovery_code_opens_its_bundle() {
        let identity = Identity::generate().unwrap();
        let code = RecoveryCode::generate().unwrap();
        let bundle = KeyBundle::seal_with_recovery_code(&identity, &code, ACCOUNT).unwrap();
        assert_eq!(bundle.kind(), BundleKind::Recovery);
        // The code as typed back from paper.
        let typed: RecoveryCode = code.to_display_string().to_lowercase().parse().unwrap();
        let stored = KeyBundle::from_bytes(&bundle.to_bytes()).unwrap();
        let opened = stored.open_with_recovery_code(&typed, ACCOUNT).unwrap();
        assert_eq!(opened.to_recipient(), identity.to_recipient());
        let other = RecoveryCode::generate().unwrap();
        assert_eq!(
            stored.open_with_recovery_code(&other, ACCOUNT).unwrap_err(),
            BundleError::Authentication
        );
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let identity = Identity::generate().unwrap();
        let code = RecoveryCode::generate().unwrap();
        let recovery = KeyBundle::seal_with_recovery_code(&identity, &code, ACCOUNT).unwrap();
        assert_eq!(
            recovery
                .open_with_export_key(&export_key(1), ACCOUNT)
                .unwrap_err(),
            BundleError::WrongKind {
                expected: BundleKind::Passphrase,
                found: BundleKind::Recovery
            }
        );
        // Relabelling the kind byte is caught by the associated data.
        let passphrase =
            KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT).unwrap();
        let mut bytes = passphrase.to_bytes();
        bytes[1] = 2;
        let relabelled = KeyBundle::from_bytes(&bytes).unwrap();
        assert_eq!(
            relabelled
                .open_with_recovery_code(&code, ACCOUNT)
                .unwrap_err(),
            BundleError::Authentication
        );
    }

    #[test]
    fn recovery_secret_opens_its_bundle_only() {
        let identity = Identity::generate().unwrap();
        let secret = RecoverySecret::generate().unwrap();
        let account = "0123456789abcdef0123456789abcdef";
        let bundle = KeyBundle::seal_with_recovery_secret(&identity, &secret, account).unwrap();
        assert_eq!(bundle.kind(), BundleKind::Referents);
        let bytes = bundle.to_bytes();
        assert_eq!(bytes.len(), BUNDLE_BYTES);
        assert_eq!(&bytes[..2], &[1, 3]);
        let stored = KeyBundle::from_bytes(&bytes).unwrap();
        assert_eq!(stored, bundle);

        // The secret as rebuilt by two of three referents opens it.
        let shares = secret.split(2, 3).unwrap();
        let rebuilt = RecoverySecret::combine(&[shares[2].clone(), shares[0].clone()]).unwrap();
        let opened = stored.open_with_recovery_secret(&rebuilt, account).unwrap();
        assert_eq!(opened.to_bytes(), identity.to_bytes());

        let other = RecoverySecret::generate().unwrap();
        assert_eq!(
            stored
                .open_with_recovery_secret(&other, account)
                .unwrap_err(),
            BundleError::Authentication
        );
        assert_eq!(
            stored
                .open_with_recovery_secret(&secret, "fedcba9876543210fedcba9876543210")
                .unwrap_err(),
            BundleError::Authentication
        );
    }

    #[test]
    fn referents_bundles_and_the_others_are_not_interchangeable() {
        let identity = Identity::generate().unwrap();
        let secret = RecoverySecret::generate().unwrap();
        let code = RecoveryCode::generate().unwrap();
        let referents = KeyBundle::seal_with_recovery_secret(&identity, &secret, ACCOUNT).unwrap();
        let recovery = KeyBundle::seal_with_recovery_code(&identity, &code, ACCOUNT).unwrap();
        let passphrase =
            KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT).unwrap();
        assert_eq!(
            referents
                .open_with_recovery_code(&code, ACCOUNT)
                .unwrap_err(),
            BundleError::WrongKind {
                expected: BundleKind::Recovery,
                found: BundleKind::Referents
            }
        );
        assert_eq!(
            referents
                .open_with_export_key(&export_key(1), ACCOUNT)
                .unwrap_err(),
            BundleError::WrongKind {
                expected: BundleKind::Passphrase,
                found: BundleKind::Referents
            }
        );
        assert_eq!(
            recovery
                .open_with_recovery_secret(&secret, ACCOUNT)
                .unwrap_err(),
            BundleError::WrongKind {
                expected: BundleKind::Referents,
                found: BundleKind::Recovery
            }
        );
        assert_eq!(
            passphrase
                .open_with_recovery_secret(&secret, ACCOUNT)
                .unwrap_err(),
            BundleError::WrongKind {
                expected: BundleKind::Referents,
                found: BundleKind::Passphrase
            }
        );
        // Relabelling the kind byte, either way, is caught by the associated data.
        let mut bytes = recovery.to_bytes();
        bytes[1] = 3;
        assert_eq!(
            KeyBundle::from_bytes(&bytes)
                .unwrap()
                .open_with_recovery_secret(&secret, ACCOUNT)
                .unwrap_err(),
            BundleError::Authentication
        );
        let mut bytes = referents.to_bytes();
        bytes[1] = 2;
        assert_eq!(
            KeyBundle::from_bytes(&bytes)
                .unwrap()
                .open_with_recovery_code(&code, ACCOUNT)
                .unwrap_err(),
            BundleError::Authentication
        );
    }

    #[test]
    fn a_bundle_moved_to_another_account_does_not_open() {
        let identity = Identity::generate().unwrap();
        let bundle = KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT).unwrap();
        assert_eq!(
            bundle
                .open_with_export_key(&export_key(1), "amina.k2")
                .unwrap_err(),
            BundleError::Authentication
        );
        let code = RecoveryCode::generate().unwrap();
        let recovery = KeyBundle::seal_with_recovery_code(&identity, &code, ACCOUNT).unwrap();
        assert_eq!(
            recovery
                .open_with_recovery_code(&code, "someone")
                .unwrap_err(),
            BundleError::Authentication
        );
    }

    #[test]
    fn wrong_export_key_is_authentication_failure() {
        let identity = Identity::generate().unwrap();
        let bundle = KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT).unwrap();
        assert_eq!(
            bundle
                .open_with_export_key(&export_key(2), ACCOUNT)
                .unwrap_err(),
            BundleError::Authentication
        );
    }

    #[test]
    fn every_bit_flip_is_refused() {
        let identity = Identity::generate().unwrap();
        let bytes = KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT)
            .unwrap()
            .to_bytes();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = KeyBundle::from_bytes(&flipped)
                .and_then(|b| b.open_with_export_key(&export_key(1), ACCOUNT));
            let err = result.unwrap_err();
            match bit / 8 {
                0 => assert!(matches!(err, BundleError::UnsupportedVersion(_)), "{err:?}"),
                1 => assert!(
                    matches!(
                        err,
                        BundleError::UnknownKind(_) | BundleError::WrongKind { .. }
                    ),
                    "{err:?}"
                ),
                _ => assert_eq!(err, BundleError::Authentication),
            }
        }
    }

    #[test]
    fn truncation_and_version_are_parse_errors() {
        let identity = Identity::generate().unwrap();
        let bytes = KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT)
            .unwrap()
            .to_bytes();
        for len in 0..bytes.len() {
            let err = KeyBundle::from_bytes(&bytes[..len]).unwrap_err();
            assert_eq!(
                err,
                BundleError::WrongLength {
                    expected: BUNDLE_BYTES,
                    found: len
                }
            );
        }
        let longer = [bytes.as_slice(), &[0]].concat();
        assert!(matches!(
            KeyBundle::from_bytes(&longer),
            Err(BundleError::WrongLength { found: 63, .. })
        ));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            KeyBundle::from_bytes(&v2).unwrap_err(),
            BundleError::UnsupportedVersion(2)
        );
        let mut kind = bytes;
        kind[1] = 9;
        assert_eq!(
            KeyBundle::from_bytes(&kind).unwrap_err(),
            BundleError::UnknownKind(9)
        );
    }

    #[test]
    fn debug_shows_no_bytes() {
        let identity = Identity::generate().unwrap();
        let bundle = KeyBundle::seal_with_export_key(&identity, &export_key(1), ACCOUNT).unwrap();
        assert_eq!(format!("{bundle:?}"), "KeyBundle { kind: Passphrase, .. }");
    }

    proptest! {
        #[test]
        fn any_identity_round_trips(
            secret in any::<[u8; 32]>(),
            key in any::<[u8; 64]>(),
            code in any::<[u8; 16]>(),
            account in "\\PC{0,40}",
        ) {
            let identity = Identity::from_bytes(&secret);
            let export_key = ExportKey::from_bytes(key);
            let bundle = KeyBundle::seal_with_export_key(&identity, &export_key, &account).unwrap();
            let opened = KeyBundle::from_bytes(&bundle.to_bytes())
                .unwrap()
                .open_with_export_key(&export_key, &account)
                .unwrap();
            prop_assert_eq!(opened.to_bytes(), identity.to_bytes());

            let code = RecoveryCode::from_bytes(code);
            let bundle = KeyBundle::seal_with_recovery_code(&identity, &code, &account).unwrap();
            let opened = KeyBundle::from_bytes(&bundle.to_bytes())
                .unwrap()
                .open_with_recovery_code(&code, &account)
                .unwrap();
            prop_assert_eq!(opened.to_bytes(), identity.to_bytes());

            let secret = RecoverySecret::from_bytes(key[..32].try_into().unwrap());
            let bundle = KeyBundle::seal_with_recovery_secret(&identity, &secret, &account).unwrap();
            let opened = KeyBundle::from_bytes(&bundle.to_bytes())
                .unwrap()
                .open_with_recovery_secret(&secret, &account)
                .unwrap();
            prop_assert_eq!(opened.to_bytes(), identity.to_bytes());
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(bundle) = KeyBundle::from_bytes(&bytes) {
                let _ = bundle.open_with_export_key(&export_key(1), ACCOUNT);
            }
        }
    }
}
