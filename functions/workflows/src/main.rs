//! `POST /api/workflows/execute` and `GET /api/workflows/executions/{executionId}`: wiring only.
//! The key ring and the outbound HTTP client are built once per container.

mod handler;

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use shared::config::Config;
use shared::domain::ports::SystemClock;

fn main() -> Result<(), Error> {
    // Started as the jq sandbox's worker (see below)? Then be only that, before any runtime.
    nectar_workflow::jq::process::run_worker_if_requested();
    tokio::runtime::Runtime::new()?.block_on(serve())
}

async fn serve() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // Customers' jq runs in worker processes of this same binary: bounded memory, killed at the
    // deadline (see `nectar_workflow::jq::process`).
    nectar_workflow::jq::process::enable(
        nectar_workflow::jq::process::SandboxCommand::current_exe()?,
    );
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let deps = handler::Deps {
        ring: shared::aws::key_ring(&sdk, &config).await?,
        store: shared::aws::store(&sdk, &config)?,
        http: nectar_workflow::ReqwestCaller::new(config.workflow_http())?,
        clock: Arc::new(SystemClock),
        policy: shared::domain::Plan::workflow_policy,
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
