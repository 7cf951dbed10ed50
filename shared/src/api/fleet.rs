//! The fleet listings' query strings into filters, and pages into views.
//!
//! Every parameter is checked (an unknown one is a 400 naming the ones the listing takes, so a
//! typo never silently widens a search); an empty time range lists nothing (it is not an error);
//! times are RFC 3339 and, since stored times are whole
//! seconds, rounded up to the next whole second (exact for "at or after" and "before"); the
//! cursor is the store's [`PageCursor`] in base64url, refused unless it decodes to one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::{CustomerView, InstallationView, LicenseView, parse, text};
use crate::domain::fleet::{
    AttentionKind, CustomerFilter, DEFAULT_PAGE, InstallationFilter, LicenseFilter, MAX_PAGE,
    PageCursor,
};
use crate::domain::{
    CustomerId, DomainError, Installation, InstallationStatus, License, LicenseId, LicenseStatus,
    Plan, StoreError,
};
use crate::service::fleet::{Attention, AttentionQuery, DEFAULT_SILENT_HOURS, DEFAULT_WITHIN_DAYS};

pub use nectar_protocol::fleet::ListPage;

/// A license in a listing.
pub type FleetLicenseView = nectar_protocol::fleet::FleetLicenseView<crate::domain::Validated>;
/// An installation in a listing.
pub type FleetInstallationView =
    nectar_protocol::fleet::FleetInstallationView<crate::domain::Validated>;
/// An item of the attention list.
pub type AttentionView = nectar_protocol::fleet::AttentionView<crate::domain::Validated>;

/// Longest cursor accepted (ours are far shorter: a partition key and a sort key).
const MAX_CURSOR: usize = 2_400;

/// A listing's page request: where to start and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Resume here (`None`: from the start).
    pub cursor: Option<PageCursor>,
    /// At most this many items.
    pub limit: usize,
}

/// The query string as `(name, value)` pairs, first value per name.
pub struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    /// Wraps the request's pairs.
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Self { pairs }
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses a parameter the listing does not take.
    fn only(&self, known: &[&str]) -> Result<(), DomainError> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((k, _)) => Err(DomainError::InvalidValue {
                field: "query",
                message: format!(
                    "unknown parameter `{}`; this listing takes {}",
                    k.chars().take(64).collect::<String>(),
                    known.join(", ")
                ),
            }),
        }
    }

    fn page(&self) -> Result<PageRequest, DomainError> {
        let limit = match self.get("limit") {
            None => DEFAULT_PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| DomainError::InvalidValue {
                    field: "limit",
                    message: format!("must be a whole number from 1 to {MAX_PAGE}"),
                })?,
        };
        let cursor = self.get("cursor").map(decode_cursor).transpose()?;
        Ok(PageRequest { cursor, limit })
    }

    fn time(&self, field: &'static str) -> Result<Option<OffsetDateTime>, DomainError> {
        self.get(field)
            .map(|v| {
                OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
                    .and_then(ceil_second)
                    .ok_or_else(|| DomainError::InvalidValue {
                        field,
                        message: "must be an RFC 3339 timestamp such as 2027-01-31T00:00:00Z"
                            .into(),
                    })
            })
            .transpose()
    }

    fn range(
        &self,
        from: &'static str,
        to: &'static str,
    ) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), DomainError> {
        // An empty range (`to` not after `from`) is not an error: nothing lies in it, and the
        // listing says so with an empty page.
        Ok((self.time(from)?, self.time(to)?))
    }

    fn number(&self, field: &'static str, max: i64, default: i64) -> Result<i64, DomainError> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| DomainError::InvalidValue {
                    field,
                    message: format!("must be a whole number from 1 to {max}"),
                }),
        }
    }
}

/// Rounds up to a whole second (stored times are whole seconds, so bounds stay exact).
fn ceil_second(t: OffsetDateTime) -> Option<OffsetDateTime> {
    if t.nanosecond() == 0 {
        Some(t)
    } else {
        let whole = t.replace_nanosecond(0).ok()?;
        // The last second a date can name (9999-12-31T23:59:59.5Z) has no next one: stay on it.
        Some(whole.checked_add(time::Duration::SECOND).unwrap_or(whole))
    }
}

/// The wire form of a cursor: base64url of `<leg>\n<after>`.
pub fn encode_cursor(c: &PageCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\n{}", c.leg, c.after))
}

/// Reads a cursor from the wire; anything that is not one is `INVALID_CURSOR`.
pub fn decode_cursor(raw: &str) -> Result<PageCursor, DomainError> {
    let invalid = || DomainError::Store(StoreError::InvalidCursor);
    if raw.len() > MAX_CURSOR {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (leg, after) = text.split_once('\n').ok_or_else(invalid)?;
    if leg.is_empty() || leg.chars().chain(after.chars()).any(char::is_control) {
        return Err(invalid());
    }
    Ok(PageCursor {
        leg: leg.to_owned(),
        after: after.to_owned(),
    })
}

/// `GET /api/admin/fleet/customers`: `namePrefix`, `email`, `createdAfter`, `createdBefore`.
pub fn customer_query(p: &Params<'_>) -> Result<(CustomerFilter, PageRequest), DomainError> {
    p.only(&[
        "namePrefix",
        "email",
        "createdAfter",
        "createdBefore",
        "limit",
        "cursor",
    ])?;
    let (created_after, created_before) = p.range("createdAfter", "createdBefore")?;
    let filter = CustomerFilter {
        // Checked as text, used as sent: a trailing space is part of the prefix ("acme "
        // finds "Acme Labs", not "Acmeworks").
        name_prefix: p
            .get("namePrefix")
            .map(|v| text("namePrefix", v.to_owned(), 200).map(|_| v.to_owned()))
            .transpose()?,
        email: p
            .get("email")
            .map(|v| text("email", v.to_owned(), 254))
            .transpose()?,
        created_after,
        created_before,
    };
    Ok((filter, p.page()?))
}

/// `GET /api/admin/fleet/licenses`: `status`, `plan`, `channel`, `customerId`, `expiresAfter`,
/// `expiresBefore`.
pub fn license_query(p: &Params<'_>) -> Result<(LicenseFilter, PageRequest), DomainError> {
    p.only(&[
        "status",
        "plan",
        "channel",
        "customerId",
        "expiresAfter",
        "expiresBefore",
        "limit",
        "cursor",
    ])?;
    let (expires_after, expires_before) = p.range("expiresAfter", "expiresBefore")?;
    let status = p
        .get("status")
        .map(|v| {
            [
                LicenseStatus::Active,
                LicenseStatus::Suspended,
                LicenseStatus::Expired,
                LicenseStatus::Revoked,
            ]
            .into_iter()
            .find(|s| s.as_str() == v)
            .ok_or_else(|| DomainError::InvalidValue {
                field: "status",
                message: "must be active, suspended, expired or revoked".into(),
            })
        })
        .transpose()?;
    let plan = p
        .get("plan")
        .map(|v| Plan::parse(v).ok_or_else(|| DomainError::UnknownPlan(v.to_owned())))
        .transpose()?;
    let customer = p
        .get("customerId")
        .map(|v| parse("customerId", CustomerId::parse(v)))
        .transpose()?;
    let channel = p
        .get("channel")
        .map(|v| {
            crate::domain::revenue::Channel::parse(v).ok_or_else(|| DomainError::InvalidValue {
                field: "channel",
                message: "must be self_hosted or saas".into(),
            })
        })
        .transpose()?;
    let filter = LicenseFilter {
        status,
        plan,
        channel,
        customer,
        expires_after,
        expires_before,
    };
    Ok((filter, p.page()?))
}

/// `GET /api/admin/fleet/installations`: `licenseId`, `status`, `version`, `seenBefore`.
pub fn installation_query(
    p: &Params<'_>,
) -> Result<(InstallationFilter, PageRequest), DomainError> {
    p.only(&[
        "licenseId",
        "status",
        "version",
        "seenBefore",
        "limit",
        "cursor",
    ])?;
    let status = p
        .get("status")
        .map(|v| match v {
            "active" => Ok(InstallationStatus::Active),
            "inactive" => Ok(InstallationStatus::Inactive),
            _ => Err(DomainError::InvalidValue {
                field: "status",
                message: "must be active or inactive".into(),
            }),
        })
        .transpose()?;
    let filter = InstallationFilter {
        license: p
            .get("licenseId")
            .map(|v| parse("licenseId", LicenseId::parse(v)))
            .transpose()?,
        status,
        version: p
            .get("version")
            .map(|v| text("version", v.to_owned(), 64))
            .transpose()?,
        seen_before: p.time("seenBefore")?,
    };
    Ok((filter, p.page()?))
}

/// `GET /api/admin/fleet/attention`: `kind` (required), `withinDays` (expiring, default 30),
/// `silentHours` (silent, default 24).
pub fn attention_query(p: &Params<'_>) -> Result<(AttentionQuery, PageRequest), DomainError> {
    p.only(&["kind", "withinDays", "silentHours", "limit", "cursor"])?;
    let kinds = AttentionKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let kind = p
        .get("kind")
        .and_then(AttentionKind::parse)
        .ok_or_else(|| DomainError::InvalidValue {
            field: "kind",
            message: format!("give kind, one of {kinds}"),
        })?;
    let query = AttentionQuery {
        kind,
        within_days: p.number("withinDays", 365, DEFAULT_WITHIN_DAYS)?,
        silent_hours: p.number("silentHours", 24 * 365, DEFAULT_SILENT_HOURS)?,
    };
    Ok((query, p.page()?))
}

impl From<&License> for FleetLicenseView {
    fn from(l: &License) -> Self {
        Self {
            license: LicenseView::from(l),
            active_installations: l.active_installations,
            contract: super::admin::contract_view(&l.contract, l.issued_at),
        }
    }
}

impl From<&Installation> for FleetInstallationView {
    fn from(i: &Installation) -> Self {
        Self {
            license_id: i.license_id.clone(),
            installation: InstallationView::from(i),
        }
    }
}

impl From<&Attention> for AttentionView {
    fn from(a: &Attention) -> Self {
        Self {
            kind: a.kind.as_str().to_owned(),
            license_id: a.license_id.clone(),
            installation_id: a.installation_id.clone(),
            detail: a.detail.clone(),
            at: a.at,
        }
    }
}

/// The page's view: its items mapped, its cursor encoded.
pub fn page_view<T, V>(
    page: &crate::domain::fleet::Page<T>,
    view: impl Fn(&T) -> V,
) -> ListPage<V> {
    ListPage {
        items: page.items.iter().map(view).collect(),
        next: page.next.as_ref().map(encode_cursor),
    }
}

/// A customer's view (for [`page_view`]).
pub fn customer_view(c: &crate::domain::Customer) -> CustomerView {
    CustomerView::from(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn a_cursor_survives_the_wire_and_garbage_is_invalid_cursor() {
        let c = PageCursor {
            leg: "CUSTOMERS#name".into(),
            after: "ärzte übersee gmbh#0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)).expect("round trip"), c);
        for bad in ["", "%%%", "bm8tbmV3bGluZQ", &"A".repeat(3000)] {
            assert!(
                matches!(
                    decode_cursor(bad),
                    Err(DomainError::Store(StoreError::InvalidCursor))
                ),
                "{bad:.20}"
            );
        }
    }

    #[test]
    fn an_unknown_parameter_is_refused_naming_the_known_ones() {
        let q = pairs(&[("namePrefx", "ac")]);
        let err = customer_query(&Params::new(&q)).expect_err("typo");
        assert!(err.to_string().contains("namePrefix"), "{err}");
    }

    #[test]
    fn times_round_up_to_whole_seconds_and_an_empty_range_is_no_error() {
        let q = pairs(&[
            ("expiresAfter", "2026-01-01T00:00:00.5Z"),
            ("expiresBefore", "2026-02-01T00:00:00+01:00"),
        ]);
        let (f, _) = license_query(&Params::new(&q)).expect("valid");
        assert_eq!(
            f.expires_after,
            Some(time::macros::datetime!(2026-01-01 0:00:01 UTC))
        );
        assert_eq!(
            f.expires_before,
            Some(time::macros::datetime!(2026-01-31 23:00 UTC))
        );
        let q = pairs(&[
            ("createdAfter", "2026-02-01T00:00:00Z"),
            ("createdBefore", "2026-01-01T00:00:00Z"),
        ]);
        assert!(customer_query(&Params::new(&q)).is_ok());
        let q = pairs(&[("seenBefore", "9999-12-31T23:59:59.5Z")]);
        assert!(installation_query(&Params::new(&q)).is_ok());
    }

    #[test]
    fn attention_needs_a_known_kind_and_bounded_windows() {
        let q = pairs(&[]);
        assert!(attention_query(&Params::new(&q)).is_err());
        let q = pairs(&[("kind", "expiring"), ("withinDays", "0")]);
        assert!(attention_query(&Params::new(&q)).is_err());
        let q = pairs(&[("kind", "silent"), ("silentHours", "48"), ("limit", "200")]);
        let (a, page) = attention_query(&Params::new(&q)).expect("valid");
        assert_eq!(
            (a.kind, a.silent_hours, page.limit),
            (AttentionKind::Silent, 48, 200)
        );
    }
}
