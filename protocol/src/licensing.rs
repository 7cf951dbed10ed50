//! `POST /api/validate` and `POST /api/heartbeat`: what an installation sends, what it gets back,
//! and the license, installation and lease views inside those answers.
//!
//! Requests are generic over how the license key is held: installations send a `String`, the
//! server reads straight into its redacting key type. They implement no `Debug`, so nothing can
//! log a key by accident.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::codes::Code;
use crate::token::Limits;
use crate::vocabulary::{Vocabulary, Wire};

/// Where a license is in its life. Only `active` licenses validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum LicenseStatus {
    /// In force (still subject to its expiry date).
    Active,
    /// Paused by an operator; may be reinstated.
    Suspended,
    /// Past its expiry date (set by the lifecycle job; validation checks the date regardless).
    Expired,
    /// Permanently withdrawn. Terminal.
    Revoked,
}

impl LicenseStatus {
    /// The lower-case name used in storage and the API.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Whether an installation holds a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallationStatus {
    /// Holds a seat.
    Active,
    /// Released its seat (culled after missing heartbeats); a heartbeat may revive it.
    Inactive,
}

/// Point-in-time readings an installation reports on its heartbeat. Gauges are not counters:
/// only the latest reading per installation matters (an omitted gauge keeps its last value), and
/// a license's value is the sum over its active installations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gauges {
    /// Named users of the installation (limit: `limits.users`).
    pub users: Option<u64>,
    /// Storage used, in GB (limit: `limits.storage_gb`).
    pub storage_gb: Option<u64>,
}

/// `POST /api/validate`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateRequest<K = String> {
    /// The license key (a JWT).
    pub license_key: K,
    /// The asking installation.
    pub installation_id: String,
    /// The domain it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// A feature to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// Its product version (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `POST /api/heartbeat`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatRequest<K = String> {
    /// The license key.
    pub license_key: K,
    /// The installation.
    pub installation_id: String,
    /// Its product version.
    pub version: String,
    /// The domain it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Current gauge readings.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::optional"
    )]
    pub gauges: Option<Gauges>,
    /// Integrity signals the installation raises (see [`crate::codes::Signal`]); omitted when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
}

/// A license as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct LicenseView<V: Vocabulary = Wire> {
    /// Id.
    pub id: V::LicenseId,
    /// Owner.
    pub customer_id: V::CustomerId,
    /// Tier.
    pub plan: V::Plan,
    /// State.
    pub status: LicenseStatus,
    /// Issue time.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Entitled features.
    pub features: Vec<V::Feature>,
    /// Limits.
    pub limits: Limits,
    /// Allowed domains (empty: any).
    pub domain_restrictions: Vec<V::DomainPattern>,
}

/// An installation as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct InstallationView<V: Vocabulary = Wire> {
    /// Id.
    pub id: V::InstallationId,
    /// Seat state.
    pub status: InstallationStatus,
    /// Last reported version.
    pub version: String,
    /// Last reported domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<V::Hostname>,
    /// First heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_at: OffsetDateTime,
    /// Latest heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Latest gauge readings.
    pub gauges: Gauges,
}

/// `POST /api/validate` answer (always 200 for a well-formed request).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ValidateResponse<V: Vocabulary = Wire> {
    /// Whether `code` is `VALID`.
    pub valid: bool,
    /// The verdict.
    pub code: Code,
    /// A sentence for humans.
    pub detail: String,
    /// Server time.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The license, once the key verified and the record exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseView<V>>,
}

/// Heartbeat timing advice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatTiming {
    /// Seconds between heartbeats.
    pub interval_seconds: i64,
    /// When the next one is due.
    #[serde(with = "time::serde::rfc3339")]
    pub next_due_at: OffsetDateTime,
}

/// `POST /api/heartbeat` answer (always 200 for a well-formed request).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct HeartbeatResponse<V: Vocabulary = Wire> {
    /// Whether `code` is `VALID` (the installation holds a seat under a usable license).
    pub ok: bool,
    /// The verdict.
    pub code: Code,
    /// A sentence for humans.
    pub detail: String,
    /// Server time.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The license, once the key verified and the record exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseView<V>>,
    /// The installation as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation: Option<InstallationView<V>>,
    /// When to beat next.
    pub heartbeat: HeartbeatTiming,
    /// The installation's lease, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseView>,
}

/// A lease as handed to its installation. `Debug` hides the token: it is a bearer credential.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseView {
    /// The signed lease (compact JWS, `typ: lease`).
    pub token: String,
    /// `iat`.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// `exp`.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for LeaseView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseView")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
