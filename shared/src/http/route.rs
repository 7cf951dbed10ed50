//! Routing by route key: every HTTP function names the routes it serves as API Gateway route keys
//! (`"POST /api/admin/licenses/{licenseId}/suspend"`), the same strings `template.yaml` declares
//! (checked by this module's tests), and dispatches on the key of the request.
//!
//! On AWS the HTTP API puts the matched key in `requestContext.routeKey` and the path parameters,
//! by the names the template gives them, in `pathParameters`. Local routers (`cargo lambda watch`)
//! match paths for any method and deliver neither, so a request without a known route key is
//! matched against the same templates here: one table, the same parameter names, either way.
//! A path this function serves with another method is a 405 naming the allowed ones; anything else
//! is the JSON 404.

use std::borrow::Cow;

use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::ApiError;
use crate::domain::{CustomerId, LicenseId, ParseError};

/// Every route key the HTTP API declares, one constant each. Handlers build their tables from
/// these, and a test holds the set equal to `template.yaml`'s.
pub mod keys {
    /// Validate a license key.
    pub const VALIDATE: &str = "POST /api/validate";
    /// An installation's heartbeat.
    pub const HEARTBEAT: &str = "POST /api/heartbeat";
    /// Public signing keys.
    pub const JWKS: &str = "GET /.well-known/jwks.json";
    /// Liveness.
    pub const HEALTH: &str = "GET /health";
    /// Usage events from an installation.
    pub const USAGE: &str = "POST /api/usage";
    /// Usage statistics, for the license itself.
    pub const USAGE_STATS: &str = "POST /api/usage/stats";
    /// Usage statistics of any license (admin).
    pub const LICENSE_USAGE: &str = "GET /api/admin/licenses/{licenseId}/usage";
    /// Run a workflow.
    pub const WORKFLOW_EXECUTE: &str = "POST /api/workflows/execute";
    /// Read back a recorded execution.
    pub const WORKFLOW_EXECUTION: &str = "GET /api/workflows/executions/{executionId}";
    /// A customer with their licenses (admin).
    pub const CUSTOMER_LICENSES: &str = "GET /api/license/{customerId}";
    /// Revoke a license (admin).
    pub const REVOKE: &str = "POST /api/revoke";
    /// Create a customer (admin).
    pub const CUSTOMER_CREATE: &str = "POST /api/admin/customers";
    /// Issue a license (admin).
    pub const LICENSE_ISSUE: &str = "POST /api/admin/licenses";
    /// Change a license's terms or owner (admin).
    pub const LICENSE_CHANGE: &str = "PATCH /api/admin/licenses/{licenseId}";
    /// Renew a license in place (admin).
    pub const LICENSE_RENEW: &str = "POST /api/admin/licenses/{licenseId}/renew";
    /// Suspend a license (admin).
    pub const LICENSE_SUSPEND: &str = "POST /api/admin/licenses/{licenseId}/suspend";
    /// Reinstate a suspended license (admin).
    pub const LICENSE_REINSTATE: &str = "POST /api/admin/licenses/{licenseId}/reinstate";
    /// A page of a license's audit trail, newest first (admin).
    pub const LICENSE_AUDIT: &str = "GET /api/admin/licenses/{licenseId}/audit";
    /// Issue an offline activation file for one installation (admin).
    pub const LICENSE_ACTIVATE: &str = "POST /api/admin/licenses/{licenseId}/activations";
    pub const INSTALLATION_RELEASE: &str =
        "POST /api/admin/licenses/{licenseId}/installations/{installationId}/release";
    /// Create an operator (admin).
    pub const OPERATOR_CREATE: &str = "POST /api/admin/operators";
    /// List operators (admin).
    pub const OPERATOR_LIST: &str = "GET /api/admin/operators";
    /// Give an operator a new token (admin).
    pub const OPERATOR_ROTATE: &str = "POST /api/admin/operators/{operatorId}/rotate";
    /// Disable an operator (admin).
    pub const OPERATOR_DISABLE: &str = "POST /api/admin/operators/{operatorId}/disable";

    /// Search customers (admin listing).
    pub const FLEET_CUSTOMERS: &str = "GET /api/admin/fleet/customers";
    /// Search licenses (admin listing).
    pub const FLEET_LICENSES: &str = "GET /api/admin/fleet/licenses";
    /// Search installations (admin listing).
    pub const FLEET_INSTALLATIONS: &str = "GET /api/admin/fleet/installations";
    /// What needs an operator's look (admin listing).
    pub const FLEET_ATTENTION: &str = "GET /api/admin/fleet/attention";

    /// The dashboard's latest figures (admin).
    pub const METRICS: &str = "GET /api/admin/metrics";
    /// The dashboard's daily figures over a range of days (admin).
    pub const METRICS_HISTORY: &str = "GET /api/admin/metrics/history";
    /// A month's usage and overage per license, as CSV (admin).
    pub const USAGE_REPORT: &str = "GET /api/admin/reports/usage";

    /// The console: its home (redirects to the licenses).
    pub const CONSOLE_HOME: &str = "GET /console";
    /// The console's sign-in form.
    pub const CONSOLE_SIGN_IN_PAGE: &str = "GET /console/sign-in";
    /// Sign in with an operator token.
    pub const CONSOLE_SIGN_IN: &str = "POST /console/sign-in";
    /// Sign out.
    pub const CONSOLE_SIGN_OUT: &str = "POST /console/sign-out";
    /// The licenses, filtered and paged.
    pub const CONSOLE_LICENSES: &str = "GET /console/licenses";
    /// Issue a license (the form's post).
    pub const CONSOLE_ISSUE: &str = "POST /console/licenses";
    /// The issue form.
    pub const CONSOLE_NEW_LICENSE: &str = "GET /console/licenses/new";
    /// One license, with everything about it.
    pub const CONSOLE_LICENSE: &str = "GET /console/licenses/{licenseId}";
    /// A license action: suspend, reinstate, renew, change, revoke.
    pub const CONSOLE_LICENSE_ACTION: &str = "POST /console/licenses/{licenseId}/{action}";
    /// Release an installation's seat.
    pub const CONSOLE_RELEASE: &str =
        "POST /console/licenses/{licenseId}/installations/{installationId}/release";
    /// Customers by name.
    pub const CONSOLE_CUSTOMERS: &str = "GET /console/customers";
    /// The installation monitor.
    pub const CONSOLE_INSTALLATIONS: &str = "GET /console/installations";
    /// Usage analytics.
    pub const CONSOLE_USAGE: &str = "GET /console/usage";
    /// Revenue.
    pub const CONSOLE_REVENUE: &str = "GET /console/revenue";
    /// The month's usage CSV.
    pub const CONSOLE_USAGE_CSV: &str = "GET /console/reports/usage";
    /// The console's scripts and styles.
    pub const CONSOLE_ASSET: &str = "GET /console/assets/{file}";

    /// All of them, for the template check.
    pub const ALL: &[&str] = &[
        VALIDATE,
        HEARTBEAT,
        JWKS,
        HEALTH,
        USAGE,
        USAGE_STATS,
        LICENSE_USAGE,
        WORKFLOW_EXECUTE,
        WORKFLOW_EXECUTION,
        CUSTOMER_LICENSES,
        REVOKE,
        CUSTOMER_CREATE,
        LICENSE_ISSUE,
        LICENSE_CHANGE,
        LICENSE_RENEW,
        LICENSE_SUSPEND,
        LICENSE_REINSTATE,
        LICENSE_ACTIVATE,
        INSTALLATION_RELEASE,
        LICENSE_AUDIT,
        OPERATOR_CREATE,
        OPERATOR_LIST,
        OPERATOR_ROTATE,
        OPERATOR_DISABLE,
        FLEET_CUSTOMERS,
        FLEET_LICENSES,
        FLEET_INSTALLATIONS,
        FLEET_ATTENTION,
        METRICS,
        METRICS_HISTORY,
        USAGE_REPORT,
        CONSOLE_HOME,
        CONSOLE_SIGN_IN_PAGE,
        CONSOLE_SIGN_IN,
        CONSOLE_SIGN_OUT,
        CONSOLE_LICENSES,
        CONSOLE_ISSUE,
        CONSOLE_NEW_LICENSE,
        CONSOLE_LICENSE,
        CONSOLE_LICENSE_ACTION,
        CONSOLE_RELEASE,
        CONSOLE_CUSTOMERS,
        CONSOLE_INSTALLATIONS,
        CONSOLE_USAGE,
        CONSOLE_REVENUE,
        CONSOLE_USAGE_CSV,
        CONSOLE_ASSET,
    ];
}

/// The route a request matched, with its path parameters by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<R> {
    /// The handler's own name for the route.
    pub route: R,
    /// Its route key (`POST /api/admin/licenses/{licenseId}/suspend`): what the role an admin
    /// route needs is looked up by.
    pub key: &'static str,
    params: Vec<(String, String)>,
}

impl<R> Matched<R> {
    /// The raw value of path parameter `name`, if the route has it.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Path parameter `name` parsed as an id: 400 `INVALID_FIELD` naming the parameter when it
    /// is missing or malformed — one spelling for every route.
    pub fn id<T: PathId>(&self, name: &'static str) -> Result<T, ApiError> {
        T::parse_path(self.param(name).unwrap_or_default())
            .map_err(|e| ApiError::field("INVALID_FIELD", name, e.to_string()))
    }
}

/// Ids that can stand in a path.
pub trait PathId: Sized {
    /// Parses the (already percent-decoded) segment.
    fn parse_path(raw: &str) -> Result<Self, ParseError>;
}

impl PathId for LicenseId {
    fn parse_path(raw: &str) -> Result<Self, ParseError> {
        Self::parse(raw)
    }
}

impl PathId for CustomerId {
    fn parse_path(raw: &str) -> Result<Self, ParseError> {
        Self::parse(raw)
    }
}

impl PathId for crate::domain::InstallationId {
    fn parse_path(raw: &str) -> Result<Self, ParseError> {
        Self::parse(raw)
    }
}

impl PathId for crate::domain::OperatorId {
    fn parse_path(raw: &str) -> Result<Self, ParseError> {
        Self::parse(raw)
    }
}

impl PathId for crate::domain::workflow::ExecutionId {
    fn parse_path(raw: &str) -> Result<Self, ParseError> {
        Self::parse(raw)
    }
}

/// Matches `req` against `routes` (route key → the handler's name for it): by API Gateway's route
/// key when the request carries one of them, else by method and path. 405 `METHOD_NOT_ALLOWED`
/// (with `Allow`) when the path is served with other methods, 404 `ROUTE_NOT_FOUND` otherwise.
pub fn route<R: Copy>(req: &Request, routes: &[(&'static str, R)]) -> Result<Matched<R>, ApiError> {
    let from_gateway = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    };
    if let Some(&(key, route)) = from_gateway.and_then(|k| routes.iter().find(|(key, _)| *key == k))
    {
        let params = req.path_parameters();
        let params = params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        return Ok(Matched { route, key, params });
    }
    match_path(req.method().as_str(), req.uri().path(), routes)
}

fn match_path<R: Copy>(
    method: &str,
    path: &str,
    routes: &[(&'static str, R)],
) -> Result<Matched<R>, ApiError> {
    let mut allowed: Vec<&str> = Vec::new();
    for &(key, route) in routes {
        let Some((key_method, template)) = key.split_once(' ') else {
            continue;
        };
        let Some(params) = match_template(template, path) else {
            continue;
        };
        if key_method == method {
            return Ok(Matched { route, key, params });
        }
        allowed.push(key_method);
    }
    if allowed.is_empty() {
        let method = lambda_http::http::Method::from_bytes(method.as_bytes())
            .unwrap_or(lambda_http::http::Method::GET);
        return Err(ApiError::route_not_found(&method, path));
    }
    allowed.dedup();
    let mut error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("use {}", allowed.join(" or ")),
    );
    error.extra.get_or_insert_with(Default::default).allow = Some(allowed.join(", "));
    Err(error)
}

/// The parameters of `path` under `template` (`/a/{x}/b`), or `None` when it does not match. A
/// trailing slash is ignored, as API Gateway does; parameters are percent-decoded, as API
/// Gateway's `pathParameters` are.
fn match_template(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut want = template.trim_end_matches('/').split('/');
    let mut got = path.trim_end_matches('/').split('/');
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name.to_owned(), decode(g).into_owned()));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

fn decode(segment: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum R {
        Suspend,
        Reinstate,
        Stats,
    }

    const ROUTES: &[(&str, R)] = &[
        (keys::LICENSE_SUSPEND, R::Suspend),
        (keys::LICENSE_REINSTATE, R::Reinstate),
        (keys::LICENSE_USAGE, R::Stats),
    ];

    fn local(method: &str, path: &str) -> Request {
        lambda_http::http::Request::builder()
            .method(method)
            .uri(format!("http://127.0.0.1:9000{path}"))
            .body(lambda_http::Body::Empty)
            .expect("request")
    }

    #[test]
    fn a_local_request_matches_by_method_and_path_and_names_its_parameters() {
        let m = route(
            &local("POST", "/api/admin/licenses/LIC-1/reinstate/"),
            ROUTES,
        )
        .expect("matched");
        assert_eq!(m.route, R::Reinstate);
        assert_eq!(m.param("licenseId"), Some("LIC-1"));
        assert_eq!(m.param("action"), None);
    }

    #[test]
    fn parameters_are_percent_decoded_like_api_gateway_does() {
        let m = route(&local("GET", "/api/admin/licenses/a%20b/usage"), ROUTES).expect("ok");
        assert_eq!(m.param("licenseId"), Some("a b"));
    }

    #[test]
    fn a_served_path_with_another_method_is_a_405_naming_the_method() {
        let e = route(&local("GET", "/api/admin/licenses/LIC-1/suspend"), ROUTES).expect_err("405");
        assert_eq!(
            (e.status, e.code),
            (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED")
        );
        assert_eq!(e.message, "use POST");
        assert_eq!(e.into_response().headers()["allow"], "POST");
    }

    #[test]
    fn an_unserved_path_is_the_json_404() {
        for path in [
            "/api/admin/licenses/LIC-1/explode",
            "/api/admin/licenses//suspend",
            "/api/admin/licenses/LIC-1/suspend/more",
        ] {
            let e = route(&local("POST", path), ROUTES).expect_err(path);
            assert_eq!(
                (e.status, e.code),
                (StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND"),
                "{path}"
            );
        }
    }

    #[test]
    fn a_malformed_id_is_a_400_naming_the_parameter() {
        let m = route(&local("POST", "/api/admin/licenses/bogus/suspend"), ROUTES).expect("ok");
        let e = m.id::<LicenseId>("licenseId").expect_err("malformed");
        assert_eq!(
            (e.status, e.code, e.field.as_deref()),
            (StatusCode::BAD_REQUEST, "INVALID_FIELD", Some("licenseId"))
        );
    }

    /// The route keys the code serves are exactly the ones `template.yaml` declares (same
    /// methods, same paths, same parameter names), and the local router serves every path.
    #[test]
    fn route_keys_match_the_template_and_the_local_router() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let template =
            std::fs::read_to_string(format!("{root}/template.yaml")).expect("template.yaml");
        let mut declared = Vec::new();
        let mut path: Option<String> = None;
        for line in template.lines().map(str::trim) {
            if let Some(p) = line.strip_prefix("Path: ") {
                path = Some(p.to_owned());
            } else if let (Some(m), Some(p)) = (line.strip_prefix("Method: "), path.take()) {
                declared.push(format!("{} {p}", m.to_uppercase()));
            }
        }
        declared.sort();
        let mut served: Vec<String> = keys::ALL.iter().map(|k| (*k).to_owned()).collect();
        served.sort();
        assert_eq!(served, declared, "route keys in code vs template.yaml");
        // Every throttled route (HttpApi RouteSettings) is a route that exists: a typo would
        // throttle nothing, or fail the deployment.
        for line in template.lines().map(str::trim) {
            if let Some(key) = line
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix("\":"))
                .filter(|k| {
                    ["GET /", "POST /", "PATCH /"]
                        .iter()
                        .any(|m| k.starts_with(m))
                })
            {
                assert!(
                    served.iter().any(|r| r == key),
                    "RouteSettings names {key}, which is not a route"
                );
            }
        }

        let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).expect("Cargo.toml");
        for key in keys::ALL {
            let (_, path) = key.split_once(' ').expect("method and path");
            assert!(
                manifest.contains(&format!("\"{path}\" = ")),
                "the local router in Cargo.toml does not serve {path}"
            );
        }
    }
}
