//! Lookup handlers: a customer with their licenses (each with its latest audit entries), and a
//! license's audit trail page by page. Authorise (`viewer`) → parse → read → one response mapping.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::api::{
    AuditPageResponse, AuditView, CustomerLicensesResponse, CustomerView, LicenseDetailView,
};
use shared::config::AdminAuth;
use shared::domain::ports::{
    AUDIT_PAGE, AuditLog, CustomerDirectory, LicenseReader, OperatorDirectory,
};
use shared::domain::{CustomerId, DomainError, LicenseId};
use shared::http::{self, ApiError};
use shared::service::admin::lookup_customer;

/// What the handler needs.
pub struct Deps<D> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// Customer and license reads; operator tokens.
    pub store: D,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<D: CustomerDirectory + AuditLog + LicenseReader + OperatorDirectory>(
    deps: &Deps<D>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Customer,
    Audit,
}

/// Most entries one audit page may ask for.
const MAX_AUDIT_PAGE: usize = 200;

async fn run<D: CustomerDirectory + AuditLog + LicenseReader + OperatorDirectory>(
    deps: &Deps<D>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let matched = http::route(
        req,
        &[
            (http::keys::CUSTOMER_LICENSES, Route::Customer),
            (http::keys::LICENSE_AUDIT, Route::Audit),
        ],
    )?;
    http::authorize(req, &matched, &deps.auth, &deps.store).await?;
    if matched.route == Route::Audit {
        let id: LicenseId = matched.id("licenseId")?;
        let params = req.query_string_parameters();
        let limit = match params.first("limit") {
            None => AUDIT_PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_AUDIT_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::field(
                        "INVALID_FIELD",
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_AUDIT_PAGE}"),
                    )
                })?,
        };
        let before = http::audit_before(params.first("before"))?;
        deps.store
            .license(&id)
            .await
            .map_err(DomainError::from)?
            .ok_or(DomainError::LicenseNotFound)?;
        let page = deps
            .store
            .audit_page(&id, before, limit)
            .await
            .map_err(http::audit_page_error)?;
        return Ok(http::json(
            StatusCode::OK,
            &AuditPageResponse {
                license_id: id.to_string(),
                entries: page.entries.iter().map(AuditView::from).collect(),
                next: page.next,
            },
        ));
    }
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

    #[tokio::test]
    async fn a_long_audit_trail_is_paged_newest_first_and_the_lookup_shows_the_latest() {
        // Arrange: a license with 120 audit entries after its issue entry.
        let stack = MemoryStack::new();
        let issued = stack
            .issue(Plan::Enterprise, SystemClock.now(), |_| {})
            .await;
        for i in 0..120 {
            let entry = shared::domain::AuditEntry {
                action: format!("test.entry.{i:03}"),
                actor: shared::domain::Actor::system("test"),
                reason: None,
                from: None,
                to: None,
                at: SystemClock.now() + time::Duration::seconds(i + 1),
            };
            stack
                .store
                .append(&issued.license.id, &entry)
                .await
                .expect("append");
        }
        let deps = Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
        };
        const AUDIT: &str = include_str!("../../../tests/fixtures/apigw_v2/license_audit.json");
        let page = |query: &str| {
            apigw_v2(
                AUDIT,
                &[
                    ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
                    ("__LICENSE_ID__", issued.license.id.as_str()),
                    ("__QUERY__", query),
                ],
            )
        };
        // Act: walk the pages.
        let mut seen = Vec::new();
        let mut query = "limit=50".to_owned();
        loop {
            let resp = handle(&deps, page(&query)).await.expect("always Ok");
            let body = body_json(&resp);
            assert_eq!(resp.status(), StatusCode::OK, "{body}");
            let entries = body["entries"].as_array().expect("entries");
            assert!(entries.len() <= 50);
            seen.extend(
                entries
                    .iter()
                    .map(|e| e["action"].as_str().unwrap_or("").to_owned()),
            );
            match body["next"].as_str() {
                Some(next) => query = format!("limit=50&before={next}"),
                None => break,
            }
        }
        // Assert: every entry once, newest first.
        assert_eq!(seen.len(), 121);
        assert_eq!(seen[0], "test.entry.119");
        assert_eq!(seen[120], "license.issued");
        // The lookup shows the latest 50, oldest first, with a cursor for the rest.
        let customer = issued.customer.id.to_string();
        let req = apigw_v2(
            FIXTURE,
            &[
                ("__ADMIN_TOKEN__", TEST_ADMIN_TOKEN),
                ("__CUSTOMER_ID__", &customer),
            ],
        );
        let body = body_json(&handle(&deps, req).await.expect("always Ok"));
        let audit = body["licenses"][0]["audit"].as_array().expect("audit");
        assert_eq!(audit.len(), 50);
        assert_eq!(audit[49]["action"], "test.entry.119");
        assert!(body["licenses"][0]["auditNext"].is_string(), "{body}");
        // Bad input.
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1000", "limit"),
            ("before=zzz", "before"),
        ] {
            let resp = handle(&deps, page(query)).await.expect("always Ok");
            let body = body_json(&resp);
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}: {body}");
            assert_eq!(body["error"]["field"], field, "{query}");
        }
    }
}
