//! Licenses, installations, customers and audit entries: the entities the control plane stores.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::ids::{CustomerId, DomainPattern, Feature, Hostname, InstallationId, LicenseId};
use super::plan::{Limits, Plan};

// The status enums are part of the wire contract (views and lease claims carry them).
pub use nectar_protocol::licensing::{InstallationStatus, LicenseStatus};

/// A license as stored: the authoritative state behind a signed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    /// Human-readable id, also the key's `jti`.
    pub id: LicenseId,
    /// Owner.
    pub customer_id: CustomerId,
    /// Tier the defaults came from.
    pub plan: Plan,
    /// Current state.
    pub status: LicenseStatus,
    /// Entitled features.
    pub features: BTreeSet<Feature>,
    /// Numeric limits; `limits.installations` is the seat count.
    pub limits: Limits,
    /// Empty means "any domain".
    pub domain_restrictions: Vec<DomainPattern>,
    /// When the key was issued (whole seconds).
    pub issued_at: OffsetDateTime,
    /// When the license stops validating (whole seconds).
    pub expires_at: OffsetDateTime,
    /// Installations currently holding a seat.
    pub active_installations: u64,
    /// Last state change (whole seconds).
    pub updated_at: OffsetDateTime,
    /// Commercial terms (channel, billing, price override).
    pub contract: super::revenue::Contract,
    /// Bumped by every change of the license's terms (not of its status or seats): the
    /// optimistic-concurrency token of [`super::ports::LicenseAmender::amend`].
    pub revision: u64,
    /// Keys issued (`iat`) before this instant are superseded: they answer `REVOKED`. Set when
    /// an operator change asks to revoke the previous key, and always on a move to another
    /// customer (the old key names the old owner).
    pub keys_valid_from: Option<OffsetDateTime>,
}

impl License {
    /// The `iat` of a key signed for this license at `now`: never before
    /// [`License::keys_valid_from`], so a key signed in the same second as a supersession (which
    /// sets the floor one second ahead) is not itself superseded.
    pub fn key_iat(&self, now: OffsetDateTime) -> OffsetDateTime {
        let now = whole_seconds(now);
        self.keys_valid_from.map_or(now, |floor| floor.max(now))
    }

    /// Whether a key issued at `iat` (Unix seconds) was superseded by a later one.
    pub fn supersedes(&self, iat: i64) -> bool {
        self.keys_valid_from
            .is_some_and(|floor| iat < floor.unix_timestamp())
    }

    /// Whether the license is past its expiry date at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }

    /// Whether `host` satisfies the domain restrictions (`None` passes only if unrestricted).
    pub fn allows_domain(&self, host: Option<&Hostname>) -> bool {
        if self.domain_restrictions.is_empty() {
            return true;
        }
        host.is_some_and(|h| self.domain_restrictions.iter().any(|p| p.matches(h)))
    }

    /// Whether `feature` is entitled.
    pub fn has_feature(&self, feature: &Feature) -> bool {
        self.features.contains(feature)
    }

    /// Whether every seat is taken.
    pub fn seats_full(&self) -> bool {
        self.active_installations >= self.limits.installations
    }
}

/// One running copy of the self-hosted product, known from its heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// The installation's own id.
    pub id: InstallationId,
    /// The license it runs under.
    pub license_id: LicenseId,
    /// Seat state.
    pub status: InstallationStatus,
    /// Product version last reported.
    pub version: String,
    /// Domain last reported, if any.
    pub domain: Option<Hostname>,
    /// First heartbeat.
    pub first_seen_at: OffsetDateTime,
    /// Latest heartbeat.
    pub last_seen_at: OffsetDateTime,
    /// Latest gauge readings reported.
    pub gauges: super::usage::Gauges,
    /// The lease most recently signed for it, reused until half its life has passed.
    pub lease: Option<Lease>,
}

/// A signed installation lease as stored with its installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The compact JWS.
    pub token: LeaseToken,
    /// `iat` (whole seconds).
    pub issued_at: OffsetDateTime,
    /// `exp` (whole seconds).
    pub expires_at: OffsetDateTime,
}

impl Lease {
    /// Whether the lease still has more than half its life left at `now`: then it is handed out
    /// again instead of signing a new one, so KMS signing scales with installations, not calls.
    pub fn reusable_at(&self, now: OffsetDateTime) -> bool {
        let life = self.expires_at - self.issued_at;
        self.expires_at - now > life / 2
    }
}

/// A lease token. Its `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// Wraps a signed token.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The token text, for the installation it belongs to.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseToken(<redacted>)")
    }
}

/// A paying organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Stable id (also the key's `cid`).
    pub id: CustomerId,
    /// Display name.
    pub name: String,
    /// Where notices go.
    pub email: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// Who did something, recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// An operator authenticated on the admin API: `operator:<name> (<id>)`, or
    /// `operator:bootstrap` for the bootstrap token, which has no stored id. Names are handles
    /// (see `OperatorName`), so the text needs no escaping.
    pub fn operator(name: &str, id: Option<&super::operator::OperatorId>) -> Self {
        match id {
            Some(id) => Self(format!("operator:{name} ({id})")),
            None => Self(format!("operator:{name}")),
        }
    }

    /// An installation acting through its heartbeat.
    pub fn installation(id: &super::ids::InstallationId) -> Self {
        Self(format!("installation:{id}"))
    }

    /// A non-human caller, such as the CLI or a scheduled job.
    pub fn system(name: &str) -> Self {
        Self(format!("system:{name}"))
    }

    /// An actor read back from storage, as it was recorded.
    pub fn recorded(text: String) -> Self {
        Self(text)
    }

    /// The recorded text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One state change, written in the same transaction as the change itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// What happened, e.g. `license.revoked`.
    pub action: String,
    /// Who did it.
    pub actor: Actor,
    /// Why, as given by the actor.
    pub reason: Option<String>,
    /// Status before, for status changes.
    pub from: Option<LicenseStatus>,
    /// Status after, for status changes.
    pub to: Option<LicenseStatus>,
    /// When.
    pub at: OffsetDateTime,
}

/// Truncates to whole seconds: keys carry seconds, and stored timestamps must sort as text.
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn license(restrictions: &[&str]) -> License {
        License {
            id: LicenseId::parse("NECTAR-STARTER-2026-AAAAAAAA").expect("valid"),
            customer_id: CustomerId::from_uuid(uuid::Uuid::nil()),
            plan: Plan::Starter,
            status: LicenseStatus::Active,
            features: Plan::Starter.default_features(),
            limits: Plan::Starter.default_limits(),
            domain_restrictions: restrictions
                .iter()
                .map(|r| DomainPattern::parse(r).expect("valid"))
                .collect(),
            issued_at: datetime!(2026-01-01 0:00 UTC),
            expires_at: datetime!(2027-01-01 0:00 UTC),
            active_installations: 0,
            revision: 0,
            keys_valid_from: None,
            updated_at: datetime!(2026-01-01 0:00 UTC),
            contract: Default::default(),
        }
    }

    #[test]
    fn a_license_expires_at_its_expiry_instant_not_a_second_later() {
        let l = license(&[]);
        assert!(!l.is_expired_at(datetime!(2026-12-31 23:59:59 UTC)));
        assert!(l.is_expired_at(datetime!(2027-01-01 0:00 UTC)));
    }

    #[test]
    fn an_unrestricted_license_allows_any_domain_or_none() {
        let l = license(&[]);
        assert!(l.allows_domain(None));
        assert!(l.allows_domain(Some(&Hostname::parse("x.io").expect("valid"))));
    }

    #[test]
    fn a_restricted_license_needs_a_matching_domain() {
        let l = license(&["app.acme.com", "*.acme.dev"]);
        let host = |s: &str| Hostname::parse(s).expect("valid");
        assert!(!l.allows_domain(None));
        assert!(l.allows_domain(Some(&host("APP.acme.com."))));
        assert!(l.allows_domain(Some(&host("eu.acme.dev"))));
        assert!(!l.allows_domain(Some(&host("acme.dev"))));
        assert!(!l.allows_domain(Some(&host("evilacme.dev"))));
    }

    #[test]
    fn operators_are_named_with_their_id_in_the_audit_trail() {
        let id = crate::domain::operator::OperatorId::parse("0192e4c4-7b1a-7cde-8f00-123456789abc")
            .expect("id");
        assert_eq!(
            Actor::operator("alice", Some(&id)).as_str(),
            "operator:alice (0192e4c4-7b1a-7cde-8f00-123456789abc)"
        );
        assert_eq!(
            Actor::operator("bootstrap", None).as_str(),
            "operator:bootstrap"
        );
    }
}
