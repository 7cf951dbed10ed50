//! Operator changes of a license's terms after issue (`PATCH /api/admin/licenses/{licenseId}`):
//! plan, features, limits, domain restrictions, contract, and its owner (a move to another
//! customer).
//!
//! Contracts:
//! - The license keeps its id; a new key is signed for the terms as they are after the change
//!   (`iat` never before the license's `keys_valid_from`). Earlier keys keep validating until
//!   their own `exp` — validation reads the stored terms, so they already grant the new ones —
//!   unless the change revokes them (`revoke_previous_key`, or any move): then every key issued
//!   before the change answers `REVOKED` ("replaced by a newer key"). The floor is set one second
//!   ahead of the change and the new key is issued at it, so even a key signed in the same second
//!   falls below it.
//! - Installations get a lease of the new terms on their next heartbeat (the heartbeat re-signs a
//!   lease that no longer matches the license).
//! - A change is one transaction: the terms (with `revision` + 1, conditional on the revision and
//!   status read), its audit entry with every field's before → after, and — when the plan or
//!   contract changed — the revenue change the month's expansion/contraction is computed from.
//!   A concurrent change makes the write fail; the change is then computed again on a fresh read.
//! - A request that changes nothing (`{}` included) writes nothing and still answers with a key
//!   of the current terms, so a retried request (its first answer lost) still hands out a working
//!   key.
//! - Revoked licenses cannot be changed. A seat limit lowered below the seats in use takes no
//!   seat away; the answer says how many are over.

use std::collections::BTreeSet;

use nectar_protocol::admin::FieldChange;
use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime};

use crate::domain::license::whole_seconds;
use crate::domain::plan::{LimitOverrides, is_known_feature};
use crate::domain::ports::{CustomerDirectory, LicenseAmender, LicenseReader, TokenSigner};
use crate::domain::revenue::{
    BillingInterval, Channel, Contract, Currency, PricedTerms, RevenueChange,
};
use crate::domain::{
    Actor, AuditEntry, CustomerId, DomainError, DomainPattern, Feature, License, LicenseId,
    LicenseStatus, Plan, StoreError,
};
use crate::token::{LicenseClaims, LicenseKey, TokenKind, sign_jwt};

/// Attempts against concurrent changes before giving up.
const ATTEMPTS: usize = 5;

/// A change of some commercial terms; `None` keeps a term as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContractEdit {
    /// New channel.
    pub channel: Option<Channel>,
    /// New billing interval.
    pub interval: Option<BillingInterval>,
    /// New currency.
    pub currency: Option<Currency>,
    /// `Some(None)` removes the price override.
    pub price: Option<Option<u64>>,
    /// New billing start.
    pub start: Option<Date>,
}

impl ContractEdit {
    fn apply(&self, c: &Contract) -> Contract {
        Contract {
            channel: self.channel.unwrap_or(c.channel),
            interval: self.interval.unwrap_or(c.interval),
            currency: self.currency.clone().unwrap_or_else(|| c.currency.clone()),
            price: self.price.unwrap_or(c.price),
            start: self.start.or(c.start),
        }
    }
}

/// What to change (validated at the edge); absent parts stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ChangeCommand {
    /// Move to this customer (which must exist).
    pub customer_id: Option<CustomerId>,
    /// New plan: features and limits start again from its defaults.
    pub plan: Option<Plan>,
    /// Replaces the features.
    pub features: Option<Vec<Feature>>,
    /// Overrides some limits (of the new plan's defaults, or of the current limits).
    pub limits: Option<LimitOverrides>,
    /// Replaces the allowed domains.
    pub domain_restrictions: Option<Vec<DomainPattern>>,
    /// Changes some commercial terms.
    pub contract: ContractEdit,
    /// Revoke every earlier key.
    pub revoke_previous_key: bool,
    /// Why (kept in the audit trail).
    pub reason: Option<String>,
}

/// What a change did.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The license after the change.
    pub license: License,
    /// A key for it.
    pub key: LicenseKey,
    /// Each changed field, before → after (empty: nothing was written).
    pub changes: Vec<FieldChange>,
    /// Whether earlier keys now answer `REVOKED`.
    pub previous_keys_revoked: bool,
    /// Seats held beyond the seat limit.
    pub seats_over_limit: u64,
}

/// Applies `cmd` to the license `id` (see the module's contracts).
pub async fn change_license<S>(
    store: &S,
    signer: &dyn TokenSigner,
    issuer: &str,
    id: &LicenseId,
    cmd: &ChangeCommand,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<Changed, DomainError>
where
    S: LicenseReader + LicenseAmender + CustomerDirectory + ?Sized,
{
    let now = whole_seconds(now);
    if let Some(to) = &cmd.customer_id
        && store.customer(to).await?.is_none()
    {
        return Err(DomainError::CustomerNotFound);
    }
    for _ in 0..ATTEMPTS {
        let before = store
            .license(id)
            .await?
            .ok_or(DomainError::LicenseNotFound)?;
        if before.status == LicenseStatus::Revoked {
            return Err(DomainError::InvalidTransition {
                action: "change",
                from: before.status,
            });
        }
        let mut after = apply(&before, cmd)?;
        let changes = diff(&before, &after);
        let moved = after.customer_id != before.customer_id;
        let revoke = cmd.revoke_previous_key || moved;
        if changes.is_empty() && !revoke {
            // Nothing to write; a key of the current terms all the same.
            let key = sign_key(signer, issuer, &before, now).await?;
            return Ok(Changed {
                seats_over_limit: seats_over(&before),
                license: before,
                key,
                changes,
                previous_keys_revoked: false,
            });
        }
        if revoke {
            // Past every key signed so far: one second ahead of now (even this second's keys fall
            // below it) and of the previous floor (the key issued at it, perhaps this very
            // second, is superseded too).
            let ahead = Duration::seconds(1);
            let floor = before
                .keys_valid_from
                .map_or(now + ahead, |f| (f + ahead).max(now + ahead));
            after.keys_valid_from = Some(floor);
        }
        after.revision = before.revision + 1;
        after.updated_at = now;
        let key = sign_key(signer, issuer, &after, now).await?;
        let revenue =
            (PricedTerms::of(&before) != PricedTerms::of(&after)).then(|| RevenueChange {
                license_id: after.id.clone(),
                revision: after.revision,
                at: now,
                before: PricedTerms::of(&before),
                after: PricedTerms::of(&after),
            });
        let audit = AuditEntry {
            action: if moved {
                "license.moved"
            } else {
                "license.changed"
            }
            .into(),
            actor: actor.clone(),
            reason: Some(summary(cmd.reason.as_deref(), &changes, revoke)),
            from: Some(before.status),
            to: Some(after.status),
            at: now,
        };
        if store.amend(&after, &audit, revenue.as_ref()).await? {
            tracing::info!(license_id = %after.id, revision = after.revision, changed = changes.len(), revoked = revoke, "license changed");
            return Ok(Changed {
                seats_over_limit: seats_over(&after),
                license: after,
                key,
                changes,
                previous_keys_revoked: revoke,
            });
        }
    }
    Err(StoreError::Backend("the license kept changing concurrently".into()).into())
}

/// The license with `cmd` applied (not yet stored), validated.
fn apply(before: &License, cmd: &ChangeCommand) -> Result<License, DomainError> {
    let mut after = before.clone();
    if let Some(customer) = cmd.customer_id {
        after.customer_id = customer;
    }
    match cmd.plan.filter(|p| *p != before.plan) {
        Some(plan) => {
            after.plan = plan;
            after.features = plan.default_features();
            after.limits = plan.default_limits().with(cmd.limits.unwrap_or_default());
        }
        None => after.limits = before.limits.with(cmd.limits.unwrap_or_default()),
    }
    if let Some(features) = &cmd.features {
        let features: BTreeSet<Feature> = features.iter().cloned().collect();
        if let Some(unknown) = features.iter().find(|f| !is_known_feature(f)) {
            return Err(DomainError::UnknownFeature(unknown.to_string()));
        }
        after.features = features;
    }
    if after.limits.installations == 0 {
        return Err(DomainError::InvalidValue {
            field: "limits.installations",
            message: "must be at least 1".into(),
        });
    }
    if let Some(domains) = &cmd.domain_restrictions {
        after.domain_restrictions.clone_from(domains);
    }
    after.contract = cmd.contract.apply(&before.contract);
    Ok(after)
}

/// Signs a key for `license` as it stands.
async fn sign_key(
    signer: &dyn TokenSigner,
    issuer: &str,
    license: &License,
    now: OffsetDateTime,
) -> Result<LicenseKey, DomainError> {
    let claims = LicenseClaims {
        iss: issuer.to_owned(),
        typ: TokenKind::License,
        jti: license.id.clone(),
        lic: license.id.product_line().to_owned(),
        cid: license.customer_id,
        iat: license.key_iat(now).unix_timestamp(),
        exp: license.expires_at.unix_timestamp(),
        feat: license.features.iter().cloned().collect(),
        limits: license.limits,
        domain_restrictions: license.domain_restrictions.clone(),
    };
    Ok(LicenseKey::new(
        sign_jwt(signer, TokenKind::License, &claims).await?,
    ))
}

fn seats_over(license: &License) -> u64 {
    license
        .active_installations
        .saturating_sub(license.limits.installations)
}

/// The terms of `l` as the API names them, one JSON value per field.
fn fields(l: &License) -> Vec<(String, Value)> {
    let mut out = vec![
        ("customerId".to_owned(), json!(l.customer_id.to_string())),
        ("plan".to_owned(), json!(l.plan.name())),
        (
            "features".to_owned(),
            json!(
                l.features
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        ),
    ];
    if let Value::Object(limits) = json!(l.limits) {
        out.extend(limits.into_iter().map(|(k, v)| (format!("limits.{k}"), v)));
    }
    out.push((
        "domainRestrictions".to_owned(),
        json!(
            l.domain_restrictions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        ),
    ));
    let c = &l.contract;
    out.extend([
        ("contract.channel".to_owned(), json!(c.channel.as_str())),
        ("contract.interval".to_owned(), json!(c.interval.as_str())),
        ("contract.currency".to_owned(), json!(c.currency.as_str())),
        ("contract.price".to_owned(), json!(c.price)),
        (
            "contract.start".to_owned(),
            json!(c.start.map(|d| d.to_string())),
        ),
    ]);
    out
}

/// The fields that differ, in the order [`fields`] lists them.
fn diff(before: &License, after: &License) -> Vec<FieldChange> {
    fields(before)
        .into_iter()
        .zip(fields(after))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, from), (_, to))| FieldChange { field, from, to })
        .collect()
}

/// The audit reason: the operator's reason, each change, and the key revocation.
fn summary(reason: Option<&str>, changes: &[FieldChange], revoked: bool) -> String {
    let mut parts: Vec<String> = reason.map(str::to_owned).into_iter().collect();
    parts.extend(
        changes
            .iter()
            .map(|c| format!("{} {} → {}", c.field, c.from, c.to)),
    );
    if revoked {
        parts.push("earlier keys revoked".into());
    }
    parts.join("; ")
}
