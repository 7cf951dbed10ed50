//! Lookup handler: authenticate → parse the customer id → `service::admin::lookup_customer`.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{CustomerLicensesResponse, CustomerView, LicenseDetailView};
use shared::config::AdminAuth;
use shared::domain::ports::CustomerDirectory;
use shared::domain::{CustomerId, DomainError};
use shared::http::{self, ApiError};
use shared::service::admin::lookup_customer;

/// What the handler needs.
pub struct Deps<D> {
    /// Admin token check.
    pub auth: AdminAuth,
    /// Customer and license reads.
    pub store: D,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<D: CustomerDirectory>(
    deps: &Deps<D>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<D: CustomerDirectory>(
    deps: &Deps<D>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    http::require_method(req, &Method::GET)?;
    http::admin_actor(req, &deps.auth)?;
    let raw = http::path_param(req, "customerId", 0).unwrap_or_default();
    let id = CustomerId::parse(&raw).map_err(|source| DomainError::InvalidField {
        field: "customerId",
        source,
    })?;
    let (customer, licenses) = lookup_customer(&deps.store, &id).await?;
    Ok(http::json(
        StatusCode::OK,
        &CustomerLicensesResponse {
            customer: CustomerView::from(&customer),
            licenses: licenses.iter().map(LicenseDetailView::from).collect(),
        },
    ))
}
