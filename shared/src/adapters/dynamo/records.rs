//! Storage records: the exact item shapes in DynamoDB, separate from domain types, converted with
//! `From` / `TryFrom` so a malformed item becomes `StoreError::Corrupt`, never a panic.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys;
use crate::domain::{
    AuditEntry, Customer, CustomerId, DomainPattern, Feature, Hostname, Installation,
    InstallationId, InstallationStatus, Lease, LeaseToken, License, LicenseId, LicenseStatus,
    Limits, Plan, StoreError,
};

/// Entity tags, so a partition query can tell items apart.
pub const ENTITY_LICENSE: &str = "license";
/// See [`ENTITY_LICENSE`].
pub const ENTITY_INSTALLATION: &str = "installation";
/// See [`ENTITY_LICENSE`].
pub const ENTITY_CUSTOMER: &str = "customer";
/// See [`ENTITY_LICENSE`].
pub const ENTITY_AUDIT: &str = "audit";
/// See [`ENTITY_LICENSE`]: a usage counter (license, feature, month).
pub const ENTITY_USAGE: &str = "usage";

/// Only the tag, to route a partition's items.
#[derive(Debug, Deserialize)]
pub struct Tagged {
    /// The entity tag.
    pub entity: String,
}

/// A license item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LicenseRecord {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    pub gsi2pk: String,
    pub gsi2sk: String,
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
}

impl From<&License> for LicenseRecord {
    fn from(l: &License) -> Self {
        Self {
            pk: keys::license_pk(&l.id),
            sk: keys::LICENSE_SK.into(),
            gsi1pk: keys::customer_pk(&l.customer_id),
            gsi1sk: keys::license_gsi1_sk(&l.id),
            gsi2pk: keys::status_gsi2_pk(l.status),
            gsi2sk: keys::expiry_gsi2_sk(l.expires_at, &l.id),
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
        }
    }
}

fn corrupt(what: &str, id: &str) -> StoreError {
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
            id,
        })
    }
}

/// An installation item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstallationRecord {
    pub pk: String,
    pub sk: String,
    pub entity: String,
    pub id: String,
    pub license_id: String,
    pub status: InstallationStatus,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(default)]
    pub heartbeats: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge_users: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge_storage_gb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub lease_issued_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub lease_expires_at: Option<OffsetDateTime>,
}

impl TryFrom<InstallationRecord> for Installation {
    type Error = StoreError;

    fn try_from(r: InstallationRecord) -> Result<Self, StoreError> {
        let where_ = format!("{}/{}", r.pk, r.sk);
        Ok(Self {
            id: InstallationId::parse(&r.id).map_err(|_| corrupt("installation id", &where_))?,
            license_id: LicenseId::parse(&r.license_id)
                .map_err(|_| corrupt("license id", &where_))?,
            status: r.status,
            version: r.version,
            domain: r
                .domain
                .as_deref()
                .map(Hostname::parse)
                .transpose()
                .map_err(|_| corrupt("domain", &where_))?,
            first_seen_at: r.first_seen_at,
            last_seen_at: r.last_seen_at,
            gauges: crate::domain::Gauges {
                users: r.gauge_users,
                storage_gb: r.gauge_storage_gb,
            },
            lease: match (r.lease_token, r.lease_issued_at, r.lease_expires_at) {
                (Some(token), Some(issued_at), Some(expires_at)) => Some(Lease {
                    token: LeaseToken::new(token),
                    issued_at,
                    expires_at,
                }),
                _ => None,
            },
        })
    }
}

/// A customer item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerRecord {
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
            pk: keys::customer_pk(&c.id),
            sk: keys::CUSTOMER_SK.into(),
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

/// An audit item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
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
            sk: keys::audit_sk(entry.at, &uuid::Uuid::now_v7()),
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
