//! Usage reporting and statistics: events parsed through the protocol's typed [`UsageEvent`]
//! (every problem reported by event index), submissions and usage into views.

use nectar_protocol::usage::{MAX_METADATA_BYTES, UsageEvent};
use serde_json::Value;
use time::OffsetDateTime;

use super::{Validated, parse};
use crate::domain::usage::{MAX_QUANTITY, max_quantity};
use crate::domain::{DomainError, EventId, Feature, FeatureUsage, GaugeUsage, License, Period};
use crate::service::usage::{EventInput, EventStatus, MAX_EVENTS, Submitted, check_events};
use crate::token::LicenseKey;

pub use nectar_protocol::usage::{EventProblemView, EventStatusView, GaugeView};

/// `POST /api/usage`, with events still raw so each one's problems are reported by its index.
pub type UsageRequest = nectar_protocol::usage::UsageRequest<Value, LicenseKey>;
/// `POST /api/usage/stats`.
pub type UsageStatsRequest = nectar_protocol::usage::UsageStatsRequest<LicenseKey>;
/// Usage of one feature in a period, as the API shows it.
pub type FeatureUsageView = nectar_protocol::usage::FeatureUsageView<Validated>;
/// `POST /api/usage` answer.
pub type UsageResponse = nectar_protocol::usage::UsageResponse<Validated>;
/// Usage statistics answer.
pub type UsageStatsResponse = nectar_protocol::usage::UsageStatsResponse<Validated>;

/// Parses a usage request; a trait because the request type is the protocol's.
pub trait UsageRequestExt {
    /// Parses every event; on any problem returns all of them (the request is refused whole).
    fn parse(
        self,
        now: OffsetDateTime,
    ) -> Result<(LicenseKey, Vec<EventInput>), Vec<EventProblemView>>;
}

impl UsageRequestExt for UsageRequest {
    fn parse(
        self,
        now: OffsetDateTime,
    ) -> Result<(LicenseKey, Vec<EventInput>), Vec<EventProblemView>> {
        if self.events.is_empty() || self.events.len() > MAX_EVENTS {
            return Err(vec![EventProblemView {
                index: 0,
                event_id: None,
                code: "INVALID_EVENT_COUNT".into(),
                message: format!("send 1 to {MAX_EVENTS} events (got {})", self.events.len()),
            }]);
        }
        let mut events = Vec::with_capacity(self.events.len());
        let mut problems = Vec::new();
        for (i, raw) in self.events.into_iter().enumerate() {
            match parse_event(i, raw) {
                Ok(e) => events.push(e),
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty()
            && let Err(found) = check_events(&events, now)
        {
            problems.extend(found.into_iter().map(|p| EventProblemView {
                index: p.index,
                event_id: Some(events[p.index].event_id.to_string()),
                code: p.code.into(),
                message: p.message,
            }));
        }
        if problems.is_empty() {
            Ok((self.license_key, events))
        } else {
            Err(problems)
        }
    }
}

fn parse_event(index: usize, raw: Value) -> Result<EventInput, EventProblemView> {
    // Read by hand, before the typed parse, so that even a malformed event is named by its id.
    let id_text = raw
        .get("eventId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let problem = |code: &str, message: String| EventProblemView {
        index,
        event_id: id_text.clone(),
        code: code.to_owned(),
        message,
    };
    if !raw.is_object() {
        return Err(problem(
            "INVALID_FIELD",
            "each event must be a JSON object".into(),
        ));
    }
    let event: UsageEvent = serde_path_to_error::deserialize(raw).map_err(|e| {
        let (code, message) = shape_problem(&e);
        problem(code, message)
    })?;
    let event_id = EventId::parse(&event.event_id)
        .map_err(|e| problem("INVALID_FIELD", format!("eventId: {e}")))?;
    let feature = Feature::parse(&event.feature)
        .map_err(|e| problem("INVALID_FIELD", format!("feature: {e}")))?;
    if !crate::domain::plan::is_known_feature(&feature) {
        return Err(problem(
            "UNKNOWN_FEATURE",
            format!("unknown feature `{feature}`"),
        ));
    }
    // Each feature has its own ceiling (see `max_quantity`): one event cannot charge more.
    let ceiling = max_quantity(feature.as_str());
    if !(1..=ceiling).contains(&event.quantity) {
        return Err(problem(
            "INVALID_QUANTITY",
            format!("quantity must be a whole number from 1 to {ceiling} for `{feature}`"),
        ));
    }
    let metadata = match event.metadata {
        Some(m) if Value::Object(m.clone()).to_string().len() > MAX_METADATA_BYTES => {
            return Err(problem("INVALID_FIELD", metadata_rule()));
        }
        other => other,
    };
    Ok(EventInput {
        event_id,
        feature,
        quantity: event.quantity,
        occurred_at: event.occurred_at,
        metadata,
    })
}

/// The code and message of an event that does not have the [`UsageEvent`] shape, by the field
/// at fault. Serde names a missing field only inside its message (the path stops at the event),
/// so that one case reads the name from the message.
fn shape_problem(e: &serde_path_to_error::Error<serde_json::Error>) -> (&'static str, String) {
    let inner = e.inner().to_string();
    let missing = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let at = e
        .path()
        .iter()
        .next_back()
        .and_then(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
            _ => None,
        });
    match (missing, at) {
        (Some("eventId"), _) | (None, Some("eventId")) => {
            ("INVALID_FIELD", "eventId (string) is required".into())
        }
        (Some("feature"), _) | (None, Some("feature")) => {
            ("INVALID_FIELD", "feature (string) is required".into())
        }
        (Some("quantity"), _) => (
            "INVALID_QUANTITY",
            "quantity (positive integer) is required".into(),
        ),
        (None, Some("quantity")) => ("INVALID_QUANTITY", quantity_range()),
        (None, Some("occurredAt")) => (
            "INVALID_OCCURRED_AT",
            "occurredAt must be an RFC 3339 timestamp".into(),
        ),
        (None, Some("metadata")) => ("INVALID_FIELD", metadata_rule()),
        // Unknown fields and anything else: serde's own message names the field.
        _ => ("INVALID_FIELD", inner),
    }
}

/// The rule when the quantity is not even a whole number (the feature may not be readable yet, so
/// only the global maximum is named; a feature's own ceiling can be lower).
fn quantity_range() -> String {
    format!("quantity must be a whole number from 1 to {MAX_QUANTITY} (lower for some features)")
}

fn metadata_rule() -> String {
    format!(
        "metadata must be a JSON object of at most {} KiB",
        MAX_METADATA_BYTES / 1024
    )
}

/// The view of `u`, with or without its daily series.
fn feature_usage_view(u: &FeatureUsage, with_daily: bool) -> FeatureUsageView {
    FeatureUsageView {
        feature: u.feature.clone(),
        used: u.used,
        limit: u.limit,
        remaining: u.remaining(),
        exhausted: u.exhausted(),
        period_start: u.period.start(),
        period_end: u.period.end(),
        daily: with_daily.then(|| u.daily.clone()),
    }
}

/// Builds the usage answer; a trait because the answer type is the protocol's.
pub trait UsageAnswer {
    /// The view of a submission at `ts`.
    fn new(s: &Submitted, ts: OffsetDateTime) -> Self;
}

impl UsageAnswer for UsageResponse {
    fn new(s: &Submitted, ts: OffsetDateTime) -> Self {
        let events: Vec<EventStatusView> = s
            .statuses
            .iter()
            .map(|(id, status)| {
                let (name, code, detail) = match status {
                    EventStatus::Accepted => ("accepted", None, None),
                    EventStatus::Rejected(v) => ("rejected", Some(v.code), Some(v.detail.clone())),
                    EventStatus::Failed => (
                        "failed",
                        None,
                        Some("could not be queued; send it again".to_owned()),
                    ),
                };
                EventStatusView {
                    event_id: id.to_string(),
                    status: name.into(),
                    code,
                    detail,
                }
            })
            .collect();
        let count = |name: &str| events.iter().filter(|e| e.status == name).count();
        Self {
            license_id: s.license.id.clone(),
            accepted: count("accepted"),
            rejected: count("rejected"),
            failed: count("failed"),
            usage: s
                .usage
                .iter()
                .map(|u| feature_usage_view(u, false))
                .collect(),
            events,
            ts,
        }
    }
}

/// Parses an optional `YYYY-MM`, defaulting to the month of `now`.
pub fn parse_period(raw: Option<&str>, now: OffsetDateTime) -> Result<Period, DomainError> {
    raw.map(|p| parse("period", Period::parse(p)))
        .transpose()
        .map(|p| p.unwrap_or_else(|| Period::containing(now)))
}

/// Builds the statistics answer; a trait because the answer type is the protocol's.
pub trait UsageStatsAnswer {
    /// The view of `usage` for `license` in `period`.
    fn new(
        license: &License,
        period: Period,
        usage: &[FeatureUsage],
        gauges: &[GaugeUsage],
    ) -> Self;
}

impl UsageStatsAnswer for UsageStatsResponse {
    fn new(
        license: &License,
        period: Period,
        usage: &[FeatureUsage],
        gauges: &[GaugeUsage],
    ) -> Self {
        Self {
            gauges: gauges
                .iter()
                .map(|g| GaugeView {
                    gauge: g.gauge.to_owned(),
                    value: g.value,
                    limit: g.limit,
                    over_limit: g.over_limit(),
                })
                .collect(),
            license_id: license.id.clone(),
            period: period.to_string(),
            period_start: period.start(),
            period_end: period.end(),
            features: usage.iter().map(|u| feature_usage_view(u, true)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code_of(event: Value) -> String {
        match parse_event(0, event) {
            Err(p) => p.code,
            Ok(_) => "OK".into(),
        }
    }

    #[test]
    fn each_shape_problem_gets_the_code_of_its_field() {
        for (event, code) in [
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": 1}),
                "OK",
            ),
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": -3}),
                "INVALID_QUANTITY",
            ),
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": 1e12}),
                "INVALID_QUANTITY",
            ),
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": 0}),
                "INVALID_QUANTITY",
            ),
            (
                json!({"eventId": "a", "feature": "workflows"}),
                "INVALID_QUANTITY",
            ),
            (
                json!({"eventId": "a", "feature": "teleport", "quantity": 1}),
                "UNKNOWN_FEATURE",
            ),
            (
                json!({"feature": "workflows", "quantity": 1}),
                "INVALID_FIELD",
            ),
            (
                json!({"eventId": 7, "feature": "workflows", "quantity": 1}),
                "INVALID_FIELD",
            ),
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": 1, "x": 1}),
                "INVALID_FIELD",
            ),
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": 1, "occurredAt": "soon"}),
                "INVALID_OCCURRED_AT",
            ),
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": 1, "metadata": [1]}),
                "INVALID_FIELD",
            ),
            (
                json!({"eventId": "a", "feature": "workflows", "quantity": 1, "occurredAt": null, "metadata": null}),
                "OK",
            ),
            (json!(["a"]), "INVALID_FIELD"),
        ] {
            assert_eq!(code_of(event.clone()), code, "{event}");
        }
    }

    fn request(events: Vec<Value>) -> UsageRequest {
        serde_json::from_value(json!({
            "licenseKey": "a.b.c",
            "events": events,
        }))
        .expect("request shape")
    }

    #[test]
    fn a_workflows_event_over_its_ceiling_is_refused_with_its_index_and_one_at_it_accepted() {
        let now = time::macros::datetime!(2026-07-15 12:00 UTC);
        let ceiling = max_quantity("workflows");
        // At the ceiling: accepted.
        let (_, events) = request(vec![
            json!({"eventId": "at", "feature": "workflows", "quantity": ceiling}),
        ])
        .parse(now)
        .expect("at the ceiling");
        assert_eq!(events[0].quantity, ceiling);
        // One over: the whole request is refused, the problem names the event and the ceiling.
        let problems = request(vec![
            json!({"eventId": "ok", "feature": "workflows", "quantity": 1}),
            json!({"eventId": "over", "feature": "workflows", "quantity": ceiling + 1}),
        ])
        .parse(now)
        .expect_err("over the ceiling");
        assert_eq!(
            problems,
            [EventProblemView {
                index: 1,
                event_id: Some("over".into()),
                code: "INVALID_QUANTITY".into(),
                message: format!(
                    "quantity must be a whole number from 1 to {ceiling} for `workflows`"
                ),
            }]
        );
        // The global maximum still holds for features without their own ceiling.
        assert!(
            request(vec![
                json!({"eventId": "big", "feature": "integrations", "quantity": MAX_QUANTITY}),
            ])
            .parse(now)
            .is_ok()
        );
    }

    #[test]
    fn a_missing_field_is_named_in_the_message() {
        let problem =
            parse_event(3, json!({"feature": "workflows", "quantity": 1})).expect_err("bad");
        assert_eq!(
            (problem.index, problem.message.as_str()),
            (3, "eventId (string) is required")
        );
    }
}
