//! `nectar-agent`: `run` (default) serves the local API and keeps the lease fresh; `check` is the
//! startup gate for container entrypoints (exit 0: start the product; 1: do not); `token` prints
//! the local API's bearer token for the product's entrypoint.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use nectar_agent::check::{CheckOutcome, run_check};
use nectar_agent::config::{Cli, Command};
use nectar_client::{HttpLicenseServer, LicenseServer, SystemClock};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if cli.command == Some(Command::Token) {
        // Only the state directory matters: the product's entrypoint may not hold the license key.
        return match nectar_agent::api_token::load_or_create(&cli.options.state_dir) {
            Ok(token) => {
                println!("{}", token.expose());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("nectar-agent token: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match cli.options.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nectar-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server: Arc<dyn LicenseServer> = match HttpLicenseServer::new(&settings.license_server_url)
    {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("nectar-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        // Answered above, before the settings that need the license key.
        Command::Token => ExitCode::SUCCESS,
        Command::Check => match run_check(&settings, Arc::new(SystemClock), server).await {
            CheckOutcome::Pass(m) => {
                eprintln!("nectar-agent check: OK: {m}");
                ExitCode::SUCCESS
            }
            CheckOutcome::Warn(m) => {
                eprintln!("nectar-agent check: WARNING: {m}");
                ExitCode::SUCCESS
            }
            CheckOutcome::Fail(m) => {
                eprintln!("nectar-agent check: FAILED: {m}");
                ExitCode::FAILURE
            }
        },
        Command::Run => {
            let agent = match nectar_agent::start(&settings, Arc::new(SystemClock), server).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("nectar-agent: {e}");
                    return ExitCode::FAILURE;
                }
            };
            eprintln!(
                "nectar-agent: listening on http://{} (bearer token in {})",
                agent.addr,
                settings
                    .state_dir
                    .join(nectar_agent::api_token::FILE_NAME)
                    .display()
            );
            shutdown_signal().await;
            agent.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
