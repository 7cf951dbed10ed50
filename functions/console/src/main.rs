//! `/console/*` (the operator console): wiring only. The KMS signer is resolved once here.

use std::sync::Arc;

use console::handler;
use lambda_http::{Error, run, service_fn};
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
        signer: Arc::new(shared::aws::signer(&sdk, &config).await?),
        issuer: config.issuer().to_owned(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        prices: config.price_list().clone(),
        lifetime: console::session::Lifetime::default(),
        // Only `make dev` and `make test` set it (their local edge forwards the host).
        edge: if std::env::var("CONSOLE_LOCAL_EDGE").as_deref() == Ok("true") {
            handler::Edge::Local
        } else {
            handler::Edge::ApiGateway
        },
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
