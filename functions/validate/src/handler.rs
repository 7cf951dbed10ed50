//! Validate handler: parse → `service::validate` → one response mapping.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::{ValidateAnswer, ValidateRequest, ValidateResponse};
use shared::domain::ports::{Clock, LicenseReader};
use shared::http::{self, ApiError};
use shared::service::validate::{ValidateCommand, validate};
use shared::token::KeyRing;

/// What the handler needs: read-only ports, as the function's IAM policy allows.
pub struct Deps<R> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// License reads.
    pub store: R,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<R: LicenseReader>(
    deps: &Deps<R>,
    req: Request,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(deps, &req).await))
}

async fn run<R: LicenseReader>(deps: &Deps<R>, req: &Request) -> Result<Response<Body>, ApiError> {
    http::route(req, &[(http::keys::VALIDATE, ())])?;
    let cmd = ValidateCommand::try_from(http::parse_json::<ValidateRequest>(req)?)?;
    let now = deps.clock.now();
    let checked = validate(&deps.ring, &deps.store, &cmd, now).await?;
    Ok(http::json(
        StatusCode::OK,
        &ValidateResponse::new(&checked, now),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::Plan;
    use shared::domain::ports::SystemClock;
    use shared::testing::{MemoryStack, Untouchable, apigw_v2, body_json};

    const FIXTURE: &str = include_str!("../../../tests/fixtures/apigw_v2/validate.json");

    async fn deps(stack: &MemoryStack) -> Deps<shared::adapters::memory::MemoryStore> {
        Deps {
            ring: stack.key_ring().await,
            store: stack.store.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    #[tokio::test]
    async fn a_valid_key_from_an_api_gateway_event_answers_200_valid() {
        // Arrange
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let req = apigw_v2(FIXTURE, &[("__LICENSE_KEY__", issued.key.expose())]);
        // Act
        let resp = handle(&deps(&stack).await, req).await.expect("always Ok");
        // Assert
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = body_json(&resp);
        assert_eq!(body["valid"], true, "{body}");
        assert_eq!(body["code"], "VALID");
        assert_eq!(body["license"]["id"], issued.license.id.as_str());
    }

    #[tokio::test]
    async fn a_base64_encoded_body_is_decoded_before_parsing() {
        let stack = MemoryStack::new();
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/validate_base64.json"),
            &[],
        );
        let resp = handle(&deps(&stack).await, req).await.expect("always Ok");
        let body = body_json(&resp);
        assert_eq!(
            (resp.status(), body["code"].as_str()),
            (StatusCode::OK, Some("INVALID_KEY")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_truncated_body_is_a_400_malformed_json() {
        // Bad input never reaches the store: it panics if it is.
        let deps = Deps {
            ring: MemoryStack::new().key_ring().await,
            store: Untouchable,
            clock: Arc::new(SystemClock),
        };
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/validate_malformed.json"),
            &[],
        );
        let resp = handle(&deps, req).await.expect("always Ok");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_json(&resp)["error"]["code"], "MALFORMED_JSON");
    }

    /// DynamoDB refusing connections (a real one: nothing listens on port 1) is a 503 with
    /// Retry-After that tells the installation to retry — never a 500.
    #[tokio::test]
    async fn an_unreachable_table_is_a_503_with_retry_after() {
        // Arrange: a genuine key, and a store whose endpoint refuses connections.
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let unreachable = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        let deps = Deps {
            ring: stack.key_ring().await,
            store: shared::adapters::dynamo::DynamoStore::new_with_table(
                aws_sdk_dynamodb::Client::from_conf(unreachable),
                "licenses",
            ),
            clock: Arc::new(SystemClock),
        };
        let req = apigw_v2(FIXTURE, &[("__LICENSE_KEY__", issued.key.expose())]);
        // Act
        let resp = handle(&deps, req).await.expect("always Ok");
        // Assert
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(body_json(&resp)["error"]["code"], "SERVICE_UNAVAILABLE");
    }

    /// DynamoDB hanging (accepting connections, never answering — a frozen emulator) is a 503
    /// with Retry-After within the request profile's operation timeout (0.9 s), not a wait for
    /// the Lambda timeout. The bound asserted is generous (3 s) for a loaded test machine; the
    /// figure is printed.
    #[tokio::test]
    async fn a_hanging_table_is_a_503_within_the_request_deadline() {
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Starter, SystemClock.now(), |_| {}).await;
        let endpoint = shared::testing::hanging_endpoint().await;
        let deps = Deps {
            ring: stack.key_ring().await,
            store: shared::adapters::dynamo::DynamoStore::new_with_table(
                shared::testing::dynamo_client(&endpoint, shared::aws::Deadline::Request),
                "licenses",
            ),
            clock: Arc::new(SystemClock),
        };
        let req = apigw_v2(FIXTURE, &[("__LICENSE_KEY__", issued.key.expose())]);
        let started = std::time::Instant::now();
        let resp = handle(&deps, req).await.expect("always Ok");
        let took = started.elapsed();
        println!(
            "validate with DynamoDB hanging answered {} in {took:?}",
            resp.status()
        );
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(body_json(&resp)["error"]["code"], "SERVICE_UNAVAILABLE");
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }
}
