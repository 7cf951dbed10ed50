//! `POST /api/heartbeat`: wiring only. The key ring and the KMS signer (for leases) are resolved
//! here, once per container.

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
    let (signer, ring) = shared::aws::lease_signer_and_key_ring(&sdk, &config).await?;
    let deps = handler::Deps {
        ring,
        store: shared::aws::store(&sdk, &config)?,
        signer: Arc::new(signer),
        clock: Arc::new(SystemClock),
        interval: config.heartbeat_interval(),
        activations_per_hour: config.activations_per_hour(),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
