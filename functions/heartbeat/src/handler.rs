//! Heartbeat handler: parse → `service::heartbeat` → one response mapping.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{HeartbeatAnswer, HeartbeatRequest, HeartbeatResponse};
use shared::domain::ports::{
    AttentionFlags, AuditLog, Clock, InstallationRegistry, LicenseReader, RateLimiter, TokenSigner,
};
use shared::http::{self, ApiError};
use shared::service::heartbeat::{BeatPolicy, HeartbeatCommand, heartbeat};
use shared::token::KeyRing;

/// What the handler needs.
pub struct Deps<S> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// License reads and installation writes.
    pub store: S,
    /// Signs leases (KMS).
    pub signer: Arc<dyn TokenSigner>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Heartbeat interval advertised to installations.
    pub interval: time::Duration,
    /// New installation activations per license per hour.
    pub activations_per_hour: u64,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + InstallationRegistry + AuditLog + AttentionFlags + RateLimiter,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + InstallationRegistry + AuditLog + AttentionFlags + RateLimiter,
{
    http::route(req, &[(http::keys::HEARTBEAT, ())])?;
    let cmd = HeartbeatCommand::try_from(http::parse_json::<HeartbeatRequest>(req)?)?;
    let now = deps.clock.now();
    let beat = heartbeat(
        &deps.ring,
        &deps.store,
        deps.signer.as_ref(),
        &cmd,
        BeatPolicy {
            interval: deps.interval,
            activations_per_hour: deps.activations_per_hour,
        },
        now,
    )
    .await?;
    Ok(http::json(
        StatusCode::OK,
        &HeartbeatResponse::new(&beat, deps.interval, now),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_claims(ring: &KeyRing, body: &serde_json::Value) -> shared::token::LeaseClaims {
        let token = body["lease"]["token"].as_str().expect("a lease");
        ring.verify_lease(token).expect("a lease our ring verifies")
    }
    use shared::domain::ports::SystemClock;
    use shared::domain::{DomainPattern, Plan};
    use shared::testing::{MemoryStack, apigw_v2, body_json};

    const FIXTURE: &str = include_str!("../../../tests/fixtures/apigw_v2/heartbeat.json");

    #[tokio::test]
    async fn a_first_heartbeat_registers_the_installation_and_advertises_the_interval() {
        // Arrange
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Professional, SystemClock.now(), |c| {
                c.domain_restrictions = vec![DomainPattern::parse("*.acme.com").expect("valid")];
            })
            .await;
        let deps = Deps {
            ring: stack.key_ring().await,
            store: stack.store.clone(),
            signer: Arc::new(stack.lease_signer().await),
            clock: Arc::new(SystemClock),
            interval: time::Duration::minutes(10),
            activations_per_hour: 2,
        };
        let req = apigw_v2(
            FIXTURE,
            &[
                ("__LICENSE_KEY__", issued.key.expose()),
                ("__INSTALLATION_ID__", "node-7"),
            ],
        );
        // Act
        let resp = handle(&deps, req).await.expect("always Ok");
        // Assert
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::OK, "{body}");
        assert_eq!(
            (body["ok"].as_bool(), body["code"].as_str()),
            (Some(true), Some("VALID"))
        );
        assert_eq!(body["installation"]["id"], "node-7");
        assert_eq!(body["installation"]["domain"], "app.acme.com");
        assert_eq!(body["heartbeat"]["intervalSeconds"], 600);
        // (What first contact costs in AWS calls is asserted against the emulator in
        // shared/tests/emulator.rs.)
        let lease = ring_claims(&deps.ring, &body);
        assert_eq!(lease.iid.as_str(), "node-7");
        assert_eq!(lease.lid, issued.license.id);
    }

    #[tokio::test]
    async fn activation_churn_is_refused_with_429_and_retry_after_but_never_the_first() {
        // Arrange: 10 seats, at most 2 activations an hour.
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Professional, SystemClock.now(), |c| {
                c.limits.installations = Some(10);
                c.domain_restrictions = vec![DomainPattern::parse("*.acme.com").expect("valid")];
            })
            .await;
        let deps = Deps {
            ring: stack.key_ring().await,
            store: stack.store.clone(),
            signer: Arc::new(stack.lease_signer().await),
            clock: Arc::new(SystemClock),
            interval: time::Duration::minutes(10),
            activations_per_hour: 2,
        };
        let beat = |iid: &'static str| {
            apigw_v2(
                FIXTURE,
                &[
                    ("__LICENSE_KEY__", issued.key.expose()),
                    ("__INSTALLATION_ID__", iid),
                ],
            )
        };
        // Act: the first activation (no seat held) passes outside the count; then 2 more.
        let mut statuses = Vec::new();
        for iid in ["n-1", "n-2", "n-3", "n-4"] {
            let resp = handle(&deps, beat(iid)).await.expect("always Ok");
            statuses.push(resp.status().as_u16());
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                let body = body_json(&resp);
                assert_eq!(body["error"]["code"], "ACTIVATION_RATE_LIMITED", "{body}");
                let retry: u64 = resp.headers()["retry-after"]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("seconds");
                assert!((1..=3_600).contains(&retry), "{retry}");
            }
        }
        // Assert: seated installations keep beating, unthrottled.
        assert_eq!(statuses, [200, 200, 200, 429]);
        for _ in 0..5 {
            let resp = handle(&deps, beat("n-1")).await.expect("always Ok");
            assert_eq!(resp.status(), StatusCode::OK);
        }
    }

    /// DynamoDB hanging: a 503 with Retry-After within the request deadline (the agent keeps its
    /// lease and retries with backoff), not a wait for the Lambda timeout.
    #[tokio::test]
    async fn a_hanging_table_is_a_503_within_the_request_deadline() {
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Professional, SystemClock.now(), |_| {})
            .await;
        let endpoint = shared::testing::hanging_endpoint().await;
        let deps = Deps {
            ring: stack.key_ring().await,
            store: shared::adapters::dynamo::DynamoStore::new_with_table(
                shared::testing::dynamo_client(&endpoint, shared::aws::Deadline::Request),
                "licenses",
            ),
            signer: Arc::new(stack.lease_signer().await),
            clock: Arc::new(SystemClock),
            interval: time::Duration::minutes(10),
            activations_per_hour: 20,
        };
        let req = apigw_v2(
            FIXTURE,
            &[
                ("__LICENSE_KEY__", issued.key.expose()),
                ("__INSTALLATION_ID__", "node-7"),
            ],
        );
        let started = std::time::Instant::now();
        let resp = handle(&deps, req).await.expect("always Ok");
        let took = started.elapsed();
        println!(
            "heartbeat with DynamoDB hanging answered {} in {took:?}",
            resp.status()
        );
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }
}
