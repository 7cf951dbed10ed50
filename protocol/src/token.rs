//! What signed tokens carry: their kind, the license and lease claims, the limits inside them,
//! and the JWK set that publishes the keys they verify against.
//!
//! Signing and verification stay with each side (KMS and `jsonwebtoken` on the server, a pinned
//! ES256 verifier in installations); only the shapes are shared, so both read the same claims.

use serde::{Deserialize, Serialize};

use crate::licensing::LicenseStatus;
use crate::vocabulary::{Vocabulary, Wire};

/// What a signed token is for. Every token carries one twice — as the JOSE header `typ`
/// ([`TokenKind::media_type`], RFC 8725 §3.11 explicit typing) and as the `typ` claim — so a
/// lease can never pass as a license key, nor either as an endorsement, and each kind is signed
/// by its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A customer's license key (signed by a license signing key).
    License,
    /// A short-lived installation lease (signed by the lease signing key).
    Lease,
    /// A root key's statement that a signing key may sign tokens of one kind until a date.
    Endorsement,
}

impl TokenKind {
    /// The JOSE header `typ` of this kind.
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::License => "license+jwt",
            Self::Lease => "lease+jwt",
            Self::Endorsement => "nectar-endorsement+jwt",
        }
    }
}

/// The claims of an endorsement: root key `iss`-named key vouches that the P-256 key `jwk`
/// (named `sub` in token headers) may sign tokens of kind `use` from `iat` until `exp`.
///
/// Installations carry only the root public keys (compiled in); every other key they accept
/// comes with an endorsement, so Nectar rotates signing keys without shipping a new agent, and a
/// key nobody endorsed — whoever serves it — signs nothing an installation believes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndorsementClaims {
    /// Issuer (the token issuer of the deployment).
    pub iss: String,
    /// Always [`TokenKind::Endorsement`].
    pub typ: TokenKind,
    /// The endorsed key's id, as signed tokens name it in their header `kid`.
    pub sub: String,
    /// The one kind of token the key may sign.
    #[serde(rename = "use")]
    pub use_: TokenKind,
    /// The endorsed public key.
    pub jwk: Jwk,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// The endorsement's end (Unix seconds): after it, tokens signed by the key are refused.
    pub exp: i64,
}

/// An offline activation, as `nectar-admin activation issue` writes it and the agent reads from
/// `NECTAR_ACTIVATION_FILE`: a long-lived lease for one installation plus the endorsements that
/// vouch for its signing keys. Only `lease` and `endorsements` are trusted, and only because they
/// are signed; the other members are for people reading the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationFile {
    /// Always [`ACTIVATION_FORMAT`].
    pub format: String,
    /// The license (informational).
    pub license_id: String,
    /// The installation the lease is bound to (informational; the lease's `iid` decides).
    pub installation_id: String,
    /// Lease expiry, RFC 3339 (informational; the lease's `exp` decides).
    pub expires_at: String,
    /// The lease (compact JWS, `lease+jwt`).
    pub lease: String,
    /// Endorsements of the keys that signed the lease and the license key.
    pub endorsements: Vec<String>,
}

/// The `format` of an [`ActivationFile`].
pub const ACTIVATION_FORMAT: &str = "nectar-activation/1";

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
    /// Endorsements (compact JWS, [`EndorsementClaims`]) of those keys by a root key. An extra
    /// member: generic JOSE readers ignore it; installations trust a key only through one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endorsements: Vec<String>,
}
