//! Suspend / reinstate handler: route (the action is the route) → authorise (`support`) →
//! `change_status`.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{LicenseView, Parse, StatusChangeRequest, StatusChangeResponse};
use shared::config::AdminAuth;
use shared::domain::LicenseId;
use shared::domain::ports::{Clock, LicenseReader, LicenseWriter, OperatorDirectory};
use shared::http::{self, ApiError};
use shared::service::admin::{StatusAction, change_status};

/// The routes this function serves; the action is the route.
const ROUTES: &[(&str, StatusAction)] = &[
    (http::keys::LICENSE_SUSPEND, StatusAction::Suspend),
    (http::keys::LICENSE_REINSTATE, StatusAction::Reinstate),
];

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
    let matched = http::route(req, ROUTES)?;
    let actor = http::authorize(req, &matched, &deps.auth, &deps.store)
        .await?
        .actor();
    let action = matched.route;
    let id: LicenseId = matched.id("licenseId")?;
    let reason = http::parse_json::<StatusChangeRequest>(req)?.parse()?;
    let (license, changed) = change_status(
        &deps.store,
        &id,
        action,
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
    use shared::testing::{MemoryStack, TEST_ADMIN_TOKEN, admin_auth, apigw_v2, body_json};

    #[tokio::test]
    async fn suspend_and_reinstate_take_the_license_id_and_action_from_the_route() {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let deps = Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
            clock: Arc::new(SystemClock),
        };
        let vars = [
            ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
            ("__LICENSE_ID__", issued.license.id.as_str()),
        ];
        for (fixture, status) in [
            (
                include_str!("../../../tests/fixtures/apigw_v2/license_suspend.json"),
                "suspended",
            ),
            (
                include_str!("../../../tests/fixtures/apigw_v2/license_reinstate.json"),
                "active",
            ),
        ] {
            let resp = handle(&deps, apigw_v2(fixture, &vars))
                .await
                .expect("always Ok");
            let body = body_json(&resp);
            assert_eq!(resp.status(), StatusCode::OK, "{body}");
            assert_eq!(body["license"]["status"], status);
            assert_eq!(body["changed"], true);
        }
    }

    #[tokio::test]
    async fn a_malformed_license_id_in_the_path_is_a_400_naming_it() {
        let stack = MemoryStack::new();
        let deps = Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
            clock: Arc::new(SystemClock),
        };
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/license_suspend.json"),
            &[
                ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
                ("__LICENSE_ID__", "bogus"),
            ],
        );
        let resp = handle(&deps, req).await.expect("always Ok");
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            (
                body["error"]["code"].as_str(),
                body["error"]["field"].as_str()
            ),
            (Some("INVALID_FIELD"), Some("licenseId"))
        );
    }
}
