//! `GET /api/license/{customerId}` (admin): wiring only.

use lambda_http::{Error, run, service_fn};
use license_lookup::handler;
use shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let deps = handler::Deps {
        auth: config.admin_auth()?.clone(),
        store: shared::aws::store(&sdk, &config)?,
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
