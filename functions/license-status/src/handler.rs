//! Suspend / reinstate handler: authenticate → action from the path → `change_status`.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{LicenseView, StatusChangeRequest, StatusChangeResponse};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, LicenseReader, LicenseWriter};
use shared::domain::{DomainError, LicenseId};
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
    let action = match http::path_param(req, "action", 0).as_deref() {
        Some("suspend") => StatusAction::Suspend,
        Some("reinstate") => StatusAction::Reinstate,
        _ => return Err(ApiError::route_not_found(req.method(), req.uri().path())),
    };
    let raw_id = http::path_param(req, "licenseId", 1).unwrap_or_default();
    let id = LicenseId::parse(&raw_id).map_err(|source| DomainError::InvalidField {
        field: "licenseId",
        source,
    })?;
    let reason = http::parse_json::<StatusChangeRequest>(req)?.parse()?;
    let (license, changed) = change_status(
        &deps.store,
        &id,
        action,
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
