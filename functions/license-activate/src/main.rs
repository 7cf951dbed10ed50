//! `POST /api/admin/licenses/{licenseId}/activations` (admin): wiring only. Holds the lease key's
//! signer — the only key it may use — fetched once per container.

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use license_activate::handler;
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
        lease_signer: Arc::new(shared::aws::lease_signer(&sdk, &config).await?),
        issuer: config.issuer().to_owned(),
        clock: Arc::new(SystemClock),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
