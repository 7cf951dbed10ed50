//! Endorsements: one item per endorsed signing key and kind (`TRUST` / `ENDORSEMENT#<kind>#<kid>`),
//! written by `nectar-admin trust endorse`, read in one query by the JWKS function. They expire
//! by TTL at their end; readers also filter by time, as TTL deletion is lazy.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::table::{AccessPattern, Consistency, DynamoStore, from_item, s, to_item, values};
use crate::domain::StoreError;
use crate::domain::ports::{EndorsementRegistry, StoredEndorsement};

/// Entity tag of an endorsement item.
pub(crate) const ENTITY_ENDORSEMENT: &str = "endorsement";
/// The partition holding every endorsement (a handful of items: one per key and kind).
pub(crate) const TRUST_PK: &str = "TRUST";

fn endorsement_sk(use_: nectar_protocol::token::TokenKind, kid: &str) -> String {
    let kind = serde_json::to_value(use_)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("ENDORSEMENT#{kind}#{kid}")
}

/// How endorsements are read and written.
pub const ACCESS_PATTERNS: &[AccessPattern] = &[
    AccessPattern {
        entity: "endorsement",
        name: "store an endorsement",
        operation: "PutItem",
        key: "`TRUST` / `ENDORSEMENT#<kind>#<kid>` (TTL at its end)",
        consistency: Consistency::Write,
        used_by: "`EndorsementRegistry::put_endorsement` (admin CLI)",
    },
    AccessPattern {
        entity: "endorsement",
        name: "every endorsement",
        operation: "Query",
        key: "`pk = TRUST`, `begins_with(sk, ENDORSEMENT#)`",
        consistency: Consistency::Strong,
        used_by: "`EndorsementRegistry::endorsements` (JWKS)",
    },
];

#[derive(Debug, Serialize, Deserialize)]
struct EndorsementRecord {
    pk: String,
    sk: String,
    entity: String,
    kid: String,
    #[serde(rename = "use")]
    use_: nectar_protocol::token::TokenKind,
    token: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    ttl: i64,
}

#[async_trait]
impl EndorsementRegistry for DynamoStore {
    async fn put_endorsement(&self, e: &StoredEndorsement) -> Result<(), StoreError> {
        let record = EndorsementRecord {
            pk: TRUST_PK.into(),
            sk: endorsement_sk(e.use_, &e.kid),
            entity: ENTITY_ENDORSEMENT.into(),
            kid: e.kid.clone(),
            use_: e.use_,
            token: e.token.clone(),
            expires_at: e.expires_at,
            ttl: e.expires_at.unix_timestamp(),
        };
        self.client
            .put_item()
            .table_name(self.table())
            .set_item(Some(to_item(&record)?))
            .send()
            .await
            .map_err(super::table::sdk_error)?;
        Ok(())
    }

    async fn endorsements(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<StoredEndorsement>, StoreError> {
        let items = self
            .query_all(
                None,
                "pk = :pk AND begins_with(sk, :prefix)",
                values(vec![(":pk", s(TRUST_PK)), (":prefix", s("ENDORSEMENT#"))]),
            )
            .await?;
        let mut found = Vec::with_capacity(items.len());
        for item in items {
            let r: EndorsementRecord = from_item(item)?;
            if r.expires_at > now {
                found.push(StoredEndorsement {
                    kid: r.kid,
                    use_: r.use_,
                    token: r.token,
                    expires_at: r.expires_at,
                });
            }
        }
        Ok(found)
    }
}
