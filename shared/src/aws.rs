//! AWS SDK configuration: one loader for every function and tool. `AWS_ENDPOINT_URL` (and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>`) point the SDK at the local emulator.

/// Loads the shared SDK configuration from the environment.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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

/// The key ring of every trusted key, fetched once (cold start) from KMS `GetPublicKey`.
pub async fn key_ring(sdk: &aws_config::SdkConfig, config: &Config) -> Result<KeyRing, InitError> {
    let kms = aws_sdk_kms::Client::new(sdk);
    Ok(load_key_ring(&kms, config.issuer(), &config.trusted_key_ids()?).await?)
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
