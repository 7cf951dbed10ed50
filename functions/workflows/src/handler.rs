//! Workflows handler: authenticate (`Authorization: License <key>`) → parse → the workflow
//! service → one error mapping. Two routes: execute, and read back one execution.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use nectar_workflow::{Env, HttpCaller, StatisticalAnalytics};
use shared::domain::Plan;
use shared::domain::ports::{Clock, ExecutionLog, LicenseReader, RateLimiter, UsageLedger};
use shared::domain::workflow::{ExecutionId, WorkflowPolicy};
use shared::http::{self, ApiError};
use shared::service::workflows::{ExecuteCommand, execute_workflow, execution_of};
use shared::token::KeyRing;

/// Largest request body: the workflow and its input data.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Execute,
    Execution,
}

const ROUTES: &[(&str, Route)] = &[
    (http::keys::WORKFLOW_EXECUTE, Route::Execute),
    (http::keys::WORKFLOW_EXECUTION, Route::Execution),
];

/// What the handler needs.
pub struct Deps<S, H> {
    /// Trusted public keys.
    pub ring: KeyRing,
    /// Licenses, usage, rate windows, executions.
    pub store: S,
    /// Outbound calls of `http` nodes (allow-listed).
    pub http: H,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Each plan's engine limits and rate limit.
    pub policy: fn(Plan) -> WorkflowPolicy,
}

/// Handles one request; always `Ok` (errors are responses).
pub async fn handle<S, H>(deps: &Deps<S, H>, req: Request) -> Result<Response<Body>, Error>
where
    S: LicenseReader + UsageLedger + RateLimiter + ExecutionLog,
    H: HttpCaller,
{
    Ok(http::respond(run(deps, &req).await))
}

async fn run<S, H>(deps: &Deps<S, H>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + UsageLedger + RateLimiter + ExecutionLog,
    H: HttpCaller,
{
    let matched = http::route(req, ROUTES)?;
    match matched.route {
        Route::Execute => execute(deps, req).await,
        Route::Execution => {
            let key = http::license_key_header(req)?;
            let id: ExecutionId = matched.id("executionId")?;
            let body = execution_of(&deps.ring, &deps.store, &key, &id, deps.clock.now()).await?;
            Ok(http::json(StatusCode::OK, &body))
        }
    }
}

async fn execute<S, H>(deps: &Deps<S, H>, req: &Request) -> Result<Response<Body>, ApiError>
where
    S: LicenseReader + UsageLedger + RateLimiter + ExecutionLog,
    H: HttpCaller,
{
    let key = http::license_key_header(req)?;
    let body = http::parse_json_object(req, MAX_BODY_BYTES)?;
    let (workflow_id, workflow, data) = shared::api::parse_execute_body(body)?;
    let cmd = ExecuteCommand {
        key,
        workflow_id,
        workflow,
        data,
        execution_id: ExecutionId::from_uuid(uuid::Uuid::now_v7()),
    };
    let env = Env {
        http: &deps.http,
        analytics: &StatisticalAnalytics,
    };
    let executed = execute_workflow(
        &deps.ring,
        &deps.store,
        &env,
        deps.policy,
        cmd,
        deps.clock.now(),
    )
    .await?;
    Ok(http::json(StatusCode::OK, &executed.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::{FixedClock, Issued, MemoryStack, apigw_v2, body_json};
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2026-06-15 12:00 UTC);
    const EXECUTE: &str = include_str!("../../../tests/fixtures/apigw_v2/workflow_execute.json");
    const READ: &str = include_str!("../../../tests/fixtures/apigw_v2/workflow_execution.json");

    fn deps(
        stack: &MemoryStack,
        ring: KeyRing,
    ) -> Deps<shared::adapters::memory::MemoryStore, nectar_workflow::DisabledHttp> {
        Deps {
            ring,
            store: stack.store.clone(),
            http: nectar_workflow::DisabledHttp,
            clock: Arc::new(FixedClock(NOW)),
            policy: Plan::workflow_policy,
        }
    }

    fn read(issued: &Issued, execution_id: &str) -> Request {
        apigw_v2(
            READ,
            &[
                ("__LICENSE_KEY__", issued.key.expose()),
                ("__EXECUTION_ID__", execution_id),
            ],
        )
    }

    #[tokio::test]
    async fn a_workflow_runs_is_counted_and_only_its_own_license_reads_it_back() {
        // Arrange
        let stack = MemoryStack::new();
        let own = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let other = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let deps = deps(&stack, stack.key_ring().await);
        // Act
        let run = handle(
            &deps,
            apigw_v2(EXECUTE, &[("__LICENSE_KEY__", own.key.expose())]),
        )
        .await
        .expect("always Ok");
        let run = (run.status(), body_json(&run));
        let id = run.1["executionId"].as_str().unwrap_or_default().to_owned();
        let mine = handle(&deps, read(&own, &id)).await.expect("always Ok");
        let theirs = handle(&deps, read(&other, &id)).await.expect("always Ok");
        // Assert
        assert_eq!(run.0, StatusCode::OK, "{}", run.1);
        assert_eq!(run.1["status"], "succeeded");
        assert_eq!(
            run.1["output"],
            serde_json::json!({"total": 115, "discount": 0.1})
        );
        assert_eq!(
            run.1["usage"],
            serde_json::json!({"used": 1, "limit": 10000, "remaining": 9999})
        );
        assert_eq!((mine.status(), body_json(&mine)), (StatusCode::OK, run.1));
        assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(&theirs)["error"]["code"], "EXECUTION_NOT_FOUND");
    }

    #[tokio::test]
    async fn requests_without_a_license_header_or_with_a_malformed_id_are_refused() {
        // Arrange
        let stack = MemoryStack::new();
        let own = stack.issue(Plan::Professional, NOW, |_| {}).await;
        let deps = deps(&stack, stack.key_ring().await);
        // Act
        let headless = handle(&deps, apigw_v2(EXECUTE, &[("License __LICENSE_KEY__", "")]))
            .await
            .expect("always Ok");
        let malformed = handle(&deps, read(&own, "not an id")).await.expect("Ok");
        // Assert
        assert_eq!(headless.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(&headless)["error"]["code"], "MISSING_LICENSE_KEY");
        let body = body_json(&malformed);
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            (&body["error"]["code"], &body["error"]["field"]),
            (&"INVALID_FIELD".into(), &"executionId".into())
        );
    }
}
