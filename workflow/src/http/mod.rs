//! The `http` node's port, [`HttpCaller`], and its reqwest implementation with a host
//! allow-list, no redirects, a per-call timeout and a response size cap enforced while reading.
//!
//! # Destinations (SSRF)
//!
//! Workflow authors choose URLs, so [`ReqwestCaller`] must not become a way into the network
//! it runs in. A call goes out only if all of these hold:
//!
//! - the URL host matches [`HttpSettings::allowed_hosts`] (checked on the name, before any
//!   network access);
//! - unless [`HttpSettings::allow_private_networks`] is set, every address connected to is
//!   publicly routable ([`is_public`]): loopback, private, link-local (cloud metadata at
//!   `169.254.169.254`), CGNAT, multicast, documentation, benchmarking and other special-use
//!   ranges, IPv4 and IPv6, are refused. IP-literal hosts are checked in
//!   [`ReqwestCaller::check_url`]; names are checked in the client's DNS resolver, which drops
//!   non-public answers and fails when none remain. Because the client connects only to the
//!   addresses that resolver returned, a name re-pointed between the check and the connection
//!   (DNS rebinding) gains nothing, and an allow-listed wildcard cannot reach internal hosts;
//! - redirects are never followed and proxies are never used, so the checked destination is
//!   the one reached.
//!
//! Every refusal is [`HttpError::NotAllowed`], which the engine reports as `HTTP_REFUSED`.
//!
//! The port and its settings live here; [`ReqwestCaller`] is in `caller.rs` and the
//! public-address rule with its resolver in `address.rs`, so the SSRF rule can be read and
//! tested apart from the HTTP plumbing.

use std::time::Duration;

use async_trait::async_trait;

use crate::model::Method;

mod address;
mod caller;

pub use address::is_public;
pub use caller::ReqwestCaller;

/// One outbound call, fully rendered by the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Header names (lowercase) and values, in the node's order.
    pub headers: Vec<(String, String)>,
    /// JSON body, already serialized; sent with `content-type: application/json`.
    pub body: Option<Vec<u8>>,
    /// What is left of the node's time budget; the caller should not wait longer.
    pub timeout: Duration,
}

/// A received response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values; repeated headers are joined with `, `.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

/// Why a call produced no response. Messages are safe to show to the workflow author.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Refused before connecting: host not allow-listed, plain http, credentials in the URL,
    /// or a destination address that is not publicly routable.
    #[error("refused: {0}")]
    NotAllowed(String),
    /// The URL does not parse or is not absolute http(s).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// No complete response within the timeout.
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
    /// The response body exceeds the cap; reading stopped there.
    #[error("the response body exceeds {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Connection, TLS or protocol failure.
    #[error("transport error: {0}")]
    Transport(String),
    /// This deployment makes no outbound calls.
    #[error("outbound HTTP calls are disabled")]
    Disabled,
}

/// Port of the `http` node.
///
/// Taken as `&dyn HttpCaller` by [`crate::Env`], hence `async_trait` (a boxed, `Send` future)
/// rather than a native async fn, which would not be object safe. Implementations enforce
/// their own safety rules (allow-list, size cap); the engine additionally drops the future at
/// the node timeout or the run deadline, whichever is first.
#[async_trait]
pub trait HttpCaller: Send + Sync {
    /// Performs the call.
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// An [`HttpCaller`] refusing every call, for deployments or tests without integrations.
#[derive(Clone, Copy, Debug, Default)]
pub struct DisabledHttp;

#[async_trait]
impl HttpCaller for DisabledHttp {
    async fn call(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Disabled)
    }
}

/// A host pattern: `api.example.com` (exactly that host) or `*.example.com` (any subdomain,
/// not `example.com` itself). Case-insensitive; any port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    /// Parses a pattern; `*` is only accepted as a whole leading label.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let p = pattern.trim().to_ascii_lowercase();
        let host = p.strip_prefix("*.").unwrap_or(&p);
        if host.is_empty()
            || host.contains('*')
            || host.contains('/')
            || host.contains(':') && !host.starts_with('[')
        {
            return Err(format!("`{pattern}` is not a host or `*.suffix` pattern"));
        }
        Ok(Self(p))
    }

    /// Whether `host` (as in a URL, lowercase) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self.0.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            None => self.0 == host,
        }
    }
}

/// Settings of [`ReqwestCaller`].
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Hosts calls may go to; everything else is refused before connecting.
    pub allowed_hosts: Vec<HostPattern>,
    /// Accept `http://` URLs (local development and tests only); otherwise `https` is required.
    pub allow_plain_http: bool,
    /// Let calls reach addresses that are not publicly routable (see [`is_public`]): loopback,
    /// private ranges, link-local and cloud metadata, and so on. Default `false`; set it only
    /// for local development and tests, since with it an allow-listed name that resolves
    /// inward becomes a path into the deployment's own network.
    pub allow_private_networks: bool,
    /// Upper bound of one call, whatever the request asks.
    pub timeout: Duration,
    /// Most response body bytes read; a longer body fails the call with [`HttpError::TooLarge`].
    pub max_response_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allow_plain_http: false,
            allow_private_networks: false,
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_match_exact_hosts_and_strict_subdomains() {
        let exact = HostPattern::parse("API.example.com").expect("pattern");
        let wild = HostPattern::parse("*.example.com").expect("pattern");
        assert!(exact.matches("api.example.com"));
        assert!(!exact.matches("xapi.example.com"));
        assert!(wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        assert!(HostPattern::parse("a.*.com").is_err());
    }

    #[test]
    fn private_networks_are_disallowed_by_default() {
        assert!(!HttpSettings::default().allow_private_networks);
    }
}
