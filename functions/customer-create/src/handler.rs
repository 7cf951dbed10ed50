//! Create-customer handler: authenticate → parse → `service::admin::create_customer`.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{CreateCustomerRequest, CustomerCreatedResponse, CustomerView};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, CustomerDirectory, IdSource};
use shared::http::{self, ApiError};
use shared::service::admin::create_customer;

/// What the handler needs.
pub struct Deps<D> {
    /// Admin token check.
    pub auth: AdminAuth,
    /// Customer writes.
    pub store: D,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// New ids.
    pub ids: Arc<dyn IdSource>,
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
    http::require_method(req, &Method::POST)?;
    let actor = http::admin_actor(req, &deps.auth)?;
    let new = http::parse_json::<CreateCustomerRequest>(req)?.into();
    let customer =
        create_customer(&deps.store, deps.ids.as_ref(), new, actor, deps.clock.now()).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &CustomerCreatedResponse {
            customer: CustomerView::from(&customer),
        },
    ))
}
