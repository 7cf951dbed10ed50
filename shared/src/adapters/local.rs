//! The [`TokenSigner`] port over the one local test signer (no KMS); test builds only.

use async_trait::async_trait;
use nectar_protocol::testing::TestSigner;

use crate::domain::ports::TokenSigner;
use crate::token::SignError;

/// Signs like KMS does (DER ECDSA over SHA-256 of the raw message) with an in-memory key.
#[derive(Clone)]
pub struct LocalSigner(TestSigner);

impl LocalSigner {
    /// A fresh random key named `kid`.
    pub fn random(kid: &str) -> Self {
        Self(TestSigner::random(kid))
    }

    /// The public key as SubjectPublicKeyInfo DER, as KMS `GetPublicKey` returns it.
    pub fn spki_der(&self) -> Vec<u8> {
        self.0.spki_der()
    }
}

#[async_trait]
impl TokenSigner for LocalSigner {
    fn kid(&self) -> &str {
        self.0.kid()
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.0.sign_der(message))
    }
}
