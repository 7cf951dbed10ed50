//! KMS adapter: ES256 signing with `Sign` (RAW messages; the emulator ignores `DIGEST`) and the
//! key ring loaded with `GetPublicKey` once per process — never per request (that API allows
//! 5 requests per second per account).

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

use crate::domain::ports::TokenSigner;
use crate::token::{KeyRing, KeyRingError, SignError};

/// Signs with one KMS key. Construct with [`KmsSigner::connect`], which resolves aliases.
#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: Client,
    key_arn: String,
    kid: String,
}

/// A public key as KMS returns it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// Our key id: the KMS key's UUID (never the ARN, which would publish the account id).
    pub kid: String,
    /// SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
}

/// Fetches the public key of `key_ref` (key id, ARN, alias name or alias ARN).
pub async fn public_key(
    client: &Client,
    key_ref: &str,
) -> Result<(String, PublicKey), KeyRingError> {
    let fetch = |source: Box<dyn std::error::Error + Send + Sync>| KeyRingError::Fetch {
        kid: key_ref.to_owned(),
        source,
    };
    let out = client
        .get_public_key()
        .key_id(key_ref)
        .send()
        .await
        .map_err(|e| fetch(Box::new(e)))?;
    let arn = out
        .key_id
        .ok_or_else(|| fetch("GetPublicKey returned no key id".into()))?;
    let der = out
        .public_key
        .ok_or_else(|| fetch("GetPublicKey returned no public key".into()))?
        .into_inner();
    let kid = arn.rsplit('/').next().unwrap_or(&arn).to_owned();
    Ok((arn, PublicKey { kid, spki_der: der }))
}

/// Loads every key in `key_refs` (signing key first, then keys kept for rotation) into a ring.
pub async fn load_key_ring(
    client: &Client,
    issuer: &str,
    key_refs: &[String],
) -> Result<KeyRing, KeyRingError> {
    Ok(load_keys(client, issuer, key_refs).await?.1)
}

/// The lease signer (`lease_key_ref`) and the ring of the license keys (`license_key_refs`) plus
/// the lease key, with one `GetPublicKey` per key: the heartbeat function verifies license keys
/// and signs leases, and must not fetch a key twice at cold start.
pub async fn load_lease_signer_and_key_ring(
    client: &Client,
    issuer: &str,
    license_key_refs: &[String],
    lease_key_ref: &str,
) -> Result<(KmsSigner, KeyRing), KeyRingError> {
    let (_, mut ring) = load_keys(client, issuer, license_key_refs).await?;
    let (key_arn, lease) = public_key(client, lease_key_ref).await?;
    ring.add(
        crate::token::TokenKind::Lease,
        [(lease.kid.as_str(), lease.spki_der.as_slice())],
    )?;
    Ok((
        KmsSigner {
            client: client.clone(),
            key_arn,
            kid: lease.kid,
        },
        ring,
    ))
}

/// The ring of `key_refs`, and the ARN and kid of the first.
async fn load_keys(
    client: &Client,
    issuer: &str,
    key_refs: &[String],
) -> Result<(Option<(String, String)>, KeyRing), KeyRingError> {
    let mut keys = Vec::with_capacity(key_refs.len());
    let mut first = None;
    for key_ref in key_refs {
        let (arn, key) = public_key(client, key_ref).await?;
        if first.is_none() {
            first = Some((arn, key.kid.clone()));
        }
        keys.push(key);
    }
    let ring = KeyRing::from_spki_der(
        issuer,
        keys.iter().map(|k| (k.kid.as_str(), k.spki_der.as_slice())),
    )?;
    Ok((first, ring))
}

impl KmsSigner {
    /// Resolves `key_ref` (an alias is fine) to the key it names, once.
    pub async fn connect(client: Client, key_ref: &str) -> Result<Self, KeyRingError> {
        let (key_arn, public) = public_key(&client, key_ref).await?;
        Ok(Self {
            client,
            key_arn,
            kid: public.kid,
        })
    }
}

#[async_trait]
impl TokenSigner for KmsSigner {
    fn kid(&self) -> &str {
        &self.kid
    }

    #[tracing::instrument(skip_all, fields(kid = %self.kid, bytes = message.len()))]
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let out = self
            .client
            .sign()
            .key_id(&self.key_arn)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| match e.code() {
                // KMS's own transient failures (its 5xx: internal error, a dependency that timed
                // out) are as transient as throttling: 503 with Retry-After.
                Some(
                    "ThrottlingException" | "KMSInternalException" | "DependencyTimeoutException",
                ) => SignError::Throttled,
                _ if e
                    .raw_response()
                    .is_some_and(|r| r.status().is_server_error()) =>
                {
                    SignError::Throttled
                }
                // No answer from KMS is as transient as throttling: 503 with Retry-After.
                _ if matches!(
                    e,
                    SdkError::DispatchFailure(_)
                        | SdkError::TimeoutError(_)
                        | SdkError::ResponseError(_)
                ) =>
                {
                    SignError::Throttled
                }
                _ => SignError::Backend(Box::new(e)),
            })?;
        out.signature
            .map(Blob::into_inner)
            .ok_or(SignError::BadSignature)
    }
}
