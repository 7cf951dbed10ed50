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
