//! Command line and environment: every setting has a flag and a `NECTAR_*` variable (clap reads
//! both), and is turned once into [`Settings`], which tests build directly.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use nectar_protocol::usage::MAX_QUANTITY;

/// Default port of the local API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Default largest quantity the agent accepts in one usage event.
pub const DEFAULT_USAGE_MAX_QUANTITY: u64 = 10_000;
/// Default most usage events the buffer holds while the server cannot be reached.
pub const DEFAULT_USAGE_BUFFER_MAX_EVENTS: usize = 100_000;

/// `nectar-agent [run|check|token]`.
#[derive(Parser)]
#[command(name = "nectar-agent", version, about = "Nectar license sidecar")]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub options: Options,
    /// What to do (default: `run`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Serve the local API, heartbeat and forward usage (the default).
    Run,
    /// One-shot startup check for container entrypoints: exit 0 if the product may start.
    Check,
    /// Print the local API's bearer token (creating it if absent), one line, for the product's
    /// entrypoint. Needs only the state directory.
    Token,
}

/// Settings as flags / environment variables. No `Debug`: it holds the license key.
#[derive(clap::Args, Clone)]
pub struct Options {
    /// The license key (required).
    #[arg(long, env = "NECTAR_LICENSE_KEY", hide_env_values = true)]
    pub license_key: Option<String>,
    /// License server base URL.
    #[arg(
        long,
        env = "NECTAR_LICENSE_SERVER_URL",
        default_value = "http://127.0.0.1:9000"
    )]
    pub license_server_url: String,
    /// Cloud API base URL (shown in `/v1/license` for the product to use).
    #[arg(long, env = "NECTAR_CLOUD_API_URL")]
    pub cloud_api_url: Option<String>,
    /// Installation id; generated (UUID) and kept in the state file when absent.
    #[arg(long, env = "NECTAR_INSTALLATION_ID")]
    pub installation_id: Option<String>,
    /// How the product is deployed (`docker`, `kubernetes`, `binary`, …); informational.
    #[arg(long, env = "NECTAR_DEPLOYMENT_TYPE", default_value = "docker")]
    pub deployment_type: String,
    /// The domain this installation serves (checked against the license's restrictions).
    #[arg(long, env = "NECTAR_DOMAIN")]
    pub domain: Option<String>,
    /// Where the state (lease, pin, trusted time) and the usage buffer live.
    #[arg(
        long,
        env = "NECTAR_STATE_DIR",
        default_value = "/var/lib/nectar-agent"
    )]
    pub state_dir: PathBuf,
    /// Address of the local API; keep it on loopback.
    #[arg(long, env = "NECTAR_AGENT_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// An offline activation file (from `nectar-admin activation issue`) for an installation
    /// that cannot reach the license server: a lease Nectar signed for this installation id.
    #[arg(long, env = "NECTAR_ACTIVATION_FILE")]
    pub activation_file: Option<PathBuf>,
    /// Product version reported on heartbeat.
    #[arg(long, env = "NECTAR_PRODUCT_VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    pub product_version: String,
    /// Seconds the local clock may go back before it counts as tampering (at most 3600).
    #[arg(long, env = "NECTAR_CLOCK_TOLERANCE_SECS", default_value_t = 300)]
    pub clock_tolerance_secs: i64,
    /// Seconds between usage forwarding rounds.
    #[arg(long, env = "NECTAR_USAGE_FLUSH_SECS", default_value_t = 10)]
    pub usage_flush_secs: u64,
    /// Host names the local API answers to besides loopback (comma-separated), e.g. the compose
    /// service name when the product reaches the agent as `http://nectar-agent:7878`. Any other
    /// `Host` is refused (DNS rebinding).
    #[arg(long, env = "NECTAR_AGENT_HOSTNAME", value_delimiter = ',')]
    pub agent_hostname: Vec<String>,
    /// Largest quantity one usage event may carry (1 to 1000000); the feature's own ceiling
    /// applies too when lower.
    #[arg(long, env = "NECTAR_USAGE_MAX_QUANTITY", default_value_t = DEFAULT_USAGE_MAX_QUANTITY)]
    pub usage_max_quantity: u64,
    /// Most usage events the buffer holds while they wait for delivery; beyond it `POST
    /// /v1/usage` answers 507 and stores nothing.
    #[arg(long, env = "NECTAR_USAGE_BUFFER_MAX_EVENTS", default_value_t = DEFAULT_USAGE_BUFFER_MAX_EVENTS)]
    pub usage_buffer_max_events: usize,
}

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting is out of its range or malformed.
    #[error("{name}: {reason}")]
    Invalid {
        /// The environment variable.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No key.
    #[error("NECTAR_LICENSE_KEY is not set: the agent needs the license key")]
    MissingKey,
    /// A trust setting this build does not honour (see the README's "Trust model").
    #[error("{0}")]
    Trust(String),
}

/// Settings earlier agents read that could add trust at run time. They are refused — not
/// ignored — so a deployment relying on them notices: trust now comes only from the root keys
/// compiled into the binary.
const RETIRED_TRUST_SETTINGS: &[&str] = &["NECTAR_JWKS", "NECTAR_JWKS_FILE"];

/// The agent's settings, resolved.
#[derive(Clone)]
pub struct Settings {
    /// The license key.
    pub license_key: String,
    /// License server base URL.
    pub license_server_url: String,
    /// Cloud API base URL.
    pub cloud_api_url: Option<String>,
    /// Installation id, if configured.
    pub installation_id: Option<String>,
    /// Deployment type.
    pub deployment_type: String,
    /// Served domain.
    pub domain: Option<String>,
    /// State directory.
    pub state_dir: PathBuf,
    /// Local API address.
    pub listen: SocketAddr,
    /// Nectar's root keys: compiled in (`dev-trust` builds: plus `NECTAR_DEV_TRUST_ROOTS`).
    pub roots: nectar_client::token::TrustRoots,
    /// Offline activation file, if any.
    pub activation_file: Option<PathBuf>,
    /// Product version.
    pub product_version: String,
    /// Clock tolerance, seconds.
    pub clock_tolerance_secs: i64,
    /// Usage forwarding period, seconds.
    pub usage_flush_secs: u64,
    /// Host names (lowercase, without port) the local API answers to besides loopback.
    pub allowed_hosts: Vec<String>,
    /// Largest quantity accepted in one usage event (1..=`MAX_QUANTITY`).
    pub usage_max_quantity: u64,
    /// Most usage events the buffer holds (at least 1).
    pub usage_buffer_max_events: usize,
}

impl Options {
    /// Refuses settings that once added trust at run time (`is_set` reads the environment).
    fn refuse_retired(is_set: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        match RETIRED_TRUST_SETTINGS.iter().find(|n| is_set(n)) {
            Some(name) => Err(ConfigError::Trust(format!(
                "{name} is set, but the agent no longer takes keys from its settings: it trusts \
                 only the Nectar root keys compiled into it (see \"Trust model\" in the README). \
                 Unset {name}"
            ))),
            None => Ok(()),
        }
    }

    /// Resolves the options (reads the JWKS file, parses the JWKS).
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let license_key = self
            .license_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(ConfigError::MissingKey)?
            .to_owned();
        Self::refuse_retired(|name| std::env::var_os(name).is_some())?;
        let roots = nectar_client::token::TrustRoots::for_this_build()
            .map_err(|e| ConfigError::Trust(e.to_string()))?;
        let clock_tolerance_secs = in_range(
            "NECTAR_CLOCK_TOLERANCE_SECS",
            self.clock_tolerance_secs,
            0..=nectar_client::client::MAX_CLOCK_TOLERANCE_SECS,
        )?;
        Ok(Settings {
            license_key,
            license_server_url: self.license_server_url.clone(),
            cloud_api_url: self.cloud_api_url.clone(),
            installation_id: self.installation_id.clone(),
            deployment_type: self.deployment_type.clone(),
            domain: self.domain.clone(),
            state_dir: self.state_dir.clone(),
            listen: self.listen,
            roots,
            activation_file: self.activation_file.clone(),
            product_version: self.product_version.clone(),
            clock_tolerance_secs,
            usage_flush_secs: self.usage_flush_secs,
            allowed_hosts: allowed_hosts(&self.agent_hostname)?,
            usage_max_quantity: in_range(
                "NECTAR_USAGE_MAX_QUANTITY",
                self.usage_max_quantity,
                1..=MAX_QUANTITY,
            )?,
            usage_buffer_max_events: match self.usage_buffer_max_events {
                0 => {
                    return Err(ConfigError::Invalid {
                        name: "NECTAR_USAGE_BUFFER_MAX_EVENTS",
                        reason: "must be at least 1".into(),
                    });
                }
                n => n,
            },
        })
    }
}

/// `value`, or why it is outside `range`.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("must be {} to {} (got {value})", range.start(), range.end()),
        })
    }
}

/// Normalises `NECTAR_AGENT_HOSTNAME` entries: trimmed, lowercase, empty ones skipped. A name is
/// compared without the port, so a port here is refused rather than silently never matching.
fn allowed_hosts(raw: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut hosts = Vec::new();
    for entry in raw.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        let valid = entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid {
            return Err(ConfigError::Invalid {
                name: "NECTAR_AGENT_HOSTNAME",
                reason: format!(
                    "`{entry}` is not a host name (letters, digits, `-`, `.`, `_`; no port)"
                ),
            });
        }
        hosts.push(entry.to_ascii_lowercase());
    }
    Ok(hosts)
}

impl Settings {
    /// Settings with defaults, for tests and embedding.
    pub fn new(license_key: impl Into<String>, server_url: &str, state_dir: PathBuf) -> Self {
        Self {
            license_key: license_key.into(),
            license_server_url: server_url.to_owned(),
            cloud_api_url: None,
            installation_id: None,
            deployment_type: "docker".into(),
            domain: None,
            state_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            roots: nectar_client::token::TrustRoots::compiled(),
            activation_file: None,
            product_version: env!("CARGO_PKG_VERSION").into(),
            clock_tolerance_secs: 300,
            usage_flush_secs: 10,
            allowed_hosts: Vec::new(),
            usage_max_quantity: DEFAULT_USAGE_MAX_QUANTITY,
            usage_buffer_max_events: DEFAULT_USAGE_BUFFER_MAX_EVENTS,
        }
    }

    /// The client configuration these settings describe.
    pub fn client_config(&self) -> nectar_client::ClientConfig {
        let mut config =
            nectar_client::ClientConfig::new(self.license_key.clone(), self.state_dir.clone());
        config.installation_id = self.installation_id.clone();
        config.version = self.product_version.clone();
        config.domain = self.domain.clone();
        config.clock_tolerance_secs = self.clock_tolerance_secs;
        config.with_roots(self.roots.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment_names_and_a_missing_key_is_refused() {
        let cli = Cli::try_parse_from([
            "nectar-agent",
            "--license-key",
            "a.b.c",
            "--state-dir",
            "/tmp/x",
            "check",
        ])
        .expect("parses");
        assert_eq!(cli.command, Some(Command::Check));
        let s = cli.options.settings().expect("settings");
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.clock_tolerance_secs, 300);

        let cli = Cli::try_parse_from(["nectar-agent", "--license-key", " "]).expect("parses");
        assert!(matches!(
            cli.options.settings(),
            Err(ConfigError::MissingKey)
        ));
    }

    #[test]
    fn settings_that_once_added_trust_are_refused_not_ignored() {
        for name in RETIRED_TRUST_SETTINGS {
            let refused = Options::refuse_retired(|n| n == *name);
            assert!(
                matches!(&refused, Err(ConfigError::Trust(m)) if m.contains(name)),
                "{name}: {refused:?}"
            );
        }
        assert!(Options::refuse_retired(|_| false).is_ok());
    }

    #[test]
    fn a_clock_tolerance_over_an_hour_is_refused() {
        let cli = Cli::try_parse_from([
            "nectar-agent",
            "--license-key",
            "k",
            "--clock-tolerance-secs",
            "86400",
        ])
        .expect("parses");
        assert!(matches!(
            cli.options.settings(),
            Err(ConfigError::Invalid {
                name: "NECTAR_CLOCK_TOLERANCE_SECS",
                ..
            })
        ));
    }

    #[test]
    fn api_hardening_settings_have_safe_defaults_and_are_range_checked() {
        let cli =
            Cli::try_parse_from(["nectar-agent", "--license-key", "k", "token"]).expect("parses");
        assert_eq!(cli.command, Some(Command::Token));
        let s = cli.options.settings().expect("settings");
        assert!(s.allowed_hosts.is_empty());
        assert_eq!(s.usage_max_quantity, 10_000);
        assert_eq!(s.usage_buffer_max_events, 100_000);

        let cli = Cli::try_parse_from([
            "nectar-agent",
            "--license-key",
            "k",
            "--agent-hostname",
            " Nectar-Agent ,agent.internal,",
            "--usage-max-quantity",
            "1000000",
            "--usage-buffer-max-events",
            "5",
        ])
        .expect("parses");
        let s = cli.options.settings().expect("settings");
        assert_eq!(s.allowed_hosts, ["nectar-agent", "agent.internal"]);
        assert_eq!(s.usage_max_quantity, MAX_QUANTITY);
        assert_eq!(s.usage_buffer_max_events, 5);

        for (flag, value, name) in [
            ("--usage-max-quantity", "0", "NECTAR_USAGE_MAX_QUANTITY"),
            (
                "--usage-max-quantity",
                "1000001",
                "NECTAR_USAGE_MAX_QUANTITY",
            ),
            (
                "--usage-buffer-max-events",
                "0",
                "NECTAR_USAGE_BUFFER_MAX_EVENTS",
            ),
            (
                "--agent-hostname",
                "nectar-agent:7878",
                "NECTAR_AGENT_HOSTNAME",
            ),
        ] {
            let cli = Cli::try_parse_from(["nectar-agent", "--license-key", "k", flag, value])
                .expect("parses");
            assert!(
                matches!(cli.options.settings(), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{flag} {value}"
            );
        }
    }
}
