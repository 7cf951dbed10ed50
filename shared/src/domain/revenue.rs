//! Contracts, the price list and the revenue figures computed from them.
//!
//! Money is an integer count of the currency's minor unit (cents): no floats anywhere. Figures are
//! kept per currency — Nectar does not convert currencies; a report in one currency would need an
//! exchange rate and a date, which is finance's call, not the license server's.
//!
//! Definitions (the README's "Revenue" section says the same):
//! - a license's **price** is its contract's override, else the price list's price of its plan for
//!   its billing interval — only when the contract's currency is the list's currency; a license
//!   with neither is **unpriced** (counted, never guessed);
//! - **annual value** = monthly price × 12, or the yearly price;
//! - **ARR** = the sum of the annual values of `active` licenses whose contract has started;
//!   **MRR** = ARR / 12, rounded half up to the minor unit (each figure on its own);
//! - **renewals due within N days**: active licenses expiring in `(now, now + N days]`, valued at
//!   one billing interval's price;
//! - **churn this month**: licenses revoked this month (by their last change), or expired this
//!   month and not renewed, valued at their MRR;
//! - **expansion / contraction this month**: operator changes of a license's plan or contract this
//!   month that raised / lowered its MRR, valued at the difference (a change of currency
//!   contracts the old currency and expands the new one);
//! - **overage**: a metered counter's use above the license's monthly allowance, priced per 1,000
//!   units by the price list, rounded half up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::license::License;
use super::plan::Plan;

/// Where the customer runs the product.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Channel {
    /// On the customer's own infrastructure (this license server's main case).
    #[default]
    SelfHosted,
    /// Nectar's hosted service.
    Saas,
}

impl Channel {
    /// Every channel.
    pub const ALL: &[Channel] = <Channel as strum::VariantArray>::VARIANTS;
    /// The API name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    /// Parses the API name.
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }
}

/// How often the contract bills.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BillingInterval {
    /// Every month.
    Monthly,
    /// Every year (self-hosted licenses usually are).
    #[default]
    Yearly,
}

impl BillingInterval {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    /// Parses the API name.
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }
    /// Annual value of `price` per interval.
    pub fn annual(self, price: u64) -> u64 {
        match self {
            Self::Monthly => price.saturating_mul(12),
            Self::Yearly => price,
        }
    }
}

/// An ISO 4217 currency code (three upper-case letters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    /// Parses `USD`, `EUR`, … (three ASCII letters, upper case).
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase())).then(|| Self(raw.into()))
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self("USD".into())
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("`{s}` is not an ISO 4217 code such as USD"))
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.0
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

time::serde::format_description!(day, Date, "[year]-[month]-[day]");

/// A license's commercial terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Self-hosted or SaaS.
    pub channel: Channel,
    /// Billing interval.
    pub interval: BillingInterval,
    /// Currency of `price` (and of the list price used when there is none).
    pub currency: Currency,
    /// Price per interval in minor units, overriding the price list.
    #[serde(default)]
    pub price: Option<u64>,
    /// When billing starts (`None`: when the license was issued).
    #[serde(default, with = "day::option")]
    pub start: Option<Date>,
}

/// A plan's list prices, in the list's currency's minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPrice {
    /// Per month, billed monthly.
    pub monthly: u64,
    /// Per year, billed yearly.
    pub yearly: u64,
}

/// The price list (configuration: `PRICE_LIST`, JSON of this shape; [`PriceList::default`]
/// otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceList {
    /// The list's currency.
    pub currency: Currency,
    /// List prices by plan.
    pub plans: BTreeMap<Plan, PlanPrice>,
    /// Overage price per 1,000 units above the monthly allowance, by counter feature.
    pub overage_per_thousand: BTreeMap<String, u64>,
}

impl Default for PriceList {
    /// USD list prices: starter $49/month or $490/year, professional $199 / $1,990, enterprise
    /// $999 / $9,990; workflow executions over the allowance $2.00 per 1,000.
    fn default() -> Self {
        let p = |monthly, yearly| PlanPrice { monthly, yearly };
        Self {
            currency: Currency::default(),
            plans: BTreeMap::from([
                (Plan::Starter, p(4_900, 49_000)),
                (Plan::Professional, p(19_900, 199_000)),
                (Plan::Enterprise, p(99_900, 999_000)),
            ]),
            overage_per_thousand: BTreeMap::from([("workflows".to_owned(), 200)]),
        }
    }
}

impl PriceList {
    /// Reads the JSON form; every plan must have a price.
    pub fn from_json(raw: &str) -> Result<Self, String> {
        let list: Self = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        if let Some(missing) = Plan::ALL.iter().find(|p| !list.plans.contains_key(p)) {
            return Err(format!("no price for plan {}", missing.name()));
        }
        Ok(list)
    }

    /// The license's price per billing interval and its currency, or `None` when unpriced.
    pub fn price_of(&self, license: &License) -> Option<(Currency, u64)> {
        self.price_of_terms(license.plan, &license.contract)
    }

    /// The price per billing interval of `plan` under `contract`, or `None` when unpriced.
    pub fn price_of_terms(&self, plan: Plan, contract: &Contract) -> Option<(Currency, u64)> {
        let c = contract;
        if let Some(price) = c.price {
            return Some((c.currency.clone(), price));
        }
        if c.currency != self.currency {
            return None;
        }
        let list = self.plans.get(&plan)?;
        Some((
            c.currency.clone(),
            match c.interval {
                BillingInterval::Monthly => list.monthly,
                BillingInterval::Yearly => list.yearly,
            },
        ))
    }

    /// The license's annual value and currency, or `None` when unpriced.
    pub fn annual_value(&self, license: &License) -> Option<(Currency, u64)> {
        self.annual_value_of(&PricedTerms::of(license))
    }

    /// The annual value and currency of `terms`, or `None` when unpriced.
    pub fn annual_value_of(&self, terms: &PricedTerms) -> Option<(Currency, u64)> {
        self.price_of_terms(terms.plan, &terms.contract)
            .map(|(cur, p)| (cur, terms.contract.interval.annual(p)))
    }

    /// Overage amount of `over` units of `feature` (minor units of the list's currency), `None`
    /// when the feature has no overage price.
    pub fn overage(&self, feature: &str, over: u64) -> Option<u64> {
        let per_thousand = *self.overage_per_thousand.get(feature)?;
        Some(round_div(
            u128::from(over) * u128::from(per_thousand),
            1_000,
        ))
    }
}

/// `n / d` rounded half up (d > 0), saturating at `u64::MAX`.
pub fn round_div(n: u128, d: u128) -> u64 {
    let q = (n + d / 2) / d.max(1);
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// What a license's price depends on: its plan and its contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedTerms {
    /// The plan (its list price).
    pub plan: Plan,
    /// The contract (override, interval, currency).
    pub contract: Contract,
}

impl PricedTerms {
    /// The license's.
    pub fn of(license: &License) -> Self {
        Self {
            plan: license.plan,
            contract: license.contract.clone(),
        }
    }
}

/// An operator change of a license's priced terms, kept for the month's expansion and
/// contraction. The terms, not amounts, are kept: the snapshot prices both sides with the price
/// list of its day, so its figures agree with each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueChange {
    /// The license.
    pub license_id: super::LicenseId,
    /// The license revision the change produced (unique per license).
    pub revision: u64,
    /// When (whole seconds).
    pub at: OffsetDateTime,
    /// The terms before.
    pub before: PricedTerms,
    /// The terms after.
    pub after: PricedTerms,
}

/// MRR of an annual value: ARR / 12, rounded half up.
pub fn mrr_of(annual: u64) -> u64 {
    round_div(u128::from(annual), 12)
}

/// When billing starts for `license`.
pub fn contract_start(license: &License) -> Date {
    license
        .contract
        .start
        .unwrap_or_else(|| license.issued_at.date())
}

/// Whether `license` counts toward recurring revenue at `now`.
pub fn is_recurring(license: &License, now: OffsetDateTime) -> bool {
    license.status == super::LicenseStatus::Active
        && contract_start(license) <= now.date()
        && !license.is_expired_at(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_some());
        for bad in ["eur", "EURO", "E1R", ""] {
            assert!(Currency::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn rounding_is_half_up_on_the_minor_unit() {
        assert_eq!(mrr_of(49_000), 4_083); // 4083.33…
        assert_eq!(mrr_of(18), 2); // 1.5 → 2
        assert_eq!(mrr_of(17), 1); // 1.41…
        assert_eq!(PriceList::default().overage("workflows", 1_250), Some(250));
        assert_eq!(PriceList::default().overage("workflows", 1), Some(0));
        assert_eq!(PriceList::default().overage("workflows", 3), Some(1)); // 0.6 → 1
        assert_eq!(PriceList::default().overage("api_access", 10), None);
    }

    #[test]
    fn a_price_list_must_price_every_plan() {
        let json = r#"{"currency":"EUR","plans":{"starter":{"monthly":1,"yearly":10}},"overagePerThousand":{}}"#;
        assert!(
            PriceList::from_json(json)
                .expect_err("professional and enterprise are missing")
                .contains("professional")
        );
    }
}
