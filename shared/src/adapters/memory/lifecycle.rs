//! The lifecycle job's ports in memory: the status + expiry and silence "indexes" (computed from
//! the state with the DynamoDB index sort keys, so cursors and order match), sweep cursors, the
//! notice ledger and the release of a silent installation's seat.

use std::collections::HashMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::MemoryStore;
use crate::adapters::dynamo::{expiry_gsi2_sk, keys, seen_gsi2_sk};
use crate::domain::license::whole_seconds;
use crate::domain::lifecycle::NoticeState;
use crate::domain::ports::{Candidate, LifecycleIndex, NoticeClaim, NoticeLedger, SweepPage};
use crate::domain::{
    AuditEntry, Feature, Installation, InstallationStatus, LicenseId, LicenseStatus, Period,
    StoreError,
};

/// One page of `(sort key, item)` pairs in `(after, upper]` ∩ `[lower, upper]`, like the
/// DynamoDB adapter's index query: resuming after a cursor, and — as DynamoDB does when it stops
/// at `Limit` — reporting a next page whenever the page is full.
fn page<T>(
    mut entries: Vec<(String, T)>,
    lower: String,
    upper: &str,
    after: Option<&str>,
    limit: usize,
) -> SweepPage<T> {
    let from = match after {
        Some(a) if a >= lower.as_str() => format!("{a} "),
        _ => lower,
    };
    let limit = limit.clamp(1, 1_000);
    entries.retain(|(sk, _)| sk.as_str() >= from.as_str() && sk.as_str() <= upper);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.truncate(limit);
    let next = if entries.len() == limit {
        entries.last().map(|(sk, _)| sk.clone())
    } else {
        None
    };
    SweepPage {
        items: entries.into_iter().map(|(_, item)| item).collect(),
        next,
    }
}

#[async_trait]
impl LifecycleIndex for MemoryStore {
    async fn licenses_by_expiry(
        &self,
        status: LicenseStatus,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SweepPage<Candidate>, StoreError> {
        let entries = self
            .state()
            .licenses
            .values()
            .filter(|item| item.license.status == status)
            .map(|item| {
                (
                    expiry_gsi2_sk(item.license.expires_at, &item.license.id),
                    Candidate {
                        license: item.license.clone(),
                        notices: item.notices.clone(),
                    },
                )
            })
            .collect();
        let upper = format!("{}#~", keys::sortable_time(to));
        Ok(page(
            entries,
            keys::sortable_time(from),
            &upper,
            after,
            limit,
        ))
    }

    async fn silent_installations(
        &self,
        seen_before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SweepPage<Installation>, StoreError> {
        let entries = self
            .state()
            .installations
            .values()
            .filter(|i| i.status == InstallationStatus::Active)
            .map(|i| {
                (
                    seen_gsi2_sk(i.last_seen_at, &i.license_id, &i.id),
                    i.clone(),
                )
            })
            .collect();
        let upper = format!("{}#~", keys::sortable_time(seen_before));
        Ok(page(entries, "0".into(), &upper, after, limit))
    }

    async fn usage_totals(
        &self,
        licenses: &[LicenseId],
        feature: &Feature,
        period: Period,
    ) -> Result<HashMap<LicenseId, u64>, StoreError> {
        let state = self.state();
        Ok(licenses
            .iter()
            .filter_map(|l| {
                let counter = state.counters.get(&(l.clone(), feature.clone(), period))?;
                Some((l.clone(), counter.used))
            })
            .collect())
    }

    async fn cursor(&self, job: &str) -> Result<Option<String>, StoreError> {
        Ok(self.state().cursors.get(job).cloned().flatten())
    }

    async fn save_cursor(&self, job: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        self.state()
            .cursors
            .insert(job.to_owned(), cursor.map(str::to_owned));
        Ok(())
    }

    async fn deactivate_installation(
        &self,
        installation: &Installation,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let key = (installation.license_id.clone(), installation.id.clone());
        let still_silent = state.installations.get(&key).is_some_and(|i| {
            i.status == InstallationStatus::Active
                && i.last_seen_at == whole_seconds(installation.last_seen_at)
        });
        if !still_silent || !state.licenses.contains_key(&installation.license_id) {
            return Ok(false);
        }
        if let Some(i) = state.installations.get_mut(&key) {
            i.status = InstallationStatus::Inactive;
        }
        if let Some(item) = state.licenses.get_mut(&installation.license_id) {
            // DynamoDB `ADD -1`; an active installation always holds a counted seat.
            item.license.active_installations = item.license.active_installations.saturating_sub(1);
        }
        state.license_audit(&installation.license_id, audit);
        Ok(true)
    }

    async fn expire_license(
        &self,
        id: &LicenseId,
        expires_at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(item) = state.licenses.get_mut(id) else {
            return Ok(false);
        };
        if item.license.status != LicenseStatus::Active
            || item.license.expires_at != whole_seconds(expires_at)
        {
            return Ok(false);
        }
        item.license.status = LicenseStatus::Expired;
        item.license.updated_at = whole_seconds(audit.at);
        state.license_audit(id, audit);
        Ok(true)
    }

    async fn repair_seat_count(
        &self,
        id: &LicenseId,
        recorded: u64,
        counted: u64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(item) = state.licenses.get_mut(id) else {
            return Ok(false);
        };
        if item.license.active_installations != recorded {
            return Ok(false);
        }
        item.license.active_installations = counted;
        state.license_audit(id, audit);
        Ok(true)
    }
}

#[async_trait]
impl NoticeLedger for MemoryStore {
    async fn claim_notice(
        &self,
        license: &LicenseId,
        id: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        stale: &[String],
    ) -> Result<NoticeClaim, StoreError> {
        let mut state = self.state();
        let Some(item) = state.licenses.get_mut(license) else {
            return Ok(NoticeClaim::Taken);
        };
        // As stored in DynamoDB, at whole seconds: a claim lapses once its end is before now.
        let free = match item.notices.get(id) {
            None => true,
            Some(NoticeState::Sent) => false,
            Some(NoticeState::Claimed { until }) => *until < whole_seconds(now),
        };
        if !free {
            return Ok(NoticeClaim::Taken);
        }
        item.notices.insert(
            id.to_owned(),
            NoticeState::Claimed {
                until: whole_seconds(until),
            },
        );
        // The DynamoDB update removes at most 20 stale entries per claim.
        for old in stale.iter().filter(|s| s.as_str() != id).take(20) {
            item.notices.remove(old);
        }
        Ok(NoticeClaim::Claimed)
    }

    async fn mark_notice_sent(
        &self,
        license: &LicenseId,
        id: &str,
        _at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let Some(item) = state.licenses.get_mut(license) else {
            return Err(StoreError::Backend(
                "mark_notice_sent: no such license".into(),
            ));
        };
        item.notices.insert(id.to_owned(), NoticeState::Sent);
        Ok(())
    }
}
