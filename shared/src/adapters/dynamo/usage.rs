//! Usage counters on DynamoDB: one counter item per (license, feature, month) with the month total
//! and a daily series (`d01`..`d31`) in the same item, and one TTL'd marker per counted event.
//!
//! A group of events for one counter is written as ONE transaction: every marker (conditional on
//! not existing) plus one `ADD` to the counter. So N events cost N marker writes + 1 counter write,
//! and a crash or redelivery can neither lose nor double-count.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::records::ENTITY_USAGE;
use super::{DynamoStore, Item, TransactError, keys, n, s, sdk_error, values};
use crate::domain::ports::{Recorded, UsageLedger};
use crate::domain::{Feature, LicenseId, Period, StoreError, UsageEvent};

/// How long a dedupe marker lives. Events older than [`crate::service::usage::MAX_EVENT_AGE_DAYS`]
/// are refused at the edge, so any event we accept is still deduplicated when re-sent.
pub const MARKER_TTL_DAYS: i64 = 90;

/// DynamoDB allows 100 items per transaction: 99 markers + the counter.
const MAX_MARKERS_PER_TRANSACTION: usize = 99;

fn counter_key(license: &LicenseId, feature: &Feature, period: Period) -> Item {
    keys::key(keys::license_pk(license), keys::usage_sk(feature, period))
}

impl DynamoStore {
    fn marker(&self, e: &UsageEvent, now: OffsetDateTime) -> Result<TransactWriteItem, StoreError> {
        let expires = (now + time::Duration::days(MARKER_TTL_DAYS)).unix_timestamp();
        let mut item: Item = [
            ("pk", s(keys::event_marker_pk(&e.license_id, &e.event_id))),
            ("sk", s(keys::EVENT_MARKER_SK)),
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
            let attr = keys::day_attribute(day);
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
        for attempt in 0..6u32 {
            match self.transact(items.clone()).await {
                Ok(()) => return Ok(Ok(())),
                Err(TransactError::Cancelled(reasons)) => {
                    let dupes: Vec<usize> = reasons
                        .iter()
                        .take(events.len())
                        .enumerate()
                        .filter(|(_, r)| r.as_str() == "ConditionalCheckFailed")
                        .map(|(i, _)| i)
                        .collect();
                    if !dupes.is_empty() {
                        return Ok(Err(dupes));
                    }
                    // TransactionConflict (a concurrent writer on the counter): back off, retry.
                }
                Err(TransactError::Store(StoreError::Throttled)) => {}
                Err(TransactError::Store(e)) => return Err(e),
            }
            let jitter = rand::random_range(0..20u64);
            tokio::time::sleep(Duration::from_millis((10 << attempt) + jitter)).await;
        }
        Err(StoreError::Throttled)
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
                let item = found.get(&keys::usage_sk(f, period));
                let num = |attr: &str| {
                    item.and_then(|i| i.get(attr))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                let daily = (1..=days).map(|d| num(&keys::day_attribute(d))).collect();
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
        let day = keys::day_attribute(at.to_offset(time::UtcOffset::UTC).day());
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
