//! Identifier and name newtypes parsed once at the edge: once constructed they are known valid.

use std::fmt;

use nectar_protocol::Vocabulary;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::plan::Plan;

/// Why a value given at the edge could not become a domain identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A license id that is not `NECTAR-<PLAN>-<YEAR>-<8 chars A-Z0-9>`.
    #[error("license id must look like NECTAR-ENTERPRISE-2026-7K2M9QXA")]
    LicenseId,
    /// A customer id that is not a UUID.
    #[error("customer id must be a UUID")]
    CustomerId,
    /// An installation id outside 1..=128 chars of `[A-Za-z0-9._:-]`.
    #[error("installation id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")]
    InstallationId,
    /// A feature name outside 1..=64 chars of `[a-z0-9_]` starting with a letter.
    #[error("feature must be 1 to 64 characters of a-z 0-9 _ starting with a letter")]
    Feature,
    /// Not a DNS host name.
    #[error("domain must be a DNS host name such as app.example.com")]
    Domain,
    /// A usage event id outside 1..=128 chars of `[A-Za-z0-9._:-]`.
    #[error("event id must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")]
    EventId,
    /// Not a `YYYY-MM` period.
    #[error("period must be a month such as 2026-07")]
    Period,
    /// Not a host name nor a `*.` wildcard over one.
    #[error("domain restriction must be a host name or a wildcard such as *.example.com")]
    DomainPattern,
    /// Not a canonical (hyphenated) UUID.
    #[error("execution id must be a UUID such as 0192e4c4-7b1a-7cde-8f00-123456789abc")]
    ExecutionId,
    /// Not a canonical (hyphenated, lower-case) UUID.
    #[error("operator id must be a lower-case UUID such as 0192e4c4-7b1a-7cde-8f00-123456789abc")]
    OperatorId,
    /// An operator name outside 1..=64 chars of `[A-Za-z0-9._@-]` starting with a letter or digit.
    #[error(
        "name must be 1 to 64 characters of A-Z a-z 0-9 . _ @ - starting with a letter or digit"
    )]
    OperatorName,
    /// The name of the break-glass operator, which no stored operator may take.
    #[error("name `bootstrap` is reserved for the bootstrap token")]
    ReservedOperatorName,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// Human-readable license id, `NECTAR-<PLAN>-<YEAR>-<8 chars A-Z0-9>`: what support staff read
    /// on the phone. Not a secret; the signed key is.
    LicenseId
);
string_id!(
    /// Identifies one running installation of the self-hosted product (chosen by the installation).
    InstallationId
);
string_id!(
    /// A feature name such as `integrations`; entitlement is decided by the license, not by parsing.
    Feature
);
string_id!(
    /// A lower-cased DNS host name without trailing dot.
    Hostname
);

const LICENSE_SUFFIX_LEN: usize = 8;
const LICENSE_SUFFIX_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl LicenseId {
    /// Parses `NECTAR-<PLAN>-<YEAR>-<SUFFIX>`; case-sensitive (ids are printed upper-case).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let parts: Vec<&str> = raw.split('-').collect();
        let ok = matches!(parts.as_slice(), ["NECTAR", plan, year, suffix]
            if Plan::from_id_segment(plan).is_some()
                && year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit())
                && suffix.len() == LICENSE_SUFFIX_LEN
                && suffix.bytes().all(|b| LICENSE_SUFFIX_ALPHABET.contains(&b)));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError::LicenseId)
        }
    }

    /// Builds a new id; `suffix` must come from [`LicenseId::random_suffix`] or an injected source.
    pub fn new(plan: Plan, year: i32, suffix: &str) -> Result<Self, ParseError> {
        Self::parse(&format!("NECTAR-{}-{year:04}-{suffix}", plan.id_segment()))
    }

    /// Eight random characters from A-Z0-9 (about 41 bits: ids are not secrets, only unique).
    pub fn random_suffix<R: rand::Rng + ?Sized>(rng: &mut R) -> String {
        (0..LICENSE_SUFFIX_LEN)
            .map(|_| {
                let i = rng.random_range(0..LICENSE_SUFFIX_ALPHABET.len());
                char::from(LICENSE_SUFFIX_ALPHABET[i])
            })
            .collect()
    }

    /// The product line the key's `lic` claim carries: `NECTAR-<PLAN>-<YEAR>`.
    pub fn product_line(&self) -> &str {
        let cut = self.0.len() - LICENSE_SUFFIX_LEN - 1;
        &self.0[..cut]
    }
}

// The syntax rules are the wire contract's, so the agent checks exactly what we check.
pub(crate) use nectar_protocol::rules::is_client_id;

impl InstallationId {
    /// 1..=128 characters of `[A-Za-z0-9._:-]`: UUIDs, host names and k8s pod ids all fit.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = is_client_id(raw);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError::InstallationId)
        }
    }
}

impl Feature {
    /// 1..=64 characters of `[a-z0-9_]`, starting with a letter.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if nectar_protocol::rules::is_feature_name(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseError::Feature)
        }
    }
}

impl Hostname {
    /// Accepts any case and one trailing dot; stores lower case without the dot. Labels are
    /// 1..=63 chars of `[a-z0-9-]` not starting or ending with `-`; at most 253 chars in all.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        nectar_protocol::rules::canonical_hostname(raw)
            .map(Self)
            .ok_or(ParseError::Domain)
    }
}

/// A customer's id (a UUID, shown and stored hyphenated lower-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(Uuid);

impl CustomerId {
    /// Parses a UUID in any of its usual textual forms.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| ParseError::CustomerId)
    }

    /// Wraps an already generated UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A domain restriction: an exact host name or `*.<host>` matching any deeper name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DomainPattern {
    /// Matches this host name only.
    Exact(Hostname),
    /// `*.example.com`: matches `a.example.com` and `a.b.example.com`, not `example.com` itself
    /// and not `evilexample.com` (matching is on label boundaries).
    Wildcard(Hostname),
}

impl DomainPattern {
    /// Parses `app.example.com` or `*.example.com` (case-insensitive, trailing dot ignored).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw.strip_prefix("*.") {
            Some(rest) => Hostname::parse(rest)
                .map(Self::Wildcard)
                .map_err(|_| ParseError::DomainPattern),
            None => Hostname::parse(raw)
                .map(Self::Exact)
                .map_err(|_| ParseError::DomainPattern),
        }
    }

    /// Whether `host` is allowed by this pattern.
    pub fn matches(&self, host: &Hostname) -> bool {
        match self {
            Self::Exact(name) => name == host,
            Self::Wildcard(base) => nectar_protocol::rules::is_below(host.as_str(), base.as_str()),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(h) => h.fmt(f),
            Self::Wildcard(h) => write!(f, "*.{h}"),
        }
    }
}

impl Serialize for DomainPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DomainPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The server's [`Vocabulary`]: claims and views read into validated newtypes, so a token or
/// record with a malformed id is refused when it is read, not when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validated;

impl Vocabulary for Validated {
    type LicenseId = LicenseId;
    type CustomerId = CustomerId;
    type InstallationId = InstallationId;
    type Feature = Feature;
    type Hostname = Hostname;
    type DomainPattern = DomainPattern;
    type Plan = Plan;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Hostname {
        Hostname::parse(s).expect("valid host in test")
    }

    #[test]
    fn license_id_accepts_the_human_format_and_rejects_everything_else() {
        assert!(LicenseId::parse("NECTAR-ENTERPRISE-2026-7K2M9QXA").is_ok());
        assert!(LicenseId::parse("NECTAR-STARTER-2024-ABCDEFGH").is_ok());
        for bad in [
            "",
            "NECTAR-ENTERPRISE-2026",
            "NECTAR-ENTERPRISE-2026-7k2m9qxa",
            "NECTAR-GOLD-2026-7K2M9QXA",
            "NECTAR-ENTERPRISE-26-7K2M9QXA",
            "NECTAR-ENTERPRISE-2026-7K2M9QX",
            "NECTAR-ENTERPRISE-2026-7K2M9QXA-X",
            "nectar-enterprise-2026-7K2M9QXA",
        ] {
            assert_eq!(LicenseId::parse(bad), Err(ParseError::LicenseId), "{bad:?}");
        }
    }

    #[test]
    fn license_id_product_line_is_the_prefix_before_the_suffix() {
        let id = LicenseId::parse("NECTAR-ENTERPRISE-2026-7K2M9QXA").expect("valid");
        assert_eq!(id.product_line(), "NECTAR-ENTERPRISE-2026");
    }

    #[test]
    fn random_license_suffixes_always_parse() {
        let mut rng = rand::rng();
        for _ in 0..1000 {
            let suffix = LicenseId::random_suffix(&mut rng);
            assert!(
                LicenseId::new(Plan::Starter, 2026, &suffix).is_ok(),
                "{suffix}"
            );
        }
    }

    #[test]
    fn installation_id_limits_length_and_charset() {
        assert!(InstallationId::parse("3f0c1e9a-2b1d-4c55-9a51-0e0f5f6b7a10").is_ok());
        assert!(InstallationId::parse("node-1.prod:eu_west").is_ok());
        assert!(InstallationId::parse(&"a".repeat(128)).is_ok());
        for bad in ["", "has space", "slash/no", &"a".repeat(129), "ünïcode"] {
            assert!(InstallationId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn feature_names_are_lower_snake_case() {
        assert!(Feature::parse("integrations").is_ok());
        assert!(Feature::parse("audit_logs2").is_ok());
        for bad in [
            "",
            "Integrations",
            "2fa",
            "with-dash",
            "sp ace",
            &"a".repeat(65),
        ] {
            assert!(Feature::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_are_case_folded_and_lose_a_trailing_dot() {
        assert_eq!(host("App.Example.COM.").as_str(), "app.example.com");
        for bad in [
            "",
            ".",
            "a..b",
            "-a.com",
            "a-.com",
            "under_score.com",
            "a.com..",
            "http://a.com",
        ] {
            assert!(Hostname::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Hostname::parse(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn wildcard_matches_on_label_boundaries_only() {
        let pattern = DomainPattern::parse("*.Example.com.").expect("valid");
        assert!(pattern.matches(&host("app.example.com")));
        assert!(pattern.matches(&host("a.b.example.com")));
        assert!(pattern.matches(&host("APP.EXAMPLE.COM.")));
        assert!(!pattern.matches(&host("example.com")));
        assert!(!pattern.matches(&host("evilexample.com")));
        assert!(!pattern.matches(&host("app.example.com.evil.net")));
    }

    #[test]
    fn exact_pattern_matches_the_same_host_only() {
        let pattern = DomainPattern::parse("app.example.com").expect("valid");
        assert!(pattern.matches(&host("APP.example.com.")));
        assert!(!pattern.matches(&host("x.app.example.com")));
        assert!(!pattern.matches(&host("example.com")));
    }

    #[test]
    fn domain_patterns_reject_partial_wildcards() {
        for bad in ["*example.com", "a.*.com", "*", "*.", "**.example.com"] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domain_patterns_round_trip_through_their_text_form() {
        for raw in ["*.example.com", "app.example.com"] {
            let pattern = DomainPattern::parse(raw).expect("valid");
            assert_eq!(pattern.to_string(), raw);
        }
    }
}
