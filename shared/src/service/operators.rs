//! Operator accounts and admin authentication: create, list, rotate and disable operators (each
//! change audited in the operator's own trail: who did it, to whom), and turn a bearer token into
//! the [`Principal`] an admin route checks the role of. Used by the `operators` function, every
//! admin function (authentication) and the `nectar-admin operator` commands alike.

use time::OffsetDateTime;

use crate::config::AdminAuth;
use crate::domain::license::whole_seconds;
use crate::domain::ports::{IdSource, OperatorCreated, OperatorDirectory, SweepPage};
use crate::domain::{
    Actor, AuditEntry, DomainError, Operator, OperatorId, OperatorName, OperatorStatus,
    OperatorToken, Principal, Role, StoreError, TokenHash,
};

/// Operators per page when the caller does not say.
pub const DEFAULT_PAGE: usize = 50;
/// Most operators per page.
pub const MAX_PAGE: usize = 100;

/// A new operator, as parsed at the edge.
#[derive(Debug, Clone)]
pub struct NewOperator {
    /// Its name.
    pub name: OperatorName,
    /// Its contact address (checked here).
    pub email: Option<String>,
    /// Its role.
    pub role: Role,
}

/// Creates an active operator and returns it with its token — the only time the token is shown:
/// the store keeps its hash.
pub async fn create_operator<D: OperatorDirectory + ?Sized>(
    directory: &D,
    ids: &dyn IdSource,
    new: NewOperator,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(Operator, OperatorToken), DomainError> {
    if let Some(email) = &new.email
        && !super::admin::plausible_email(email)
    {
        return Err(DomainError::InvalidValue {
            field: "email",
            message: "must be an email address such as ops@example.com".into(),
        });
    }
    let now = whole_seconds(now);
    // Ids and tokens are random; a collision is astronomically rare but must not overwrite.
    for _ in 0..3 {
        let token = ids.operator_token();
        let operator = Operator {
            id: ids.operator_id(),
            name: new.name.clone(),
            email: new.email.clone(),
            role: new.role,
            status: OperatorStatus::Active,
            created_at: now,
            last_rotated_at: now,
            token_hash: token.hash(),
        };
        let audit = AuditEntry {
            action: "operator.created".into(),
            actor: actor.clone(),
            reason: Some(format!("{}, role {}", operator.name, operator.role)),
            from: None,
            to: None,
            at: now,
        };
        match directory.create_operator(&operator, &audit).await {
            Ok(OperatorCreated::Created) => {
                tracing::info!(operator_id = %operator.id, role = operator.role.as_str(), "operator created");
                return Ok((operator, token));
            }
            Ok(OperatorCreated::NameTaken) => {
                return Err(DomainError::OperatorNameTaken(new.name.to_string()));
            }
            Err(StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Backend("could not allocate a unique operator id".into()).into())
}

/// A page of operators, in creation order; `limit` is 1..=[`MAX_PAGE`].
pub async fn list_operators<D: OperatorDirectory + ?Sized>(
    directory: &D,
    after: Option<&OperatorId>,
    limit: usize,
) -> Result<SweepPage<Operator>, DomainError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(DomainError::InvalidValue {
            field: "limit",
            message: format!("limit must be a whole number from 1 to {MAX_PAGE}"),
        });
    }
    Ok(directory.operators(after, limit).await?)
}

/// Gives the operator a new token (returned, shown once); the old one stops working at once.
/// A disabled operator cannot be given one (create a new operator instead).
pub async fn rotate_operator<D: OperatorDirectory + ?Sized>(
    directory: &D,
    ids: &dyn IdSource,
    id: &OperatorId,
    reason: Option<String>,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(Operator, OperatorToken), DomainError> {
    let now = whole_seconds(now);
    let read = |id| async move {
        directory
            .operator(id)
            .await?
            .ok_or(DomainError::OperatorNotFound)
    };
    let mut operator = read(id).await?;
    // Optimistic: the write is conditioned on the token read. A write refused because another
    // rotation landed first is reported, not retried: retrying would silently revoke the token
    // the other caller was just handed. Anything else (a transaction conflict) is retried.
    for _ in 0..5 {
        if operator.status == OperatorStatus::Disabled {
            return Err(DomainError::OperatorDisabled {
                action: "rotate the token of",
            });
        }
        let token = ids.operator_token();
        let audit = AuditEntry {
            action: "operator.token_rotated".into(),
            actor: actor.clone(),
            reason: reason.clone(),
            from: None,
            to: None,
            at: now,
        };
        if directory
            .rotate_operator_token(&operator, &token.hash(), &audit)
            .await?
        {
            tracing::info!(operator_id = %id, "operator token rotated");
            operator.token_hash = token.hash();
            operator.last_rotated_at = now;
            return Ok((operator, token));
        }
        let again = read(id).await?;
        if again.status == OperatorStatus::Active && again.token_hash != operator.token_hash {
            return Err(DomainError::OperatorRotatedMeanwhile);
        }
        operator = again;
    }
    Err(StoreError::Backend("operator kept changing concurrently".into()).into())
}

/// Disables the operator for good: its token stops working at once and its name is free again.
/// Idempotent: disabling a disabled operator changes nothing and answers `changed = false`.
pub async fn disable_operator<D: OperatorDirectory + ?Sized>(
    directory: &D,
    id: &OperatorId,
    reason: String,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<(Operator, bool), DomainError> {
    let now = whole_seconds(now);
    for _ in 0..5 {
        let mut operator = directory
            .operator(id)
            .await?
            .ok_or(DomainError::OperatorNotFound)?;
        if operator.status == OperatorStatus::Disabled {
            return Ok((operator, false));
        }
        let audit = AuditEntry {
            action: "operator.disabled".into(),
            actor: actor.clone(),
            reason: Some(reason.clone()),
            from: None,
            to: None,
            at: now,
        };
        if directory.disable_operator(&operator, &audit).await? {
            tracing::info!(operator_id = %id, "operator disabled");
            operator.status = OperatorStatus::Disabled;
            return Ok((operator, true));
        }
    }
    Err(StoreError::Backend("operator kept changing concurrently".into()).into())
}

/// Who a bearer token belongs to: the bootstrap operator (configuration; no store access), an
/// active operator (one read, by the token's hash), or nobody (`None`: missing, unknown or
/// disabled look the same). A string that is not shaped like an operator token is not looked up.
pub async fn authenticate<D: OperatorDirectory + ?Sized>(
    bootstrap: &AdminAuth,
    directory: &D,
    bearer: &str,
) -> Result<Option<Principal>, DomainError> {
    if bearer.is_empty() {
        return Ok(None);
    }
    let hash = TokenHash::of(bearer);
    if bootstrap.accepts_hash(&hash) {
        return Ok(Some(Principal::bootstrap()));
    }
    if !OperatorToken::has_token_shape(bearer) {
        return Ok(None);
    }
    let Some(credential) = directory.credential(&hash).await? else {
        return Ok(None);
    };
    // The store matched the key already; the constant-time comparison of the stored hash keeps
    // an item that is not what its key says (a hand edit, a bug) from granting anything.
    if !credential.token_hash.matches(&hash) {
        tracing::error!(operator_id = %credential.operator_id, "operator token item under a foreign key");
        return Ok(None);
    }
    Ok(Some(Principal::operator(&credential)))
}
