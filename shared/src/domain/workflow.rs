//! Workflow executions as the control plane sees them: each plan's engine limits and rate limit,
//! and the recorded execution a license can read back.

use std::time::Duration;

use time::OffsetDateTime;

use super::ids::{LicenseId, ParseError};
use super::plan::Plan;

/// How a plan may use the workflow engine.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowPolicy {
    /// Executions admitted per license per minute (fixed one-minute windows).
    pub rate_per_minute: u64,
    /// Engine limits: graph size at validation; steps, wall time and sizes while running.
    pub engine: nectar_workflow::Policy,
}

impl Plan {
    /// The plan's workflow limits. Wall time stays well under the function's 30 s timeout.
    pub fn workflow_policy(self) -> WorkflowPolicy {
        let base = nectar_workflow::Policy::default();
        let (rate_per_minute, max_nodes, max_steps, wall_secs, max_output_bytes, memory_mib) =
            match self {
                Self::Starter => (60, 25, 200, 5, 64 * 1024, 64),
                Self::Professional => (300, 100, 1_000, 10, 256 * 1024, 128),
                Self::Enterprise => (1_200, 250, 5_000, 20, 256 * 1024, 256),
            };
        WorkflowPolicy {
            rate_per_minute,
            engine: nectar_workflow::Policy {
                max_nodes,
                max_steps,
                max_wall: Duration::from_secs(wall_secs),
                max_output_bytes,
                max_value_bytes: 1024 * 1024,
                http_timeout: Duration::from_secs(5),
                max_memory_bytes: memory_mib * 1024 * 1024,
                ..base
            },
        }
    }
}

/// An execution's id (UUIDv7, so ids sort by start time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecutionId(uuid::Uuid);

impl ExecutionId {
    /// Wraps a generated id.
    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }

    /// Parses the canonical hyphenated form.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.len() != 36 {
            return Err(ParseError::ExecutionId);
        }
        uuid::Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| ParseError::ExecutionId)
    }
}

impl std::fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A recorded execution: the answer the caller got, kept (TTL'd) for its license to read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    /// Its id.
    pub id: ExecutionId,
    /// The license that ran it; only this license may read it.
    pub license_id: LicenseId,
    /// The caller's workflow id.
    pub workflow_id: String,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// The response body as returned (possibly trimmed to fit the store, see the adapter).
    pub body: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_grow_in_what_the_engine_allows_and_stay_under_the_function_timeout() {
        for pair in Plan::ALL.windows(2) {
            let (lo, hi) = (pair[0].workflow_policy(), pair[1].workflow_policy());
            assert!(lo.rate_per_minute < hi.rate_per_minute);
            assert!(lo.engine.max_nodes < hi.engine.max_nodes);
            assert!(lo.engine.max_steps < hi.engine.max_steps);
        }
        for &plan in Plan::ALL {
            assert!(plan.workflow_policy().engine.max_wall <= Duration::from_secs(20));
        }
    }

    #[test]
    fn execution_ids_parse_only_canonical_uuids() {
        let id = ExecutionId::from_uuid(uuid::Uuid::now_v7());
        assert_eq!(ExecutionId::parse(&id.to_string()).ok(), Some(id));
        assert!(ExecutionId::parse("not-a-uuid").is_err());
        assert!(ExecutionId::parse(&id.to_string().replace('-', "")).is_err());
    }
}
