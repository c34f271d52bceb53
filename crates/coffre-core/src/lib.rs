//! Coffre's format and protocol, in pure Rust with no I/O.
//!
//! - Documents are age v1 files ([c2sp.org/age]) encrypted to X25519 recipients, with
//!   push-based streaming in both directions ([`Encryptor`], [`Decryptor`]).
//! - [`armor`] reads and writes age's ASCII armor (PEM); [`Decryptor`] recognises it.
//! - A document's header is split into per-recipient [`Envelope`]s so that sharing never
//!   touches the payload.
//! - [`Identity`] and [`Recipient`] use age's Bech32 encodings; [`Fingerprint`] gives
//!   words and digits that two people compare face to face.
//! - [`opaque`] is the one OPAQUE (RFC 9807) cipher suite that browser and server share;
//!   [`bundle`] seals an identity under the login's export key, a [`recovery`] code, or
//!   a recovery secret that k of n [`referents`] can rebuild from Shamir shares;
//!   [`metadata`] seals a document's name, type and category under its file key.
//!
//! The same crate builds for native targets and `wasm32-unknown-unknown`.
//!
//! ```
//! use coffre_core::{decrypt, encrypt, Envelope, Identity};
//! let owner = Identity::generate()?;
//! let worker = Identity::generate()?;
//!
//! // The owner encrypts for themself; the header is their envelope.
//! let file = encrypt(b"attestation d'hebergement", &[owner.to_recipient()])?;
//! let (own_envelope, payload) = Envelope::split(&file)?;
//!
//! // Sharing: a new envelope for the worker, same payload.
//! let for_worker = own_envelope.rewrap(&[owner], &worker.to_recipient())?;
//! let plain = decrypt(&for_worker.join(payload), &[worker])?;
//! assert_eq!(plain, b"attestation d'hebergement");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [c2sp.org/age]: https://c2sp.org/age
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod armor;
pub mod bundle;
mod decrypt;
mod encrypt;
mod envelope;
pub mod fingerprint;
pub mod format;
mod identity;
mod kdf;
mod keys;
pub mod metadata;
pub mod opaque;
mod random;
pub mod recovery;
pub mod referents;

pub use decrypt::{decrypt, DecryptError, Decryptor};
pub use encrypt::{encrypt, EncryptError, Encryptor};
pub use envelope::{Envelope, EnvelopeError};
pub use fingerprint::Fingerprint;
pub use identity::{
    parse_identity_file, parse_recipients_file, Identity, KeyError, Recipient, IDENTITY_HRP,
    KEY_BYTES, RECIPIENT_HRP,
};
pub use keys::{FileKey, FILE_KEY_BYTES};
pub use random::RandomError;
