//! The answer to "may this installation use feature X now?", with the reason, computed from the
//! cached lease without any network call.

use nectar_protocol::Code;
use serde::{Deserialize, Serialize};

/// Why the installation is locked: a conclusive server verdict, persisted so a restart does not
/// lift it. Cleared only by a later heartbeat the server answers `VALID` (e.g. reinstated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockReason {
    /// Withdrawn permanently.
    Revoked,
    /// Paused by an operator.
    Suspended,
    /// The license's term is over.
    Expired,
    /// The server does not accept the key.
    InvalidKey,
    /// The server has no such license.
    NotFound,
    /// The license does not cover this installation's domain.
    DomainMismatch,
}

impl LockReason {
    /// The lock a server verdict imposes, if it is one that locks.
    pub fn from_code(code: Code) -> Option<Self> {
        Some(match code {
            Code::Revoked => Self::Revoked,
            Code::Suspended => Self::Suspended,
            Code::Expired => Self::Expired,
            Code::InvalidKey => Self::InvalidKey,
            Code::NotFound => Self::NotFound,
            Code::DomainMismatch => Self::DomainMismatch,
            Code::Valid
            | Code::FeatureNotEntitled
            | Code::UsageExceeded
            | Code::InstallationLimit => return None,
        })
    }

    /// The server verdict that imposed the lock.
    pub fn code(self) -> Code {
        match self {
            Self::Revoked => Code::Revoked,
            Self::Suspended => Code::Suspended,
            Self::Expired => Code::Expired,
            Self::InvalidKey => Code::InvalidKey,
            Self::NotFound => Code::NotFound,
            Self::DomainMismatch => Code::DomainMismatch,
        }
    }
}

/// A licensing decision. Only [`Decision::Allowed`] lets new work start; [`Decision::Grace`]
/// (returned only for work already running) lets it finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Entitled, under a valid lease.
    Allowed,
    /// The lease has expired but its grace period has not: running work may continue until
    /// `ends_at` (Unix seconds). Never returned for new work.
    Grace {
        /// End of the grace period.
        ends_at: i64,
    },
    /// The lease does not include the feature.
    NotEntitled,
    /// No verified lease yet (never reached the server, or the state was lost).
    NoLease,
    /// The lease has expired; `in_grace` says whether running work may still finish.
    LeaseExpired {
        /// Whether the grace period is still running.
        in_grace: bool,
    },
    /// The license term itself is over.
    LicenseExpired,
    /// The server said the license is not usable.
    Locked(LockReason),
    /// The local clock went back past the tolerance: time-based checks cannot be trusted.
    ClockTampered,
}

impl Decision {
    /// Whether the asked-for work may go on.
    pub fn is_allowed(self) -> bool {
        matches!(self, Self::Allowed | Self::Grace { .. })
    }

    /// A stable machine-readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Allowed => "ALLOWED",
            Self::Grace { .. } => "GRACE",
            Self::NotEntitled => "NOT_ENTITLED",
            Self::NoLease => "NO_LEASE",
            Self::LeaseExpired { in_grace: true } => "LEASE_EXPIRED_IN_GRACE",
            Self::LeaseExpired { in_grace: false } => "LEASE_EXPIRED",
            Self::LicenseExpired => "LICENSE_EXPIRED",
            Self::Locked(r) => r.code().as_str(),
            Self::ClockTampered => "CLOCK_TAMPERED",
        }
    }
}
