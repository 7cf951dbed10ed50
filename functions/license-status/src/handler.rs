//! Support's actions on a license: suspend / reinstate (route → authorise `support` →
//! `change_status`) and releasing one installation's seat (→ `release_installation`).

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{
    InstallationReleasedResponse, InstallationView, LicenseView, Parse, StatusChangeRequest,
    StatusChangeResponse,
};
use shared::config::AdminAuth;
use shared::domain::ports::{
    Clock, InstallationRegistry, LicenseReader, LicenseWriter, LifecycleIndex, OperatorDirectory,
};
use shared::domain::{InstallationId, LicenseId};
use shared::http::{self, ApiError};
use shared::service::admin::{StatusAction, change_status};
use shared::service::installations::release_installation;

/// What a route asks for.
#[derive(Debug, Clone, Copy)]
enum Action {
    Status(StatusAction),
    Release,
}

/// The routes this function serves; the action is the route.
const ROUTES: &[(&str, Action)] = &[
    (
        http::keys::LICENSE_SUSPEND,
        Action::Status(StatusAction::Suspend),
    ),
    (
        http::keys::LICENSE_REINSTATE,
        Action::Status(StatusAction::Reinstate),
    ),
    (http::keys::INSTALLATION_RELEASE, Action::Release),
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
    S: LicenseReader + LicenseWriter + InstallationRegistry + LifecycleIndex + OperatorDirectory,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + LicenseWriter + InstallationRegistry + LifecycleIndex + OperatorDirectory,
{
    let matched = http::route(req, ROUTES)?;
    let actor = http::authorize(req, &matched, &deps.auth, &deps.store)
        .await?
        .actor();
    let id: LicenseId = matched.id("licenseId")?;
    let action = match matched.route {
        Action::Status(action) => action,
        Action::Release => {
            let installation: InstallationId = matched.id("installationId")?;
            let reason = http::parse_json::<StatusChangeRequest>(req)?.parse()?;
            let (released, changed) = release_installation(
                &deps.store,
                &id,
                &installation,
                reason,
                actor,
                deps.clock.now(),
            )
            .await?;
            return Ok(http::json(
                StatusCode::OK,
                &InstallationReleasedResponse {
                    installation: InstallationView::from(&released),
                    changed,
                },
            ));
        }
    };
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
