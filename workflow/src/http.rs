//! The `http` node's port, [`HttpCaller`], and its reqwest implementation with a host
//! allow-list, no redirects, a per-call timeout and a response size cap enforced while reading.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;

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
    /// Refused before connecting: host not allow-listed, plain http, credentials in the URL.
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
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// [`HttpCaller`] over reqwest (rustls).
///
/// Redirects are not followed — a 3xx is returned to the workflow as is, since following one
/// could leave the allow-list — and system proxy variables are ignored so that the allow-list
/// means what it says.
#[derive(Clone, Debug)]
pub struct ReqwestCaller {
    client: reqwest::Client,
    settings: HttpSettings,
}

impl ReqwestCaller {
    /// Builds the client.
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        Ok(Self { client, settings })
    }

    /// Checks a URL against the scheme rule and the allow-list without any network access.
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
    // Without the URL: it may carry tokens in its query.
    HttpError::Transport(e.without_url().to_string())
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
            timeout: Duration::from_secs(5),
            max_response_bytes,
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
