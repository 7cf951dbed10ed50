//! Offline verification of what an installation holds — its license key, the lease the server
//! hands out on heartbeat, and the endorsements that vouch for the keys signing them — against
//! **Nectar's root public keys, compiled into this binary** ([`TrustRoots`]).
//!
//! The chain: a root key (its own KMS key, used only by an operator's admin command) signs
//! endorsements; an endorsement says "key K may sign tokens of kind T until D"; a license key or a
//! lease verifies only under a key endorsed for its kind, until the endorsement's end. Nothing an
//! installation reads at run time — settings, the state file, the server's JWKS — can add a root:
//! endorsements from any of them are believed only because a compiled-in root signed them.
//!
//! The JWS rules (ES256 only, explicit header `typ`, low-S signatures) are
//! `nectar_protocol::jws`, shared with the server. Expiry of tokens is not checked here: the caller
//! decides with its trusted clock. Endorsement expiry is checked here, against the `now` given.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nectar_protocol::jws::{self, JwsError};
use p256::ecdsa::VerifyingKey;
use serde::de::DeserializeOwned;

pub use nectar_protocol::token::{
    EndorsementClaims, Jwk, Jwks, LeaseClaims, LicenseClaims, Limits, TokenKind,
};

/// The root JWKS this binary was built with: `NECTAR_TRUST_ROOTS_FILE` at build time (see
/// `build.rs`), `trust/roots.jwks.json` by default.
const COMPILED_ROOTS: &str = include_str!(concat!(env!("OUT_DIR"), "/roots.jwks.json"));

/// The runtime setting that adds development roots — honoured only by `dev-trust` builds, refused
/// by every other build (see [`TrustRoots::for_this_build`]).
pub const DEV_ROOTS_ENV: &str = "NECTAR_DEV_TRUST_ROOTS";

/// Why a JWKS cannot serve as roots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON of the JWKS shape.
    #[error("the JWKS is not valid JSON: {0}")]
    Json(String),
    /// No usable EC P-256 signing key in it.
    #[error("the JWKS holds no EC P-256 signing key")]
    NoUsableKey,
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
    /// A development setting in a build that must not honour it.
    #[error(
        "{0} is set, but this is a release build: it trusts only the Nectar root keys compiled \
         into it. Unset {0} (development roots need a `dev-trust` build)"
    )]
    DevSettingInRelease(&'static str),
}

/// Why a token was not accepted. [`TokenError::code`] is a stable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, oversize, or unreadable header.
    #[error("the token is malformed")]
    Malformed,
    /// Header algorithm is not ES256 (`none`, HS256, …).
    #[error("the token uses an algorithm other than ES256")]
    Algorithm,
    /// Header `typ` is not the kind's media type (`license+jwt`, `lease+jwt`, …).
    #[error("the token's header type is wrong for its use")]
    Type,
    /// `kid` absent, or not a key a root endorsed for this kind (now).
    #[error("the token was not signed by a key Nectar endorsed for it")]
    UnknownKey,
    /// A high-S (non-canonical) ECDSA signature.
    #[error("the token's signature is not canonical (high-S)")]
    NonCanonical,
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
    /// A lease offered while the license key itself has not verified.
    #[error("the license key has not verified, so no lease can be trusted")]
    LicenseUnverified,
    /// An endorsement whose end has passed.
    #[error("the endorsement has expired")]
    EndorsementExpired,
}

impl TokenError {
    /// A stable, machine-readable reason.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "TOKEN_MALFORMED",
            Self::Algorithm => "TOKEN_ALGORITHM",
            Self::Type => "TOKEN_TYPE",
            Self::UnknownKey => "TOKEN_UNTRUSTED_KEY",
            Self::NonCanonical => "TOKEN_NON_CANONICAL",
            Self::Signature => "TOKEN_SIGNATURE",
            Self::Claims => "TOKEN_CLAIMS",
            Self::WrongKind => "TOKEN_WRONG_KIND",
            Self::WrongInstallation => "LEASE_WRONG_INSTALLATION",
            Self::WrongLicense => "LEASE_WRONG_LICENSE",
            Self::LicenseUnverified => "LICENSE_UNVERIFIED",
            Self::EndorsementExpired => "ENDORSEMENT_EXPIRED",
        }
    }
}

impl From<JwsError> for TokenError {
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

/// Nectar's root public keys: the only trust an installation starts from.
#[derive(Clone)]
pub struct TrustRoots {
    keys: HashMap<String, VerifyingKey>,
}

impl fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("TrustRoots").field("kids", &kids).finish()
    }
}

impl TrustRoots {
    fn parse(jwks: &Jwks) -> HashMap<String, VerifyingKey> {
        jwks.keys
            .iter()
            .filter_map(|jwk| jws::public_key(jwk).map(|k| (jwk.kid.clone(), k)))
            .collect()
    }

    /// The roots compiled into this binary (possibly none: then nothing verifies).
    pub fn compiled() -> Self {
        let jwks: Jwks = serde_json::from_str(COMPILED_ROOTS).unwrap_or_default();
        Self {
            keys: Self::parse(&jwks),
        }
    }

    /// The roots this build trusts: the compiled ones, plus — in `dev-trust` builds only — the
    /// JWKS file named by [`DEV_ROOTS_ENV`] (the local stack's root key, made fresh per run). Any
    /// other build refuses to start while that variable is set, rather than silently ignoring
    /// it, so a misconfigured release deployment is noticed.
    pub fn for_this_build() -> Result<Self, JwksError> {
        Self::with_dev_setting(std::env::var_os(DEV_ROOTS_ENV))
    }

    /// [`TrustRoots::for_this_build`] given the value of [`DEV_ROOTS_ENV`].
    fn with_dev_setting(setting: Option<std::ffi::OsString>) -> Result<Self, JwksError> {
        let mut roots = Self::compiled();
        if let Some(path) = setting.filter(|v| !v.is_empty()) {
            if !cfg!(feature = "dev-trust") {
                return Err(JwksError::DevSettingInRelease(DEV_ROOTS_ENV));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| JwksError::Io(format!("{DEV_ROOTS_ENV}: {e}")))?;
            let jwks: Jwks =
                serde_json::from_str(&text).map_err(|e| JwksError::Json(e.to_string()))?;
            let dev = Self::parse(&jwks);
            if dev.is_empty() {
                return Err(JwksError::NoUsableKey);
            }
            tracing::warn!(kids = ?dev.keys().collect::<Vec<_>>(), "development build: trusting extra root keys");
            roots.keys.extend(dev);
        }
        Ok(roots)
    }

    /// Roots from a JWKS — development and test builds only: a release build has no way to make
    /// roots but the compiled ones.
    #[cfg(any(test, feature = "dev-trust", feature = "test-util"))]
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, JwksError> {
        let keys = Self::parse(jwks);
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Self { keys })
    }

    /// Whether there is no root at all (nothing can verify).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The root key ids.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.keys.keys().cloned().collect();
        kids.sort();
        kids
    }
}

#[derive(Clone)]
struct Endorsed {
    key: VerifyingKey,
    use_: TokenKind,
    exp: i64,
    token: String,
}

/// The keys an installation trusts right now: the roots, and every key a root endorsed.
/// Verification is offline and costs one ECDSA verify per token.
#[derive(Clone)]
pub struct TrustedKeys {
    roots: Arc<TrustRoots>,
    endorsed: HashMap<(String, TokenKind), Endorsed>,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut endorsed: Vec<String> = self
            .endorsed
            .iter()
            .map(|((kid, kind), e)| format!("{kid}:{kind:?} until {}", e.exp))
            .collect();
        endorsed.sort();
        f.debug_struct("TrustedKeys")
            .field("roots", &self.roots.kids())
            .field("endorsed", &endorsed)
            .finish()
    }
}

fn claims_of<C: DeserializeOwned>(payload: &[u8], kind: TokenKind) -> Result<C, TokenError> {
    #[derive(serde::Deserialize)]
    struct KindOnly {
        typ: Option<TokenKind>,
    }
    // The kind is read first so a lease offered as a key says WrongKind, not Claims.
    let peek: KindOnly = serde_json::from_slice(payload).map_err(|_| TokenError::Claims)?;
    match peek.typ {
        Some(k) if k == kind => {}
        Some(_) => return Err(TokenError::WrongKind),
        None => return Err(TokenError::Claims),
    }
    serde_json::from_slice(payload).map_err(|_| TokenError::Claims)
}

impl TrustedKeys {
    /// Only the roots; no signing key is trusted until an endorsement is added.
    pub fn new(roots: TrustRoots) -> Self {
        Self {
            roots: Arc::new(roots),
            endorsed: HashMap::new(),
        }
    }

    /// The roots.
    pub fn roots(&self) -> &TrustRoots {
        &self.roots
    }

    /// Checks `token` as an endorsement by a root, still running at `now`, and trusts the key it
    /// names for its kind. A later endorsement of the same key and kind replaces an earlier one
    /// only if it runs longer.
    pub fn endorse(&mut self, token: &str, now: i64) -> Result<EndorsementClaims, TokenError> {
        let payload = jws::verify(token, TokenKind::Endorsement, |kid| {
            self.roots.keys.get(kid)
        })?;
        let claims: EndorsementClaims = claims_of(&payload, TokenKind::Endorsement)?;
        if claims.use_ == TokenKind::Endorsement || claims.jwk.kid != claims.sub {
            // Roots alone endorse: an endorsed key cannot endorse others.
            return Err(TokenError::Claims);
        }
        let key = jws::public_key(&claims.jwk).ok_or(TokenError::Claims)?;
        if claims.exp <= now {
            return Err(TokenError::EndorsementExpired);
        }
        let slot = (claims.sub.clone(), claims.use_);
        if self.endorsed.get(&slot).is_none_or(|e| e.exp < claims.exp) {
            self.endorsed.insert(
                slot,
                Endorsed {
                    key,
                    use_: claims.use_,
                    exp: claims.exp,
                    token: token.to_owned(),
                },
            );
        }
        Ok(claims)
    }

    /// Adds every endorsement that checks out; the others are skipped with a warning (a server
    /// may publish endorsements for keys this installation does not need, or expired ones).
    pub fn endorse_all<'a>(&mut self, tokens: impl IntoIterator<Item = &'a String>, now: i64) {
        for token in tokens {
            if let Err(e) = self.endorse(token, now) {
                tracing::debug!(reason = e.code(), "endorsement not accepted");
            }
        }
    }

    /// The endorsements held, as tokens (what the state file keeps; re-verified on load).
    pub fn endorsements(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self.endorsed.values().map(|e| e.token.clone()).collect();
        tokens.sort();
        tokens
    }

    fn key_for(&self, kid: &str, kind: TokenKind, now: i64) -> Option<&VerifyingKey> {
        self.endorsed
            .get(&(kid.to_owned(), kind))
            .filter(|e| e.use_ == kind && now < e.exp)
            .map(|e| &e.key)
    }

    /// Whether the key `kid` is endorsed for `kind` at `now`.
    pub fn trusts(&self, kid: &str, kind: TokenKind, now: i64) -> bool {
        self.key_for(kid, kind, now).is_some()
    }

    /// Verifies a license key at trusted time `now`: `license+jwt`, signed (low-S ES256) by a key
    /// endorsed for license keys, claims of kind `license`.
    pub fn verify_license(&self, token: &str, now: i64) -> Result<LicenseClaims, TokenError> {
        self.verify(token, TokenKind::License, now)
    }

    /// Verifies a lease for `installation_id` at trusted time `now`: `lease+jwt`, signed by a key
    /// endorsed for leases, claims of kind `lease`, bound to this installation.
    pub fn verify_lease(
        &self,
        token: &str,
        installation_id: &str,
        now: i64,
    ) -> Result<LeaseClaims, TokenError> {
        let claims: LeaseClaims = self.verify(token, TokenKind::Lease, now)?;
        if claims.iid != installation_id {
            return Err(TokenError::WrongInstallation);
        }
        Ok(claims)
    }

    fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        now: i64,
    ) -> Result<C, TokenError> {
        let payload = jws::verify(token, kind, |kid| self.key_for(kid, kind, now))?;
        claims_of(&payload, kind)
    }
}

/// The header `kid` of a token, unverified (to tell "unknown key: fetch endorsements" apart).
pub fn peek_kid(token: &str) -> Option<String> {
    jws::peek_header(token).and_then(|h| h.kid)
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
    use crate::testing::{TEST_ISSUER, TestSigner, TestTrust, lease_claims, license_claims};

    const IID: &str = "inst-1";
    const NOW: i64 = 1_780_272_000;

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn a_lease_signed_by_the_endorsed_lease_key_verifies_for_its_installation() {
        // Arrange
        let trust = TestTrust::new("t");
        let token = trust.lease.sign(&lease_claims(IID, NOW, NOW + 3_600));
        // Act
        let claims = trust
            .keys()
            .verify_lease(&token, IID, NOW)
            .expect("valid lease");
        // Assert
        assert_eq!(claims.iid, IID);
        assert_eq!(claims.typ, TokenKind::Lease);
        assert!(claims.feat.iter().any(|f| f == "workflows"));
        let header = jws::peek_header(&token).expect("header");
        assert_eq!(header.typ.as_deref(), Some("lease+jwt"));
    }

    #[test]
    fn only_the_compiled_roots_make_trust_a_key_with_no_endorsement_signs_nothing() {
        // A customer mints their own key and signs an enterprise license with it. Without a
        // root's endorsement, whatever JWKS they publish or hand over, the key is unknown.
        let trust = TestTrust::new("t");
        let forger = TestSigner::random("t-license"); // even reusing the real kid
        let mut claims = license_claims(NOW, NOW + 10 * 365 * 86_400, &[]);
        claims["feat"] = serde_json::json!(["workflows", "sso", "everything"]);
        let forged = forger.sign(&claims);
        assert_eq!(
            trust.keys().verify_license(&forged, NOW),
            Err(TokenError::Signature)
        );
        let stranger = TestSigner::random("t-other").sign(&claims);
        assert_eq!(
            trust.keys().verify_license(&stranger, NOW),
            Err(TokenError::UnknownKey)
        );
        // Nor can the forger endorse their key: only roots endorse.
        let mut keys = trust.keys();
        let self_endorsed = forger.endorse(TEST_ISSUER, &forger, TokenKind::License, 0, i64::MAX);
        assert_eq!(
            keys.endorse(&self_endorsed, NOW),
            Err(TokenError::UnknownKey)
        );
        // And an endorsed signing key cannot endorse either.
        let by_lease_key =
            trust
                .lease
                .endorse(TEST_ISSUER, &forger, TokenKind::License, 0, i64::MAX);
        assert_eq!(
            keys.endorse(&by_lease_key, NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn the_license_key_and_the_lease_key_each_sign_only_their_own_kind() {
        let trust = TestTrust::new("t");
        let keys = trust.keys();
        // A license key signed by the lease key (the public heartbeat's key) is refused…
        let by_lease_key = trust.lease.sign(&license_claims(NOW, NOW + 86_400, &[]));
        assert_eq!(
            keys.verify_license(&by_lease_key, NOW),
            Err(TokenError::UnknownKey)
        );
        // …and so is a lease signed by the license key.
        let by_license_key = trust.license.sign(&lease_claims(IID, NOW, NOW + 3_600));
        assert_eq!(
            keys.verify_lease(&by_license_key, IID, NOW),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_swapped_header_type_is_refused_whatever_the_claims_say() {
        let trust = TestTrust::new("t");
        let keys = trust.keys();
        let lease = lease_claims(IID, NOW, NOW + 3_600);
        for header_typ in ["license+jwt", "JWT", "jwt", "", "nectar-endorsement+jwt"] {
            let token = trust.lease.sign_with_type(header_typ, &lease);
            assert_eq!(
                keys.verify_lease(&token, IID, NOW),
                Err(TokenError::Type),
                "{header_typ}"
            );
        }
        // Claim and header disagreeing the other way round: header says lease, claim says license.
        let mut claims = lease.clone();
        claims["typ"] = "license".into();
        let token = trust.lease.sign_with_type("lease+jwt", &claims);
        assert_eq!(
            keys.verify_lease(&token, IID, NOW),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn high_s_twins_of_real_tokens_are_refused() {
        let trust = TestTrust::new("t");
        let keys = trust.keys();
        let key = trust.license.sign(&license_claims(NOW, NOW + 86_400, &[]));
        let lease = trust.lease.sign(&lease_claims(IID, NOW, NOW + 3_600));
        assert!(keys.verify_license(&key, NOW).is_ok());
        assert!(keys.verify_lease(&lease, IID, NOW).is_ok());
        assert_eq!(
            keys.verify_license(&jws::high_s_variant(&key), NOW),
            Err(TokenError::NonCanonical)
        );
        assert_eq!(
            keys.verify_lease(&jws::high_s_variant(&lease), IID, NOW),
            Err(TokenError::NonCanonical)
        );
        let mut fresh = TrustedKeys::new(trust.roots());
        assert_eq!(
            fresh.endorse(&jws::high_s_variant(&trust.endorsements[0]), NOW),
            Err(TokenError::NonCanonical)
        );
    }

    #[test]
    fn an_endorsement_counts_only_until_its_end() {
        let trust = TestTrust::new("t");
        let short = trust.root.endorse(
            TEST_ISSUER,
            &trust.license,
            TokenKind::License,
            NOW,
            NOW + 100,
        );
        let mut keys = TrustedKeys::new(trust.roots());
        keys.endorse(&short, NOW).expect("running");
        let key = trust.license.sign(&license_claims(NOW, NOW + 86_400, &[]));
        assert!(keys.verify_license(&key, NOW + 99).is_ok());
        assert_eq!(
            keys.verify_license(&key, NOW + 100),
            Err(TokenError::UnknownKey)
        );
        let mut later = TrustedKeys::new(trust.roots());
        assert_eq!(
            later.endorse(&short, NOW + 100),
            Err(TokenError::EndorsementExpired)
        );
    }

    #[test]
    fn a_lease_for_another_installation_is_rejected() {
        let trust = TestTrust::new("t");
        let token = trust.lease.sign(&lease_claims("inst-2", NOW, NOW + 3_600));
        assert_eq!(
            trust.keys().verify_lease(&token, IID, NOW),
            Err(TokenError::WrongInstallation)
        );
    }

    #[test]
    fn a_lease_with_an_edited_payload_is_rejected() {
        let trust = TestTrust::new("t");
        let token = trust.lease.sign(&lease_claims(IID, NOW, NOW + 3_600));
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = lease_claims(IID, NOW, NOW + 3_600);
        forged["feat"] = serde_json::json!(["workflows", "sso", "everything"]);
        let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
        assert_eq!(
            trust.keys().verify_lease(&tampered, IID, NOW),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn alg_none_and_hs256_are_rejected_whatever_the_payload() {
        let trust = TestTrust::new("t");
        let keys = trust.keys();
        let payload = b64(&lease_claims(IID, NOW, NOW + 3_600));
        for header in [
            serde_json::json!({"alg": "none", "typ": "lease+jwt", "kid": "t-lease"}),
            serde_json::json!({"alg": "None", "kid": "t-lease"}),
            serde_json::json!({"alg": "HS256", "typ": "lease+jwt", "kid": "t-lease"}),
        ] {
            for sig in ["", "c2lnbmF0dXJl"] {
                let token = format!("{}.{payload}.{sig}", b64(&header));
                assert_eq!(
                    keys.verify_lease(&token, IID, NOW),
                    Err(TokenError::Algorithm),
                    "{header}"
                );
            }
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let keys = TestTrust::new("t").keys();
        let huge = "a".repeat(jws::MAX_TOKEN_LEN + 1);
        for junk in ["", "abc", "a.b", "a.b.c.d", "...", "é.é.é", huge.as_str()] {
            assert_eq!(
                keys.verify_lease(junk, IID, NOW),
                Err(TokenError::Malformed),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn roots_need_a_p256_signing_key() {
        let rsa: Jwks =
            serde_json::from_str(r#"{"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"r"}]}"#)
                .expect("json");
        assert_eq!(
            TrustRoots::from_jwks(&rsa).map(|_| ()),
            Err(JwksError::NoUsableKey)
        );
    }

    #[test]
    fn a_release_build_refuses_the_development_roots_setting() {
        // This test binary is not a `dev-trust` build (the feature is off for `cargo test -p
        // nectar-client`), so it behaves as a release build does.
        if cfg!(feature = "dev-trust") {
            return;
        }
        let result = TrustRoots::with_dev_setting(Some("/tmp/any.jwks.json".into()));
        assert_eq!(
            result.map(|_| ()),
            Err(JwksError::DevSettingInRelease(DEV_ROOTS_ENV))
        );
    }

    #[test]
    fn domain_restrictions_match_like_the_server() {
        let trust = TestTrust::new("t");
        let key = trust
            .license
            .sign(&license_claims(1, 2, &["acme.com", "*.acme.io"]));
        let claims = trust.keys().verify_license(&key, NOW).expect("valid");
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
