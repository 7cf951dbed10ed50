//! AWS SDK configuration: one loader for every function and tool. `AWS_ENDPOINT_URL` (and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>`) point the SDK at the local emulator.
//!
//! Every client has connect and operation timeouts sized to who waits for it ([`Deadline`]): a
//! request path must answer well inside its caller's patience even when a dependency hangs —
//! the SDK's defaults wait indefinitely for a response, so on AWS a slow dependency would cost the
//! whole Lambda timeout per call and pile up concurrency. A timeout is a dispatch/timeout error,
//! which `adapters::dynamo::table::sdk_error` (and each adapter) maps to 503 with `Retry-After`.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Who waits for the AWS calls a process makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// An API request (an installation or an operator waits): answer within ~1 s, dependency
    /// hung or not.
    Request,
    /// A background job (queue consumer, schedule, CLI): may wait longer, retries more.
    Background,
}

/// Local override of the request profile's operation timeout, in milliseconds: the emulator on a
/// loaded 2-core test machine is far slower than DynamoDB (`make test` sets it).
pub const OPERATION_TIMEOUT_OVERRIDE: &str = "NECTAR_AWS_OPERATION_TIMEOUT_MS";

impl Deadline {
    /// The timeouts of this profile. Request: connect 300 ms, 600 ms per attempt, 900 ms in all
    /// (two attempts fit only when the first fails fast); background: 1 s, 5 s, 20 s.
    pub fn timeouts(self) -> TimeoutConfig {
        let (connect, attempt, operation) = match self {
            Self::Request => {
                let total = std::env::var(OPERATION_TIMEOUT_OVERRIDE)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|ms| *ms > 0);
                match total {
                    Some(ms) => (
                        Duration::from_millis(ms.min(1_000)),
                        Duration::from_millis(ms),
                        Duration::from_millis(ms),
                    ),
                    None => (
                        Duration::from_millis(300),
                        Duration::from_millis(600),
                        Duration::from_millis(900),
                    ),
                }
            }
            Self::Background => (
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(20),
            ),
        };
        TimeoutConfig::builder()
            .connect_timeout(connect)
            .operation_attempt_timeout(attempt)
            .operation_timeout(operation)
            .build()
    }

    /// The retry policy: request paths try twice, background jobs three times (standard mode,
    /// exponential backoff with jitter, throttling-aware).
    pub fn retry(self) -> RetryConfig {
        match self {
            Self::Request => RetryConfig::standard().with_max_attempts(2),
            Self::Background => RetryConfig::standard().with_max_attempts(3),
        }
    }
}

/// Loads the shared SDK configuration from the environment, for request paths.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_config_for(Deadline::Request).await
}

/// Loads the shared SDK configuration from the environment, with `deadline`'s timeouts.
pub async fn sdk_config_for(deadline: Deadline) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(deadline.timeouts())
        .retry_config(deadline.retry())
        .load()
        .await
}

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::kms::{KmsSigner, load_key_ring};
use crate::config::{Config, ConfigError};
use crate::token::{KeyRing, KeyRingError};

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Configuration is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The signing keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyRingError),
}

/// The store on `TABLE_NAME`.
pub fn store(sdk: &aws_config::SdkConfig, config: &Config) -> Result<DynamoStore, InitError> {
    Ok(DynamoStore::new_with_table(
        aws_sdk_dynamodb::Client::new(sdk),
        config.table_name()?,
    ))
}

/// The key ring of the license keys. With `LICENSE_KEYS_JWKS` (delivered at deploy time) it is
/// built from configuration — a cold start needs no KMS call, so a KMS outage or throttling
/// during a cold-start burst cannot take validation down — and the configured keys are then
/// checked against KMS in the background, a mismatch logged as an error. Without it, the keys
/// are fetched once from KMS `GetPublicKey`.
pub async fn key_ring(sdk: &aws_config::SdkConfig, config: &Config) -> Result<KeyRing, InitError> {
    let kms = aws_sdk_kms::Client::new(sdk);
    if let Some(jwks) = config.license_keys_jwks() {
        let ring = KeyRing::from_jwks(config.issuer(), jwks)?;
        let (check, issuer, refs) = (
            ring.jwks(),
            config.issuer().to_owned(),
            config.trusted_key_ids()?,
        );
        tokio::spawn(async move { check_against_kms(&kms, &issuer, &refs, &check).await });
        return Ok(ring);
    }
    Ok(load_key_ring(&kms, config.issuer(), &config.trusted_key_ids()?).await?)
}

/// Compares the configured public keys with KMS's: logs a mismatch (a stale deployment
/// parameter) as an error, an unreachable KMS as a warning. Returns whether they match.
pub async fn check_against_kms(
    kms: &aws_sdk_kms::Client,
    issuer: &str,
    key_refs: &[String],
    configured: &crate::token::Jwks,
) -> Option<bool> {
    match load_key_ring(kms, issuer, key_refs).await {
        Ok(fetched) => {
            let fetched = fetched.jwks();
            let same = fetched.keys.len() == configured.keys.len()
                && fetched.keys.iter().all(|k| {
                    configured
                        .keys
                        .iter()
                        .any(|c| c.kid == k.kid && c.x == k.x && c.y == k.y)
                });
            if same {
                tracing::info!("LICENSE_KEYS_JWKS matches the KMS keys");
            } else {
                tracing::error!(
                    "LICENSE_KEYS_JWKS differs from the KMS keys: redeploy with `nectar-admin trust jwks`"
                );
            }
            Some(same)
        }
        Err(e) => {
            tracing::warn!(error = %e, "KMS unreachable; LICENSE_KEYS_JWKS not checked this time");
            None
        }
    }
}

/// The lease signer (`LEASE_SIGNING_KEY_ID`) and the ring of the license keys plus the lease
/// key, each fetched once.
pub async fn lease_signer_and_key_ring(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<(KmsSigner, KeyRing), InitError> {
    let kms = aws_sdk_kms::Client::new(sdk);
    Ok(crate::adapters::kms::load_lease_signer_and_key_ring(
        &kms,
        config.issuer(),
        &config.trusted_key_ids()?,
        config.lease_signing_key_id()?,
    )
    .await?)
}

/// The lease signer alone (`LEASE_SIGNING_KEY_ID`), for offline activations.
pub async fn lease_signer(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<KmsSigner, InitError> {
    let kms = aws_sdk_kms::Client::new(sdk);
    Ok(KmsSigner::connect(kms, config.lease_signing_key_id()?).await?)
}

/// The ring of the license keys plus the lease key (public keys only), for the JWKS.
pub async fn published_key_ring(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<KeyRing, InitError> {
    Ok(lease_signer_and_key_ring(sdk, config).await?.1)
}

/// The signer for `SIGNING_KEY_ID`.
pub async fn signer(sdk: &aws_config::SdkConfig, config: &Config) -> Result<KmsSigner, InitError> {
    let kms = aws_sdk_kms::Client::new(sdk);
    Ok(KmsSigner::connect(kms, config.signing_key_id()?).await?)
}

/// The usage queue at `USAGE_QUEUE_URL`.
pub fn usage_queue(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<crate::adapters::sqs::SqsUsageQueue, InitError> {
    Ok(crate::adapters::sqs::SqsUsageQueue::new(
        aws_sdk_sqs::Client::new(sdk),
        config.usage_queue_url()?,
    ))
}

/// The events topic at `EVENTS_TOPIC_ARN`.
pub fn events_topic(
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<crate::adapters::sns::SnsPublisher, InitError> {
    Ok(crate::adapters::sns::SnsPublisher::new(
        aws_sdk_sns::Client::new(sdk),
        config.events_topic_arn()?,
    ))
}
