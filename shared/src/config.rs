//! Configuration: the only place that knows environment variable names. Read once at cold start;
//! a function fails fast, naming the variable, when something it needs is missing or malformed.

use std::fmt;

use crate::domain::TokenHash;

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("environment variable {name} is invalid: {why}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// Everything any function may need; each function asks for the parts it uses.
#[derive(Clone)]
pub struct Config {
    table_name: Option<String>,
    signing_key_id: Option<String>,
    lease_signing_key_id: Option<String>,
    verify_key_ids: Vec<String>,
    issuer: String,
    license_keys_jwks: Option<crate::token::Jwks>,
    admin: Option<AdminAuth>,
    heartbeat_interval_seconds: u32,
    activations_per_hour: u64,
    deployed_version: String,
    usage_queue_url: Option<String>,
    usage_group_concurrency: usize,
    events_topic_arn: Option<String>,
    workflow_http_allowed_hosts: Vec<nectar_workflow::HostPattern>,
    workflow_http_allow_plain: bool,
    workflow_http_allow_private: bool,
    price_list: crate::domain::revenue::PriceList,
}

/// Default `iss` claim.
pub const DEFAULT_ISSUER: &str = "nectar-cloud";
/// Default number of usage counters the processor writes at once.
pub const DEFAULT_USAGE_GROUP_CONCURRENCY: usize = 8;
/// Default heartbeat interval: hourly, as the installation agent beats.
pub const DEFAULT_HEARTBEAT_INTERVAL_SECONDS: u32 = 3600;

/// A `true`/`false` variable (absent: `false`).
fn flag(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match get(name).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ConfigError::Invalid {
            name,
            why: "must be true or false",
        }),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let heartbeat_interval_seconds = match get("HEARTBEAT_INTERVAL_SECONDS") {
            None => DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|s| (60..=86_400).contains(s))
                .ok_or(ConfigError::Invalid {
                    name: "HEARTBEAT_INTERVAL_SECONDS",
                    why: "must be a whole number of seconds from 60 to 86400",
                })?,
        };
        let admin = get("ADMIN_TOKEN_SHA256")
            .map(|hex_hash| AdminAuth::from_hex_sha256(&hex_hash))
            .transpose()?;
        Ok(Self {
            table_name: get("TABLE_NAME"),
            signing_key_id: get("SIGNING_KEY_ID"),
            lease_signing_key_id: get("LEASE_SIGNING_KEY_ID"),
            verify_key_ids: get("VERIFY_KEY_IDS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            issuer: get("TOKEN_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.into()),
            license_keys_jwks: get("LICENSE_KEYS_JWKS")
                .map(|v| {
                    serde_json::from_str::<crate::token::Jwks>(&v)
                        .ok()
                        .filter(|j| !j.keys.is_empty())
                        .ok_or(ConfigError::Invalid {
                            name: "LICENSE_KEYS_JWKS",
                            why: "must be a JWK set with at least one key (nectar-admin trust jwks)",
                        })
                })
                .transpose()?,
            admin,
            heartbeat_interval_seconds,
            activations_per_hour: match get("ACTIVATIONS_PER_HOUR") {
                None => crate::service::heartbeat::DEFAULT_ACTIVATIONS_PER_HOUR,
                Some(v) => v.parse().ok().filter(|n| (1..=100_000).contains(n)).ok_or(
                    ConfigError::Invalid {
                        name: "ACTIVATIONS_PER_HOUR",
                        why: "must be a whole number from 1 to 100000",
                    },
                )?,
            },
            price_list: match get("PRICE_LIST") {
                None => crate::domain::revenue::PriceList::default(),
                Some(v) => crate::domain::revenue::PriceList::from_json(&v).map_err(|_| {
                    ConfigError::Invalid {
                        name: "PRICE_LIST",
                        why: "must be a JSON price list pricing every plan (see README, Revenue)",
                    }
                })?,
            },
            usage_queue_url: get("USAGE_QUEUE_URL"),
            events_topic_arn: get("EVENTS_TOPIC_ARN"),
            workflow_http_allowed_hosts: match get("WORKFLOW_HTTP_ALLOWED_HOSTS") {
                None => Vec::new(),
                Some(v) => v
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(nectar_workflow::HostPattern::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|_| ConfigError::Invalid {
                        name: "WORKFLOW_HTTP_ALLOWED_HOSTS",
                        why: "must be comma-separated host names or *.suffix patterns",
                    })?,
            },
            workflow_http_allow_plain: flag(&get, "WORKFLOW_HTTP_ALLOW_PLAIN_HTTP")?,
            workflow_http_allow_private: flag(&get, "WORKFLOW_HTTP_ALLOW_PRIVATE_NETWORKS")?,
            usage_group_concurrency: match get("USAGE_GROUP_CONCURRENCY") {
                None => DEFAULT_USAGE_GROUP_CONCURRENCY,
                Some(v) => {
                    v.parse()
                        .ok()
                        .filter(|n| (1..=32).contains(n))
                        .ok_or(ConfigError::Invalid {
                            name: "USAGE_GROUP_CONCURRENCY",
                            why: "must be a whole number from 1 to 32",
                        })?
                }
            },
            deployed_version: get("DEPLOYED_VERSION")
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
        })
    }

    /// `TABLE_NAME`: the DynamoDB table.
    pub fn table_name(&self) -> Result<&str, ConfigError> {
        self.table_name
            .as_deref()
            .ok_or(ConfigError::Missing("TABLE_NAME"))
    }

    /// `SIGNING_KEY_ID`: the KMS key (id, ARN or alias) that signs license keys.
    pub fn signing_key_id(&self) -> Result<&str, ConfigError> {
        self.signing_key_id
            .as_deref()
            .ok_or(ConfigError::Missing("SIGNING_KEY_ID"))
    }

    /// `LEASE_SIGNING_KEY_ID`: the KMS key (id, ARN or alias) that signs leases — and nothing
    /// else: a key of its own, so the public heartbeat function cannot mint license keys.
    pub fn lease_signing_key_id(&self) -> Result<&str, ConfigError> {
        self.lease_signing_key_id
            .as_deref()
            .ok_or(ConfigError::Missing("LEASE_SIGNING_KEY_ID"))
    }

    /// `LICENSE_KEYS_JWKS`: the license keys' public keys delivered by the deployment
    /// (`nectar-admin trust jwks`), so a verifying function starts without calling KMS.
    pub fn license_keys_jwks(&self) -> Option<&crate::token::Jwks> {
        self.license_keys_jwks.as_ref()
    }

    /// License keys whose signatures verify: the signing key, then `VERIFY_KEY_IDS`
    /// (comma-separated keys kept through a rotation).
    pub fn trusted_key_ids(&self) -> Result<Vec<String>, ConfigError> {
        let mut ids = vec![self.signing_key_id()?.to_owned()];
        ids.extend(self.verify_key_ids.iter().cloned());
        ids.dedup();
        Ok(ids)
    }

    /// `USAGE_QUEUE_URL`: the SQS queue usage events go through.
    pub fn usage_queue_url(&self) -> Result<&str, ConfigError> {
        self.usage_queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("USAGE_QUEUE_URL"))
    }

    /// The price list (`PRICE_LIST`, JSON; the built-in USD list when unset).
    pub fn price_list(&self) -> &crate::domain::revenue::PriceList {
        &self.price_list
    }

    /// Outbound calls of workflow `http` nodes: `WORKFLOW_HTTP_ALLOWED_HOSTS` (comma-separated
    /// hosts or `*.suffix` patterns; empty: every call refused), and for local tests only
    /// `WORKFLOW_HTTP_ALLOW_PLAIN_HTTP` (default https only) and
    /// `WORKFLOW_HTTP_ALLOW_PRIVATE_NETWORKS` (default: loopback, private and link-local
    /// addresses refused whatever the name).
    pub fn workflow_http(&self) -> nectar_workflow::HttpSettings {
        nectar_workflow::HttpSettings {
            allowed_hosts: self.workflow_http_allowed_hosts.clone(),
            allow_plain_http: self.workflow_http_allow_plain,
            allow_private_networks: self.workflow_http_allow_private,
            timeout: std::time::Duration::from_secs(5),
            max_response_bytes: 256 * 1024,
        }
    }

    /// `EVENTS_TOPIC_ARN`: the SNS topic lifecycle notices are published to.
    pub fn events_topic_arn(&self) -> Result<&str, ConfigError> {
        self.events_topic_arn
            .as_deref()
            .ok_or(ConfigError::Missing("EVENTS_TOPIC_ARN"))
    }

    /// `USAGE_GROUP_CONCURRENCY` (1..=32, default 8): counters written at once per batch.
    pub fn usage_group_concurrency(&self) -> usize {
        self.usage_group_concurrency
    }

    /// `TOKEN_ISSUER` (default `nectar-cloud`): the `iss` of every token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `ADMIN_TOKEN_SHA256`: hex SHA-256 of the admin bearer token.
    pub fn admin_auth(&self) -> Result<&AdminAuth, ConfigError> {
        self.admin
            .as_ref()
            .ok_or(ConfigError::Missing("ADMIN_TOKEN_SHA256"))
    }

    /// `HEARTBEAT_INTERVAL_SECONDS` (60..=86400, default 3600).
    pub fn heartbeat_interval(&self) -> time::Duration {
        time::Duration::seconds(i64::from(self.heartbeat_interval_seconds))
    }

    /// `ACTIVATIONS_PER_HOUR`: new installation activations per license per hour (1..=100000,
    /// default 20; the first while no seat is held always passes).
    pub fn activations_per_hour(&self) -> u64 {
        self.activations_per_hour
    }

    /// `DEPLOYED_VERSION` (default: the crate version).
    pub fn deployed_version(&self) -> &str {
        &self.deployed_version
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("signing_key_id", &self.signing_key_id)
            .field("verify_key_ids", &self.verify_key_ids)
            .field("issuer", &self.issuer)
            .field("admin", &self.admin.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// The bootstrap token's check: admin bearer tokens against the configured SHA-256, in constant
/// time. Only the hash is ever held, so neither config dumps nor memory reveal the token. The
/// bootstrap token acts as the `admin` operator `bootstrap` (see `crate::domain::operator`).
#[derive(Clone)]
pub struct AdminAuth {
    hash: TokenHash,
}

impl AdminAuth {
    /// From 64 hex characters.
    pub fn from_hex_sha256(hex_hash: &str) -> Result<Self, ConfigError> {
        TokenHash::from_hex(hex_hash)
            .map(|hash| Self { hash })
            .ok_or(ConfigError::Invalid {
                name: "ADMIN_TOKEN_SHA256",
                why: "must be 64 hex characters (the SHA-256 of the admin token)",
            })
    }

    /// The hex SHA-256 of `token`: what to store in the secret.
    pub fn hash_token(token: &str) -> String {
        TokenHash::of(token).to_hex()
    }

    /// Whether `token` is the bootstrap token.
    pub fn accepts(&self, token: &str) -> bool {
        self.accepts_hash(&TokenHash::of(token))
    }

    /// Whether `hash` is the bootstrap token's (constant time).
    pub fn accepts_hash(&self, hash: &TokenHash) -> bool {
        self.hash.matches(hash)
    }
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminAuth(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn missing_required_variables_are_named() {
        let c = config(&[]).expect("nothing is required up front");
        assert_eq!(c.table_name(), Err(ConfigError::Missing("TABLE_NAME")));
        assert_eq!(
            c.signing_key_id(),
            Err(ConfigError::Missing("SIGNING_KEY_ID"))
        );
        assert!(matches!(
            c.admin_auth(),
            Err(ConfigError::Missing("ADMIN_TOKEN_SHA256"))
        ));
        assert_eq!(c.issuer(), DEFAULT_ISSUER);
    }

    #[test]
    fn a_malformed_admin_hash_fails_at_load_time() {
        let err = config(&[("ADMIN_TOKEN_SHA256", "not-hex")]).expect_err("must fail");
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "ADMIN_TOKEN_SHA256",
                ..
            }
        ));
    }

    #[test]
    fn heartbeat_interval_is_bounded() {
        assert!(config(&[("HEARTBEAT_INTERVAL_SECONDS", "30")]).is_err());
        assert!(config(&[("HEARTBEAT_INTERVAL_SECONDS", "abc")]).is_err());
        let c = config(&[("HEARTBEAT_INTERVAL_SECONDS", "600")]).expect("valid");
        assert_eq!(c.heartbeat_interval(), time::Duration::minutes(10));
    }

    #[test]
    fn trusted_keys_start_with_the_signing_key() {
        let c = config(&[
            ("SIGNING_KEY_ID", "alias/new"),
            ("VERIFY_KEY_IDS", " old-1, ,old-2"),
        ])
        .expect("valid");
        assert_eq!(
            c.trusted_key_ids().expect("set"),
            vec!["alias/new", "old-1", "old-2"]
        );
    }

    #[test]
    fn admin_auth_accepts_only_the_token_whose_hash_is_configured() {
        let auth = AdminAuth::from_hex_sha256(&AdminAuth::hash_token("s3cret")).expect("valid");
        assert!(auth.accepts("s3cret"));
        assert!(!auth.accepts("s3cret "));
        assert!(!auth.accepts(""));
        assert_eq!(format!("{auth:?}"), "AdminAuth(<redacted>)");
    }

    #[test]
    fn workflow_http_defaults_to_refusing_every_call_and_parses_the_allow_list() {
        let none = config(&[]).expect("valid").workflow_http();
        assert!(none.allowed_hosts.is_empty());
        assert!(!none.allow_plain_http);
        let some = config(&[
            (
                "WORKFLOW_HTTP_ALLOWED_HOSTS",
                "api.acme.com, *.hooks.example.com",
            ),
            ("WORKFLOW_HTTP_ALLOW_PLAIN_HTTP", "true"),
        ])
        .expect("valid")
        .workflow_http();
        assert_eq!(some.allowed_hosts.len(), 2);
        assert!(some.allowed_hosts[1].matches("a.hooks.example.com"));
        assert!(some.allow_plain_http);
        assert!(config(&[("WORKFLOW_HTTP_ALLOWED_HOSTS", "http://x")]).is_err());
        assert!(config(&[("WORKFLOW_HTTP_ALLOW_PLAIN_HTTP", "yes")]).is_err());
        assert!(!none.allow_private_networks);
    }
}
