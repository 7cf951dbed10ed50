//! Usage metering: accept events (`POST /api/usage`), count them exactly once (`usage-processor`),
//! report statistics, and reserve units synchronously for gates such as the workflow engine.
//!
//! Limit semantics: asynchronous reports are always counted, even past the limit (what happened,
//! happened); once a capped feature's total reaches its limit, `validate` with that feature answers
//! `USAGE_EXCEEDED` until the next period or a limit raise. Synchronous gates use [`reserve`],
//! which never lets the total pass the limit.

use std::collections::{BTreeMap, HashSet};

use futures::stream::{self, StreamExt};
use time::{Duration, OffsetDateTime};

use super::check::{self, Code, Verdict};
use crate::domain::ports::{LicenseReader, Recorded, UsageLedger, UsageQueue};
use crate::domain::usage::{max_quantity, monthly_limit};
use crate::domain::{DomainError, EventId, Feature, FeatureUsage, License, Period, UsageEvent};
use crate::token::{KeyRing, LicenseKey};

/// Most events per request.
pub const MAX_EVENTS: usize = 100;
/// Oldest `occurredAt` accepted: keeps every accepted event inside the dedupe window.
pub const MAX_EVENT_AGE_DAYS: i64 = 35;
/// Furthest `occurredAt` in the future accepted (clock skew).
pub const MAX_EVENT_SKEW: Duration = Duration::minutes(5);

/// One event as submitted, already well-formed.
#[derive(Debug, Clone)]
pub struct EventInput {
    /// Idempotency key.
    pub event_id: EventId,
    /// What was used (a known feature).
    pub feature: Feature,
    /// How much (1..=[`max_quantity`] of the feature, at most 1,000,000).
    pub quantity: u64,
    /// When; `None` means now.
    pub occurred_at: Option<OffsetDateTime>,
    /// Client details to keep with the event.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Why one event of a request is malformed (the whole request is refused with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventProblem {
    /// Position in `events`.
    pub index: usize,
    /// Stable code: `INVALID_FIELD`, `UNKNOWN_FEATURE`, `INVALID_QUANTITY`,
    /// `INVALID_OCCURRED_AT`, `DUPLICATE_EVENT_ID`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Checks what needs the clock or the whole batch: count, quantities (each within its feature's
/// [`max_quantity`]), times, duplicate ids.
pub fn check_events(events: &[EventInput], now: OffsetDateTime) -> Result<(), Vec<EventProblem>> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (index, e) in events.iter().enumerate() {
        let mut problem = |code, message: String| {
            problems.push(EventProblem {
                index,
                code,
                message,
            })
        };
        let ceiling = max_quantity(e.feature.as_str());
        if !(1..=ceiling).contains(&e.quantity) {
            problem(
                "INVALID_QUANTITY",
                format!("quantity must be 1 to {ceiling} for `{}`", e.feature),
            );
        }
        if let Some(at) = e.occurred_at
            && (at < now - Duration::days(MAX_EVENT_AGE_DAYS) || at > now + MAX_EVENT_SKEW)
        {
            problem(
                "INVALID_OCCURRED_AT",
                format!(
                    "occurredAt must be within the last {MAX_EVENT_AGE_DAYS} days and not in the future"
                ),
            );
        }
        if !seen.insert(&e.event_id) {
            problem(
                "DUPLICATE_EVENT_ID",
                format!("eventId {} appears more than once", e.event_id),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// What became of one submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStatus {
    /// Durably queued; it will be counted exactly once (re-sending it is harmless).
    Accepted,
    /// Refused for this license (`FEATURE_NOT_ENTITLED`); never counted.
    Rejected(Verdict),
    /// Not queued because the queue failed; send it again.
    Failed,
}

/// The answer to a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The license.
    pub license: License,
    /// One status per event, in order.
    pub statuses: Vec<(EventId, EventStatus)>,
    /// Current-period usage of the features touched (before these events are counted).
    pub usage: Vec<FeatureUsage>,
}

impl Submitted {
    /// Whether some events could not be queued.
    pub fn any_failed(&self) -> bool {
        self.statuses.iter().any(|(_, s)| *s == EventStatus::Failed)
    }
}

/// Why a submission as a whole was refused.
#[derive(Debug)]
pub enum SubmitError {
    /// The key or the license does not allow reporting (invalid, unknown, revoked, suspended,
    /// expired).
    License(Verdict),
    /// Storage failed.
    Domain(DomainError),
}

impl From<DomainError> for SubmitError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

/// Verifies the key offline and reads the license once; refuses unusable licenses.
pub async fn authorize<R: LicenseReader + ?Sized>(
    ring: &KeyRing,
    store: &R,
    key: &LicenseKey,
    now: OffsetDateTime,
) -> Result<License, SubmitError> {
    let claims = ring
        .verify_license(key)
        .map_err(|r| SubmitError::License(r.into()))?;
    let license = store
        .license(&claims.jti)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(|| {
            SubmitError::License(Verdict::new(
                Code::NotFound,
                format!("no license {} on record", claims.jti),
            ))
        })?;
    check::check_status(&claims, &license, now).map_err(SubmitError::License)?;
    Ok(license)
}

/// `POST /api/usage`: checks entitlement per event, queues the accepted ones, and reports the
/// current period's usage of the touched features. Never waits for counting.
#[tracing::instrument(skip_all, fields(events = events.len()))]
pub async fn submit<S, Q>(
    ring: &KeyRing,
    store: &S,
    queue: &Q,
    key: &LicenseKey,
    events: Vec<EventInput>,
    now: OffsetDateTime,
) -> Result<Submitted, SubmitError>
where
    S: LicenseReader + UsageLedger + ?Sized,
    Q: UsageQueue + ?Sized,
{
    let license = authorize(ring, store, key, now).await?;
    let mut statuses: Vec<(EventId, EventStatus)> = Vec::with_capacity(events.len());
    let mut queued = Vec::new();
    let mut queued_at = Vec::new();
    for e in events {
        if license.has_feature(&e.feature) {
            queued_at.push(statuses.len());
            queued.push(UsageEvent {
                license_id: license.id.clone(),
                event_id: e.event_id.clone(),
                feature: e.feature,
                quantity: e.quantity,
                occurred_at: e.occurred_at.unwrap_or(now),
                metadata: e.metadata,
            });
            statuses.push((e.event_id, EventStatus::Accepted));
        } else {
            let v = Verdict::new(
                Code::FeatureNotEntitled,
                format!("the license does not include feature {}", e.feature),
            );
            statuses.push((e.event_id, EventStatus::Rejected(v)));
        }
    }
    for (slot, result) in queued_at.iter().zip(queue.enqueue(&queued).await) {
        if result.is_err() {
            statuses[*slot].1 = EventStatus::Failed;
        }
    }
    let touched: Vec<Feature> = queued
        .iter()
        .map(|e| e.feature.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let usage = usage_of(store, &license, &touched, Period::containing(now)).await?;
    tracing::info!(license_id = %license.id, queued = queued.len(), "usage submitted");
    Ok(Submitted {
        license,
        statuses,
        usage,
    })
}

/// Usage of `features` of `license` in `period`.
pub async fn usage_of<L: UsageLedger + ?Sized>(
    ledger: &L,
    license: &License,
    features: &[Feature],
    period: Period,
) -> Result<Vec<FeatureUsage>, DomainError> {
    let counts = ledger.usage(&license.id, features, period).await?;
    Ok(features
        .iter()
        .zip(counts)
        .map(|(f, (used, daily))| FeatureUsage {
            feature: f.clone(),
            period,
            used,
            limit: monthly_limit(f, &license.limits),
            daily,
        })
        .collect())
}

/// Usage of every entitled feature of `license` in `period`.
pub async fn statistics<L: UsageLedger + ?Sized>(
    ledger: &L,
    license: &License,
    period: Period,
) -> Result<Vec<FeatureUsage>, DomainError> {
    let features: Vec<Feature> = license.features.iter().cloned().collect();
    usage_of(ledger, license, &features, period).await
}

/// The license's gauges: latest readings of its active installations, summed, against its limits.
pub async fn gauges<R: crate::domain::ports::InstallationRegistry + ?Sized>(
    registry: &R,
    license: &License,
) -> Result<Vec<crate::domain::GaugeUsage>, DomainError> {
    let installations = registry.installations(&license.id).await?;
    Ok(crate::domain::usage::gauge_usage(
        installations
            .iter()
            .filter(|i| i.status == crate::domain::InstallationStatus::Active)
            .map(|i| &i.gauges),
        &license.limits,
    ))
}

/// A queue message as the processor sees it.
#[derive(Debug, Clone)]
pub struct Message {
    /// SQS message id (reported back on failure).
    pub id: String,
    /// Body: one JSON [`UsageEvent`].
    pub body: String,
}

/// The processor's verdict on a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Messages to retry (SQS redelivers them; after `maxReceiveCount` they go to the DLQ).
    pub failed: Vec<String>,
    /// Events counted now.
    pub counted: usize,
    /// Events already counted before (redeliveries, client re-sends).
    pub duplicates: usize,
}

/// `usage-processor`: counts a batch of queued events exactly once. Events are grouped per counter
/// (license, feature, month) so N events for one counter cost one counter write; up to
/// `parallelism` groups (distinct counters) are written at once. A poison message, or a group whose
/// write fails, fails only its own messages.
#[tracing::instrument(skip_all, fields(messages = messages.len()))]
pub async fn process_batch<L: UsageLedger + ?Sized>(
    ledger: &L,
    messages: &[Message],
    now: OffsetDateTime,
    parallelism: usize,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut groups: BTreeMap<(String, String, Period), Vec<(String, UsageEvent)>> = BTreeMap::new();
    for m in messages {
        match serde_json::from_str::<UsageEvent>(&m.body) {
            // The same ceiling the intake applies: a message over it was not queued by us.
            Ok(e) if (1..=max_quantity(e.feature.as_str())).contains(&e.quantity) => groups
                .entry((e.license_id.to_string(), e.feature.to_string(), e.period()))
                .or_default()
                .push((m.id.clone(), e)),
            Ok(_) | Err(_) => {
                tracing::error!(message_id = %m.id, "poison usage message; leaving it for the DLQ");
                outcome.failed.push(m.id.clone());
            }
        }
    }
    let results: Vec<_> = stream::iter(groups.into_values().map(|group| async move {
        let events: Vec<UsageEvent> = group.iter().map(|(_, e)| e.clone()).collect();
        (group, ledger.record(&events, now).await)
    }))
    .buffer_unordered(parallelism.max(1))
    .collect()
    .await;
    for (group, result) in results {
        match result {
            Ok(recorded) => {
                outcome.counted += recorded.iter().filter(|r| **r == Recorded::Counted).count();
                outcome.duplicates += recorded
                    .iter()
                    .filter(|r| **r == Recorded::Duplicate)
                    .count();
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = group.len(), "usage group failed; will be retried");
                outcome.failed.extend(group.into_iter().map(|(id, _)| id));
            }
        }
    }
    outcome
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved; the new total and what is left.
    Granted {
        /// Total after this reservation.
        used: u64,
        /// Remaining under the limit.
        remaining: u64,
        /// The limit.
        limit: u64,
    },
    /// Would pass the limit; nothing was counted.
    Exceeded {
        /// The limit.
        limit: u64,
    },
}

/// Reserves `quantity` units of a capped feature synchronously: succeeds only while
/// `used + quantity <= limit`, atomically, whatever the concurrency. Features without a cap are
/// simply not reservable (callers count them with [`submit`]).
pub async fn reserve<L: UsageLedger + ?Sized>(
    ledger: &L,
    license: &License,
    feature: &Feature,
    quantity: u64,
    now: OffsetDateTime,
) -> Result<Reservation, DomainError> {
    let limit =
        monthly_limit(feature, &license.limits).ok_or_else(|| DomainError::InvalidValue {
            field: "feature",
            message: format!("feature {feature} has no monthly limit to reserve against"),
        })?;
    Ok(
        match ledger
            .reserve(&license.id, feature, now, quantity, limit)
            .await?
        {
            Some(used) => Reservation::Granted {
                used,
                remaining: limit.saturating_sub(used),
                limit,
            },
            None => Reservation::Exceeded { limit },
        },
    )
}

/// Used by `validate`: the verdict when a capped feature's total has reached its limit.
pub fn exceeded(usage: &FeatureUsage) -> Option<Verdict> {
    usage.exhausted().then(|| {
        Verdict::new(
            Code::UsageExceeded,
            format!(
                "monthly limit of {} for {} reached in {}",
                usage.limit.unwrap_or(0),
                usage.feature,
                usage.period
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::usage::MAX_QUANTITY;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-07-15 12:00 UTC);

    fn input(id: &str, quantity: u64, at: Option<OffsetDateTime>) -> EventInput {
        EventInput {
            event_id: EventId::parse(id).expect("valid"),
            feature: Feature::parse("workflows").expect("valid"),
            quantity,
            occurred_at: at,
            metadata: None,
        }
    }

    #[test]
    fn well_formed_events_pass() {
        let events = [
            input("a", 1, None),
            input(
                "b",
                max_quantity("workflows"),
                Some(NOW - Duration::days(30)),
            ),
        ];
        assert_eq!(check_events(&events, NOW), Ok(()));
    }

    #[test]
    fn a_workflows_event_over_its_ceiling_is_refused_while_one_at_it_passes() {
        let ceiling = max_quantity("workflows");
        assert!(ceiling < MAX_QUANTITY, "workflows has its own ceiling");
        let events = [input("at", ceiling, None), input("over", ceiling + 1, None)];
        let problems = check_events(&events, NOW).expect_err("one is over");
        assert_eq!(
            problems,
            [EventProblem {
                index: 1,
                code: "INVALID_QUANTITY",
                message: format!("quantity must be 1 to {ceiling} for `workflows`"),
            }]
        );
        assert_eq!(check_events(&events[..1], NOW), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_with_its_index() {
        let events = [
            input("a", 0, None),
            input("b", MAX_QUANTITY + 1, None),
            input("c", 1, Some(NOW - Duration::days(36))),
            input("d", 1, Some(NOW + Duration::minutes(6))),
            input("a", 1, None),
        ];
        let problems = check_events(&events, NOW).expect_err("all bad");
        let found: Vec<(usize, &str)> = problems.iter().map(|p| (p.index, p.code)).collect();
        assert_eq!(
            found,
            [
                (0, "INVALID_QUANTITY"),
                (1, "INVALID_QUANTITY"),
                (2, "INVALID_OCCURRED_AT"),
                (3, "INVALID_OCCURRED_AT"),
                (4, "DUPLICATE_EVENT_ID"),
            ]
        );
    }
}
