//! The operator's side of installation trust: the root KMS key (used only here, never by a
//! function — no function role may `kms:Sign` with it), its public keys exported for the
//! installation build (`trust roots` → the JWKS compiled into the agent), endorsements of the
//! license and lease signing keys (`trust endorse`, stored for the JWKS function to publish), and
//! offline activation files.

use anyhow::{Context, Result};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::kms::{KmsSigner, public_key};
use shared::domain::ports::{EndorsementRegistry, StoredEndorsement};
use shared::token::{Jwks, TokenKind, sign_endorsement};
use time::{Duration, OffsetDateTime};

/// The key behind `alias`, created (ECC P-256, sign/verify) with the alias if missing.
pub async fn ensure_key(
    kms: &aws_sdk_kms::Client,
    alias: &str,
    description: &str,
) -> Result<String> {
    if let Ok(out) = kms.describe_key().key_id(alias).send().await {
        return out.key_metadata.map(|m| m.key_id).context("key metadata");
    }
    let key_id = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .description(description)
        .send()
        .await
        .with_context(|| format!("creating {alias}"))?
        .key_metadata
        .map(|m| m.key_id)
        .context("key metadata")?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&key_id)
        .send()
        .await
        .with_context(|| format!("creating the alias {alias}"))?;
    Ok(key_id)
}

/// The root public keys as a JWKS: the file a release build of the agent compiles in
/// (`NECTAR_TRUST_ROOTS_FILE`), and what development builds read from `NECTAR_DEV_TRUST_ROOTS`.
pub async fn roots(kms: &aws_sdk_kms::Client, root_refs: &[String]) -> Result<Jwks> {
    let ring = shared::adapters::kms::load_key_ring(kms, "roots", root_refs).await?;
    Ok(Jwks {
        endorsements: Vec::new(),
        ..ring.jwks()
    })
}

/// Signs, with the root key, an endorsement of `key_ref` for tokens of `use_` for `days`, and
/// stores it for the JWKS function to publish.
#[allow(clippy::too_many_arguments)]
pub async fn endorse(
    kms: &aws_sdk_kms::Client,
    store: &DynamoStore,
    issuer: &str,
    root_ref: &str,
    key_ref: &str,
    use_: TokenKind,
    days: i64,
    now: OffsetDateTime,
) -> Result<StoredEndorsement> {
    let root = KmsSigner::connect(kms.clone(), root_ref).await?;
    let (_, key) = public_key(kms, key_ref).await?;
    let expires_at = now + Duration::days(days);
    let token = sign_endorsement(
        &root,
        issuer,
        &key.kid,
        &key.spki_der,
        use_,
        now.unix_timestamp(),
        expires_at.unix_timestamp(),
    )
    .await?;
    let endorsement = StoredEndorsement {
        kid: key.kid,
        use_,
        token,
        expires_at,
    };
    store.put_endorsement(&endorsement).await?;
    Ok(endorsement)
}

/// `license` or `lease`.
pub fn token_kind(s: &str) -> Result<TokenKind> {
    match s {
        "license" => Ok(TokenKind::License),
        "lease" => Ok(TokenKind::Lease),
        other => anyhow::bail!("--use must be license or lease, not `{other}`"),
    }
}
