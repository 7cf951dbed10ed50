//! Heartbeat handler: parse → `service::heartbeat` → one response mapping.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{HeartbeatRequest, HeartbeatResponse};
use shared::domain::ports::{Clock, InstallationRegistry, LicenseReader};
use shared::http::{self, ApiError};
use shared::service::heartbeat::{HeartbeatCommand, heartbeat};
use shared::token::KeyRing;

/// What the handler needs.
pub struct Deps<S> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// License reads and installation writes.
    pub store: S,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Heartbeat interval advertised to installations.
    pub interval: time::Duration,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + InstallationRegistry,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + InstallationRegistry,
{
    http::require_method(req, &Method::POST)?;
    let cmd = HeartbeatCommand::try_from(http::parse_json::<HeartbeatRequest>(req)?)?;
    let now = deps.clock.now();
    let beat = heartbeat(&deps.ring, &deps.store, &cmd, deps.interval, now).await?;
    Ok(http::json(
        StatusCode::OK,
        &HeartbeatResponse::new(&beat, deps.interval, now),
    ))
}
