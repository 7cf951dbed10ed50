//! Usage handler: parse every event → `service::usage::submit` → 202 (or 503, with `Retry-After`,
//! naming the events that could not be queued).

use std::sync::Arc;

use lambda_http::http::StatusCode;
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
    http::route(req, &[(http::keys::USAGE, ())])?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Plan;
    use shared::testing::{FixedClock, MemoryStack, apigw_v2, body_json};
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2026-06-15 12:00 UTC);
    const FIXTURE: &str = include_str!("../../../tests/fixtures/apigw_v2/usage.json");

    async fn arrange() -> (
        MemoryStack,
        shared::testing::Issued,
        Deps<shared::adapters::memory::MemoryStore, shared::adapters::memory::MemoryQueue>,
    ) {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let deps = Deps {
            ring: stack.key_ring().await,
            store: stack.store.clone(),
            queue: stack.queue.clone(),
            clock: Arc::new(FixedClock(NOW)),
        };
        (stack, issued, deps)
    }

    fn request(issued: &shared::testing::Issued) -> Request {
        apigw_v2(
            FIXTURE,
            &[
                ("__LICENSE_KEY__", issued.key.expose()),
                ("__OCCURRED_AT__", "2026-06-15T11:00:00Z"),
            ],
        )
    }

    #[tokio::test]
    async fn accepted_events_are_queued_once_each_and_answered_202() {
        // Arrange
        let (stack, issued, deps) = arrange().await;
        // Act
        let resp = handle(&deps, request(&issued)).await.expect("always Ok");
        // Assert
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{body}");
        assert_eq!(
            (&body["accepted"], &body["rejected"], &body["failed"]),
            (&2.into(), &0.into(), &0.into())
        );
        assert_eq!(body["licenseId"], issued.license.id.as_str());
        let queued = stack.queue.drain();
        let summary: Vec<(String, u64, String)> = queued
            .iter()
            .map(|e| (e.event_id.to_string(), e.quantity, e.license_id.to_string()))
            .collect();
        let lid = issued.license.id.to_string();
        assert_eq!(
            summary,
            [
                ("evt-0001".to_owned(), 3, lid.clone()),
                ("evt-0002".to_owned(), 2, lid)
            ]
        );
        assert_eq!(queued[0].occurred_at, datetime!(2026-06-15 11:00 UTC));
        assert_eq!(
            queued[1].occurred_at, NOW,
            "an event without occurredAt happened when received"
        );
        assert_eq!(
            queued[0].metadata.as_ref().map(|m| m["workflowId"].clone()),
            Some("wf-7".into())
        );
    }

    #[tokio::test]
    async fn a_queue_failure_is_a_503_naming_each_events_fate() {
        // Arrange: the first event cannot be queued, the second can.
        let (stack, issued, deps) = arrange().await;
        stack.queue.fail_next(1);
        // Act
        let resp = handle(&deps, request(&issued)).await.expect("always Ok");
        // Assert
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(body["error"]["code"], "USAGE_QUEUE_UNAVAILABLE");
        let fates: Vec<(&str, &str)> = body["error"]["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["eventId"].as_str().unwrap_or_default(),
                    e["status"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(fates, [("evt-0001", "failed"), ("evt-0002", "accepted")]);
        assert_eq!(stack.queue.drain().len(), 1);
    }

    #[tokio::test]
    async fn a_key_for_a_license_not_on_record_is_401_and_queues_nothing() {
        // Arrange: a key our ring trusts, for a license another store holds.
        let (stack, _, deps) = arrange().await;
        let elsewhere = MemoryStack {
            signer: stack.signer.clone(),
            ..MemoryStack::new()
        };
        let foreign = elsewhere.issue(Plan::Professional, NOW, |_| {}).await;
        // Act
        let resp = handle(&deps, request(&foreign)).await.expect("always Ok");
        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(&resp)["error"]["code"], "NOT_FOUND");
        assert!(stack.queue.drain().is_empty());
    }

    /// SQS hanging (accepts, never answers): every event is reported `failed` in a 503 with
    /// Retry-After within the request deadline — the installation keeps them and sends again.
    #[tokio::test]
    async fn a_hanging_queue_is_a_503_naming_every_event_within_the_request_deadline() {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let endpoint = shared::testing::hanging_endpoint().await;
        let deps = Deps {
            ring: stack.key_ring().await,
            store: stack.store.clone(),
            queue: shared::adapters::sqs::SqsUsageQueue::new(
                shared::testing::sqs_client(&endpoint, shared::aws::Deadline::Request),
                format!("{endpoint}/123456789012/usage"),
            ),
            clock: Arc::new(FixedClock(NOW)),
        };
        let started = std::time::Instant::now();
        let resp = handle(&deps, request(&issued)).await.expect("always Ok");
        let took = started.elapsed();
        println!(
            "usage with SQS hanging answered {} in {took:?}",
            resp.status()
        );
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(body["error"]["code"], "USAGE_QUEUE_UNAVAILABLE");
        assert!(
            body["error"]["events"]
                .as_array()
                .is_some_and(|e| e.len() == 2 && e.iter().all(|e| e["status"] == "failed")),
            "{body}"
        );
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }
}
