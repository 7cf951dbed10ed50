//! The dashboard's figures: the daily snapshot (licenses, installations, usage, revenue), the job
//! that records it, and the monthly usage report for invoicing.
//!
//! The snapshot is computed from the whole book by [`compute`] — a pure function, so the
//! revenue rules (`crate::domain::revenue`) are tested on a hand-computed book without a store —
//! and stored once per day by [`record_daily`]; the routes then read one item (the latest) or one
//! range query (the history), never the raw data. Reading the book walks the index listings
//! (every license, active installations) and batch-reads this month's counters: O(licenses)
//! reads, once per run of the job, not per request.

use std::collections::{BTreeMap, HashMap};

use nectar_protocol::metrics::{
    CurrencyFigures, InstallationCounts, LicenseCounts, MetricsSnapshot, Movement, RenewalWindow,
    UsageTotals,
};
use time::{Duration, OffsetDateTime};

use crate::domain::fleet::{InstallationFilter, LicenseFilter, MAX_PAGE};
use crate::domain::ports::{FleetIndex, LifecycleIndex, MetricsStore};
use crate::domain::revenue::{PriceList, RevenueChange, is_recurring, mrr_of};
use crate::domain::{
    DomainError, Feature, Installation, InstallationStatus, License, LicenseId, LicenseStatus,
    Period,
};

/// Renewal windows reported, in days.
pub const RENEWAL_WINDOWS: [u32; 3] = [30, 60, 90];

/// The counter feature whose overage is billed.
const WORKFLOWS: &str = "workflows";

/// What a snapshot is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Book<'a> {
    /// Every license.
    pub licenses: &'a [License],
    /// Every active installation.
    pub installations: &'a [Installation],
    /// This month's `workflows` totals by license (absent: 0).
    pub workflows_used: &'a HashMap<LicenseId, u64>,
    /// This month's plan and contract changes, oldest first.
    pub revenue_changes: &'a [RevenueChange],
}

/// The day's figures from `book`, priced by `prices`, at `now`.
pub fn compute(book: Book<'_>, prices: &PriceList, now: OffsetDateTime) -> MetricsSnapshot {
    let period = Period::containing(now);
    let month_start = period.start();
    let mut licenses = LicenseCounts::default();
    let mut usage = UsageTotals {
        period: period.to_string(),
        ..UsageTotals::default()
    };
    // Per currency: ARR, annual values by plan and channel, renewals, churned annual value.
    #[derive(Default)]
    struct Acc {
        arr: u64,
        by_plan: BTreeMap<String, u64>,
        by_channel: BTreeMap<String, u64>,
        renewals: [(u64, u64); RENEWAL_WINDOWS.len()],
        churn_count: u64,
        churn_annual: u64,
        overage: u64,
        /// Expansions and contractions: (count, annual value moved) each.
        expansion: (u64, u64),
        contraction: (u64, u64),
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut unpriced = 0;
    for l in book.licenses {
        *licenses
            .by_status
            .entry(l.status.as_str().to_owned())
            .or_default() += 1;
        let priced = prices.price_of(l);
        if l.status == LicenseStatus::Active {
            *licenses
                .active_by_plan
                .entry(l.plan.name().to_owned())
                .or_default() += 1;
            *licenses
                .active_by_channel
                .entry(l.contract.channel.as_str().to_owned())
                .or_default() += 1;
            // Metered use against the allowance, and its overage (list currency only).
            let used = book.workflows_used.get(&l.id).copied().unwrap_or(0);
            let included = l.limits.workflows_per_month;
            usage.workflows_used += used;
            usage.workflows_included += included;
            if used > included {
                usage.licenses_over += 1;
                if l.contract.currency == prices.currency
                    && let Some(amount) = prices.overage(WORKFLOWS, used - included)
                {
                    acc.entry(prices.currency.to_string()).or_default().overage += amount;
                }
            }
            // Renewals: expiring in (now, now + N days], at one interval's price.
            if let Some((currency, price)) = &priced {
                for (i, days) in RENEWAL_WINDOWS.iter().enumerate() {
                    if l.expires_at > now && l.expires_at <= now + Duration::days(i64::from(*days))
                    {
                        let a = acc.entry(currency.to_string()).or_default();
                        a.renewals[i].0 += 1;
                        a.renewals[i].1 += price;
                    }
                }
            }
        }
        if is_recurring(l, now) {
            match prices.annual_value(l) {
                Some((currency, annual)) => {
                    let a = acc.entry(currency.to_string()).or_default();
                    a.arr += annual;
                    *a.by_plan.entry(l.plan.name().to_owned()).or_default() += annual;
                    *a.by_channel
                        .entry(l.contract.channel.as_str().to_owned())
                        .or_default() += annual;
                }
                None => unpriced += 1,
            }
        }
        // Churn this month: revoked this month (its last change), or expired this month and
        // not renewed (still `expired`).
        let churned = match l.status {
            LicenseStatus::Revoked => l.updated_at >= month_start && l.updated_at <= now,
            LicenseStatus::Expired => l.expires_at >= month_start && l.expires_at <= now,
            _ => false,
        };
        if churned && let Some((currency, annual)) = prices.annual_value(l) {
            let a = acc.entry(currency.to_string()).or_default();
            a.churn_count += 1;
            a.churn_annual += annual;
        }
    }
    // Expansion and contraction: each license's net change of annual value this month, per
    // currency (priced with today's list, both sides alike). An unpriced side counts as nothing.
    let mut net: BTreeMap<(String, String), i128> = BTreeMap::new();
    for change in book
        .revenue_changes
        .iter()
        .filter(|c| c.at >= month_start && c.at <= now)
    {
        for (terms, sign) in [(&change.before, -1_i128), (&change.after, 1)] {
            if let Some((currency, annual)) = prices.annual_value_of(terms) {
                *net.entry((currency.to_string(), change.license_id.to_string()))
                    .or_default() += sign * i128::from(annual);
            }
        }
    }
    for ((currency, _), delta) in net {
        let a = acc.entry(currency).or_default();
        let moved = u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX);
        match delta.signum() {
            1 => a.expansion = (a.expansion.0 + 1, a.expansion.1.saturating_add(moved)),
            -1 => a.contraction = (a.contraction.0 + 1, a.contraction.1.saturating_add(moved)),
            _ => {}
        }
    }
    let mut installations = InstallationCounts::default();
    for i in book
        .installations
        .iter()
        .filter(|i| i.status == InstallationStatus::Active)
    {
        installations.active += 1;
        *installations.versions.entry(i.version.clone()).or_default() += 1;
    }
    let revenue = acc
        .into_iter()
        .map(|(currency, a)| CurrencyFigures {
            currency,
            mrr: mrr_of(a.arr),
            arr: a.arr,
            mrr_by_plan: a.by_plan.into_iter().map(|(k, v)| (k, mrr_of(v))).collect(),
            mrr_by_channel: a
                .by_channel
                .into_iter()
                .map(|(k, v)| (k, mrr_of(v)))
                .collect(),
            renewals: RENEWAL_WINDOWS
                .iter()
                .zip(a.renewals)
                .map(|(days, (count, value))| RenewalWindow {
                    days: *days,
                    count,
                    value,
                })
                .collect(),
            churn: Movement {
                count: a.churn_count,
                mrr: mrr_of(a.churn_annual),
            },
            expansion: Movement {
                count: a.expansion.0,
                mrr: mrr_of(a.expansion.1),
            },
            contraction: Movement {
                count: a.contraction.0,
                mrr: mrr_of(a.contraction.1),
            },
            overage: a.overage,
        })
        .collect();
    MetricsSnapshot {
        date: day(now),
        computed_at: now,
        licenses,
        installations,
        usage,
        revenue,
        unpriced_licenses: unpriced,
    }
}

/// `YYYY-MM-DD` of `t` (UTC).
pub fn day(t: OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Every license matching `filter`, page after page.
async fn every_license<S: FleetIndex + ?Sized>(
    store: &S,
    filter: &LicenseFilter,
) -> Result<Vec<License>, DomainError> {
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let page = store
            .list_licenses(filter, cursor.as_ref(), MAX_PAGE)
            .await?;
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// Every active installation, page after page.
async fn active_installations<S: FleetIndex + ?Sized>(
    store: &S,
) -> Result<Vec<Installation>, DomainError> {
    let filter = InstallationFilter {
        status: Some(InstallationStatus::Active),
        ..InstallationFilter::default()
    };
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let page = store
            .list_installations(&filter, cursor.as_ref(), MAX_PAGE)
            .await?;
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

fn workflows() -> Feature {
    Feature::parse(WORKFLOWS).unwrap_or_else(|_| unreachable!("a valid feature name"))
}

/// The metrics job: reads the book, computes today's snapshot and stores it (replacing today's
/// earlier one: running it twice a day is harmless, and the latest run wins).
pub async fn record_daily<S>(
    store: &S,
    prices: &PriceList,
    now: OffsetDateTime,
) -> Result<MetricsSnapshot, DomainError>
where
    S: FleetIndex + LifecycleIndex + MetricsStore + ?Sized,
{
    let now = crate::domain::license::whole_seconds(now);
    let licenses = every_license(store, &LicenseFilter::default()).await?;
    let installations = active_installations(store).await?;
    let active: Vec<LicenseId> = licenses
        .iter()
        .filter(|l| l.status == LicenseStatus::Active)
        .map(|l| l.id.clone())
        .collect();
    let used = store
        .usage_totals(&active, &workflows(), Period::containing(now))
        .await?;
    let changes = store.revenue_changes(Period::containing(now)).await?;
    let snapshot = compute(
        Book {
            licenses: &licenses,
            installations: &installations,
            workflows_used: &used,
            revenue_changes: &changes,
        },
        prices,
        now,
    );
    store.put_snapshot(&snapshot).await?;
    tracing::info!(date = %snapshot.date, licenses = licenses.len(), "metrics snapshot recorded");
    Ok(snapshot)
}

/// One row of the monthly usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The license.
    pub license: License,
    /// The metered feature.
    pub feature: &'static str,
    /// Used in the month.
    pub used: u64,
    /// The monthly allowance.
    pub included: u64,
    /// Used above the allowance.
    pub overage: u64,
    /// What the overage costs (minor units of the list currency); `None` when the license is
    /// billed in another currency.
    pub amount: Option<u64>,
}

/// The usage report of `period`: every license that used `workflows` in it, by license id.
/// Licenses that expired before the period began cannot have used it and are not read.
pub async fn usage_report<S>(
    store: &S,
    prices: &PriceList,
    period: Period,
) -> Result<Vec<UsageRow>, DomainError>
where
    S: FleetIndex + LifecycleIndex + ?Sized,
{
    let filter = LicenseFilter {
        expires_after: Some(period.start()),
        ..LicenseFilter::default()
    };
    let mut licenses = every_license(store, &filter).await?;
    licenses.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<LicenseId> = licenses.iter().map(|l| l.id.clone()).collect();
    let used = store.usage_totals(&ids, &workflows(), period).await?;
    Ok(licenses
        .into_iter()
        .filter_map(|l| {
            let used = used.get(&l.id).copied().filter(|u| *u > 0)?;
            let included = l.limits.workflows_per_month;
            let overage = used.saturating_sub(included);
            let amount = (l.contract.currency == prices.currency)
                .then(|| prices.overage(WORKFLOWS, overage))
                .flatten();
            Some(UsageRow {
                license: l,
                feature: WORKFLOWS,
                used,
                included,
                overage,
                amount,
            })
        })
        .collect())
}

/// The report as CSV (RFC 4180, header first): `period,licenseId,customerId,plan,feature,used,
/// included,overage,amountMinor,currency`.
pub fn usage_csv(period: Period, rows: &[UsageRow], prices: &PriceList) -> String {
    let mut out = String::from(
        "period,licenseId,customerId,plan,feature,used,included,overage,amountMinor,currency\r\n",
    );
    for r in rows {
        let amount = r.amount.map(|a| a.to_string()).unwrap_or_default();
        let currency = if r.amount.is_some() {
            prices.currency.to_string()
        } else {
            String::new()
        };
        let fields = [
            period.to_string(),
            r.license.id.to_string(),
            r.license.customer_id.to_string(),
            r.license.plan.name().to_owned(),
            r.feature.to_owned(),
            r.used.to_string(),
            r.included.to_string(),
            r.overage.to_string(),
            amount,
            currency,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Quotes a field when it needs it (RFC 4180); ours never do today, but ids are opaque.
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::revenue::{BillingInterval, Channel, Contract, Currency};
    use crate::domain::{CustomerId, InstallationId, Plan};
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-06-10 12:00 UTC);

    struct Seed {
        plan: Plan,
        status: LicenseStatus,
        interval: BillingInterval,
        currency: &'static str,
        price: Option<u64>,
        channel: Channel,
        expires_in_days: i64,
    }

    fn license(n: usize, s: &Seed) -> License {
        License {
            id: LicenseId::parse(&format!("NECTAR-{}-2026-{n:08}", s.plan.id_segment()))
                .expect("id"),
            customer_id: CustomerId::from_uuid(uuid::Uuid::from_u128(n as u128)),
            plan: s.plan,
            status: s.status,
            features: s.plan.default_features(),
            limits: s.plan.default_limits(),
            domain_restrictions: Vec::new(),
            issued_at: datetime!(2026-01-01 0:00 UTC),
            expires_at: NOW + Duration::days(s.expires_in_days),
            active_installations: 0,
            revision: 0,
            keys_valid_from: None,
            updated_at: datetime!(2026-01-01 0:00 UTC),
            contract: Contract {
                channel: s.channel,
                interval: s.interval,
                currency: Currency::parse(s.currency).expect("currency"),
                price: s.price,
                start: None,
            },
        }
    }

    /// The book of 50: groups of `(count, seed)`; ids are numbered in order.
    fn book() -> Vec<License> {
        use BillingInterval::{Monthly, Yearly};
        use Channel::{Saas, SelfHosted};
        use LicenseStatus::{Active, Expired, Revoked, Suspended};
        use Plan::{Enterprise, Professional, Starter};
        let seed = |plan, status, interval, currency, price, channel, days| Seed {
            plan,
            status,
            interval,
            currency,
            price,
            channel,
            expires_in_days: days,
        };
        let groups = [
            // 20 starter, yearly list USD: 4 renew within 30 days.
            (
                4,
                seed(Starter, Active, Yearly, "USD", None, SelfHosted, 20),
            ),
            (
                16,
                seed(Starter, Active, Yearly, "USD", None, SelfHosted, 200),
            ),
            // 10 professional, monthly list USD: 2 renew within 60 days.
            (
                2,
                seed(Professional, Active, Monthly, "USD", None, SelfHosted, 45),
            ),
            (
                8,
                seed(Professional, Active, Monthly, "USD", None, SelfHosted, 300),
            ),
            // 5 enterprise at a negotiated 8,000.00 USD a year: 1 renews within 90 days.
            (
                1,
                seed(
                    Enterprise,
                    Active,
                    Yearly,
                    "USD",
                    Some(800_000),
                    SelfHosted,
                    75,
                ),
            ),
            (
                4,
                seed(
                    Enterprise,
                    Active,
                    Yearly,
                    "USD",
                    Some(800_000),
                    SelfHosted,
                    365,
                ),
            ),
            // 5 professional SaaS at 1,500.00 EUR a year (one starts next month).
            (
                5,
                seed(
                    Professional,
                    Active,
                    Yearly,
                    "EUR",
                    Some(150_000),
                    Saas,
                    400,
                ),
            ),
            // 3 starter monthly in EUR without a price: the list is USD, so unpriced.
            (
                3,
                seed(Starter, Active, Monthly, "EUR", None, SelfHosted, 100),
            ),
            // Not recurring: 2 suspended, 3 revoked this month, 2 expired this month.
            (
                2,
                seed(Enterprise, Suspended, Yearly, "USD", None, SelfHosted, 100),
            ),
            (
                3,
                seed(Starter, Revoked, Yearly, "USD", None, SelfHosted, 100),
            ),
            (
                2,
                seed(Professional, Expired, Yearly, "USD", None, SelfHosted, -7),
            ),
        ];
        let mut all = Vec::new();
        for (count, s) in &groups {
            for _ in 0..*count {
                all.push(license(all.len(), s));
            }
        }
        // The first EUR SaaS license starts billing next month.
        all[35].contract.start = Some(date!(2026 - 07 - 01));
        // The revoked ones were revoked on June 5th.
        for l in all
            .iter_mut()
            .filter(|l| l.status == LicenseStatus::Revoked)
        {
            l.updated_at = datetime!(2026-06-05 9:00 UTC);
        }
        all
    }

    #[test]
    fn revenue_of_a_book_of_fifty_matches_the_hand_computed_figures() {
        let licenses = book();
        assert_eq!(licenses.len(), 50);
        let used = HashMap::from([
            (licenses[0].id.clone(), 1_750),   // starter USD: 750 over
            (licenses[20].id.clone(), 12_345), // professional USD: 2,345 over
            (licenses[30].id.clone(), 50_000), // enterprise: within 100,000
            (licenses[36].id.clone(), 20_000), // professional EUR: 10,000 over, not priced
        ]);
        let inst = |id: &str, version: &str, status| Installation {
            id: InstallationId::parse(id).expect("id"),
            license_id: licenses[0].id.clone(),
            status,
            version: version.into(),
            domain: None,
            first_seen_at: NOW,
            last_seen_at: NOW,
            gauges: Default::default(),
            lease: None,
        };
        let installations = [
            inst("a", "2.0.0", InstallationStatus::Active),
            inst("b", "2.0.0", InstallationStatus::Active),
            inst("c", "1.9.0", InstallationStatus::Active),
            inst("d", "1.0.0", InstallationStatus::Inactive),
        ];
        let s = compute(
            Book {
                licenses: &licenses,
                installations: &installations,
                workflows_used: &used,
                revenue_changes: &[],
            },
            &PriceList::default(),
            NOW,
        );
        let map = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        assert_eq!(s.date, "2026-06-10");
        assert_eq!(
            s.licenses.by_status,
            map(&[
                ("active", 43),
                ("expired", 2),
                ("revoked", 3),
                ("suspended", 2)
            ])
        );
        assert_eq!(
            s.licenses.active_by_plan,
            map(&[("enterprise", 5), ("professional", 15), ("starter", 23)])
        );
        assert_eq!(
            s.licenses.active_by_channel,
            map(&[("saas", 5), ("self_hosted", 38)])
        );
        assert_eq!(s.installations.active, 3);
        assert_eq!(s.installations.versions, map(&[("1.9.0", 1), ("2.0.0", 2)]));
        // Allowances: 23 × 1,000 + 15 × 10,000 + 5 × 100,000.
        assert_eq!(s.usage.workflows_included, 673_000);
        assert_eq!(s.usage.workflows_used, 84_095);
        assert_eq!(s.usage.licenses_over, 3);
        assert_eq!(s.unpriced_licenses, 3);
        let [eur, usd] = &s.revenue[..] else {
            panic!("two currencies: {:?}", s.revenue);
        };
        // USD ARR: 20 × 490.00 + 10 × 199.00 × 12 + 5 × 8,000.00.
        assert_eq!(usd.currency, "USD");
        assert_eq!(usd.arr, 980_000 + 2_388_000 + 4_000_000);
        assert_eq!(usd.mrr, 614_000);
        assert_eq!(
            usd.mrr_by_plan,
            // 980,000 / 12 = 81,666.67; 2,388,000 / 12; 4,000,000 / 12 = 333,333.33.
            map(&[
                ("enterprise", 333_333),
                ("professional", 199_000),
                ("starter", 81_667)
            ])
        );
        assert_eq!(usd.mrr_by_channel, map(&[("self_hosted", 614_000)]));
        let windows: Vec<(u32, u64, u64)> = usd
            .renewals
            .iter()
            .map(|w| (w.days, w.count, w.value))
            .collect();
        assert_eq!(
            windows,
            [
                (30, 4, 4 * 49_000),
                (60, 6, 4 * 49_000 + 2 * 19_900),
                (90, 7, 4 * 49_000 + 2 * 19_900 + 800_000)
            ]
        );
        // Churn: 3 revoked starters (3 × 490.00) + 2 expired professionals (2 × 1,990.00) a
        // year = 5,450.00 / 12 = 454.166… → 45,417.
        assert_eq!(usd.churn.count, 5);
        assert_eq!(usd.churn.mrr, 45_417);
        // Overage: 750 × 2.00 / 1,000 = 1.50; 2,345 × 2.00 / 1,000 = 4.69.
        assert_eq!(usd.overage, 150 + 469);
        // EUR: four SaaS contracts billing now (the fifth starts next month).
        assert_eq!(eur.currency, "EUR");
        assert_eq!((eur.arr, eur.mrr), (600_000, 50_000));
        assert_eq!(eur.mrr_by_plan, map(&[("professional", 50_000)]));
        assert_eq!(eur.mrr_by_channel, map(&[("saas", 50_000)]));
        assert!(eur.renewals.iter().all(|w| w.count == 0 && w.value == 0));
        assert_eq!((eur.churn.count, eur.overage), (0, 0));
    }

    #[test]
    fn the_usage_csv_quotes_only_what_needs_it_and_ends_lines_with_crlf() {
        let licenses = book();
        let row = UsageRow {
            license: licenses[0].clone(),
            feature: WORKFLOWS,
            used: 1_750,
            included: 1_000,
            overage: 750,
            amount: Some(150),
        };
        let period = Period::containing(NOW);
        let csv = usage_csv(period, &[row], &PriceList::default());
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "period,licenseId,customerId,plan,feature,used,included,overage,amountMinor,currency"
        );
        assert_eq!(
            lines[1],
            format!(
                "2026-06,{},{},starter,workflows,1750,1000,750,150,USD",
                licenses[0].id, licenses[0].customer_id
            )
        );
        assert_eq!(lines[2], "");
        assert_eq!(csv_field("a,b\"c"), "\"a,b\"\"c\"");
    }

    #[test]
    fn expansion_and_contraction_net_each_licenses_changes_this_month_per_currency() {
        use crate::domain::revenue::PricedTerms;
        let terms = |plan, interval, currency: &str, price| PricedTerms {
            plan,
            contract: Contract {
                interval,
                currency: Currency::parse(currency).expect("currency"),
                price,
                ..Contract::default()
            },
        };
        let id = |n: u32| LicenseId::parse(&format!("NECTAR-STARTER-2026-{n:08}")).expect("id");
        let change = |n, at, before, after| RevenueChange {
            license_id: id(n),
            revision: 1,
            at,
            before,
            after,
        };
        let (y, m) = (BillingInterval::Yearly, BillingInterval::Monthly);
        let this_month = datetime!(2026-06-03 9:00 UTC);
        let changes = [
            // 1: starter → professional, yearly list: +150,000 a year.
            change(
                1,
                this_month,
                terms(Plan::Starter, y, "USD", None),
                terms(Plan::Professional, y, "USD", None),
            ),
            // 2: enterprise → professional, monthly list: −(99,900 − 19,900) × 12 = −960,000.
            change(
                2,
                this_month,
                terms(Plan::Enterprise, m, "USD", None),
                terms(Plan::Professional, m, "USD", None),
            ),
            // 3: up and back down again this month: nets to nothing, counted nowhere.
            change(
                3,
                this_month,
                terms(Plan::Starter, y, "USD", None),
                terms(Plan::Enterprise, y, "USD", None),
            ),
            change(
                3,
                NOW,
                terms(Plan::Enterprise, y, "USD", None),
                terms(Plan::Starter, y, "USD", None),
            ),
            // 4: a EUR price of 10,000 a year moved to the USD list (starter, 49,000 a year).
            change(
                4,
                this_month,
                terms(Plan::Starter, y, "EUR", Some(10_000)),
                terms(Plan::Starter, y, "USD", None),
            ),
            // 5: last month's upgrade is last month's.
            change(
                5,
                datetime!(2026-05-31 23:59:59 UTC),
                terms(Plan::Starter, y, "USD", None),
                terms(Plan::Enterprise, y, "USD", None),
            ),
        ];
        let empty = HashMap::new();
        let snap = compute(
            Book {
                licenses: &[],
                installations: &[],
                workflows_used: &empty,
                revenue_changes: &changes,
            },
            &PriceList::default(),
            NOW,
        );
        let of = |c: &str| {
            snap.revenue
                .iter()
                .find(|f| f.currency == c)
                .unwrap_or_else(|| panic!("{c}"))
        };
        let usd = of("USD");
        // Expansion: 150,000 + 49,000 = 199,000 a year → 16,583 a month (16,583.33…).
        assert_eq!((usd.expansion.count, usd.expansion.mrr), (2, 16_583));
        assert_eq!((usd.contraction.count, usd.contraction.mrr), (1, 80_000));
        let eur = of("EUR");
        assert_eq!((eur.expansion.count, eur.expansion.mrr), (0, 0));
        assert_eq!((eur.contraction.count, eur.contraction.mrr), (1, 833));
    }
}
