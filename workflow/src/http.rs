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

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::model::Method;

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

/// [`HttpCaller`] over reqwest (rustls).
///
/// Redirects are not followed — a 3xx is returned to the workflow as is, since following one
/// could leave the allow-list — and system proxy variables are ignored so that the allow-list
/// means what it says. Unless [`HttpSettings::allow_private_networks`] is set, names are
/// resolved by a resolver that keeps only public addresses (see the module docs).
#[derive(Clone, Debug)]
pub struct ReqwestCaller {
    client: reqwest::Client,
    settings: HttpSettings,
}

impl ReqwestCaller {
    /// Builds the client.
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout);
        if !settings.allow_private_networks {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        Ok(Self { client, settings })
    }

    /// Checks a URL against the scheme rule, the allow-list and, for an IP-literal host, the
    /// public-address rule, without any network access. Names are checked at connection time.
    pub fn check_url(&self, url: &str) -> Result<Url, HttpError> {
        let parsed = Url::parse(url).map_err(|e| HttpError::InvalidUrl(format!("{url}: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.settings.allow_plain_http => {}
            "http" => {
                return Err(HttpError::NotAllowed(
                    "plain http is not allowed; use https".into(),
                ));
            }
            other => {
                return Err(HttpError::InvalidUrl(format!(
                    "unsupported scheme `{other}`"
                )));
            }
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(HttpError::NotAllowed(
                "credentials in the URL are not allowed; use a header".into(),
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| HttpError::InvalidUrl(format!("{url}: no host")))?;
        if !self.settings.allowed_hosts.iter().any(|p| p.matches(host)) {
            return Err(HttpError::NotAllowed(format!(
                "host `{host}` is not in the allow-list"
            )));
        }
        // reqwest connects to IP literals directly, without asking the resolver, so they are
        // checked here. The URL parser has already normalised them (`http://2130706433/` is
        // `127.0.0.1`); IPv6 literals keep their brackets.
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<IpAddr>()
            .ok();
        if let Some(ip) = literal
            && !self.settings.allow_private_networks
            && !is_public(ip)
        {
            return Err(HttpError::NotAllowed(format!(
                "address `{ip}` is not publicly routable; private and internal networks are not allowed"
            )));
        }
        Ok(parsed)
    }

    async fn send(&self, url: Url, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = builder.send().await.map_err(transport)?;
        let limit = self.settings.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(HttpError::TooLarge { limit });
        }
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
                Some((_, existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                None => headers.push((name.as_str().to_owned(), value)),
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(HttpError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn transport(e: reqwest::Error) -> HttpError {
    // The resolver's refusal reaches us wrapped in reqwest's and hyper's connect errors; it is
    // a policy decision, not a network failure, so it must surface as `NotAllowed`.
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<NoPublicAddress>() {
            return HttpError::NotAllowed(refused.to_string());
        }
        source = cause.source();
    }
    // Without the URL: it may carry tokens in its query.
    HttpError::Transport(e.without_url().to_string())
}

/// Whether `ip` is publicly routable, i.e. a destination the `http` node may connect to when
/// [`HttpSettings::allow_private_networks`] is off.
///
/// Hand-written because `IpAddr::is_global` is still unstable (rust-lang/rust#27709). It
/// errs on the side of refusing: a few special-use addresses IANA lists as globally
/// reachable (e.g. the `192.0.0.9` PCP anycast) are refused too, which no real integration
/// needs, while IPv6 is accepted only inside the global unicast block `2000::/3`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // 0.0.0.0/8 "this network"
        || a == 10 // 10/8 private
        || a == 100 && b & 0xc0 == 64 // 100.64/10 carrier-grade NAT
        || a == 127 // 127/8 loopback
        || a == 169 && b == 254 // 169.254/16 link-local, cloud metadata
        || a == 172 && b & 0xf0 == 16 // 172.16/12 private
        || a == 192 && b == 0 && c == 0 // 192.0.0/24 IETF protocol assignments
        || a == 192 && b == 0 && c == 2 // 192.0.2/24 TEST-NET-1
        || a == 192 && b == 88 && c == 99 // 192.88.99/24 deprecated 6to4 relay anycast
        || a == 192 && b == 168 // 192.168/16 private
        || a == 198 && b & 0xfe == 18 // 198.18/15 benchmarking
        || a == 198 && b == 51 && c == 100 // 198.51.100/24 TEST-NET-2
        || a == 203 && b == 0 && c == 113 // 203.0.113/24 TEST-NET-3
        || a >= 224; // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // Addresses that carry an IPv4 address are as reachable as that address: a NAT64 gateway
    // or 6to4 relay would forward the connection to it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4); // ::ffff:0:0/96
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded(hi, lo)), // NAT64
        [0x2002, hi, lo, ..] => is_public_v4(embedded(hi, lo)),               // 6to4
        _ => {
            // Accept only the global unicast block rather than list every other special
            // range: this refuses ::, ::1, IPv4-compatible ::a.b.c.d, fc00::/7, fe80::/10,
            // fec0::/10, ff00::/8, 100::/64 and the local-use NAT64 64:ff9b:1::/48 at once.
            let global_unicast = s[0] & 0xe000 == 0x2000;
            let ietf_protocol = s[0] == 0x2001 && s[1] < 0x0200; // 2001::/23, incl. Teredo
            // 2001:db8::/32 and 3fff::/20.
            let documentation = s[0] == 0x2001 && s[1] == 0x0db8 || s[0] == 0x3fff && s[1] < 0x1000;
            global_unicast && !ietf_protocol && !documentation
        }
    }
}

/// Raised by [`PublicOnlyResolver`] when a name has no public address; recognised in
/// [`transport`] to report a refusal rather than a transport failure.
#[derive(Debug, thiserror::Error)]
#[error(
    "host `{0}` has no publicly routable address; private and internal networks are not allowed"
)]
struct NoPublicAddress(String);

/// A DNS resolver keeping only public addresses ([`is_public`]).
///
/// The connection is made to exactly what this returns, so the check cannot be raced by a
/// second, different DNS answer. The resolved addresses are not named in the error: they
/// would tell a workflow author about the internal network.
#[derive(Debug)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port (or the scheme's default).
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(NoPublicAddress(host).into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[async_trait]
impl HttpCaller for ReqwestCaller {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = self.check_url(&request.url)?;
        let timeout = request.timeout.min(self.settings.timeout);
        tokio::time::timeout(timeout, self.send(url, request))
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-route HTTP/1.1 server on 127.0.0.1:0 answering every connection with `reply`
    /// after `delay`; counts accepted connections.
    async fn server(reply: Vec<u8>, delay: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = socket.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let _ = socket.write_all(&reply).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (format!("http://127.0.0.1:{port}"), accepted)
    }

    fn ok(body: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes()
    }

    fn caller(hosts: &[&str], max_response_bytes: usize) -> ReqwestCaller {
        ReqwestCaller::new(HttpSettings {
            allowed_hosts: hosts
                .iter()
                .map(|h| HostPattern::parse(h).expect("pattern"))
                .collect(),
            allow_plain_http: true,
            // The test server listens on loopback.
            allow_private_networks: true,
            timeout: Duration::from_secs(5),
            max_response_bytes,
        })
        .expect("client")
    }

    /// Like [`caller`], with plain http but private networks refused (the default).
    fn public_only(hosts: &[&str]) -> ReqwestCaller {
        ReqwestCaller::new(HttpSettings {
            allowed_hosts: hosts
                .iter()
                .map(|h| HostPattern::parse(h).expect("pattern"))
                .collect(),
            allow_plain_http: true,
            ..HttpSettings::default()
        })
        .expect("client")
    }

    fn get(url: String, timeout: Duration) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url,
            headers: vec![("x-trace".into(), "1".into())],
            body: None,
            timeout,
        }
    }

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

    #[test]
    fn only_publicly_routable_addresses_count_as_public() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",  // just below CGNAT
            "100.128.0.0",     // just above CGNAT
            "172.15.255.255",  // just below 172.16/12
            "172.32.0.0",      // just above 172.16/12
            "192.169.0.1",     // just above 192.168/16
            "198.20.0.1",      // just above 198.18/15
            "223.255.255.255", // last unicast before multicast
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",   // IPv4-mapped public
            "64:ff9b::808:808", // NAT64 of 8.8.8.8
            "2002:808:808::1",  // 6to4 of 8.8.8.8
            "2001:4860:4860::8888",
        ];
        let private = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254", // cloud metadata
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1", // deprecated IPv4-compatible
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "64:ff9b::a00:1",     // NAT64 of 10.0.0.1
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b:1::808:808", // local-use NAT64
            "2002:a00:1::1",      // 6to4 of 10.0.0.1
            "2001:db8::1",
            "2001:0:4136:e378::1", // Teredo
            "3fff::1",
            "100::1",
        ];
        for ip in public {
            assert!(is_public(ip.parse().expect("ip")), "{ip} should be public");
        }
        for ip in private {
            assert!(
                !is_public(ip.parse().expect("ip")),
                "{ip} should not be public"
            );
        }
    }

    #[tokio::test]
    async fn the_resolver_passes_public_addresses_through_and_refuses_private_only_names() {
        // Numeric names need no DNS server, which keeps this test offline.
        let resolve =
            |host: &str| PublicOnlyResolver.resolve(host.parse::<Name>().expect("a valid name"));
        let addrs: Vec<SocketAddr> = resolve("8.8.8.8").await.expect("public").collect();
        assert_eq!(addrs, vec!["8.8.8.8:0".parse().expect("addr")]);
        let err = resolve("10.0.0.1").await.err().expect("private");
        assert_eq!(
            err.to_string(),
            "host `10.0.0.1` has no publicly routable address; private and internal networks are not allowed"
        );
    }

    #[test]
    fn the_metadata_ip_literal_is_refused_even_when_allow_listed() {
        let err = public_only(&["169.254.169.254"])
            .check_url("https://169.254.169.254/latest/meta-data")
            .expect_err("refused");
        assert_eq!(
            err,
            HttpError::NotAllowed(
                "address `169.254.169.254` is not publicly routable; private and internal networks are not allowed".into()
            )
        );
    }

    #[test]
    fn ip_literals_are_checked_in_their_normalised_form() {
        let caller = public_only(&["127.0.0.1", "[::1]", "[::ffff:7f00:1]", "[64:ff9b::a00:1]"]);
        for url in [
            "http://2130706433/", // decimal 127.0.0.1
            "http://0x7f.1/",     // hex 127.0.0.1
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::10.0.0.1]/",
        ] {
            let err = caller.check_url(url).expect_err(url);
            assert!(matches!(err, HttpError::NotAllowed(_)), "{url}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_loopback_literal_is_refused_without_connecting_unless_private_networks_are_allowed()
    {
        let (base, accepted) = server(ok("{}"), Duration::ZERO).await;
        let err = public_only(&["127.0.0.1"])
            .call(get(format!("{base}/x"), Duration::from_secs(5)))
            .await
            .expect_err("refused");
        assert_eq!(
            err,
            HttpError::NotAllowed(
                "address `127.0.0.1` is not publicly routable; private and internal networks are not allowed".into()
            )
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 0);

        let response = caller(&["127.0.0.1"], 1024)
            .call(get(format!("{base}/x"), Duration::from_secs(5)))
            .await
            .expect("allowed");
        assert_eq!(response.status, 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_allow_listed_name_resolving_to_loopback_is_refused_without_connecting() {
        let (base, accepted) = server(ok("{}"), Duration::ZERO).await;
        let url = base.replace("127.0.0.1", "localhost");
        let err = public_only(&["localhost"])
            .call(get(format!("{url}/x"), Duration::from_secs(5)))
            .await
            .expect_err("refused");
        assert_eq!(
            err,
            HttpError::NotAllowed(
                "host `localhost` has no publicly routable address; private and internal networks are not allowed".into()
            )
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        // The same name is reached once private networks are allowed: the refusal above came
        // from the address rule, not from a broken lookup.
        let response = caller(&["localhost"], 1024)
            .call(get(format!("{url}/x"), Duration::from_secs(5)))
            .await
            .expect("allowed");
        assert_eq!(response.status, 200);
    }

    #[tokio::test]
    async fn an_allow_listed_host_is_called_and_its_response_returned() {
        let (base, accepted) = server(ok(r#"{"n":1}"#), Duration::ZERO).await;
        let response = caller(&["127.0.0.1"], 1024)
            .call(get(format!("{base}/x"), Duration::from_secs(5)))
            .await
            .expect("answered");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, br#"{"n":1}"#);
        assert!(
            response
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_host_outside_the_allow_list_is_refused_without_connecting() {
        let (base, accepted) = server(ok("{}"), Duration::ZERO).await;
        let err = caller(&["api.example.com"], 1024)
            .call(get(format!("{base}/x"), Duration::from_secs(5)))
            .await
            .expect_err("refused");
        assert_eq!(
            err,
            HttpError::NotAllowed("host `127.0.0.1` is not in the allow-list".into())
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_enabled() {
        let strict = ReqwestCaller::new(HttpSettings {
            allowed_hosts: vec![HostPattern::parse("127.0.0.1").expect("pattern")],
            ..HttpSettings::default()
        })
        .expect("client");
        let err = strict.check_url("http://127.0.0.1/").expect_err("refused");
        assert_eq!(
            err,
            HttpError::NotAllowed("plain http is not allowed; use https".into())
        );
    }

    #[tokio::test]
    async fn a_slow_server_hits_the_timeout() {
        let (base, _) = server(ok("{}"), Duration::from_secs(5)).await;
        let started = std::time::Instant::now();
        let err = caller(&["127.0.0.1"], 1024)
            .call(get(base, Duration::from_millis(200)))
            .await
            .expect_err("times out");
        assert_eq!(err, HttpError::Timeout(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_oversized_body_is_cut_while_streaming() {
        // No content-length: the cap must be enforced on the chunks as they arrive.
        let mut reply =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
        for _ in 0..64 {
            reply.extend_from_slice(format!("400\r\n{}\r\n", "x".repeat(1024)).as_bytes());
        }
        reply.extend_from_slice(b"0\r\n\r\n");
        let (base, _) = server(reply, Duration::ZERO).await;
        let err = caller(&["127.0.0.1"], 10_000)
            .call(get(base.clone(), Duration::from_secs(5)))
            .await
            .expect_err("too large");
        assert_eq!(err, HttpError::TooLarge { limit: 10_000 });
        assert_eq!(err.to_string(), "the response body exceeds 10000 bytes");
        // A declared length over the cap is refused before reading the body.
        let (declared, _) = server(ok(&"y".repeat(20_000)), Duration::ZERO).await;
        let err = caller(&["127.0.0.1"], 10_000)
            .call(get(declared, Duration::from_secs(5)))
            .await
            .expect_err("too large");
        assert_eq!(err, HttpError::TooLarge { limit: 10_000 });
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let reply = b"HTTP/1.1 302 Found\r\nlocation: https://elsewhere.example/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec();
        let (base, accepted) = server(reply, Duration::ZERO).await;
        let response = caller(&["127.0.0.1"], 1024)
            .call(get(base, Duration::from_secs(5)))
            .await
            .expect("answered");
        assert_eq!(response.status, 302);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
