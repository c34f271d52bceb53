//! The one source of randomness: `getrandom` (OS on native, `crypto.getRandomValues` in the
//! browser). DESIGN.md forbids any other.

/// The platform's secure random source failed or is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secure random source is unavailable")]
pub struct RandomError;

/// Fills a fresh array with secure random bytes.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).map_err(|_| RandomError)?;
    Ok(out)
}
