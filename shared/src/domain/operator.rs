//! Operators: the people who call the admin API, each with a role and a bearer token of their
//! own that the store holds only as its SHA-256 — plus the break-glass bootstrap operator, whose
//! token hash comes from configuration (`ADMIN_TOKEN_SHA256`) and is never stored.
//!
//! Roles are ordered: `viewer` < `support` < `admin`; each includes what the ones below may do.
//! Which role each admin route needs is decided in one table, `crate::http::access`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::ids::ParseError;
use super::license::Actor;

/// The name the bootstrap token acts under in the audit trail; no stored operator may take it.
pub const BOOTSTRAP_NAME: &str = "bootstrap";

/// An operator's id: a UUID (time-ordered v7 when we make it, so listings come in creation
/// order), shown and accepted only in its canonical hyphenated lower-case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OperatorId(Uuid);

impl OperatorId {
    /// Parses the canonical form (`0192e4c4-7b1a-7cde-8f00-123456789abc`) only: one spelling per
    /// id, so a path, a cursor and a stored key always agree.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let id = Uuid::parse_str(raw).map_err(|_| ParseError::OperatorId)?;
        if id.hyphenated().to_string() != raw {
            return Err(ParseError::OperatorId);
        }
        Ok(Self(id))
    }

    /// Wraps an already generated UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl TryFrom<String> for OperatorId {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        Self::parse(&raw)
    }
}

impl From<OperatorId> for String {
    fn from(id: OperatorId) -> Self {
        id.to_string()
    }
}

/// What an operator may do; each role includes the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    /// Reads: lookups, audit trails, usage.
    Viewer,
    /// Viewer + the day-to-day license changes: suspend, reinstate, renew.
    Support,
    /// Support + issuing, revoking, customers, offline activations and operators.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: &[Role] = <Role as strum::VariantArray>::VARIANTS;

    /// The API name (`viewer`, `support`, `admin`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the API name (exact, lower-case).
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }

    /// Whether this role may do what `needed` may.
    pub fn includes(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an operator's token works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum OperatorStatus {
    /// The token authenticates.
    Active,
    /// For good: the token no longer authenticates and the name is free again.
    Disabled,
}

impl OperatorStatus {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An operator's name: 1 to 64 characters of `A-Z a-z 0-9 . _ @ -`, starting with a letter or
/// digit (a handle such as `alice` or `alice@nectar.io`, safe to print in an audit trail).
/// Unique among active operators, ignoring case; `bootstrap` is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct OperatorName(String);

impl OperatorName {
    /// Longest name.
    pub const MAX_LEN: usize = 64;

    /// Parses a name as given (no trimming: what is accepted is exactly what is shown).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok =
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
        if !first_ok || !rest_ok || raw.len() > Self::MAX_LEN {
            return Err(ParseError::OperatorName);
        }
        if raw.eq_ignore_ascii_case(BOOTSTRAP_NAME) {
            return Err(ParseError::ReservedOperatorName);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is decided on (lower-case).
    pub fn unique_key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An operator's bearer token: `nop_` + 43 base64url characters (32 random bytes). The prefix
/// lets secret scanners recognise a leaked one. Held as a secret: `Debug` never prints it.
pub struct OperatorToken(SecretString);

impl OperatorToken {
    /// The prefix every operator token starts with.
    pub const PREFIX: &str = "nop_";
    /// Length of a token: the prefix + base64url of 32 bytes without padding.
    pub const LEN: usize = 4 + 43;

    /// A token from 32 bytes of a cryptographically secure generator.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretString::from(format!(
            "{}{}",
            Self::PREFIX,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// Whether `raw` has the shape of an operator token. Only such a string is looked up, so a
    /// garbage `Authorization` header costs no read. The shape is public knowledge; checking it
    /// tells nothing about any token's value.
    pub fn has_token_shape(raw: &str) -> bool {
        raw.len() == Self::LEN
            && raw.starts_with(Self::PREFIX)
            && raw[Self::PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// The token, to hand to its operator once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Its hash, as stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }
}

impl fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorToken(<redacted>)")
    }
}

/// The SHA-256 of a bearer token: what the store keeps and looks tokens up by. A token has 256
/// random bits, so its hash needs no salt or stretching: no dictionary reaches it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token` (any bearer string).
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// From 64 hex characters.
    pub fn from_hex(hex_hash: &str) -> Option<Self> {
        hex::decode(hex_hash).ok()?.try_into().ok().map(Self)
    }

    /// As 64 lower-case hex characters (the stored form).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Compares in constant time: where a hash derived from a presented secret meets a stored
    /// one, the time taken must not depend on how many bytes agree.
    pub fn matches(&self, other: &TokenHash) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not a secret, but nothing a log reader needs either.
        f.write_str("TokenHash(..)")
    }
}

/// A stored operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Id.
    pub id: OperatorId,
    /// Name (unique among active operators, ignoring case).
    pub name: OperatorName,
    /// Contact address, if given.
    pub email: Option<String>,
    /// What it may do.
    pub role: Role,
    /// Whether its token works.
    pub status: OperatorStatus,
    /// Creation (whole seconds).
    pub created_at: OffsetDateTime,
    /// When its current token was made (creation or last rotation; whole seconds).
    pub last_rotated_at: OffsetDateTime,
    /// The hash of its current token.
    pub token_hash: TokenHash,
}

impl Operator {
    /// What authenticating with its token yields.
    pub fn credential(&self) -> OperatorCredential {
        OperatorCredential {
            operator_id: self.id,
            name: self.name.clone(),
            role: self.role,
            token_hash: self.token_hash.clone(),
        }
    }
}

/// What the store keeps under a token's hash: enough to authorise a request in one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCredential {
    /// Whose token it is.
    pub operator_id: OperatorId,
    /// Its name, for the audit trail.
    pub name: OperatorName,
    /// Its role.
    pub role: Role,
    /// The hash it is stored under (compared again, in constant time, after the lookup).
    pub token_hash: TokenHash,
}

/// The authenticated caller of an admin route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The stored operator; `None` for the bootstrap token.
    pub id: Option<OperatorId>,
    /// Its name (`bootstrap` for the bootstrap token).
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Principal {
    /// The break-glass operator of the bootstrap token: an `admin`.
    pub fn bootstrap() -> Self {
        Self {
            id: None,
            name: BOOTSTRAP_NAME.into(),
            role: Role::Admin,
        }
    }

    /// A stored operator, from its credential.
    pub fn operator(credential: &OperatorCredential) -> Self {
        Self {
            id: Some(credential.operator_id),
            name: credential.name.to_string(),
            role: credential.role,
        }
    }

    /// How it is named in audit trails.
    pub fn actor(&self) -> Actor {
        Actor::operator(&self.name, self.id.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_ids_are_accepted_only_in_canonical_form() {
        let id = "0192e4c4-7b1a-7cde-8f00-123456789abc";
        assert_eq!(OperatorId::parse(id).expect("canonical").to_string(), id);
        for bad in [
            "0192E4C4-7B1A-7CDE-8F00-123456789ABC",
            "0192e4c47b1a7cde8f00123456789abc",
            "{0192e4c4-7b1a-7cde-8f00-123456789abc}",
            "urn:uuid:0192e4c4-7b1a-7cde-8f00-123456789abc",
            "",
            "alice",
        ] {
            assert_eq!(OperatorId::parse(bad), Err(ParseError::OperatorId), "{bad}");
        }
    }

    #[test]
    fn roles_include_the_ones_below_them() {
        assert!(Role::Admin.includes(Role::Support));
        assert!(Role::Admin.includes(Role::Viewer));
        assert!(Role::Support.includes(Role::Viewer));
        assert!(!Role::Support.includes(Role::Admin));
        assert!(!Role::Viewer.includes(Role::Support));
        assert_eq!(Role::ALL, [Role::Viewer, Role::Support, Role::Admin]);
        assert_eq!(Role::parse("support"), Some(Role::Support));
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(
            serde_json::to_value(Role::Viewer).expect("json"),
            serde_json::json!("viewer")
        );
    }

    #[test]
    fn names_are_handles_and_bootstrap_is_reserved_whatever_its_case() {
        for ok in [
            "alice",
            "a",
            "alice@nectar.io",
            "ops-2.support_1",
            &"x".repeat(64),
        ] {
            assert_eq!(OperatorName::parse(ok).expect(ok).as_str(), ok);
        }
        for bad in [
            "",
            " alice",
            "alice ",
            "-alice",
            "al ice",
            "é",
            "a/b",
            &"x".repeat(65),
        ] {
            assert_eq!(
                OperatorName::parse(bad),
                Err(ParseError::OperatorName),
                "{bad:?}"
            );
        }
        for reserved in ["bootstrap", "Bootstrap", "BOOTSTRAP"] {
            assert_eq!(
                OperatorName::parse(reserved),
                Err(ParseError::ReservedOperatorName)
            );
        }
        assert_eq!(
            OperatorName::parse("Alice").expect("ok").unique_key(),
            "alice"
        );
    }

    #[test]
    fn tokens_have_a_recognisable_shape_hash_to_their_lookup_key_and_never_print() {
        let token = OperatorToken::from_random_bytes([7; 32]);
        assert!(OperatorToken::has_token_shape(token.expose()));
        assert_eq!(token.expose().len(), OperatorToken::LEN);
        assert!(token.expose().starts_with("nop_"));
        assert_eq!(format!("{token:?}"), "OperatorToken(<redacted>)");
        assert!(token.hash().matches(&TokenHash::of(token.expose())));
        assert!(!token.hash().matches(&TokenHash::of("nop_other")));
        let hex = token.hash().to_hex();
        assert_eq!(TokenHash::from_hex(&hex), Some(token.hash()));
        assert_eq!(TokenHash::from_hex("abc"), None);
        for not_a_token in ["", "guess", "nop_", &format!("nop_{}", "*".repeat(43))] {
            assert!(
                !OperatorToken::has_token_shape(not_a_token),
                "{not_a_token}"
            );
        }
        assert_ne!(
            OperatorToken::from_random_bytes([8; 32]).expose(),
            token.expose()
        );
    }

    #[test]
    fn the_bootstrap_principal_is_an_admin_named_bootstrap_without_an_id() {
        let p = Principal::bootstrap();
        assert_eq!((p.role, p.id), (Role::Admin, None));
        assert_eq!(p.actor().as_str(), "operator:bootstrap");
    }
}
