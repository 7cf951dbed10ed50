//! Lookup handler: authenticate → parse the customer id → `service::admin::lookup_customer`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{CustomerLicensesResponse, CustomerView, LicenseDetailView};
use shared::config::AdminAuth;
use shared::domain::CustomerId;
use shared::domain::ports::CustomerDirectory;
use shared::http::{self, ApiError};
use shared::service::admin::lookup_customer;

/// What the handler needs.
pub struct Deps<D> {
    /// Admin token check.
    pub auth: AdminAuth,
    /// Customer and license reads.
    pub store: D,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<D: CustomerDirectory>(
    deps: &Deps<D>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<D: CustomerDirectory>(
    deps: &Deps<D>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let matched = http::route(req, &[(http::keys::CUSTOMER_LICENSES, ())])?;
    http::admin_actor(req, &deps.auth)?;
    let id: CustomerId = matched.id("customerId")?;
    let (customer, licenses) = lookup_customer(&deps.store, &id).await?;
    Ok(http::json(
        StatusCode::OK,
        &CustomerLicensesResponse {
            customer: CustomerView::from(&customer),
            licenses: licenses.iter().map(LicenseDetailView::from).collect(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Plan;
    use shared::domain::ports::{Clock, SystemClock};
    use shared::testing::{MemoryStack, TEST_ADMIN_TOKEN, admin_auth, apigw_v2, body_json};

    const FIXTURE: &str = include_str!("../../../tests/fixtures/apigw_v2/license_lookup.json");

    #[tokio::test]
    async fn lookup_lists_the_customers_licenses_with_seats_and_audit() {
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Enterprise, SystemClock.now(), |_| {})
            .await;
        let deps = Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
        };
        let customer = issued.customer.id.to_string();
        let req = apigw_v2(
            FIXTURE,
            &[
                ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
                ("__CUSTOMER_ID__", &customer),
            ],
        );
        let resp = handle(&deps, req).await.expect("always Ok");
        let body = body_json(&resp);
        assert_eq!(resp.status(), StatusCode::OK, "{body}");
        assert_eq!(body["customer"]["id"], customer.as_str());
        assert_eq!(body["licenses"][0]["id"], issued.license.id.as_str());
        assert_eq!(body["licenses"][0]["activeInstallations"], 0);
        assert_eq!(body["licenses"][0]["audit"][0]["action"], "license.issued");
    }

    #[tokio::test]
    async fn an_unknown_customer_is_404_and_a_malformed_id_is_400() {
        let stack = MemoryStack::new();
        let deps = Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
        };
        for (id, status, code) in [
            (
                "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b",
                StatusCode::NOT_FOUND,
                "CUSTOMER_NOT_FOUND",
            ),
            ("acme", StatusCode::BAD_REQUEST, "INVALID_FIELD"),
        ] {
            let req = apigw_v2(
                FIXTURE,
                &[
                    ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
                    ("__CUSTOMER_ID__", id),
                ],
            );
            let resp = handle(&deps, req).await.expect("always Ok");
            assert_eq!(
                (resp.status(), body_json(&resp)["error"]["code"].as_str()),
                (status, Some(code))
            );
        }
    }
}
