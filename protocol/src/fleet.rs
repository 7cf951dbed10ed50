//! The operators' fleet listings: `GET /api/admin/fleet/customers|licenses|installations|attention`.
//!
//! Every listing answers one page and, when more may follow, an opaque `next` cursor to pass
//! back as `cursor` with the same filters. A page may hold fewer than `limit` items (filters the
//! index cannot apply skip some) and still name a next page; only a missing `next` ends the
//! listing.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::admin::CustomerView;
use crate::licensing::{InstallationView, LicenseView};
use crate::vocabulary::{Vocabulary, Wire};

/// A license in a listing: the license and its seats in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct FleetLicenseView<V: Vocabulary = Wire> {
    /// The license.
    #[serde(flatten)]
    pub license: LicenseView<V>,
    /// Installations holding a seat.
    pub active_installations: u64,
    /// Commercial terms.
    pub contract: crate::admin::ContractView,
}

/// An installation in a listing, with its license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct FleetInstallationView<V: Vocabulary = Wire> {
    /// The license it runs under.
    pub license_id: V::LicenseId,
    /// The installation.
    #[serde(flatten)]
    pub installation: InstallationView<V>,
}

/// One thing that needs an operator's look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound = "")]
pub struct AttentionView<V: Vocabulary = Wire> {
    /// Why: `expiring`, `silent`, `seat_limit`, `clock_tamper` or `usage`.
    pub kind: String,
    /// The license concerned.
    pub license_id: V::LicenseId,
    /// The installation concerned, for installation-level kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<V::InstallationId>,
    /// What was seen, in words (`expires in 6 days`, `workflows at 85 % of 1000`).
    pub detail: String,
    /// When: the expiry (`expiring`), the last heartbeat (`silent`), or when the flag was last
    /// raised.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Cursor of the next page (pass it back as `cursor`); absent when the listing ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /api/admin/fleet/customers` answer.
pub type CustomerPage<V = Wire> = ListPage<CustomerView<V>>;
/// `GET /api/admin/fleet/licenses` answer.
pub type LicensePage<V = Wire> = ListPage<FleetLicenseView<V>>;
/// `GET /api/admin/fleet/installations` answer.
pub type InstallationPage<V = Wire> = ListPage<FleetInstallationView<V>>;
/// `GET /api/admin/fleet/attention` answer.
pub type AttentionPage<V = Wire> = ListPage<AttentionView<V>>;
