//! Revoke handler: authorise (`admin`) → parse → `service::admin::change_status(Revoke)`.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{LicenseView, Parse, RevokeRequest, StatusChangeResponse};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, LicenseReader, LicenseWriter, OperatorDirectory};
use shared::http::{self, ApiError};
use shared::service::admin::{StatusAction, change_status};

/// What the handler needs.
pub struct Deps<S> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// License reads and status writes; operator tokens.
    pub store: S,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + LicenseWriter + OperatorDirectory,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + LicenseWriter + OperatorDirectory,
{
    let matched = http::route(req, &[(http::keys::REVOKE, ())])?;
    let actor = http::authorize(req, &matched, &deps.auth, &deps.store)
        .await?
        .actor();
    let (id, reason) = http::parse_json::<RevokeRequest>(req)?.parse()?;
    let (license, changed) = change_status(
        &deps.store,
        &id,
        StatusAction::Revoke,
        Some(reason),
        actor,
        deps.clock.now(),
    )
    .await?;
    Ok(http::json(
        StatusCode::OK,
        &StatusChangeResponse {
            license: LicenseView::from(&license),
            changed,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Plan;
    use shared::domain::ports::SystemClock;
    use shared::testing::{
        MemoryStack, TEST_ADMIN_TOKEN, Untouchable, admin_auth, apigw_v2, body_json,
    };

    const FIXTURE: &str = include_str!("../../../tests/fixtures/apigw_v2/revoke.json");

    fn deps(stack: &MemoryStack) -> Deps<shared::adapters::memory::MemoryStore> {
        Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    #[tokio::test]
    async fn revoke_marks_the_license_revoked_and_names_the_operator_in_the_audit_trail() {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let req = apigw_v2(
            FIXTURE,
            &[
                ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
                ("__LICENSE_ID__", issued.license.id.as_str()),
            ],
        );
        let resp = handle(&deps(&stack), req).await.expect("always Ok");
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::OK, "{body}");
        assert_eq!(
            (
                body["changed"].as_bool(),
                body["license"]["status"].as_str()
            ),
            (Some(true), Some("revoked"))
        );
        let (_, details) =
            shared::service::admin::lookup_customer(&stack.store, &issued.customer.id)
                .await
                .expect("lookup");
        let last = details[0].audit.last().expect("audit");
        // The fixture's `X-Nectar-Actor: alice@nectar.example` no longer names anyone: the
        // authenticated operator does.
        assert_eq!(last.actor.as_str(), "operator:bootstrap");
        assert_eq!(last.reason.as_deref(), Some("chargeback"));
    }

    #[tokio::test]
    async fn a_wrong_admin_token_is_401_and_changes_nothing() {
        let issued = MemoryStack::new()
            .issue(Plan::Starter, SystemClock.now(), |_| {})
            .await;
        let deps = Deps {
            auth: admin_auth(),
            store: Untouchable,
            clock: Arc::new(SystemClock),
        };
        let req = apigw_v2(
            FIXTURE,
            &[
                ("__ADMIN_TOKEN__", "guess"),
                ("__LICENSE_ID__", issued.license.id.as_str()),
            ],
        );
        // Act (the store panics if reached)
        let resp = handle(&deps, req).await.expect("always Ok");
        // Assert
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(&resp)["error"]["code"], "UNAUTHORIZED");
    }
}
