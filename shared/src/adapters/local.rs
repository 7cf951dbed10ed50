//! A local ECDSA P-256 signer for pure unit tests and benchmarks (no KMS); test builds only.

use async_trait::async_trait;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;

use crate::domain::ports::TokenSigner;
use crate::token::SignError;

/// Signs like KMS does (DER ECDSA over SHA-256 of the raw message) with an in-memory key.
#[derive(Clone)]
pub struct LocalSigner {
    kid: String,
    key: SigningKey,
}

impl LocalSigner {
    /// A fresh random key named `kid`.
    pub fn random(kid: &str) -> Self {
        let mut bytes = [0u8; 32];
        loop {
            rand::fill(&mut bytes);
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Self {
                    kid: kid.to_owned(),
                    key,
                };
            }
        }
    }

    /// The public key as SubjectPublicKeyInfo DER, as KMS `GetPublicKey` returns it.
    pub fn spki_der(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }
}

#[async_trait]
impl TokenSigner for LocalSigner {
    fn kid(&self) -> &str {
        &self.kid
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}
