//! `GET /.well-known/jwks.json`: wiring only. Keys are fetched once per container; endorsements
//! are read from the table per request.

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
        ring: shared::aws::published_key_ring(&sdk, &config).await?,
        endorsements: shared::aws::store(&sdk, &config)?,
        clock: Arc::new(SystemClock),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
