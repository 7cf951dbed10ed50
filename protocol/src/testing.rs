//! The one local ES256 signer every crate's tests sign tokens with, standing in for the server's
//! KMS key (feature `test-signer`; never in production builds).
//!
//! It signs the two ways the system needs: a whole compact JWS (what installations' tests want)
//! and a raw DER signature over a message (what KMS returns, for the server's signing port).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;

use crate::token::{Jwk, Jwks};

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

    /// The public key as a JWK set, as the server publishes it.
    pub fn jwks(&self) -> Jwks {
        let point = self.key.verifying_key().to_sec1_point(false);
        let coord = |c: Option<&[u8]>| c.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
        Jwks {
            keys: vec![Jwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: coord(point.x().map(|x| x.as_slice())),
                y: coord(point.y().map(|y| y.as_slice())),
                kid: self.kid.clone(),
                alg: Some("ES256".into()),
                use_: Some("sig".into()),
            }],
        }
    }

    /// A DER ECDSA signature over SHA-256 of `message`, as KMS signs a raw message.
    pub fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// `claims` as a compact ES256 JWS with header `{alg, typ: "JWT", kid}`.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}
