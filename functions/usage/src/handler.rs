//! Usage handler: parse every event → `service::usage::submit` → 202 (or 503, with `Retry-After`,
//! naming the events that could not be queued).

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::{UsageAnswer, UsageRequest, UsageRequestExt, UsageResponse};
use shared::domain::ports::{Clock, LicenseReader, UsageLedger, UsageQueue};
use shared::http::{self, ApiError};
use shared::service::usage::submit;
use shared::token::KeyRing;

/// What the handler needs.
pub struct Deps<S, Q> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// License reads and usage statistics.
    pub store: S,
    /// Where accepted events go.
    pub queue: Q,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S, Q>(deps: &Deps<S, Q>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + UsageLedger,
    Q: UsageQueue,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S, Q>(deps: &Deps<S, Q>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + UsageLedger,
    Q: UsageQueue,
{
    http::require_method(req, &Method::POST)?;
    let now = deps.clock.now();
    let (key, events) = http::parse_json::<UsageRequest>(req)?
        .parse(now)
        .map_err(|problems| http::invalid_events(&problems))?;
    let submitted = submit(&deps.ring, &deps.store, &deps.queue, &key, events, now).await?;
    let view = UsageResponse::new(&submitted, now);
    if submitted.any_failed() {
        // Nothing is half-accepted silently: the 503 names every event's fate; the client
        // resends the failed ones (resending accepted ones is harmless: they are deduplicated).
        return Err(ApiError {
            events: serde_json::to_value(&view.events).ok(),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "USAGE_QUEUE_UNAVAILABLE",
                format!(
                    "{} of {} events could not be queued; send them again (see error.events)",
                    view.failed,
                    view.events.len()
                ),
            )
        });
    }
    Ok(http::json(StatusCode::ACCEPTED, &view))
}
