//! wasm-bindgen bindings over coffre-core: what the npm package in `pkg/` calls.
//!
//! Glue only: every rule of the format and protocol lives in coffre-core. Keys stay in
//! Rust objects (`Identity`), and JS holds handles it frees with `free()`. Errors cross
//! the boundary as JS `Error`s named `CoffreError` with a stable `code` ([`error`]).
//!
//! Built by `cargo xtask` (see `crates/xtask/src/wasm.rs`) with wasm-bindgen-cli at the
//! exact version pinned in the workspace, then wrapped by the hand-written JS in `pkg/`.
#![deny(missing_docs)]

pub mod account;
// Reference loops for `pkg/bench/` only: compiled into the separate bench module
// (`--features bench`, built by `cargo xtask bench`), never into the shipped one.
#[cfg(any(test, feature = "bench"))]
pub mod bench;
pub mod envelope;
pub mod error;
pub mod keys;
pub mod metadata;
pub mod referents;
pub mod stream;

pub use account::{Login, LoginResult, RecoveryCode, Registration, RegistrationResult};
pub use envelope::Envelope;
pub use error::{CoffreError, ErrorCode};
pub use keys::{Fingerprint, Identity, Recipient};
pub use metadata::Metadata;
pub use referents::{reshare_for_request, DealtShares, RecoverySecret, ShareCollector};
pub use stream::{decrypt, encrypt, Decryptor, Encryptor};
