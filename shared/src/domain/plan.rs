//! The plan catalogue: each tier's default features and limits, in one typed table.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ids::Feature;

/// A commercial tier. A license starts from its plan's defaults and may override both.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Plan {
    /// Small teams, one installation.
    Starter,
    /// Growing teams with integrations.
    Professional,
    /// Everything, many installations.
    Enterprise,
}

/// Every feature the product knows. Issuing a license with a name outside this list is refused, so a
/// typo cannot silently grant nothing.
pub const KNOWN_FEATURES: &[&str] = &[
    "workflows",
    "api_access",
    "integrations",
    "analytics",
    "audit_logs",
    "sso",
    "custom_branding",
    "priority_support",
];

// Limits travel in keys, leases and views: the wire contract owns them.
pub use nectar_protocol::token::{LimitOverrides, Limits};

impl Plan {
    /// All plans, cheapest first.
    pub const ALL: &[Plan] = <Plan as strum::VariantArray>::VARIANTS;

    /// Parses the lower-case plan name used in the API (`starter`, …).
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }

    /// The lower-case plan name.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The upper-case segment used in license ids (the name, upper-cased).
    pub fn id_segment(self) -> String {
        self.name().to_ascii_uppercase()
    }

    /// Inverse of [`Plan::id_segment`].
    pub fn from_id_segment(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.id_segment() == raw)
    }

    /// Features granted when the license does not override them.
    pub fn default_features(self) -> BTreeSet<Feature> {
        let names: &[&str] = match self {
            Self::Starter => &["workflows", "api_access"],
            Self::Professional => &["workflows", "api_access", "integrations", "audit_logs"],
            Self::Enterprise => KNOWN_FEATURES,
        };
        names
            .iter()
            .filter_map(|n| Feature::parse(n).ok())
            .collect()
    }

    /// Limits granted when the license does not override them.
    pub fn default_limits(self) -> Limits {
        match self {
            Self::Starter => Limits {
                workflows_per_month: 1_000,
                users: 5,
                storage_gb: 10,
                installations: 1,
            },
            Self::Professional => Limits {
                workflows_per_month: 10_000,
                users: 25,
                storage_gb: 100,
                installations: 3,
            },
            Self::Enterprise => Limits {
                workflows_per_month: 100_000,
                users: 500,
                storage_gb: 1_000,
                installations: 10,
            },
        }
    }
}

/// Time-based rules of a plan: how long installations may work offline and how the lifecycle job
/// treats expiry and silence. One table so every consumer (heartbeat, lifecycle, agents through
/// lease claims) reads the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanPolicy {
    /// Lifetime of a lease signed at a heartbeat (capped by the license's own expiry).
    pub lease_ttl: time::Duration,
    /// After a lease expires, how long an offline installation keeps already-running work alive.
    pub offline_grace: time::Duration,
    /// After `expiresAt`, how long before the lifecycle job marks the license `expired`.
    pub expiry_grace: time::Duration,
    /// An installation silent for longer than this loses its seat (set `inactive`). Equal to the
    /// lease lifetime: a seat is never given away while its holder can still hold a valid lease.
    pub heartbeat_window: time::Duration,
}

/// Bounds on [`PlanPolicy::heartbeat_window`]: below an hour a single missed hourly beat would
/// cull; above 30 days dead installations hold seats for a whole billing period.
pub const HEARTBEAT_WINDOW_BOUNDS: (time::Duration, time::Duration) =
    (time::Duration::HOUR, time::Duration::days(30));

impl Plan {
    /// The plan's time rules.
    pub fn policy(self) -> PlanPolicy {
        let lease_ttl = time::Duration::hours(72);
        let (offline_grace, expiry_grace) = match self {
            Self::Starter => (time::Duration::hours(24), time::Duration::ZERO),
            Self::Professional => (time::Duration::hours(72), time::Duration::days(3)),
            Self::Enterprise => (time::Duration::days(7), time::Duration::days(7)),
        };
        PlanPolicy {
            lease_ttl,
            offline_grace,
            expiry_grace,
            heartbeat_window: lease_ttl.clamp(HEARTBEAT_WINDOW_BOUNDS.0, HEARTBEAT_WINDOW_BOUNDS.1),
        }
    }
}

/// Whether `feature` is one the product knows.
pub fn is_known_feature(feature: &Feature) -> bool {
    KNOWN_FEATURES.contains(&feature.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_feature_is_a_known_feature() {
        for &plan in Plan::ALL {
            let features = plan.default_features();
            assert!(!features.is_empty(), "{plan:?}");
            assert!(features.iter().all(is_known_feature), "{plan:?}");
        }
        assert_eq!(
            Plan::Enterprise.default_features().len(),
            KNOWN_FEATURES.len()
        );
    }

    #[test]
    fn plans_grow_monotonically_in_features_and_limits() {
        for pair in Plan::ALL.windows(2) {
            let (lo, hi) = (pair[0], pair[1]);
            assert!(lo.default_features().is_subset(&hi.default_features()));
            let (l, h) = (lo.default_limits(), hi.default_limits());
            assert!(l.workflows_per_month < h.workflows_per_month);
            assert!(l.installations < h.installations);
        }
    }

    #[test]
    fn no_plan_culls_an_installation_that_may_still_hold_a_valid_lease() {
        for &plan in Plan::ALL {
            let p = plan.policy();
            assert!(p.heartbeat_window >= p.lease_ttl, "{plan:?}");
            assert!(p.heartbeat_window >= HEARTBEAT_WINDOW_BOUNDS.0, "{plan:?}");
            assert!(p.heartbeat_window <= HEARTBEAT_WINDOW_BOUNDS.1, "{plan:?}");
        }
    }

    #[test]
    fn plan_names_and_id_segments_round_trip() {
        for &plan in Plan::ALL {
            assert_eq!(Plan::parse(plan.name()), Some(plan));
            assert_eq!(Plan::from_id_segment(&plan.id_segment()), Some(plan));
        }
        assert_eq!(Plan::parse("Enterprise"), None);
    }

    #[test]
    fn overrides_replace_only_the_given_limits() {
        let limits = Plan::Starter.default_limits().with(LimitOverrides {
            installations: Some(7),
            ..Default::default()
        });
        assert_eq!(limits.installations, 7);
        assert_eq!(limits.users, Plan::Starter.default_limits().users);
    }
}
