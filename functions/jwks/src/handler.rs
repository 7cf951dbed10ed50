//! JWKS handler: the trusted public keys, so any JOSE library can verify keys offline.

use lambda_http::http::header::CACHE_CONTROL;
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::http;
use shared::token::KeyRing;

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle(ring: &KeyRing, req: Request) -> Result<Response<Body>, Error> {
    if let Err(e) = http::require_method(&req, &Method::GET) {
        return Ok(e.into_response());
    }
    let mut response = http::json(StatusCode::OK, &ring.jwks());
    // Public and stable between rotations: let clients and CDNs cache it for five minutes.
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
