//! `nectar-admin seed-demo`: fills a local stack with a realistic book so the console, the
//! metrics and screenshots have something true to show — 20 customers, 40 licenses in every
//! status across plans, channels, billing intervals and two currencies, installations (some
//! silent, some refused), three months of metered use, "needs attention" flags, two operator
//! license changes today (an upgrade and a negotiated discount: the month's expansion and
//! contraction) and 90 days of daily metrics snapshots.
//!
//! Everything goes through the store ports (the same writes the services make), with fixed ids
//! and dates relative to `now`: the same command on an empty table gives the same book, and a
//! second run finds the first customer and stops (nothing is written twice). The history is a
//! reconstruction: each past day's snapshot is computed from the seeded book as it stood that day
//! (licenses issued by then, that month's use) — exactly what the daily job would have recorded.

use std::collections::HashMap;

use serde_json::{Value, json};
use shared::domain::fleet::{AttentionKind, Flag};
use shared::domain::license::whole_seconds;
use shared::domain::ports::{
    AttentionFlags, CustomerDirectory, HeartbeatReport, InstallationRegistry, LicenseAmender,
    LicenseWriter, MetricsStore, UsageLedger,
};
use shared::domain::revenue::{
    BillingInterval, Channel, Contract, Currency, PriceList, PricedTerms, RevenueChange,
};
use shared::domain::{
    Actor, AuditEntry, Customer, CustomerId, EventId, Feature, Gauges, Installation,
    InstallationId, License, LicenseId, LicenseStatus, Period, Plan, UsageEvent,
};
use shared::service::metrics::{Book, compute};
use time::{Duration, OffsetDateTime};

/// The demo's customers (fictional companies).
const NAMES: [&str; 20] = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Soylent Foods",
    "Wonka Industries",
    "Tyrell Systems",
    "Cyberdyne",
    "Aperture Science",
    "Massive Dynamic",
    "Oscorp",
    "Vandelay Industries",
    "Pied Piper",
    "Dunder Mifflin",
    "Gringotts Bank",
    "Monarch Solutions",
    "Nakatomi Trading",
];

/// Product versions in the field, newest first.
const VERSIONS: [&str; 4] = ["3.2.1", "3.2.0", "3.1.4", "2.9.0"];

/// Days of daily snapshots written.
const HISTORY_DAYS: i64 = 90;

/// What the seeding needs from the store.
pub trait SeedStore:
    CustomerDirectory
    + LicenseWriter
    + LicenseAmender
    + InstallationRegistry
    + UsageLedger
    + AttentionFlags
    + MetricsStore
{
}
impl<T> SeedStore for T where
    T: CustomerDirectory
        + LicenseWriter
        + LicenseAmender
        + InstallationRegistry
        + UsageLedger
        + AttentionFlags
        + MetricsStore
{
}

fn customer_id(i: usize) -> CustomerId {
    // "Nectar" in hex, then the index: recognisable, fixed, never a random customer's.
    CustomerId::from_uuid(uuid::Uuid::from_u128(
        0x4e65_6374_6172_0000_0000_0000_0000_0000 + i as u128,
    ))
}

fn audit(
    action: &str,
    at: OffsetDateTime,
    from: Option<LicenseStatus>,
    to: Option<LicenseStatus>,
) -> AuditEntry {
    AuditEntry {
        action: action.into(),
        actor: Actor::system("seed-demo"),
        reason: Some("demo data".into()),
        from,
        to,
        at: whole_seconds(at),
    }
}

/// License `i` of the book (two per customer), as it is today.
fn demo_license(i: usize, now: OffsetDateTime) -> License {
    let plan = [
        Plan::Starter,
        Plan::Professional,
        Plan::Enterprise,
        Plan::Professional,
        Plan::Starter,
    ][i % 5];
    let issued_at = whole_seconds(now - Duration::days(30 + (i as i64 * 37) % 270));
    let interval = if i.is_multiple_of(3) {
        BillingInterval::Monthly
    } else {
        BillingInterval::Yearly
    };
    let (currency, price) = if i % 7 == 3 {
        (
            "EUR",
            Some(if interval == BillingInterval::Monthly {
                15_900
            } else {
                159_000
            }),
        )
    } else {
        ("USD", None)
    };
    let mut expires_at = issued_at + Duration::days(365);
    if i.is_multiple_of(9) {
        // Up for renewal soon.
        expires_at = whole_seconds(now + Duration::days(3 + (i as i64 % 25)));
    }
    let mut status = LicenseStatus::Active;
    if i % 13 == 5 {
        status = LicenseStatus::Suspended;
    } else if i % 17 == 3 {
        status = LicenseStatus::Revoked;
    } else if i % 11 == 7 {
        status = LicenseStatus::Expired;
        expires_at = whole_seconds(now - Duration::days(5));
    }
    let mut limits = plan.default_limits();
    if plan == Plan::Enterprise && i.is_multiple_of(2) {
        limits.installations = 20;
    }
    License {
        id: LicenseId::new(plan, issued_at.year(), &format!("DEMO{i:04}"))
            .unwrap_or_else(|_| unreachable!("DEMO and four digits are eight valid characters")),
        customer_id: customer_id(i / 2),
        plan,
        status,
        features: plan.default_features(),
        limits,
        domain_restrictions: Vec::new(),
        issued_at,
        expires_at,
        active_installations: 0,
        revision: 0,
        keys_valid_from: None,
        updated_at: issued_at,
        contract: Contract {
            channel: if i % 4 == 1 {
                Channel::Saas
            } else {
                Channel::SelfHosted
            },
            interval,
            currency: Currency::parse(currency).unwrap_or_default(),
            price,
            start: None,
        },
    }
}

/// This license's `workflows` use in the month `months_ago` before now's (0: this month).
fn demo_usage(i: usize, l: &License, months_ago: usize) -> u64 {
    // 30 % to 130 % of the allowance, capped so a demo stays small.
    let percent = 30 + ((i * 23 + months_ago * 41) % 101) as u64;
    (l.limits.workflows_per_month * percent / 100).min(12_000)
}

/// Seeds the book at `now`; `Ok(None)` when the table already holds it.
pub async fn seed_demo<S: SeedStore + ?Sized>(
    store: &S,
    prices: &PriceList,
    now: OffsetDateTime,
) -> anyhow::Result<Option<Value>> {
    let now = whole_seconds(now);
    if store.customer(&customer_id(0)).await?.is_some() {
        return Ok(None);
    }
    let workflows = Feature::parse("workflows").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut licenses = Vec::new();
    for (c, name) in NAMES.iter().enumerate() {
        let slug: String = name
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let customer = Customer {
            id: customer_id(c),
            name: (*name).into(),
            email: format!("ops@{slug}.example"),
            created_at: now - Duration::days(300 - c as i64 * 7),
        };
        store
            .create_customer(
                &customer,
                &audit("customer.created", customer.created_at, None, None),
            )
            .await?;
    }
    let mut installations: Vec<Installation> = Vec::new();
    let mut used_by_month: [HashMap<LicenseId, u64>; 3] = Default::default();
    for i in 0..NAMES.len() * 2 {
        let target = demo_license(i, now);
        // Issued active; later changes recorded as the service would record them.
        let mut l = target.clone();
        l.status = LicenseStatus::Active;
        store
            .create_license(
                &l,
                &audit(
                    "license.issued",
                    l.issued_at,
                    None,
                    Some(LicenseStatus::Active),
                ),
            )
            .await?;
        if target.status != LicenseStatus::Active {
            let at = match target.status {
                LicenseStatus::Expired => target.expires_at,
                _ => now - Duration::days(2 + i as i64 % 6),
            };
            let action = format!("license.{}", target.status.as_str());
            store
                .set_status(
                    &l.id,
                    LicenseStatus::Active,
                    target.status,
                    &audit(
                        &action,
                        at,
                        Some(LicenseStatus::Active),
                        Some(target.status),
                    ),
                )
                .await?;
        }
        // Installations of licenses in force: some beating now, some silent for a day or more.
        if target.status == LicenseStatus::Active {
            let count = (1 + i as u64 % 3).min(target.limits.installations);
            for n in 0..count {
                let silent = (i + n as usize).is_multiple_of(6);
                let at = if silent {
                    now - Duration::hours(30 + i as i64)
                } else {
                    now - Duration::minutes(5 + (i as i64 * 7) % 50)
                };
                let report = HeartbeatReport {
                    license_id: l.id.clone(),
                    installation_id: InstallationId::parse(&format!("demo-{i:02}-{n}"))
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                    version: VERSIONS[(i + n as usize) % VERSIONS.len()].into(),
                    domain: None,
                    gauges: Gauges {
                        users: Some(target.limits.users / 2 + n),
                        storage_gb: Some(target.limits.storage_gb / 3),
                    },
                    at: whole_seconds(at),
                };
                if let shared::domain::ports::SeatClaim::Seated(inst) = store
                    .claim_seat(&report, target.limits.installations)
                    .await?
                {
                    installations.push(*inst);
                }
            }
            // Three months of metered use: this one and the two before.
            let mut period = Period::containing(now);
            for (months_ago, used) in used_by_month.iter_mut().enumerate() {
                if period.end() > target.issued_at {
                    let total = demo_usage(i, &target, months_ago);
                    let at = if months_ago == 0 {
                        now - Duration::hours(1)
                    } else {
                        period.start() + Duration::days(9) + Duration::hours(12)
                    };
                    let mut events = Vec::new();
                    let mut left = total;
                    while left > 0 {
                        let quantity = left.min(1_000);
                        events.push(UsageEvent {
                            license_id: l.id.clone(),
                            event_id: EventId::parse(&format!("demo-{period}-{}", events.len()))
                                .map_err(|e| anyhow::anyhow!("{e}"))?,
                            feature: workflows.clone(),
                            quantity,
                            occurred_at: at.max(period.start()),
                            metadata: None,
                        });
                        left -= quantity;
                    }
                    if !events.is_empty() {
                        store.record(&events, now).await?;
                    }
                    used.insert(l.id.clone(), total);
                }
                period = previous(period);
            }
        }
        licenses.push(target);
    }
    // What the heartbeat and the lifecycle job would have flagged.
    let flags = [
        (
            AttentionKind::ClockTamper,
            1,
            Some("demo-01-0"),
            "reported CLOCK_TAMPERED; version 3.2.0",
        ),
        (
            AttentionKind::SeatLimit,
            4,
            Some("demo-04-9"),
            "refused a seat: all 1 seats in use (version 3.2.1)",
        ),
        (
            AttentionKind::Usage,
            12,
            None,
            "workflows at 112 % of 1000 this month (1120 used)",
        ),
    ];
    for (kind, i, inst, detail) in flags {
        store
            .raise(&Flag {
                kind,
                license_id: licenses[i].id.clone(),
                installation_id: inst
                    .map(InstallationId::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                detail: detail.into(),
                raised_at: now - Duration::hours(3),
            })
            .await?;
    }
    // Two operator changes an hour ago, as `PATCH /api/admin/licenses/{id}` makes them: the
    // first active starter on the list price upgraded to professional, the first active
    // enterprise on the list price given a 20 % discount.
    let before_changes = licenses.clone();
    let changed_at = whole_seconds(now - Duration::hours(1));
    let mut changes = Vec::new();
    for (from, edit) in [(Plan::Starter, "upgrade"), (Plan::Enterprise, "discount")] {
        let Some(l) = licenses.iter_mut().find(|l| {
            l.plan == from
                && l.status == LicenseStatus::Active
                && l.contract.price.is_none()
                && l.contract.currency == prices.currency
        }) else {
            continue;
        };
        let before = l.clone();
        if edit == "upgrade" {
            l.plan = Plan::Professional;
            l.features = Plan::Professional.default_features();
            l.limits = Plan::Professional.default_limits();
        } else {
            l.contract.price = prices.price_of(l).map(|(_, list)| list - list / 5);
        }
        l.revision += 1;
        l.updated_at = changed_at;
        let change = RevenueChange {
            license_id: l.id.clone(),
            revision: l.revision,
            at: changed_at,
            before: PricedTerms::of(&before),
            after: PricedTerms::of(l),
        };
        let mut entry = audit(
            "license.changed",
            changed_at,
            Some(LicenseStatus::Active),
            Some(LicenseStatus::Active),
        );
        entry.reason = Some(format!("demo data: {edit}"));
        if store.amend(l, &entry, Some(&change)).await? {
            changes.push(change);
        }
    }
    // 90 days of daily snapshots, each from the book as it stood that day (today's after the
    // changes).
    for d in (0..HISTORY_DAYS).rev() {
        let at = now - Duration::days(d);
        let months_ago = months_between(Period::containing(at), Period::containing(now));
        let book = if d == 0 { &licenses } else { &before_changes };
        let existing: Vec<License> = book
            .iter()
            .filter(|l| l.issued_at <= at)
            .map(|l| as_of(l, at))
            .collect();
        let empty = HashMap::new();
        let used = used_by_month.get(months_ago).unwrap_or(&empty);
        let seen: Vec<Installation> = installations
            .iter()
            .filter(|i| i.first_seen_at <= at || d == 0)
            .cloned()
            .collect();
        let snapshot = compute(
            Book {
                licenses: &existing,
                installations: &seen,
                workflows_used: used,
                revenue_changes: if d == 0 { &changes } else { &[] },
            },
            prices,
            at,
        );
        store.put_snapshot(&snapshot).await?;
    }
    Ok(Some(json!({
        "customers": NAMES.len(),
        "licenses": licenses.len(),
        "installations": installations.len(),
        "flags": 3,
        "changes": changes.len(),
        "snapshots": HISTORY_DAYS,
    })))
}

/// The license as it stood at `at`: changes dated after it had not happened yet.
fn as_of(l: &License, at: OffsetDateTime) -> License {
    let mut then = l.clone();
    let changed = match l.status {
        LicenseStatus::Expired => l.expires_at,
        LicenseStatus::Active => return then,
        _ => l.updated_at.max(l.issued_at),
    };
    if changed > at && l.status != LicenseStatus::Expired {
        then.status = LicenseStatus::Active;
    }
    if l.status == LicenseStatus::Expired && at < l.expires_at {
        then.status = LicenseStatus::Active;
    }
    then
}

fn previous(p: Period) -> Period {
    // The month before: the period containing the instant just before this one began.
    Period::containing(p.start() - Duration::SECOND)
}

fn months_between(from: Period, to: Period) -> usize {
    let mut n = 0;
    let mut p = from;
    while p < to && n < 1_000 {
        p = p.next();
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::adapters::memory::MemoryStore;
    use shared::domain::ports::FleetIndex;
    use time::macros::datetime;

    #[tokio::test]
    async fn the_demo_book_has_every_status_usage_and_ninety_days_and_seeds_once() {
        let store = MemoryStore::new();
        let now = datetime!(2026-12-01 12:00 UTC);
        let prices = PriceList::default();
        let summary = seed_demo(&store, &prices, now)
            .await
            .expect("seed")
            .expect("seeded");
        assert_eq!(summary["licenses"], 40);
        // Every status is present.
        for status in [
            LicenseStatus::Active,
            LicenseStatus::Suspended,
            LicenseStatus::Expired,
            LicenseStatus::Revoked,
        ] {
            let page = store
                .list_licenses(
                    &shared::domain::fleet::LicenseFilter {
                        status: Some(status),
                        ..Default::default()
                    },
                    None,
                    200,
                )
                .await
                .expect("list");
            assert!(!page.items.is_empty(), "no {status:?} license");
        }
        let history = store
            .snapshots("2026-09-02", "2026-12-01")
            .await
            .expect("history");
        assert_eq!(history.len(), 90);
        let today = store.latest_snapshot().await.expect("read").expect("today");
        assert_eq!(today.date, "2026-12-01");
        assert!(today.usage.workflows_used > 0);
        assert!(today.installations.active > 0);
        assert!(
            today
                .revenue
                .iter()
                .any(|c| c.currency == "USD" && c.mrr > 0)
        );
        assert!(
            today
                .revenue
                .iter()
                .any(|c| c.currency == "EUR" && c.mrr > 0)
        );
        // Today's figures carry the two changes: an upgrade and a discount.
        assert_eq!(summary["changes"], 2);
        let usd = today
            .revenue
            .iter()
            .find(|c| c.currency == "USD")
            .expect("USD");
        assert_eq!(
            (usd.expansion.count, usd.contraction.count),
            (1, 1),
            "{usd:?}"
        );
        // A second run finds the book and writes nothing.
        assert!(
            seed_demo(&store, &prices, now)
                .await
                .expect("again")
                .is_none()
        );
    }
}
