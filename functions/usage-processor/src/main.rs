//! `usage-processor` (SQS-triggered): wiring only. The event source mapping must enable
//! `ReportBatchItemFailures`, otherwise a partial failure would redeliver the whole batch.

mod handler;

use lambda_runtime::{Error, run, service_fn};
use shared::config::Config;
use shared::domain::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config_for(shared::aws::Deadline::Background).await;
    let store = shared::aws::store(&sdk, &config)?;
    let parallelism = config.usage_group_concurrency();
    run(service_fn(|event| {
        handler::handle(&store, &SystemClock, parallelism, event)
    }))
    .await
}
