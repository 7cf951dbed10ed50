//! Workflow support on DynamoDB: fixed-window rate counters (one TTL'd item per key and minute,
//! a conditional `ADD`) and recorded executions (one TTL'd item each, the response as JSON text).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::keys;
use super::table::{AccessPattern, Consistency, DynamoStore, n, s, sdk_error, values};
use crate::domain::ports::{ExecutionLog, RateLimiter};
use crate::domain::workflow::{ExecutionId, ExecutionRecord};
use crate::domain::{LicenseId, StoreError};

/// Sort key of a rate window.
const RATE_SK: &str = "RATE";
/// Sort key of a recorded execution.
const EXECUTION_SK: &str = "EXECUTION";

/// Partition of one rate-limit window of one key: one item per window, so no hot item outlives a
/// minute.
fn rate_pk(key: &str, window_start: OffsetDateTime) -> String {
    format!("RATE#{key}#{}", window_start.unix_timestamp())
}

/// Partition of a recorded execution (its own partition: executions are read by id).
fn execution_pk(id: &ExecutionId) -> String {
    format!("EXECUTION#{id}")
}

/// How rate windows and executions are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "rate window",
        name: "count a request within the window's limit",
        operation: "UpdateItem",
        key: "`RATE#<key>#<window start>` / `RATE` (TTL: window end + 1 h); `attribute_not_exists(hits) OR hits < :limit`",
        consistency: Consistency::Write,
        used_by: "`RateLimiter::admit`",
    },
    AccessPattern {
        entity: "execution",
        name: "record an execution",
        operation: "PutItem",
        key: "`EXECUTION#<id>` / `EXECUTION` (TTL 30 d); `attribute_not_exists(pk)`",
        consistency: Consistency::Write,
        used_by: "`ExecutionLog::record_execution`",
    },
    AccessPattern {
        entity: "execution",
        name: "execution by id",
        operation: "GetItem",
        key: "`EXECUTION#<id>` / `EXECUTION`",
        consistency: Consistency::Strong,
        used_by: "`ExecutionLog::execution`",
    },
];

/// How long executions stay readable at least (DynamoDB deletes expired items within days).
pub const EXECUTION_TTL_DAYS: i64 = 30;

/// DynamoDB items are at most 400 KB; recorded bodies larger than this are trimmed.
const MAX_RECORDED_BODY: usize = 350 * 1024;

/// The body as stored: whole when it fits; else the steps are cut to the first 200, then the
/// output dropped, each cut flagged in the body so a reader knows.
pub(crate) fn fit_for_storage(body: &serde_json::Value) -> String {
    let whole = body.to_string();
    if whole.len() <= MAX_RECORDED_BODY {
        return whole;
    }
    let mut trimmed = body.clone();
    if let Some(steps) = trimmed.get_mut("steps").and_then(|s| s.as_array_mut()) {
        steps.truncate(200);
        trimmed["stepsTruncated"] = serde_json::Value::Bool(true);
    }
    let text = trimmed.to_string();
    if text.len() <= MAX_RECORDED_BODY {
        return text;
    }
    trimmed["output"] = serde_json::Value::Null;
    trimmed["outputStored"] = serde_json::Value::Bool(false);
    trimmed.to_string()
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn admit(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        window: time::Duration,
        limit: u64,
    ) -> Result<bool, StoreError> {
        let expires = (window_start + window + time::Duration::hours(1)).unix_timestamp();
        let counted = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(keys::key(rate_pk(key, window_start), RATE_SK)))
            .update_expression("SET #ttl = :ttl ADD hits :one")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_names("#ttl", "ttl")
            .set_expression_attribute_values(Some(values(vec![
                (":ttl", AttributeValue::N(expires.to_string())),
                (":one", n(1)),
                (":limit", n(limit)),
            ])))
            .send()
            .await;
        match counted {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}

#[async_trait]
impl ExecutionLog for DynamoStore {
    #[tracing::instrument(skip_all, fields(execution_id = %record.id))]
    async fn record_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        let expires =
            (record.started_at + time::Duration::days(EXECUTION_TTL_DAYS)).unix_timestamp();
        let mut item = keys::key(execution_pk(&record.id), EXECUTION_SK);
        item.extend(values(vec![
            ("entity", s("execution")),
            ("license_id", s(record.license_id.as_str())),
            ("workflow_id", s(record.workflow_id.clone())),
            ("started_at", s(keys::sortable_time(record.started_at))),
            ("body", s(fit_for_storage(&record.body))),
            ("ttl", AttributeValue::N(expires.to_string())),
        ]));
        self.client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn execution(&self, id: &ExecutionId) -> Result<Option<ExecutionRecord>, StoreError> {
        let Some(item) = self.get(keys::key(execution_pk(id), EXECUTION_SK)).await? else {
            return Ok(None);
        };
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(StoreError::Corrupt(format!("execution {id}: no {name}"))),
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("execution {id}: bad {what}"));
        Ok(Some(ExecutionRecord {
            id: *id,
            license_id: LicenseId::parse(&text("license_id")?).map_err(|_| corrupt("license"))?,
            workflow_id: text("workflow_id")?,
            started_at: OffsetDateTime::parse(
                &text("started_at")?,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| corrupt("start time"))?,
            body: serde_json::from_str(&text("body")?).map_err(|_| corrupt("body"))?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_that_fits_is_stored_whole() {
        let body = json!({"output": {"a": 1}, "steps": [{"nodeId": "x"}]});
        assert_eq!(fit_for_storage(&body), body.to_string());
    }

    #[test]
    fn an_oversize_body_keeps_its_first_steps_then_drops_its_output_and_says_so() {
        let step = json!({"nodeId": "n".repeat(100)});
        let many = json!({"output": "small", "steps": vec![step; 5_000]});
        let stored: serde_json::Value =
            serde_json::from_str(&fit_for_storage(&many)).expect("json");
        assert_eq!(stored["steps"].as_array().map(Vec::len), Some(200));
        assert_eq!(stored["stepsTruncated"], true);
        assert_eq!(stored["output"], "small");

        let huge = json!({"output": "x".repeat(400 * 1024), "steps": []});
        let stored: serde_json::Value =
            serde_json::from_str(&fit_for_storage(&huge)).expect("json");
        assert_eq!(stored["output"], serde_json::Value::Null);
        assert_eq!(stored["outputStored"], false);
    }
}
