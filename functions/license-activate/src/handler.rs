//! Offline activation handler: route → authorise (`admin`) → parse → `activate_offline` → the activation
//! file, as `nectar-admin activate` prints it.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::ActivationRequest;
use shared::config::AdminAuth;
use shared::domain::ports::{
    AuditLog, Clock, EndorsementRegistry, InstallationRegistry, LicenseReader, OperatorDirectory,
    TokenSigner,
};
use shared::domain::{InstallationId, LicenseId};
use shared::http::{self, ApiError};
use shared::service::activation::{ActivationCommand, activate_offline};

/// Days an activation runs when the request does not say.
pub const DEFAULT_DAYS: i64 = 90;

/// What the handler needs.
pub struct Deps<S> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// License reads, the seat claim, the lease record, the audit entry, the endorsements;
    /// operator tokens.
    pub store: S,
    /// Signs the activation's lease (the lease key; it can sign nothing else).
    pub lease_signer: Arc<dyn TokenSigner>,
    /// The `iss` of leases.
    pub issuer: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + InstallationRegistry + AuditLog + EndorsementRegistry + OperatorDirectory,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + InstallationRegistry + AuditLog + EndorsementRegistry + OperatorDirectory,
{
    let matched = http::route(req, &[(http::keys::LICENSE_ACTIVATE, ())])?;
    let actor = http::authorize(req, &matched, &deps.auth, &deps.store)
        .await?
        .actor();
    let license_id: LicenseId = matched.id("licenseId")?;
    let body = http::parse_json::<ActivationRequest>(req)?;
    let installation_id = InstallationId::parse(&body.installation_id)
        .map_err(|e| ApiError::field("INVALID_FIELD", "installationId", e.to_string()))?;
    let cmd = ActivationCommand {
        license_id,
        installation_id,
        days: body.days.unwrap_or(DEFAULT_DAYS),
        actor,
    };
    let file = activate_offline(
        &deps.store,
        deps.lease_signer.as_ref(),
        &deps.issuer,
        &cmd,
        deps.clock.now(),
    )
    .await?;
    Ok(http::json(StatusCode::CREATED, &file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Plan;
    use shared::domain::ports::SystemClock;
    use shared::testing::{
        MemoryStack, TEST_ADMIN_TOKEN, TEST_ISSUER, admin_auth, apigw_v2, body_json,
    };

    const FIXTURE: &str = include_str!("../../../tests/fixtures/apigw_v2/license_activate.json");

    fn deps(stack: &MemoryStack) -> Deps<shared::adapters::memory::MemoryStore> {
        Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
            lease_signer: Arc::new(stack.lease_signer.clone()),
            issuer: TEST_ISSUER.into(),
            clock: Arc::new(SystemClock),
        }
    }

    fn request(license: &str, body: &str, token: Option<&str>) -> Request {
        let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
        apigw_v2(
            FIXTURE,
            &[
                ("__LICENSE_ID__", license),
                ("__BODY__", body),
                ("__AUTHORIZATION__", &auth),
            ],
        )
    }

    #[tokio::test]
    async fn an_admin_gets_a_signed_activation_file_for_the_installation() {
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Professional, SystemClock.now(), |_| {})
            .await;
        let id = issued.license.id.to_string();
        let resp = handle(
            &deps(&stack),
            request(
                &id,
                // Shorter than the test license's 30-day term, which would cap it.
                r#"{"installationId":"air-gapped-1","days":7}"#,
                Some(TEST_ADMIN_TOKEN),
            ),
        )
        .await
        .expect("always Ok");
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body = body_json(&resp);
        assert_eq!(body["format"], "nectar-activation/1");
        assert_eq!(body["installationId"], "air-gapped-1");
        let lease = body["lease"].as_str().expect("lease");
        let claims = stack
            .ring
            .verify_lease(lease)
            .expect("a lease signed by the lease key");
        assert_eq!(claims.exp - claims.iat, 7 * 86_400);
    }

    #[tokio::test]
    async fn bad_requests_get_stable_codes() {
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Professional, SystemClock.now(), |c| {
                c.limits.installations = Some(1);
            })
            .await;
        let id = issued.license.id.to_string();
        let d = deps(&stack);
        let cases: Vec<(Request, StatusCode, &str)> = vec![
            (
                request(&id, r#"{"installationId":"a"}"#, None),
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
            ),
            (
                request(&id, r#"{"installationId":"a b"}"#, Some(TEST_ADMIN_TOKEN)),
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
            ),
            (
                request(
                    &id,
                    r#"{"installationId":"a","days":400}"#,
                    Some(TEST_ADMIN_TOKEN),
                ),
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
            ),
            (
                request(
                    "NECTAR-PROFESSIONAL-2026-NOSUCH01",
                    r#"{"installationId":"a"}"#,
                    Some(TEST_ADMIN_TOKEN),
                ),
                StatusCode::NOT_FOUND,
                "LICENSE_NOT_FOUND",
            ),
        ];
        for (req, status, code) in cases {
            let resp = handle(&d, req).await.expect("always Ok");
            let body = body_json(&resp);
            assert_eq!(
                (resp.status(), body["error"]["code"].as_str()),
                (status, Some(code)),
                "{body}"
            );
        }
        // One seat: the first installation takes it, the second gets 409 INSTALLATION_LIMIT.
        let first = handle(
            &d,
            request(&id, r#"{"installationId":"a"}"#, Some(TEST_ADMIN_TOKEN)),
        )
        .await
        .expect("ok");
        assert_eq!(first.status(), StatusCode::CREATED);
        let second = handle(
            &d,
            request(&id, r#"{"installationId":"b"}"#, Some(TEST_ADMIN_TOKEN)),
        )
        .await
        .expect("ok");
        assert_eq!(second.status(), StatusCode::CONFLICT);
        assert_eq!(body_json(&second)["error"]["code"], "INSTALLATION_LIMIT");
    }
}
