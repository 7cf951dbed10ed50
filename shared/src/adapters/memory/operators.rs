//! [`OperatorDirectory`] in memory, with the DynamoDB adapter's items and outcomes: the operator
//! record, a token item per active operator (under its hash) and a name item per active name,
//! all changed in one atomic step with the audit entry — or not at all.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::license::whole_seconds;
use crate::domain::ports::{AuditPage, OperatorCreated, OperatorDirectory, SweepPage};
use crate::domain::{
    AuditEntry, Operator, OperatorCredential, OperatorId, OperatorStatus, StoreError, TokenHash,
};

fn trail(id: &OperatorId) -> String {
    format!("OPERATOR#{id}")
}

#[async_trait]
impl OperatorDirectory for MemoryStore {
    async fn create_operator(
        &self,
        operator: &Operator,
        audit: &AuditEntry,
    ) -> Result<OperatorCreated, StoreError> {
        let mut state = self.state();
        let id = operator.id.to_string();
        let token = operator.token_hash.to_hex();
        // DynamoDB's transaction reports the first failed condition: the record, then the name.
        if state.operators.contains_key(&id) {
            return Err(StoreError::AlreadyExists);
        }
        let name = operator.name.unique_key();
        if state.operator_names.contains_key(&name) {
            return Ok(OperatorCreated::NameTaken);
        }
        if state.operator_tokens.contains_key(&token) {
            return Err(StoreError::AlreadyExists);
        }
        let stored = Operator {
            status: OperatorStatus::Active,
            created_at: whole_seconds(operator.created_at),
            last_rotated_at: whole_seconds(operator.last_rotated_at),
            ..operator.clone()
        };
        state.operator_names.insert(name, operator.id);
        state.operator_tokens.insert(token, stored.credential());
        state.operators.insert(id, stored);
        state.audit(trail(&operator.id), audit);
        Ok(OperatorCreated::Created)
    }

    async fn credential(&self, hash: &TokenHash) -> Result<Option<OperatorCredential>, StoreError> {
        Ok(self.state().operator_tokens.get(&hash.to_hex()).cloned())
    }

    async fn operator(&self, id: &OperatorId) -> Result<Option<Operator>, StoreError> {
        Ok(self.state().operators.get(&id.to_string()).cloned())
    }

    async fn operators(
        &self,
        after: Option<&OperatorId>,
        limit: usize,
    ) -> Result<SweepPage<Operator>, StoreError> {
        let state = self.state();
        let after = after.map(ToString::to_string);
        let mut items: Vec<Operator> = state
            .operators
            .iter()
            .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
            .take(limit + 1)
            .map(|(_, o)| o.clone())
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(SweepPage {
            next: more
                .then(|| items.last().map(|o| o.id.to_string()))
                .flatten(),
            items,
        })
    }

    async fn rotate_operator_token(
        &self,
        read: &Operator,
        new: &TokenHash,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (id, expected) = (&read.id, &read.token_hash);
        let mut state = self.state();
        let new_key = new.to_hex();
        if state.operator_tokens.contains_key(&new_key) {
            return Ok(false);
        }
        let Some(operator) = state.operators.get_mut(&id.to_string()) else {
            return Ok(false);
        };
        if operator.status != OperatorStatus::Active || operator.token_hash != *expected {
            return Ok(false);
        }
        operator.token_hash = new.clone();
        operator.last_rotated_at = whole_seconds(audit.at);
        let credential = operator.credential();
        state.operator_tokens.remove(&expected.to_hex());
        state.operator_tokens.insert(new_key, credential);
        state.audit(trail(id), audit);
        Ok(true)
    }

    async fn disable_operator(
        &self,
        read: &Operator,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (id, expected) = (&read.id, &read.token_hash);
        let mut state = self.state();
        let Some(operator) = state.operators.get(&id.to_string()) else {
            return Ok(false);
        };
        if operator.status != OperatorStatus::Active || operator.token_hash != *expected {
            return Ok(false);
        }
        let name = operator.name.unique_key();
        // DynamoDB deletes the name item only if it is this operator's (it always is while the
        // operator is active; a foreign one cancels everything rather than free another's name).
        if state
            .operator_names
            .get(&name)
            .is_some_and(|holder| holder != id)
        {
            return Ok(false);
        }
        if let Some(operator) = state.operators.get_mut(&id.to_string()) {
            operator.status = OperatorStatus::Disabled;
        }
        state.operator_names.remove(&name);
        state.operator_tokens.remove(&expected.to_hex());
        state.audit(trail(id), audit);
        Ok(true)
    }

    async fn operator_audit(
        &self,
        id: &OperatorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        self.state().audit_page(&trail(id), before, limit)
    }
}
