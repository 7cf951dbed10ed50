//! Revoke handler: authenticate → parse → `service::admin::change_status(Revoke)`.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{LicenseView, RevokeRequest, StatusChangeResponse};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, LicenseReader, LicenseWriter};
use shared::http::{self, ApiError};
use shared::service::admin::{StatusAction, change_status};

/// What the handler needs.
pub struct Deps<S> {
    /// Admin token check.
    pub auth: AdminAuth,
    /// License reads and status writes.
    pub store: S,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + LicenseWriter,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + LicenseWriter,
{
    http::require_method(req, &Method::POST)?;
    let actor = http::admin_actor(req, &deps.auth)?;
    let (id, reason) = http::parse_json::<RevokeRequest>(req)?.parse()?;
    let (license, changed) = change_status(
        &deps.store,
        &id,
        StatusAction::Revoke,
        Some(reason),
        actor,
        deps.clock.now(),
    )
    .await?;
    Ok(http::json(
        StatusCode::OK,
        &StatusChangeResponse {
            license: LicenseView::from(&license),
            changed,
        },
    ))
}
