//! Health handler: the deployed version on `GET /health`; `ROUTE_NOT_FOUND` for anything else
//! (the HTTP API's `$default` route lands here).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use shared::api::HealthResponse;
use shared::http::{self};

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle(version: &str, req: Request) -> Result<Response<Body>, Error> {
    // The `$default` route key matches nothing here, so its requests are matched by path: 404
    // for every path but `/health`.
    if let Err(e) = http::route(&req, &[(http::keys::HEALTH, ())]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::{apigw_v2, body_json};

    #[tokio::test]
    async fn health_reports_the_deployed_version() {
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/health.json"),
            &[],
        );
        let resp = handle("1.2.3", req).await.expect("always Ok");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            body_json(&resp),
            serde_json::json!({"status": "ok", "version": "1.2.3"})
        );
    }

    #[tokio::test]
    async fn any_other_route_is_a_json_404() {
        let req = apigw_v2(
            include_str!("../../../tests/fixtures/apigw_v2/default_route.json"),
            &[],
        );
        let resp = handle("1.2.3", req).await.expect("always Ok");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(&resp)["error"]["code"], "ROUTE_NOT_FOUND");
    }
}
