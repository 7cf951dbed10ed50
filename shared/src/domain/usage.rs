//! Usage metering: events, billing periods (calendar months in UTC), meters and their limits.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, Time};

use super::ids::{Feature, LicenseId, ParseError};
use super::plan::Limits;

/// The client's idempotency key for one usage event: 1..=128 chars of `[A-Za-z0-9._:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// Parses an event id.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if super::ids::is_client_id(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError::EventId)
        }
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(e: EventId) -> Self {
        e.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Installations report gauges on heartbeat: the wire contract owns their shape and names.
pub use nectar_protocol::licensing::Gauges;
use nectar_protocol::usage::{GAUGE_STORAGE_GB, GAUGE_USERS};

/// A license's gauge: the sum over its active installations, against its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaugeUsage {
    /// `users` or `storage_gb`.
    pub gauge: &'static str,
    /// Sum of the latest readings of the active installations.
    pub value: u64,
    /// The license's limit.
    pub limit: u64,
}

impl GaugeUsage {
    /// Whether the sum is above the limit.
    pub fn over_limit(&self) -> bool {
        self.value > self.limit
    }
}

/// Sums the latest readings of `installations` (active ones only) against `limits`.
pub fn gauge_usage<'a>(
    installations: impl IntoIterator<Item = &'a Gauges>,
    limits: &Limits,
) -> Vec<GaugeUsage> {
    let (mut users, mut storage) = (0u64, 0u64);
    for g in installations {
        users = users.saturating_add(g.users.unwrap_or(0));
        storage = storage.saturating_add(g.storage_gb.unwrap_or(0));
    }
    vec![
        GaugeUsage {
            gauge: GAUGE_USERS,
            value: users,
            limit: limits.users,
        },
        GaugeUsage {
            gauge: GAUGE_STORAGE_GB,
            value: storage,
            limit: limits.storage_gb,
        },
    ]
}

/// Largest quantity one event may carry: bounds the damage of a client bug.
pub use nectar_protocol::usage::MAX_QUANTITY;
/// Largest quantity one event of a given feature may carry (at most [`MAX_QUANTITY`]): bounds what
/// one forged or buggy event can charge.
pub use nectar_protocol::usage::max_quantity;

/// A billing period: one calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    month: Month,
}

impl Period {
    /// The month containing `t` (in UTC).
    pub fn containing(t: OffsetDateTime) -> Self {
        let utc = t.to_offset(time::UtcOffset::UTC);
        Self {
            year: utc.year(),
            month: utc.month(),
        }
    }

    /// Parses `YYYY-MM` (years 2000..=2999).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let (y, m) = raw.split_once('-').ok_or(ParseError::Period)?;
        let year: i32 = (y.len() == 4)
            .then(|| y.parse().ok())
            .flatten()
            .filter(|y| (2000..=2999).contains(y))
            .ok_or(ParseError::Period)?;
        let month: u8 = (m.len() == 2)
            .then(|| m.parse().ok())
            .flatten()
            .ok_or(ParseError::Period)?;
        let month = Month::try_from(month).map_err(|_| ParseError::Period)?;
        Ok(Self { year, month })
    }

    /// First instant of the period.
    pub fn start(self) -> OffsetDateTime {
        Date::from_calendar_date(self.year, self.month, 1)
            .map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// First instant after the period.
    pub fn end(self) -> OffsetDateTime {
        self.next().start()
    }

    /// The following month.
    pub fn next(self) -> Self {
        match self.month {
            Month::December => Self {
                year: self.year + 1,
                month: Month::January,
            },
            m => Self {
                year: self.year,
                month: m.next(),
            },
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

/// Whether `feature` has a monthly cap. Only `workflows` has one (`limits.workflows_per_month`);
/// other entitled features are counted without a cap.
pub fn is_capped(feature: &Feature) -> bool {
    feature.as_str() == "workflows"
}

/// The monthly limit that applies to usage of `feature`, if any.
pub fn monthly_limit(feature: &Feature, limits: &Limits) -> Option<u64> {
    is_capped(feature).then_some(limits.workflows_per_month)
}

/// One accepted usage event, as queued for counting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
    /// The license it counts against.
    pub license_id: LicenseId,
    /// Client idempotency key, unique per license.
    pub event_id: EventId,
    /// What was used.
    pub feature: Feature,
    /// How much (1..=[`max_quantity`] of the feature).
    pub quantity: u64,
    /// When it happened (defaults to when we received it); decides the period and day.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The client's own details (≤ 1 KiB), kept with the event for billing reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl UsageEvent {
    /// The period it counts in.
    pub fn period(&self) -> Period {
        Period::containing(self.occurred_at)
    }

    /// Day of month (1..=31, UTC) for the daily series.
    pub fn day(&self) -> u8 {
        self.occurred_at.to_offset(time::UtcOffset::UTC).day()
    }
}

/// Usage of one feature in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureUsage {
    /// The feature.
    pub feature: Feature,
    /// The period.
    pub period: Period,
    /// Total counted so far.
    pub used: u64,
    /// Monthly cap, if the feature has one.
    pub limit: Option<u64>,
    /// Per-day totals, index 0 = day 1 (days without usage are 0).
    pub daily: Vec<u64>,
}

impl FeatureUsage {
    /// What is left under the cap (0 once reached or passed); `None` without a cap.
    pub fn remaining(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.used))
    }

    /// Whether the cap is reached: further use of the feature is over the limit.
    pub fn exhausted(&self) -> bool {
        self.limit.is_some_and(|l| self.used >= l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn periods_are_utc_calendar_months() {
        let p = Period::containing(datetime!(2026-03-01 00:30 +01:00));
        assert_eq!(
            p.to_string(),
            "2026-02",
            "00:30 at +01:00 is still February in UTC"
        );
        assert_eq!(p.start(), datetime!(2026-02-01 0:00 UTC));
        assert_eq!(p.end(), datetime!(2026-03-01 0:00 UTC));
        let dec = Period::parse("2026-12").expect("valid");
        assert_eq!(dec.end(), datetime!(2027-01-01 0:00 UTC));
    }

    #[test]
    fn period_text_round_trips_and_rejects_garbage() {
        assert_eq!(
            Period::parse("2026-07").expect("valid").to_string(),
            "2026-07"
        );
        for bad in [
            "",
            "2026",
            "2026-7",
            "2026-13",
            "2026-00",
            "26-07",
            "1999-01",
            "2026/07",
            "2026-07-01",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_workflows_have_a_monthly_cap() {
        let limits = crate::domain::Plan::Starter.default_limits();
        let f = |s: &str| Feature::parse(s).expect("valid");
        assert_eq!(
            monthly_limit(&f("workflows"), &limits),
            Some(limits.workflows_per_month)
        );
        assert_eq!(monthly_limit(&f("api_access"), &limits), None);
    }

    #[test]
    fn remaining_saturates_and_exhaustion_starts_at_the_limit() {
        let usage = |used| FeatureUsage {
            feature: Feature::parse("workflows").expect("valid"),
            period: Period::parse("2026-07").expect("valid"),
            used,
            limit: Some(10),
            daily: vec![],
        };
        assert_eq!(
            (usage(9).remaining(), usage(9).exhausted()),
            (Some(1), false)
        );
        assert_eq!(
            (usage(10).remaining(), usage(10).exhausted()),
            (Some(0), true)
        );
        assert_eq!(
            (usage(12).remaining(), usage(12).exhausted()),
            (Some(0), true)
        );
    }

    #[test]
    fn event_ids_follow_the_installation_id_charset() {
        assert!(EventId::parse("evt_01J9Z3:retry-2.b").is_ok());
        for bad in ["", "with space", &"e".repeat(129), "semi;colon"] {
            assert!(EventId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
