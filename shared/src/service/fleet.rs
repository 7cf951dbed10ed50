//! The operators' fleet listings and the "needs attention" list.
//!
//! Listings pass straight to the [`FleetIndex`]; the attention list reads `expiring` and `silent`
//! live from the expiry and heartbeat indexes (so "within N days" and "silent for N hours" are
//! the caller's numbers, not a job's), and the other kinds from the flags the heartbeat and the
//! lifecycle job raise.

use time::{Duration, OffsetDateTime};

use crate::domain::fleet::{
    AttentionKind, Flag, InstallationFilter, LicenseFilter, Page, PageCursor,
};
use crate::domain::ports::FleetIndex;
use crate::domain::{DomainError, InstallationId, InstallationStatus, LicenseId, LicenseStatus};

/// Default "expiring within" window.
pub const DEFAULT_WITHIN_DAYS: i64 = 30;
/// Default silence before an active installation is listed as silent.
pub const DEFAULT_SILENT_HOURS: i64 = 24;

/// What to list as needing attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionQuery {
    /// Which kind.
    pub kind: AttentionKind,
    /// `expiring`: active licenses expiring within this many days.
    pub within_days: i64,
    /// `silent`: active installations without a heartbeat for this many hours.
    pub silent_hours: i64,
}

/// One item of the attention list, whatever its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attention {
    /// Why.
    pub kind: AttentionKind,
    /// The license concerned.
    pub license_id: LicenseId,
    /// The installation concerned, for installation-level kinds.
    pub installation_id: Option<InstallationId>,
    /// What was seen, in words.
    pub detail: String,
    /// The expiry, the last heartbeat, or when the flag was raised.
    pub at: OffsetDateTime,
}

impl From<Flag> for Attention {
    fn from(f: Flag) -> Self {
        Self {
            kind: f.kind,
            license_id: f.license_id,
            installation_id: f.installation_id,
            detail: f.detail,
            at: f.raised_at,
        }
    }
}

/// "in 6 days", "in 23 hours", "in under an hour".
fn span(d: Duration) -> String {
    match (d.whole_days(), d.whole_hours()) {
        (days, _) if days >= 2 => format!("{days} days"),
        (1, _) => "1 day".into(),
        (_, hours) if hours >= 2 => format!("{hours} hours"),
        (_, 1) => "1 hour".into(),
        _ => "under an hour".into(),
    }
}

/// A page of the attention list of one kind.
pub async fn attention<S: FleetIndex + ?Sized>(
    store: &S,
    query: AttentionQuery,
    now: OffsetDateTime,
    from: Option<&PageCursor>,
    limit: usize,
) -> Result<Page<Attention>, DomainError> {
    let page = match query.kind {
        AttentionKind::Expiring => {
            let filter = LicenseFilter {
                status: Some(LicenseStatus::Active),
                expires_after: Some(now),
                expires_before: Some(now + Duration::days(query.within_days)),
                ..LicenseFilter::default()
            };
            let page = store.list_licenses(&filter, from, limit).await?;
            Page {
                items: page
                    .items
                    .into_iter()
                    .map(|l| Attention {
                        kind: AttentionKind::Expiring,
                        detail: format!(
                            "expires in {} ({} plan, {} of {} seats in use)",
                            span(l.expires_at - now),
                            l.plan.name(),
                            l.active_installations,
                            l.limits.installations
                        ),
                        license_id: l.id,
                        installation_id: None,
                        at: l.expires_at,
                    })
                    .collect(),
                next: page.next,
            }
        }
        AttentionKind::Silent => {
            let filter = InstallationFilter {
                status: Some(InstallationStatus::Active),
                seen_before: Some(now - Duration::hours(query.silent_hours)),
                ..InstallationFilter::default()
            };
            let page = store.list_installations(&filter, from, limit).await?;
            Page {
                items: page
                    .items
                    .into_iter()
                    .map(|i| Attention {
                        kind: AttentionKind::Silent,
                        detail: format!(
                            "no heartbeat for {} (version {}), still holding a seat",
                            span(now - i.last_seen_at),
                            i.version
                        ),
                        license_id: i.license_id,
                        installation_id: Some(i.id),
                        at: i.last_seen_at,
                    })
                    .collect(),
                next: page.next,
            }
        }
        kind => {
            let page = store.list_flags(kind, now, from, limit).await?;
            Page {
                items: page.items.into_iter().map(Attention::from).collect(),
                next: page.next,
            }
        }
    };
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_a_person_would_say_them() {
        assert_eq!(span(Duration::days(6) + Duration::hours(5)), "6 days");
        assert_eq!(span(Duration::hours(30)), "1 day");
        assert_eq!(span(Duration::hours(23)), "23 hours");
        assert_eq!(span(Duration::minutes(90)), "1 hour");
        assert_eq!(span(Duration::minutes(59)), "under an hour");
    }
}
