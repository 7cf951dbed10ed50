//! `POST /api/admin/operators`, `GET /api/admin/operators`,
//! `POST /api/admin/operators/{operatorId}/rotate|disable` (admin): wiring only.

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use operators::handler;
use shared::config::Config;
use shared::domain::ports::{RandomIds, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config().await;
    let deps = handler::Deps {
        auth: config.admin_auth()?.clone(),
        store: shared::aws::store(&sdk, &config)?,
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
