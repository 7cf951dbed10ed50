//! `POST /api/workflows/execute` and `GET /api/workflows/executions/{executionId}`: wiring only.
//! The key ring and the outbound HTTP client are built once per container.

mod handler;

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use shared::config::Config;
use shared::domain::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
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
