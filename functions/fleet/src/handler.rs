//! The fleet listings (customers, licenses and installations by filter, what needs attention),
//! the dashboard's metrics (the latest daily snapshot, a range of them) and the monthly usage
//! report (CSV). Authorise (`viewer`) → parse the query string → one read → one response mapping.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::api::fleet::{
    AttentionView, FleetInstallationView, FleetLicenseView, Params, attention_query,
    customer_query, customer_view, installation_query, license_query, page_view,
};
use shared::config::AdminAuth;
use shared::domain::DomainError;
use shared::domain::ports::{Clock, FleetIndex, LifecycleIndex, MetricsStore, OperatorDirectory};
use shared::domain::revenue::PriceList;
use shared::http::{self, ApiError};
use shared::service::fleet::attention;

/// What the handler needs.
pub struct Deps<D> {
    /// The bootstrap token's check (operators' tokens are looked up in `store`).
    pub auth: AdminAuth,
    /// The fleet indexes; operator tokens.
    pub store: D,
    /// Time ("expiring within", "silent for", today).
    pub clock: Arc<dyn Clock>,
    /// Prices for the usage report's overage amounts.
    pub prices: PriceList,
}

/// The store this function reads.
pub trait FleetStore: FleetIndex + LifecycleIndex + MetricsStore + OperatorDirectory {}
impl<T: FleetIndex + LifecycleIndex + MetricsStore + OperatorDirectory> FleetStore for T {}

/// Longest metrics history one answer holds, in days (a longer range is cut to its last days).
const MAX_HISTORY_DAYS: i64 = 366;
/// Default metrics history, in days (today included).
const DEFAULT_HISTORY_DAYS: i64 = 30;

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Customers,
    Licenses,
    Installations,
    Attention,
    Metrics,
    History,
    UsageReport,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<D: FleetStore>(deps: &Deps<D>, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<D: FleetStore>(deps: &Deps<D>, req: &Request) -> Result<Response<Body>, ApiError> {
    let matched = http::route(
        req,
        &[
            (http::keys::FLEET_CUSTOMERS, Route::Customers),
            (http::keys::FLEET_LICENSES, Route::Licenses),
            (http::keys::FLEET_INSTALLATIONS, Route::Installations),
            (http::keys::FLEET_ATTENTION, Route::Attention),
            (http::keys::METRICS, Route::Metrics),
            (http::keys::METRICS_HISTORY, Route::History),
            (http::keys::USAGE_REPORT, Route::UsageReport),
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
        Route::Metrics => {
            only(&pairs, &[])?;
            let latest = store
                .latest_snapshot()
                .await
                .map_err(DomainError::from)?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "NO_METRICS_YET",
                        "no daily snapshot yet: the metrics job records one on its schedule; run \
                         it now with `nectar-admin metrics`",
                    )
                })?;
            serde_json::to_value(latest)
        }
        Route::History => {
            only(&pairs, &["from", "to"])?;
            let today = deps.clock.now().date();
            let to = day_param(&params_get(&pairs, "to"), "to")?.unwrap_or(today);
            let span = |days: i64| time::Duration::days(days - 1);
            let earliest = to.checked_sub(span(MAX_HISTORY_DAYS)).unwrap_or(to);
            let from = day_param(&params_get(&pairs, "from"), "from")?
                .unwrap_or_else(|| to.checked_sub(span(DEFAULT_HISTORY_DAYS)).unwrap_or(to))
                // A longer range is cut to the most one answer holds, ending at `to`.
                .max(earliest);
            let (from, to) = (show_day(from), show_day(to));
            let days = store
                .snapshots(&from, &to)
                .await
                .map_err(DomainError::from)?;
            serde_json::to_value(nectar_protocol_history(from, to, days))
        }
        Route::UsageReport => {
            only(&pairs, &["period"])?;
            let raw = params_get(&pairs, "period").ok_or_else(|| {
                ApiError::field(
                    "INVALID_FIELD",
                    "period",
                    "give period, a month such as 2026-07",
                )
            })?;
            let period = shared::api::parse_period(Some(&raw), deps.clock.now())?;
            let rows = shared::service::metrics::usage_report(store, &deps.prices, period).await?;
            let csv = shared::service::metrics::usage_csv(period, &rows, &deps.prices);
            return Ok(csv_response(&format!("nectar-usage-{period}.csv"), csv));
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

fn params_get(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Refuses parameters a route does not take (as the listings do).
fn only(pairs: &[(String, String)], known: &[&str]) -> Result<(), ApiError> {
    match pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some((k, _)) => Err(ApiError::field(
            "INVALID_FIELD",
            "query",
            format!(
                "unknown parameter `{}`; this route takes {}",
                k.chars().take(64).collect::<String>(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        )),
    }
}

/// A `YYYY-MM-DD` parameter.
fn day_param(raw: &Option<String>, field: &'static str) -> Result<Option<time::Date>, ApiError> {
    raw.as_deref()
        .map(|v| {
            time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).map_err(
                |_| ApiError::field("INVALID_FIELD", field, "must be a date such as 2026-07-31"),
            )
        })
        .transpose()
}

fn show_day(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn nectar_protocol_history(
    from: String,
    to: String,
    days: Vec<shared::api::MetricsSnapshot>,
) -> shared::api::MetricsHistory {
    shared::api::MetricsHistory { from, to, days }
}

/// A CSV download: `text/csv`, named, not cached.
fn csv_response(filename: &str, csv: String) -> Response<Body> {
    use lambda_http::http::HeaderValue;
    use lambda_http::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
    let mut response = Response::new(Body::Text(csv));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    response
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
            prices: PriceList::default(),
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
