//! JWKS handler: the trusted public keys, so any JOSE library can verify keys offline.

use lambda_http::http::header::CACHE_CONTROL;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::http;
use shared::token::KeyRing;

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle(ring: &KeyRing, req: Request) -> Result<Response<Body>, Error> {
    if let Err(e) = http::route(&req, &[(http::keys::JWKS, ())]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::ports::TokenSigner;
    use shared::testing::{MemoryStack, apigw_v2, body_json};

    #[tokio::test]
    async fn jwks_publishes_the_signing_key_and_lets_clients_cache_it() {
        let stack = MemoryStack::new();
        let ring = stack.key_ring().await;
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/jwks.json"),
            &[],
        );
        let resp = handle(&ring, req).await.expect("always Ok");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        let body = body_json(&resp);
        assert_eq!(body["keys"][0]["kid"], stack.signer.kid());
        assert_eq!(body["keys"][0]["crv"], "P-256");
    }
}
