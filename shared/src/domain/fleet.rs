//! The fleet as operators search it: filters of the customer, license and installation listings,
//! the pages they come in, and the "needs attention" flags.
//!
//! Contracts shared by every store:
//! - A listing walks one or more index partitions ("legs") in a fixed order, each in sort-key
//!   order; a [`PageCursor`] names the leg and the last sort key returned (or examined), so the
//!   next page resumes exactly there. A cursor is only good for the filter that produced it:
//!   another filter's cursor names a leg the new listing does not walk and is refused
//!   ([`StoreError::InvalidCursor`]).
//! - A page holds at most `limit` items and is filled by a bounded number of index reads
//!   ([`MAX_READS_PER_PAGE`]); when filters the index cannot apply skip items, a page may hold
//!   fewer than `limit` items and still name a next page. `next: None` means the listing ended.

use time::OffsetDateTime;

use super::ids::{CustomerId, InstallationId, LicenseId};
use super::license::{InstallationStatus, LicenseStatus};
use super::plan::Plan;

/// Index reads one page may make at most (when filters skip items, more reads fill the page).
pub const MAX_READS_PER_PAGE: usize = 4;

/// Largest page a listing serves.
pub const MAX_PAGE: usize = 200;

/// Default page size.
pub const DEFAULT_PAGE: usize = 50;

/// Where a listing resumes: the leg (an index partition, e.g. `STATUS#active`) and the last sort
/// key seen in it. Opaque to API callers (see `api::fleet` for its wire form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    /// The partition being walked.
    pub leg: String,
    /// The last sort key returned or examined in it.
    pub after: String,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// Matching items, in listing order.
    pub items: Vec<T>,
    /// Where the next page starts; `None`: the listing ended.
    pub next: Option<PageCursor>,
}

/// Which customers to list. Order: by name (case-insensitive) unless only a created range is
/// given (then by creation time, oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    /// Case-insensitive name prefix (compared lower-cased).
    pub name_prefix: Option<String>,
    /// Exact email (case-insensitive).
    pub email: Option<String>,
    /// Created at or after.
    pub created_after: Option<OffsetDateTime>,
    /// Created before.
    pub created_before: Option<OffsetDateTime>,
}

impl CustomerFilter {
    /// Whether `c` passes every filter (what the index did not already select is checked here,
    /// by every store alike).
    pub fn matches(&self, c: &super::Customer) -> bool {
        self.name_prefix
            .as_ref()
            .is_none_or(|p| fold(&c.name).starts_with(&fold(p)))
            && self
                .email
                .as_ref()
                .is_none_or(|e| fold(&c.email) == fold(e))
            && self.created_after.is_none_or(|t| c.created_at >= t)
            && self.created_before.is_none_or(|t| c.created_at < t)
    }
}

/// Which licenses to list. Order: by expiry, then id, within each status (active, suspended,
/// expired, revoked) — or within the customer's licenses by id when a customer is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseFilter {
    /// Only this status.
    pub status: Option<LicenseStatus>,
    /// Only this plan.
    pub plan: Option<Plan>,
    /// Only this customer's.
    pub customer: Option<CustomerId>,
    /// Only this channel's (self-hosted or SaaS).
    pub channel: Option<super::revenue::Channel>,
    /// Expiring at or after.
    pub expires_after: Option<OffsetDateTime>,
    /// Expiring before.
    pub expires_before: Option<OffsetDateTime>,
}

impl LicenseFilter {
    /// Whether `l` passes every filter.
    pub fn matches(&self, l: &super::License) -> bool {
        self.status.is_none_or(|s| l.status == s)
            && self.plan.is_none_or(|p| l.plan == p)
            && self.customer.is_none_or(|c| l.customer_id == c)
            && self.channel.is_none_or(|c| l.contract.channel == c)
            && self.expires_after.is_none_or(|t| l.expires_at >= t)
            && self.expires_before.is_none_or(|t| l.expires_at < t)
    }
}

/// Which installations to list. Order: by license then installation id when a license is given;
/// else by last heartbeat, oldest first (active ones, then inactive ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallationFilter {
    /// Only this license's.
    pub license: Option<LicenseId>,
    /// Only active (seat holders) or inactive ones.
    pub status: Option<InstallationStatus>,
    /// Only this product version (exact).
    pub version: Option<String>,
    /// Last heartbeat before.
    pub seen_before: Option<OffsetDateTime>,
}

impl InstallationFilter {
    /// Whether `i` passes every filter.
    pub fn matches(&self, i: &super::Installation) -> bool {
        self.license.as_ref().is_none_or(|l| &i.license_id == l)
            && self.status.is_none_or(|s| i.status == s)
            && self.version.as_ref().is_none_or(|v| &i.version == v)
            && self.seen_before.is_none_or(|t| i.last_seen_at < t)
    }
}

/// Case-insensitive comparison form: Unicode lower case (names and emails are compared so).
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Why a license or an installation needs an operator's look.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum AttentionKind {
    /// Active, expiring within the asked number of days (read live from the expiry index).
    Expiring,
    /// Active installations whose last heartbeat is older than the asked number of hours (read
    /// live from the heartbeat index).
    Silent,
    /// An installation was refused because every seat was taken (flag raised by the heartbeat).
    SeatLimit,
    /// An installation reported its clock going backwards (flag raised by the heartbeat).
    ClockTamper,
    /// A usage counter or gauge reached 80 % or 100 % of its limit this month (flag raised by the
    /// lifecycle job's usage warnings).
    Usage,
}

impl AttentionKind {
    /// Every kind, in listing order.
    pub const ALL: &[AttentionKind] = <AttentionKind as strum::VariantArray>::VARIANTS;

    /// The API name (`seat_limit`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the API name.
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }

    /// Whether the kind is a stored flag (the others are read live from indexes).
    pub fn is_flag(self) -> bool {
        matches!(self, Self::SeatLimit | Self::ClockTamper | Self::Usage)
    }
}

/// How long a raised flag stays listed unless raised again: a week, so a weekly look misses
/// nothing and a resolved problem leaves the list by itself.
pub const FLAG_LIFETIME: time::Duration = time::Duration::days(7);

/// A stored "needs attention" flag: one per kind per license (and installation, for
/// installation-level kinds); raising it again refreshes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Why.
    pub kind: AttentionKind,
    /// The license concerned.
    pub license_id: LicenseId,
    /// The installation concerned, for installation-level kinds.
    pub installation_id: Option<InstallationId>,
    /// What was seen, for the operator (`workflows at 85 % of 1000`).
    pub detail: String,
    /// When it was last raised (whole seconds).
    pub raised_at: OffsetDateTime,
}

impl Flag {
    /// When the flag leaves the list unless raised again.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.raised_at + FLAG_LIFETIME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_kinds_have_stable_snake_case_names() {
        let names: Vec<_> = AttentionKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["expiring", "silent", "seat_limit", "clock_tamper", "usage"]
        );
        assert_eq!(
            AttentionKind::parse("seat_limit"),
            Some(AttentionKind::SeatLimit)
        );
        assert_eq!(AttentionKind::parse("SEAT_LIMIT"), None);
    }

    #[test]
    fn name_prefixes_compare_case_insensitively_beyond_ascii() {
        let c = super::super::Customer {
            id: CustomerId::from_uuid(uuid::Uuid::nil()),
            name: "Ärzte Übersee GmbH".into(),
            email: "Ops@Example.com".into(),
            created_at: time::macros::datetime!(2026-01-01 0:00 UTC),
        };
        let by = |p: &str| CustomerFilter {
            name_prefix: Some(p.into()),
            ..Default::default()
        };
        assert!(by("ärzte ü").matches(&c));
        assert!(by("ÄRZTE").matches(&c));
        assert!(!by("ärzte x").matches(&c));
        let email = CustomerFilter {
            email: Some("ops@example.COM".into()),
            ..Default::default()
        };
        assert!(email.matches(&c));
    }
}
