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

    fn patch(license: &str, body: &str) -> Request {
        shared::testing::local_request(
            "PATCH",
            &format!("/api/admin/licenses/{license}"),
            Some(TEST_ADMIN_TOKEN),
            Some(body),
        )
    }

    #[tokio::test]
    async fn a_change_answers_200_with_the_new_terms_the_changes_and_a_key_of_them() {
        // Arrange
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let deps = deps(stack.store.clone(), Arc::new(stack.signer().await));
        let body = r#"{"plan": "professional", "limits": {"installations": 10},
            "contract": {"channel": "saas", "price": 150000}, "reason": "upgrade order 2051"}"#;
        // Act
        let resp = handle(&deps, patch(issued.license.id.as_str(), body))
            .await
            .expect("always Ok");
        // Assert
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::OK, "{body}");
        assert_eq!(body["license"]["plan"], "professional");
        assert_eq!(body["license"]["limits"]["installations"], 10);
        assert_eq!(body["contract"]["channel"], "saas");
        assert_eq!(body["contract"]["price"], 150_000);
        assert_eq!(body["previousKeysRevoked"], false);
        assert_eq!(body["seatsOverLimit"], 0);
        assert!(
            body["changes"].as_array().expect("changes").contains(
                &serde_json::json!({"field": "contract.price", "from": null, "to": 150000})
            ),
            "{body}"
        );
        let key = LicenseKey::new(body["licenseKey"].as_str().expect("key"));
        let claims = stack
            .key_ring()
            .await
            .verify_license(&key)
            .expect("verifies");
        assert_eq!(claims.limits.installations, 10);
    }

    #[tokio::test]
    async fn bad_changes_answer_4xx_with_stable_codes() {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let deps = deps(stack.store.clone(), Arc::new(stack.signer().await));
        let id = issued.license.id.as_str();
        let cases = [
            (id, r#"{"plan": "platinum"}"#, 400, "UNKNOWN_PLAN"),
            (id, r#"{"features": ["teleport"]}"#, 400, "UNKNOWN_FEATURE"),
            (
                id,
                r#"{"limits": {"installations": 0}}"#,
                400,
                "INVALID_FIELD",
            ),
            (id, r#"{"limits": [1]}"#, 400, "INVALID_REQUEST"),
            (
                id,
                r#"{"contract": {"currency": "usd"}}"#,
                400,
                "INVALID_FIELD",
            ),
            (id, r#"{"colour": "red"}"#, 400, "INVALID_REQUEST"),
            (id, "{not json", 400, "MALFORMED_JSON"),
            (
                id,
                r#"{"customerId": "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b"}"#,
                404,
                "CUSTOMER_NOT_FOUND",
            ),
            (
                "NECTAR-STARTER-2026-NOSUCH01",
                "{}",
                404,
                "LICENSE_NOT_FOUND",
            ),
        ];
        for (license, body, status, code) in cases {
            let resp = handle(&deps, patch(license, body))
                .await
                .expect("always Ok");
            let answer = body_json(&resp);
            assert_eq!(
                (resp.status().as_u16(), answer["error"]["code"].as_str()),
                (status, Some(code)),
                "{body}: {answer}"
            );
        }
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_change_costs_one_read_one_signature_and_one_transaction_and_a_move_one_more_read() {
        // Arrange
        let stack = Stack::new().await;
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let buyer = stack
            .issue(Plan::Starter, SystemClock.now(), |_| {})
            .await
            .customer;
        let deps = deps(stack.store.clone(), Arc::new(stack.signer().await));
        let id = issued.license.id.as_str();
        let costs = |body: &'static str| {
            let (deps, stack) = (&deps, &stack);
            async move {
                stack.calls.reset();
                let resp = handle(deps, patch(id, body)).await.expect("always Ok");
                assert_eq!(resp.status(), StatusCode::OK, "{}", body_json(&resp));
                stack
                    .calls
                    .snapshot()
                    .into_iter()
                    .collect::<Vec<(String, usize)>>()
            }
        };
        let expect = |pairs: &[(&str, usize)]| -> Vec<(String, usize)> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        // Act + Assert: a limit change (license, audit entry); a plan change (+ revenue change);
        // a move (+ the buyer's read); a change that changes nothing (a read and a signature).
        assert_eq!(
            costs(r#"{"limits": {"users": 9}}"#).await,
            expect(&[
                ("DynamoDB.GetItem", 1),
                ("DynamoDB.TransactWriteItems", 1),
                ("DynamoDB.TransactWriteItems.items", 2),
                ("KMS.Sign", 1),
            ])
        );
        assert_eq!(
            costs(r#"{"plan": "professional"}"#).await,
            expect(&[
                ("DynamoDB.GetItem", 1),
                ("DynamoDB.TransactWriteItems", 1),
                ("DynamoDB.TransactWriteItems.items", 3),
                ("KMS.Sign", 1),
            ])
        );
        let moved: &'static str =
            Box::leak(format!(r#"{{"customerId": "{}"}}"#, buyer.id).into_boxed_str());
        assert_eq!(
            costs(moved).await,
            expect(&[
                ("DynamoDB.GetItem", 2),
                ("DynamoDB.TransactWriteItems", 1),
                ("DynamoDB.TransactWriteItems.items", 2),
                ("KMS.Sign", 1),
            ])
        );
        assert_eq!(
            costs(r#"{"plan": "professional"}"#).await,
            expect(&[("DynamoDB.GetItem", 1), ("KMS.Sign", 1)])
        );
    }
}
