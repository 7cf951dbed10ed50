//! DynamoDB adapter: one table, keys from [`keys`], items from [`records`].
//!
//! Consistency: every read that decides a validation is strongly consistent, so a revocation is
//! seen by the very next request. Every state change and its audit entry go in one transaction.

pub mod keys;
mod lifecycle;
pub mod records;
pub mod schema;
mod usage;
mod workflows;

pub use usage::MARKER_TTL_DAYS;
pub use workflows::EXECUTION_TTL_DAYS;
pub(crate) use workflows::fit_for_storage;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::records::{
    AuditRecord, CustomerRecord, ENTITY_AUDIT, ENTITY_INSTALLATION, ENTITY_LICENSE, ENTITY_USAGE,
    InstallationRecord, LicenseRecord, Tagged,
};
use crate::domain::Period;
use crate::domain::ports::{
    CustomerDirectory, HeartbeatReport, InstallationRegistry, LicenseDetail, LicenseReader,
    LicenseWriter, SeatClaim, Snapshot,
};
use crate::domain::{
    AuditEntry, Customer, CustomerId, Feature, Installation, InstallationId, License, LicenseId,
    LicenseStatus, StoreError,
};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The store, bound to one table (tests pass their own table name).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Binds `client` to `table`.
    pub fn new_with_table(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// Strongly consistent `BatchGetItem` of up to 100 keys in one round trip; keys DynamoDB
    /// leaves unprocessed under load are retried briefly, then reported as throttling.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut pending = keys;
        let mut found = Vec::new();
        for attempt in 0..4u32 {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Backend(e.into()))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(sdk_error)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
        Err(StoreError::Throttled)
    }

    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), TransactError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    Err(TransactError::Cancelled(
                        e.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_owned())
                            .collect(),
                    ))
                }
                other => {
                    let code = other.code().map(str::to_owned);
                    Err(TransactError::Store(classify(
                        code.as_deref(),
                        other.into(),
                    )))
                }
            },
            Err(other) => Err(TransactError::Store(sdk_error(other))),
        }
    }

    pub(crate) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn query_all(
        &self,
        index: Option<&str>,
        key_condition: &str,
        values: Item,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                // Indexes only offer eventual consistency; the table is read consistently.
                .consistent_read(index.is_none())
                .key_condition_expression(key_condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

pub(crate) enum TransactError {
    /// Cancelled; one reason code per item, in order (`None`, `ConditionalCheckFailed`, …).
    Cancelled(Vec<String>),
    Store(StoreError),
}

fn classify(code: Option<&str>, source: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    match code {
        // Retryable by the caller: capacity, a concurrent transaction on the item (which the SDK
        // does not retry itself), or a transient service fault.
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TransactionConflictException"
            | "InternalServerError"
            | "ServiceUnavailable",
        ) => StoreError::Throttled,
        _ => StoreError::Backend(source),
    }
}

pub(crate) fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().map(str::to_owned);
    classify(code.as_deref(), Box::new(e))
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Backend(e.into()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) fn values(pairs: Vec<(&str, AttributeValue)>) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn time_value(t: time::OffsetDateTime) -> AttributeValue {
    s(keys::sortable_time(t))
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
        let license_key = keys::key(keys::license_pk(license), keys::LICENSE_SK);
        let installation_key = keys::key(
            keys::license_pk(license),
            keys::installation_sk(installation),
        );
        let mut pending = vec![license_key, installation_key];
        if let Some((feature, period)) = counter {
            pending.push(keys::key(
                keys::license_pk(license),
                keys::usage_sk(feature, period),
            ));
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
        self.get(keys::key(keys::license_pk(id), keys::LICENSE_SK))
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
        let audit = AuditRecord::new(record.pk.clone(), audit);
        let items = vec![
            self.put(to_item(&record)?, Some("attribute_not_exists(pk)"))?,
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
        expires_at: time::OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.status_change(id, expected, to, Some(expires_at), audit)
            .await
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
        expires_at: Option<time::OffsetDateTime>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let pk = keys::license_pk(id);
        let mut set = "SET #status = :to, updated_at = :at, gsi2pk = :gsi2pk".to_owned();
        let mut vals = values(vec![
            (":to", s(to.as_str())),
            (":expected", s(expected.as_str())),
            (":at", time_value(audit.at)),
            (":gsi2pk", s(keys::status_gsi2_pk(to))),
        ]);
        if let Some(exp) = expires_at {
            set.push_str(", expires_at = :exp, gsi2sk = :gsi2sk");
            vals.insert(":exp".into(), time_value(exp));
            vals.insert(":gsi2sk".into(), s(keys::expiry_gsi2_sk(exp, id)));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::key(pk.clone(), keys::LICENSE_SK)))
            .update_expression(set)
            .condition_expression("attribute_exists(pk) AND #status = :expected")
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(vals))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        let audit = AuditRecord::new(pk, audit);
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

fn first_failed(reasons: &[String]) -> bool {
    reasons.first().map(String::as_str) == Some("ConditionalCheckFailed")
}

/// `SET` clauses, names and values shared by touch and claim: what a heartbeat records. DynamoDB
/// rejects unused names and values, so `#domain` appears only when a domain was reported.
fn heartbeat_set(report: &HeartbeatReport) -> (String, HashMap<String, String>, Item) {
    let mut attr_names = names(&[("#status", "status")]);
    // An active installation is in the silence index under its latest heartbeat.
    let mut set = vec![
        "last_seen_at = :at",
        "version = :version",
        "gsi2pk = :seen_pk",
        "gsi2sk = :seen_sk",
    ];
    let mut vals = values(vec![
        (":at", time_value(report.at)),
        (":version", s(report.version.clone())),
        (":one", n(1)),
        (":seen_pk", s(keys::SEEN_GSI2_PK)),
        (
            ":seen_sk",
            s(keys::seen_gsi2_sk(
                report.at,
                &report.license_id,
                &report.installation_id,
            )),
        ),
    ]);
    if let Some(users) = report.gauges.users {
        set.push("gauge_users = :gauge_users");
        vals.insert(":gauge_users".into(), n(users));
    }
    if let Some(storage) = report.gauges.storage_gb {
        set.push("gauge_storage_gb = :gauge_storage_gb");
        vals.insert(":gauge_storage_gb".into(), n(storage));
    }
    if let Some(domain) = &report.domain {
        set.push("#domain = :domain");
        vals.insert(":domain".into(), s(domain.as_str()));
        attr_names.insert("#domain".into(), "domain".into());
    }
    (format!("SET {}", set.join(", ")), attr_names, vals)
}

#[async_trait]
impl InstallationRegistry for DynamoStore {
    async fn installations(&self, license: &LicenseId) -> Result<Vec<Installation>, StoreError> {
        self.installations_of(license).await
    }

    #[tracing::instrument(skip_all, fields(license_id = %license, installation_id = %installation))]
    async fn record_lease(
        &self,
        license: &LicenseId,
        installation: &InstallationId,
        lease: &crate::domain::Lease,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                keys::license_pk(license),
                keys::installation_sk(installation),
            )))
            .update_expression(
                "SET lease_token = :token, lease_issued_at = :iat, lease_expires_at = :exp",
            )
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values(vec![
                (":token", s(lease.token.expose())),
                (":iat", time_value(lease.issued_at)),
                (":exp", time_value(lease.expires_at)),
            ])))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(license_id = %report.license_id, installation_id = %report.installation_id))]
    async fn touch(&self, report: &HeartbeatReport) -> Result<Option<Installation>, StoreError> {
        let (set, attr_names, mut vals) = heartbeat_set(report);
        vals.insert(":active".into(), s("active"));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                keys::license_pk(&report.license_id),
                keys::installation_sk(&report.installation_id),
            )))
            .condition_expression("attribute_exists(pk) AND #status = :active")
            .update_expression(format!("{set} ADD heartbeats :one"))
            .set_expression_attribute_names(Some(attr_names.clone()))
            .set_expression_attribute_values(Some(vals))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .map(|item| Installation::try_from(from_item::<InstallationRecord>(item)?))
                .transpose(),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Counter first, then the installation, each a single-item conditional write:
    /// 1. `ADD active_installations 1` if below the limit — the atomic admission decision;
    /// 2. mark the installation active if it is new or inactive;
    /// 3. if step 2 finds it already active (a concurrent beat of the same installation won),
    ///    give the seat back.
    ///
    /// Single-item conditional writes cost half a transaction and do not conflict with each other
    /// the way transactions on one license item would when many installations start together.
    /// A crash between 1 and 2 over-counts by one seat — never over-admits; any error after step 1
    /// gives the seat back.
    #[tracing::instrument(skip_all, fields(license_id = %report.license_id, installation_id = %report.installation_id))]
    async fn claim_seat(
        &self,
        report: &HeartbeatReport,
        seat_limit: u64,
    ) -> Result<SeatClaim, StoreError> {
        let license_key = keys::key(keys::license_pk(&report.license_id), keys::LICENSE_SK);
        // A refusal is re-checked a few times: concurrent beats of this same installation may be
        // between their steps 1 and 3, holding seats they are about to give back.
        for attempt in 0..3u64 {
            let admitted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(license_key.clone()))
                .update_expression("ADD active_installations :one")
                .condition_expression("attribute_exists(pk) AND active_installations < :limit")
                .set_expression_attribute_values(Some(values(vec![
                    (":one", n(1)),
                    (":limit", n(seat_limit)),
                ])))
                .send()
                .await;
            match admitted {
                Ok(_) => return self.seat_installation(report, license_key).await,
                Err(SdkError::ServiceError(ctx))
                    if ctx.err().is_conditional_check_failed_exception() =>
                {
                    if let Some(i) = self.touch(report).await? {
                        return Ok(SeatClaim::Seated(Box::new(i)));
                    }
                    tokio::time::sleep(Duration::from_millis(25 * (attempt + 1))).await;
                }
                Err(e) => return Err(sdk_error(e)),
            }
        }
        Ok(SeatClaim::SeatsFull)
    }
}

impl DynamoStore {
    /// Steps 2 and 3 of [`InstallationRegistry::claim_seat`], once a seat is counted.
    async fn seat_installation(
        &self,
        report: &HeartbeatReport,
        license_key: Item,
    ) -> Result<SeatClaim, StoreError> {
        let (set, attr_names, mut vals) = heartbeat_set(report);
        vals.extend(values(vec![
            (":active", s("active")),
            (":inactive", s("inactive")),
            (":entity", s(ENTITY_INSTALLATION)),
            (":id", s(report.installation_id.as_str())),
            (":license_id", s(report.license_id.as_str())),
        ]));
        let seated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::key(
                keys::license_pk(&report.license_id),
                keys::installation_sk(&report.installation_id),
            )))
            .update_expression(format!(
                "{set}, #status = :active, entity = :entity, id = :id, license_id = :license_id, \
                 first_seen_at = if_not_exists(first_seen_at, :at) ADD heartbeats :one"
            ))
            .condition_expression("attribute_not_exists(pk) OR #status = :inactive")
            .set_expression_attribute_names(Some(attr_names))
            .set_expression_attribute_values(Some(vals))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match seated {
            Ok(out) => out
                .attributes
                .map(|item| Installation::try_from(from_item::<InstallationRecord>(item)?))
                .transpose()?
                .map(|i| SeatClaim::Seated(Box::new(i)))
                .ok_or_else(|| StoreError::Corrupt("UpdateItem returned no attributes".into())),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                self.release_seat(license_key).await;
                Ok(match self.touch(report).await? {
                    Some(i) => SeatClaim::Seated(Box::new(i)),
                    None => SeatClaim::SeatsFull,
                })
            }
            Err(e) => {
                // The seat was counted but the installation not recorded: give it back.
                self.release_seat(license_key).await;
                Err(sdk_error(e))
            }
        }
    }

    /// Every installation of the license (one partition query, consistent).
    async fn installations_of(&self, license: &LicenseId) -> Result<Vec<Installation>, StoreError> {
        self.query_all(
            None,
            "pk = :pk AND begins_with(sk, :prefix)",
            values(vec![
                (":pk", s(keys::license_pk(license))),
                (":prefix", s("INSTALLATION#")),
            ]),
        )
        .await?
        .into_iter()
        .map(|item| Installation::try_from(from_item::<InstallationRecord>(item)?))
        .collect()
    }

    /// Best-effort `ADD active_installations -1`; a failure is logged (the count then stays one
    /// high) rather than masking the original error.
    async fn release_seat(&self, license_key: Item) {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(license_key))
            .update_expression("ADD active_installations :minus_one")
            .set_expression_attribute_values(Some(values(vec![(
                ":minus_one",
                AttributeValue::N("-1".into()),
            )])))
            .send()
            .await;
        if let Err(e) = released {
            tracing::error!(
                error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                "could not release a seat"
            );
        }
    }
}

#[async_trait]
impl crate::domain::ports::AuditLog for DynamoStore {
    #[tracing::instrument(skip_all, fields(license_id = %license, action = %entry.action))]
    async fn append(&self, license: &LicenseId, entry: &AuditEntry) -> Result<(), StoreError> {
        let record = AuditRecord::new(keys::license_pk(license), entry);
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
}

#[async_trait]
impl CustomerDirectory for DynamoStore {
    #[tracing::instrument(skip_all, fields(customer_id = %customer.id))]
    async fn create_customer(
        &self,
        customer: &Customer,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let record = CustomerRecord::from(customer);
        let audit = AuditRecord::new(record.pk.clone(), audit);
        let items = vec![
            self.put(to_item(&record)?, Some("attribute_not_exists(pk)"))?,
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

    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.get(keys::key(keys::customer_pk(id), keys::CUSTOMER_SK))
            .await?
            .map(|item| Customer::try_from(from_item::<CustomerRecord>(item)?))
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    async fn licenses_of(&self, id: &CustomerId) -> Result<Vec<LicenseDetail>, StoreError> {
        // The customer index is eventually consistent: a license issued a moment ago may be
        // missing from this list for a moment. Each license's own partition is read consistently.
        let listed = self
            .query_all(
                Some(keys::GSI1),
                "gsi1pk = :pk",
                values(vec![(":pk", s(keys::customer_pk(id)))]),
            )
            .await?;
        let mut details = Vec::with_capacity(listed.len());
        for item in listed {
            let record: LicenseRecord = from_item(item)?;
            let partition = self
                .query_all(
                    None,
                    "pk = :pk",
                    values(vec![(":pk", s(record.pk.clone()))]),
                )
                .await?;
            let mut detail = LicenseDetail {
                license: License::try_from(record)?,
                installations: Vec::new(),
                audit: Vec::new(),
            };
            for item in partition {
                let tag: Tagged = from_item(item.clone())?;
                match tag.entity.as_str() {
                    ENTITY_LICENSE => {
                        detail.license = License::try_from(from_item::<LicenseRecord>(item)?)?;
                    }
                    ENTITY_INSTALLATION => {
                        detail
                            .installations
                            .push(Installation::try_from(from_item::<InstallationRecord>(
                                item,
                            )?)?)
                    }
                    ENTITY_AUDIT => detail
                        .audit
                        .push(AuditEntry::from(from_item::<AuditRecord>(item)?)),
                    // Later entities (usage counters, …) live here too; lookup ignores them.
                    _ => {}
                }
            }
            details.push(detail);
        }
        details.sort_by_key(|d| d.license.issued_at);
        Ok(details)
    }
}
