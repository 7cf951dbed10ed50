//! Compact JWS with ES256, the one way every Nectar token is signed and checked — by the server
//! and by installations alike, so both refuse exactly the same tokens (feature `jws`).
//!
//! What a token must be, checked in this order so the reason is stable:
//! 1. three base64url parts, at most [`MAX_TOKEN_LEN`] bytes ([`JwsError::Malformed`]);
//! 2. header `alg` exactly `ES256` — the header never chooses the algorithm, it can only be
//!    refused (`none`, HS256 keyed with the public key, …) ([`JwsError::Algorithm`]);
//! 3. header `typ` exactly the expected kind's media type, RFC 8725 §3.11
//!    ([`JwsError::Type`]);
//! 4. header `kid` naming a key the caller trusts *for that kind* ([`JwsError::UnknownKey`]);
//! 5. a 64-byte `r‖s` signature in canonical low-S form ([`JwsError::NonCanonical`]): ECDSA
//!    signatures are malleable (`(r, s)` and `(r, n − s)` both verify), and a token must have
//!    exactly one valid encoding, or replay and deduplication by token text break;
//! 6. the signature verifies over `header.payload` ([`JwsError::Signature`]).
//!
//! Written by hand because the server's signatures come from KMS (no JWT crate drives it) and
//! because no JWT crate we checked refuses high-S ECDSA signatures.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::token::{Jwk, TokenKind};

/// Longest token anyone tries to parse; real keys and leases are about 1–2 KB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused, in check order. Each has a stable reason code ([`JwsError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts, oversize, or an unreadable header or payload.
    #[error("the token is malformed")]
    Malformed,
    /// Header `alg` is not `ES256`.
    #[error("the token uses an algorithm other than ES256")]
    Algorithm,
    /// Header `typ` is not the expected kind's media type.
    #[error("the token's header type is not the expected one")]
    Type,
    /// `kid` absent, or not a key trusted for this kind of token.
    #[error("the token was not signed by a key trusted for it")]
    UnknownKey,
    /// A high-S (non-canonical) signature.
    #[error("the token's signature is not in canonical (low-S) form")]
    NonCanonical,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    Signature,
}

impl JwsError {
    /// A stable, machine-readable reason.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::Algorithm => "TOKEN_ALGORITHM",
            Self::Type => "TOKEN_TYPE",
            Self::UnknownKey => "TOKEN_UNTRUSTED_KEY",
            Self::NonCanonical => "TOKEN_NON_CANONICAL",
            Self::Signature => "TOKEN_SIGNATURE",
        }
    }
}

/// The protected header every Nectar token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `ES256`.
    pub alg: String,
    /// The kind's media type ([`TokenKind::media_type`]).
    #[serde(default)]
    pub typ: Option<String>,
    /// The signing key.
    #[serde(default)]
    pub kid: Option<String>,
}

/// The header of `token`, unverified (to find which key to fetch or trust).
pub fn peek_header(token: &str) -> Option<Header> {
    let b64 = token.split('.').next()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b64).ok()?).ok()
}

/// Verifies `token` as a token of `kind` and returns its payload bytes. `key_for(kid)` answers
/// the key trusted to sign `kind` under that id, or `None`.
pub fn verify<'k>(
    token: &str,
    kind: TokenKind,
    key_for: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<Vec<u8>, JwsError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(JwsError::Malformed)?;
    if header.alg != "ES256" {
        return Err(JwsError::Algorithm);
    }
    if header.typ.as_deref() != Some(kind.media_type()) {
        return Err(JwsError::Type);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(key_for)
        .ok_or(JwsError::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .ok_or(JwsError::Signature)?;
    if signature.normalize_s() != signature {
        return Err(JwsError::NonCanonical);
    }
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| JwsError::Signature)?;
    URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| JwsError::Malformed)
}

/// The signing input `header.payload` for a token of `kind` signed by `kid`.
pub fn signing_input(
    kind: TokenKind,
    kid: &str,
    claims: &impl Serialize,
) -> Result<String, serde_json::Error> {
    let header = Header {
        alg: "ES256".into(),
        typ: Some(kind.media_type().into()),
        kid: Some(kid.into()),
    };
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    ))
}

/// The compact token: `signing_input` plus `signature` in canonical low-S form (KMS, like most
/// ECDSA signers, returns either form).
pub fn finish(signing_input: &str, signature: &Signature) -> String {
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.normalize_s().to_bytes())
    )
}

/// The P-256 verifying key of an EC JWK usable for ES256 signatures, or `None`.
pub fn public_key(jwk: &Jwk) -> Option<VerifyingKey> {
    let usable = jwk.kty == "EC"
        && jwk.crv == "P-256"
        && jwk.alg.as_deref().is_none_or(|a| a == "ES256")
        && jwk.use_.as_deref().is_none_or(|u| u == "sig");
    if !usable {
        return None;
    }
    let x = URL_SAFE_NO_PAD.decode(&jwk.x).ok()?;
    let y = URL_SAFE_NO_PAD.decode(&jwk.y).ok()?;
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// `key` as a JWK named `kid`.
pub fn to_jwk(kid: &str, key: &VerifyingKey) -> Jwk {
    let point = key.to_sec1_point(false);
    let coord = |c: Option<&[u8]>| c.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
    Jwk {
        kty: "EC".into(),
        crv: "P-256".into(),
        x: coord(point.x().map(|x| x.as_slice())),
        y: coord(point.y().map(|y| y.as_slice())),
        kid: kid.into(),
        alg: Some("ES256".into()),
        use_: Some("sig".into()),
    }
}

/// Whether two JWKs are the same public key (coordinates compared, names ignored).
pub fn same_key(a: &Jwk, b: &Jwk) -> bool {
    matches!((public_key(a), public_key(b)), (Some(x), Some(y)) if x == y)
}

/// `token` with its signature replaced by the other valid encoding `(r, n − s)`: what an attacker
/// makes of a real token to test malleability. Tests only.
#[cfg(feature = "test-signer")]
pub fn high_s_variant(token: &str) -> String {
    let (input, sig_b64) = token.rsplit_once('.').unwrap_or((token, ""));
    let Some(sig) = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
    else {
        return token.to_owned();
    };
    let (r, s) = sig.split_scalars();
    let flipped = Signature::from_scalars(r, -*s).unwrap_or(sig);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(flipped.to_bytes()))
}
