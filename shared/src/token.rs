//! Signed tokens: license-key claims, ES256 signing through a [`TokenSigner`] (KMS in production)
//! and offline verification against a pinned key ring that publishes itself as a JWKS.
//!
//! Signing assembles the JWS compact form by hand because the signature comes from KMS, which no
//! JWT crate drives; verification is `jsonwebtoken` with the algorithm pinned to ES256.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};

use secrecy::{ExposeSecret, SecretString};

use crate::domain::Validated;
use crate::domain::ports::TokenSigner;

/// KMS signs at most 4096 bytes with `MessageType=RAW`; we refuse larger input up front.
pub const MAX_SIGNING_INPUT: usize = 4096;

/// Longest token we even try to parse; real keys are about 1 KB.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The kind every token carries, so a lease can never pass as a license key nor the reverse.
pub use nectar_protocol::token::TokenKind;

/// The claims of a license key, read into validated ids.
pub type LicenseClaims = nectar_protocol::token::LicenseClaims<Validated>;

/// The claims of an installation lease (see [`nectar_protocol::token::LeaseClaims`]), read into
/// validated ids. Agents verify it against the JWKS with no network.
pub type LeaseClaims = nectar_protocol::token::LeaseClaims<Validated>;

/// A public key of the ring in JWK form, and the set served at `/.well-known/jwks.json`.
pub use nectar_protocol::token::{Jwk, Jwks};

/// A license key as received. Held as a [`SecretString`], so its `Debug` never prints the token:
/// keys must stay out of logs.
#[derive(Clone)]
pub struct LicenseKey(SecretString);

impl LicenseKey {
    /// Wraps untrusted text; all checking happens in [`KeyRing::verify_license`].
    pub fn new(raw: impl Into<String>) -> Self {
        Self(SecretString::from(raw.into()))
    }

    /// The token text, for sending to the customer or verifying.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for LicenseKey {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for LicenseKey {}

// `SecretString` is already redacted; this keeps the short form logs and tests have always shown.
impl fmt::Debug for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LicenseKey(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for LicenseKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// Why a token was not accepted. All of these answer `INVALID_KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejection {
    /// Not three base64url parts, oversize, or unparsable header.
    #[error("the license key is malformed")]
    Malformed,
    /// Header algorithm is not ES256.
    #[error("the license key uses an algorithm other than ES256")]
    Algorithm,
    /// `kid` absent or not one of our keys.
    #[error("the license key was not signed by a Nectar signing key")]
    UnknownKey,
    /// Signature does not verify.
    #[error("the license key signature is invalid")]
    Signature,
    /// Claims missing, mistyped, or from another issuer.
    #[error("the license key claims are invalid")]
    Claims,
    /// A validly signed token of another kind (e.g. a lease).
    #[error("the token is not a license key")]
    WrongKind,
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The JWS signing input exceeds what KMS signs as a raw message.
    #[error("signing input is {0} bytes; the limit is {MAX_SIGNING_INPUT}")]
    TooLarge(usize),
    /// The signer returned something that is not a DER ECDSA P-256 signature.
    #[error("signer returned an invalid signature")]
    BadSignature,
    /// KMS throttled the request.
    #[error("signing service throttled")]
    Throttled,
    /// KMS failed.
    #[error("signing service failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a public key could not be added to the ring.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// Not a P-256 SubjectPublicKeyInfo.
    #[error("key {kid} is not a P-256 public key")]
    NotP256 {
        /// The offending key id.
        kid: String,
    },
    /// Could not fetch the key.
    #[error("could not load public key {kid}")]
    Fetch {
        /// The key id or alias that failed.
        kid: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

struct RingKey {
    decoding: DecodingKey,
    jwk: Jwk,
}

/// The public keys we trust, fetched once per process and never per request.
///
/// Rotation: sign with the new key while the old one stays in the ring until every key it signed
/// has been reissued or expired.
pub struct KeyRing {
    issuer: String,
    keys: HashMap<String, RingKey>,
    order: Vec<String>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("issuer", &self.issuer)
            .field("kids", &self.order)
            .finish()
    }
}

impl KeyRing {
    /// Builds a ring from `(kid, SubjectPublicKeyInfo DER)` pairs, as KMS `GetPublicKey` returns.
    pub fn from_spki_der<'a>(
        issuer: impl Into<String>,
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, KeyRingError> {
        let mut ring = Self {
            issuer: issuer.into(),
            keys: HashMap::new(),
            order: Vec::new(),
        };
        for (kid, der) in keys {
            let not_p256 = || KeyRingError::NotP256 { kid: kid.into() };
            let public = p256::PublicKey::from_public_key_der(der).map_err(|_| not_p256())?;
            // jsonwebtoken's rust_crypto backend wants PEM, not bare SPKI DER.
            let pem = public
                .to_public_key_pem(LineEnding::LF)
                .map_err(|_| not_p256())?;
            let decoding = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| not_p256())?;
            let point = public.to_sec1_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(not_p256());
            };
            let jwk = Jwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: URL_SAFE_NO_PAD.encode(x),
                y: URL_SAFE_NO_PAD.encode(y),
                kid: kid.into(),
                alg: Some("ES256".into()),
                use_: Some("sig".into()),
            };
            if ring
                .keys
                .insert(kid.to_owned(), RingKey { decoding, jwk })
                .is_none()
            {
                ring.order.push(kid.to_owned());
            }
        }
        Ok(ring)
    }

    /// The issuer every accepted token must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The ring as a JWK set, in load order.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .order
                .iter()
                .filter_map(|kid| self.keys.get(kid).map(|k| k.jwk.clone()))
                .collect(),
        }
    }

    /// Verifies a license key offline: ES256 only (the header's `alg` is never trusted), a `kid`
    /// from this ring, a valid signature, well-formed claims from our issuer, and kind `license`.
    /// Expiry is *not* checked here: callers decide with their own clock so they can say EXPIRED.
    pub fn verify_license(&self, key: &LicenseKey) -> Result<LicenseClaims, KeyRejection> {
        let claims: LicenseClaims = self.verify(key.expose())?;
        if claims.typ != TokenKind::License {
            return Err(KeyRejection::WrongKind);
        }
        Ok(claims)
    }

    /// Verifies a lease offline, like [`KeyRing::verify_license`] but requiring kind `lease`.
    pub fn verify_lease(&self, token: &str) -> Result<LeaseClaims, KeyRejection> {
        let claims: LeaseClaims = self.verify(token)?;
        if claims.typ != TokenKind::Lease {
            return Err(KeyRejection::WrongKind);
        }
        Ok(claims)
    }

    fn verify<C: serde::de::DeserializeOwned + HasKind>(
        &self,
        token: &str,
    ) -> Result<C, KeyRejection> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(KeyRejection::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| KeyRejection::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(KeyRejection::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(KeyRejection::UnknownKey)?;

        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["iss", "iat", "exp", "jti"]);

        // One signature verification per token; only when the claims fail to decode do we peek
        // (without crypto) at the kind, so a lease is reported as WrongKind, not as Claims.
        match jsonwebtoken::decode::<C>(token, &key.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match classify(e) {
                KeyRejection::Claims if peek_kind(token).is_some_and(|k| k != C::KIND) => {
                    Err(KeyRejection::WrongKind)
                }
                other => Err(other),
            },
        }
    }
}

fn peek_kind(token: &str) -> Option<TokenKind> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice::<KindOnly>(&payload)
        .ok()
        .map(|k| k.typ)
}

/// Claims types name the token kind they decode, so the ring can tell a mistyped token apart.
pub trait HasKind {
    /// The kind this claims type represents.
    const KIND: TokenKind;
}

impl HasKind for LicenseClaims {
    const KIND: TokenKind = TokenKind::License;
}

impl HasKind for LeaseClaims {
    const KIND: TokenKind = TokenKind::Lease;
}

#[derive(Deserialize)]
struct KindOnly {
    typ: TokenKind,
}

fn classify(e: jsonwebtoken::errors::Error) -> KeyRejection {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature | K::InvalidEcdsaKey => KeyRejection::Signature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => KeyRejection::Algorithm,
        K::InvalidToken | K::Base64(_) | K::Utf8(_) => KeyRejection::Malformed,
        _ => KeyRejection::Claims,
    }
}

/// Signs `claims` as an ES256 JWT with header `{alg, typ: "JWT", kid}`.
///
/// Refuses signing input over [`MAX_SIGNING_INPUT`] bytes (the KMS raw-message limit) before
/// calling the signer, and converts the signer's DER signature to the 64-byte `r‖s` JWS wants.
pub async fn sign_jwt<S, C>(signer: &S, claims: &C) -> Result<String, SignError>
where
    S: TokenSigner + ?Sized,
    C: Serialize,
{
    let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": signer.kid() });
    let header = serde_json::to_vec(&header).map_err(|e| SignError::Backend(e.into()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| SignError::Backend(e.into()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    if signing_input.len() > MAX_SIGNING_INPUT {
        return Err(SignError::TooLarge(signing_input.len()));
    }
    let der = signer.sign(signing_input.as_bytes()).await?;
    let signature = p256::ecdsa::Signature::from_der(&der).map_err(|_| SignError::BadSignature)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::local::LocalSigner;
    use crate::domain::{LicenseId, Plan};

    const ISSUER: &str = "nectar-test";

    fn claims(kind: TokenKind) -> serde_json::Value {
        let id = LicenseId::parse("NECTAR-ENTERPRISE-2026-7K2M9QXA").expect("valid");
        serde_json::json!({
            "iss": ISSUER,
            "typ": kind,
            "jti": id,
            "lic": id.product_line(),
            "cid": "0b7f3c8e-2f0c-4c1e-9d8a-3b2f1e0d9c8b",
            "iat": 1_790_000_000,
            "exp": 1_890_000_000,
            "feat": ["workflows", "analytics"],
            "limits": Plan::Enterprise.default_limits(),
            "domain_restrictions": ["*.acme.com"],
        })
    }

    fn ring_for(signers: &[&LocalSigner]) -> KeyRing {
        let ders: Vec<(String, Vec<u8>)> = signers
            .iter()
            .map(|s| (s.kid().to_owned(), s.spki_der()))
            .collect();
        KeyRing::from_spki_der(ISSUER, ders.iter().map(|(k, d)| (k.as_str(), d.as_slice())))
            .expect("valid keys")
    }

    async fn signed(signer: &LocalSigner, claims: &serde_json::Value) -> LicenseKey {
        LicenseKey::new(sign_jwt(signer, claims).await.expect("signs"))
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
    }

    #[tokio::test]
    async fn a_signed_license_key_verifies_and_yields_its_claims() {
        // Arrange
        let signer = LocalSigner::random("k1");
        let ring = ring_for(&[&signer]);
        // Act
        let key = signed(&signer, &claims(TokenKind::License)).await;
        let verified = ring.verify_license(&key).expect("valid key");
        // Assert
        assert_eq!(verified.jti.as_str(), "NECTAR-ENTERPRISE-2026-7K2M9QXA");
        assert_eq!(verified.lic, "NECTAR-ENTERPRISE-2026");
        assert_eq!(verified.typ, TokenKind::License);
        assert_eq!(verified.limits, Plan::Enterprise.default_limits());
        let header = jsonwebtoken::decode_header(key.expose()).expect("header");
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
    }

    #[tokio::test]
    async fn an_edited_payload_fails_the_signature_check() {
        let signer = LocalSigner::random("k1");
        let ring = ring_for(&[&signer]);
        let key = signed(&signer, &claims(TokenKind::License)).await;
        let parts: Vec<&str> = key.expose().split('.').collect();
        let mut forged = claims(TokenKind::License);
        forged["limits"]["installations"] = serde_json::json!(10_000);
        let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
        assert_eq!(
            ring.verify_license(&LicenseKey::new(tampered)),
            Err(KeyRejection::Signature)
        );
    }

    #[tokio::test]
    async fn alg_none_is_rejected_whatever_the_payload() {
        let signer = LocalSigner::random("k1");
        let ring = ring_for(&[&signer]);
        for header in [
            serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k1"}),
            serde_json::json!({"alg": "None", "kid": "k1"}),
        ] {
            let token = format!("{}.{}.", b64(&header), b64(&claims(TokenKind::License)));
            let verdict = ring.verify_license(&LicenseKey::new(token));
            assert!(
                matches!(
                    verdict,
                    Err(KeyRejection::Malformed | KeyRejection::Algorithm)
                ),
                "{header}: {verdict:?}"
            );
        }
    }

    #[tokio::test]
    async fn hs256_signed_with_the_public_key_is_rejected() {
        // The classic algorithm-confusion attack: HMAC keyed with the (public) verification key.
        let signer = LocalSigner::random("k1");
        let ring = ring_for(&[&signer]);
        let public_pem = p256::PublicKey::from_public_key_der(&signer.spki_der())
            .expect("key")
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let der = signer.spki_der();
        for secret in [public_pem.as_bytes(), der.as_slice()] {
            let token = jsonwebtoken::encode(
                &header,
                &claims(TokenKind::License),
                &jsonwebtoken::EncodingKey::from_secret(secret).expect("hmac key"),
            )
            .expect("encode");
            assert_eq!(
                ring.verify_license(&LicenseKey::new(token)),
                Err(KeyRejection::Algorithm)
            );
        }
    }

    #[tokio::test]
    async fn a_key_signed_by_another_key_is_rejected_even_under_a_trusted_kid() {
        let ours = LocalSigner::random("k1");
        let theirs = LocalSigner::random("k1");
        let ring = ring_for(&[&ours]);
        let key = signed(&theirs, &claims(TokenKind::License)).await;
        assert_eq!(ring.verify_license(&key), Err(KeyRejection::Signature));
        let stranger = LocalSigner::random("k9");
        let key = signed(&stranger, &claims(TokenKind::License)).await;
        assert_eq!(ring.verify_license(&key), Err(KeyRejection::UnknownKey));
    }

    #[tokio::test]
    async fn a_lease_never_passes_as_a_license_key() {
        let signer = LocalSigner::random("k1");
        let ring = ring_for(&[&signer]);
        let lease = signed(&signer, &claims(TokenKind::Lease)).await;
        assert_eq!(ring.verify_license(&lease), Err(KeyRejection::WrongKind));
        let mut untyped = claims(TokenKind::License);
        untyped.as_object_mut().expect("object").remove("typ");
        let key = signed(&signer, &untyped).await;
        assert_eq!(ring.verify_license(&key), Err(KeyRejection::Claims));
    }

    #[tokio::test]
    async fn another_issuer_or_missing_claims_are_rejected() {
        let signer = LocalSigner::random("k1");
        let ring = ring_for(&[&signer]);
        let mut foreign = claims(TokenKind::License);
        foreign["iss"] = serde_json::json!("someone-else");
        assert_eq!(
            ring.verify_license(&signed(&signer, &foreign).await),
            Err(KeyRejection::Claims)
        );
        let mut no_exp = claims(TokenKind::License);
        no_exp.as_object_mut().expect("object").remove("exp");
        assert_eq!(
            ring.verify_license(&signed(&signer, &no_exp).await),
            Err(KeyRejection::Claims)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let ring = ring_for(&[&LocalSigner::random("k1")]);
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        for junk in [
            "",
            "abc",
            "a.b",
            "a.b.c",
            "...",
            "ey.ey.ey",
            huge.as_str(),
            "é.é.é",
        ] {
            let verdict = ring.verify_license(&LicenseKey::new(junk));
            assert!(
                matches!(
                    verdict,
                    Err(KeyRejection::Malformed | KeyRejection::UnknownKey)
                ),
                "{junk:.20}: {verdict:?}"
            );
        }
    }

    #[tokio::test]
    async fn signing_refuses_input_over_the_kms_raw_limit_before_calling_the_signer() {
        let signer = LocalSigner::random("k1");
        let mut big = claims(TokenKind::License);
        big["domain_restrictions"] = serde_json::json!(vec!["a".repeat(60); 60]);
        let err = sign_jwt(&signer, &big).await.expect_err("too large");
        assert!(matches!(err, SignError::TooLarge(n) if n > MAX_SIGNING_INPUT));
    }

    #[test]
    fn the_jwks_lists_every_key_with_its_curve_coordinates() {
        let (a, b) = (LocalSigner::random("new"), LocalSigner::random("old"));
        let jwks = ring_for(&[&a, &b]).jwks();
        let kids: Vec<&str> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["new", "old"]);
        for k in &jwks.keys {
            assert_eq!((k.kty.as_str(), k.crv.as_str()), ("EC", "P-256"));
            assert_eq!(
                (k.alg.as_deref(), k.use_.as_deref()),
                (Some("ES256"), Some("sig"))
            );
            assert_eq!(URL_SAFE_NO_PAD.decode(&k.x).expect("b64").len(), 32);
            assert_eq!(URL_SAFE_NO_PAD.decode(&k.y).expect("b64").len(), 32);
        }
        let json = serde_json::to_value(&jwks).expect("json");
        assert_eq!(json["keys"][0]["use"], "sig");
    }

    #[tokio::test]
    async fn a_token_verifies_with_a_standard_jose_library_from_the_published_jwk() {
        let signer = LocalSigner::random("k1");
        let jwk = ring_for(&[&signer]).jwks().keys.remove(0);
        let key = signed(&signer, &claims(TokenKind::License)).await;
        let decoding = DecodingKey::from_ec_components(&jwk.x, &jwk.y).expect("jwk");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(key.expose(), &decoding, &validation)
            .expect("verifies");
        assert_eq!(data.claims["jti"], "NECTAR-ENTERPRISE-2026-7K2M9QXA");
    }

    #[test]
    fn license_key_debug_output_never_shows_the_token() {
        let key = LicenseKey::new("eyJhbGciOiJFUzI1NiJ9.secret.sig");
        assert_eq!(format!("{key:?}"), "LicenseKey(<redacted>)");
    }
}
