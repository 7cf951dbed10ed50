//! Operators: three item types and the operator's audit trail.
//!
//! - the operator (`OPERATORS` / `OPERATOR#<oid>`): every operator in one partition, so the list
//!   is one strongly consistent query in id order (creation order: ids are UUIDv7) — operators
//!   are a few dozen, far from any partition limit, and nothing reads this partition per request;
//! - its token (`OPTOKEN#<sha256 hex>` / `OPTOKEN`): what a request authenticates with — one
//!   `GetItem` on the hash of the presented token; it carries the operator's id, name and role
//!   so that one read authorises. It exists only while its operator is active and holds that
//!   token;
//! - its name (`OPNAME#<lower-case name>` / `OPNAME`): held by the active operator of that name,
//!   so names are unique among active operators (a conditional put), and freed on disable;
//! - its audit trail (`OPERATOR#<oid>` / `AUDIT#…`, see `audit.rs`): who created, rotated or
//!   disabled it.
//!
//! Create, rotate and disable are each one transaction of these items and the audit entry.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::audit::AuditRecord;
use super::keys;
use super::licenses::corrupt;
use super::table::{
    AccessPattern, Consistency, DynamoStore, Item, TransactError, from_item, names, s, sdk_error,
    time_value, to_item, values,
};
use crate::domain::ports::{AuditPage, OperatorCreated, OperatorDirectory, SweepPage};
use crate::domain::{
    AuditEntry, Operator, OperatorCredential, OperatorId, OperatorName, OperatorStatus, Role,
    StoreError, TokenHash,
};

/// Entity tag of an operator item.
const ENTITY_OPERATOR: &str = "operator";
/// Entity tag of a token item.
const ENTITY_TOKEN: &str = "operator_token";
/// Entity tag of a name item.
const ENTITY_NAME: &str = "operator_name";
/// The partition holding every operator.
const OPERATORS_PK: &str = "OPERATORS";
/// Sort-key prefix of an operator in [`OPERATORS_PK`].
const OPERATOR_PREFIX: &str = "OPERATOR#";

fn operator_sk(id: &OperatorId) -> String {
    format!("{OPERATOR_PREFIX}{id}")
}

fn token_key(hash: &TokenHash) -> Item {
    keys::key(format!("OPTOKEN#{}", hash.to_hex()), "OPTOKEN")
}

fn name_key(name: &OperatorName) -> Item {
    keys::key(format!("OPNAME#{}", name.unique_key()), "OPNAME")
}

/// The partition of an operator's audit trail.
fn trail_pk(id: &OperatorId) -> String {
    format!("OPERATOR#{id}")
}

/// How operators are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "operator",
        name: "create with its name, token and audit entry",
        operation: "TransactWriteItems (4 puts)",
        key: "`OPERATORS` / `OPERATOR#<oid>`, `OPNAME#<name>` / `OPNAME`, `OPTOKEN#<sha256>` / `OPTOKEN`, `OPERATOR#<oid>` / `AUDIT#…`; `attribute_not_exists(pk)` on each",
        consistency: Consistency::Write,
        used_by: "`OperatorDirectory::create_operator`",
    },
    AccessPattern {
        entity: "operator",
        name: "authenticate: the credential under a token's hash",
        operation: "GetItem",
        key: "`OPTOKEN#<sha256 of the token>` / `OPTOKEN`",
        consistency: Consistency::Strong,
        used_by: "`OperatorDirectory::credential` (every admin request but the bootstrap token's)",
    },
    AccessPattern {
        entity: "operator",
        name: "operator by id",
        operation: "GetItem",
        key: "`OPERATORS` / `OPERATOR#<oid>`",
        consistency: Consistency::Strong,
        used_by: "`OperatorDirectory::operator`",
    },
    AccessPattern {
        entity: "operator",
        name: "a page of operators in id order, after a cursor",
        operation: "Query (Limit)",
        key: "`pk = OPERATORS AND sk > OPERATOR#<after>`",
        consistency: Consistency::Strong,
        used_by: "`OperatorDirectory::operators`",
    },
    AccessPattern {
        entity: "operator",
        name: "rotate the token, with its audit entry",
        operation: "TransactWriteItems (update + delete + 2 puts)",
        key: "`OPERATORS` / `OPERATOR#<oid>`, `status = active AND token_hash = :read`; delete the old `OPTOKEN#…`; put the new one (`attribute_not_exists(pk)`)",
        consistency: Consistency::Write,
        used_by: "`OperatorDirectory::rotate_operator_token`",
    },
    AccessPattern {
        entity: "operator",
        name: "disable, with its audit entry",
        operation: "TransactWriteItems (update + 2 deletes + put)",
        key: "`OPERATORS` / `OPERATOR#<oid>`, `status = active AND token_hash = :read`; delete `OPTOKEN#…` and `OPNAME#…` (`operator_id = :oid`)",
        consistency: Consistency::Write,
        used_by: "`OperatorDirectory::disable_operator`",
    },
    AccessPattern {
        entity: "operator",
        name: "a page of an operator's audit trail, newest first",
        operation: "Query (descending, Limit)",
        key: "`pk = OPERATOR#<oid> AND sk BETWEEN AUDIT# AND <cursor>`",
        consistency: Consistency::Strong,
        used_by: "`OperatorDirectory::operator_audit`",
    },
];

/// An operator item.
#[derive(Debug, Serialize, Deserialize)]
struct OperatorRecord {
    pk: String,
    sk: String,
    entity: String,
    id: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    role: Role,
    status: OperatorStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_rotated_at: OffsetDateTime,
    /// The current token's hash (kept after a disable, for forensics: it matches no token item).
    token_hash: String,
}

impl From<&Operator> for OperatorRecord {
    fn from(o: &Operator) -> Self {
        Self {
            pk: OPERATORS_PK.into(),
            sk: operator_sk(&o.id),
            entity: ENTITY_OPERATOR.into(),
            id: o.id.to_string(),
            name: o.name.to_string(),
            email: o.email.clone(),
            role: o.role,
            status: o.status,
            created_at: o.created_at,
            last_rotated_at: o.last_rotated_at,
            token_hash: o.token_hash.to_hex(),
        }
    }
}

impl TryFrom<OperatorRecord> for Operator {
    type Error = StoreError;

    fn try_from(r: OperatorRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: OperatorId::parse(&r.id).map_err(|_| corrupt("operator id", &r.sk))?,
            name: OperatorName::parse(&r.name).map_err(|_| corrupt("operator name", &r.sk))?,
            email: r.email,
            role: r.role,
            status: r.status,
            created_at: r.created_at,
            last_rotated_at: r.last_rotated_at,
            token_hash: TokenHash::from_hex(&r.token_hash)
                .ok_or_else(|| corrupt("token hash", &r.sk))?,
        })
    }
}

/// A token item: the credential, denormalised so one read authorises. (A future role or name
/// change must rewrite it in the same transaction as the operator item.)
#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    pk: String,
    sk: String,
    entity: String,
    operator_id: String,
    name: String,
    role: Role,
    token_hash: String,
}

impl TokenRecord {
    fn new(credential: &OperatorCredential) -> Self {
        let key = token_key(&credential.token_hash);
        Self {
            pk: key_part(&key, "pk"),
            sk: key_part(&key, "sk"),
            entity: ENTITY_TOKEN.into(),
            operator_id: credential.operator_id.to_string(),
            name: credential.name.to_string(),
            role: credential.role,
            token_hash: credential.token_hash.to_hex(),
        }
    }
}

impl TryFrom<TokenRecord> for OperatorCredential {
    type Error = StoreError;

    fn try_from(r: TokenRecord) -> Result<Self, StoreError> {
        Ok(Self {
            operator_id: OperatorId::parse(&r.operator_id)
                .map_err(|_| corrupt("operator id", &r.pk))?,
            name: OperatorName::parse(&r.name).map_err(|_| corrupt("operator name", &r.pk))?,
            role: r.role,
            token_hash: TokenHash::from_hex(&r.token_hash)
                .ok_or_else(|| corrupt("token hash", &r.pk))?,
        })
    }
}

/// A name item.
#[derive(Debug, Serialize)]
struct NameRecord {
    pk: String,
    sk: String,
    entity: String,
    operator_id: String,
}

fn key_part(key: &Item, part: &str) -> String {
    key.get(part)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

#[async_trait]
impl OperatorDirectory for DynamoStore {
    #[tracing::instrument(skip_all, fields(operator_id = %operator.id))]
    async fn create_operator(
        &self,
        operator: &Operator,
        audit: &AuditEntry,
    ) -> Result<OperatorCreated, StoreError> {
        let name = name_key(&operator.name);
        let name = NameRecord {
            pk: key_part(&name, "pk"),
            sk: key_part(&name, "sk"),
            entity: ENTITY_NAME.into(),
            operator_id: operator.id.to_string(),
        };
        let new = "attribute_not_exists(pk)";
        let items = vec![
            self.put(to_item(&OperatorRecord::from(operator))?, Some(new))?,
            self.put(to_item(&name)?, Some(new))?,
            self.put(
                to_item(&TokenRecord::new(&operator.credential()))?,
                Some(new),
            )?,
            self.put(
                to_item(&AuditRecord::new(trail_pk(&operator.id), audit))?,
                Some(new),
            )?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(OperatorCreated::Created),
            // The reasons come in item order: the id first, then the name, then the token.
            Err(TransactError::Cancelled(reasons)) => {
                let failed =
                    |i: usize| reasons.get(i).map(String::as_str) == Some("ConditionalCheckFailed");
                if failed(0) || failed(2) {
                    Err(StoreError::AlreadyExists)
                } else if failed(1) {
                    Ok(OperatorCreated::NameTaken)
                } else {
                    Err(StoreError::Throttled)
                }
            }
            Err(TransactError::Store(e)) => Err(e),
        }
    }

    async fn credential(&self, hash: &TokenHash) -> Result<Option<OperatorCredential>, StoreError> {
        // Strongly consistent: a rotation or a disable is seen by the very next request.
        self.get(token_key(hash))
            .await?
            .map(|item| OperatorCredential::try_from(from_item::<TokenRecord>(item)?))
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(operator_id = %id))]
    async fn operator(&self, id: &OperatorId) -> Result<Option<Operator>, StoreError> {
        self.get(keys::key(OPERATORS_PK.into(), operator_sk(id)))
            .await?
            .map(|item| Operator::try_from(from_item::<OperatorRecord>(item)?))
            .transpose()
    }

    async fn operators(
        &self,
        after: Option<&OperatorId>,
        limit: usize,
    ) -> Result<SweepPage<Operator>, StoreError> {
        let after = after.map_or_else(|| OPERATOR_PREFIX.to_owned(), operator_sk);
        let out = self
            .client
            .query()
            .table_name(self.table())
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk > :after")
            .set_expression_attribute_values(Some(values(vec![
                (":pk", s(OPERATORS_PK)),
                (":after", s(after)),
            ])))
            // One more than asked, to know whether another page follows.
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        let mut items: Vec<Operator> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Operator::try_from(from_item::<OperatorRecord>(item)?))
            .collect::<Result<_, _>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(SweepPage {
            next: more
                .then(|| items.last().map(|o| o.id.to_string()))
                .flatten(),
            items,
        })
    }

    #[tracing::instrument(skip_all, fields(operator_id = %read.id))]
    async fn rotate_operator_token(
        &self,
        read: &Operator,
        new: &TokenHash,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let update = self.update_if_current(
            read,
            "SET token_hash = :new, last_rotated_at = :at",
            vec![(":new", s(new.to_hex())), (":at", time_value(audit.at))],
        )?;
        let rotated = OperatorCredential {
            token_hash: new.clone(),
            ..read.credential()
        };
        let items = vec![
            update,
            self.delete(token_key(&read.token_hash), None)?,
            self.put(
                to_item(&TokenRecord::new(&rotated))?,
                Some("attribute_not_exists(pk)"),
            )?,
            self.put(
                to_item(&AuditRecord::new(trail_pk(&read.id), audit))?,
                Some("attribute_not_exists(pk)"),
            )?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TransactError::Cancelled(_)) => Ok(false),
            Err(TransactError::Store(e)) => Err(e),
        }
    }

    #[tracing::instrument(skip_all, fields(operator_id = %read.id))]
    async fn disable_operator(
        &self,
        read: &Operator,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let update = self.update_if_current(
            read,
            "SET #status = :disabled",
            vec![(":disabled", s(OperatorStatus::Disabled.as_str()))],
        )?;
        let items = vec![
            update,
            self.delete(token_key(&read.token_hash), None)?,
            // Always this operator's while it is active; never free another's name.
            self.delete(
                name_key(&read.name),
                Some((
                    "attribute_not_exists(pk) OR operator_id = :oid",
                    s(read.id.to_string()),
                )),
            )?,
            self.put(
                to_item(&AuditRecord::new(trail_pk(&read.id), audit))?,
                Some("attribute_not_exists(pk)"),
            )?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TransactError::Cancelled(_)) => Ok(false),
            Err(TransactError::Store(e)) => Err(e),
        }
    }

    async fn operator_audit(
        &self,
        id: &OperatorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        self.trail_page(trail_pk(id), before, limit).await
    }
}

impl DynamoStore {
    /// A transaction item updating the operator item with `set`, only while it is active and
    /// still holds the token it was read with.
    fn update_if_current(
        &self,
        read: &Operator,
        set: &str,
        extra: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut vals = values(vec![
            (":active", s(OperatorStatus::Active.as_str())),
            (":read", s(read.token_hash.to_hex())),
        ]);
        vals.extend(values(extra));
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(keys::key(OPERATORS_PK.into(), operator_sk(&read.id))))
            .update_expression(set)
            .condition_expression("#status = :active AND token_hash = :read")
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(vals))
            .build()
            .map_err(|e| StoreError::Backend(e.into()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction item deleting `key`, if the condition (with its one value `:oid`) holds.
    fn delete(
        &self,
        key: Item,
        condition: Option<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key));
        if let Some((expression, oid)) = condition {
            delete = delete
                .condition_expression(expression)
                .expression_attribute_values(":oid", oid);
        }
        let delete = delete.build().map_err(|e| StoreError::Backend(e.into()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}
