//! The local API the product calls on loopback: license status, feature decisions (answered from
//! the lease, no network), usage intake (persisted before the 202), and a health probe.
//!
//! Only the product may use it. Loopback alone does not ensure that: every local process, and any
//! web page open in a browser on the machine, can send requests to `127.0.0.1`. So:
//! - every route but `/healthz` needs `Authorization: Bearer <token>` (the token is in a file only
//!   the agent's user can read, see [`crate::api_token`]);
//! - every route, `/healthz` included, refuses a `Host` that is not loopback or a configured name:
//!   a DNS-rebinding page reaches `127.0.0.1` under its own host name, and is stopped here;
//! - `POST` bodies must be `application/json`: a page can send a `text/plain` "simple request"
//!   without a CORS preflight, never an `application/json` one;
//! - everything accepted is bounded: body size, events per request, quantity per event, and the
//!   events waiting on disk.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nectar_client::server::UsageEvent;
use nectar_client::{Clock, LicenseClient};
use nectar_protocol::codes::{ErrorBody, ErrorEnvelope};
use nectar_protocol::rules::is_feature_name;
use nectar_protocol::usage::{MAX_METADATA_BYTES, max_quantity};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api_token::ApiToken;
use crate::usage::{AppendError, UsageBuffer};

/// Most events one `POST /v1/usage` may carry: one forwarding batch, so one request never becomes
/// more than one call to the server.
pub const MAX_EVENTS_PER_POST: usize = 100;
/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Host names that always reach the agent (with or without a port).
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The license client.
    pub client: Arc<LicenseClient>,
    /// The usage buffer.
    pub buffer: Arc<UsageBuffer>,
    /// Wakes the forwarder when events arrive.
    pub wake: Arc<tokio::sync::Notify>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Informational settings echoed by `/v1/license`.
    pub deployment_type: String,
    /// Cloud API URL echoed by `/v1/license`.
    pub cloud_api_url: Option<String>,
    /// The bearer token every route but `/healthz` requires.
    pub token: ApiToken,
    /// Host names accepted besides loopback (lowercase, without port).
    pub allowed_hosts: Arc<[String]>,
    /// Largest quantity accepted in one event (the feature's own ceiling applies when lower).
    pub max_quantity: u64,
}

/// The routes. The host check wraps everything (unknown paths included); the token check wraps
/// every route but `/healthz`, so a container health probe needs no secret.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/license", get(license))
        .route("/v1/features/{name}", get(feature))
        .route("/v1/usage", post(usage))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .merge(protected)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_allowed_host,
        ))
        .with_state(state)
}

/// Refuses a request whose `Host` (or absolute request target) is not loopback or a configured
/// name: 403 `HOST_NOT_ALLOWED`. A missing `Host` (HTTP/1.0) is refused too: without it the check
/// cannot tell which name the caller used, and no legitimate client needs to leave it out.
async fn require_allowed_host(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let target = request.uri().authority().map(|a| a.as_str());
    let allowed = match host {
        Some(h) => {
            host_allowed(h, &s.allowed_hosts)
                && target.is_none_or(|t| host_allowed(t, &s.allowed_hosts))
        }
        None => false,
    };
    if allowed {
        return next.run(request).await;
    }
    error(
        StatusCode::FORBIDDEN,
        "HOST_NOT_ALLOWED",
        match host {
            Some(_) => {
                "the Host header names neither this machine's loopback nor a configured NECTAR_AGENT_HOSTNAME"
            }
            None => "a Host header is required",
        },
    )
}

/// Whether `host` (`name` or `name:port`, IPv6 in brackets) names loopback or one of `extra`.
fn host_allowed(host: &str, extra: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    // The name ends where the port begins: after `]` for IPv6, at the first `:` otherwise.
    let name_end = if host.starts_with('[') {
        match host.find(']') {
            Some(i) => i + 1,
            None => return false,
        }
    } else {
        host.find(':').unwrap_or(host.len())
    };
    let (name, port) = host.split_at(name_end);
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|digits| {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        });
    port_ok && (LOOPBACK_HOSTS.contains(&name) || extra.iter().any(|e| e == name))
}

/// Requires `Authorization: Bearer <token>`: 401 `UNAUTHORIZED` otherwise, with
/// `WWW-Authenticate` saying how to authenticate.
async fn require_token(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let (message, challenge) = match presented {
        Some(token) if s.token.matches(token) => return next.run(request).await,
        Some(_) => (
            "the bearer token is not this agent's API token",
            "Bearer error=\"invalid_token\"",
        ),
        None => (
            "send Authorization: Bearer <token>; `nectar-agent token` prints the token",
            "Bearer",
        ),
    };
    let mut response = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// Whether the request declares a JSON body: `application/json`, any parameters, any case.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        // The local API answers errors in the Cloud API's envelope, so one client reads both.
        axum::Json(ErrorEnvelope {
            error: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                field: None,
                events: None,
                issues: None,
            },
        }),
    )
        .into_response()
}

async fn license(State(s): State<AppState>) -> Response {
    let status = s.client.status();
    let mut body = serde_json::to_value(&status).unwrap_or(Value::Null);
    if let Some(o) = body.as_object_mut() {
        o.insert("deploymentType".into(), s.deployment_type.clone().into());
        o.insert("cloudApiUrl".into(), s.cloud_api_url.clone().into());
        o.insert("pendingUsageEvents".into(), s.buffer.pending().into());
    }
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
struct FeatureQuery {
    /// `true`: the asking work is already running (grace applies).
    #[serde(default)]
    running: bool,
}

async fn feature(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<FeatureQuery>,
) -> Response {
    let decision = if q.running {
        s.client.check_running(&name)
    } else {
        s.client.check(&name)
    };
    axum::Json(json!({
        "feature": name,
        "allowed": decision.is_allowed(),
        "reason": decision.reason(),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageIn {
    events: Vec<EventIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventIn {
    feature: String,
    quantity: u64,
    occurred_at: Option<String>,
    metadata: Option<Value>,
}

/// Checks an event as the server will, so nothing the agent acknowledges is refused later for
/// its shape; stamps it with an id and its time of occurrence. The quantity must also stay within
/// the configured ceiling (`NECTAR_USAGE_MAX_QUANTITY`).
fn admit(
    e: EventIn,
    index: usize,
    now: time::OffsetDateTime,
    configured_max: u64,
) -> Result<UsageEvent, String> {
    use time::format_description::well_known::Rfc3339;
    if !is_feature_name(&e.feature) {
        return Err(format!(
            "events[{index}].feature must match [a-z][a-z0-9_]{{0,63}}"
        ));
    }
    // The server refuses more than the feature's ceiling; the agent must not acknowledge it.
    let ceiling = configured_max.min(max_quantity(&e.feature));
    if !(1..=ceiling).contains(&e.quantity) {
        return Err(format!(
            "events[{index}].quantity must be 1 to {ceiling} for `{}`",
            e.feature
        ));
    }
    let occurred_at = match e.occurred_at {
        Some(t) => time::OffsetDateTime::parse(&t, &Rfc3339)
            .map_err(|_| format!("events[{index}].occurredAt must be RFC 3339"))?,
        None => now,
    };
    let metadata = match e.metadata {
        None => None,
        Some(Value::Object(m))
            if Value::Object(m.clone()).to_string().len() <= MAX_METADATA_BYTES =>
        {
            Some(m)
        }
        Some(_) => {
            return Err(format!(
                "events[{index}].metadata must be an object of at most 1 KiB"
            ));
        }
    };
    Ok(UsageEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        feature: e.feature,
        quantity: e.quantity,
        occurred_at: Some(occurred_at.to_offset(time::UtcOffset::UTC)),
        metadata,
    })
}

async fn usage(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Checked before the body is read: a cross-site "simple request" stops here.
    if !is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as Content-Type: application/json",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                format!("the body must be at most {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", e.body_text()),
    };
    let input: UsageIn = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", e.to_string()),
    };
    if input.events.is_empty() || input.events.len() > MAX_EVENTS_PER_POST {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_EVENT_COUNT",
            format!("send 1 to {MAX_EVENTS_PER_POST} events"),
        );
    }
    let now = time::OffsetDateTime::from_unix_timestamp(s.clock.now())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let events = match input
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| admit(e, i, now, s.max_quantity))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(events) => events,
        Err(message) => return error(StatusCode::BAD_REQUEST, "INVALID_EVENTS", message),
    };
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    // Durable first, acknowledged second: a 202 means the events survive a crash.
    let buffer = s.buffer.clone();
    let persisted = tokio::task::spawn_blocking(move || buffer.append(events)).await;
    match persisted {
        Ok(Ok(())) => {
            s.wake.notify_one();
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"accepted": ids.len(), "eventIds": ids})),
            )
                .into_response()
        }
        Ok(Err(AppendError::Full {
            pending, capacity, ..
        })) => {
            tracing::warn!(pending, capacity, "usage buffer full; events refused");
            error(
                StatusCode::INSUFFICIENT_STORAGE,
                "BUFFER_FULL",
                format!(
                    "the usage buffer is full ({pending} of at most {capacity} events wait for \
                     the license server); nothing was stored: send these events again once \
                     earlier ones are delivered"
                ),
            )
        }
        Ok(Err(AppendError::Persist(e))) => {
            tracing::error!(error = %e, "could not persist usage events");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "BUFFER_UNAVAILABLE",
                "the events could not be stored; send them again",
            )
        }
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "BUFFER_UNAVAILABLE",
            "the events could not be stored; send them again",
        ),
    }
}
