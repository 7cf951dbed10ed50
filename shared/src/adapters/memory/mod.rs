//! In-memory adapters: every store port the DynamoDB adapter implements (operators included),
//! plus a usage queue and an event publisher, with the semantics the services rely on — so a
//! service rule is tested in milliseconds, without the emulator.
//!
//! Compiled always (not only under `test-util`): they add no dependency, every build type-checks
//! them against the ports, and a local demo binary may use them. They are not a production store.
//!
//! Faithfulness to DynamoDB (checked by the port contract suite in `shared/tests/contract.rs`,
//! which runs the same tests against this store and against DynamoDB on the emulator):
//! - one `Mutex` around the whole state makes every port call a single atomic step: conditional
//!   writes and transactions (state change + audit entry) are all-or-nothing, and the seat count
//!   never passes its limit whatever the concurrency;
//! - times stored by DynamoDB as whole-second text are truncated to whole seconds here too;
//! - sweep cursors are the DynamoDB index sort keys, built by the same functions, so paging order
//!   and cursors are identical; like DynamoDB with `Limit`, a full page may report a next page that
//!   turns out empty;
//! - items DynamoDB deletes by TTL (usage dedupe markers, rate windows, executions) carry the same
//!   expiry and stay until [`MemoryStore::expire_ttl`] plays the TTL process — DynamoDB, too, keeps
//!   (and conditions on) an expired item until its TTL sweep deletes it.
//!
//! Known differences: no eventual consistency (DynamoDB's customer index may briefly miss a new
//! license; here it never does), no throttling, no item-size limit, and a claim of a seat by the
//! same installation from concurrent beats never briefly fills the license (DynamoDB's three-step
//! claim may refuse such a duplicate beat; here it is always seated).

mod events;
mod fleet;
mod lifecycle;
mod operators;
mod usage;
mod workflows;

pub use events::{MemoryPublisher, MemoryQueue};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::license::whole_seconds;
use crate::domain::lifecycle::NoticeState;
use crate::domain::ports::{
    AUDIT_PAGE, AuditLog, AuditPage, CustomerDirectory, EndorsementRegistry, HeartbeatReport,
    InstallationRegistry, LicenseDetail, LicenseReader, LicenseWriter, SeatClaim, Snapshot,
    StoredEndorsement,
};
use crate::domain::workflow::{ExecutionId, ExecutionRecord};
use crate::domain::{
    AuditEntry, Customer, CustomerId, EventId, Feature, Installation, InstallationId,
    InstallationStatus, Lease, License, LicenseId, LicenseStatus, Period, StoreError,
};

/// The store: cheap to clone, every clone sees the same state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

/// A license with the notice ledger DynamoDB keeps as attributes of the license item.
#[derive(Debug, Clone)]
struct LicenseItem {
    license: License,
    notices: BTreeMap<String, NoticeState>,
}

/// A usage counter: the month total and the daily series.
#[derive(Debug, Clone, Default)]
struct Counter {
    used: u64,
    days: BTreeMap<u8, u64>,
}

/// Everything, keyed as DynamoDB keys it (license and installation ids order as their sort keys).
#[derive(Debug, Default)]
struct State {
    customers: HashMap<CustomerId, Customer>,
    licenses: BTreeMap<LicenseId, LicenseItem>,
    installations: BTreeMap<(LicenseId, InstallationId), Installation>,
    /// Audit trails by partition (`LICENSE#…` or `CUSTOMER#…`), in sort-key order.
    audit: HashMap<String, Vec<AuditEntry>>,
    counters: HashMap<(LicenseId, Feature, Period), Counter>,
    /// Dedupe markers and their TTL (Unix seconds).
    markers: HashMap<(LicenseId, EventId), i64>,
    cursors: HashMap<String, Option<String>>,
    /// Rate windows by (key, window start as Unix seconds): hits and TTL.
    rates: HashMap<(String, i64), (u64, i64)>,
    executions: HashMap<ExecutionId, (ExecutionRecord, i64)>,
    /// `append_once` keys and their TTL (Unix seconds).
    once: HashMap<(LicenseId, String), i64>,
    /// Endorsements by (kind, kid), as the `TRUST` partition holds them.
    endorsements: BTreeMap<(String, String), StoredEndorsement>,
    /// Operators in id order (the `OPERATORS` partition's sort order).
    operators: BTreeMap<String, crate::domain::Operator>,
    /// Token items: credentials by token hash (hex), as `OPTOKEN#<hash>` holds them.
    operator_tokens: HashMap<String, crate::domain::OperatorCredential>,
    /// Name items: the active operator holding each name (lower-case), as `OPNAME#<name>`.
    operator_names: HashMap<String, crate::domain::OperatorId>,
    /// "Needs attention" flags by their item key (`ATTENTION#<kind>`, `<lid>#<iid or ->`).
    flags: BTreeMap<(String, String), crate::domain::fleet::Flag>,
    /// Daily metrics snapshots by day (`YYYY-MM-DD`), as `METRICS` / `DAY#<day>`.
    snapshots: BTreeMap<String, nectar_protocol::metrics::MetricsSnapshot>,
    /// Console sessions by the hex of their key, as `SESSION#<hash>` holds them.
    sessions: HashMap<String, crate::domain::session::ConsoleSession>,
    /// Revenue changes in the order of `REVENUE#<YYYY-MM>` / `<at>#<lid>#<revision>`.
    revenue_changes: BTreeMap<(String, i64, String, u64), crate::domain::revenue::RevenueChange>,
}

impl State {
    /// Appends to a partition's audit trail, keeping DynamoDB's sort-key order: by whole second,
    /// then by time of writing (the sort key's UUIDv7).
    fn audit(&mut self, partition: String, entry: &AuditEntry) {
        let trail = self.audit.entry(partition).or_default();
        trail.push(entry.clone());
        trail.sort_by_key(|e| whole_seconds(e.at));
    }

    /// A page of a partition's trail, newest first. The cursor counts entries already shown
    /// (DynamoDB's is a sort key; both are opaque, shaped `AUDIT#…` as the API documents, and
    /// page the same way).
    fn audit_page(
        &self,
        partition: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        let skip: usize = match before {
            None => 0,
            Some(c) => c
                .strip_prefix("AUDIT#shown:")
                .and_then(|n| n.parse().ok())
                .ok_or(StoreError::InvalidCursor)?,
        };
        let trail = self
            .audit
            .get(partition)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let entries: Vec<AuditEntry> = trail.iter().rev().skip(skip).take(limit).cloned().collect();
        let shown = skip + entries.len();
        Ok(AuditPage {
            next: (shown < trail.len() && !entries.is_empty())
                .then(|| format!("AUDIT#shown:{shown}")),
            entries,
        })
    }

    fn license_audit(&mut self, license: &LicenseId, entry: &AuditEntry) {
        self.audit(format!("LICENSE#{license}"), entry);
    }

    /// The heartbeat fields both touch and claim record (absent readings keep their value).
    fn record_beat(installation: &mut Installation, report: &HeartbeatReport) {
        installation.last_seen_at = whole_seconds(report.at);
        installation.version.clone_from(&report.version);
        if let Some(users) = report.gauges.users {
            installation.gauges.users = Some(users);
        }
        if let Some(storage) = report.gauges.storage_gb {
            installation.gauges.storage_gb = Some(storage);
        }
        if let Some(domain) = &report.domain {
            installation.domain = Some(domain.clone());
        }
    }

    fn touch(&mut self, report: &HeartbeatReport) -> Option<Installation> {
        let key = (report.license_id.clone(), report.installation_id.clone());
        let installation = self.installations.get_mut(&key)?;
        if installation.status != InstallationStatus::Active {
            return None;
        }
        Self::record_beat(installation, report);
        Some(installation.clone())
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, recovering it if a panicking test thread poisoned the lock (the state is only
    /// ever changed by complete assignments, so it is consistent).
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Plays DynamoDB's TTL process at `now`: deletes dedupe markers, rate windows and executions
    /// whose TTL (Unix seconds) is at or before `now`. Until then they count, as in DynamoDB.
    pub fn expire_ttl(&self, now: OffsetDateTime) {
        let now = now.unix_timestamp();
        let mut state = self.state();
        state.markers.retain(|_, ttl| *ttl > now);
        state.rates.retain(|_, (_, ttl)| *ttl > now);
        state.executions.retain(|_, (_, ttl)| *ttl > now);
        state.once.retain(|_, ttl| *ttl > now);
        state
            .flags
            .retain(|_, f| f.expires_at().unix_timestamp() > now);
        state
            .sessions
            .retain(|_, s| s.expires_at.unix_timestamp() > now);
    }

    /// The ids of the notices in the license's ledger (what DynamoDB keeps as `notice:<id>`
    /// attributes), sorted; empty for an unknown license.
    pub fn notice_ids(&self, license: &LicenseId) -> Vec<String> {
        self.state()
            .licenses
            .get(license)
            .map(|item| item.notices.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl LicenseReader for MemoryStore {
    async fn snapshot(
        &self,
        license: &LicenseId,
        installation: &InstallationId,
        counter: Option<(&Feature, Period)>,
    ) -> Result<Snapshot, StoreError> {
        let state = self.state();
        Ok(Snapshot {
            license: state.licenses.get(license).map(|i| i.license.clone()),
            installation: state
                .installations
                .get(&(license.clone(), installation.clone()))
                .cloned(),
            used: counter.map(|(feature, period)| {
                state
                    .counters
                    .get(&(license.clone(), feature.clone(), period))
                    .map_or(0, |c| c.used)
            }),
        })
    }

    async fn license(&self, id: &LicenseId) -> Result<Option<License>, StoreError> {
        Ok(self.state().licenses.get(id).map(|i| i.license.clone()))
    }
}

#[async_trait]
impl LicenseWriter for MemoryStore {
    async fn create_license(
        &self,
        license: &License,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.licenses.contains_key(&license.id) {
            return Err(StoreError::AlreadyExists);
        }
        state.licenses.insert(
            license.id.clone(),
            LicenseItem {
                license: license.clone(),
                notices: BTreeMap::new(),
            },
        );
        state.license_audit(&license.id, audit);
        Ok(())
    }

    async fn set_status(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        Ok(self.status_change(id, expected, to, None, audit))
    }

    async fn renew(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        expires_at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        Ok(self.status_change(id, expected, to, Some(expires_at), audit))
    }
}

#[async_trait]
impl crate::domain::ports::SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &crate::domain::session::ConsoleSession,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let key = session.key.to_hex();
        if state.sessions.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        state.sessions.insert(key, session.clone());
        Ok(())
    }

    async fn session(
        &self,
        key: &crate::domain::TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<crate::domain::session::ConsoleSession>, StoreError> {
        Ok(self
            .state()
            .sessions
            .get(&key.to_hex())
            .filter(|s| s.is_live_at(now))
            .cloned())
    }

    async fn delete_session(&self, key: &crate::domain::TokenHash) -> Result<(), StoreError> {
        self.state().sessions.remove(&key.to_hex());
        Ok(())
    }
}

#[async_trait]
impl crate::domain::ports::LicenseAmender for MemoryStore {
    async fn amend(
        &self,
        after: &License,
        audit: &AuditEntry,
        revenue: Option<&crate::domain::revenue::RevenueChange>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(item) = state.licenses.get_mut(&after.id) else {
            return Ok(false);
        };
        let current = &mut item.license;
        if current.status != after.status || current.revision.checked_add(1) != Some(after.revision)
        {
            return Ok(false);
        }
        // The terms only: seats, expiry and issue time stay as stored.
        current.customer_id = after.customer_id;
        current.plan = after.plan;
        current.features.clone_from(&after.features);
        current.limits = after.limits;
        current
            .domain_restrictions
            .clone_from(&after.domain_restrictions);
        current.contract.clone_from(&after.contract);
        current.keys_valid_from = after.keys_valid_from.map(whole_seconds);
        current.revision = after.revision;
        current.updated_at = whole_seconds(after.updated_at);
        state.license_audit(&after.id, audit);
        if let Some(change) = revenue {
            let at = whole_seconds(change.at);
            state.revenue_changes.insert(
                (
                    Period::containing(at).to_string(),
                    at.unix_timestamp(),
                    change.license_id.to_string(),
                    change.revision,
                ),
                crate::domain::revenue::RevenueChange {
                    at,
                    ..change.clone()
                },
            );
        }
        Ok(true)
    }
}

impl MemoryStore {
    /// The status transaction: the change and its audit entry, or nothing.
    fn status_change(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        expires_at: Option<OffsetDateTime>,
        audit: &AuditEntry,
    ) -> bool {
        let mut state = self.state();
        let Some(item) = state.licenses.get_mut(id) else {
            return false;
        };
        if item.license.status != expected {
            return false;
        }
        item.license.status = to;
        item.license.updated_at = whole_seconds(audit.at);
        if let Some(exp) = expires_at {
            item.license.expires_at = whole_seconds(exp);
        }
        state.license_audit(id, audit);
        true
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, license: &LicenseId, entry: &AuditEntry) -> Result<(), StoreError> {
        self.state().license_audit(license, entry);
        Ok(())
    }

    async fn append_once(
        &self,
        license: &LicenseId,
        once: &str,
        until: OffsetDateTime,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let key = (license.clone(), once.to_owned());
        // Like DynamoDB: a marker past its TTL no longer blocks, swept or not.
        if state
            .once
            .get(&key)
            .is_some_and(|ttl| *ttl >= entry.at.unix_timestamp())
        {
            return Ok(false);
        }
        state.once.insert(key, until.unix_timestamp());
        state.license_audit(license, entry);
        Ok(true)
    }

    async fn audit_page(
        &self,
        license: &LicenseId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        self.state()
            .audit_page(&format!("LICENSE#{license}"), before, limit)
    }
}

#[async_trait]
impl InstallationRegistry for MemoryStore {
    async fn touch(&self, report: &HeartbeatReport) -> Result<Option<Installation>, StoreError> {
        Ok(self.state().touch(report))
    }

    /// One atomic step with DynamoDB's outcome: an installation that already holds a seat is
    /// refreshed; otherwise a seat is taken only below the limit (and only on a known license).
    async fn claim_seat(
        &self,
        report: &HeartbeatReport,
        seat_limit: u64,
    ) -> Result<SeatClaim, StoreError> {
        let mut state = self.state();
        if let Some(seated) = state.touch(report) {
            return Ok(SeatClaim::Seated(Box::new(seated)));
        }
        let Some(item) = state.licenses.get_mut(&report.license_id) else {
            return Ok(SeatClaim::SeatsFull);
        };
        if item.license.active_installations >= seat_limit {
            return Ok(SeatClaim::SeatsFull);
        }
        item.license.active_installations += 1;
        let at = whole_seconds(report.at);
        let installation = state
            .installations
            .entry((report.license_id.clone(), report.installation_id.clone()))
            .or_insert_with(|| Installation {
                id: report.installation_id.clone(),
                license_id: report.license_id.clone(),
                status: InstallationStatus::Active,
                version: report.version.clone(),
                domain: None,
                first_seen_at: at,
                last_seen_at: at,
                gauges: Default::default(),
                lease: None,
            });
        installation.status = InstallationStatus::Active;
        State::record_beat(installation, report);
        Ok(SeatClaim::Seated(Box::new(installation.clone())))
    }

    async fn installations(&self, license: &LicenseId) -> Result<Vec<Installation>, StoreError> {
        Ok(self
            .state()
            .installations
            .iter()
            .filter(|((l, _), _)| l == license)
            .map(|(_, i)| i.clone())
            .collect())
    }

    async fn record_lease(
        &self,
        license: &LicenseId,
        installation: &InstallationId,
        lease: &Lease,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let Some(found) = state
            .installations
            .get_mut(&(license.clone(), installation.clone()))
        else {
            // DynamoDB: the `attribute_exists(pk)` condition fails, a backend error.
            return Err(StoreError::Backend(
                "record_lease: no such installation".into(),
            ));
        };
        found.lease = Some(Lease {
            token: lease.token.clone(),
            issued_at: whole_seconds(lease.issued_at),
            expires_at: whole_seconds(lease.expires_at),
        });
        Ok(())
    }
}

#[async_trait]
impl CustomerDirectory for MemoryStore {
    async fn create_customer(
        &self,
        customer: &Customer,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.customers.contains_key(&customer.id) {
            return Err(StoreError::AlreadyExists);
        }
        state.customers.insert(customer.id, customer.clone());
        state.audit(format!("CUSTOMER#{}", customer.id), audit);
        Ok(())
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        Ok(self.state().customers.get(id).cloned())
    }

    async fn licenses_of(&self, id: &CustomerId) -> Result<Vec<LicenseDetail>, StoreError> {
        let state = self.state();
        let mut details: Vec<LicenseDetail> = state
            .licenses
            .values()
            .filter(|item| item.license.customer_id == *id)
            .map(|item| {
                let license = item.license.clone();
                let trail = state
                    .audit
                    .get(&format!("LICENSE#{}", license.id))
                    .cloned()
                    .unwrap_or_default();
                let older = trail.len().saturating_sub(AUDIT_PAGE);
                LicenseDetail {
                    installations: state
                        .installations
                        .iter()
                        .filter(|((l, _), _)| *l == license.id)
                        .map(|(_, i)| i.clone())
                        .collect(),
                    audit_next: (older > 0).then(|| format!("AUDIT#shown:{AUDIT_PAGE}")),
                    audit: trail[older..].to_vec(),
                    license,
                }
            })
            .collect();
        // Stable, like the DynamoDB adapter's sort of the index order (license id).
        details.sort_by_key(|d| d.license.issued_at);
        Ok(details)
    }
}

#[async_trait]
impl EndorsementRegistry for MemoryStore {
    async fn put_endorsement(&self, e: &StoredEndorsement) -> Result<(), StoreError> {
        let kind = format!("{:?}", e.use_);
        self.state()
            .endorsements
            .insert((kind, e.kid.clone()), e.clone());
        Ok(())
    }

    async fn endorsements(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<StoredEndorsement>, StoreError> {
        Ok(self
            .state()
            .endorsements
            .values()
            .filter(|e| e.expires_at > now)
            .cloned()
            .collect())
    }
}
