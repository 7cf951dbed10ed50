//! JWKS handler: the public keys of the license and lease signing keys, so any JOSE library can
//! verify tokens offline — and the root endorsements of those keys, which are what installations
//! actually trust (they carry only the root keys; see the README's "Trust model").

use std::sync::Arc;

use lambda_http::http::header::CACHE_CONTROL;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use shared::domain::ports::{Clock, EndorsementRegistry};
use shared::http::{self, ApiError};
use shared::token::{Jwks, KeyRing};

/// What the handler needs.
pub struct Deps<E> {
    /// The public keys (fetched once per container).
    pub ring: KeyRing,
    /// The endorsements (one query per request; a handful of items).
    pub endorsements: E,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<E: EndorsementRegistry>(
    deps: &Deps<E>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<E: EndorsementRegistry>(
    deps: &Deps<E>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    http::route(req, &[(http::keys::JWKS, ())])?;
    let mut endorsements: Vec<String> = deps
        .endorsements
        .endorsements(deps.clock.now())
        .await
        .map_err(shared::domain::DomainError::Store)?
        .into_iter()
        .map(|e| e.token)
        .collect();
    endorsements.sort();
    let jwks = Jwks {
        endorsements,
        ..deps.ring.jwks()
    };
    let mut response = http::json(StatusCode::OK, &jwks);
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
    use shared::domain::ports::{StoredEndorsement, SystemClock, TokenSigner};
    use shared::testing::{MemoryStack, apigw_v2, body_json};
    use shared::token::TokenKind;

    #[tokio::test]
    async fn jwks_publishes_both_signing_keys_and_their_running_endorsements() {
        let stack = MemoryStack::new();
        let now = time::OffsetDateTime::now_utc();
        for (kid, expires_at) in [
            ("running", now + time::Duration::days(30)),
            ("ended", now - time::Duration::days(1)),
        ] {
            stack
                .store
                .put_endorsement(&StoredEndorsement {
                    kid: kid.into(),
                    use_: TokenKind::Lease,
                    token: format!("endorsement-of-{kid}"),
                    expires_at,
                })
                .await
                .expect("put");
        }
        let deps = Deps {
            ring: stack.key_ring().await,
            endorsements: stack.store.clone(),
            clock: Arc::new(SystemClock),
        };
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/jwks.json"),
            &[],
        );
        let resp = handle(&deps, req).await.expect("always Ok");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
        let body = body_json(&resp);
        assert_eq!(body["keys"][0]["kid"], stack.signer.kid());
        assert_eq!(body["keys"][1]["kid"], stack.lease_signer.kid());
        assert_eq!(body["keys"][0]["crv"], "P-256");
        assert_eq!(
            body["endorsements"],
            serde_json::json!(["endorsement-of-running"])
        );
    }
}
