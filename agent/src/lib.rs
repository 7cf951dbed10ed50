//! Sidecar next to a self-hosted Nectar installation: local license answers, usage buffering,
//! startup check.
//!
//! [`start`] runs the agent in-process (the binary and the tests use it): the local API
//! ([`http`]), background heartbeats (from `nectar-client`) and usage forwarding ([`usage`]).
//! [`check::run_check`] is the one-shot startup gate. The local API needs the bearer token of
//! [`api_token`], created in the state directory on first start.

pub mod api_token;
pub mod check;
pub mod config;
pub mod http;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nectar_client::{Background, ClientError, Clock, LicenseClient, LicenseServer};

pub use api_token::ApiToken;
use api_token::TokenError;
pub use config::Settings;
use usage::UsageBuffer;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The license client could not start.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The offline activation file was refused.
    #[error("{0}")]
    Activation(String),
    /// The local API's token could not be created, or the existing one is unsafe or unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The state directory or the listen address is unusable.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running agent. Dropping it stops everything (like a killed process: nothing is flushed
/// that was not already on disk); [`RunningAgent::shutdown`] stops gracefully.
pub struct RunningAgent {
    /// Where the local API listens.
    pub addr: SocketAddr,
    /// The license client.
    pub client: Arc<LicenseClient>,
    /// The usage buffer.
    pub buffer: Arc<UsageBuffer>,
    /// The token the local API requires (its `Debug` is redacted; never log `expose()`).
    pub api_token: ApiToken,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _background: Background,
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RunningAgent {
    /// Stops serving, persists the state, and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.tasks.first_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
        if let Err(e) = self.client.save() {
            tracing::warn!(error = %e, "could not persist the state on shutdown");
        }
    }
}

/// Reads and installs an offline activation file. `Err` is a sentence for the operator, with the
/// stable reason code when the file was refused.
pub fn install_activation(client: &LicenseClient, path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("NECTAR_ACTIVATION_FILE {}: {e}", path.display()))?;
    let file: nectar_protocol::token::ActivationFile =
        serde_json::from_slice(&text).map_err(|e| {
            format!(
                "NECTAR_ACTIVATION_FILE {} is not an activation file: {e}",
                path.display()
            )
        })?;
    if file.format != nectar_protocol::token::ACTIVATION_FORMAT {
        return Err(format!(
            "NECTAR_ACTIVATION_FILE {}: unknown format `{}`",
            path.display(),
            file.format
        ));
    }
    match client.install_activation(&file) {
        Ok(installed) => {
            tracing::info!(
                installed,
                expires_at = %file.expires_at,
                "offline activation read"
            );
            Ok(())
        }
        Err(ClientError::LeaseRejected(e)) => Err(format!(
            "the activation file was refused: {e} ({})",
            e.code()
        )),
        Err(e) => Err(format!("the activation file could not be installed: {e}")),
    }
}

/// Starts the agent: local API on `settings.listen`, heartbeats, usage forwarding.
pub async fn start(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    server: Arc<dyn LicenseServer>,
) -> Result<RunningAgent, AgentError> {
    // First: without a usable token there is no API to serve, and nothing else should start.
    let api_token = api_token::load_or_create(&settings.state_dir)?;
    let client = Arc::new(LicenseClient::new(
        settings.client_config(),
        clock.clone(),
        server,
    )?);
    if let Some(path) = &settings.activation_file {
        install_activation(&client, path).map_err(AgentError::Activation)?;
    }
    let buffer = Arc::new(
        UsageBuffer::open_with_capacity(&settings.state_dir, settings.usage_buffer_max_events)
            .map_err(|source| AgentError::Io {
                what: format!("usage buffer in {}", settings.state_dir.display()),
                source,
            })?,
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| AgentError::Io {
            what: format!("listen on {}", settings.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AgentError::Io {
        what: "local address".into(),
        source,
    })?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let app = http::router(http::AppState {
        client: client.clone(),
        buffer: buffer.clone(),
        wake: wake.clone(),
        clock,
        deployment_type: settings.deployment_type.clone(),
        cloud_api_url: settings.cloud_api_url.clone(),
        token: api_token.clone(),
        allowed_hosts: settings.allowed_hosts.clone().into(),
        max_quantity: settings.usage_max_quantity,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "local API stopped");
        }
    });
    let forward = {
        let (client, buffer, wake) = (client.clone(), buffer.clone(), wake.clone());
        let every = Duration::from_secs(settings.usage_flush_secs.max(1));
        tokio::spawn(async move { buffer.forward_forever(&client, &wake, every).await })
    };
    // Whatever a previous run left in the buffer goes out now.
    wake.notify_one();
    let background = client.spawn_background();
    tracing::info!(%addr, installation_id = %client.installation_id(), "nectar-agent started");
    Ok(RunningAgent {
        addr,
        client,
        buffer,
        api_token,
        stop: Some(stop),
        tasks: vec![serve, forward],
        _background: background,
    })
}
