//! [`ReqwestCaller`], the [`HttpCaller`] adapter over reqwest: URL checks (scheme, allow-list,
//! IP literals) before any network access, then the call with no redirects, no proxies, a
//! per-call timeout and the response size cap enforced while streaming. Which addresses count
//! as public is decided in [`super::address`].

use std::error::Error as _;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Url;

use super::address::{NoPublicAddress, PublicOnlyResolver, is_public};
use super::{HttpCaller, HttpError, HttpRequest, HttpResponse, HttpSettings};
use crate::model::Method;

/// [`HttpCaller`] over reqwest (rustls).
///
/// Redirects are not followed — a 3xx is returned to the workflow as is, since following one
/// could leave the allow-list — and system proxy variables are ignored so that the allow-list
/// means what it says. Unless [`HttpSettings::allow_private_networks`] is set, names are
/// resolved by a resolver that keeps only public addresses (see [`super`]).
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::http::HostPattern;

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
