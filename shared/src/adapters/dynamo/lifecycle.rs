//! The lifecycle job's side of DynamoDB: range queries over the status + expiry index and the
//! silence index, sweep cursors, the notice ledger (attributes of the license item) and seat
//! release for silent installations.
//!
//! Sweeps resume with a key condition (`gsi2sk BETWEEN <after>+" " AND <upper>`) instead of an
//! `ExclusiveStartKey`, so a cursor saved under yesterday's range is still valid under today's.
//! Index sort keys never contain a space, so `<after>+" "` sorts right after `<after>`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::audit::AuditRecord;
use super::installations::{InstallationRecord, SEEN_GSI2_PK, installation_sk};
use super::keys;
use super::licenses::{
    LicenseRecord, NOTICE_PREFIX, license_key, license_pk, notice_attribute, status_gsi2_pk,
};
use super::table::{
    AccessPattern, Consistency, DynamoStore, Item, TransactError, from_item, n, names, s,
    sdk_error, time_value, to_item, values,
};
use super::usage::usage_sk;
use crate::domain::lifecycle::NoticeState;
use crate::domain::ports::{Candidate, LifecycleIndex, NoticeClaim, NoticeLedger, SweepPage};
use crate::domain::{
    AuditEntry, Feature, Installation, License, LicenseId, LicenseStatus, Period, StoreError,
};

/// Sort key of a sweep cursor.
const JOB_CURSOR_SK: &str = "CURSOR";

/// Partition of a lifecycle job's sweep cursor.
fn job_pk(job: &str) -> String {
    format!("JOB#{job}")
}

/// How the lifecycle job reads and writes.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "license",
        name: "licenses in a status expiring in a range, after a cursor",
        operation: "Query gsi2 (Limit)",
        key: "`gsi2pk = STATUS#<status> AND gsi2sk BETWEEN <after>+\" \" AND <to>#~`",
        consistency: Consistency::Eventual,
        used_by: "`LifecycleIndex::licenses_by_expiry`",
    },
    AccessPattern {
        entity: "installation",
        name: "active installations silent since before T, after a cursor",
        operation: "Query gsi2 (Limit)",
        key: "`gsi2pk = SEEN#active AND gsi2sk BETWEEN <after>+\" \" AND <T>#~`",
        consistency: Consistency::Eventual,
        used_by: "`LifecycleIndex::silent_installations`",
    },
    AccessPattern {
        entity: "usage counter",
        name: "this period's totals of a feature for many licenses",
        operation: "BatchGetItem (≤ 100 keys a call)",
        key: "`LICENSE#<lid>` / `USAGE#<feature>#<YYYY-MM>`",
        consistency: Consistency::Strong,
        used_by: "`LifecycleIndex::usage_totals`",
    },
    AccessPattern {
        entity: "job cursor",
        name: "where a sweep stopped",
        operation: "GetItem / PutItem",
        key: "`JOB#<job>` / `CURSOR`",
        consistency: Consistency::Strong,
        used_by: "`LifecycleIndex::cursor`, `LifecycleIndex::save_cursor`",
    },
    AccessPattern {
        entity: "installation",
        name: "cull a silent installation: inactive, seat −1, audit entry",
        operation: "TransactWriteItems (2 updates + put)",
        key: "`LICENSE#<lid>` / `INSTALLATION#<iid>`, `status = active AND last_seen_at = :seen`; `LICENSE#<lid>` / `LICENSE`, `attribute_exists(pk)`",
        consistency: Consistency::Write,
        used_by: "`LifecycleIndex::deactivate_installation`",
    },
    AccessPattern {
        entity: "license",
        name: "claim a notice (and forget stale ones)",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `LICENSE`; `attribute_exists(pk) AND (attribute_not_exists(notice:<id>) OR notice:<id> < claimed#<now>)`",
        consistency: Consistency::Write,
        used_by: "`NoticeLedger::claim_notice`",
    },
    AccessPattern {
        entity: "license",
        name: "mark a notice sent",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `LICENSE`; `attribute_exists(pk)`",
        consistency: Consistency::Write,
        used_by: "`NoticeLedger::mark_notice_sent`",
    },
    AccessPattern {
        entity: "license",
        name: "expire on the expiry decided on, with its audit entry",
        operation: "TransactWriteItems (update + put)",
        key: "`LICENSE#<lid>` / `LICENSE`; `status = active AND expires_at = :decided`",
        consistency: Consistency::Write,
        used_by: "`LifecycleIndex::expire_license`",
    },
    AccessPattern {
        entity: "license",
        name: "repair a drifted seat count, with its audit entry",
        operation: "TransactWriteItems (update + put)",
        key: "`LICENSE#<lid>` / `LICENSE`; `active_installations = :recorded`",
        consistency: Consistency::Write,
        used_by: "`LifecycleIndex::repair_seat_count`",
    },
];

const CLAIMED: &str = "claimed#";
const SENT: &str = "sent#";

impl DynamoStore {
    /// One page of `gsi2` under `pk` with sort keys in `(after, upper]` ∩ `[lower, upper]`.
    async fn gsi2_page(
        &self,
        pk: &str,
        lower: String,
        upper: String,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let from = match after {
            Some(a) if a >= lower.as_str() => format!("{a} "),
            _ => lower,
        };
        if from > upper {
            return Ok((Vec::new(), false));
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression("gsi2pk = :pk AND gsi2sk BETWEEN :from AND :to")
            .set_expression_attribute_values(Some(values(vec![
                (":pk", s(pk)),
                (":from", s(from)),
                (":to", s(upper)),
            ])))
            .limit(i32::try_from(limit.clamp(1, 1_000)).unwrap_or(100))
            .send()
            .await
            .map_err(sdk_error)?;
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), more))
    }
}

fn sort_key(item: &Item) -> Option<String> {
    match item.get("gsi2sk") {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn notices_of(item: &Item) -> BTreeMap<String, NoticeState> {
    item.iter()
        .filter_map(|(name, value)| {
            let id = name.strip_prefix(NOTICE_PREFIX)?;
            let AttributeValue::S(v) = value else {
                return None;
            };
            let state = if v.starts_with(SENT) {
                NoticeState::Sent
            } else {
                let until = v.strip_prefix(CLAIMED)?;
                NoticeState::Claimed {
                    until: OffsetDateTime::parse(until, &Rfc3339).ok()?,
                }
            };
            Some((id.to_owned(), state))
        })
        .collect()
}

/// Decodes what decodes. An item that does not (a hand edit, a bug) is logged and skipped, so it
/// cannot stop the sweep past it run after run.
fn decodable<T>(items: Vec<Item>, decode: impl Fn(Item) -> Result<T, StoreError>) -> Vec<T> {
    items
        .into_iter()
        .filter_map(|item| {
            let at = sort_key(&item).unwrap_or_default();
            decode(item)
                .map_err(|e| tracing::error!(error = %e, item = %at, "undecodable item skipped"))
                .ok()
        })
        .collect()
}

fn next_of(items: &[Item], more: bool) -> Option<String> {
    if more {
        items.last().and_then(sort_key)
    } else {
        None
    }
}

#[async_trait]
impl LifecycleIndex for DynamoStore {
    #[tracing::instrument(skip_all, fields(status = status.as_str(), limit))]
    async fn licenses_by_expiry(
        &self,
        status: LicenseStatus,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SweepPage<Candidate>, StoreError> {
        let (items, more) = self
            .gsi2_page(
                &status_gsi2_pk(status),
                keys::sortable_time(from),
                format!("{}#~", keys::sortable_time(to)),
                after,
                limit,
            )
            .await?;
        let next = next_of(&items, more);
        let candidates = decodable(items, |item| {
            let notices = notices_of(&item);
            let license = License::try_from(from_item::<LicenseRecord>(item)?)?;
            Ok(Candidate { license, notices })
        });
        Ok(SweepPage {
            items: candidates,
            next,
        })
    }

    #[tracing::instrument(skip_all, fields(limit))]
    async fn silent_installations(
        &self,
        seen_before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SweepPage<Installation>, StoreError> {
        let (items, more) = self
            .gsi2_page(
                SEEN_GSI2_PK,
                "0".into(),
                format!("{}#~", keys::sortable_time(seen_before)),
                after,
                limit,
            )
            .await?;
        let next = next_of(&items, more);
        let installations = decodable(items, |item| {
            Installation::try_from(from_item::<InstallationRecord>(item)?)
        });
        Ok(SweepPage {
            items: installations,
            next,
        })
    }

    async fn usage_totals(
        &self,
        licenses: &[LicenseId],
        feature: &Feature,
        period: Period,
    ) -> Result<HashMap<LicenseId, u64>, StoreError> {
        let mut totals = HashMap::new();
        for chunk in licenses.chunks(100) {
            let keys_: Vec<Item> = chunk
                .iter()
                .map(|l| keys::key(license_pk(l), usage_sk(feature, period)))
                .collect();
            for item in self.batch_get(keys_).await? {
                let license = match item.get("pk") {
                    Some(AttributeValue::S(pk)) => pk
                        .strip_prefix("LICENSE#")
                        .and_then(|id| LicenseId::parse(id).ok()),
                    _ => None,
                };
                let used = match item.get("used") {
                    Some(AttributeValue::N(v)) => v.parse::<u64>().ok(),
                    _ => None,
                };
                if let (Some(license), Some(used)) = (license, used) {
                    totals.insert(license, used);
                }
            }
        }
        Ok(totals)
    }

    async fn cursor(&self, job: &str) -> Result<Option<String>, StoreError> {
        let item = self.get(keys::key(job_pk(job), JOB_CURSOR_SK)).await?;
        Ok(item.and_then(|i| match i.get("after") {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        }))
    }

    async fn save_cursor(&self, job: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        let mut item = keys::key(job_pk(job), JOB_CURSOR_SK);
        item.insert("entity".into(), s("job_cursor"));
        if let Some(c) = cursor {
            item.insert("after".into(), s(c));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(license_id = %installation.license_id, installation_id = %installation.id))]
    async fn deactivate_installation(
        &self,
        installation: &Installation,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let license_pk = license_pk(&installation.license_id);
        let deactivate = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                license_pk.clone(),
                installation_sk(&installation.id),
            )))
            // Out of the silence sweep's partition, into the inactive one (same sort key).
            .update_expression(
                "SET #status = :inactive, deactivated_at = :at, gsi2pk = :unseated_pk",
            )
            .condition_expression("#status = :active AND last_seen_at = :seen")
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(values(vec![
                (":inactive", s("inactive")),
                (":active", s("active")),
                (":unseated_pk", s(super::installations::UNSEATED_GSI2_PK)),
                (":at", time_value(audit.at)),
                (":seen", time_value(installation.last_seen_at)),
            ])))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let release = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                license_pk.clone(),
                super::licenses::LICENSE_SK,
            )))
            .update_expression("ADD active_installations :minus_one")
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values(vec![(
                ":minus_one",
                AttributeValue::N("-1".into()),
            )])))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let audit = AuditRecord::new(license_pk, audit);
        let items = vec![
            TransactWriteItem::builder().update(deactivate).build(),
            TransactWriteItem::builder().update(release).build(),
            self.put(to_item(&audit)?, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            // It beat meanwhile (or was culled by a concurrent run): leave it alone.
            Err(TransactError::Cancelled(_)) => Ok(false),
            Err(TransactError::Store(e)) => Err(e),
        }
    }

    #[tracing::instrument(skip_all, fields(license_id = %id))]
    async fn expire_license(
        &self,
        id: &LicenseId,
        expires_at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let expire = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(license_pk(id), super::licenses::LICENSE_SK)))
            .update_expression("SET #status = :expired, updated_at = :at, gsi2pk = :gsi2pk")
            .condition_expression(
                "attribute_exists(pk) AND #status = :active AND expires_at = :decided",
            )
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(values(vec![
                (":expired", s(LicenseStatus::Expired.as_str())),
                (":active", s(LicenseStatus::Active.as_str())),
                (":at", time_value(audit.at)),
                (":decided", time_value(expires_at)),
                (
                    ":gsi2pk",
                    s(super::licenses::status_gsi2_pk(LicenseStatus::Expired)),
                ),
            ])))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let audit = AuditRecord::new(license_pk(id), audit);
        let items = vec![
            TransactWriteItem::builder().update(expire).build(),
            self.put(to_item(&audit)?, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            // Renewed, suspended, revoked or expired meanwhile: the decision no longer holds.
            Err(TransactError::Cancelled(_)) => Ok(false),
            Err(TransactError::Store(e)) => Err(e),
        }
    }

    #[tracing::instrument(skip_all, fields(license_id = %id, recorded, counted))]
    async fn repair_seat_count(
        &self,
        id: &LicenseId,
        recorded: u64,
        counted: u64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let repair = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(license_pk(id), super::licenses::LICENSE_SK)))
            .update_expression("SET active_installations = :counted")
            .condition_expression(
                "attribute_exists(pk) AND (active_installations = :recorded OR \
                 (attribute_not_exists(active_installations) AND :recorded = :zero))",
            )
            .set_expression_attribute_values(Some(values(vec![
                (":counted", n(counted)),
                (":recorded", n(recorded)),
                (":zero", n(0)),
            ])))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let audit = AuditRecord::new(license_pk(id), audit);
        let items = vec![
            TransactWriteItem::builder().update(repair).build(),
            self.put(to_item(&audit)?, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TransactError::Cancelled(_)) => Ok(false),
            Err(TransactError::Store(e)) => Err(e),
        }
    }
}

#[async_trait]
impl NoticeLedger for DynamoStore {
    #[tracing::instrument(skip_all, fields(license_id = %license, notice = id))]
    async fn claim_notice(
        &self,
        license: &LicenseId,
        id: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        stale: &[String],
    ) -> Result<NoticeClaim, StoreError> {
        // "claimed#<until>" < "claimed#<now>" exactly when the claim lapsed; "sent#…" sorts after
        // every "claimed#…", so a sent notice is never claimed again.
        let mut attr_names = names(&[("#n", notice_attribute(id).as_str())]);
        let mut update = "SET #n = :claim".to_owned();
        let stale = stale.iter().filter(|s| s.as_str() != id).take(20);
        for (i, old) in stale.enumerate() {
            update.push_str(if i == 0 { " REMOVE " } else { ", " });
            update.push_str(&format!("#s{i}"));
            attr_names.insert(format!("#s{i}"), notice_attribute(old));
        }
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(license_key(license)))
            .update_expression(update)
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#n) OR #n < :lapsed)",
            )
            .set_expression_attribute_names(Some(attr_names))
            .set_expression_attribute_values(Some(values(vec![
                (
                    ":claim",
                    s(format!("{CLAIMED}{}", keys::sortable_time(until))),
                ),
                (
                    ":lapsed",
                    s(format!("{CLAIMED}{}", keys::sortable_time(now))),
                ),
            ])))
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(NoticeClaim::Claimed),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(NoticeClaim::Taken)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    #[tracing::instrument(skip_all, fields(license_id = %license, notice = id))]
    async fn mark_notice_sent(
        &self,
        license: &LicenseId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(license_key(license)))
            .update_expression("SET #n = :sent")
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names(&[("#n", notice_attribute(id).as_str())])))
            .set_expression_attribute_values(Some(values(vec![(
                ":sent",
                s(format!("{SENT}{}", keys::sortable_time(at))),
            )])))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::n;
    use super::*;

    #[test]
    fn notice_attributes_decode_into_ledger_states() {
        let item: Item = HashMap::from([
            ("pk".to_owned(), s("LICENSE#x")),
            ("notice:a".to_owned(), s("sent#2026-01-01T00:00:00Z")),
            ("notice:b".to_owned(), s("claimed#2026-01-01T00:05:00Z")),
            ("notice:c".to_owned(), s("garbage")),
            ("used".to_owned(), n(3)),
        ]);
        let notices = notices_of(&item);
        assert_eq!(notices.get("a"), Some(&NoticeState::Sent));
        assert_eq!(
            notices.get("b"),
            Some(&NoticeState::Claimed {
                until: time::macros::datetime!(2026-01-01 0:05 UTC)
            })
        );
        assert_eq!(notices.len(), 2, "undecodable entries are ignored");
    }

    #[test]
    fn a_lapsed_claim_sorts_before_the_current_time_and_a_sent_mark_never_does() {
        let now = format!("{CLAIMED}2026-01-01T00:05:00Z");
        assert!(format!("{CLAIMED}2026-01-01T00:04:59Z") < now);
        assert!(format!("{CLAIMED}2026-01-01T00:05:01Z") > now);
        assert!(format!("{SENT}2020-01-01T00:00:00Z") > now);
    }
}
