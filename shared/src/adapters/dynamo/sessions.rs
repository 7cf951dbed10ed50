//! Console sessions: one item per session, `SESSION#<sha256 hex of the cookie's secret>` /
//! `SESSION`, with the DynamoDB TTL at the session's end. The secret itself is never stored: a
//! read of the table gives no one a session. Read with one strongly consistent `GetItem` per
//! console request; created by a conditional put; deleted at sign-out.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys;
use super::table::{AccessPattern, Consistency, DynamoStore, Item, from_item, sdk_error, to_item};
use crate::domain::operator::Principal;
use crate::domain::ports::SessionStore;
use crate::domain::session::ConsoleSession;
use crate::domain::{OperatorId, Role, StoreError, TokenHash};

/// Entity tag of a session item.
const ENTITY_SESSION: &str = "console_session";

fn session_key(key: &TokenHash) -> Item {
    keys::key(format!("SESSION#{}", key.to_hex()), "SESSION")
}

/// How sessions are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "console session",
        name: "open a session (sign-in)",
        operation: "PutItem",
        key: "`SESSION#<sha256 of the secret>` / `SESSION` (TTL at its end); `attribute_not_exists(pk)`",
        consistency: Consistency::Write,
        used_by: "`SessionStore::create_session`",
    },
    AccessPattern {
        entity: "console session",
        name: "the session of a console request",
        operation: "GetItem",
        key: "`SESSION#<sha256 of the secret>` / `SESSION`",
        consistency: Consistency::Strong,
        used_by: "`SessionStore::session`",
    },
    AccessPattern {
        entity: "console session",
        name: "close a session (sign-out)",
        operation: "DeleteItem",
        key: "`SESSION#<sha256 of the secret>` / `SESSION`",
        consistency: Consistency::Write,
        used_by: "`SessionStore::delete_session`",
    },
];

/// A session item.
#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    pk: String,
    sk: String,
    entity: String,
    operator_id: Option<String>,
    name: String,
    role: Role,
    token_hash: String,
    csrf: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// DynamoDB TTL (Unix seconds): the session's end.
    ttl: i64,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("console session: {what}"))
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(&self, session: &ConsoleSession) -> Result<(), StoreError> {
        let key = session_key(&session.key);
        let part = |name: &str| {
            key.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let record = SessionRecord {
            pk: part("pk"),
            sk: part("sk"),
            entity: ENTITY_SESSION.into(),
            operator_id: session.principal.id.map(|id| id.to_string()),
            name: session.principal.name.clone(),
            role: session.principal.role,
            token_hash: session.token_hash.to_hex(),
            csrf: session.csrf.clone(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            ttl: session.expires_at.unix_timestamp(),
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn session(
        &self,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let Some(item) = self.get(session_key(key)).await? else {
            return Ok(None);
        };
        let r: SessionRecord = from_item(item)?;
        let session = ConsoleSession {
            key: key.clone(),
            principal: Principal {
                id: r
                    .operator_id
                    .map(|id| OperatorId::parse(&id).map_err(|_| corrupt("operator id")))
                    .transpose()?,
                name: r.name,
                role: r.role,
            },
            token_hash: TokenHash::from_hex(&r.token_hash).ok_or_else(|| corrupt("token hash"))?,
            csrf: r.csrf,
            created_at: r.created_at,
            expires_at: r.expires_at,
        };
        Ok(session.is_live_at(now).then_some(session))
    }

    async fn delete_session(&self, key: &TokenHash) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(session_key(key)))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
