//! Customers: the customer item (`CUSTOMER#<cid>` / `CUSTOMER`) — its keys, its record — and
//! [`CustomerDirectory`], whose lookup lists a customer's licenses through the customer index
//! (`gsi1`) and reads each license's partition (license, installations, audit trail).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::installations::{ENTITY_INSTALLATION, InstallationRecord};
use super::keys::{self, GSI1};
use super::licenses::{ENTITY_LICENSE, LicenseRecord, corrupt};
use super::table::{AccessPattern, Consistency, DynamoStore, Tagged, from_item, s, values};
use crate::domain::ports::{AUDIT_PAGE, AuditLog, CustomerDirectory, LicenseDetail};
use crate::domain::{AuditEntry, Customer, CustomerId, Installation, License, StoreError};

/// Entity tag of a customer item.
pub(crate) const ENTITY_CUSTOMER: &str = "customer";
/// Sort key of a customer item.
pub(crate) const CUSTOMER_SK: &str = "CUSTOMER";

/// Partition of a customer; also the customer-index key of their licenses.
pub(crate) fn customer_pk(id: &CustomerId) -> String {
    format!("CUSTOMER#{id}")
}

/// Creation-index partition of every customer (`gsi2`).
pub(crate) const CREATED_GSI2_PK: &str = "CUSTOMERS#created";
/// Name-index partition of every customer (`gsi3`).
pub(crate) const NAME_GSI3_PK: &str = "CUSTOMERS#name";

/// Creation-index sort key: creation time first, so a created range is one key condition.
pub(crate) fn created_gsi2_sk(at: OffsetDateTime, id: &CustomerId) -> String {
    format!("{}#{id}", keys::sortable_time(at))
}

/// Most bytes of a folded name kept in the name index's sort key (DynamoDB allows 1,024 per sort
/// key; names are at most 200 characters, but lower-casing can lengthen them). A prefix longer
/// than this still works: the index narrows to the first bytes, the exact filter does the rest.
const NAME_KEY_BYTES: usize = 800;

/// The name as the name index sorts and prefix-matches it: lower-cased, cut at a character
/// boundary to [`NAME_KEY_BYTES`].
pub(crate) fn name_key(name: &str) -> String {
    let mut folded = crate::domain::fleet::fold(name);
    if folded.len() > NAME_KEY_BYTES {
        let mut cut = NAME_KEY_BYTES;
        while !folded.is_char_boundary(cut) {
            cut -= 1;
        }
        folded.truncate(cut);
    }
    folded
}

/// Name-index sort key: `<folded name>#<cid>`.
pub(crate) fn name_gsi3_sk(name: &str, id: &CustomerId) -> String {
    format!("{}#{id}", name_key(name))
}

/// Email-index partition: one per (folded) address.
pub(crate) fn email_gsi4_pk(email: &str) -> String {
    format!("EMAIL#{}", crate::domain::fleet::fold(email))
}

/// How customers are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "customer",
        name: "create with its audit entry",
        operation: "TransactWriteItems (2 puts)",
        key: "`CUSTOMER#<cid>` / `CUSTOMER` + audit; `attribute_not_exists(pk)` on both",
        consistency: Consistency::Write,
        used_by: "`CustomerDirectory::create_customer`",
    },
    AccessPattern {
        entity: "customer",
        name: "customers by name prefix (case-insensitive), or all by name",
        operation: "Query gsi3 (Limit)",
        key: "`gsi3pk = CUSTOMERS#name AND gsi3sk BETWEEN <prefix> AND <prefix>+U+10FFFF` (sort: `<folded name>#<cid>`)",
        consistency: Consistency::Eventual,
        used_by: "`FleetIndex::customers`",
    },
    AccessPattern {
        entity: "customer",
        name: "customers by exact email (case-insensitive)",
        operation: "Query gsi4 (Limit)",
        key: "`gsi4pk = EMAIL#<folded email>` (sort: `<cid>`)",
        consistency: Consistency::Eventual,
        used_by: "`FleetIndex::customers`",
    },
    AccessPattern {
        entity: "customer",
        name: "customers created in a range",
        operation: "Query gsi2 (Limit)",
        key: "`gsi2pk = CUSTOMERS#created AND gsi2sk BETWEEN <from> AND <to>` (sort: `<createdAt>#<cid>`)",
        consistency: Consistency::Eventual,
        used_by: "`FleetIndex::customers`",
    },
    AccessPattern {
        entity: "customer",
        name: "customer by id",
        operation: "GetItem",
        key: "`CUSTOMER#<cid>` / `CUSTOMER`",
        consistency: Consistency::Strong,
        used_by: "`CustomerDirectory::customer`",
    },
    AccessPattern {
        entity: "customer",
        name: "licenses of a customer",
        operation: "Query gsi1",
        key: "`gsi1pk = CUSTOMER#<cid>` (sort: `LICENSE#<lid>`)",
        consistency: Consistency::Eventual,
        used_by: "`CustomerDirectory::licenses_of`",
    },
    AccessPattern {
        entity: "customer",
        name: "a license's partition but its audit trail: license, installations, counters",
        operation: "Query",
        key: "`pk = LICENSE#<lid> AND sk >= INSTALLATION#`",
        consistency: Consistency::Strong,
        used_by: "`CustomerDirectory::licenses_of`",
    },
];

/// A customer item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CustomerRecord {
    pub pk: String,
    pub sk: String,
    #[serde(default)]
    pub gsi2pk: String,
    #[serde(default)]
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
    pub name: String,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Customer> for CustomerRecord {
    fn from(c: &Customer) -> Self {
        Self {
            pk: customer_pk(&c.id),
            sk: CUSTOMER_SK.into(),
            gsi2pk: CREATED_GSI2_PK.into(),
            gsi2sk: created_gsi2_sk(c.created_at, &c.id),
            gsi3pk: NAME_GSI3_PK.into(),
            gsi3sk: name_gsi3_sk(&c.name, &c.id),
            gsi4pk: email_gsi4_pk(&c.email),
            gsi4sk: c.id.to_string(),
            entity: ENTITY_CUSTOMER.into(),
            id: c.id.to_string(),
            name: c.name.clone(),
            email: c.email.clone(),
            created_at: c.created_at,
        }
    }
}

impl TryFrom<CustomerRecord> for Customer {
    type Error = StoreError;

    fn try_from(r: CustomerRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: CustomerId::parse(&r.id).map_err(|_| corrupt("customer id", &r.pk))?,
            name: r.name,
            email: r.email,
            created_at: r.created_at,
        })
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
        self.create_with_audit(record.pk.clone(), &record, audit)
            .await
    }

    #[tracing::instrument(skip_all, fields(customer_id = %id))]
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.get(keys::key(customer_pk(id), CUSTOMER_SK))
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
                Some(GSI1),
                "gsi1pk = :pk",
                values(vec![(":pk", s(customer_pk(id)))]),
            )
            .await?;
        let mut details = Vec::with_capacity(listed.len());
        for item in listed {
            let record: LicenseRecord = from_item(item)?;
            // Everything but the audit trail (sort keys from `INSTALLATION#` on: installations,
            // the license, usage counters); the trail is paged — it grows without bound.
            let partition = self
                .query_all(
                    None,
                    "pk = :pk AND sk >= :from",
                    values(vec![
                        (":pk", s(record.pk.clone())),
                        (":from", s("INSTALLATION#")),
                    ]),
                )
                .await?;
            let license = License::try_from(record)?;
            let page = self.audit_page(&license.id, None, AUDIT_PAGE).await?;
            let mut detail = LicenseDetail {
                license,
                installations: Vec::new(),
                audit: page.entries.into_iter().rev().collect(),
                audit_next: page.next,
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
