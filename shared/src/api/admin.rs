//! Admin routes: requests into commands (with the audit reason), records into views.

use time::OffsetDateTime;

use super::{LicenseView, Validated, parse, text};
use crate::domain::ports::LicenseDetail;
use crate::domain::revenue::{BillingInterval, Channel, Contract, Currency};
use crate::domain::{
    AuditEntry, Customer, CustomerId, DomainError, DomainPattern, Feature, LicenseId, Plan,
};
use crate::service::admin::{DEFAULT_VALID_DAYS, IssueCommand, NewCustomer, Term};
use crate::service::changes::{ChangeCommand, Changed, ContractEdit};

pub use nectar_protocol::admin::{
    ActivationRequest, AuditPageResponse, AuditView, ChangeLicenseRequest, ContractChange,
    ContractTerms, ContractView, CreateCustomerRequest, HealthResponse, IssueLicenseRequest,
    RenewLicenseRequest, RevokeRequest, StatusChangeRequest,
};

/// A customer as the API shows it.
pub type CustomerView = nectar_protocol::admin::CustomerView<Validated>;
/// A license with its installations and audit trail.
pub type LicenseDetailView = nectar_protocol::admin::LicenseDetailView<Validated>;
/// `GET /api/license/{customerId}` answer.
pub type CustomerLicensesResponse = nectar_protocol::admin::CustomerLicensesResponse<Validated>;
/// `POST /api/revoke` and suspend / reinstate answer.
pub type StatusChangeResponse = nectar_protocol::admin::StatusChangeResponse<Validated>;
/// `POST …/installations/{installationId}/release` answer.
pub type InstallationReleasedResponse =
    nectar_protocol::admin::InstallationReleasedResponse<Validated>;
/// `POST /api/admin/customers` answer.
pub type CustomerCreatedResponse = nectar_protocol::admin::CustomerCreatedResponse<Validated>;
/// `POST /api/admin/licenses` answer.
pub type LicenseIssuedResponse = nectar_protocol::admin::LicenseIssuedResponse<Validated>;
/// `PATCH /api/admin/licenses/{licenseId}` answer.
pub type LicenseChangedResponse = nectar_protocol::admin::LicenseChangedResponse<Validated>;

/// Longest audit reason.
const MAX_REASON: usize = 500;
/// Most domain restrictions one license may carry.
const MAX_DOMAINS: usize = 50;

/// Parses a request whose result is not a command of its own (an id, a reason, a term); a trait
/// because the request types are the protocol's.
pub trait Parse {
    /// What the request says, validated.
    type Output;
    /// Validates the request.
    fn parse(self) -> Result<Self::Output, DomainError>;
}

impl Parse for RevokeRequest {
    type Output = (LicenseId, String);

    fn parse(self) -> Result<(LicenseId, String), DomainError> {
        Ok((
            parse("licenseId", LicenseId::parse(&self.license_id))?,
            text("reason", self.reason, MAX_REASON)?,
        ))
    }
}

impl Parse for StatusChangeRequest {
    type Output = String;

    fn parse(self) -> Result<String, DomainError> {
        text("reason", self.reason, MAX_REASON)
    }
}

impl Parse for RenewLicenseRequest {
    type Output = (Term, Option<String>);

    fn parse(self) -> Result<(Term, Option<String>), DomainError> {
        let term = parse_term(self.expires_at, self.valid_days)?;
        let reason = self
            .reason
            .map(|r| text("reason", r, MAX_REASON))
            .transpose()?;
        Ok((term, reason))
    }
}

impl From<CreateCustomerRequest> for NewCustomer {
    fn from(r: CreateCustomerRequest) -> Self {
        Self {
            name: r.name,
            email: r.email,
        }
    }
}

impl TryFrom<IssueLicenseRequest> for IssueCommand {
    type Error = DomainError;

    fn try_from(r: IssueLicenseRequest) -> Result<Self, DomainError> {
        let plan = Plan::parse(&r.plan).ok_or_else(|| DomainError::UnknownPlan(r.plan.clone()))?;
        let term = parse_term(r.expires_at, r.valid_days)?;
        Ok(Self {
            customer_id: parse("customerId", CustomerId::parse(&r.customer_id))?,
            contract: parse_contract(r.contract.unwrap_or_default())?,
            plan,
            term,
            features: r.features.map(|f| parse_features(&f)).transpose()?,
            limits: r.limits.unwrap_or_default(),
            domain_restrictions: parse_domains(&r.domain_restrictions.unwrap_or_default())?,
        })
    }
}

fn parse_features(list: &[String]) -> Result<Vec<Feature>, DomainError> {
    list.iter()
        .map(|f| parse("features", Feature::parse(f)))
        .collect()
}

fn parse_domains(domains: &[String]) -> Result<Vec<DomainPattern>, DomainError> {
    if domains.len() > MAX_DOMAINS {
        return Err(DomainError::InvalidValue {
            field: "domainRestrictions",
            message: format!("at most {MAX_DOMAINS} entries"),
        });
    }
    domains
        .iter()
        .map(|d| parse("domainRestrictions", DomainPattern::parse(d)))
        .collect()
}

impl TryFrom<ChangeLicenseRequest> for ChangeCommand {
    type Error = DomainError;

    fn try_from(r: ChangeLicenseRequest) -> Result<Self, DomainError> {
        let plan = r
            .plan
            .map(|p| Plan::parse(&p).ok_or(DomainError::UnknownPlan(p)))
            .transpose()?;
        let contract = r.contract.unwrap_or_default();
        // The terms given, parsed by the issue route's own rules (the defaults it would fill in
        // for absent terms are not used: an absent term stays as it is).
        let parsed = parse_contract(ContractTerms {
            channel: contract.channel.clone(),
            interval: contract.interval.clone(),
            currency: contract.currency.clone(),
            price: contract.price.flatten(),
            start: contract.start.clone(),
        })?;
        Ok(Self {
            customer_id: r
                .customer_id
                .map(|c| parse("customerId", CustomerId::parse(&c)))
                .transpose()?,
            plan,
            features: r.features.map(|f| parse_features(&f)).transpose()?,
            limits: r.limits,
            domain_restrictions: r
                .domain_restrictions
                .map(|d| parse_domains(&d))
                .transpose()?,
            contract: ContractEdit {
                channel: contract.channel.map(|_| parsed.channel),
                interval: contract.interval.map(|_| parsed.interval),
                currency: contract.currency.map(|_| parsed.currency.clone()),
                price: contract.price.map(|_| parsed.price),
                start: contract.start.and(parsed.start),
            },
            revoke_previous_key: r.revoke_previous_key,
            reason: r
                .reason
                .map(|r| text("reason", r, MAX_REASON))
                .transpose()?,
        })
    }
}

impl From<&Changed> for LicenseChangedResponse {
    fn from(c: &Changed) -> Self {
        Self {
            license: LicenseView::from(&c.license),
            contract: contract_view(&c.license.contract, c.license.issued_at),
            license_key: c.key.expose().to_owned(),
            changes: c.changes.clone(),
            previous_keys_revoked: c.previous_keys_revoked,
            seats_over_limit: c.seats_over_limit,
        }
    }
}

/// Most a price may be (minor units): a trillion, far above any real contract, far below overflow
/// in any sum the revenue figures make.
const MAX_PRICE: u64 = 1_000_000_000_000;

/// Commercial terms as sent into a contract (defaults: self-hosted, yearly, USD, list price,
/// billing from the issue date).
pub fn parse_contract(t: ContractTerms) -> Result<Contract, DomainError> {
    let bad = |field: &'static str, message: &str| DomainError::InvalidValue {
        field,
        message: message.into(),
    };
    Ok(Contract {
        channel: t
            .channel
            .map(|c| {
                Channel::parse(&c)
                    .ok_or_else(|| bad("contract.channel", "must be self_hosted or saas"))
            })
            .transpose()?
            .unwrap_or_default(),
        interval: t
            .interval
            .map(|i| {
                BillingInterval::parse(&i)
                    .ok_or_else(|| bad("contract.interval", "must be monthly or yearly"))
            })
            .transpose()?
            .unwrap_or_default(),
        currency: t
            .currency
            .map(|c| {
                Currency::parse(&c).ok_or_else(|| {
                    bad(
                        "contract.currency",
                        "must be an ISO 4217 code such as USD or EUR",
                    )
                })
            })
            .transpose()?
            .unwrap_or_default(),
        price: t
            .price
            .map(|p| {
                (p <= MAX_PRICE).then_some(p).ok_or_else(|| {
                    bad(
                        "contract.price",
                        "must be at most 1000000000000 minor units",
                    )
                })
            })
            .transpose()?,
        start: t
            .start
            .map(|d| {
                time::Date::parse(
                    &d,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .map_err(|_| bad("contract.start", "must be a date such as 2027-01-31"))
            })
            .transpose()?,
    })
}

/// The contract as operators see it; `issued` stands in for a missing start.
pub fn contract_view(c: &Contract, issued: OffsetDateTime) -> ContractView {
    let start = c.start.unwrap_or_else(|| issued.date());
    ContractView {
        channel: c.channel.as_str().into(),
        interval: c.interval.as_str().into(),
        currency: c.currency.as_str().into(),
        price: c.price,
        start: format!(
            "{:04}-{:02}-{:02}",
            start.year(),
            u8::from(start.month()),
            start.day()
        ),
    }
}

/// `expiresAt` (RFC 3339, UTC) or `validDays` (default [`DEFAULT_VALID_DAYS`]), not both.
fn parse_term(expires_at: Option<String>, valid_days: Option<i64>) -> Result<Term, DomainError> {
    Ok(match (expires_at, valid_days) {
        (Some(_), Some(_)) => {
            return Err(DomainError::InvalidValue {
                field: "expiresAt",
                message: "give expiresAt or validDays, not both".into(),
            });
        }
        (Some(at), None) => Term::Until(
            // Stored and shown in UTC; an instant UTC cannot represent is refused here.
            OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
                .ok_or_else(|| DomainError::InvalidValue {
                    field: "expiresAt",
                    message: "must be an RFC 3339 timestamp such as 2027-01-31T00:00:00Z".into(),
                })?,
        ),
        (None, days) => Term::Days(days.unwrap_or(DEFAULT_VALID_DAYS)),
    })
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            email: c.email.clone(),
            created_at: c.created_at,
        }
    }
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        Self {
            action: a.action.clone(),
            actor: a.actor.as_str().to_owned(),
            reason: a.reason.clone(),
            from: a.from,
            to: a.to,
            at: a.at,
        }
    }
}

impl From<&LicenseDetail> for LicenseDetailView {
    fn from(d: &LicenseDetail) -> Self {
        Self {
            license: LicenseView::from(&d.license),
            active_installations: d.license.active_installations,
            contract: contract_view(&d.license.contract, d.license.issued_at),
            installations: d
                .installations
                .iter()
                .map(super::InstallationView::from)
                .collect(),
            audit: d.audit.iter().map(AuditView::from).collect(),
            audit_next: d.audit_next.clone(),
        }
    }
}
