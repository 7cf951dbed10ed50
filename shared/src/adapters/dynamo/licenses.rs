//! Licenses: the license item (`LICENSE#<lid>` / `LICENSE`) — its keys, its record, and the
//! reads and writes of [`LicenseReader`] and [`LicenseWriter`].
//!
//! The license partition also holds its installations, audit trail and usage counters, so one
//! `BatchGetItem` answers a validation and one query lists a license's whole story. The item sits
//! in the customer index (`CUSTOMER#<cid>` / `LICENSE#<lid>`) and in the status + expiry index
//! (`STATUS#<status>` / `<expiresAt>#<lid>`) the lifecycle job sweeps, and in the plan index
//! (`PLAN#<plan>` / `<expiresAt>#<lid>`) and the channel index (`CHANNEL#<channel>` /
//! `<expiresAt>#<lid>`) the fleet listing reads. Lifecycle notices are
//! attributes of this item (`notice:<idempotency id>`), so the index query that finds a candidate
//! also says which notices it already got. Every status change is one transaction with its audit
//! entry; reads are strongly consistent, so a revocation is seen by the very next request.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::audit::AuditRecord;
use super::customers::customer_pk;
use super::installations::{ENTITY_INSTALLATION, InstallationRecord, installation_sk};
use super::keys;
use super::table::{
    AccessPattern, Consistency, DynamoStore, Tagged, TransactError, from_item, names, s,
    time_value, to_item, values,
};
use super::usage::{ENTITY_USAGE, usage_sk};
use crate::domain::ports::{LicenseAmender, LicenseReader, LicenseWriter, Snapshot};
use crate::domain::{
    AuditEntry, CustomerId, DomainPattern, Feature, Installation, InstallationId, License,
    LicenseId, LicenseStatus, Limits, Period, Plan, StoreError,
};

/// Entity tag of a license item.
pub(crate) const ENTITY_LICENSE: &str = "license";
/// Sort key of a license item.
pub(crate) const LICENSE_SK: &str = "LICENSE";
/// Prefix of the notice-ledger attributes on a license item.
pub(crate) const NOTICE_PREFIX: &str = "notice:";

/// Partition of a license (and its installations, audit trail and usage counters).
pub(crate) fn license_pk(id: &LicenseId) -> String {
    format!("LICENSE#{id}")
}

/// Customer-index sort key of a license.
fn license_gsi1_sk(id: &LicenseId) -> String {
    format!("LICENSE#{id}")
}

/// Status-index partition.
pub(crate) fn status_gsi2_pk(status: LicenseStatus) -> String {
    format!("STATUS#{}", status.as_str())
}

/// Status-index sort key: expiry first, so "active licenses expiring before T" is one range query.
pub(crate) fn expiry_gsi2_sk(expires_at: OffsetDateTime, id: &LicenseId) -> String {
    format!("{}#{id}", keys::sortable_time(expires_at))
}

/// Plan-index partition (`gsi3`).
pub(crate) fn plan_gsi3_pk(plan: Plan) -> String {
    format!("PLAN#{}", plan.name())
}

/// Channel-index partition (`gsi4`).
pub(crate) fn channel_gsi4_pk(channel: crate::domain::revenue::Channel) -> String {
    format!("CHANNEL#{}", channel.as_str())
}

/// License-item attribute holding the ledger state of one notice.
pub(crate) fn notice_attribute(idempotency_id: &str) -> String {
    format!("{NOTICE_PREFIX}{idempotency_id}")
}

/// The license item's key.
pub(crate) fn license_key(id: &LicenseId) -> super::table::Item {
    keys::key(license_pk(id), LICENSE_SK)
}

/// How licenses are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "license",
        name: "validation snapshot: license + installation (+ usage counter)",
        operation: "BatchGetItem",
        key: "`LICENSE#<lid>` / `LICENSE`, `INSTALLATION#<iid>` (, `USAGE#<feature>#<YYYY-MM>`)",
        consistency: Consistency::Strong,
        used_by: "`LicenseReader::snapshot`",
    },
    AccessPattern {
        entity: "license",
        name: "license by id",
        operation: "GetItem",
        key: "`LICENSE#<lid>` / `LICENSE`",
        consistency: Consistency::Strong,
        used_by: "`LicenseReader::license`",
    },
    AccessPattern {
        entity: "license",
        name: "create with its audit entry",
        operation: "TransactWriteItems (2 puts)",
        key: "`LICENSE#<lid>` / `LICENSE` + audit; `attribute_not_exists(pk)` on both",
        consistency: Consistency::Write,
        used_by: "`LicenseWriter::create_license`",
    },
    AccessPattern {
        entity: "license",
        name: "status change (renewal: + expiry and index key) with its audit entry",
        operation: "TransactWriteItems (update + put)",
        key: "`LICENSE#<lid>` / `LICENSE`; `attribute_exists(pk) AND status = :expected`",
        consistency: Consistency::Write,
        used_by: "`LicenseWriter::set_status`, `LicenseWriter::renew`",
    },
    AccessPattern {
        entity: "license",
        name: "change of terms (plan, limits, features, domains, contract, owner) with its audit entry (+ revenue change)",
        operation: "TransactWriteItems (update + put (+ put))",
        key: "`LICENSE#<lid>` / `LICENSE`; `#status = :status AND revision = :previous`",
        consistency: Consistency::Write,
        used_by: "`LicenseAmender::amend`",
    },
];

/// The license-item attributes an amendment rewrites (the record's own encoding of each).
const AMENDED: &[&str] = &[
    "customer_id",
    "gsi1pk",
    "plan",
    "gsi3pk",
    "features",
    "limits",
    "domain_restrictions",
    "contract",
    "gsi4pk",
    "revision",
    "updated_at",
];

/// A license item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LicenseRecord {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    pub gsi2pk: String,
    pub gsi2sk: String,
    #[serde(default)]
    pub gsi3pk: String,
    #[serde(default)]
    pub gsi3sk: String,
    #[serde(default)]
    pub gsi4pk: String,
    #[serde(default)]
    pub gsi4sk: String,
    pub entity: String,
    pub id: String,
    pub customer_id: String,
    pub plan: Plan,
    pub status: LicenseStatus,
    pub features: Vec<String>,
    pub limits: Limits,
    pub domain_restrictions: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub active_installations: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Absent on items written before contracts existed: the default terms.
    #[serde(default)]
    pub contract: crate::domain::revenue::Contract,
    /// Absent until the first change of terms: 0.
    #[serde(default)]
    pub revision: u64,
    /// Absent unless a change superseded earlier keys.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub keys_valid_from: Option<OffsetDateTime>,
}

impl From<&License> for LicenseRecord {
    fn from(l: &License) -> Self {
        Self {
            pk: license_pk(&l.id),
            sk: LICENSE_SK.into(),
            gsi1pk: customer_pk(&l.customer_id),
            gsi1sk: license_gsi1_sk(&l.id),
            gsi2pk: status_gsi2_pk(l.status),
            gsi2sk: expiry_gsi2_sk(l.expires_at, &l.id),
            gsi3pk: plan_gsi3_pk(l.plan),
            gsi3sk: expiry_gsi2_sk(l.expires_at, &l.id),
            gsi4pk: channel_gsi4_pk(l.contract.channel),
            gsi4sk: expiry_gsi2_sk(l.expires_at, &l.id),
            entity: ENTITY_LICENSE.into(),
            id: l.id.to_string(),
            customer_id: l.customer_id.to_string(),
            plan: l.plan,
            status: l.status,
            features: l.features.iter().map(ToString::to_string).collect(),
            limits: l.limits,
            domain_restrictions: l
                .domain_restrictions
                .iter()
                .map(ToString::to_string)
                .collect(),
            issued_at: l.issued_at,
            expires_at: l.expires_at,
            active_installations: l.active_installations,
            updated_at: l.updated_at,
            contract: l.contract.clone(),
            revision: l.revision,
            keys_valid_from: l.keys_valid_from,
        }
    }
}

/// A malformed field of a stored item: never a panic, always [`StoreError::Corrupt`].
pub(crate) fn corrupt(what: &str, id: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} in item {id}"))
}

impl TryFrom<LicenseRecord> for License {
    type Error = StoreError;

    fn try_from(r: LicenseRecord) -> Result<Self, StoreError> {
        let id = LicenseId::parse(&r.id).map_err(|_| corrupt("license id", &r.pk))?;
        Ok(Self {
            customer_id: CustomerId::parse(&r.customer_id)
                .map_err(|_| corrupt("customer id", &r.pk))?,
            plan: r.plan,
            status: r.status,
            features: r
                .features
                .iter()
                .map(|f| Feature::parse(f))
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("feature", &r.pk))?,
            limits: r.limits,
            domain_restrictions: r
                .domain_restrictions
                .iter()
                .map(|d| DomainPattern::parse(d))
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("domain restriction", &r.pk))?,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            active_installations: r.active_installations,
            updated_at: r.updated_at,
            contract: r.contract,
            revision: r.revision,
            keys_valid_from: r.keys_valid_from,
            id,
        })
    }
}

#[async_trait]
impl LicenseReader for DynamoStore {
    #[tracing::instrument(skip_all, fields(license_id = %license))]
    async fn snapshot(
        &self,
        license: &LicenseId,
        installation: &InstallationId,
        counter: Option<(&Feature, Period)>,
    ) -> Result<Snapshot, StoreError> {
        let mut pending = vec![
            license_key(license),
            keys::key(license_pk(license), installation_sk(installation)),
        ];
        if let Some((feature, period)) = counter {
            pending.push(keys::key(license_pk(license), usage_sk(feature, period)));
        }
        let found = self.batch_get(pending).await?;

        let mut snapshot = Snapshot {
            used: counter.map(|_| 0),
            ..Snapshot::default()
        };
        for item in found {
            let tag: Tagged = from_item(item.clone())?;
            match tag.entity.as_str() {
                ENTITY_LICENSE => {
                    snapshot.license = Some(License::try_from(from_item::<LicenseRecord>(item)?)?);
                }
                ENTITY_INSTALLATION => {
                    snapshot.installation =
                        Some(Installation::try_from(from_item::<InstallationRecord>(
                            item,
                        )?)?);
                }
                ENTITY_USAGE => {
                    snapshot.used = Some(
                        item.get("used")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                    );
                }
                other => return Err(StoreError::Corrupt(format!("unexpected entity {other}"))),
            }
        }
        Ok(snapshot)
    }

    #[tracing::instrument(skip_all, fields(license_id = %id))]
    async fn license(&self, id: &LicenseId) -> Result<Option<License>, StoreError> {
        self.get(license_key(id))
            .await?
            .map(|item| License::try_from(from_item::<LicenseRecord>(item)?))
            .transpose()
    }
}

#[async_trait]
impl LicenseWriter for DynamoStore {
    #[tracing::instrument(skip_all, fields(license_id = %license.id))]
    async fn create_license(
        &self,
        license: &License,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let record = LicenseRecord::from(license);
        self.create_with_audit(record.pk.clone(), &record, audit)
            .await
    }

    #[tracing::instrument(skip_all, fields(license_id = %id, to = to.as_str()))]
    async fn set_status(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.status_change(id, expected, to, None, audit).await
    }

    async fn renew(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        expires_at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.status_change(id, expected, to, Some(expires_at), audit)
            .await
    }
}

#[async_trait]
impl LicenseAmender for DynamoStore {
    #[tracing::instrument(skip_all, fields(license_id = %after.id))]
    async fn amend(
        &self,
        after: &License,
        audit: &AuditEntry,
        revenue: Option<&crate::domain::revenue::RevenueChange>,
    ) -> Result<bool, StoreError> {
        let Some(previous) = after.revision.checked_sub(1) else {
            return Ok(false);
        };
        // Each attribute as the record encodes it, so an amended item reads back exactly as a
        // created one would.
        let record = to_item(&LicenseRecord::from(after))?;
        let mut set = Vec::new();
        let mut vals = values(vec![
            (":status", s(after.status.as_str())),
            (":previous", super::table::n(previous)),
            (":zero", super::table::n(0)),
        ]);
        // Every attribute through a name placeholder: some (`plan`) are reserved words.
        let mut attribute_names = vec![("#status".to_owned(), "status".to_owned())];
        for (i, attribute) in AMENDED.iter().enumerate() {
            let value = record
                .get(*attribute)
                .cloned()
                .ok_or_else(|| StoreError::Backend(format!("record lacks {attribute}").into()))?;
            set.push(format!("#a{i} = :a{i}"));
            attribute_names.push((format!("#a{i}"), (*attribute).to_owned()));
            vals.insert(format!(":a{i}"), value);
        }
        let mut expression = format!("SET {}", set.join(", "));
        match record.get("keys_valid_from") {
            Some(v) => {
                expression.push_str(", keys_valid_from = :keys_valid_from");
                vals.insert(":keys_valid_from".into(), v.clone());
            }
            None => expression.push_str(" REMOVE keys_valid_from"),
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(license_key(&after.id)))
            .update_expression(expression)
            .condition_expression(
                "attribute_exists(pk) AND #status = :status AND (revision = :previous OR \
                 (attribute_not_exists(revision) AND :previous = :zero))",
            )
            .set_expression_attribute_names(Some(attribute_names.into_iter().collect()))
            .set_expression_attribute_values(Some(vals))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let audit = AuditRecord::new(license_pk(&after.id), audit);
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.put(to_item(&audit)?, Some("attribute_not_exists(pk)"))?,
        ];
        if let Some(change) = revenue {
            items.push(self.put(
                super::metrics::revenue_change_item(change)?,
                Some("attribute_not_exists(pk)"),
            )?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TransactError::Cancelled(_)) => Ok(false),
            Err(TransactError::Store(e)) => Err(e),
        }
    }
}

impl DynamoStore {
    /// One transaction: status `expected` → `to` (and, for a renewal, the new expiry with its
    /// index key) plus the audit entry. `false` when cancelled — the condition failed or a
    /// concurrent transaction touched the item: the caller re-reads.
    async fn status_change(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        expires_at: Option<OffsetDateTime>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut set = "SET #status = :to, updated_at = :at, gsi2pk = :gsi2pk".to_owned();
        let mut vals = values(vec![
            (":to", s(to.as_str())),
            (":expected", s(expected.as_str())),
            (":at", time_value(audit.at)),
            (":gsi2pk", s(status_gsi2_pk(to))),
        ]);
        if let Some(exp) = expires_at {
            // Both indexes that order licenses by expiry move with it.
            set.push_str(
                ", expires_at = :exp, gsi2sk = :gsi2sk, gsi3sk = :gsi2sk, gsi4sk = :gsi2sk",
            );
            vals.insert(":exp".into(), time_value(exp));
            vals.insert(":gsi2sk".into(), s(expiry_gsi2_sk(exp, id)));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(license_key(id)))
            .update_expression(set)
            .condition_expression("attribute_exists(pk) AND #status = :expected")
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(vals))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let audit = AuditRecord::new(license_pk(id), audit);
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.put(to_item(&audit)?, Some("attribute_not_exists(pk)"))?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TransactError::Cancelled(_)) => Ok(false),
            Err(TransactError::Store(e)) => Err(e),
        }
    }
}
