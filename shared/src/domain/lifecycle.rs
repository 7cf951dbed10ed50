//! Lifecycle notices: what the scheduled job tells customers (expiry warnings, expiry, usage
//! warnings), when each threshold is due, and the idempotency id that makes every notice
//! recognisable however often it is (re)sent.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::ids::{CustomerId, Feature, LicenseId};

/// Days before expiry at which a warning is due, most distant first.
pub const EXPIRY_WARNING_DAYS: [i64; 3] = [30, 7, 1];

/// Percent of a period's limit at which a usage warning is due, lowest first.
pub const USAGE_WARNING_PERCENTS: [u64; 2] = [80, 100];

/// The most urgent expiry-warning threshold (in days) due at `now`, if the license has not
/// expired yet: the smallest `T` with `expires_at - now ≤ T days`.
///
/// Only the most urgent one is due: a license issued 5 days before its expiry gets the 7-day
/// warning, never a belated 30-day one. Each threshold is sent at most once per expiry date
/// (the idempotency id carries the date), so renewing re-arms all three.
pub fn expiry_warning_due(expires_at: OffsetDateTime, now: OffsetDateTime) -> Option<i64> {
    let left = expires_at - now;
    if left <= Duration::ZERO {
        return None;
    }
    EXPIRY_WARNING_DAYS
        .iter()
        .rev()
        .copied()
        .find(|d| left <= Duration::days(*d))
}

/// The highest usage-warning threshold (percent) reached by `used` of `limit`, if any. A limit
/// of 0 (feature capped to nothing) never warns: there is nothing to approach.
pub fn usage_warning_due(used: u64, limit: u64) -> Option<u64> {
    if limit == 0 {
        return None;
    }
    let percent = u128::from(used) * 100 / u128::from(limit);
    USAGE_WARNING_PERCENTS
        .iter()
        .rev()
        .copied()
        .find(|p| percent >= u128::from(*p))
}

/// What a notice is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(tag = "type")]
pub enum NoticeKind {
    /// The license expires within `days` days.
    #[serde(rename = "license.expiry_warning")]
    #[strum(serialize = "license.expiry_warning")]
    ExpiryWarning {
        /// The threshold crossed (30, 7 or 1).
        days: i64,
    },
    /// The license passed its expiry (and its plan's grace) and is now `expired`.
    #[serde(rename = "license.expired")]
    #[strum(serialize = "license.expired")]
    Expired,
    /// A limited feature reached `percent` of its limit this period.
    #[serde(rename = "license.usage_warning")]
    #[strum(serialize = "license.usage_warning")]
    UsageWarning {
        /// The feature counted.
        feature: Feature,
        /// The period (`YYYY-MM`).
        period: String,
        /// The threshold crossed (80 or 100).
        percent: u64,
        /// Units used when the job looked.
        used: u64,
        /// The limit.
        limit: u64,
    },
}

impl NoticeKind {
    /// The event type name (`license.expiry_warning`, …).
    pub fn type_name(&self) -> &'static str {
        self.into()
    }

    /// The threshold, for subscribers that filter on it (days or percent).
    pub fn threshold(&self) -> Option<u64> {
        match self {
            Self::ExpiryWarning { days } => u64::try_from(*days).ok(),
            Self::Expired => None,
            Self::UsageWarning { percent, .. } => Some(*percent),
        }
    }
}

/// A notification as published: one structured event per notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// Same for every (re)send of the same notice: subscribers deduplicate on it.
    pub idempotency_id: String,
    /// What it is about (flattened: `type` plus its fields).
    #[serde(flatten)]
    pub kind: NoticeKind,
    /// The license.
    pub license_id: LicenseId,
    /// Its owner.
    pub customer_id: CustomerId,
    /// Where the owner wants notices (absent only if the customer record is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The threshold (days or percent), repeated at top level for filter policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// The license's expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the job decided to send it.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Notice {
    /// The deterministic id of a notice: kind, license, and what makes it unique over the
    /// license's life (the expiry date it is about, or the period).
    pub fn id_for(kind: &NoticeKind, license: &LicenseId, expires_at: OffsetDateTime) -> String {
        let exp = expires_at.unix_timestamp();
        match kind {
            NoticeKind::ExpiryWarning { days } => {
                format!("license.expiry_warning:{license}:{exp}:{days}d")
            }
            NoticeKind::Expired => format!("license.expired:{license}:{exp}"),
            NoticeKind::UsageWarning {
                feature,
                period,
                percent,
                ..
            } => format!("license.usage_warning:{license}:{feature}:{period}:{percent}"),
        }
    }
}

/// Where a notice stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    /// A run is sending it; another run may take over after `until` (the first one crashed).
    Claimed {
        /// End of the claim.
        until: OffsetDateTime,
    },
    /// Published and recorded.
    Sent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const EXP: OffsetDateTime = datetime!(2027-01-31 12:00 UTC);

    #[test]
    fn expiry_warnings_fall_due_at_30_7_and_1_days_and_only_the_most_urgent_one() {
        let at = |d: i64, h: i64| EXP - Duration::days(d) - Duration::hours(h);
        assert_eq!(expiry_warning_due(EXP, at(31, 0)), None);
        assert_eq!(expiry_warning_due(EXP, at(30, 1)), None);
        assert_eq!(expiry_warning_due(EXP, at(30, 0)), Some(30));
        assert_eq!(expiry_warning_due(EXP, at(8, 0)), Some(30));
        assert_eq!(expiry_warning_due(EXP, at(7, 0)), Some(7));
        assert_eq!(expiry_warning_due(EXP, at(2, 0)), Some(7));
        assert_eq!(expiry_warning_due(EXP, at(1, 0)), Some(1));
        assert_eq!(expiry_warning_due(EXP, at(0, 1)), Some(1));
        assert_eq!(expiry_warning_due(EXP, EXP), None);
        assert_eq!(expiry_warning_due(EXP, at(-1, 0)), None);
    }

    #[test]
    fn usage_warnings_fall_due_at_80_and_100_percent() {
        assert_eq!(usage_warning_due(79, 100), None);
        assert_eq!(usage_warning_due(80, 100), Some(80));
        assert_eq!(usage_warning_due(99, 100), Some(80));
        assert_eq!(usage_warning_due(100, 100), Some(100));
        assert_eq!(usage_warning_due(250, 100), Some(100));
        assert_eq!(usage_warning_due(4, 5), Some(80));
        assert_eq!(usage_warning_due(3, 5), None);
        assert_eq!(usage_warning_due(0, 0), None);
        assert_eq!(usage_warning_due(u64::MAX, u64::MAX), Some(100));
    }

    #[test]
    fn a_renewal_changes_every_expiry_notice_id_so_thresholds_re_arm() {
        let lid = LicenseId::parse("NECTAR-STARTER-2026-AAAAAAAA").expect("valid");
        let kind = NoticeKind::ExpiryWarning { days: 7 };
        let before = Notice::id_for(&kind, &lid, EXP);
        let after = Notice::id_for(&kind, &lid, EXP + Duration::days(365));
        assert_ne!(before, after);
        assert_eq!(before, Notice::id_for(&kind, &lid, EXP), "deterministic");
    }
}
