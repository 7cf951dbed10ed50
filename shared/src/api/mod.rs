//! The server side of the wire contract: the [`nectar_protocol`] types read with the server's
//! [`Validated`] ids, conversions from requests into domain commands (`TryFrom`, so handlers never
//! re-check) and from domain results into views (`From`, or an `…Answer` constructor where the
//! view also needs the time or the service's result).
//!
//! The types themselves live in `nectar-protocol`, shared with installations; only what needs
//! the domain lives here. Split by context like the protocol crate.

mod admin;
pub mod fleet;
mod licensing;
mod operators;
mod usage;
mod workflows;

pub use admin::{
    ActivationRequest, AuditPageResponse, AuditView, ChangeLicenseRequest, ContractChange,
    ContractTerms, ContractView, CreateCustomerRequest, CustomerCreatedResponse,
    CustomerLicensesResponse, CustomerView, HealthResponse, InstallationReleasedResponse,
    IssueLicenseRequest, LicenseChangedResponse, LicenseDetailView, LicenseIssuedResponse, Parse,
    RenewLicenseRequest, RevokeRequest, StatusChangeRequest, StatusChangeResponse, contract_view,
};
pub use licensing::{
    HeartbeatAnswer, HeartbeatRequest, HeartbeatResponse, HeartbeatTiming, InstallationView,
    LeaseView, LicenseView, ValidateAnswer, ValidateRequest, ValidateResponse,
};
pub use operators::{
    CreateOperatorRequest, DisableOperatorRequest, OperatorChangeResponse, OperatorListResponse,
    OperatorTokenResponse, OperatorView, RotateOperatorRequest,
};
pub use usage::{
    EventProblemView, EventStatusView, FeatureUsageView, GaugeView, UsageAnswer, UsageRequest,
    UsageRequestExt, UsageResponse, UsageStatsAnswer, UsageStatsRequest, UsageStatsResponse,
    parse_period,
};
pub use workflows::parse_execute_body;

pub use nectar_protocol::metrics::{MetricsHistory, MetricsSnapshot};

use crate::domain::{DomainError, Validated};

/// `GET /.well-known/jwks.json` answer.
pub type JwksResponse = crate::token::Jwks;

fn parse<T, E: Into<crate::domain::ParseError>>(
    field: &'static str,
    result: Result<T, E>,
) -> Result<T, DomainError> {
    result.map_err(|e| DomainError::InvalidField {
        field,
        source: e.into(),
    })
}

/// A free-text field: 1 to `max` characters as sent, none a control character (Unicode `Cc`),
/// at least one not white space; kept without its surrounding white space. The rule is checked
/// on the value as sent so that the OpenAPI pattern (`PrintableText…` in docs/openapi.yaml)
/// states it exactly: a length, a character class and "one non-space character".
fn text(field: &'static str, value: String, max: usize) -> Result<String, DomainError> {
    let printable = value.chars().all(|c| !c.is_control());
    let trimmed = value.trim();
    if trimmed.is_empty() || value.chars().count() > max || !printable {
        return Err(DomainError::InvalidValue {
            field,
            message: format!(
                "must be 1 to {max} characters, no control characters, not only white space"
            ),
        });
    }
    Ok(trimmed.to_owned())
}
