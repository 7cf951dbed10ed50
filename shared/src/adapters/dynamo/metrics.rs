//! Daily metrics snapshots: one item per UTC day (`METRICS` / `DAY#<YYYY-MM-DD>`), the snapshot
//! kept as its JSON text (it is read whole, never queried into). The latest is one `Query` with
//! `Limit 1` newest first; a history is one range query.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use nectar_protocol::metrics::MetricsSnapshot;

use super::keys;
use super::table::{AccessPattern, Consistency, DynamoStore, Item, s, sdk_error, values};
use crate::domain::StoreError;
use crate::domain::ports::MetricsStore;

/// Partition of every snapshot.
const METRICS_PK: &str = "METRICS";

/// How snapshots are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "metrics snapshot",
        name: "record a day's snapshot (replaces that day's)",
        operation: "PutItem",
        key: "`METRICS` / `DAY#<YYYY-MM-DD>`",
        consistency: Consistency::Write,
        used_by: "`MetricsStore::put_snapshot`",
    },
    AccessPattern {
        entity: "metrics snapshot",
        name: "the latest snapshot",
        operation: "Query (newest first, Limit 1)",
        key: "`pk = METRICS AND begins_with(sk, DAY#)`",
        consistency: Consistency::Strong,
        used_by: "`MetricsStore::latest_snapshot`",
    },
    AccessPattern {
        entity: "metrics snapshot",
        name: "snapshots of a range of days",
        operation: "Query",
        key: "`pk = METRICS AND sk BETWEEN DAY#<from> AND DAY#<to>`",
        consistency: Consistency::Strong,
        used_by: "`MetricsStore::snapshots`",
    },
];

fn decode(item: &Item) -> Result<MetricsSnapshot, StoreError> {
    match item.get("snapshot") {
        Some(AttributeValue::S(json)) => serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("metrics snapshot: {e}"))),
        _ => Err(StoreError::Corrupt(
            "metrics snapshot without its body".into(),
        )),
    }
}

#[async_trait]
impl MetricsStore for DynamoStore {
    async fn put_snapshot(&self, snapshot: &MetricsSnapshot) -> Result<(), StoreError> {
        let mut item = keys::key(METRICS_PK.into(), format!("DAY#{}", snapshot.date));
        let json = serde_json::to_string(snapshot).map_err(|e| StoreError::Backend(e.into()))?;
        item.insert("snapshot".into(), s(json));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn latest_snapshot(&self) -> Result<Option<MetricsSnapshot>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :day)")
            .set_expression_attribute_values(Some(values(vec![
                (":pk", s(METRICS_PK)),
                (":day", s("DAY#")),
            ])))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(sdk_error)?;
        out.items
            .unwrap_or_default()
            .first()
            .map(decode)
            .transpose()
    }

    async fn snapshots(&self, from: &str, to: &str) -> Result<Vec<MetricsSnapshot>, StoreError> {
        if from > to {
            // DynamoDB refuses a BETWEEN whose bounds are reversed; nothing lies between them.
            return Ok(Vec::new());
        }
        self.query_all(
            None,
            "pk = :pk AND sk BETWEEN :from AND :to",
            values(vec![
                (":pk", s(METRICS_PK)),
                (":from", s(format!("DAY#{from}"))),
                (":to", s(format!("DAY#{to}"))),
            ]),
        )
        .await?
        .iter()
        .map(decode)
        .collect()
    }
}
