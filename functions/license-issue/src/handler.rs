//! Issue, change and renew handler: authorise (issue and change: `admin`, renew: `support`) →
//! parse → `service::admin::issue_license`, `service::changes::change_license` or
//! `service::admin::renew_license` (all sign with KMS: this is the one function that mints
//! license keys).

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{
    ChangeLicenseRequest, IssueLicenseRequest, LicenseChangedResponse, LicenseIssuedResponse,
    LicenseView, Parse, RenewLicenseRequest,
};
use shared::config::AdminAuth;
use shared::domain::LicenseId;
use shared::domain::ports::{
    Clock, CustomerDirectory, IdSource, LicenseAmender, LicenseReader, LicenseWriter,
    OperatorDirectory, TokenSigner,
};
use shared::http::{self, ApiError};
use shared::service::admin::{IssueCommand, RenewCommand, issue_license, renew_license};
use shared::service::changes::{ChangeCommand, change_license};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Issue,
    Change,
    Renew,
}

const ROUTES: &[(&str, Route)] = &[
    (http::keys::LICENSE_ISSUE, Route::Issue),
    (http::keys::LICENSE_CHANGE, Route::Change),
    (http::keys::LICENSE_RENEW, Route::Renew),
];

/// What the handler needs.
pub struct Deps<S> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// Customer reads and license writes; operator tokens.
    pub store: S,
    /// Signs the new key.
    pub signer: Arc<dyn TokenSigner>,
    /// `iss` claim.
    pub issuer: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// New ids.
    pub ids: Arc<dyn IdSource>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S>(deps: &Deps<S>, req: Request) -> Result<Response<Body>, Error>
where
    S: CustomerDirectory + LicenseReader + LicenseWriter + LicenseAmender + OperatorDirectory,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: CustomerDirectory + LicenseReader + LicenseWriter + LicenseAmender + OperatorDirectory,
{
    let matched = http::route(req, ROUTES)?;
    let actor = http::authorize(req, &matched, &deps.auth, &deps.store)
        .await?
        .actor();
    if matched.route == Route::Change {
        let id: LicenseId = matched.id("licenseId")?;
        let cmd = ChangeCommand::try_from(http::parse_json::<ChangeLicenseRequest>(req)?)?;
        let changed = change_license(
            &deps.store,
            deps.signer.as_ref(),
            &deps.issuer,
            &id,
            &cmd,
            actor,
            deps.clock.now(),
        )
        .await?;
        return Ok(http::json(
            StatusCode::OK,
            &LicenseChangedResponse::from(&changed),
        ));
    }
    if matched.route == Route::Renew {
        let id: LicenseId = matched.id("licenseId")?;
        let (term, reason) = http::parse_json::<RenewLicenseRequest>(req)?.parse()?;
        let (license, key) = renew_license(
            &deps.store,
            deps.signer.as_ref(),
            &deps.issuer,
            RenewCommand { id, term, reason },
            actor,
            deps.clock.now(),
        )
        .await?;
        return Ok(http::json(
            StatusCode::OK,
            &LicenseIssuedResponse {
                license: LicenseView::from(&license),
                license_key: key.expose().to_owned(),
            },
        ));
    }
    let cmd = IssueCommand::try_from(http::parse_json::<IssueLicenseRequest>(req)?)?;
    let (license, key) = issue_license(
        &deps.store,
        deps.signer.as_ref(),
        deps.ids.as_ref(),
        &deps.issuer,
        cmd,
        actor,
        deps.clock.now(),
    )
    .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &LicenseIssuedResponse {
            license: LicenseView::from(&license),
            license_key: key.expose().to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Plan;
    use shared::domain::ports::{RandomIds, SystemClock};
    use shared::testing::{
        MemoryStack, Stack, TEST_ADMIN_TOKEN, TEST_ISSUER, admin_auth, apigw_v2, body_json,
    };
    use shared::token::LicenseKey;

    fn issue_request(customer: &shared::domain::Customer) -> Request {
        apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/license_issue.json"),
            &[
                ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
                ("__CUSTOMER_ID__", &customer.id.to_string()),
            ],
        )
    }

    fn deps<S>(store: S, signer: Arc<dyn TokenSigner>) -> Deps<S> {
        Deps {
            auth: admin_auth(),
            store,
            signer,
            issuer: TEST_ISSUER.into(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
        }
    }

    #[tokio::test]
    async fn issuing_answers_201_with_a_key_that_verifies_against_the_ring() {
        // Arrange
        let stack = MemoryStack::new();
        let customer = stack
            .issue(Plan::Starter, SystemClock.now(), |_| {})
            .await
            .customer;
        let deps = deps(stack.store.clone(), Arc::new(stack.signer().await));
        // Act
        let resp = handle(&deps, issue_request(&customer))
            .await
            .expect("always Ok");
        // Assert
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::CREATED, "{body}");
        assert_eq!(body["license"]["limits"]["installations"], 5);
        assert_eq!(body["license"]["domainRestrictions"][0], "*.acme.example");
        let key = LicenseKey::new(body["licenseKey"].as_str().expect("key"));
        let claims = stack
            .key_ring()
            .await
            .verify_license(&key)
            .expect("verifies");
        assert_eq!(claims.jti.as_str(), body["license"]["id"]);
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn issuing_costs_one_customer_read_one_signature_and_one_transaction() {
        // Arrange
        let stack = Stack::new().await;
        let customer = stack
            .issue(Plan::Starter, SystemClock.now(), |_| {})
            .await
            .customer;
        let deps = deps(stack.store.clone(), Arc::new(stack.signer().await));
        stack.calls.reset();
        // Act
        let resp = handle(&deps, issue_request(&customer))
            .await
            .expect("always Ok");
        let calls: Vec<(String, usize)> = stack.calls.snapshot().into_iter().collect();
        // Assert
        assert_eq!(resp.status(), StatusCode::CREATED);
        let expected = [
            ("DynamoDB.GetItem", 1),
            ("DynamoDB.TransactWriteItems", 1),
            ("DynamoDB.TransactWriteItems.items", 2),
            ("KMS.Sign", 1),
        ];
        assert_eq!(
            calls,
            expected.map(|(k, v)| (k.to_owned(), v)),
            "customer check, one signature, one write of license + audit entry"
        );
    }
}
