//! Usage statistics: per entitled feature, the period's total, limit, remaining and daily series.
//! Customers ask with their key (`POST /api/usage/stats`, so the key never sits in a URL or an
//! access log); operators by license id (`GET /api/admin/licenses/{licenseId}/usage?period=`).

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::api::{UsageStatsAnswer, UsageStatsRequest, UsageStatsResponse, parse_period};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, InstallationRegistry, LicenseReader, UsageLedger};
use shared::domain::{DomainError, LicenseId};
use shared::http::{self, ApiError};
use shared::service::usage::{authorize, gauges, statistics};
use shared::token::KeyRing;

/// What the handler needs.
pub struct Deps<S> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// Admin token check.
    pub auth: AdminAuth,
    /// License and counter reads.
    pub store: S,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + UsageLedger + InstallationRegistry,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + UsageLedger + InstallationRegistry,
{
    let now = deps.clock.now();
    let (license, period) = if req
        .uri()
        .path()
        .trim_end_matches('/')
        .ends_with("/usage/stats")
    {
        http::require_method(req, &Method::POST)?;
        let body = http::parse_json::<UsageStatsRequest>(req)?;
        let period = parse_period(body.period.as_deref(), now)?;
        (
            authorize(&deps.ring, &deps.store, &body.license_key, now).await?,
            period,
        )
    } else {
        http::require_method(req, &Method::GET)?;
        http::admin_actor(req, &deps.auth)?;
        let raw_id = http::path_param(req, "licenseId", 1).unwrap_or_default();
        let id = LicenseId::parse(&raw_id).map_err(|source| DomainError::InvalidField {
            field: "licenseId",
            source,
        })?;
        let params = req.query_string_parameters();
        let period = parse_period(params.first("period"), now)?;
        let license = deps
            .store
            .license(&id)
            .await
            .map_err(DomainError::from)?
            .ok_or(DomainError::LicenseNotFound)?;
        (license, period)
    };
    let usage = statistics(&deps.store, &license, period).await?;
    let gauges = gauges(&deps.store, &license).await?;
    Ok(http::json(
        StatusCode::OK,
        &UsageStatsResponse::new(&license, period, &usage, &gauges),
    ))
}
