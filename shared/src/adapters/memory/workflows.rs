//! Workflow support in memory: fixed-window rate counters and recorded executions, with the
//! DynamoDB adapter's TTLs (deleted only when [`MemoryStore::expire_ttl`] plays the TTL process)
//! and its trimming of oversize bodies.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::MemoryStore;
use crate::adapters::dynamo::{EXECUTION_TTL_DAYS, fit_for_storage};
use crate::domain::StoreError;
use crate::domain::license::whole_seconds;
use crate::domain::ports::{ExecutionLog, RateLimiter};
use crate::domain::workflow::{ExecutionId, ExecutionRecord};

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn admit(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        window: time::Duration,
        limit: u64,
    ) -> Result<bool, StoreError> {
        let ttl = (window_start + window + time::Duration::hours(1)).unix_timestamp();
        let mut state = self.state();
        let slot = (key.to_owned(), window_start.unix_timestamp());
        // As DynamoDB's `attribute_not_exists(hits) OR hits < :limit`: the first request of a
        // window is admitted even under a limit of 0.
        match state.rates.get_mut(&slot) {
            Some((hits, _)) if *hits >= limit => Ok(false),
            Some((hits, expires)) => {
                *hits += 1;
                *expires = ttl;
                Ok(true)
            }
            None => {
                state.rates.insert(slot, (1, ttl));
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl ExecutionLog for MemoryStore {
    async fn record_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        let ttl = (record.started_at + time::Duration::days(EXECUTION_TTL_DAYS)).unix_timestamp();
        let body = serde_json::from_str(&fit_for_storage(&record.body))
            .map_err(|e| StoreError::Backend(e.into()))?;
        let stored = ExecutionRecord {
            started_at: whole_seconds(record.started_at),
            body,
            ..record.clone()
        };
        let mut state = self.state();
        if state.executions.contains_key(&record.id) {
            // DynamoDB: the `attribute_not_exists(pk)` condition fails, a backend error.
            return Err(StoreError::Backend(
                "record_execution: execution id already recorded".into(),
            ));
        }
        state.executions.insert(record.id, (stored, ttl));
        Ok(())
    }

    async fn execution(&self, id: &ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(self.state().executions.get(id).map(|(r, _)| r.clone()))
    }
}
