//! The license server as the installation sees it: the [`LicenseServer`] port and its HTTP
//! adapter. The wire types are `nectar-protocol`'s, shared with the server (installations must not
//! depend on the server crate, which pulls the AWS SDK).

use std::time::Duration;

use async_trait::async_trait;
use nectar_protocol::codes::{ErrorEnvelope, INVALID_EVENTS, USAGE_QUEUE_UNAVAILABLE};
use serde::{Deserialize, Serialize};

pub use nectar_protocol::codes::Signal;
pub use nectar_protocol::licensing::{
    Gauges, HeartbeatRequest, HeartbeatResponse, HeartbeatTiming, LeaseView, ValidateRequest,
    ValidateResponse,
};
pub use nectar_protocol::usage::{EventStatusView, UsageEvent, UsageRequest};

use crate::token::Jwks;

/// What became of a usage submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageOutcome {
    /// 202, or 503 `USAGE_QUEUE_UNAVAILABLE`: every event's fate (resend the `failed` ones).
    Statuses(Vec<EventStatusView>),
    /// 400 `INVALID_EVENTS`: these event ids can never be accepted (nothing was accepted).
    Invalid(Vec<String>),
}

/// Why a call to the server did not produce an answer we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Not reached, timed out, or the connection broke.
    #[error("license server unreachable: {0}")]
    Unreachable(String),
    /// An error status with the server's code.
    #[error("license server answered {status} {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The server's stable code.
        code: String,
        /// Its message.
        message: String,
        /// `Retry-After` seconds, when given.
        retry_after: Option<u64>,
    },
    /// A body we could not read.
    #[error("license server answer unreadable: {0}")]
    Decode(String),
    /// The server answered with a redirect, which is never followed (the key would go elsewhere).
    #[error(
        "license server answered {0} (a redirect); redirects are not followed — configure the final URL"
    )]
    Redirect(u16),
    /// The configured URL is unusable (e.g. plain http to another machine).
    #[error(transparent)]
    Url(#[from] crate::transport::UrlError),
}

/// The license server's endpoints an installation calls.
#[async_trait]
pub trait LicenseServer: Send + Sync {
    /// `POST /api/heartbeat`.
    async fn heartbeat(&self, req: &HeartbeatRequest) -> Result<HeartbeatResponse, NetError>;
    /// `POST /api/validate`.
    async fn validate(&self, req: &ValidateRequest) -> Result<ValidateResponse, NetError>;
    /// `GET /.well-known/jwks.json`.
    async fn jwks(&self) -> Result<Jwks, NetError>;
    /// `POST /api/usage`.
    async fn usage(&self, req: &UsageRequest) -> Result<UsageOutcome, NetError>;
}

/// The HTTP adapter.
#[derive(Debug, Clone)]
pub struct HttpLicenseServer {
    base: String,
    http: reqwest::Client,
}

impl HttpLicenseServer {
    /// A client for the server at `base_url` (e.g. `https://license.nectar.example`).
    /// `https://` is required unless the server is on this machine; redirects are refused.
    pub fn new(base_url: &str) -> Result<Self, NetError> {
        let base = crate::transport::checked_base_url(base_url)?;
        let http = crate::transport::http_client(Duration::from_secs(20))
            .map_err(|e| NetError::Unreachable(e.to_string()))?;
        Ok(Self { base, http })
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, Option<u64>, Vec<u8>), NetError> {
        let resp = req
            .send()
            .await
            .map_err(|e| NetError::Unreachable(without_url(&e)))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Err(NetError::Redirect(status));
        }
        let retry_after = retry_after_seconds(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| NetError::Unreachable(without_url(&e)))?;
        Ok((status, retry_after, body.to_vec()))
    }

    async fn post_json<B: Serialize + ?Sized, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, NetError> {
        let (status, retry_after, body) = self
            .send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await?;
        if status != 200 {
            return Err(error_of(status, retry_after, &body));
        }
        serde_json::from_slice(&body).map_err(|e| NetError::Decode(e.to_string()))
    }
}

/// reqwest errors print the URL; ours hold no secrets, but keep messages short and stable.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<server>");
    }
    s
}

/// Maps an error answer to [`NetError::Status`] (code from the JSON envelope when present).
pub fn error_of(status: u16, retry_after: Option<u64>, body: &[u8]) -> NetError {
    let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(e) => (e.error.code, e.error.message),
        Err(_) => (format!("HTTP_{status}"), String::new()),
    };
    NetError::Status {
        status,
        code,
        message,
        retry_after,
    }
}

#[async_trait]
impl LicenseServer for HttpLicenseServer {
    async fn heartbeat(&self, req: &HeartbeatRequest) -> Result<HeartbeatResponse, NetError> {
        self.post_json("/api/heartbeat", req).await
    }

    async fn validate(&self, req: &ValidateRequest) -> Result<ValidateResponse, NetError> {
        self.post_json("/api/validate", req).await
    }

    async fn jwks(&self) -> Result<Jwks, NetError> {
        let (status, retry_after, body) = self
            .send(
                self.http
                    .get(format!("{}/.well-known/jwks.json", self.base)),
            )
            .await?;
        if status != 200 {
            return Err(error_of(status, retry_after, &body));
        }
        serde_json::from_slice(&body).map_err(|e| NetError::Decode(e.to_string()))
    }

    async fn usage(&self, req: &UsageRequest) -> Result<UsageOutcome, NetError> {
        let (status, retry_after, body) = self
            .send(self.http.post(format!("{}/api/usage", self.base)).json(req))
            .await?;
        usage_outcome(status, retry_after, &body)
    }
}

/// The part of a usage answer an installation acts on.
#[derive(Deserialize)]
struct UsageAnswer {
    events: Vec<EventStatusView>,
}

/// Interprets a `POST /api/usage` answer: 202 and 503 name every event's fate, 400
/// `INVALID_EVENTS` names the events that can never be accepted, anything else is an error.
pub fn usage_outcome(
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
) -> Result<UsageOutcome, NetError> {
    let decode = |e: serde_json::Error| NetError::Decode(e.to_string());
    match status {
        202 => {
            let answer: UsageAnswer = serde_json::from_slice(body).map_err(decode)?;
            Ok(UsageOutcome::Statuses(answer.events))
        }
        503 | 400 => {
            let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(body) else {
                return Err(error_of(status, retry_after, body));
            };
            let events = env.error.events.as_ref().and_then(|e| e.as_array());
            match (env.error.code.as_str(), events) {
                (USAGE_QUEUE_UNAVAILABLE, Some(events)) => Ok(UsageOutcome::Statuses(
                    events
                        .iter()
                        .filter_map(|e| EventStatusView::deserialize(e).ok())
                        .collect(),
                )),
                (INVALID_EVENTS, Some(events)) => Ok(UsageOutcome::Invalid(
                    events
                        .iter()
                        .filter_map(|e| {
                            nectar_protocol::usage::EventProblemView::deserialize(e)
                                .ok()
                                .and_then(|p| p.event_id)
                        })
                        .collect(),
                )),
                _ => Err(error_of(status, retry_after, body)),
            }
        }
        _ => Err(error_of(status, retry_after, body)),
    }
}

/// `Retry-After` in seconds, when the server sent one (we only ever send seconds).
pub(crate) fn retry_after_seconds(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_requests_omit_empty_signals_and_absent_fields() {
        let req: HeartbeatRequest = HeartbeatRequest {
            license_key: "k".into(),
            installation_id: "i".into(),
            version: "1".into(),
            domain: None,
            gauges: None,
            signals: vec![],
        };
        let json = serde_json::to_value(&req).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"licenseKey": "k", "installationId": "i", "version": "1"})
        );
        let tampered = HeartbeatRequest {
            signals: vec![Signal::ClockTampered.as_str().into()],
            ..req
        };
        assert_eq!(
            serde_json::to_value(&tampered).expect("json")["signals"],
            serde_json::json!(["CLOCK_TAMPERED"])
        );
    }

    #[test]
    fn usage_answers_map_to_per_event_fates() {
        let accepted = br#"{"events":[{"eventId":"a","status":"accepted"},{"eventId":"b","status":"rejected","code":"FEATURE_NOT_ENTITLED"}]}"#;
        assert_eq!(
            usage_outcome(202, None, accepted).expect("202"),
            UsageOutcome::Statuses(vec![
                EventStatusView {
                    event_id: "a".into(),
                    status: "accepted".into(),
                    code: None,
                    detail: None,
                },
                EventStatusView {
                    event_id: "b".into(),
                    status: "rejected".into(),
                    code: Some(nectar_protocol::Code::FeatureNotEntitled),
                    detail: None,
                },
            ])
        );
        let partial = br#"{"error":{"code":"USAGE_QUEUE_UNAVAILABLE","message":"m","events":[{"eventId":"a","status":"failed"}]}}"#;
        assert!(matches!(
            usage_outcome(503, Some(1), partial),
            Ok(UsageOutcome::Statuses(s)) if s[0].status == "failed"
        ));
        let invalid = br#"{"error":{"code":"INVALID_EVENTS","message":"m","events":[{"index":0,"eventId":"x","code":"INVALID_OCCURRED_AT","message":"old"}]}}"#;
        assert_eq!(
            usage_outcome(400, None, invalid).expect("400"),
            UsageOutcome::Invalid(vec!["x".into()])
        );
        let revoked = br#"{"error":{"code":"REVOKED","message":"gone"}}"#;
        assert!(matches!(
            usage_outcome(403, None, revoked),
            Err(NetError::Status { status: 403, ref code, .. }) if code == "REVOKED"
        ));
    }
}
