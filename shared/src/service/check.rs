//! The license checks shared by validate and heartbeat, in their one documented order.
//!
//! Order (first failure wins): `INVALID_KEY` (signature, algorithm, issuer, kind, customer) →
//! `NOT_FOUND` → `REVOKED` → `SUSPENDED` → `EXPIRED` → `DOMAIN_MISMATCH` → `FEATURE_NOT_ENTITLED` →
//! `INSTALLATION_LIMIT` → `VALID`. Status checks come before expiry so a revoked license says
//! REVOKED even after it would have expired.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Feature, Hostname, License, LicenseStatus};
use crate::token::{KeyRejection, LicenseClaims};

/// The machine-readable answer of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// Every check passed.
    Valid,
    /// Malformed, badly signed, foreign, or not a license key.
    InvalidKey,
    /// Validly signed, but no such license is on record.
    NotFound,
    /// Permanently withdrawn.
    Revoked,
    /// Paused by an operator.
    Suspended,
    /// Past its expiry date.
    Expired,
    /// The domain is not allowed by the license (or none was sent to a restricted license).
    DomainMismatch,
    /// The feature asked about is not entitled.
    FeatureNotEntitled,
    /// Every installation seat is taken by other installations.
    InstallationLimit,
}

/// A failed check: its code and a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Machine-readable.
    pub code: Code,
    /// Human-readable; never contains the key.
    pub detail: String,
}

impl Verdict {
    pub(crate) fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn valid() -> Self {
        Self::new(Code::Valid, "the license is valid")
    }
}

impl From<KeyRejection> for Verdict {
    fn from(r: KeyRejection) -> Self {
        Self::new(Code::InvalidKey, r.to_string())
    }
}

/// The checks after signature verification and lookup, in order, up to (not including) seats.
pub fn check_license(
    claims: &LicenseClaims,
    license: &License,
    domain: Option<&Hostname>,
    feature: Option<&Feature>,
    now: OffsetDateTime,
) -> Result<(), Verdict> {
    if claims.cid != license.customer_id {
        return Err(Verdict::new(
            Code::InvalidKey,
            "the license key does not belong to this license",
        ));
    }
    match license.status {
        LicenseStatus::Revoked => {
            return Err(Verdict::new(Code::Revoked, "the license has been revoked"));
        }
        LicenseStatus::Suspended => {
            return Err(Verdict::new(Code::Suspended, "the license is suspended"));
        }
        LicenseStatus::Expired | LicenseStatus::Active => {}
    }
    let key_expired = now.unix_timestamp() >= claims.exp;
    if license.status == LicenseStatus::Expired || license.is_expired_at(now) || key_expired {
        return Err(Verdict::new(Code::Expired, "the license has expired"));
    }
    if !license.allows_domain(domain) {
        let detail = match domain {
            None => "the license is restricted to specific domains; send `domain`".to_owned(),
            Some(d) => format!("the license does not allow domain {d}"),
        };
        return Err(Verdict::new(Code::DomainMismatch, detail));
    }
    if let Some(f) = feature.filter(|f| !license.has_feature(f)) {
        return Err(Verdict::new(
            Code::FeatureNotEntitled,
            format!("the license does not include feature {f}"),
        ));
    }
    Ok(())
}

/// The verdict when an installation that holds no seat finds every seat taken.
pub fn seats_full(license: &License) -> Verdict {
    Verdict::new(
        Code::InstallationLimit,
        format!(
            "all {} installation seats of this license are in use",
            license.limits.installations
        ),
    )
}
