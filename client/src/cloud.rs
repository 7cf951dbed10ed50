//! The Cloud API as an installation calls it: workflow execution authorised by the license key,
//! with license and quota refusals mapped to typed errors.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nectar_protocol::codes::ErrorEnvelope;
use nectar_protocol::workflows::ExecuteRequest;
use serde::{Deserialize, Serialize};

/// Why a Cloud API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// 403: the license is revoked, suspended, expired, invalid, or lacks the feature.
    #[error("License expired or invalid ({code}): {message}")]
    License {
        /// `REVOKED`, `SUSPENDED`, `EXPIRED`, `INVALID_KEY`, `FEATURE_NOT_ENTITLED`, …
        code: String,
        /// The server's message.
        message: String,
    },
    /// 429: the monthly quota is used up (`USAGE_EXCEEDED`) or calls are too frequent
    /// (`RATE_LIMITED`).
    #[error("Usage limit exceeded ({code}){}", retry_after.map(|s| format!("; retry after {s} s")).unwrap_or_default())]
    UsageLimit {
        /// `USAGE_EXCEEDED` or `RATE_LIMITED`.
        code: String,
        /// The server's message.
        message: String,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// Any other error answer.
    #[error("Cloud API answered {status} ({code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's code.
        code: String,
        /// Its message.
        message: String,
    },
    /// Not reached.
    #[error("Cloud API unreachable: {0}")]
    Unreachable(String),
    /// A success answer we could not read.
    #[error("Cloud API answer unreadable: {0}")]
    Decode(String),
    /// The configured URL is unusable (e.g. plain http to another machine).
    #[error(transparent)]
    Url(#[from] crate::transport::UrlError),
}

/// A finished execution: the part of the server's answer an installation reads. The run itself
/// (`status`, `output`, `steps`) is the workflow engine's shape, passed through as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Execution id.
    pub execution_id: String,
    /// Final status.
    pub status: String,
    /// The workflow's output.
    #[serde(default)]
    pub output: serde_json::Value,
    /// Per-step results.
    #[serde(default)]
    pub steps: serde_json::Value,
    /// Usage counted for the execution.
    #[serde(default)]
    pub usage: serde_json::Value,
}

/// The Cloud API client. `Debug` hides the key.
pub struct CloudClient {
    base: String,
    license_key: String,
    http: reqwest::Client,
    calls: AtomicU64,
}

impl fmt::Debug for CloudClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudClient")
            .field("base", &self.base)
            .field("license_key", &"<redacted>")
            .finish()
    }
}

impl CloudClient {
    /// A client for the Cloud API at `base_url`, authorising with `license_key`.
    pub fn new(base_url: &str, license_key: impl Into<String>) -> Result<Self, CloudError> {
        // https:// unless on this machine; redirects (a 3xx) come back as errors, never followed.
        let base = crate::transport::checked_base_url(base_url)?;
        let http = crate::transport::http_client(Duration::from_secs(120))
            .map_err(|e| CloudError::Unreachable(e.to_string()))?;
        Ok(Self {
            base,
            license_key: license_key.into(),
            http,
            calls: AtomicU64::new(0),
        })
    }

    /// Calls made so far.
    pub fn network_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// `POST /api/workflows/execute`.
    pub async fn execute_workflow(
        &self,
        workflow_id: &str,
        workflow: &serde_json::Value,
        data: &serde_json::Value,
    ) -> Result<Execution, CloudError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .post(format!("{}/api/workflows/execute", self.base))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("License {}", self.license_key),
            )
            .json(&ExecuteRequest {
                workflow_id: workflow_id.to_owned(),
                workflow: Some(workflow.clone()),
                nodes: None,
                start: None,
                data: data.clone(),
            })
            .send()
            .await
            .map_err(|e| CloudError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let retry_after = crate::server::retry_after_seconds(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| CloudError::Unreachable(e.without_url().to_string()))?;
        map_execution(status, retry_after, &body)
    }
}

/// Maps a `POST /api/workflows/execute` answer: 200 → the execution, 403 → [`CloudError::License`],
/// 429 → [`CloudError::UsageLimit`], anything else → [`CloudError::Api`].
pub fn map_execution(
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
) -> Result<Execution, CloudError> {
    if status == 200 {
        return serde_json::from_slice(body).map_err(|e| CloudError::Decode(e.to_string()));
    }
    let (code, message) = serde_json::from_slice::<ErrorEnvelope>(body)
        .map(|e| (e.error.code, e.error.message))
        .unwrap_or_else(|_| (format!("HTTP_{status}"), String::new()));
    Err(match status {
        403 => CloudError::License { code, message },
        429 => CloudError::UsageLimit {
            code,
            message,
            retry_after,
        },
        _ => CloudError::Api {
            status,
            code,
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_is_license_expired_or_invalid_with_the_server_code() {
        let err = map_execution(
            403,
            None,
            br#"{"error":{"code":"REVOKED","message":"the license was revoked"}}"#,
        )
        .expect_err("403");
        assert_eq!(
            err,
            CloudError::License {
                code: "REVOKED".into(),
                message: "the license was revoked".into()
            }
        );
        assert!(err.to_string().starts_with("License expired or invalid"));
    }

    #[test]
    fn a_429_is_usage_limit_exceeded_with_retry_after() {
        for code in ["USAGE_EXCEEDED", "RATE_LIMITED"] {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            let err = map_execution(429, Some(30), body.as_bytes()).expect_err("429");
            assert_eq!(
                err.to_string(),
                format!("Usage limit exceeded ({code}); retry after 30 s")
            );
        }
    }

    #[test]
    fn a_200_yields_the_execution_and_other_errors_keep_their_status() {
        let ok = br#"{"executionId":"x1","status":"succeeded","output":{"n":1},"steps":[],"usage":{"workflows":1}}"#;
        let exec = map_execution(200, None, ok).expect("200");
        assert_eq!(exec.execution_id, "x1");
        assert_eq!(exec.output["n"], 1);
        assert!(matches!(
            map_execution(500, None, b"oops"),
            Err(CloudError::Api { status: 500, ref code, .. }) if code == "HTTP_500"
        ));
    }
}
