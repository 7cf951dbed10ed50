//! `POST /api/usage` and the usage statistics routes: the events an installation reports, the
//! per-event fates and problems it gets back, and the usage views.
//!
//! [`UsageRequest`] is generic over its events: installations send typed [`UsageEvent`]s, the
//! server reads each event as raw JSON first so one malformed event is reported by index instead
//! of failing the whole body.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codes::Code;
use crate::vocabulary::{Vocabulary, Wire};

/// Most events one `POST /api/usage` may carry.
pub const MAX_EVENTS: usize = 100;
/// Largest quantity one event may count.
pub const MAX_QUANTITY: u64 = 1_000_000;
/// Largest `metadata` object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 1024;

/// Largest quantity one event of `feature` may count: at most [`MAX_QUANTITY`], lower for the
/// features whose natural unit is small.
///
/// An event should count one action or a small batch of them (one workflow run, the API calls of
/// a minute). The ceiling bounds what a single forged or buggy event can charge: a stray
/// `quantity: 1000000` for `workflows` would exhaust any plan's monthly cap in one event, so the
/// server refuses it (`INVALID_QUANTITY`) and the agent refuses it before acknowledging it.
/// Unlisted features get [`MAX_QUANTITY`].
pub fn max_quantity(feature: &str) -> u64 {
    match feature {
        // A run is one event; a batch of a thousand runs is already a lot for one report.
        "workflows" => 1_000,
        // Calls arrive in bulk; a minute of a busy API fits.
        "api_calls" | "api_access" => 100_000,
        // A gauge-like amount (GB): larger than any plan's storage limit.
        "storage_gb" => 10_000,
        _ => MAX_QUANTITY,
    }
}

/// One usage event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageEvent {
    /// Idempotency key (see [`crate::rules::is_client_id`]): counted once however often sent.
    pub event_id: String,
    /// The feature used (see [`crate::rules::is_feature_name`]).
    pub feature: String,
    /// How much (1..=[`max_quantity`] of the feature).
    pub quantity: u64,
    /// When it happened; kept from acceptance, so late delivery keeps the real time.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub occurred_at: Option<OffsetDateTime>,
    /// A free-form object of at most [`MAX_METADATA_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /api/usage`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageRequest<E = UsageEvent, K = String> {
    /// The license key (see [`crate::licensing::ValidateRequest`] for `K`).
    pub license_key: K,
    /// 1..=[`MAX_EVENTS`] events.
    pub events: Vec<E>,
}

/// A per-event problem, as returned in `error.events` with a 400 `INVALID_EVENTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProblemView {
    /// Position in `events`.
    pub index: usize,
    /// The event's id, when it had a readable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Stable code.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

/// One event's fate in a usage answer (and in `error.events` of a 503).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStatusView {
    /// The event.
    pub event_id: String,
    /// `accepted` (queued; counted exactly once), `rejected` (never counted) or `failed` (not
    /// queued: send it again).
    pub status: String,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    /// Details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Usage of one feature in a period, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct FeatureUsageView<V: Vocabulary = Wire> {
    /// The feature.
    pub feature: V::Feature,
    /// Total counted this period.
    pub used: u64,
    /// Monthly cap (`null`: uncapped).
    pub limit: Option<u64>,
    /// What is left (`null`: uncapped).
    pub remaining: Option<u64>,
    /// Whether the cap is reached (`validate` then answers `USAGE_EXCEEDED` for it).
    pub exhausted: bool,
    /// Start of the period (UTC calendar month).
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    /// End of the period (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
    /// Per-day totals, day 1 first (only in statistics answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<Vec<u64>>,
}

/// `POST /api/usage` answer (202, or 503 when some events could not be queued).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct UsageResponse<V: Vocabulary = Wire> {
    /// The license.
    pub license_id: V::LicenseId,
    /// Events queued.
    pub accepted: usize,
    /// Events refused for this license.
    pub rejected: usize,
    /// Events not queued (retry them).
    pub failed: usize,
    /// Per event, in request order.
    pub events: Vec<EventStatusView>,
    /// This period's usage of the features touched, before these events are counted.
    pub usage: Vec<FeatureUsageView<V>>,
    /// Server time.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
}

/// `POST /api/usage/stats`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageStatsRequest<K = String> {
    /// The license key (see [`crate::licensing::ValidateRequest`] for `K`).
    pub license_key: K,
    /// `YYYY-MM` (default: the current month, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

/// Usage statistics answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct UsageStatsResponse<V: Vocabulary = Wire> {
    /// The license.
    pub license_id: V::LicenseId,
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period.
    #[serde(with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    /// End of the period (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
    /// Every entitled feature, with daily series.
    pub features: Vec<FeatureUsageView<V>>,
    /// Gauges summed over the active installations' latest readings.
    pub gauges: Vec<GaugeView>,
}

/// A gauge of a license, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaugeView {
    /// [`GAUGE_USERS`] or [`GAUGE_STORAGE_GB`].
    pub gauge: String,
    /// Sum over the active installations' latest readings.
    pub value: u64,
    /// The license's limit.
    pub limit: u64,
    /// Whether the sum is above the limit.
    pub over_limit: bool,
}

/// The gauge of named users (limit: `limits.users`).
pub const GAUGE_USERS: &str = "users";
/// The gauge of storage in GB (limit: `limits.storage_gb`).
pub const GAUGE_STORAGE_GB: &str = "storage_gb";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_ceiling_is_a_positive_quantity_within_the_global_maximum() {
        for feature in [
            "workflows",
            "api_calls",
            "api_access",
            "storage_gb",
            "sso",
            "anything_else",
        ] {
            let ceiling = max_quantity(feature);
            assert!(
                (1..=MAX_QUANTITY).contains(&ceiling),
                "{feature}: {ceiling}"
            );
        }
        assert_eq!(max_quantity("workflows"), 1_000);
        assert_eq!(max_quantity("api_access"), 100_000);
        assert_eq!(max_quantity("storage_gb"), 10_000);
        assert_eq!(max_quantity("integrations"), MAX_QUANTITY);
    }
}
