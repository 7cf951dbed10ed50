//! The usage ledger in memory: exactly-once counting per (license, event id) with TTL'd dedupe
//! markers, and reservations within a limit — each call one atomic step, as DynamoDB's
//! transaction (markers + counter) and conditional update are.

use std::collections::HashSet;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Counter, MemoryStore};
use crate::adapters::dynamo::MARKER_TTL_DAYS;
use crate::domain::ports::{Recorded, UsageLedger};
use crate::domain::{Feature, LicenseId, Period, StoreError, UsageEvent};

#[async_trait]
impl UsageLedger for MemoryStore {
    async fn record(
        &self,
        events: &[UsageEvent],
        now: OffsetDateTime,
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut outcome = vec![Recorded::Duplicate; events.len()];
        let Some(first) = events.first() else {
            return Ok(outcome);
        };
        let counter = (
            first.license_id.clone(),
            first.feature.clone(),
            first.period(),
        );
        if events
            .iter()
            .any(|e| (&e.license_id, &e.feature, e.period()) != (&counter.0, &counter.1, counter.2))
        {
            return Err(StoreError::Backend(
                "record() takes events of one counter".into(),
            ));
        }
        let ttl = (now + time::Duration::days(MARKER_TTL_DAYS)).unix_timestamp();
        let mut state = self.state();
        let mut seen = HashSet::new();
        let mut added = Counter::default();
        for (i, e) in events.iter().enumerate() {
            // The same id twice in one batch counts once; a marker left by an earlier count (until
            // the TTL process deletes it) makes the event a duplicate.
            if !seen.insert(&e.event_id) {
                continue;
            }
            let marker = (e.license_id.clone(), e.event_id.clone());
            if state.markers.contains_key(&marker) {
                continue;
            }
            state.markers.insert(marker, ttl);
            added.used += e.quantity;
            *added.days.entry(e.day()).or_default() += e.quantity;
            outcome[i] = Recorded::Counted;
        }
        if outcome.contains(&Recorded::Counted) {
            let total = state.counters.entry(counter).or_default();
            total.used += added.used;
            for (day, q) in added.days {
                *total.days.entry(day).or_default() += q;
            }
        }
        Ok(outcome)
    }

    async fn usage(
        &self,
        license: &LicenseId,
        features: &[Feature],
        period: Period,
    ) -> Result<Vec<(u64, Vec<u64>)>, StoreError> {
        let state = self.state();
        let days = u8::try_from((period.end() - period.start()).whole_days()).unwrap_or(31);
        Ok(features
            .iter()
            .map(|f| {
                let counter = state.counters.get(&(license.clone(), f.clone(), period));
                let day = |d: u8| counter.and_then(|c| c.days.get(&d)).copied().unwrap_or(0);
                (counter.map_or(0, |c| c.used), (1..=days).map(day).collect())
            })
            .collect())
    }

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
        let mut state = self.state();
        let counter = state
            .counters
            .entry((license.clone(), feature.clone(), Period::containing(at)))
            .or_default();
        if counter.used > max_before {
            return Ok(None);
        }
        counter.used += quantity;
        *counter
            .days
            .entry(at.to_offset(time::UtcOffset::UTC).day())
            .or_default() += quantity;
        Ok(Some(counter.used))
    }
}
