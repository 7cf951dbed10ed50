//! The fleet listings: customers, licenses and installations by filter, and what needs attention.
//! Authorise (`viewer`) → parse the query string → one store listing → one response mapping.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::api::fleet::{
    AttentionView, FleetInstallationView, FleetLicenseView, Params, attention_query,
    customer_query, customer_view, installation_query, license_query, page_view,
};
use shared::config::AdminAuth;
use shared::domain::DomainError;
use shared::domain::ports::{Clock, FleetIndex, OperatorDirectory};
use shared::http::{self, ApiError};
use shared::service::fleet::attention;

/// What the handler needs.
pub struct Deps<D> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// The fleet indexes; operator tokens.
    pub store: D,
    /// Time ("expiring within", "silent for").
    pub clock: Arc<dyn Clock>,
}

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Customers,
    Licenses,
    Installations,
    Attention,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<D: FleetIndex + OperatorDirectory>(
    deps: &Deps<D>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<D: FleetIndex + OperatorDirectory>(
    deps: &Deps<D>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let matched = http::route(
        req,
        &[
            (http::keys::FLEET_CUSTOMERS, Route::Customers),
            (http::keys::FLEET_LICENSES, Route::Licenses),
            (http::keys::FLEET_INSTALLATIONS, Route::Installations),
            (http::keys::FLEET_ATTENTION, Route::Attention),
        ],
    )?;
    http::authorize(req, &matched, &deps.auth, &deps.store).await?;
    let pairs: Vec<(String, String)> = req
        .query_string_parameters()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let params = Params::new(&pairs);
    let store = &deps.store;
    let body = match matched.route {
        Route::Customers => {
            let (filter, page) = customer_query(&params)?;
            let found = store
                .list_customers(&filter, page.cursor.as_ref(), page.limit)
                .await
                .map_err(DomainError::from)?;
            serde_json::to_value(page_view(&found, customer_view))
        }
        Route::Licenses => {
            let (filter, page) = license_query(&params)?;
            let found = store
                .list_licenses(&filter, page.cursor.as_ref(), page.limit)
                .await
                .map_err(DomainError::from)?;
            serde_json::to_value(page_view(&found, |l| FleetLicenseView::from(l)))
        }
        Route::Installations => {
            let (filter, page) = installation_query(&params)?;
            let found = store
                .list_installations(&filter, page.cursor.as_ref(), page.limit)
                .await
                .map_err(DomainError::from)?;
            serde_json::to_value(page_view(&found, |i| FleetInstallationView::from(i)))
        }
        Route::Attention => {
            let (query, page) = attention_query(&params)?;
            let found = attention(
                store,
                query,
                deps.clock.now(),
                page.cursor.as_ref(),
                page.limit,
            )
            .await?;
            serde_json::to_value(page_view(&found, |a| AttentionView::from(a)))
        }
    };
    let body = body.map_err(|e| {
        tracing::error!(error = %e, "listing did not serialize");
        ApiError::from(DomainError::Store(shared::domain::StoreError::Corrupt(
            "listing did not serialize".into(),
        )))
    })?;
    Ok(http::json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Plan;
    use shared::domain::ports::SystemClock;
    use shared::testing::{MemoryStack, TEST_ADMIN_TOKEN, admin_auth, body_json, local_request};

    fn deps(stack: &MemoryStack) -> Deps<shared::adapters::memory::MemoryStore> {
        Deps {
            auth: admin_auth(),
            store: stack.store.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    async fn get(
        d: &Deps<shared::adapters::memory::MemoryStore>,
        path: &str,
    ) -> (StatusCode, serde_json::Value) {
        let resp = handle(d, local_request("GET", path, Some(TEST_ADMIN_TOKEN), None))
            .await
            .expect("always Ok");
        let status = resp.status();
        (status, body_json(&resp))
    }

    #[tokio::test]
    async fn licenses_page_through_with_the_cursor_and_filters_apply() {
        let stack = MemoryStack::new();
        let now = SystemClock.now();
        for _ in 0..3 {
            stack.issue(Plan::Starter, now, |_| {}).await;
        }
        stack.issue(Plan::Enterprise, now, |_| {}).await;
        let d = deps(&stack);
        let (status, body) = get(&d, "/api/admin/fleet/licenses?plan=starter&limit=2").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["items"].as_array().map(Vec::len), Some(2));
        let next = body["next"].as_str().expect("a second page").to_owned();
        let (status, body) = get(
            &d,
            &format!("/api/admin/fleet/licenses?plan=starter&limit=2&cursor={next}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["plan"], "starter");
        assert_eq!(items[0]["activeInstallations"], 0);
        // The cursor of one listing is refused by another.
        let (status, body) = get(
            &d,
            &format!("/api/admin/fleet/licenses?plan=enterprise&cursor={next}"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "INVALID_CURSOR");
    }

    #[tokio::test]
    async fn bad_queries_are_400s_that_name_the_parameter() {
        let stack = MemoryStack::new();
        let d = deps(&stack);
        for (path, code, field) in [
            (
                "/api/admin/fleet/licenses?status=gone",
                "INVALID_FIELD",
                "status",
            ),
            (
                "/api/admin/fleet/licenses?plan=gold",
                "UNKNOWN_PLAN",
                "plan",
            ),
            (
                "/api/admin/fleet/customers?limit=0",
                "INVALID_FIELD",
                "limit",
            ),
            ("/api/admin/fleet/customers?nme=a", "INVALID_FIELD", "query"),
            (
                "/api/admin/fleet/installations?seenBefore=yesterday",
                "INVALID_FIELD",
                "seenBefore",
            ),
            ("/api/admin/fleet/attention", "INVALID_FIELD", "kind"),
            (
                "/api/admin/fleet/attention?kind=expiring&cursor=xyz",
                "INVALID_CURSOR",
                "cursor",
            ),
        ] {
            let (status, body) = get(&d, path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert_eq!(body["error"]["code"], code, "{path}: {body}");
            assert_eq!(body["error"]["field"], field, "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn expiring_licenses_need_attention_within_the_asked_days() {
        let stack = MemoryStack::new();
        let now = SystemClock.now();
        let soon = stack
            .issue(Plan::Professional, now, |cmd| {
                cmd.term = shared::service::admin::Term::Days(5);
            })
            .await;
        stack.issue(Plan::Professional, now, |_| {}).await;
        let d = deps(&stack);
        let (status, body) = get(&d, "/api/admin/fleet/attention?kind=expiring&withinDays=7").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(items[0]["licenseId"], soon.license.id.as_str());
        assert_eq!(items[0]["kind"], "expiring");
        assert!(
            items[0]["detail"]
                .as_str()
                .unwrap_or("")
                .starts_with("expires in 4 days"),
            "{body}"
        );
    }
}
