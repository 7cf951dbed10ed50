//! The operator's routes: revoke, suspend/reinstate, create customers, issue and renew licenses,
//! look a customer's licenses up, plus the health check.
//!
//! Requests are the raw wire shape (strings as sent); the server turns them into validated
//! commands. Views carry ids typed by a [`Vocabulary`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::licensing::{InstallationView, LicenseStatus, LicenseView};
use crate::token::LimitOverrides;
use crate::vocabulary::{Vocabulary, Wire};

/// `POST /api/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeRequest {
    /// The license to revoke.
    pub license_id: String,
    /// Why (recorded in the audit trail).
    pub reason: String,
}

/// `POST /api/admin/licenses/{licenseId}/suspend|reinstate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeRequest {
    /// Why (recorded in the audit trail).
    pub reason: String,
}

/// `POST /api/admin/customers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// Display name.
    pub name: String,
    /// Contact email.
    pub email: String,
}

/// `POST /api/admin/licenses`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueLicenseRequest {
    /// Owner.
    pub customer_id: String,
    /// `starter`, `professional` or `enterprise`.
    pub plan: String,
    /// End of term (RFC 3339); exclusive with `validDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Term in days (1..=3650, default 365).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<i64>,
    /// Replaces the plan's features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Overrides some of the plan's limits.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::optional"
    )]
    pub limits: Option<LimitOverrides>,
    /// Allowed domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_restrictions: Option<Vec<String>>,
    /// Commercial terms (default: self-hosted, yearly, the price list's currency and price,
    /// starting at issue).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::optional"
    )]
    pub contract: Option<ContractTerms>,
}

/// A license's commercial terms as sent; every field optional (defaults as documented).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractTerms {
    /// `self_hosted` (default) or `saas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `yearly` (default) or `monthly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// ISO 4217 code (default: the price list's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Price per interval in minor units, overriding the price list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<u64>,
    /// Billing start, `YYYY-MM-DD` (default: the issue date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// A license's commercial terms as operators see them (never shown to installations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractView {
    /// `self_hosted` or `saas`.
    pub channel: String,
    /// `monthly` or `yearly`.
    pub interval: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Price per interval in minor units, when it overrides the price list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<u64>,
    /// Billing start, `YYYY-MM-DD`.
    pub start: String,
}

/// `POST /api/admin/licenses/{licenseId}/renew`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenewLicenseRequest {
    /// New expiry (RFC 3339); or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// new term in days from now (1..=3650, default 365).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<i64>,
    /// Why (kept in the audit trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `PATCH /api/admin/licenses/{licenseId}`: every field optional; what is absent stays as it is.
///
/// A new `plan` re-derives the features and limits from the new plan's defaults (then `features`
/// and `limits` given here apply on top); without a plan change, `limits` overrides the current
/// limits field by field and `features` replaces the current set. A new `customerId` moves the
/// license to that customer and always revokes the previous key (it names the old owner).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeLicenseRequest {
    /// Move the license to this customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// New tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Replaces the entitled features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Overrides some limits.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::optional"
    )]
    pub limits: Option<LimitOverrides>,
    /// Replaces the allowed domains (`[]`: any domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_restrictions: Option<Vec<String>>,
    /// Changes some commercial terms.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::objects::optional"
    )]
    pub contract: Option<ContractChange>,
    /// Make every earlier key of the license answer `REVOKED` (the new key replaces them).
    #[serde(default)]
    pub revoke_previous_key: bool,
    /// Why (kept in the audit trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A change of a license's commercial terms as sent; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractChange {
    /// `self_hosted` or `saas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `monthly` or `yearly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// ISO 4217 code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Price per interval in minor units; `null` removes the override (the price list applies).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "nullable"
    )]
    pub price: Option<Option<u64>>,
    /// Billing start, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// `deserialize_with` telling a field sent as `null` (`Some(None)`) from one left out (`None`,
/// through `#[serde(default)]`).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// One changed field of a license change: its name as the request spells it
/// (`limits.installations`, `contract.price`, …), and its values before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// The field.
    pub field: String,
    /// Before.
    pub from: serde_json::Value,
    /// After.
    pub to: serde_json::Value,
}

/// `PATCH /api/admin/licenses/{licenseId}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct LicenseChangedResponse<V: Vocabulary = Wire> {
    /// The license as it is now.
    pub license: LicenseView<V>,
    /// Its commercial terms as they are now.
    pub contract: ContractView,
    /// A key signed for the license as it is now: hand it to the customer. Shown once. Signed
    /// even when nothing changed, so a retried request still gets a key that works.
    pub license_key: String,
    /// What changed (empty: nothing; then nothing was written).
    pub changes: Vec<FieldChange>,
    /// Whether every earlier key now answers `REVOKED`.
    pub previous_keys_revoked: bool,
    /// Installations holding a seat beyond a lowered seat limit: they keep it until released
    /// (`…/installations/{installationId}/release`) or culled; no new seat is given meanwhile.
    pub seats_over_limit: u64,
}

/// A customer as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct CustomerView<V: Vocabulary = Wire> {
    /// Id.
    pub id: V::CustomerId,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An audit entry as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditView {
    /// What happened.
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Status before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<LicenseStatus>,
    /// Status after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<LicenseStatus>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A license with its installations and audit trail, for `GET /api/license/{customerId}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct LicenseDetailView<V: Vocabulary = Wire> {
    /// The license.
    #[serde(flatten)]
    pub license: LicenseView<V>,
    /// Installations holding a seat.
    pub active_installations: u64,
    /// Commercial terms.
    pub contract: ContractView,
    /// Every installation.
    pub installations: Vec<InstallationView<V>>,
    /// The latest state changes (at most 50), oldest first.
    pub audit: Vec<AuditView>,
    /// Cursor for the older entries (`GET /api/admin/licenses/{licenseId}/audit?before=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_next: Option<String>,
}

/// `GET /api/admin/licenses/{licenseId}/audit` answer: a page of the trail, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPageResponse {
    /// The license.
    pub license_id: String,
    /// Entries, newest first.
    pub entries: Vec<AuditView>,
    /// Cursor for the next (older) page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /api/license/{customerId}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct CustomerLicensesResponse<V: Vocabulary = Wire> {
    /// The customer.
    pub customer: CustomerView<V>,
    /// Their licenses, oldest first.
    pub licenses: Vec<LicenseDetailView<V>>,
}

/// `POST /api/revoke` and suspend / reinstate answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct StatusChangeResponse<V: Vocabulary = Wire> {
    /// The license after the call.
    pub license: LicenseView<V>,
    /// Whether this call changed it (false: it already had that status).
    pub changed: bool,
}

/// `POST /api/admin/licenses/{licenseId}/installations/{installationId}/release` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct InstallationReleasedResponse<V: Vocabulary = Wire> {
    /// The installation after the call (`inactive`).
    pub installation: InstallationView<V>,
    /// Whether this call freed its seat (false: it held none).
    pub changed: bool,
}

/// `POST /api/admin/customers` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct CustomerCreatedResponse<V: Vocabulary = Wire> {
    /// The new customer.
    pub customer: CustomerView<V>,
}

/// `POST /api/admin/licenses` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct LicenseIssuedResponse<V: Vocabulary = Wire> {
    /// The new license.
    pub license: LicenseView<V>,
    /// Its signed key: hand it to the customer. Shown once; not stored in plain text by us.
    pub license_key: String,
}

/// `GET /health` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: String,
    /// The deployed version.
    pub version: String,
}

/// `POST /api/admin/licenses/{licenseId}/activations`: an offline activation file for one
/// air-gapped installation (the answer is a [`crate::token::ActivationFile`]).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivationRequest {
    /// The installation id the agent will use (`NECTAR_INSTALLATION_ID`).
    pub installation_id: String,
    /// Days the activation runs, 1–365 (default 90); never past the license's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
}
