//! What signed tokens carry: their kind, the license and lease claims, the limits inside them,
//! and the JWK set that publishes the keys they verify against.
//!
//! Signing and verification stay with each side (KMS and `jsonwebtoken` on the server, a pinned
//! ES256 verifier in installations); only the shapes are shared, so both read the same claims.

use serde::{Deserialize, Serialize};

use crate::licensing::LicenseStatus;
use crate::vocabulary::{Vocabulary, Wire};

/// What a signed token is for. Every token carries one, so a lease can never pass as a license
/// key nor the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A customer's license key.
    License,
    /// A short-lived installation lease.
    Lease,
}

/// Numeric limits carried by a license. Names are snake_case identifiers on purpose: they are the
/// names used in keys, claims and usage counters, in the API as everywhere else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Workflow executions per calendar month (UTC).
    pub workflows_per_month: u64,
    /// Named users.
    pub users: u64,
    /// Storage, in GB.
    pub storage_gb: u64,
    /// Concurrently active installations (seats).
    pub installations: u64,
}

/// A partial [`Limits`] given at issuance; absent fields keep the plan's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Overrides [`Limits::workflows_per_month`].
    pub workflows_per_month: Option<u64>,
    /// Overrides [`Limits::users`].
    pub users: Option<u64>,
    /// Overrides [`Limits::storage_gb`].
    pub storage_gb: Option<u64>,
    /// Overrides [`Limits::installations`].
    pub installations: Option<u64>,
}

impl Limits {
    /// Applies the overrides that are present.
    pub fn with(self, o: LimitOverrides) -> Self {
        Self {
            workflows_per_month: o.workflows_per_month.unwrap_or(self.workflows_per_month),
            users: o.users.unwrap_or(self.users),
            storage_gb: o.storage_gb.unwrap_or(self.storage_gb),
            installations: o.installations.unwrap_or(self.installations),
        }
    }
}

/// The claims of a license key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct LicenseClaims<V: Vocabulary = Wire> {
    /// Issuer; must equal the configured issuer.
    pub iss: String,
    /// Token kind; must be [`TokenKind::License`].
    pub typ: TokenKind,
    /// The license id.
    pub jti: V::LicenseId,
    /// Product line, `NECTAR-<PLAN>-<YEAR>`.
    pub lic: String,
    /// Customer id.
    pub cid: V::CustomerId,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Entitled features at issuance.
    pub feat: Vec<V::Feature>,
    /// Limits at issuance.
    pub limits: Limits,
    /// Domain restrictions at issuance (empty: any domain).
    pub domain_restrictions: Vec<V::DomainPattern>,
}

impl LicenseClaims<Wire> {
    /// The plan, from the license id `NECTAR-<PLAN>-<YEAR>-…` (lower case), if it has that shape.
    pub fn plan(&self) -> Option<String> {
        self.jti.split('-').nth(1).map(str::to_ascii_lowercase)
    }

    /// Whether `domain` is allowed, by the server's rule (so offline answers agree).
    pub fn allows_domain(&self, domain: Option<&str>) -> bool {
        crate::rules::domain_allowed(&self.domain_restrictions, domain)
    }
}

/// The claims of an installation lease: what an installation may do offline until `exp` (and,
/// for work already running, `grace` seconds more), bound to one license and one installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct LeaseClaims<V: Vocabulary = Wire> {
    /// Issuer; must equal the configured issuer.
    pub iss: String,
    /// Token kind; must be [`TokenKind::Lease`].
    pub typ: TokenKind,
    /// This lease's own id (UUIDv7).
    pub jti: String,
    /// The license id.
    pub lid: V::LicenseId,
    /// The installation the lease is bound to.
    pub iid: V::InstallationId,
    /// Customer id.
    pub cid: V::CustomerId,
    /// Plan of the license.
    pub plan: V::Plan,
    /// License status when signed (always `active`: other states get no lease).
    pub status: LicenseStatus,
    /// Entitled features.
    pub feat: Vec<V::Feature>,
    /// Limits.
    pub limits: Limits,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Lease expiry (Unix seconds); never after the license's own expiry.
    pub exp: i64,
    /// Server time when signed (Unix seconds): a trusted time reading for clock-tamper checks.
    pub ts: i64,
    /// The license's expiry (Unix seconds).
    pub lexp: i64,
    /// Offline grace after `exp`, in seconds (plan setting).
    pub grace: i64,
}

/// A public key in JWK form (RFC 7517/7518). The server publishes EC P-256 signing keys only;
/// readers ignore any other key, so the optional members default rather than fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    #[serde(default)]
    pub crv: String,
    /// Affine x, base64url.
    #[serde(default)]
    pub x: String,
    /// Affine y, base64url.
    #[serde(default)]
    pub y: String,
    /// Key id, as in token headers.
    #[serde(default)]
    pub kid: String,
    /// `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// A JWK set, as served at `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwks {
    /// Every key that may have signed a live token.
    pub keys: Vec<Jwk>,
}
