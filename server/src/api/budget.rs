//! Per-address budgets, one per class of route, so that a burst of one kind (a shelter's
//! computers all logging in at nine, a worker creating accounts) does not spend another
//! kind's budget, and a guesser of one kind gets no more tries by switching route.
//!
//! The budget is keyed on the client address ([`crate::client`]: behind a trusted
//! proxy, the address the proxy forwarded), counted in the records so that every
//! server process shares it.

use crate::Limits;

/// Window of every budget.
pub const WINDOW_SECONDS: u64 = 60;

/// A class of routes sharing one per-address budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// `/login/…`: password guesses.
    Login,
    /// `/registrations/start`, `/workers`, `/beneficiaries`: account creation.
    Registration,
    /// `/recovery/…`: the recovery code and requests through referents.
    Recovery,
    /// `/links/…`: anonymous visitors opening links.
    Links,
    /// Anything else that counts attempts.
    Other,
}

impl Budget {
    /// The class of an API path (with or without its `/v1` prefix).
    pub fn of_path(path: &str) -> Self {
        let path = path.strip_prefix("/v1").unwrap_or(path);
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "login" => Self::Login,
            "registrations" | "workers" | "beneficiaries" => Self::Registration,
            "recovery" => Self::Recovery,
            "links" => Self::Links,
            _ => Self::Other,
        }
    }

    /// Attempts per address per [`WINDOW_SECONDS`].
    pub fn limit(self, limits: &Limits) -> u32 {
        match self {
            Self::Login | Self::Other => limits.login_attempts_per_ip_per_minute,
            Self::Registration => limits.registrations_per_ip_per_minute,
            Self::Recovery => limits.recovery_attempts_per_ip_per_minute,
            Self::Links => limits.link_openings_per_ip_per_minute,
        }
    }

    /// The name in the records' rate keys (`ip:<name>:<address>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Registration => "registration",
            Self::Recovery => "recovery",
            Self::Links => "links",
            Self::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_throttled_route_has_its_class() {
        for (path, class) in [
            ("/v1/login/start", Budget::Login),
            ("/v1/registrations/start", Budget::Registration),
            ("/v1/workers", Budget::Registration),
            ("/v1/beneficiaries", Budget::Registration),
            ("/v1/recovery/lookup", Budget::Recovery),
            ("/v1/recovery/start", Budget::Recovery),
            ("/v1/recovery/finish", Budget::Recovery),
            ("/v1/recovery/requests", Budget::Recovery),
            ("/v1/recovery/requests/abc/release", Budget::Recovery),
            ("/v1/recovery/cancel", Budget::Recovery),
            ("/links/abc", Budget::Links),
            ("/v1/keys/someone", Budget::Other),
        ] {
            assert_eq!(Budget::of_path(path), class, "{path}");
        }
    }
}
