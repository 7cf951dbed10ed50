//! The console's HTTP plumbing: cookies, form and query pairs, the security headers every answer
//! carries, redirects, and the same-origin rule for state-changing requests.
//!
//! Contracts:
//! - Every page answer carries a strict `Content-Security-Policy` (no inline script or style, no
//!   third-party origin, no framing, forms post only to us), `nosniff`, `Referrer-Policy: same-origin` and
//!   `Cache-Control: no-store` (pages show license data and, once, new keys).
//! - A state-changing request is refused unless the browser says it comes from our own origin:
//!   `Sec-Fetch-Site` (sent by every current browser) must be `same-origin` or `none`, and an
//!   `Origin` header, when sent, must name our host. The CSRF token is checked on top of this.

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

/// The policy of every page: our own scripts, styles and images only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form body read (a change form is well under 4 KiB).
const MAX_FORM: usize = 16 * 1024;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What stands in front of the console, and so which header names the host the browser asked
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// API Gateway: `Host` is the client's; an `X-Forwarded-Host` a client sends is ignored.
    ApiGateway,
    /// The local edge (`nectar-admin front`, `make dev` and `make test`): `Host` names
    /// `cargo lambda watch`, and the edge passes the client's host as `X-Forwarded-Host`
    /// (dropping any the client sent). Chosen by `CONSOLE_LOCAL_EDGE=true`.
    Local,
}

fn requested_host(req: &Request, edge: Edge) -> &str {
    let header = |name| req.headers().get(name).and_then(|h| h.to_str().ok());
    match edge {
        Edge::Local => header("x-forwarded-host").or_else(|| header(HOST.as_str())),
        Edge::ApiGateway => header(HOST.as_str()),
    }
    .unwrap_or_default()
}

/// Whether cookies must be `Secure`: everywhere but on a loopback host (`make dev`, tests),
/// where the console is served over plain HTTP.
pub fn needs_secure_cookies(req: &Request, edge: Edge) -> bool {
    let host = requested_host(req, edge);
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    !matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// A `Set-Cookie` value scoped to the console, `HttpOnly`, `SameSite=Strict`.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The query string's pairs, empty values dropped (an unused filter field of a form).
pub fn query(req: &Request) -> Vec<(String, String)> {
    let params = req.query_string_parameters();
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    pairs.sort();
    pairs
}

/// The urlencoded form body's pairs (API Gateway and `cargo lambda watch` may deliver it as
/// text or as bytes).
pub fn form(req: &Request) -> Option<Vec<(String, String)>> {
    let bytes: &[u8] = match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        Body::Empty => b"",
        _ => return None,
    };
    if bytes.len() > MAX_FORM {
        return None;
    }
    serde_urlencoded::from_bytes(bytes).ok()
}

/// The value of `name` among `pairs`, if given and not empty.
pub fn field<'p>(pairs: &'p [(String, String)], name: &str) -> Option<&'p str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// Whether the browser says the request comes from our own origin (see the module docs).
pub fn same_origin(req: &Request, edge: Edge) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let site_ok = header("sec-fetch-site").is_none_or(|s| s == "same-origin" || s == "none");
    let host = requested_host(req, edge);
    let origin_ok = match header("origin") {
        None => true,
        Some(origin) => {
            !host.is_empty()
                && origin
                    .split_once("://")
                    .is_some_and(|(_, authority)| authority == host)
        }
    };
    site_ok && origin_ok
}

/// A page answer with the security headers.
pub fn html(status: StatusCode, page: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(page));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(headers);
    response
}

/// The headers every console answer carries.
pub fn secure(headers: &mut lambda_http::http::HeaderMap) {
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on our own
    // form posts, which the same-origin rule would refuse.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// `303 See Other` to `location` (a console path), with cookies to set.
pub fn redirect(location: &str, cookies: &[String]) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(SET_COOKIE, v);
        }
    }
    secure(headers);
    response
}

/// `next` if it is a console path of ours (no open redirect), else the console's home.
pub fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && !n.starts_with("//")
                && !n.contains("\\")
                && !n.contains("://") =>
        {
            n.to_owned()
        }
        _ => "/console/licenses".to_owned(),
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_origin(r: &Request) -> bool {
        super::same_origin(r, Edge::Local)
    }

    fn needs_secure_cookies(r: &Request) -> bool {
        super::needs_secure_cookies(r, Edge::Local)
    }

    #[test]
    fn behind_api_gateway_a_client_sent_forwarded_host_counts_for_nothing() {
        let r = req(&[
            ("host", "console.nectar.example"),
            ("x-forwarded-host", "evil.example"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!super::same_origin(&r, Edge::ApiGateway));
        assert!(super::needs_secure_cookies(&r, Edge::ApiGateway));
    }

    fn req(headers: &[(&str, &str)]) -> Request {
        let mut b = lambda_http::http::Request::builder().uri("http://127.0.0.1:9000/console/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::Empty).expect("request")
    }

    #[test]
    fn only_requests_the_browser_marks_as_ours_pass_the_origin_rule() {
        let host = ("host", "127.0.0.1:9000");
        assert!(same_origin(&req(&[host])));
        assert!(same_origin(&req(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(same_origin(&req(&[
            host,
            ("origin", "http://127.0.0.1:9000")
        ])));
        assert!(!same_origin(&req(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&req(&[host, ("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&req(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&req(&[host, ("origin", "null")])));
        // Behind the local edge: the host the browser asked for is the forwarded one.
        let edge = [
            ("host", "127.0.0.1:9001"),
            ("x-forwarded-host", "127.0.0.1:9000"),
        ];
        assert!(same_origin(&req(&[
            edge[0],
            edge[1],
            ("origin", "http://127.0.0.1:9000")
        ])));
        assert!(!same_origin(&req(&[
            edge[0],
            ("origin", "http://127.0.0.1:9000")
        ])));
    }

    #[test]
    fn cookies_are_read_by_exact_name_and_secure_off_loopback_only() {
        let r = req(&[
            ("cookie", "a=1; nectar_session=abc; b=2"),
            ("host", "localhost:9000"),
        ]);
        assert_eq!(cookie(&r, "nectar_session"), Some("abc"));
        assert_eq!(cookie(&r, "nectar"), None);
        assert!(!needs_secure_cookies(&r));
        assert!(needs_secure_cookies(&req(&[(
            "host",
            "console.nectar.example"
        )])));
        let c = set_cookie("s", "v", 60, true);
        assert_eq!(
            c,
            "s=v; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn next_is_followed_only_within_the_console() {
        assert_eq!(local_next(Some("/console/revenue")), "/console/revenue");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/api/revoke",
            "/console/\\evil",
        ] {
            assert_eq!(local_next(Some(bad)), "/console/licenses", "{bad}");
        }
    }
}
