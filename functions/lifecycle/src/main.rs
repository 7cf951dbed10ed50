//! `lifecycle` (EventBridge schedule): wiring only. Clients are built once per container.

mod handler;

use lambda_runtime::{Error, run, service_fn};
use shared::config::Config;
use shared::domain::ports::SystemClock;
use shared::service::lifecycle::Settings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config_for(shared::aws::Deadline::Background).await;
    let deps = handler::Deps {
        store: shared::aws::store(&sdk, &config)?,
        publisher: shared::aws::events_topic(&sdk, &config)?,
        clock: Box::new(SystemClock),
        settings: Settings::default(),
        prices: config.price_list().clone(),
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
