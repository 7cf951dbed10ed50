//! Signed tokens: license-key and lease claims, ES256 signing through a [`TokenSigner`] (KMS in
//! production) and offline verification against a key ring that publishes itself as a JWKS.
//!
//! Each kind of token has its own keys: license keys verify only under license signing keys,
//! leases only under the lease signing key, so the public heartbeat function — which holds the
//! lease key — can mint nothing but leases. The JWS rules (ES256 only, explicit `typ`
//! `license+jwt` / `lease+jwt`, low-S signatures) are `nectar_protocol::jws`, the same code
//! installations run.

use std::collections::HashMap;
use std::fmt;

use nectar_protocol::jws::{self, JwsError};
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};

use secrecy::{ExposeSecret, SecretString};

use crate::domain::Validated;
use crate::domain::ports::TokenSigner;

/// KMS signs at most 4096 bytes with `MessageType=RAW`; we refuse larger input up front.
pub const MAX_SIGNING_INPUT: usize = 4096;

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
    /// Header `typ` is not the kind's media type.
    #[error("the license key's header type is not license+jwt")]
    Type,
    /// `kid` absent or not one of our keys for this kind of token.
    #[error("the license key was not signed by a Nectar license signing key")]
    UnknownKey,
    /// A high-S (non-canonical) signature.
    #[error("the license key's signature is not canonical")]
    NonCanonical,
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

impl From<JwsError> for KeyRejection {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::Malformed => Self::Malformed,
            JwsError::Algorithm => Self::Algorithm,
            JwsError::Type => Self::Type,
            JwsError::UnknownKey => Self::UnknownKey,
            JwsError::NonCanonical => Self::NonCanonical,
            JwsError::Signature => Self::Signature,
        }
    }
}

struct RingKey {
    key: VerifyingKey,
    kind: TokenKind,
    jwk: Jwk,
}

/// The public keys we trust, each for one kind of token, fetched once per process and never per
/// request; and the root endorsements of them that installations need (published in the JWKS).
///
/// Rotation: sign with the new key while the old one stays in the ring until every key it signed
/// has been reissued or expired.
pub struct KeyRing {
    issuer: String,
    keys: HashMap<String, RingKey>,
    order: Vec<String>,
    endorsements: Vec<String>,
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
    /// Builds a ring of *license* signing keys from `(kid, SubjectPublicKeyInfo DER)` pairs, as
    /// KMS `GetPublicKey` returns them.
    pub fn from_spki_der<'a>(
        issuer: impl Into<String>,
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, KeyRingError> {
        let mut ring = Self {
            issuer: issuer.into(),
            keys: HashMap::new(),
            order: Vec::new(),
            endorsements: Vec::new(),
        };
        ring.add(TokenKind::License, keys)?;
        Ok(ring)
    }

    /// Builds a ring of *license* keys from a JWK set (public keys delivered by configuration).
    pub fn from_jwks(issuer: impl Into<String>, jwks: &Jwks) -> Result<Self, KeyRingError> {
        let mut ring = Self {
            issuer: issuer.into(),
            keys: HashMap::new(),
            order: Vec::new(),
            endorsements: Vec::new(),
        };
        for jwk in &jwks.keys {
            let key = jws::public_key(jwk).ok_or_else(|| KeyRingError::NotP256 {
                kid: jwk.kid.clone(),
            })?;
            if ring
                .keys
                .insert(
                    jwk.kid.clone(),
                    RingKey {
                        key,
                        kind: TokenKind::License,
                        jwk: jws::to_jwk(&jwk.kid, &key),
                    },
                )
                .is_none()
            {
                ring.order.push(jwk.kid.clone());
            }
        }
        Ok(ring)
    }

    /// The public key of `kid`, as a JWK, if the ring holds it.
    pub fn jwk(&self, kid: &str) -> Option<&Jwk> {
        self.keys.get(kid).map(|k| &k.jwk)
    }

    /// Adds keys that verify tokens of `kind` only.
    pub fn add<'a>(
        &mut self,
        kind: TokenKind,
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), KeyRingError> {
        for (kid, der) in keys {
            let public = p256::PublicKey::from_public_key_der(der)
                .map_err(|_| KeyRingError::NotP256 { kid: kid.into() })?;
            let key = VerifyingKey::from(public);
            let jwk = jws::to_jwk(kid, &key);
            if self
                .keys
                .insert(kid.to_owned(), RingKey { key, kind, jwk })
                .is_none()
            {
                self.order.push(kid.to_owned());
            }
        }
        Ok(())
    }

    /// Sets the root endorsements published with the keys.
    pub fn set_endorsements(&mut self, endorsements: Vec<String>) {
        self.endorsements = endorsements;
    }

    /// The issuer every accepted token must name.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The ring as a JWK set, in load order, with the endorsements.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .order
                .iter()
                .filter_map(|kid| self.keys.get(kid).map(|k| k.jwk.clone()))
                .collect(),
            endorsements: self.endorsements.clone(),
        }
    }

    /// Verifies a license key offline: `license+jwt`, ES256 low-S under a license signing key of
    /// this ring, well-formed claims from our issuer, kind `license`. Expiry is *not* checked
    /// here: callers decide with their own clock so they can say EXPIRED.
    pub fn verify_license(&self, key: &LicenseKey) -> Result<LicenseClaims, KeyRejection> {
        self.verify(key.expose(), TokenKind::License)
    }

    /// Verifies a lease offline, like [`KeyRing::verify_license`] but `lease+jwt` under the lease
    /// signing key.
    pub fn verify_lease(&self, token: &str) -> Result<LeaseClaims, KeyRejection> {
        self.verify(token, TokenKind::Lease)
    }

    fn verify<C: serde::de::DeserializeOwned + HasKind>(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<C, KeyRejection> {
        let payload = jws::verify(token, kind, |kid| {
            self.keys
                .get(kid)
                .filter(|k| k.kind == kind)
                .map(|k| &k.key)
        })?;
        #[derive(Deserialize)]
        struct Envelope {
            iss: String,
            typ: TokenKind,
        }
        let envelope: Envelope =
            serde_json::from_slice(&payload).map_err(|_| KeyRejection::Claims)?;
        if envelope.typ != C::KIND {
            return Err(KeyRejection::WrongKind);
        }
        if envelope.iss != self.issuer {
            return Err(KeyRejection::Claims);
        }
        serde_json::from_slice(&payload).map_err(|_| KeyRejection::Claims)
    }
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

/// Signs `claims` as a token of `kind`: ES256 with header `{alg, typ: <kind>+jwt, kid}` and the
/// signature in canonical low-S form.
///
/// Refuses signing input over [`MAX_SIGNING_INPUT`] bytes (the KMS raw-message limit) before
/// calling the signer, and converts the signer's DER signature to the 64-byte `r‖s` JWS wants.
pub async fn sign_jwt<S, C>(signer: &S, kind: TokenKind, claims: &C) -> Result<String, SignError>
where
    S: TokenSigner + ?Sized,
    C: Serialize,
{
    let signing_input =
        jws::signing_input(kind, signer.kid(), claims).map_err(|e| SignError::Backend(e.into()))?;
    if signing_input.len() > MAX_SIGNING_INPUT {
        return Err(SignError::TooLarge(signing_input.len()));
    }
    let der = signer.sign(signing_input.as_bytes()).await?;
    let signature = p256::ecdsa::Signature::from_der(&der).map_err(|_| SignError::BadSignature)?;
    Ok(jws::finish(&signing_input, &signature))
}

/// Signs an endorsement of `endorsed` (a KMS public key) for tokens of `use_` until `exp`, with
/// the root key `root`. Only the operator's admin command calls this; no function can.
pub async fn sign_endorsement<S: TokenSigner + ?Sized>(
    root: &S,
    issuer: &str,
    endorsed_kid: &str,
    endorsed_spki_der: &[u8],
    use_: TokenKind,
    iat: i64,
    exp: i64,
) -> Result<String, SignError> {
    let public = p256::PublicKey::from_public_key_der(endorsed_spki_der)
        .map_err(|_| SignError::BadSignature)?;
    let claims = nectar_protocol::token::EndorsementClaims {
        iss: issuer.to_owned(),
        typ: TokenKind::Endorsement,
        sub: endorsed_kid.to_owned(),
        use_,
        jwk: jws::to_jwk(endorsed_kid, &VerifyingKey::from(public)),
        iat,
        exp,
    };
    sign_jwt(root, TokenKind::Endorsement, &claims).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::local::LocalSigner;
    use crate::domain::{LicenseId, Plan};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use p256::pkcs8::{EncodePublicKey, LineEnding};

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

    /// Signs `claims` as the kind its `typ` claim names (license when absent or unknown).
    async fn signed(signer: &LocalSigner, claims: &serde_json::Value) -> LicenseKey {
        let kind = match claims["typ"].as_str() {
            Some("lease") => TokenKind::Lease,
            _ => TokenKind::License,
        };
        LicenseKey::new(sign_jwt(signer, kind, claims).await.expect("signs"))
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
        assert_eq!(header.typ.as_deref(), Some("license+jwt"));
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
        // Signed by a license key, but typed (header and claim) as a lease.
        let lease = signed(&signer, &claims(TokenKind::Lease)).await;
        assert_eq!(ring.verify_license(&lease), Err(KeyRejection::Type));
        // Header says license, claim says lease.
        let mixed = LicenseKey::new(
            sign_jwt(&signer, TokenKind::License, &claims(TokenKind::Lease))
                .await
                .expect("signs"),
        );
        assert_eq!(ring.verify_license(&mixed), Err(KeyRejection::WrongKind));
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
        let huge = "a".repeat(jws::MAX_TOKEN_LEN + 1);
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
        let err = sign_jwt(&signer, TokenKind::License, &big)
            .await
            .expect_err("too large");
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
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(key.expose(), &decoding, &validation)
            .expect("verifies");
        assert_eq!(data.claims["jti"], "NECTAR-ENTERPRISE-2026-7K2M9QXA");
    }

    #[tokio::test]
    async fn each_kind_verifies_only_under_its_own_keys() {
        let license_key = LocalSigner::random("license-k");
        let lease_key = LocalSigner::random("lease-k");
        let mut ring = ring_for(&[&license_key]);
        let der = lease_key.spki_der();
        ring.add(TokenKind::Lease, [(lease_key.kid(), der.as_slice())])
            .expect("p256");
        // A license key minted with the lease key (what a compromised heartbeat could try).
        let by_lease_key = LicenseKey::new(
            sign_jwt(&lease_key, TokenKind::License, &claims(TokenKind::License))
                .await
                .expect("signs"),
        );
        assert_eq!(
            ring.verify_license(&by_lease_key),
            Err(KeyRejection::UnknownKey)
        );
        // A lease minted with the license key.
        let lease_by_license_key =
            sign_jwt(&license_key, TokenKind::Lease, &claims(TokenKind::Lease))
                .await
                .expect("signs");
        assert_eq!(
            ring.verify_lease(&lease_by_license_key).map(|_| ()),
            Err(KeyRejection::UnknownKey)
        );
    }

    #[tokio::test]
    async fn high_s_twins_are_refused_and_signing_always_emits_low_s() {
        let signer = LocalSigner::random("k1");
        let ring = ring_for(&[&signer]);
        for _ in 0..16 {
            // KMS returns either S form; what we emit is always the low one, so it verifies…
            let key = signed(&signer, &claims(TokenKind::License)).await;
            assert!(ring.verify_license(&key).is_ok());
            // …and its high-S twin, equally valid to a lax ECDSA verifier, does not.
            let twin = LicenseKey::new(jws::high_s_variant(key.expose()));
            assert_eq!(ring.verify_license(&twin), Err(KeyRejection::NonCanonical));
        }
    }

    #[test]
    fn license_key_debug_output_never_shows_the_token() {
        let key = LicenseKey::new("eyJhbGciOiJFUzI1NiJ9.secret.sig");
        assert_eq!(format!("{key:?}"), "LicenseKey(<redacted>)");
    }
}
