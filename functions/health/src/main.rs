//! `GET /health` and the catch-all route (JSON 404 for unknown paths): wiring only.

mod handler;

use lambda_http::{Error, run, service_fn};
use shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let version = config.deployed_version().to_owned();
    run(service_fn(|req| handler::handle(&version, req))).await
}
