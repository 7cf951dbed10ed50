//! Validate handler: parse → `service::validate` → one response mapping.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{ValidateRequest, ValidateResponse};
use shared::domain::ports::{Clock, LicenseReader};
use shared::http::{self, ApiError};
use shared::service::validate::{ValidateCommand, validate};
use shared::token::KeyRing;

/// What the handler needs: read-only ports, as the function's IAM policy allows.
pub struct Deps<R> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// License reads.
    pub store: R,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<R: LicenseReader>(
    deps: &Deps<R>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<R: LicenseReader>(deps: &Deps<R>, req: &Request) -> Result<Response<Body>, ApiError> {
    http::require_method(req, &Method::POST)?;
    let cmd = ValidateCommand::try_from(http::parse_json::<ValidateRequest>(req)?)?;
    let now = deps.clock.now();
    let checked = validate(&deps.ring, &deps.store, &cmd, now).await?;
    Ok(http::json(
        StatusCode::OK,
        &ValidateResponse::new(&checked, now),
    ))
}
