//! The license checks shared by validate and heartbeat, in their one documented order.
//!
//! Order (first failure wins): `INVALID_KEY` (signature, algorithm, issuer, kind) → `NOT_FOUND` →
//! `REVOKED` for a superseded key (issued before the license's `keys_valid_from`) → `INVALID_KEY`
//! (the key names another customer) → `REVOKED` → `SUSPENDED` → `EXPIRED` → `DOMAIN_MISMATCH` → `FEATURE_NOT_ENTITLED` →
//! `USAGE_EXCEEDED` → `INSTALLATION_LIMIT` → `VALID`. Status checks come before expiry so a revoked license says
//! REVOKED even after it would have expired.

use time::OffsetDateTime;

use crate::domain::{Feature, Hostname, License, LicenseStatus};
use crate::token::{KeyRejection, LicenseClaims};

/// The machine-readable answer of a check: one enum with installations (the wire contract).
pub use nectar_protocol::codes::Code;

/// A failed check: its code and a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Machine-readable.
    pub code: Code,
    /// Human-readable; never contains the key.
    pub detail: String,
}

impl Verdict {
    pub(crate) fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn valid() -> Self {
        Self::new(Code::Valid, "the license is valid")
    }
}

impl From<KeyRejection> for Verdict {
    fn from(r: KeyRejection) -> Self {
        Self::new(Code::InvalidKey, r.to_string())
    }
}

/// Checks that the key belongs to the record and the license is in force: customer, then
/// `REVOKED`, `SUSPENDED`, `EXPIRED`.
pub fn check_status(
    claims: &LicenseClaims,
    license: &License,
    now: OffsetDateTime,
) -> Result<(), Verdict> {
    // First: a superseded key (replaced, or its license moved to another customer) is withdrawn,
    // whoever it names.
    if license.supersedes(claims.iat) {
        return Err(Verdict::new(
            Code::Revoked,
            format!(
                "this key of license {} was replaced by a newer key; install the newer key",
                license.id
            ),
        ));
    }
    if claims.cid != license.customer_id {
        return Err(Verdict::new(
            Code::InvalidKey,
            "the license key does not belong to this license",
        ));
    }
    match license.status {
        LicenseStatus::Revoked => {
            return Err(Verdict::new(Code::Revoked, "the license has been revoked"));
        }
        LicenseStatus::Suspended => {
            return Err(Verdict::new(Code::Suspended, "the license is suspended"));
        }
        LicenseStatus::Expired | LicenseStatus::Active => {}
    }
    let key_expired = now.unix_timestamp() >= claims.exp;
    if license.status == LicenseStatus::Expired || license.is_expired_at(now) || key_expired {
        return Err(Verdict::new(Code::Expired, "the license has expired"));
    }
    Ok(())
}

/// The checks after signature verification and lookup, in order, up to (not including) usage and
/// seats.
pub fn check_license(
    claims: &LicenseClaims,
    license: &License,
    domain: Option<&Hostname>,
    feature: Option<&Feature>,
    now: OffsetDateTime,
) -> Result<(), Verdict> {
    check_status(claims, license, now)?;
    if !license.allows_domain(domain) {
        let detail = match domain {
            None => "the license is restricted to specific domains; send `domain`".to_owned(),
            Some(d) => format!("the license does not allow domain {d}"),
        };
        return Err(Verdict::new(Code::DomainMismatch, detail));
    }
    if let Some(f) = feature.filter(|f| !license.has_feature(f)) {
        return Err(Verdict::new(
            Code::FeatureNotEntitled,
            format!("the license does not include feature {f}"),
        ));
    }
    Ok(())
}

/// The verdict when an installation that holds no seat finds every seat taken.
pub fn seats_full(license: &License) -> Verdict {
    Verdict::new(
        Code::InstallationLimit,
        format!(
            "all {} installation seats of this license are in use",
            license.limits.installations
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomerId, DomainPattern, LicenseId, LicenseStatus, Plan};
    use crate::token::TokenKind;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn license(status: LicenseStatus, expires: OffsetDateTime) -> License {
        License {
            id: LicenseId::parse("NECTAR-STARTER-2026-AAAAAAAA").expect("valid"),
            customer_id: CustomerId::from_uuid(uuid::Uuid::nil()),
            plan: Plan::Starter,
            status,
            features: Plan::Starter.default_features(),
            limits: Plan::Starter.default_limits(),
            domain_restrictions: vec![DomainPattern::parse("*.acme.com").expect("valid")],
            issued_at: datetime!(2026-01-01 0:00 UTC),
            expires_at: expires,
            active_installations: 0,
            revision: 0,
            keys_valid_from: None,
            updated_at: datetime!(2026-01-01 0:00 UTC),
            contract: Default::default(),
        }
    }

    fn claims_for(l: &License, exp: OffsetDateTime) -> LicenseClaims {
        LicenseClaims {
            iss: "t".into(),
            typ: TokenKind::License,
            jti: l.id.clone(),
            lic: l.id.product_line().into(),
            cid: l.customer_id,
            iat: l.issued_at.unix_timestamp(),
            exp: exp.unix_timestamp(),
            feat: vec![],
            limits: l.limits,
            domain_restrictions: vec![],
        }
    }

    #[test]
    fn the_first_failing_check_in_the_documented_order_wins() {
        let past = NOW - time::Duration::days(1);
        let future = NOW + time::Duration::days(30);
        let good_host = Hostname::parse("app.acme.com").expect("valid");
        let bad_host = Hostname::parse("evil.io").expect("valid");
        let analytics = Feature::parse("analytics").expect("valid");
        let other_customer = CustomerId::from_uuid(uuid::Uuid::new_v4());
        // (status, record expiry, key expiry, domain, feature, other customer?) → expected
        let cases = [
            (
                LicenseStatus::Revoked,
                past,
                past,
                Some(&bad_host),
                Some(&analytics),
                true,
                Code::InvalidKey,
            ),
            (
                LicenseStatus::Revoked,
                past,
                past,
                Some(&bad_host),
                Some(&analytics),
                false,
                Code::Revoked,
            ),
            (
                LicenseStatus::Suspended,
                past,
                past,
                Some(&bad_host),
                None,
                false,
                Code::Suspended,
            ),
            (
                LicenseStatus::Active,
                past,
                future,
                Some(&bad_host),
                None,
                false,
                Code::Expired,
            ),
            (
                LicenseStatus::Active,
                future,
                past,
                Some(&good_host),
                None,
                false,
                Code::Expired,
            ),
            (
                LicenseStatus::Expired,
                future,
                future,
                Some(&good_host),
                None,
                false,
                Code::Expired,
            ),
            (
                LicenseStatus::Active,
                future,
                future,
                Some(&bad_host),
                Some(&analytics),
                false,
                Code::DomainMismatch,
            ),
            (
                LicenseStatus::Active,
                future,
                future,
                None,
                None,
                false,
                Code::DomainMismatch,
            ),
            (
                LicenseStatus::Active,
                future,
                future,
                Some(&good_host),
                Some(&analytics),
                false,
                Code::FeatureNotEntitled,
            ),
        ];
        for (i, (status, expiry, key_exp, host, feature, foreign, expected)) in
            cases.into_iter().enumerate()
        {
            let l = license(status, expiry);
            let mut claims = claims_for(&l, key_exp);
            if foreign {
                claims.cid = other_customer;
            }
            let verdict = check_license(&claims, &l, host, feature, NOW).expect_err("fails");
            assert_eq!(verdict.code, expected, "case {i}");
        }
        let l = license(LicenseStatus::Active, future);
        assert_eq!(
            check_license(&claims_for(&l, future), &l, Some(&good_host), None, NOW),
            Ok(())
        );
    }
}
