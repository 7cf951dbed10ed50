//! Installations and their seats: the installation item (`LICENSE#<lid>` /
//! `INSTALLATION#<iid>`, in its license's partition) — its keys, its record — and
//! [`InstallationRegistry`]: heartbeats (`touch`), the **seat claim** (`claim_seat`), the seat
//! release, leases.
//!
//! Seats: the license item carries `active_installations`. Taking a seat is (1) a conditional
//! `ADD active_installations 1` below the limit — the atomic admission decision — then (2) a
//! conditional write marking the installation active; if (2) finds it already active (a
//! concurrent beat of the same installation) the seat is given back (3). A refusal at (1) is
//! re-checked under [`Backoff::SEAT_RECHECK`], because concurrent beats of the same installation
//! may hold seats they are about to give back. An active installation is also in the silence
//! index (`SEEN#active` / `<lastSeenAt>#<lid>#<iid>`) the lifecycle job sweeps for culling.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys;
use super::licenses::{corrupt, license_key, license_pk};
use super::table::{
    AccessPattern, Backoff, Consistency, DynamoStore, Item, Step, from_item, n, names, s,
    sdk_error, time_value, values,
};
use crate::domain::ports::{HeartbeatReport, InstallationRegistry, SeatClaim};
use crate::domain::{
    Hostname, Installation, InstallationId, InstallationStatus, Lease, LeaseToken, LicenseId,
    StoreError,
};

/// Entity tag of an installation item.
pub(crate) const ENTITY_INSTALLATION: &str = "installation";

/// Silence-index partition of active installations (the lifecycle job sweeps only this one).
pub(crate) const SEEN_GSI2_PK: &str = "SEEN#active";
/// Silence-index partition of inactive installations (a released or culled seat moves here, so
/// the fleet listing finds them; installations deactivated before it existed are only listed
/// under their license).
pub(crate) const UNSEATED_GSI2_PK: &str = "SEEN#inactive";

/// Version-index partition (`gsi3`): one per reported product version.
pub(crate) fn version_gsi3_pk(version: &str) -> String {
    format!("VERSION#{version}")
}

/// Sort key of an installation under its license.
pub(crate) fn installation_sk(id: &InstallationId) -> String {
    format!("INSTALLATION#{id}")
}

/// The installation item's key.
pub(crate) fn installation_key(license: &LicenseId, id: &InstallationId) -> Item {
    keys::key(license_pk(license), installation_sk(id))
}

/// Where an installation item sits: the table, the heartbeat index (by seat state) and the
/// version index — the keys the DynamoDB writes set, for the in-memory store to sort by.
pub(crate) fn index_entries(
    i: &Installation,
) -> [(crate::adapters::fleet::Index, String, String); 3] {
    use crate::adapters::fleet::Index;
    let seen = seen_gsi2_sk(i.last_seen_at, &i.license_id, &i.id);
    let state = match i.status {
        InstallationStatus::Active => SEEN_GSI2_PK,
        InstallationStatus::Inactive => UNSEATED_GSI2_PK,
    };
    [
        (
            Index::Table,
            license_pk(&i.license_id),
            installation_sk(&i.id),
        ),
        (Index::Gsi2, state.to_owned(), seen.clone()),
        (Index::Gsi3, version_gsi3_pk(&i.version), seen),
    ]
}

/// Silence-index sort key: last heartbeat first, so "silent since before T" is one range query.
pub(crate) fn seen_gsi2_sk(at: OffsetDateTime, license: &LicenseId, id: &InstallationId) -> String {
    format!("{}#{license}#{id}", keys::sortable_time(at))
}

/// How installations and seats are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "installation",
        name: "heartbeat of a seated installation",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `INSTALLATION#<iid>`; `attribute_exists(pk) AND status = active`",
        consistency: Consistency::Write,
        used_by: "`InstallationRegistry::touch`",
    },
    AccessPattern {
        entity: "installation",
        name: "seat claim (1): count a seat below the limit",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `LICENSE`; `attribute_exists(pk) AND active_installations < :limit`",
        consistency: Consistency::Write,
        used_by: "`InstallationRegistry::claim_seat`",
    },
    AccessPattern {
        entity: "installation",
        name: "seat claim (2): register or revive the installation",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `INSTALLATION#<iid>`; `attribute_not_exists(pk) OR status = inactive`",
        consistency: Consistency::Write,
        used_by: "`InstallationRegistry::claim_seat`",
    },
    AccessPattern {
        entity: "installation",
        name: "seat claim (3): give a seat back",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `LICENSE`; `ADD active_installations -1`",
        consistency: Consistency::Write,
        used_by: "`InstallationRegistry::claim_seat`",
    },
    AccessPattern {
        entity: "installation",
        name: "installations of a license",
        operation: "Query",
        key: "`pk = LICENSE#<lid> AND begins_with(sk, INSTALLATION#)`",
        consistency: Consistency::Strong,
        used_by: "`InstallationRegistry::installations`",
    },
    AccessPattern {
        entity: "installation",
        name: "installations of a license, filtered (fleet listing)",
        operation: "Query (Limit)",
        key: "`pk = LICENSE#<lid> AND sk BETWEEN INSTALLATION#<after> AND INSTALLATION#U+10FFFF`",
        consistency: Consistency::Eventual,
        used_by: "`FleetIndex::installations`",
    },
    AccessPattern {
        entity: "installation",
        name: "installations by seat state, by last heartbeat",
        operation: "Query gsi2 (Limit)",
        key: "`gsi2pk = SEEN#active|SEEN#inactive AND gsi2sk <= <seenBefore>` (sort: `<lastSeenAt>#<lid>#<iid>`)",
        consistency: Consistency::Eventual,
        used_by: "`FleetIndex::installations`",
    },
    AccessPattern {
        entity: "installation",
        name: "installations by product version, by last heartbeat",
        operation: "Query gsi3 (Limit)",
        key: "`gsi3pk = VERSION#<version> AND gsi3sk <= <seenBefore>` (sort: `<lastSeenAt>#<lid>#<iid>`)",
        consistency: Consistency::Eventual,
        used_by: "`FleetIndex::installations`",
    },
    AccessPattern {
        entity: "installation",
        name: "store the latest lease",
        operation: "UpdateItem",
        key: "`LICENSE#<lid>` / `INSTALLATION#<iid>`; `attribute_exists(pk)`",
        consistency: Consistency::Write,
        used_by: "`InstallationRegistry::record_lease`",
    },
];

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
        // In the version index under its latest heartbeat, too.
        "gsi3pk = :version_pk",
        "gsi3sk = :seen_sk",
    ];
    let mut vals = values(vec![
        (":at", time_value(report.at)),
        (":version", s(report.version.clone())),
        (":one", n(1)),
        (":seen_pk", s(SEEN_GSI2_PK)),
        (":version_pk", s(version_gsi3_pk(&report.version))),
        (
            ":seen_sk",
            s(seen_gsi2_sk(
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
            .set_key(Some(installation_key(license, installation)))
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
            .set_key(Some(installation_key(
                &report.license_id,
                &report.installation_id,
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
        let license_key = license_key(&report.license_id);
        // A refusal is re-checked a few times: concurrent beats of this same installation may be
        // between their steps 1 and 3, holding seats they are about to give back. Still refused
        // after that, every seat is taken.
        Backoff::SEAT_RECHECK
            .run(
                "seat refusal re-check",
                |_| self.try_claim_seat(report, seat_limit, &license_key),
                || Ok(SeatClaim::SeatsFull),
            )
            .await
    }
}

impl DynamoStore {
    /// One attempt of [`InstallationRegistry::claim_seat`]: step 1, then steps 2 and 3 — or, when
    /// step 1 is refused, a touch in case the installation already holds a seat.
    async fn try_claim_seat(
        &self,
        report: &HeartbeatReport,
        seat_limit: u64,
        license_key: &Item,
    ) -> Result<Step<SeatClaim>, StoreError> {
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
            Ok(_) => self
                .seat_installation(report, license_key.clone())
                .await
                .map(Step::Done),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(match self.touch(report).await? {
                    Some(i) => Step::Done(SeatClaim::Seated(Box::new(i))),
                    None => Step::Retry,
                })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

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
            .set_key(Some(installation_key(
                &report.license_id,
                &report.installation_id,
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
                (":pk", s(license_pk(license))),
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

/// An installation item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstallationRecord {
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
