//! What every connection an installation opens must be: HTTPS to anything but this machine, and
//! no redirects — a 3xx is an error, never followed, so the license key in a request body or
//! header is sent only to the URL the operator configured.

use std::net::IpAddr;
use std::time::Duration;

/// Why a base URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute `http(s)://host` URL.
    #[error("`{0}` is not an http(s) URL")]
    Invalid(String),
    /// Plain HTTP to another machine.
    #[error(
        "`{0}` uses plain http to another machine: the license key would travel in clear; use https://"
    )]
    Insecure(String),
}

/// Whether `host` is this machine (`localhost`, `127.0.0.0/8`, `::1`).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks `base_url` and returns it without a trailing `/`: `https://` always, `http://` only to
/// loopback (local development and tests).
pub fn checked_base_url(base_url: &str) -> Result<String, UrlError> {
    let url = reqwest::Url::parse(base_url).map_err(|_| UrlError::Invalid(base_url.into()))?;
    let host = url
        .host_str()
        .ok_or_else(|| UrlError::Invalid(base_url.into()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => return Err(UrlError::Insecure(base_url.into())),
        _ => return Err(UrlError::Invalid(base_url.into())),
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}

/// An HTTP client that follows no redirect and times out.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("nectar-client/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_always_plain_http_only_to_this_machine() {
        for ok in [
            "https://license.nectar.example",
            "https://10.0.0.5:8443/",
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(checked_base_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://license.nectar.example",
            "http://10.0.0.5:9000",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(
                matches!(checked_base_url(insecure), Err(UrlError::Insecure(_))),
                "{insecure}"
            );
        }
        for invalid in [
            "ftp://x",
            "license.nectar.example",
            "",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(checked_base_url(invalid), Err(UrlError::Invalid(_))),
                "{invalid}"
            );
        }
    }
}
