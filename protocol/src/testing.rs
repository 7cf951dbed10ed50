//! The one local ES256 signer every crate's tests sign tokens with, standing in for the server's
//! KMS keys (feature `test-signer`; never in production builds).
//!
//! It signs the two ways the system needs: a whole compact JWS (what installations' tests want)
//! and a raw DER signature over a message (what KMS returns, for the server's signing port). It
//! also endorses other keys, as the root key does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;

use crate::jws;
use crate::token::{EndorsementClaims, Jwk, Jwks, TokenKind};

/// An in-memory P-256 key named `kid`.
#[derive(Clone)]
pub struct TestSigner {
    kid: String,
    key: SigningKey,
}

impl TestSigner {
    /// A fresh random key named `kid`.
    pub fn random(kid: &str) -> Self {
        let mut bytes = [0u8; 32];
        loop {
            rand::fill(&mut bytes);
            // Almost every 32-byte string is a valid scalar; retry the rare one that is not.
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Self {
                    kid: kid.to_owned(),
                    key,
                };
            }
        }
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as SubjectPublicKeyInfo DER, as KMS `GetPublicKey` returns it.
    pub fn spki_der(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        jws::to_jwk(&self.kid, self.key.verifying_key())
    }

    /// The public key as a JWK set, as the server publishes it.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.jwk()],
            endorsements: Vec::new(),
        }
    }

    /// A DER ECDSA signature over SHA-256 of `message`, as KMS signs a raw message (either
    /// S form, like KMS).
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// `claims` as a compact ES256 JWS with header `{alg, typ, kid}`, `typ` chosen from the
    /// `typ` claim (`license` → `license+jwt`, …; anything else → `JWT`).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let media_type = match claims.get("typ").and_then(|t| t.as_str()) {
            Some("license") => TokenKind::License.media_type(),
            Some("lease") => TokenKind::Lease.media_type(),
            Some("endorsement") => TokenKind::Endorsement.media_type(),
            _ => "JWT",
        };
        self.sign_with_type(media_type, claims)
    }

    /// `claims` signed under an explicit header `typ` (to test type confusion).
    pub fn sign_with_type(&self, media_type: &str, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": media_type, "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(input.as_bytes());
        jws::finish(&input, &signature)
    }

    /// An endorsement by this (root) key of `key` for tokens of kind `use_`, from `iat` to `exp`.
    pub fn endorse(
        &self,
        issuer: &str,
        key: &TestSigner,
        use_: TokenKind,
        iat: i64,
        exp: i64,
    ) -> String {
        let claims = EndorsementClaims {
            iss: issuer.into(),
            typ: TokenKind::Endorsement,
            sub: key.kid.clone(),
            use_,
            jwk: key.jwk(),
            iat,
            exp,
        };
        self.sign(&serde_json::to_value(&claims).unwrap_or_default())
    }
}
