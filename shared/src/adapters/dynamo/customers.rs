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
