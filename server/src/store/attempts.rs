//! Login attempt budgets: how many guesses a login may cost, and from whom.
//!
//! A login start lets its client test one guess (KE2 answers the one passphrase blinded
//! in KE1), so every start is counted before KE2 leaves, and a successful finish gives
//! the attempt back. Nothing a stranger sends can shut a person out for good:
//!
//! - **Devices without a device credential** share the *handle's* budget, keyed by a
//!   digest of the handle whether or not an account has it (so the answers are the same
//!   for both, on every node and after a restart): a few attempts freely, then a growing
//!   wait between attempts, and at most [`AttemptPolicy::per_window`] counted attempts in
//!   a window of [`AttemptPolicy::window_seconds`]. When the budget is spent the answer is
//!   "try again at …", never a lock that only a worker can lift; a worker's unlock or the
//!   recovery code resets it at once.
//! - **A device credential** (issued at a successful login on a personal device) gives
//!   that device a budget of its own, by the same rules, so the person's phone keeps
//!   working whatever strangers send. After [`AttemptPolicy::forget_after`] attempts in a
//!   row without success the credential is forgotten and the device becomes a stranger.
//!
//! These are pure functions; each backend applies them inside one atomic step.

use serde::{Deserialize, Serialize};

use super::{Digest, Id};

/// The rules of one kind of budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// Attempts counted (not given back by a success) per window.
    pub per_window: u32,
    /// Length of a window (seconds), from its first attempt.
    pub window_seconds: u64,
    /// Attempts in a row without success that cost no wait.
    pub free_failures: u32,
    /// The wait after the first attempt beyond the free ones (seconds); it doubles with
    /// every further one.
    pub first_delay_seconds: u64,
    /// The longest wait between two attempts (seconds).
    pub max_delay_seconds: u64,
    /// Attempts in a row without success after which a device credential is forgotten.
    pub forget_after: u32,
}

impl Default for AttemptPolicy {
    /// 3 free tries, then 30 s, 1 min, 2 min … up to 1 h between tries, and at most 10
    /// counted tries per 24 h.
    fn default() -> Self {
        Self {
            per_window: 10,
            window_seconds: 24 * 3600,
            free_failures: 3,
            first_delay_seconds: 30,
            max_delay_seconds: 3600,
            forget_after: 10,
        }
    }
}

/// The state of one budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempts {
    /// Attempts since the last success or reset (the waits grow with it).
    pub failures: u32,
    /// Start of the current window (unix seconds; 0 before the first attempt).
    pub window_start: u64,
    /// Attempts counted in the current window and not given back.
    pub window_count: u32,
    /// No attempt is counted before this time (unix seconds).
    pub next_at: u64,
    /// From this time on the record says nothing a fresh one would not (its window is
    /// over and no wait runs), so the sweeper deletes it. (The waits then start from
    /// nothing again; the bound per window does not depend on them.)
    pub idle_at: u64,
}

/// An attempt refused: the budget allows the next one in `retry_after` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until an attempt would be counted again (at least 1).
    pub retry_after: u64,
}

impl Attempts {
    /// Counts one attempt at `now`, or refuses it. Returns the attempts the window still
    /// allows after this one.
    pub fn take(&mut self, now: u64, policy: &AttemptPolicy) -> Result<u32, Throttled> {
        if self.window_start == 0 || now >= self.window_end(policy) {
            self.window_start = now.max(1);
            self.window_count = 0;
        }
        let mut wait = 0;
        if self.window_count >= policy.per_window {
            wait = self.window_end(policy).saturating_sub(now);
        }
        if now < self.next_at {
            wait = wait.max(self.next_at - now);
        }
        if wait > 0 {
            return Err(Throttled { retry_after: wait });
        }
        self.window_count += 1;
        self.failures = self.failures.saturating_add(1);
        if self.failures >= policy.free_failures {
            let doublings = (self.failures - policy.free_failures).min(32);
            let delay = policy
                .first_delay_seconds
                .saturating_mul(1u64 << doublings)
                .min(policy.max_delay_seconds);
            self.next_at = now.saturating_add(delay);
        }
        self.idle_at = self.window_end(policy).max(self.next_at);
        Ok(policy.per_window - self.window_count)
    }

    /// A login counted at `started_at` succeeded: its attempt is given back (unless the
    /// window has moved on since), and the waits start from nothing again.
    pub fn succeeded(&mut self, started_at: u64) {
        if started_at >= self.window_start {
            self.window_count = self.window_count.saturating_sub(1);
        }
        self.failures = 0;
        self.next_at = 0;
    }

    /// When an attempt at `now` would be refused, the time it would be counted again.
    pub fn blocked_until(&self, now: u64, policy: &AttemptPolicy) -> Option<u64> {
        let mut probe = *self;
        probe
            .take(now, policy)
            .err()
            .map(|t| now.saturating_add(t.retry_after))
    }

    /// Whether a device credential with this budget is to be forgotten.
    pub fn forget_device(&self, policy: &AttemptPolicy) -> bool {
        self.failures >= policy.forget_after
    }

    fn window_end(&self, policy: &AttemptPolicy) -> u64 {
        self.window_start.saturating_add(policy.window_seconds)
    }
}

/// Domain separation of the handle budgets' keys.
const HANDLE_KEY_LABEL: &[u8] = b"coffre/v1/server/unknown-handle";

/// The key of a handle's budget: a SHA-256 of the (normalised) handle, the same whether
/// or not an account has it.
pub fn handle_key(handle: &str) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    Sha256::new()
        .chain_update(HANDLE_KEY_LABEL)
        .chain_update(handle.as_bytes())
        .finalize()
        .into()
}

/// The budget a login start was counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// The handle's budget, by [`handle_key`].
    Handle(Digest),
    /// A device credential's own budget, by the SHA-256 of its token.
    Device(Digest),
}

/// A device credential: a personal device that logged in successfully and keeps its own
/// attempt budget. Stored under the SHA-256 of its token, which only the device holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Whose device.
    pub account: Id,
    /// When it was issued (unix seconds).
    pub created_at: u64,
    /// Its last successful login (unix seconds).
    pub last_used_at: u64,
    /// Its own budget.
    pub attempts: Attempts,
}

/// A device credential unused for this long is forgotten by the sweeper.
pub const DEVICE_TTL_SECONDS: u64 = 180 * 24 * 3600;

/// Device credentials kept per account; issuing one more forgets the least recently used.
pub const MAX_DEVICES_PER_ACCOUNT: usize = 10;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    fn policy() -> AttemptPolicy {
        AttemptPolicy::default()
    }

    #[test]
    fn three_free_attempts_then_growing_waits() {
        let p = policy();
        let mut a = Attempts::default();
        assert_eq!(a.take(T0, &p), Ok(9));
        assert_eq!(a.take(T0, &p), Ok(8));
        assert_eq!(a.take(T0, &p), Ok(7));
        // The third failure in a row sets the first wait.
        assert_eq!(a.take(T0, &p), Err(Throttled { retry_after: 30 }));
        assert_eq!(a.take(T0 + 29, &p), Err(Throttled { retry_after: 1 }));
        assert_eq!(a.take(T0 + 30, &p), Ok(6));
        assert_eq!(a.take(T0 + 89, &p), Err(Throttled { retry_after: 1 }));
        assert_eq!(a.take(T0 + 90, &p), Ok(5));
        assert_eq!(a.next_at, T0 + 90 + 120);
    }

    #[test]
    fn at_most_per_window_counted_and_never_a_permanent_lock() {
        let p = policy();
        let mut a = Attempts::default();
        let mut now = T0;
        let mut counted = 0;
        // A stranger who always waits exactly as long as told.
        loop {
            match a.take(now, &p) {
                Ok(_) => counted += 1,
                Err(t) => {
                    if now + t.retry_after >= T0 + p.window_seconds {
                        break;
                    }
                    now += t.retry_after;
                }
            }
        }
        assert_eq!(counted, p.per_window);
        // The next window opens by itself.
        assert!(a.take(T0 + p.window_seconds, &p).is_ok());
    }

    #[test]
    fn waits_are_capped() {
        let p = AttemptPolicy {
            per_window: 1000,
            ..policy()
        };
        let mut a = Attempts::default();
        let mut now = T0;
        for _ in 0..100 {
            match a.take(now, &p) {
                Ok(_) => {}
                Err(t) => {
                    assert!(t.retry_after <= p.max_delay_seconds);
                    now += t.retry_after;
                }
            }
        }
    }

    #[test]
    fn a_success_gives_its_attempt_back_and_clears_the_waits() {
        let p = policy();
        let mut a = Attempts::default();
        for _ in 0..3 {
            a.take(T0, &p).unwrap();
        }
        a.take(T0 + 30, &p).unwrap();
        a.succeeded(T0 + 30);
        assert_eq!(a.failures, 0);
        assert_eq!(a.window_count, 3);
        assert_eq!(a.take(T0 + 31, &p), Ok(6));
        // A success counted in an older window gives nothing back in the new one.
        let mut b = Attempts::default();
        b.take(T0, &p).unwrap();
        b.take(T0 + p.window_seconds, &p).unwrap();
        b.succeeded(T0);
        assert_eq!(b.window_count, 1);
    }

    #[test]
    fn blocked_until_does_not_count() {
        let p = policy();
        let mut a = Attempts::default();
        assert_eq!(a.blocked_until(T0, &p), None);
        for _ in 0..3 {
            a.take(T0, &p).unwrap();
        }
        let before = a;
        assert_eq!(a.blocked_until(T0, &p), Some(T0 + 30));
        assert_eq!(a, before);
    }

    #[test]
    fn forgetting_devices_and_idle_records() {
        let p = AttemptPolicy {
            free_failures: 100,
            ..policy()
        };
        let mut a = Attempts::default();
        for _ in 0..9 {
            a.take(T0, &p).unwrap();
        }
        assert!(!a.forget_device(&p));
        a.take(T0, &p).unwrap();
        assert!(a.forget_device(&p));
        assert_eq!(a.idle_at, T0 + p.window_seconds);
        // A running wait keeps the record, even past its window.
        let q = AttemptPolicy {
            window_seconds: 60,
            ..policy()
        };
        let mut b = Attempts::default();
        for _ in 0..4 {
            let _ = b.take(T0, &q);
        }
        assert_eq!(b.idle_at, T0 + 60);
        b.take(T0 + 30, &q).unwrap();
        assert_eq!(b.idle_at, T0 + 30 + 60);
    }
}
