//! HTTP edge shared by every function: JSON body parsing with precise 400s, admin authentication
//! and roles ([`access`]), and the one mapping from domain errors to responses. 4xx bodies carry
//! stable codes; 5xx bodies are opaque and their cause chain goes to the log only.

use lambda_http::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use nectar_protocol::codes::{ErrorBody, ErrorEnvelope};

pub mod access;
pub mod route;

use crate::domain::{DomainError, StoreError};
pub use access::authorize;
pub use route::{Matched, PathId, keys, route};

/// Longest audit cursor accepted (ours are far shorter).
const MAX_AUDIT_CURSOR: usize = 200;

/// The error of an audit cursor we could not have handed out.
fn bad_audit_cursor() -> ApiError {
    ApiError::field(
        "INVALID_FIELD",
        "before",
        "before must be the `next` cursor of an earlier page",
    )
}

/// An audit trail's `before` cursor as a request gave it: an audit sort key (`AUDIT#…`, printable
/// ASCII, at most 200 bytes — the spec's pattern) or a 400 naming `before`. Used by every route
/// and page that pages an audit trail.
pub fn audit_before(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    match raw {
        Some(b)
            if b.len() > MAX_AUDIT_CURSOR
                || !b
                    .strip_prefix("AUDIT#")
                    .is_some_and(|rest| rest.bytes().all(|c| c.is_ascii_graphic())) =>
        {
            Err(bad_audit_cursor())
        }
        other => Ok(other),
    }
}

/// A store error of an audit page: a cursor the store does not know is the same 400.
pub fn audit_page_error(e: StoreError) -> ApiError {
    match e {
        StoreError::InvalidCursor => bad_audit_cursor(),
        other => DomainError::from(other).into(),
    }
}

/// Largest request body we parse.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An error answer: status, stable code, message, and the offending field when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message; never contains secrets or internal details.
    pub message: String,
    /// The request field at fault.
    pub field: Option<String>,
    /// Per-item problems (e.g. which usage events are invalid), serialised as `error.events`.
    pub events: Option<serde_json::Value>,
    /// Rarely used parts, boxed so every `Result<_, ApiError>` stays small.
    pub extra: Option<Box<Extra>>,
}

/// The rarely used parts of an [`ApiError`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// Seconds for the `Retry-After` header (429s; 503s default to 1).
    pub retry_after: Option<u64>,
    /// Per-problem details of an invalid document (e.g. a workflow graph), as `error.issues`.
    pub issues: Option<serde_json::Value>,
    /// The methods a 405's path does serve, for its `Allow` header (RFC 9110 requires one).
    pub allow: Option<String>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            events: None,
            extra: None,
        }
    }

    /// Adds a `Retry-After` of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.extra.get_or_insert_with(Default::default).retry_after = Some(seconds);
        self
    }

    /// Adds `error.issues`.
    pub fn with_issues(mut self, issues: serde_json::Value) -> Self {
        self.extra.get_or_insert_with(Default::default).issues = Some(issues);
        self
    }

    /// A 400 naming `field`.
    pub fn field(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, code, message)
        }
    }

    /// 401 for admin routes: the same answer for a missing, an unknown and a disabled operator's
    /// token.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing or invalid admin credentials",
        )
    }

    /// 404 for paths no function serves.
    pub fn route_not_found(method: &Method, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ROUTE_NOT_FOUND",
            format!("no route for {method} {}", truncate(path, 200)),
        )
    }

    /// 500, opaque.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error; it has been logged",
        )
    }

    /// The response for this error.
    pub fn into_response(self) -> Response<Body> {
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message.clone(),
                field: self.field.clone(),
                events: self.events.clone(),
                issues: self.extra.as_ref().and_then(|x| x.issues.clone()),
            },
        };
        let mut response = json(self.status, &body);
        let retry_after = match self.extra.as_ref().and_then(|x| x.retry_after) {
            Some(s) => Some(s),
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            None => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self.extra.as_ref().and_then(|x| x.allow.as_deref())
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            response.headers_mut().insert(ALLOW, value);
        }
        response
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use StatusCode as S;
        match &e {
            DomainError::InvalidField { field, source } => {
                Self::field("INVALID_FIELD", *field, source.to_string())
            }
            DomainError::InvalidValue { field, message } => {
                Self::field("INVALID_FIELD", *field, message.clone())
            }
            DomainError::UnknownFeature(name) => Self::field(
                "UNKNOWN_FEATURE",
                "features",
                format!("unknown feature `{}`", truncate(name, 64)),
            ),
            DomainError::UnknownPlan(name) => Self::field(
                "UNKNOWN_PLAN",
                "plan",
                format!(
                    "unknown plan `{}`; use starter, professional or enterprise",
                    truncate(name, 64)
                ),
            ),
            DomainError::CustomerNotFound => {
                Self::new(S::NOT_FOUND, "CUSTOMER_NOT_FOUND", "no such customer")
            }
            DomainError::LicenseNotFound => {
                Self::new(S::NOT_FOUND, "LICENSE_NOT_FOUND", "no such license")
            }
            DomainError::InvalidTransition { .. }
            | DomainError::OperatorDisabled { .. }
            | DomainError::OperatorRotatedMeanwhile => {
                Self::new(S::CONFLICT, "INVALID_TRANSITION", e.to_string())
            }
            DomainError::OperatorNotFound => {
                Self::new(S::NOT_FOUND, "OPERATOR_NOT_FOUND", "no such operator")
            }
            DomainError::InstallationNotFound => Self::new(
                S::NOT_FOUND,
                "INSTALLATION_NOT_FOUND",
                "no installation with that id under this license",
            ),
            DomainError::InstallationBusy => {
                Self::new(S::CONFLICT, "INSTALLATION_BUSY", e.to_string())
            }
            DomainError::OperatorNameTaken(name) => Self {
                field: Some("name".into()),
                ..Self::new(
                    S::CONFLICT,
                    "OPERATOR_NAME_TAKEN",
                    format!(
                        "an active operator is already named `{}`",
                        truncate(name, 64)
                    ),
                )
            },
            DomainError::ActivationRateLimited { retry_after, .. } => Self::new(
                S::TOO_MANY_REQUESTS,
                "ACTIVATION_RATE_LIMITED",
                e.to_string(),
            )
            .with_retry_after(*retry_after),
            DomainError::SeatsFull { .. } => {
                Self::new(S::CONFLICT, "INSTALLATION_LIMIT", e.to_string())
            }
            DomainError::LicenseTooLarge(_) => {
                Self::new(S::BAD_REQUEST, "LICENSE_TOO_LARGE", e.to_string())
            }
            DomainError::Store(StoreError::InvalidCursor) => Self::field(
                "INVALID_CURSOR",
                "cursor",
                "cursor must be the `next` of an earlier page of the same listing, with the same filters",
            ),
            DomainError::Store(StoreError::Throttled | StoreError::Unavailable(_))
            | DomainError::Signing(crate::token::SignError::Throttled) => {
                tracing::warn!(error.cause_chain = ?cause_chain(&e), "dependency throttled or unreachable");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "temporarily overloaded; retry shortly",
                )
            }
            DomainError::Store(_) | DomainError::Signing(_) => {
                tracing::error!(error.cause_chain = ?cause_chain(&e), "request failed");
                Self::internal()
            }
        }
    }
}

fn cause_chain(e: &dyn std::error::Error) -> Vec<String> {
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    chain
}

impl From<crate::service::usage::SubmitError> for ApiError {
    fn from(e: crate::service::usage::SubmitError) -> Self {
        use crate::service::check::Code;
        use crate::service::usage::SubmitError;
        match e {
            // The key itself is not acceptable: authenticate again with a valid one.
            SubmitError::License(v) if matches!(v.code, Code::InvalidKey | Code::NotFound) => {
                Self::new(StatusCode::UNAUTHORIZED, v.code.as_str(), v.detail)
            }
            // A genuine key whose license is not in force.
            SubmitError::License(v) => Self::new(StatusCode::FORBIDDEN, v.code.as_str(), v.detail),
            SubmitError::Domain(d) => d.into(),
        }
    }
}

impl From<crate::service::workflows::Refusal> for ApiError {
    fn from(r: crate::service::workflows::Refusal) -> Self {
        use crate::service::workflows::Refusal;
        match r {
            // 403 for every license problem, bad keys included: the seed's client maps 403 to
            // "License expired or invalid".
            Refusal::License(v) => Self::new(StatusCode::FORBIDDEN, v.code.as_str(), v.detail),
            Refusal::Invalid(errors) => {
                let count = errors.issues.len();
                let first = errors
                    .issues
                    .first()
                    .map(|i| format!(": {} {}", i.pointer, i.message))
                    .unwrap_or_default();
                Self::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_WORKFLOW",
                    format!(
                        "the workflow is invalid ({count} problem{}){first}; see error.issues",
                        if count == 1 { "" } else { "s" }
                    ),
                )
                .with_issues(serde_json::to_value(&errors.issues).unwrap_or_default())
            }
            Refusal::NodeNotEntitled {
                feature,
                node_id,
                node_type,
                pointer,
            } => Self {
                field: Some(format!("workflow{pointer}")),
                ..Self::new(
                    StatusCode::FORBIDDEN,
                    "FEATURE_NOT_ENTITLED",
                    format!(
                        "node `{}` is of type `{node_type}`, which needs feature `{feature}`; the license does not include it",
                        truncate(&node_id, 64)
                    ),
                )
            },
            Refusal::RateLimited { limit, retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!(
                    "at most {limit} executions per minute for this plan; retry in {retry_after} s"
                ),
            )
            .with_retry_after(retry_after),
            Refusal::UsageExceeded { limit, retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "USAGE_EXCEEDED",
                format!("the monthly limit of {limit} workflow executions is reached"),
            )
            .with_retry_after(retry_after),
            Refusal::Domain(e) => e.into(),
        }
    }
}

impl From<crate::service::workflows::ReadRefusal> for ApiError {
    fn from(r: crate::service::workflows::ReadRefusal) -> Self {
        use crate::service::workflows::ReadRefusal;
        match r {
            ReadRefusal::License(v) => Self::new(StatusCode::FORBIDDEN, v.code.as_str(), v.detail),
            ReadRefusal::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                "EXECUTION_NOT_FOUND",
                "no such execution for this license",
            ),
            ReadRefusal::Domain(e) => e.into(),
        }
    }
}

/// The license key of `Authorization: License <key>`; 401 `MISSING_LICENSE_KEY` without one.
pub fn license_key_header(req: &Request) -> Result<crate::token::LicenseKey, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "MISSING_LICENSE_KEY",
            "send the license key as `Authorization: License <key>`",
        )
    };
    let value = req
        .headers()
        .get(lambda_http::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, key) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("license") || key.trim().is_empty() {
        return Err(missing());
    }
    Ok(crate::token::LicenseKey::new(key.trim()))
}

/// Parses a JSON object body of at most `max` bytes (400 `BODY_TOO_LARGE`, `MALFORMED_JSON`,
/// `INVALID_REQUEST` as [`parse_json`]).
pub fn parse_json_object(req: &Request, max: usize) -> Result<serde_json::Value, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BODY_TOO_LARGE",
            format!("request body exceeds {max} bytes"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            "request body must be a JSON object",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// 400 `INVALID_EVENTS`, listing every problem by event index.
pub fn invalid_events(problems: &[crate::api::EventProblemView]) -> ApiError {
    ApiError {
        events: serde_json::to_value(problems).ok(),
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_EVENTS",
            format!(
                "{} problem(s) in events; nothing was accepted (see error.events)",
                problems.len()
            ),
        )
    }
}

/// A JSON response that no cache keeps.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = match serde_json::to_string(value) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            return ApiError::internal().into_response();
        }
    };
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Turns a handler result into a response: handlers always return `Ok` to the runtime, because an
/// `Err` reaches API Gateway as a bare 502.
pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

/// Parses the JSON body: 400 `BODY_TOO_LARGE` over 64 KiB, `MALFORMED_JSON` when it is not JSON,
/// `INVALID_REQUEST` (naming the field) when a field is missing or of the wrong type.
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    // Structs would otherwise also accept a JSON array, field by position: objects only.
    let mut value = parse_json_object(req, MAX_BODY_BYTES)?;
    integral_numbers(&mut value);
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", e.to_string()))
}

/// JSON has one number type: `186.0` is the integer 186 (JSON Schema's `integer` admits it, and
/// so do our integer fields). serde reads a number written with a fraction as a float, which no
/// integer field takes: rewrite every integral float in range as the integer it is.
fn integral_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64())
                && f.fract() == 0.0
            {
                // The casts are exact: `f` is integral and inside the target type's range.
                if (0.0..18_446_744_073_709_551_615.0).contains(&f) {
                    *n = serde_json::Number::from(f as u64);
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                    *n = serde_json::Number::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(members) => members.values_mut().for_each(integral_numbers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}
