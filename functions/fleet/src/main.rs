//! `GET /api/admin/fleet/{customers,licenses,installations,attention}`, `GET /api/admin/metrics`
//! (`/history`) and `GET /api/admin/reports/usage` (admin reads): wiring only.

use std::sync::Arc;

use fleet::handler;
use lambda_http::{Error, run, service_fn};
use shared::config::Config;
use shared::domain::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let deps = handler::Deps {
        auth: config.admin_auth()?.clone(),
        store: shared::aws::store(&sdk, &config)?,
        clock: Arc::new(SystemClock),
        prices: config.price_list().clone(),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
