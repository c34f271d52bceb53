//! The X25519 recipient stanza (c2sp.org/age, "The X25519 recipient type").
//!
//! ```text
//! -> X25519 base64(ephemeral share)
//! base64(ChaCha20-Poly1305(wrap key, nonce 0, file key))
//! wrap key = HKDF-SHA-256(ikm = shared secret, salt = ephemeral share || recipient,
//!                         info = "age-encryption.org/v1/X25519")
//! ```

use chacha20poly1305::{aead::Aead, ChaCha20Poly1305, KeyInit, Nonce};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::header::{decode_canonical, encode_b64, HeaderError, Stanza};
use crate::identity::{Identity, Recipient, KEY_BYTES};
use crate::keys::{FileKey, FILE_KEY_BYTES};
use crate::random::{random_array, RandomError};

/// Stanza tag of the X25519 recipient type.
pub const X25519_TAG: &str = "X25519";
/// HKDF info of the wrap key.
const X25519_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
/// Poly1305 tag length.
const TAG_BYTES: usize = 16;
/// A wrapped file key: 16 bytes of key and a 16-byte tag.
pub const WRAPPED_KEY_BYTES: usize = FILE_KEY_BYTES + TAG_BYTES;

/// Wraps `file_key` to `recipient` with a fresh ephemeral key.
pub fn wrap(file_key: &FileKey, recipient: &Recipient) -> Result<Stanza, RandomError> {
    let ephemeral = StaticSecret::from(*Zeroizing::new(random_array::<KEY_BYTES>()?));
    let share = PublicKey::from(&ephemeral);
    let shared = Zeroizing::new(ephemeral.diffie_hellman(recipient.public()).to_bytes());
    // A recipient is a public key someone handed us; a low-order one gives an all-zero
    // secret, which the reader would refuse. Draw no conclusion here: the reader checks.
    let key = wrap_key(&shared, share.as_bytes(), recipient.public().as_bytes());
    let body = ChaCha20Poly1305::new(key.as_slice().into())
        .encrypt(&Nonce::default(), file_key.expose().as_slice())
        .map_err(|_| RandomError)?;
    Ok(Stanza {
        tag: X25519_TAG.to_owned(),
        args: vec![encode_b64(share.as_bytes())],
        body,
    })
}

/// The share and wrapped key of a structurally valid X25519 stanza.
pub struct ParsedStanza {
    share: [u8; KEY_BYTES],
    body: [u8; WRAPPED_KEY_BYTES],
}

/// Checks an `X25519` stanza's shape: one canonical 32-byte share, a 32-byte body.
pub fn parse(stanza: &Stanza) -> Result<ParsedStanza, HeaderError> {
    let [share] = stanza.args.as_slice() else {
        return Err(HeaderError::MalformedX25519Stanza);
    };
    let share: [u8; KEY_BYTES] = decode_canonical(share.as_bytes())
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(HeaderError::MalformedX25519Stanza)?;
    let body: [u8; WRAPPED_KEY_BYTES] = stanza
        .body
        .as_slice()
        .try_into()
        .map_err(|_| HeaderError::MalformedX25519Stanza)?;
    Ok(ParsedStanza { share, body })
}

/// Why an X25519 stanza could not be opened by an identity that tried.
#[derive(Debug, PartialEq, Eq)]
pub enum UnwrapError {
    /// The shared secret is all zeros (a low-order share): the file is invalid.
    ZeroSharedSecret,
}

/// Tries to unwrap the file key with `identity`. `Ok(None)` means "not for this identity".
pub fn unwrap(stanza: &ParsedStanza, identity: &Identity) -> Result<Option<FileKey>, UnwrapError> {
    let share = PublicKey::from(stanza.share);
    let shared = identity.secret().diffie_hellman(&share);
    if !shared.was_contributory() {
        return Err(UnwrapError::ZeroSharedSecret);
    }
    let shared = Zeroizing::new(shared.to_bytes());
    let recipient = identity.to_recipient();
    let key = wrap_key(&shared, &stanza.share, recipient.public().as_bytes());
    let Ok(plain) = ChaCha20Poly1305::new(key.as_slice().into())
        .decrypt(&Nonce::default(), stanza.body.as_slice())
    else {
        return Ok(None);
    };
    let plain = Zeroizing::new(plain);
    let bytes: [u8; FILE_KEY_BYTES] = match plain.as_slice().try_into() {
        Ok(bytes) => bytes,
        Err(_) => return Ok(None),
    };
    Ok(Some(FileKey::from_bytes(bytes)))
}

fn wrap_key(
    shared: &[u8; KEY_BYTES],
    share: &[u8; KEY_BYTES],
    recipient: &[u8; KEY_BYTES],
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 2 * KEY_BYTES];
    salt[..KEY_BYTES].copy_from_slice(share);
    salt[KEY_BYTES..].copy_from_slice(recipient);
    crate::kdf::hkdf_sha256(Some(&salt), shared, X25519_LABEL)
}
