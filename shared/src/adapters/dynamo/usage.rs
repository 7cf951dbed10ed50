//! Usage counters on DynamoDB: one counter item per (license, feature, month) with the month total
//! and a daily series (`d01`..`d31`) in the same item, and one TTL'd marker per counted event.
//!
//! A group of events for one counter is written as ONE transaction: every marker (conditional on
//! not existing) plus one `ADD` to the counter. So N events cost N marker writes + 1 counter write,
//! and a crash or redelivery can neither lose nor double-count.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::keys;
use super::licenses::license_pk;
use super::table::{
    AccessPattern, Backoff, Consistency, DynamoStore, Item, Step, TransactError, n, s, sdk_error,
    values,
};
use crate::domain::ports::{Recorded, UsageLedger};
use crate::domain::{EventId, Feature, LicenseId, Period, StoreError, UsageEvent};

/// Entity tag of a usage counter (license, feature, month).
pub(crate) const ENTITY_USAGE: &str = "usage";
/// Sort key of a dedupe marker.
const EVENT_MARKER_SK: &str = "EVENT";

/// Sort key of a usage counter: one item per feature and month, holding the total and `d01`..`d31`.
pub(crate) fn usage_sk(feature: &Feature, period: Period) -> String {
    format!("USAGE#{feature}#{period}")
}

/// Partition of a usage event's dedupe marker: one partition per event, so a license reporting
/// thousands of events a second is not throttled on a single hot partition (and license lookups
/// never page through markers).
fn event_marker_pk(license: &LicenseId, event: &EventId) -> String {
    format!("EVENT#{license}#{event}")
}

/// Attribute holding one day's total in a usage counter (`d01`..`d31`).
fn day_attribute(day: u8) -> String {
    format!("d{day:02}")
}

/// How usage counters and dedupe markers are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "usage counter",
        name: "count a group of events of one counter, each once",
        operation: "TransactWriteItems (≤ 99 marker puts + 1 counter update)",
        key: "`EVENT#<lid>#<eventId>` / `EVENT` (TTL 90 d), `attribute_not_exists(pk)`; `LICENSE#<lid>` / `USAGE#<feature>#<YYYY-MM>`, `ADD used, dNN`",
        consistency: Consistency::Write,
        used_by: "`UsageLedger::record`",
    },
    AccessPattern {
        entity: "usage counter",
        name: "totals and daily series of some features",
        operation: "BatchGetItem",
        key: "`LICENSE#<lid>` / `USAGE#<feature>#<YYYY-MM>`",
        consistency: Consistency::Strong,
        used_by: "`UsageLedger::usage`",
    },
    AccessPattern {
        entity: "usage counter",
        name: "reserve within the limit",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `USAGE#<feature>#<YYYY-MM>`; `attribute_not_exists(used) OR used <= :limit - :q`",
        consistency: Consistency::Write,
        used_by: "`UsageLedger::reserve`",
    },
];

/// How long a dedupe marker lives. Events older than [`crate::service::usage::MAX_EVENT_AGE_DAYS`]
/// are refused at the edge, so any event we accept is still deduplicated when re-sent.
pub const MARKER_TTL_DAYS: i64 = 90;

/// DynamoDB allows 100 items per transaction: 99 markers + the counter.
const MAX_MARKERS_PER_TRANSACTION: usize = 99;

fn counter_key(license: &LicenseId, feature: &Feature, period: Period) -> Item {
    keys::key(license_pk(license), usage_sk(feature, period))
}

impl DynamoStore {
    fn marker(&self, e: &UsageEvent, now: OffsetDateTime) -> Result<TransactWriteItem, StoreError> {
        let expires = (now + time::Duration::days(MARKER_TTL_DAYS)).unix_timestamp();
        let mut item: Item = [
            ("pk", s(event_marker_pk(&e.license_id, &e.event_id))),
            ("sk", s(EVENT_MARKER_SK)),
            ("entity", s("usage_event")),
            ("feature", s(e.feature.as_str())),
            ("quantity", n(e.quantity)),
            ("occurred_at", s(keys::sortable_time(e.occurred_at))),
            ("counted_at", s(keys::sortable_time(now))),
            ("ttl", AttributeValue::N(expires.to_string())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(meta) = &e.metadata {
            item.insert(
                "metadata".into(),
                s(serde_json::Value::Object(meta.clone()).to_string()),
            );
        }
        self.put(item, Some("attribute_not_exists(pk)"))
    }

    /// `ADD used :total, dNN :qNN …` for the events of one counter.
    fn counter_update(
        &self,
        events: &[&UsageEvent],
        now: OffsetDateTime,
    ) -> Result<Update, StoreError> {
        let first = events[0];
        let mut per_day: BTreeMap<u8, u64> = BTreeMap::new();
        for e in events {
            *per_day.entry(e.day()).or_default() += e.quantity;
        }
        let total: u64 = per_day.values().sum();
        let mut adds = vec!["used :total".to_owned()];
        let mut vals = values(vec![
            (":total", n(total)),
            (":entity", s(ENTITY_USAGE)),
            (":feature", s(first.feature.as_str())),
            (":period", s(first.period().to_string())),
            (":now", s(keys::sortable_time(now))),
        ]);
        for (day, q) in per_day {
            let attr = day_attribute(day);
            adds.push(format!("{attr} :{attr}"));
            vals.insert(format!(":{attr}"), n(q));
        }
        Update::builder()
            .table_name(self.table())
            .set_key(Some(counter_key(&first.license_id, &first.feature, first.period())))
            .update_expression(format!(
                "SET entity = :entity, feature = :feature, #period = :period, updated_at = :now ADD {}",
                adds.join(", ")
            ))
            .expression_attribute_names("#period", "period")
            .set_expression_attribute_values(Some(vals))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))
    }

    /// Commits markers + counter for `events` (distinct ids, one counter); returns the indexes
    /// (into `events`) found already counted, in which case nothing was written.
    async fn commit(
        &self,
        events: &[&UsageEvent],
        now: OffsetDateTime,
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        let mut items = Vec::with_capacity(events.len() + 1);
        for e in events {
            items.push(self.marker(e, now)?);
        }
        items.push(
            TransactWriteItem::builder()
                .update(self.counter_update(events, now)?)
                .build(),
        );
        // A cancellation without a failed marker is a conflict with a concurrent writer of the
        // counter (or throttling): retried under the one policy, then reported as throttling.
        Backoff::TRANSACTION_CONFLICT
            .run(
                "usage counter transaction",
                |_| {
                    let items = items.clone();
                    async move {
                        match self.transact(items).await {
                            Ok(()) => Ok(Step::Done(Ok(()))),
                            Err(TransactError::Cancelled(reasons)) => {
                                let dupes: Vec<usize> = reasons
                                    .iter()
                                    .take(events.len())
                                    .enumerate()
                                    .filter(|(_, r)| r.as_str() == "ConditionalCheckFailed")
                                    .map(|(i, _)| i)
                                    .collect();
                                if dupes.is_empty() {
                                    Ok(Step::Retry)
                                } else {
                                    Ok(Step::Done(Err(dupes)))
                                }
                            }
                            Err(TransactError::Store(StoreError::Throttled)) => Ok(Step::Retry),
                            Err(TransactError::Store(e)) => Err(e),
                        }
                    }
                },
                || Err(StoreError::Throttled),
            )
            .await
    }
}

#[async_trait]
impl UsageLedger for DynamoStore {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn record(
        &self,
        events: &[UsageEvent],
        now: OffsetDateTime,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut outcome = vec![Recorded::Duplicate; events.len()];
        if let Some(first) = events.first() {
            let same_counter = events.iter().all(|e| {
                e.license_id == first.license_id
                    && e.feature == first.feature
                    && e.period() == first.period()
            });
            if !same_counter {
                return Err(StoreError::Backend(
                    "record() takes events of one counter".into(),
                ));
            }
        }
        // The same id twice in one batch counts once (a transaction may not touch an item twice).
        let mut seen = HashSet::new();
        let distinct: Vec<usize> = (0..events.len())
            .filter(|&i| seen.insert(&events[i].event_id))
            .collect();

        for chunk in distinct.chunks(MAX_MARKERS_PER_TRANSACTION) {
            let mut pending: Vec<usize> = chunk.to_vec();
            // Each round either commits or drops at least one already-counted event.
            while !pending.is_empty() {
                let batch: Vec<&UsageEvent> = pending.iter().map(|&i| &events[i]).collect();
                match self.commit(&batch, now).await? {
                    Ok(()) => {
                        for &i in &pending {
                            outcome[i] = Recorded::Counted;
                        }
                        pending.clear();
                    }
                    Err(dupes) => {
                        let dupes: HashSet<usize> = dupes.into_iter().map(|d| pending[d]).collect();
                        pending.retain(|i| !dupes.contains(i));
                    }
                }
            }
        }
        Ok(outcome)
    }

    #[tracing::instrument(skip_all, fields(license_id = %license, period = %period))]
    async fn usage(
        &self,
        license: &LicenseId,
        features: &[Feature],
        period: Period,
    ) -> Result<Vec<(u64, Vec<u64>)>, StoreError> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Item> = features
            .iter()
            .map(|f| counter_key(license, f, period))
            .collect();
        let found: HashMap<String, Item> = self
            .batch_get(wanted)
            .await?
            .into_iter()
            .filter_map(|item| match item.get("sk") {
                Some(AttributeValue::S(sk)) => Some((sk.clone(), item)),
                _ => None,
            })
            .collect();
        let days = (period.end() - period.start()).whole_days() as u8;
        Ok(features
            .iter()
            .map(|f| {
                let item = found.get(&usage_sk(f, period));
                let num = |attr: &str| {
                    item.and_then(|i| i.get(attr))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                let daily = (1..=days).map(|d| num(&day_attribute(d))).collect();
                (num("used"), daily)
            })
            .collect())
    }

    #[tracing::instrument(skip_all, fields(license_id = %license, feature = %feature, quantity))]
    async fn reserve(
        &self,
        license: &LicenseId,
        feature: &Feature,
        at: OffsetDateTime,
        quantity: u64,
        limit: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Some(max_before) = limit.checked_sub(quantity) else {
            return Ok(None);
        };
        let period = Period::containing(at);
        let day = day_attribute(at.to_offset(time::UtcOffset::UTC).day());
        let result = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(counter_key(license, feature, period)))
            .update_expression(format!(
                "SET entity = :entity, feature = :feature, #period = :period, updated_at = :now \
                 ADD used :q, {day} :q"
            ))
            .condition_expression("attribute_not_exists(used) OR used <= :max_before")
            .expression_attribute_names("#period", "period")
            .set_expression_attribute_values(Some(values(vec![
                (":q", n(quantity)),
                (":max_before", n(max_before)),
                (":entity", s(ENTITY_USAGE)),
                (":feature", s(feature.as_str())),
                (":period", s(period.to_string())),
                (":now", s(keys::sortable_time(at))),
            ])))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes.and_then(|a| {
                a.get("used")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}
