//! "Needs attention" flags: one item per flag (`ATTENTION#<kind>` / `<lid>#<iid or ->`), written
//! by [`AttentionFlags::raise`] (an overwrite: raising again refreshes it) and deleted by TTL when
//! its lifetime ends. One partition per kind, so listing a kind is one query; the partitions stay
//! as small as the fleet's open problems.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::licenses::corrupt;
use super::table::{AccessPattern, Consistency, DynamoStore, sdk_error, to_item};
use crate::domain::fleet::{AttentionKind, Flag};
use crate::domain::ports::AttentionFlags;
use crate::domain::{InstallationId, LicenseId, StoreError};

/// Entity tag of a flag item.
pub(crate) const ENTITY_FLAG: &str = "flag";

/// Partition of one kind of flag.
pub(crate) fn flag_pk(kind: AttentionKind) -> String {
    format!("ATTENTION#{}", kind.as_str())
}

/// Sort key of a flag: license, then installation (`-` for license-level flags).
pub(crate) fn flag_sk(license: &LicenseId, installation: Option<&InstallationId>) -> String {
    match installation {
        Some(i) => format!("{license}#{i}"),
        None => format!("{license}#-"),
    }
}

/// How flags are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "flag",
        name: "raise (or refresh) a needs-attention flag",
        operation: "PutItem",
        key: "`ATTENTION#<kind>` / `<lid>#<iid or ->` (TTL: raised + 7 days)",
        consistency: Consistency::Write,
        used_by: "`AttentionFlags::raise`",
    },
    AccessPattern {
        entity: "flag",
        name: "flags of one kind",
        operation: "Query (Limit)",
        key: "`pk = ATTENTION#<kind> AND sk BETWEEN <after> AND U+10FFFF`",
        consistency: Consistency::Eventual,
        used_by: "`FleetIndex::list_flags`",
    },
];

/// A flag item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FlagRecord {
    pub pk: String,
    pub sk: String,
    pub entity: String,
    pub kind: String,
    pub license_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<String>,
    pub detail: String,
    #[serde(with = "time::serde::rfc3339")]
    pub raised_at: OffsetDateTime,
    /// Unix seconds at which DynamoDB may delete it.
    pub ttl: i64,
}

impl From<&Flag> for FlagRecord {
    fn from(f: &Flag) -> Self {
        Self {
            pk: flag_pk(f.kind),
            sk: flag_sk(&f.license_id, f.installation_id.as_ref()),
            entity: ENTITY_FLAG.into(),
            kind: f.kind.as_str().into(),
            license_id: f.license_id.to_string(),
            installation_id: f.installation_id.as_ref().map(ToString::to_string),
            detail: f.detail.clone(),
            raised_at: f.raised_at,
            ttl: f.expires_at().unix_timestamp(),
        }
    }
}

impl TryFrom<FlagRecord> for Flag {
    type Error = StoreError;

    fn try_from(r: FlagRecord) -> Result<Self, StoreError> {
        let at = format!("{}/{}", r.pk, r.sk);
        Ok(Self {
            kind: AttentionKind::parse(&r.kind).ok_or_else(|| corrupt("flag kind", &at))?,
            license_id: LicenseId::parse(&r.license_id).map_err(|_| corrupt("license id", &at))?,
            installation_id: r
                .installation_id
                .map(|i| InstallationId::parse(&i))
                .transpose()
                .map_err(|_| corrupt("installation id", &at))?,
            detail: r.detail,
            raised_at: r.raised_at,
        })
    }
}

#[async_trait]
impl AttentionFlags for DynamoStore {
    #[tracing::instrument(skip_all, fields(license_id = %flag.license_id, kind = flag.kind.as_str()))]
    async fn raise(&self, flag: &Flag) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&FlagRecord::from(flag))?))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
