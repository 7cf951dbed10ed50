//! The local API the product calls on loopback: license status, feature decisions (answered from
//! the lease, no network), usage intake (persisted before the 202), and a health probe.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nectar_client::server::UsageEvent;
use nectar_client::{Clock, LicenseClient};
use nectar_protocol::codes::{ErrorBody, ErrorEnvelope};
use nectar_protocol::rules::is_feature_name;
use nectar_protocol::usage::{MAX_METADATA_BYTES, MAX_QUANTITY};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::usage::UsageBuffer;

/// Most events one `POST /v1/usage` may carry (they are forwarded 100 at a time).
pub const MAX_EVENTS_PER_POST: usize = 1_000;

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
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/v1/license", get(license))
        .route("/v1/features/{name}", get(feature))
        .route("/v1/usage", post(usage))
        .with_state(state)
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
/// its shape; stamps it with an id and its time of occurrence.
fn admit(e: EventIn, index: usize, now: time::OffsetDateTime) -> Result<UsageEvent, String> {
    use time::format_description::well_known::Rfc3339;
    if !is_feature_name(&e.feature) {
        return Err(format!(
            "events[{index}].feature must match [a-z][a-z0-9_]{{0,63}}"
        ));
    }
    if !(1..=MAX_QUANTITY).contains(&e.quantity) {
        return Err(format!(
            "events[{index}].quantity must be 1 to {MAX_QUANTITY}"
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

async fn usage(State(s): State<AppState>, body: Bytes) -> Response {
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
        .map(|(i, e)| admit(e, i, now))
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
        Ok(Err(e)) => {
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
