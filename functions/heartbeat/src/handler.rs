//! Heartbeat handler: parse → `service::heartbeat` → one response mapping.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{HeartbeatAnswer, HeartbeatRequest, HeartbeatResponse};
use shared::domain::ports::{AuditLog, Clock, InstallationRegistry, LicenseReader, TokenSigner};
use shared::http::{self, ApiError};
use shared::service::heartbeat::{HeartbeatCommand, heartbeat};
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
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + InstallationRegistry + AuditLog,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + InstallationRegistry + AuditLog,
{
    http::route(req, &[(http::keys::HEARTBEAT, ())])?;
    let cmd = HeartbeatCommand::try_from(http::parse_json::<HeartbeatRequest>(req)?)?;
    let now = deps.clock.now();
    let beat = heartbeat(
        &deps.ring,
        &deps.store,
        deps.signer.as_ref(),
        &cmd,
        deps.interval,
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
}
