//! Audit entries: one item per entry in the partition of what it is about
//! (`LICENSE#<lid>`, `CUSTOMER#<cid>` or `OPERATOR#<oid>` / `AUDIT#<at>#<uuidv7>`), so a
//! partition query returns the trail in time order. Status changes and creates write their entry
//! in the same transaction (see `licenses.rs`, `customers.rs`, `operators.rs`); [`AuditLog`]
//! appends the others.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys;
use super::licenses::license_pk;
use super::table::{
    AccessPattern, Consistency, DynamoStore, TransactError, first_failed, from_item, s, sdk_error,
    to_item,
};
use crate::domain::ports::{AuditLog, AuditPage};
use crate::domain::{AuditEntry, LicenseId, LicenseStatus, StoreError};

/// Longest audit cursor accepted (ours are `AUDIT#` + a timestamp + a UUID, under 80).
const MAX_AUDIT_CURSOR: usize = 200;

/// Entity tag of an audit item.
pub(crate) const ENTITY_AUDIT: &str = "audit";

/// Sort key of an audit entry; `unique` (a time-ordered UUIDv7) orders entries within a second.
fn audit_sk(at: OffsetDateTime, unique: &uuid::Uuid) -> String {
    format!("AUDIT#{}#{unique}", keys::sortable_time(at))
}

/// How audit entries are written (they are read with their partition, see `customers.rs`).
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "audit entry",
        name: "append an entry outside a transaction",
        operation: "PutItem",
        key: "`LICENSE#<lid>` / `AUDIT#<at>#<uuidv7>`; `attribute_not_exists(pk)`",
        consistency: Consistency::Write,
        used_by: "`AuditLog::append`",
    },
    AccessPattern {
        entity: "audit entry",
        name: "append an entry once per key and period",
        operation: "TransactWriteItems (2 puts)",
        key: "`ONCE#<lid>#<key>` / `ONCE` (TTL: end of the period), `attribute_not_exists(pk) OR ttl < :now`; the entry",
        consistency: Consistency::Write,
        used_by: "`AuditLog::append_once`",
    },
    AccessPattern {
        entity: "audit entry",
        name: "a page of a license's trail, newest first",
        operation: "Query (descending, Limit)",
        key: "`pk = LICENSE#<lid> AND sk BETWEEN AUDIT# AND <cursor>`",
        consistency: Consistency::Strong,
        used_by: "`AuditLog::audit_page`, `CustomerDirectory::licenses_of`",
    },
];

/// A marker that an entry keyed `once` was written; DynamoDB deletes it by TTL after `until`.
#[derive(Debug, Serialize)]
struct OnceMarker {
    pk: String,
    sk: &'static str,
    entity: &'static str,
    ttl: i64,
}

impl DynamoStore {
    /// Creates an entity's item and its first audit entry (under the entity's `pk`) in one
    /// transaction, both conditional on being new: [`StoreError::AlreadyExists`] when the id is
    /// taken, nothing written either way unless both are.
    pub(crate) async fn create_with_audit<R: Serialize>(
        &self,
        pk: String,
        record: &R,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let audit = AuditRecord::new(pk, audit);
        let items = vec![
            self.put(to_item(record)?, Some("attribute_not_exists(pk)"))?,
            self.put(to_item(&audit)?, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TransactError::Cancelled(reasons)) if first_failed(&reasons) => {
                Err(StoreError::AlreadyExists)
            }
            Err(TransactError::Cancelled(_)) => Err(StoreError::Throttled),
            Err(TransactError::Store(e)) => Err(e),
        }
    }
}

#[async_trait]
impl AuditLog for DynamoStore {
    #[tracing::instrument(skip_all, fields(license_id = %license, action = %entry.action))]
    async fn append(&self, license: &LicenseId, entry: &AuditEntry) -> Result<(), StoreError> {
        let record = AuditRecord::new(license_pk(license), entry);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    async fn append_once(
        &self,
        license: &LicenseId,
        once: &str,
        until: OffsetDateTime,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let marker = OnceMarker {
            pk: format!("ONCE#{license}#{once}"),
            sk: "ONCE",
            entity: "once",
            ttl: until.unix_timestamp(),
        };
        let put_marker = to_item(&marker)?;
        // TTL deletion is lazy (up to days): an expired marker still present must not block.
        let marker_item = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table())
            .set_item(Some(put_marker))
            .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(
                ":now",
                aws_sdk_dynamodb::types::AttributeValue::N(entry.at.unix_timestamp().to_string()),
            )
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let record = AuditRecord::new(license_pk(license), entry);
        let items = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(marker_item)
                .build(),
            self.put(to_item(&record)?, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TransactError::Cancelled(reasons)) if first_failed(&reasons) => Ok(false),
            Err(TransactError::Cancelled(_)) => Err(StoreError::Throttled),
            Err(TransactError::Store(e)) => Err(e),
        }
    }

    async fn audit_page(
        &self,
        license: &LicenseId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        self.trail_page(license_pk(license), before, limit).await
    }
}

impl DynamoStore {
    /// Up to `limit` entries of the trail in partition `pk`, newest first, older than the
    /// cursor `before` (the last sort key an earlier page showed); a cursor we could not have
    /// handed out is [`StoreError::InvalidCursor`].
    pub(crate) async fn trail_page(
        &self,
        pk: String,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        // Newest first: sort keys descend from just below `before` (or from the top of the
        // `AUDIT#` range). The cursor is the last sort key shown.
        let upper = before
            .filter(|c| c.starts_with("AUDIT#"))
            .map(str::to_owned)
            .unwrap_or_else(|| "AUDIT#~".to_owned());
        if before.is_some_and(|c| !c.starts_with("AUDIT#") || c.len() > MAX_AUDIT_CURSOR) {
            return Err(StoreError::InvalidCursor);
        }
        let out = self
            .client
            .query()
            .table_name(self.table())
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s("AUDIT#"))
            .expression_attribute_values(":to", s(upper.clone()))
            .scan_index_forward(false)
            // One more than asked, to know whether there is a next page — and one more again
            // after a cursor, whose own entry BETWEEN includes (dropped below).
            .limit(i32::try_from(limit + 1 + usize::from(before.is_some())).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        let mut records: Vec<AuditRecord> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        // BETWEEN is inclusive: the cursor's own entry was already shown.
        records.retain(|r| r.sk != upper);
        let more = records.len() > limit;
        records.truncate(limit);
        let next = if more {
            records.last().map(|r| r.sk.clone())
        } else {
            None
        };
        Ok(AuditPage {
            entries: records.into_iter().map(AuditEntry::from).collect(),
            next,
        })
    }
}

/// An audit item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuditRecord {
    pub pk: String,
    pub sk: String,
    pub entity: String,
    pub action: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<LicenseStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<LicenseStatus>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl AuditRecord {
    /// The audit item for `entry` in partition `pk`.
    pub fn new(pk: String, entry: &AuditEntry) -> Self {
        Self {
            // v7 ids grow with real time, so entries within one (injected) second keep their order.
            sk: audit_sk(entry.at, &uuid::Uuid::now_v7()),
            pk,
            entity: ENTITY_AUDIT.into(),
            action: entry.action.clone(),
            actor: entry.actor.as_str().to_owned(),
            reason: entry.reason.clone(),
            from: entry.from,
            to: entry.to,
            at: entry.at,
        }
    }
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        Self {
            action: r.action,
            actor: crate::domain::Actor::recorded(r.actor),
            reason: r.reason,
            from: r.from,
            to: r.to,
            at: r.at,
        }
    }
}
