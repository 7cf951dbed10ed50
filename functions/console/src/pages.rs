//! The console's pages: one askama template each (compiled in: a broken template fails the
//! build, not a page view), fed by small view models of display-ready strings. Formatting lives
//! here once: times in UTC with a relative hint, money from minor units, roles to actions.

use askama::Template;
use serde_json::json;
use time::OffsetDateTime;

use shared::domain::operator::Principal;
use shared::domain::{Role, StoreError};

/// The signed-in operator, as the layout shows them.
#[derive(Debug, Clone)]
pub struct Me {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
}

impl Me {
    /// From the session's principal.
    pub fn new(p: &Principal, csrf: &str) -> Self {
        Self {
            name: p.name.clone(),
            role: p.role,
            csrf: csrf.to_owned(),
        }
    }

    /// May do what `support` may.
    pub fn support(&self) -> bool {
        self.role.includes(Role::Support)
    }

    /// May do what `admin` may.
    pub fn admin(&self) -> bool {
        self.role.includes(Role::Admin)
    }
}

/// `2026-12-08 14:05 UTC`.
pub fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `in 3 days`, `5 hours ago`, `just now`.
pub fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = t - now;
    let (future, d) = if d.is_negative() {
        (false, -d)
    } else {
        (true, d)
    };
    let span = match (d.whole_days(), d.whole_hours(), d.whole_minutes()) {
        (days, _, _) if days >= 2 => format!("{days} days"),
        (1, _, _) => "1 day".into(),
        (_, hours, _) if hours >= 2 => format!("{hours} hours"),
        (_, 1, _) => "1 hour".into(),
        (_, _, minutes) if minutes >= 2 => format!("{minutes} minutes"),
        _ => return "just now".into(),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A time with its relative hint, for a `<time>` element.
#[derive(Debug, Clone)]
pub struct When {
    /// RFC 3339 (the `datetime` attribute).
    pub iso: String,
    /// `2026-12-08 14:05 UTC`.
    pub text: String,
    /// `in 3 days`.
    pub hint: String,
}

impl When {
    /// `t` seen at `now`.
    pub fn at(t: OffsetDateTime, now: OffsetDateTime) -> Self {
        Self {
            iso: t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            text: utc(t),
            hint: relative(t, now),
        }
    }
}

/// `1,234,567` (thousands grouped).
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

/// `1,234.56 USD` from minor units (every currency here has two decimals).
pub fn money(minor: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", count(minor / 100), minor % 100)
}

/// A chart's data, for `console.js`: `x` as Unix seconds, one series per line. It goes into a
/// `<script type="application/json">` element: data, not code, so the CSP allows it.
pub fn chart_json(x: &[i64], series: &[(&str, Vec<f64>)]) -> String {
    json!({
        "x": x,
        "series": series
            .iter()
            .map(|(label, values)| json!({"label": label, "values": values}))
            .collect::<Vec<_>>(),
    })
    .to_string()
    // Nothing in the data may end its element or open markup: `<`, `>` and `&` as JSON escapes.
    .replace('<', "\\u003c")
    .replace('>', "\\u003e")
    .replace('&', "\\u0026")
}

/// A row of the licenses table.
#[derive(Debug, Clone)]
pub struct LicenseRow {
    pub id: String,
    pub plan: String,
    pub status: String,
    pub channel: String,
    pub seats: String,
    pub expires: When,
}

/// An option of a filter `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub selected: bool,
}

/// The choices of a filter, `current` selected.
pub fn choices(values: &[&str], current: Option<&str>) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            value: (*v).to_owned(),
            selected: current == Some(*v),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub csrf: String,
    pub next: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub me: Option<Me>,
    pub status: u16,
    pub code: String,
    pub message: String,
    pub hint: String,
}

#[derive(Template)]
#[template(path = "licenses.html")]
pub struct LicensesPage {
    pub me: Me,
    pub statuses: Vec<Choice>,
    pub plans: Vec<Choice>,
    pub channels: Vec<Choice>,
    pub customer_id: String,
    pub customer_name: Option<String>,
    pub expires_before: String,
    pub rows: Vec<LicenseRow>,
    pub next: Option<String>,
    pub filtered: bool,
}

/// A customer row.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub created: When,
}

#[derive(Template)]
#[template(path = "customers.html")]
pub struct CustomersPage {
    pub me: Me,
    pub q: String,
    pub rows: Vec<CustomerRow>,
    pub next: Option<String>,
}

/// An installation row.
#[derive(Debug, Clone)]
pub struct InstallationRow {
    pub id: String,
    pub license_id: String,
    pub active: bool,
    pub version: String,
    pub domain: String,
    pub first_seen: When,
    pub last_seen: When,
}

/// A usage row: feature, used, allowance.
#[derive(Debug, Clone)]
pub struct UsageRow {
    pub feature: String,
    pub used: String,
    pub limit: String,
    pub percent: u64,
    pub over: bool,
}

/// An audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub action: String,
    pub actor: String,
    pub reason: String,
    pub at: When,
}

#[derive(Template)]
#[template(path = "license.html")]
pub struct LicensePage {
    pub me: Me,
    pub id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub plan: String,
    pub status: String,
    pub issued: When,
    pub expires: When,
    pub features: Vec<String>,
    pub limits: Vec<(String, String)>,
    pub domains: Vec<String>,
    pub contract: Vec<(String, String)>,
    pub seats: String,
    pub installations: Vec<InstallationRow>,
    pub usage: Vec<UsageRow>,
    pub audit: Vec<AuditRow>,
    pub audit_next: Option<String>,
    pub plans: Vec<Choice>,
    pub current_seats: u64,
    pub can_suspend: bool,
    pub can_reinstate: bool,
    pub can_renew: bool,
    pub can_change: bool,
    pub can_revoke: bool,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "new_license.html")]
pub struct NewLicensePage {
    pub me: Me,
    pub customer_id: String,
    pub plans: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "key.html")]
pub struct KeyPage {
    pub me: Me,
    pub title: String,
    pub license_id: String,
    pub key: String,
    pub changes: Vec<String>,
    pub revoked_previous: bool,
}

/// An attention row.
#[derive(Debug, Clone)]
pub struct AttentionRow {
    pub kind: String,
    pub license_id: String,
    pub installation_id: String,
    pub detail: String,
    pub at: When,
}

#[derive(Template)]
#[template(path = "installations.html")]
pub struct InstallationsPage {
    pub me: Me,
    pub active: String,
    pub silent: usize,
    pub versions: Vec<(String, String)>,
    pub attention: Vec<AttentionRow>,
    pub newest: Vec<InstallationRow>,
    pub chart: String,
    pub table: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "usage.html")]
pub struct UsagePage {
    pub me: Me,
    pub period: String,
    pub used: String,
    pub included: String,
    pub licenses_over: String,
    pub overage: String,
    pub chart: String,
    pub table: Vec<(String, String, String)>,
    pub top: Vec<(String, String, String, String)>,
    pub near: Vec<AttentionRow>,
}

/// Revenue in one currency.
#[derive(Debug, Clone)]
pub struct CurrencyBlock {
    pub currency: String,
    pub mrr: String,
    pub arr: String,
    pub by_plan: Vec<(String, String)>,
    pub by_channel: Vec<(String, String)>,
    pub renewals: Vec<(String, String, String)>,
    pub churn: String,
    pub expansion: String,
    pub contraction: String,
    pub overage: String,
}

#[derive(Template)]
#[template(path = "revenue.html")]
pub struct RevenuePage {
    pub me: Me,
    pub date: String,
    pub blocks: Vec<CurrencyBlock>,
    pub unpriced: u64,
    pub chart: String,
    pub table: Vec<(String, Vec<String>)>,
    pub currencies: Vec<String>,
    pub period: String,
    /// Per month of the history (its last snapshot) and currency: expansion, contraction, churn.
    pub months: Vec<(String, String, String, String, String)>,
}

/// Renders a template; a rendering failure (none is expected: the templates are compiled) is a
/// store-like failure the error page reports as a 500.
pub fn render(t: &impl Template) -> Result<String, StoreError> {
    t.render()
        .map_err(|e| StoreError::Backend(format!("template: {e}").into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn money_groups_thousands_and_keeps_two_decimals() {
        assert_eq!(money(0, "USD"), "0.00 USD");
        assert_eq!(money(4_083, "USD"), "40.83 USD");
        assert_eq!(money(123_456_789, "EUR"), "1,234,567.89 EUR");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(7), "7");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn relative_hints_say_which_way_and_roughly_how_far() {
        let now = datetime!(2026-12-08 12:00 UTC);
        assert_eq!(relative(now + time::Duration::days(3), now), "in 3 days");
        assert_eq!(relative(now - time::Duration::hours(5), now), "5 hours ago");
        assert_eq!(relative(now + time::Duration::seconds(30), now), "just now");
        assert_eq!(utc(now), "2026-12-08 12:00 UTC");
    }

    #[test]
    fn chart_data_cannot_close_its_script_element() {
        let j = chart_json(&[1], &[("</script><script>alert(1)", vec![1.0])]);
        assert!(!j.contains('<') && !j.contains('>'), "{j}");
        let back: serde_json::Value = serde_json::from_str(&j).expect("still JSON");
        assert_eq!(back["series"][0]["label"], "</script><script>alert(1)");
    }
}
