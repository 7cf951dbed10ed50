//! `GET /.well-known/jwks.json`: wiring only. Keys are fetched once per container.

mod handler;

use lambda_http::{Error, run, service_fn};
use shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let ring = shared::aws::key_ring(&sdk, &config).await?;
    run(service_fn(|req| handler::handle(&ring, req))).await
}
