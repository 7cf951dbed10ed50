//! Health handler: the deployed version on `GET /health`; `ROUTE_NOT_FOUND` for anything else
//! (the HTTP API's `$default` route lands here).

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::api::HealthResponse;
use shared::http::{self, ApiError};

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle(version: &str, req: Request) -> Result<Response<Body>, Error> {
    if req.uri().path().trim_end_matches('/') != "/health" {
        return Ok(ApiError::route_not_found(req.method(), req.uri().path()).into_response());
    }
    if let Err(e) = http::require_method(&req, &Method::GET) {
        return Ok(e.into_response());
    }
    Ok(http::json(
        StatusCode::OK,
        &HealthResponse {
            status: "ok".into(),
            version: version.to_owned(),
        },
    ))
}
