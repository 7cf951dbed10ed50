//! Offline verification of the two token kinds an installation holds — its license key and the
//! lease the server hands out on heartbeat — against pinned public keys (a JWKS).
//!
//! ES256 is pinned by construction: the only verifier here is ECDSA P-256 over SHA-256, so the
//! header's `alg` can only ever be refused (`none`, HS256 keyed with the public key, …), never
//! obeyed. Expiry is not checked here: the caller decides with its trusted clock.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Longest token we try to parse; real keys and leases are about 1 KB.
const MAX_TOKEN_LEN: usize = 8 * 1024;

pub use nectar_protocol::token::{Jwk, Jwks, LeaseClaims, LicenseClaims, Limits, TokenKind};

/// Why a JWKS cannot be pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON of the JWKS shape.
    #[error("the JWKS is not valid JSON: {0}")]
    Json(String),
    /// No usable EC P-256 signing key in it.
    #[error("the JWKS holds no EC P-256 signing key")]
    NoUsableKey,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, oversize, or unreadable header.
    #[error("the token is malformed")]
    Malformed,
    /// Header algorithm is not ES256 (`none`, HS256, …).
    #[error("the token uses an algorithm other than ES256")]
    Algorithm,
    /// `kid` absent or not in the pinned key set.
    #[error("the token was not signed by a pinned key")]
    UnknownKey,
    /// Signature does not verify.
    #[error("the token signature is invalid")]
    Signature,
    /// Claims missing or mistyped.
    #[error("the token claims are invalid")]
    Claims,
    /// A validly signed token of another kind (a lease offered as a key, or the reverse).
    #[error("the token is of the wrong kind")]
    WrongKind,
    /// A lease bound to another installation.
    #[error("the lease belongs to another installation")]
    WrongInstallation,
    /// A lease for another license, customer or issuer than this installation's key.
    #[error("the lease does not belong to this license")]
    WrongLicense,
}

/// Pinned public keys; verification is offline and costs one ECDSA verify per token.
#[derive(Clone)]
pub struct TrustedKeys {
    keys: HashMap<String, VerifyingKey>,
    jwks: Jwks,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("TrustedKeys").field("kids", &kids).finish()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct KindOnly {
    typ: Option<TokenKind>,
}

impl TrustedKeys {
    /// Pins the EC P-256 signing keys of `jwks`; other keys (RSA, encryption keys) are ignored.
    pub fn from_jwks(jwks: Jwks) -> Result<Self, JwksError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let usable = jwk.kty == "EC"
                && jwk.crv == "P-256"
                && jwk.alg.as_deref().is_none_or(|a| a == "ES256")
                && jwk.use_.as_deref().is_none_or(|u| u == "sig");
            if !usable {
                continue;
            }
            let (Ok(x), Ok(y)) = (
                URL_SAFE_NO_PAD.decode(&jwk.x),
                URL_SAFE_NO_PAD.decode(&jwk.y),
            ) else {
                continue;
            };
            if x.len() != 32 || y.len() != 32 {
                continue;
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            if let Ok(key) = VerifyingKey::from_sec1_bytes(&sec1) {
                keys.insert(jwk.kid.clone(), key);
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Self { keys, jwks })
    }

    /// Parses and pins a JWKS given as JSON text.
    pub fn from_json(text: &str) -> Result<Self, JwksError> {
        let jwks: Jwks = serde_json::from_str(text).map_err(|e| JwksError::Json(e.to_string()))?;
        Self::from_jwks(jwks)
    }

    /// The pinned set, as given (for persisting the pin).
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Verifies a license key: ES256 signature by a pinned key, kind `license`, readable claims.
    pub fn verify_license(&self, token: &str) -> Result<LicenseClaims, TokenError> {
        self.verify(token, TokenKind::License)
    }

    /// Verifies a lease for `installation_id`: ES256 signature by a pinned key, kind `lease`,
    /// readable claims, bound to this installation.
    pub fn verify_lease(
        &self,
        token: &str,
        installation_id: &str,
    ) -> Result<LeaseClaims, TokenError> {
        let claims: LeaseClaims = self.verify(token, TokenKind::Lease)?;
        if claims.iid != installation_id {
            return Err(TokenError::WrongInstallation);
        }
        Ok(claims)
    }

    fn verify<C: DeserializeOwned>(&self, token: &str, kind: TokenKind) -> Result<C, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "ES256" {
            return Err(TokenError::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or(TokenError::Signature)?;
        let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.verify(signed.as_bytes(), &signature)
            .map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed)?;
        // The kind is read first so a lease offered as a key says WrongKind, not Claims.
        let peek: KindOnly = serde_json::from_slice(&payload).map_err(|_| TokenError::Claims)?;
        match peek.typ {
            Some(k) if k == kind => {}
            Some(_) => return Err(TokenError::WrongKind),
            None => return Err(TokenError::Claims),
        }
        serde_json::from_slice(&payload).map_err(|_| TokenError::Claims)
    }
}

/// The claims of a token without verifying anything — for messages only (e.g. saying which
/// license a badly signed key claims to be), never for decisions.
pub fn peek_claims(token: &str) -> Option<serde_json::Value> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice(&payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestSigner, lease_claims, license_claims, trusted_keys};

    const IID: &str = "inst-1";

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn a_lease_signed_by_the_pinned_key_verifies_for_its_installation() {
        // Arrange
        let signer = TestSigner::random("k1");
        let keys = trusted_keys(&signer);
        let token = signer.sign(&lease_claims(IID, 1_000, 1_000 + 3_600));
        // Act
        let claims = keys.verify_lease(&token, IID).expect("valid lease");
        // Assert
        assert_eq!(claims.iid, IID);
        assert_eq!(claims.typ, TokenKind::Lease);
        assert!(claims.feat.iter().any(|f| f == "workflows"));
    }

    #[test]
    fn a_lease_with_the_wrong_typ_is_rejected() {
        let signer = TestSigner::random("k1");
        let keys = trusted_keys(&signer);
        let mut claims = lease_claims(IID, 1_000, 4_600);
        claims["typ"] = "license".into();
        assert_eq!(
            keys.verify_lease(&signer.sign(&claims), IID),
            Err(TokenError::WrongKind)
        );
        claims.as_object_mut().expect("object").remove("typ");
        assert_eq!(
            keys.verify_lease(&signer.sign(&claims), IID),
            Err(TokenError::Claims)
        );
    }

    #[test]
    fn a_license_key_never_passes_as_a_lease_nor_the_reverse() {
        let signer = TestSigner::random("k1");
        let keys = trusted_keys(&signer);
        let key = signer.sign(&license_claims(1_000, 100_000, &[]));
        let lease = signer.sign(&lease_claims(IID, 1_000, 4_600));
        assert_eq!(keys.verify_lease(&key, IID), Err(TokenError::WrongKind));
        assert_eq!(keys.verify_license(&lease), Err(TokenError::WrongKind));
        assert!(keys.verify_license(&key).is_ok());
    }

    #[test]
    fn a_lease_for_another_installation_is_rejected() {
        let signer = TestSigner::random("k1");
        let token = signer.sign(&lease_claims("inst-2", 1_000, 4_600));
        assert_eq!(
            trusted_keys(&signer).verify_lease(&token, IID),
            Err(TokenError::WrongInstallation)
        );
    }

    #[test]
    fn a_lease_with_an_edited_payload_or_foreign_signature_is_rejected() {
        let ours = TestSigner::random("k1");
        let keys = trusted_keys(&ours);
        let token = ours.sign(&lease_claims(IID, 1_000, 4_600));
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = lease_claims(IID, 1_000, 4_600);
        forged["feat"] = serde_json::json!(["workflows", "sso", "everything"]);
        let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
        assert_eq!(
            keys.verify_lease(&tampered, IID),
            Err(TokenError::Signature)
        );

        let theirs = TestSigner::random("k1");
        let foreign = theirs.sign(&lease_claims(IID, 1_000, 4_600));
        assert_eq!(keys.verify_lease(&foreign, IID), Err(TokenError::Signature));
        let stranger = TestSigner::random("k9").sign(&lease_claims(IID, 1_000, 4_600));
        assert_eq!(
            keys.verify_lease(&stranger, IID),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn alg_none_and_hs256_are_rejected_whatever_the_payload() {
        let signer = TestSigner::random("k1");
        let keys = trusted_keys(&signer);
        let payload = b64(&lease_claims(IID, 1_000, 4_600));
        for header in [
            serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k1"}),
            serde_json::json!({"alg": "None", "kid": "k1"}),
            serde_json::json!({"alg": "HS256", "kid": "k1"}),
        ] {
            for sig in ["", "c2lnbmF0dXJl"] {
                let token = format!("{}.{payload}.{sig}", b64(&header));
                assert_eq!(
                    keys.verify_lease(&token, IID),
                    Err(TokenError::Algorithm),
                    "{header}"
                );
            }
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let keys = trusted_keys(&TestSigner::random("k1"));
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        for junk in ["", "abc", "a.b", "a.b.c.d", "...", "é.é.é", huge.as_str()] {
            assert!(
                matches!(
                    keys.verify_lease(junk, IID),
                    Err(TokenError::Malformed | TokenError::UnknownKey)
                ),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn a_jwks_without_a_p256_signing_key_cannot_be_pinned() {
        assert_eq!(
            TrustedKeys::from_json(r#"{"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"r"}]}"#)
                .map(|_| ()),
            Err(JwksError::NoUsableKey)
        );
        assert!(matches!(
            TrustedKeys::from_json("nope"),
            Err(JwksError::Json(_))
        ));
    }

    #[test]
    fn domain_restrictions_match_like_the_server() {
        let signer = TestSigner::random("k1");
        let key = signer.sign(&license_claims(1, 2, &["acme.com", "*.acme.io"]));
        let claims = trusted_keys(&signer).verify_license(&key).expect("valid");
        for (domain, allowed) in [
            (Some("acme.com"), true),
            (Some("ACME.com."), true),
            (Some("app.acme.io"), true),
            (Some("acme.io"), false),
            (Some("evilacme.io"), false),
            (Some("other.com"), false),
            (None, false),
        ] {
            assert_eq!(claims.allows_domain(domain), allowed, "{domain:?}");
        }
    }
}
