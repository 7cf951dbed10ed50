//! `front`: the local stand-in for API Gateway's HTTP edge, in front of `cargo lambda watch`.
//!
//! `cargo lambda watch` turns an HTTP request into the function's event itself, and it differs
//! from API Gateway in one way a client can see: a body labelled `application/json` or `text/*`
//! that is not UTF-8 makes it answer a bare `500 text/plain` before any function runs. API Gateway
//! instead hands such a body to the function base64-encoded (`isBase64Encoded: true`), and our
//! functions answer `400 MALFORMED_JSON` — the contract says so, and schemathesis checks it.
//!
//! The front forwards every request unchanged (but for `Host`, which names the upstream; the host
//! the client asked for goes on as `X-Forwarded-Host`, which the console's same-origin rule
//! compares `Origin` with, as it compares API Gateway's `Host`) except that one: a non-UTF-8 body goes on as
//! `application/octet-stream`, which `cargo lambda watch` base64-encodes, so the function receives
//! the event API Gateway would give it (the functions parse any body as JSON whatever its
//! `Content-Type`). Nothing here answers for a function: every response is the function's.
//!
//! Written by hand (a reverse proxy is ~100 lines over hyper) because no maintained crate is a
//! plain buffering HTTP/1.1 proxy with a per-request body rule.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, TRANSFER_ENCODING,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// API Gateway's payload limit (10 MB); larger bodies get the 413 API Gateway would give.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1): never forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == CONTENT_LENGTH
        || matches!(
            name.as_str(),
            "keep-alive" | "proxy-connection" | "te" | "trailer" | "upgrade"
        )
}

/// Whether `cargo lambda watch` would read this body as text (its rule: no `Content-Type`,
/// `text/*` or `application/json*`) — and so answer 500 if it is not UTF-8.
fn read_as_text(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|c| c.starts_with("text/") || c.starts_with("application/json"))
}

/// Serves on `listen`, forwarding to `upstream` (base URL of `cargo lambda watch`) until stopped.
pub async fn run(listen: SocketAddr, upstream: String) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let upstream = upstream.trim_end_matches('/').to_owned();
    loop {
        let (stream, _) = listener.accept().await?;
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let client = client.clone();
                let upstream = upstream.clone();
                async move { Ok::<_, Infallible>(forward(&client, &upstream, req).await) }
            });
            // A client that goes away mid-request is not our error.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outbound = client.request(parts.method.clone(), format!("{upstream}{path}"));
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("application/octet-stream"));
    let binary = read_as_text(content_type) && std::str::from_utf8(&body).is_err();
    for (name, value) in &parts.headers {
        if hop_by_hop(name)
            || name == HOST
            || name == "x-forwarded-host"
            || (binary && name == CONTENT_TYPE)
        {
            continue;
        }
        outbound = outbound.header(name, value);
    }
    if let Some(host) = parts.headers.get(HOST) {
        outbound = outbound.header("x-forwarded-host", host);
    }
    if binary {
        outbound = outbound.header(CONTENT_TYPE, "application/octet-stream");
    }
    let answer = match outbound.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("front: upstream unreachable: {e}");
            return plain(StatusCode::BAD_GATEWAY, "Bad Gateway");
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    match answer.bytes().await {
        Ok(bytes) => response
            .body(Full::new(bytes))
            .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "Bad Gateway")),
        Err(_) => plain(StatusCode::BAD_GATEWAY, "Bad Gateway"),
    }
}

/// API Gateway's own answers are JSON `{"message": …}`.
fn plain(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        serde_json::json!({ "message": message }).to_string(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_cargo_lambda_reads_as_text_are_the_ones_checked() {
        assert!(read_as_text(None));
        assert!(read_as_text(Some("application/json")));
        assert!(read_as_text(Some("application/json; charset=utf-8")));
        assert!(read_as_text(Some("text/plain")));
        assert!(!read_as_text(Some("application/octet-stream")));
        assert!(!read_as_text(Some("multipart/form-data")));
    }
}
