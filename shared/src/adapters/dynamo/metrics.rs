//! Daily metrics snapshots: one item per UTC day (`METRICS` / `DAY#<YYYY-MM-DD>`), the snapshot
//! kept as its JSON text (it is read whole, never queried into). The latest is one `Query` with
//! `Limit 1` newest first; a history is one range query.
//!
//! Revenue changes (an operator's plan or contract change, for the month's expansion and
//! contraction): one item per change, `REVENUE#<YYYY-MM>` / `<at>#<lid>#<revision>`, written in
//! the license change's own transaction; the snapshot job reads the month's partition with one
//! query. A month's partition grows with operator changes, a few per license at most.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use nectar_protocol::metrics::MetricsSnapshot;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys;
use super::table::{
    AccessPattern, Consistency, DynamoStore, Item, from_item, s, sdk_error, to_item, values,
};
use crate::domain::ports::MetricsStore;
use crate::domain::revenue::{PricedTerms, RevenueChange};
use crate::domain::{LicenseId, Period, StoreError};

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
    AccessPattern {
        entity: "revenue change",
        name: "record a plan/contract change (in the license change's transaction)",
        operation: "TransactWriteItems (put)",
        key: "`REVENUE#<YYYY-MM>` / `<at>#<lid>#<revision>`; `attribute_not_exists(pk)`",
        consistency: Consistency::Write,
        used_by: "`LicenseAmender::amend`",
    },
    AccessPattern {
        entity: "revenue change",
        name: "a month's revenue changes",
        operation: "Query",
        key: "`pk = REVENUE#<YYYY-MM>`",
        consistency: Consistency::Strong,
        used_by: "`MetricsStore::revenue_changes`",
    },
];

/// Entity tag of a revenue-change item.
const ENTITY_REVENUE_CHANGE: &str = "revenue_change";

/// Partition of a month's revenue changes.
fn revenue_pk(period: Period) -> String {
    format!("REVENUE#{period}")
}

/// A revenue-change item.
#[derive(Debug, Serialize, Deserialize)]
struct RevenueChangeRecord {
    pk: String,
    sk: String,
    entity: String,
    license_id: String,
    revision: u64,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    before: PricedTerms,
    after: PricedTerms,
}

/// The item of `change`, for the license change's transaction.
pub(crate) fn revenue_change_item(change: &RevenueChange) -> Result<Item, StoreError> {
    let at = crate::domain::license::whole_seconds(change.at);
    to_item(&RevenueChangeRecord {
        pk: revenue_pk(Period::containing(at)),
        sk: format!(
            "{}#{}#{:020}",
            keys::sortable_time(at),
            change.license_id,
            change.revision
        ),
        entity: ENTITY_REVENUE_CHANGE.into(),
        license_id: change.license_id.to_string(),
        revision: change.revision,
        at,
        before: change.before.clone(),
        after: change.after.clone(),
    })
}

impl TryFrom<RevenueChangeRecord> for RevenueChange {
    type Error = StoreError;

    fn try_from(r: RevenueChangeRecord) -> Result<Self, StoreError> {
        Ok(Self {
            license_id: LicenseId::parse(&r.license_id)
                .map_err(|_| StoreError::Corrupt(format!("license id in item {}", r.sk)))?,
            revision: r.revision,
            at: r.at,
            before: r.before,
            after: r.after,
        })
    }
}

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

    async fn revenue_changes(&self, period: Period) -> Result<Vec<RevenueChange>, StoreError> {
        self.query_all(
            None,
            "pk = :pk",
            values(vec![(":pk", s(revenue_pk(period)))]),
        )
        .await?
        .into_iter()
        .map(|item| RevenueChange::try_from(from_item::<RevenueChangeRecord>(item)?))
        .collect()
    }
}
