//! Operator actions: create customers, issue licenses, revoke / suspend / reinstate, look up.
//! Used by the admin functions and by the `nectar-admin` CLI alike.

use std::collections::BTreeSet;

use time::{Duration, OffsetDateTime};

use crate::domain::license::whole_seconds;
use crate::domain::plan::{LimitOverrides, is_known_feature};
use crate::domain::ports::{
    CustomerDirectory, IdSource, LicenseDetail, LicenseReader, LicenseWriter, TokenSigner,
};
use crate::domain::{
    Actor, AuditEntry, Customer, CustomerId, DomainError, DomainPattern, Feature, License,
    LicenseId, LicenseStatus, Plan, StoreError,
};
use crate::token::{LicenseClaims, LicenseKey, TokenKind, sign_jwt};

/// Default license term when neither `expiresAt` nor `validDays` is given.
pub const DEFAULT_VALID_DAYS: i64 = 365;
/// Longest term we issue in one go.
pub const MAX_VALID_DAYS: i64 = 3650;

/// A new customer.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    /// Display name, 1..=200 characters.
    pub name: String,
    /// Contact email.
    pub email: String,
}

/// Creates a customer with a fresh id.
pub async fn create_customer<D: CustomerDirectory + ?Sized>(
    directory: &D,
    ids: &dyn IdSource,
    new: NewCustomer,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<Customer, DomainError> {
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(DomainError::InvalidValue {
            field: "name",
            message: "must be 1 to 200 characters".into(),
        });
    }
    let email = new.email.trim().to_owned();
    if !plausible_email(&email) {
        return Err(DomainError::InvalidValue {
            field: "email",
            message: "must be an email address such as ops@example.com".into(),
        });
    }
    let customer = Customer {
        id: ids.customer_id(),
        name,
        email,
        created_at: whole_seconds(now),
    };
    let audit = AuditEntry {
        action: "customer.created".into(),
        actor,
        reason: None,
        from: None,
        to: None,
        at: customer.created_at,
    };
    directory.create_customer(&customer, &audit).await?;
    tracing::info!(customer_id = %customer.id, "customer created");
    Ok(customer)
}

// Deliberately loose: one '@', a dotted domain, no spaces. Real verification is sending mail.
pub(crate) fn plausible_email(s: &str) -> bool {
    s.len() <= 254
        && !s.contains(char::is_whitespace)
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
}

/// When a new license ends.
#[derive(Debug, Clone, Copy)]
pub enum Term {
    /// At this instant (must be in the future).
    Until(OffsetDateTime),
    /// This many days from now (1..=3650).
    Days(i64),
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueCommand {
    /// Owner; must exist.
    pub customer_id: CustomerId,
    /// Tier.
    pub plan: Plan,
    /// Term.
    pub term: Term,
    /// Replaces the plan's features when given.
    pub features: Option<Vec<Feature>>,
    /// Overrides some of the plan's limits.
    pub limits: LimitOverrides,
    /// Allowed domains (empty: any).
    pub domain_restrictions: Vec<DomainPattern>,
    /// Commercial terms.
    pub contract: crate::domain::revenue::Contract,
}

/// Issues a license: builds it from the plan, signs its key with `signer`, then stores it.
///
/// Signing happens before the write so a signing failure leaves nothing behind.
pub async fn issue_license<S>(
    store: &S,
    signer: &dyn TokenSigner,
    ids: &dyn IdSource,
    issuer: &str,
    cmd: IssueCommand,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(License, LicenseKey), DomainError>
where
    S: CustomerDirectory + LicenseWriter + ?Sized,
{
    let now = whole_seconds(now);
    let expires_at = resolve_term(cmd.term, now)?;
    let features: BTreeSet<Feature> = match cmd.features {
        Some(list) => list.into_iter().collect(),
        None => cmd.plan.default_features(),
    };
    if let Some(unknown) = features.iter().find(|f| !is_known_feature(f)) {
        return Err(DomainError::UnknownFeature(unknown.to_string()));
    }
    let limits = cmd.plan.default_limits().with(cmd.limits);
    if limits.installations == 0 {
        return Err(DomainError::InvalidValue {
            field: "limits.installations",
            message: "must be at least 1".into(),
        });
    }
    if store.customer(&cmd.customer_id).await?.is_none() {
        return Err(DomainError::CustomerNotFound);
    }

    // Ids are random; a collision is astronomically rare but must not overwrite a license.
    for _ in 0..3 {
        let id = LicenseId::new(cmd.plan, now.year(), &ids.license_suffix()).map_err(|source| {
            DomainError::InvalidField {
                field: "licenseId",
                source,
            }
        })?;
        let license = License {
            id: id.clone(),
            customer_id: cmd.customer_id,
            plan: cmd.plan,
            status: LicenseStatus::Active,
            features: features.clone(),
            limits,
            domain_restrictions: cmd.domain_restrictions.clone(),
            issued_at: now,
            expires_at,
            active_installations: 0,
            revision: 0,
            keys_valid_from: None,
            updated_at: now,
            contract: cmd.contract.clone(),
        };
        let claims = LicenseClaims {
            iss: issuer.to_owned(),
            typ: TokenKind::License,
            jti: id.clone(),
            lic: id.product_line().to_owned(),
            cid: license.customer_id,
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
            feat: features.iter().cloned().collect(),
            limits,
            domain_restrictions: license.domain_restrictions.clone(),
        };
        let key = LicenseKey::new(sign_jwt(signer, TokenKind::License, &claims).await?);
        let audit = AuditEntry {
            action: "license.issued".into(),
            actor: actor.clone(),
            reason: None,
            from: None,
            to: Some(LicenseStatus::Active),
            at: now,
        };
        match store.create_license(&license, &audit).await {
            Ok(()) => {
                tracing::info!(license_id = %license.id, customer_id = %license.customer_id, "license issued");
                return Ok((license, key));
            }
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Backend("could not allocate a unique license id".into()).into())
}

/// The expiry a term asks for, at `now`: in the future, at most [`MAX_VALID_DAYS`] away.
fn resolve_term(term: Term, now: OffsetDateTime) -> Result<OffsetDateTime, DomainError> {
    Ok(whole_seconds(match term {
        Term::Until(t) if t <= now => {
            return Err(DomainError::InvalidValue {
                field: "expiresAt",
                message: "must be in the future".into(),
            });
        }
        Term::Until(t) if t > now + Duration::days(MAX_VALID_DAYS) => {
            return Err(DomainError::InvalidValue {
                field: "expiresAt",
                message: format!("must be at most {MAX_VALID_DAYS} days from now"),
            });
        }
        Term::Until(t) => t,
        Term::Days(d) if !(1..=MAX_VALID_DAYS).contains(&d) => {
            return Err(DomainError::InvalidValue {
                field: "validDays",
                message: format!("must be between 1 and {MAX_VALID_DAYS}"),
            });
        }
        Term::Days(d) => now + Duration::days(d),
    }))
}

/// What to renew, and until when.
#[derive(Debug, Clone)]
pub struct RenewCommand {
    /// The license.
    pub id: LicenseId,
    /// The new term, from now.
    pub term: Term,
    /// Why (kept in the audit trail).
    pub reason: Option<String>,
}

/// Renews a license in place: a new expiry (a term from `now`), a re-signed key with the same
/// license id and entitlements, and an audit entry — a `expired` license becomes `active` again.
/// Revoked licenses cannot be renewed. Every lifecycle notice id carries the expiry date, so the
/// 30/7/1-day warnings are armed again for the new date. The previous key keeps working until its
/// own `exp`; hand the new one to the customer.
pub async fn renew_license<S>(
    store: &S,
    signer: &dyn TokenSigner,
    issuer: &str,
    cmd: RenewCommand,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(License, LicenseKey), DomainError>
where
    S: LicenseReader + LicenseWriter + ?Sized,
{
    let RenewCommand { id, term, reason } = cmd;
    let id = &id;
    let now = whole_seconds(now);
    let expires_at = resolve_term(term, now)?;
    let mut license = store
        .license(id)
        .await?
        .ok_or(DomainError::LicenseNotFound)?;
    let from = license.status;
    let to = match from {
        LicenseStatus::Revoked => {
            return Err(DomainError::InvalidTransition {
                action: "renew",
                from,
            });
        }
        LicenseStatus::Expired => LicenseStatus::Active,
        other => other,
    };
    let claims = LicenseClaims {
        iss: issuer.to_owned(),
        typ: TokenKind::License,
        jti: license.id.clone(),
        lic: license.id.product_line().to_owned(),
        cid: license.customer_id,
        iat: license.key_iat(now).unix_timestamp(),
        exp: expires_at.unix_timestamp(),
        feat: license.features.iter().cloned().collect(),
        limits: license.limits,
        domain_restrictions: license.domain_restrictions.clone(),
    };
    let key = LicenseKey::new(sign_jwt(signer, TokenKind::License, &claims).await?);
    let audit = AuditEntry {
        action: "license.renewed".into(),
        actor,
        reason: Some(match reason {
            Some(r) => format!(
                "{r}; expiry {} → {}",
                rfc3339(license.expires_at),
                rfc3339(expires_at)
            ),
            None => format!(
                "expiry {} → {}",
                rfc3339(license.expires_at),
                rfc3339(expires_at)
            ),
        }),
        from: Some(from),
        to: Some(to),
        at: now,
    };
    if !store.renew(id, from, to, expires_at, &audit).await? {
        // The status moved on between the read and the write: let the operator look again.
        return Err(DomainError::InvalidTransition {
            action: "renew",
            from,
        });
    }
    tracing::info!(license_id = %license.id, "license renewed");
    license.status = to;
    license.expires_at = expires_at;
    license.updated_at = now;
    Ok((license, key))
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// An operator status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum StatusAction {
    /// Withdraw permanently (from any non-revoked status).
    Revoke,
    /// Pause an active license.
    Suspend,
    /// Resume a suspended license that has not expired.
    Reinstate,
}

impl StatusAction {
    fn verb(self) -> &'static str {
        self.into()
    }

    fn target(self) -> LicenseStatus {
        match self {
            Self::Revoke => LicenseStatus::Revoked,
            Self::Suspend => LicenseStatus::Suspended,
            Self::Reinstate => LicenseStatus::Active,
        }
    }

    fn allowed_from(self, from: LicenseStatus) -> bool {
        use LicenseStatus as S;
        match self {
            Self::Revoke => matches!(from, S::Active | S::Suspended | S::Expired),
            Self::Suspend => from == S::Active,
            Self::Reinstate => from == S::Suspended,
        }
    }
}

/// Applies `action` to the license. Idempotent: asking for the status it already has changes
/// nothing and returns `changed = false`. Concurrent changes are resolved by re-reading.
pub async fn change_status<S>(
    store: &S,
    id: &LicenseId,
    action: StatusAction,
    reason: Option<String>,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(License, bool), DomainError>
where
    S: LicenseReader + LicenseWriter + ?Sized,
{
    let now = whole_seconds(now);
    let target = action.target();
    for _ in 0..5 {
        let mut license = store
            .license(id)
            .await?
            .ok_or(DomainError::LicenseNotFound)?;
        if license.status == target {
            return Ok((license, false));
        }
        if !action.allowed_from(license.status) {
            return Err(DomainError::InvalidTransition {
                action: action.verb(),
                from: license.status,
            });
        }
        if action == StatusAction::Reinstate && license.is_expired_at(now) {
            return Err(DomainError::InvalidTransition {
                action: action.verb(),
                from: LicenseStatus::Expired,
            });
        }
        let audit = AuditEntry {
            action: format!("license.{}", target_event(target)),
            actor: actor.clone(),
            reason: reason.clone(),
            from: Some(license.status),
            to: Some(target),
            at: now,
        };
        if store.set_status(id, license.status, target, &audit).await? {
            tracing::info!(license_id = %id, from = license.status.as_str(), to = target.as_str(), "license status changed");
            license.status = target;
            license.updated_at = now;
            return Ok((license, true));
        }
    }
    Err(StoreError::Backend("license status kept changing concurrently".into()).into())
}

fn target_event(s: LicenseStatus) -> &'static str {
    match s {
        LicenseStatus::Active => "reinstated",
        LicenseStatus::Suspended => "suspended",
        LicenseStatus::Expired => "expired",
        LicenseStatus::Revoked => "revoked",
    }
}

/// The customer with every license, installation and audit entry.
pub async fn lookup_customer<D: CustomerDirectory + ?Sized>(
    directory: &D,
    id: &CustomerId,
) -> Result<(Customer, Vec<LicenseDetail>), DomainError> {
    let customer = directory
        .customer(id)
        .await?
        .ok_or(DomainError::CustomerNotFound)?;
    let licenses = directory.licenses_of(id).await?;
    Ok((customer, licenses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_check_accepts_ordinary_addresses_and_rejects_obvious_garbage() {
        for ok in ["ops@acme.com", "a.b+c@mail.acme.co.uk"] {
            assert!(plausible_email(ok), "{ok}");
        }
        for bad in [
            "",
            "acme.com",
            "@acme.com",
            "ops@acme",
            "ops@@acme.com",
            "o ps@acme.com",
            "ops@.acme.com",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }

    #[test]
    fn transitions_follow_the_status_machine() {
        use LicenseStatus as S;
        assert!(StatusAction::Revoke.allowed_from(S::Active));
        assert!(StatusAction::Revoke.allowed_from(S::Suspended));
        assert!(StatusAction::Revoke.allowed_from(S::Expired));
        assert!(!StatusAction::Suspend.allowed_from(S::Revoked));
        assert!(!StatusAction::Suspend.allowed_from(S::Expired));
        assert!(!StatusAction::Reinstate.allowed_from(S::Revoked));
        assert!(!StatusAction::Reinstate.allowed_from(S::Active));
        assert!(StatusAction::Reinstate.allowed_from(S::Suspended));
    }
}
