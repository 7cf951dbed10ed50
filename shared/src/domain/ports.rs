//! Ports: the small, role-named traits services depend on. Each function's handler names only the
//! ports its IAM policy allows (validate gets [`LicenseReader`], never a writer).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::StoreError;
use super::ids::{CustomerId, Hostname, InstallationId, LicenseId};
use super::license::{AuditEntry, Customer, Installation, License, LicenseStatus};
use super::operator::{Operator, OperatorCredential, OperatorId, OperatorToken, TokenHash};
use crate::token::SignError;

/// Signs raw bytes with ECDSA P-256 / SHA-256 (KMS `Sign`, `MessageType=RAW`).
#[async_trait]
pub trait TokenSigner: Send + Sync {
    /// Identifies the signing key; goes into the JWT header as `kid`.
    fn kid(&self) -> &str;
    /// Returns the DER-encoded ECDSA signature of `message` (at most 4096 bytes).
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// The current time; injected so expiry and heartbeat logic is testable.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// New identifiers (and operator tokens); injected so tests can predict them.
pub trait IdSource: Send + Sync {
    /// A fresh customer id.
    fn customer_id(&self) -> CustomerId;
    /// Eight characters of A-Z0-9 for a new license id.
    fn license_suffix(&self) -> String;
    /// A fresh operator id.
    fn operator_id(&self) -> OperatorId;
    /// A fresh operator token: a secret, so from a cryptographically secure generator.
    fn operator_token(&self) -> OperatorToken;
    /// 32 bytes for a console session's secret or its anti-forgery token (secrets too).
    fn secret_bytes(&self) -> [u8; 32];
}

/// Random ids from the thread RNG (a CSPRNG seeded from the OS: fit for tokens too).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn customer_id(&self) -> CustomerId {
        CustomerId::from_uuid(uuid::Uuid::new_v4())
    }
    fn license_suffix(&self) -> String {
        LicenseId::random_suffix(&mut rand::rng())
    }
    fn operator_id(&self) -> OperatorId {
        // Time-ordered, so the operator list (in id order) is in creation order.
        OperatorId::from_uuid(uuid::Uuid::now_v7())
    }
    fn operator_token(&self) -> OperatorToken {
        OperatorToken::from_random_bytes(self.secret_bytes())
    }
    fn secret_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        bytes
    }
}

/// Console sessions (see [`super::session`]): created at sign-in, read on every console request,
/// deleted at sign-out; gone by themselves after their end (TTL).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session; [`StoreError::AlreadyExists`] if its key is taken.
    async fn create_session(
        &self,
        session: &super::session::ConsoleSession,
    ) -> Result<(), StoreError>;

    /// The session stored under `key`, if any and still live at `now` (one that has ended but
    /// that the TTL process has not deleted yet reads as none).
    async fn session(
        &self,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<super::session::ConsoleSession>, StoreError>;

    /// Deletes the session (nothing if there is none).
    async fn delete_session(&self, key: &TokenHash) -> Result<(), StoreError>;
}

/// What one validation needs, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The license, if on record.
    pub license: Option<License>,
    /// The installation, if registered.
    pub installation: Option<Installation>,
    /// The asked-about counter's total this period, when a counter was asked for (0 if unused).
    pub used: Option<u64>,
}

/// Reads license state. Reads are strongly consistent: a revocation is seen by the very next read.
#[async_trait]
pub trait LicenseReader: Send + Sync {
    /// The license, the installation and (when `counter` is given) that usage counter's total — in
    /// one round trip.
    async fn snapshot(
        &self,
        license: &LicenseId,
        installation: &InstallationId,
        counter: Option<(&crate::domain::Feature, crate::domain::Period)>,
    ) -> Result<Snapshot, StoreError>;

    /// The license and, if registered, the installation — in one round trip.
    async fn license_and_installation(
        &self,
        license: &LicenseId,
        installation: &InstallationId,
    ) -> Result<(Option<License>, Option<Installation>), StoreError> {
        let s = self.snapshot(license, installation, None).await?;
        Ok((s.license, s.installation))
    }

    /// The license alone.
    async fn license(&self, id: &LicenseId) -> Result<Option<License>, StoreError>;
}

/// Writes license state; every change is written together with its audit entry, atomically.
#[async_trait]
pub trait LicenseWriter: Send + Sync {
    /// Creates the license; [`StoreError::AlreadyExists`] if the id is taken.
    async fn create_license(&self, license: &License, audit: &AuditEntry)
    -> Result<(), StoreError>;

    /// Sets `status` to `to` only if it is still `expected` (optimistic concurrency). Returns
    /// `false`, writing nothing, when the license is missing or its status moved on.
    async fn set_status(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Sets a new expiry (and status `to`) only if the status is still `expected`, with the audit
    /// entry, atomically. `false` (nothing written) when the license is missing or moved on.
    async fn renew(
        &self,
        id: &LicenseId,
        expected: LicenseStatus,
        to: LicenseStatus,
        expires_at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

/// Rewrites a license's terms: the operator's plan, limit, feature, domain, contract and owner
/// changes (not its status, expiry or seats — those have their own writers).
#[async_trait]
pub trait LicenseAmender: Send + Sync {
    /// Stores `after`'s terms — owner (and so its customer index), plan, features, limits,
    /// domain restrictions, contract, `keys_valid_from`, `revision`, `updated_at` — only if the
    /// stored revision is still `after.revision - 1` and the status still `after.status`, together
    /// with the audit entry and, when given, the revenue change: all or nothing. `false`, writing
    /// nothing, when the license is missing or moved on (the caller re-reads). Seats and notices
    /// on the item are left as they are.
    async fn amend(
        &self,
        after: &License,
        audit: &AuditEntry,
        revenue: Option<&super::revenue::RevenueChange>,
    ) -> Result<bool, StoreError>;
}

/// Appends audit entries for changes that are not license status changes (those are written in
/// the same transaction as the change, by [`LicenseWriter`]).
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends `entry` to the license's audit trail.
    async fn append(&self, license: &LicenseId, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Appends `entry` unless an entry with the same `once` key was appended before `until`
    /// passed for it: the key and the entry are written together or not at all. `true` when
    /// appended. Bounds what a client can make us write (a signal once per installation per
    /// day, not once per heartbeat).
    async fn append_once(
        &self,
        license: &LicenseId,
        once: &str,
        until: OffsetDateTime,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Up to `limit` entries of the license's trail, newest first, older than the cursor
    /// `before` (from an earlier page); the cursor is opaque to callers.
    async fn audit_page(
        &self,
        license: &LicenseId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError>;
}

/// What an installation reports on a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReport {
    /// Its license.
    pub license_id: LicenseId,
    /// Itself.
    pub installation_id: InstallationId,
    /// Its product version.
    pub version: String,
    /// The domain it serves, if it said.
    pub domain: Option<Hostname>,
    /// Gauge readings, if it reported any (absent ones keep their previous value).
    pub gauges: crate::domain::Gauges,
    /// Server time of the heartbeat.
    pub at: OffsetDateTime,
}

/// Outcome of trying to take a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatClaim {
    /// The installation holds a seat now (new, revived, or it already held one).
    Seated(Box<Installation>),
    /// Every seat is taken; nothing was written.
    SeatsFull,
}

/// Tracks installations and the seats they hold.
#[async_trait]
pub trait InstallationRegistry: Send + Sync {
    /// Records a heartbeat of an installation that already holds a seat; `None` (nothing written)
    /// if it is unknown or inactive.
    async fn touch(&self, report: &HeartbeatReport) -> Result<Option<Installation>, StoreError>;

    /// Registers (or revives) the installation, taking a seat atomically: the license's seat count
    /// never passes `seat_limit`, whatever the concurrency.
    async fn claim_seat(
        &self,
        report: &HeartbeatReport,
        seat_limit: u64,
    ) -> Result<SeatClaim, StoreError>;

    /// Every installation of the license, active and inactive (strongly consistent).
    async fn installations(&self, license: &LicenseId) -> Result<Vec<Installation>, StoreError>;

    /// Stores the lease just signed for a seated installation, replacing the previous one. A
    /// lease that could not be stored is still valid; the next beat merely signs another.
    async fn record_lease(
        &self,
        license: &LicenseId,
        installation: &InstallationId,
        lease: &crate::domain::Lease,
    ) -> Result<(), StoreError>;
}

/// A license with everything support needs to see about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseDetail {
    /// The license.
    pub license: License,
    /// Its installations, active and inactive.
    pub installations: Vec<Installation>,
    /// The latest [`AUDIT_PAGE`] entries of its audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
    /// Where the older entries continue ([`AuditLog::audit_page`]), if there are any.
    pub audit_next: Option<String>,
}

/// Audit entries a lookup shows per license; older ones are paged.
pub const AUDIT_PAGE: usize = 50;

/// One page of an audit trail, newest first, and where the next (older) page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// Entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Cursor of the next page (`None`: no older entries).
    pub next: Option<String>,
}

/// Customers and what they own.
#[async_trait]
pub trait CustomerDirectory: Send + Sync {
    /// Creates the customer; [`StoreError::AlreadyExists`] if the id is taken.
    async fn create_customer(
        &self,
        customer: &Customer,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// The customer, if any.
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError>;

    /// Every license of the customer with its installations and audit trail, by license id.
    async fn licenses_of(&self, id: &CustomerId) -> Result<Vec<LicenseDetail>, StoreError>;
}

/// Why an event could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue refused or failed the send; the event was not queued.
    #[error("usage queue unavailable: {0}")]
    Unavailable(String),
}

/// Queues accepted usage events for counting (at least once: the counter dedupes).
#[async_trait]
pub trait UsageQueue: Send + Sync {
    /// Queues `events`; one outcome per event, in order. An `Ok` event is durably queued.
    async fn enqueue(&self, events: &[crate::domain::UsageEvent]) -> Vec<Result<(), QueueError>>;
}

/// What happened to one event given to [`UsageLedger::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Counted now.
    Counted,
    /// Already counted earlier (same license and event id): not counted again.
    Duplicate,
}

/// Exactly-once usage counters: per (license, feature, month) totals with a daily series.
#[async_trait]
pub trait UsageLedger: Send + Sync {
    /// Counts events that share one counter (same license, feature and period), each at most once
    /// per `(license, event id)`: the dedupe markers and the counter change commit atomically, so
    /// a crash or a redelivery can neither lose nor double-count. One outcome per event, in order.
    async fn record(
        &self,
        events: &[crate::domain::UsageEvent],
        now: OffsetDateTime,
    ) -> Result<Vec<Recorded>, StoreError>;

    /// Current totals of `features` in `period` (0 for features never used).
    async fn usage(
        &self,
        license: &LicenseId,
        features: &[crate::domain::Feature],
        period: crate::domain::Period,
    ) -> Result<Vec<(u64, Vec<u64>)>, StoreError>;

    /// Atomically adds `quantity` if the total stays within `limit`; returns the new total, or
    /// `None` (nothing written) when it would pass the limit.
    async fn reserve(
        &self,
        license: &LicenseId,
        feature: &crate::domain::Feature,
        at: OffsetDateTime,
        quantity: u64,
        limit: u64,
    ) -> Result<Option<u64>, StoreError>;
}

/// A license as the lifecycle job sees it: the record plus the notices already claimed or sent
/// for it (kept on the license item, so a candidate whose notice is sent costs no write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The license.
    pub license: License,
    /// Notice ledger entries by idempotency id.
    pub notices: std::collections::BTreeMap<String, crate::domain::lifecycle::NoticeState>,
}

/// One page of a sweep, and where the next page starts (`None`: the sweep reached the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepPage<T> {
    /// The items, in index order.
    pub items: Vec<T>,
    /// Opaque position after the last item, if more may follow.
    pub next: Option<String>,
}

/// The indexes the lifecycle job sweeps (never a table scan), and where each sweep stopped.
#[async_trait]
pub trait LifecycleIndex: Send + Sync {
    /// Licenses in `status` whose expiry is in `[from, to]`, by expiry then id, starting after
    /// `after`; at most `limit`.
    async fn licenses_by_expiry(
        &self,
        status: LicenseStatus,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SweepPage<Candidate>, StoreError>;

    /// Active installations whose last heartbeat is at or before `seen_before`, oldest first.
    async fn silent_installations(
        &self,
        seen_before: OffsetDateTime,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SweepPage<Installation>, StoreError>;

    /// This period's totals of `feature` for each license (absent counters are 0).
    async fn usage_totals(
        &self,
        licenses: &[LicenseId],
        feature: &crate::domain::Feature,
        period: crate::domain::Period,
    ) -> Result<std::collections::HashMap<LicenseId, u64>, StoreError>;

    /// Where the sweep named `job` stopped last run.
    async fn cursor(&self, job: &str) -> Result<Option<String>, StoreError>;

    /// Records where the sweep stopped (`None`: start over next run).
    async fn save_cursor(&self, job: &str, cursor: Option<&str>) -> Result<(), StoreError>;

    /// Frees the seat of an installation that stopped heartbeating: `inactive`, seat count −1 and
    /// the audit entry, atomically — only if it is still active and has not beaten since
    /// `installation.last_seen_at`. `false` (nothing written) otherwise.
    async fn deactivate_installation(
        &self,
        installation: &Installation,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Expires a license the job decided on from index data: `active` → `expired` with the audit
    /// entry, atomically — only if it is still active **and its expiry is still `expires_at`** (a
    /// renewal that landed since moved it). `false` (nothing written) otherwise.
    async fn expire_license(
        &self,
        id: &LicenseId,
        expires_at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Sets the license's seat count to `counted` (the active installation items just read) if
    /// it still holds `recorded`, with the audit entry, atomically. `false` otherwise (a beat
    /// or a release moved it meanwhile: the next run looks again).
    async fn repair_seat_count(
        &self,
        id: &LicenseId,
        recorded: u64,
        counted: u64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

/// Whether this run may send a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeClaim {
    /// Yes: no one sent it and no live claim is held.
    Claimed,
    /// No: it was sent, or another run holds a live claim on it.
    Taken,
}

/// Records which notices were sent, so each goes out once however often the job runs. A claim
/// (conditional write) comes before publishing and a "sent" mark after it: a run that crashes in
/// between leaves a claim that expires, and the next run re-sends with the same idempotency id.
#[async_trait]
pub trait NoticeLedger: Send + Sync {
    /// Claims notice `id` of `license` until `until`, unless sent or claimed by a live claim. The
    /// same write forgets `stale` notices (past periods, former expiry dates), so the ledger on
    /// the license item stays small.
    async fn claim_notice(
        &self,
        license: &LicenseId,
        id: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        stale: &[String],
    ) -> Result<NoticeClaim, StoreError>;

    /// Marks notice `id` sent.
    async fn mark_notice_sent(
        &self,
        license: &LicenseId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Why an event could not be published.
#[derive(Debug, thiserror::Error)]
#[error("event not published")]
pub struct PublishError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Publishes notices as structured events (SNS in production): the seam where e-mail and
/// webhooks subscribe.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one notice.
    async fn publish(&self, notice: &crate::domain::lifecycle::Notice) -> Result<(), PublishError>;
}

/// Fixed-window request counting (per license per minute for workflow executions).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request against `key` in the window starting at `window_start`; `true` while
    /// the window's count stays within `limit`. A refused request is not counted.
    async fn admit(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        window: time::Duration,
        limit: u64,
    ) -> Result<bool, StoreError>;
}

/// Where executions are recorded for their license to read back.
#[async_trait]
pub trait ExecutionLog: Send + Sync {
    /// Records an execution (kept for a limited time).
    async fn record_execution(
        &self,
        record: &crate::domain::workflow::ExecutionRecord,
    ) -> Result<(), StoreError>;

    /// One execution, if recorded and not yet expired.
    async fn execution(
        &self,
        id: &crate::domain::workflow::ExecutionId,
    ) -> Result<Option<crate::domain::workflow::ExecutionRecord>, StoreError>;
}

/// A root key's endorsement of a signing key, as stored for the JWKS to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEndorsement {
    /// The endorsed key's id (as token headers name it).
    pub kid: String,
    /// The kind of token the key may sign.
    pub use_: nectar_protocol::token::TokenKind,
    /// The endorsement (compact JWS by the root key).
    pub token: String,
    /// Its end.
    pub expires_at: OffsetDateTime,
}

/// The endorsements of the signing keys: written by the operator's admin command (the only
/// holder of the root key), read by the JWKS function to publish them.
#[async_trait]
pub trait EndorsementRegistry: Send + Sync {
    /// Stores the endorsement of `kid` for its kind, replacing an earlier one.
    async fn put_endorsement(&self, endorsement: &StoredEndorsement) -> Result<(), StoreError>;
    /// Every endorsement still running at `now`.
    async fn endorsements(&self, now: OffsetDateTime)
    -> Result<Vec<StoredEndorsement>, StoreError>;
}

/// Outcome of creating an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorCreated {
    /// Stored, with its token and audit entry.
    Created,
    /// An active operator already has this name (ignoring case); nothing was written.
    NameTaken,
}

/// Operators and their tokens. A token is found by its hash in one strongly consistent read, so
/// a rotation or a disable is seen by the very next request; every change is written with its
/// audit entry (in the operator's own trail), atomically.
#[async_trait]
pub trait OperatorDirectory: Send + Sync {
    /// Stores a new active operator: its record, its name (unique among active operators), its
    /// token under `operator.token_hash`, and the audit entry. [`StoreError::AlreadyExists`] if
    /// the id or the token hash is taken (the caller draws new ones).
    async fn create_operator(
        &self,
        operator: &Operator,
        audit: &AuditEntry,
    ) -> Result<OperatorCreated, StoreError>;

    /// The credential stored under `hash`: only an active operator's current token has one.
    async fn credential(&self, hash: &TokenHash) -> Result<Option<OperatorCredential>, StoreError>;

    /// The operator, active or disabled.
    async fn operator(&self, id: &OperatorId) -> Result<Option<Operator>, StoreError>;

    /// Up to `limit` operators in id order (creation order for ids we make), after `after`;
    /// `next` is the cursor of the following page, `None` on the last one.
    async fn operators(
        &self,
        after: Option<&OperatorId>,
        limit: usize,
    ) -> Result<SweepPage<Operator>, StoreError>;

    /// Replaces the token of `operator` (as read: active, with its current token) by `new`,
    /// with the audit entry (made at `audit.at`), atomically: from then on only `new`
    /// authenticates. `false` (nothing written) when the operator is missing, disabled, or its
    /// token is no longer the one read.
    async fn rotate_operator_token(
        &self,
        operator: &Operator,
        new: &TokenHash,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Disables `operator` (as read: active, with its current token), with the audit entry,
    /// atomically: its token stops authenticating and its name is free again. `false` (nothing
    /// written) when it is missing, already disabled, or its token moved on.
    async fn disable_operator(
        &self,
        operator: &Operator,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// A page of the operator's audit trail, newest first (cursor as [`AuditLog::audit_page`]).
    async fn operator_audit(
        &self,
        id: &OperatorId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError>;
}

/// The fleet listings operators search: customers, licenses and installations by their filters,
/// and the stored "needs attention" flags — each a walk of index partitions, never a scan (see
/// `crate::domain::fleet` for the paging contract every store keeps).
#[async_trait]
pub trait FleetIndex: Send + Sync {
    /// A page of customers matching `filter`.
    async fn list_customers(
        &self,
        filter: &crate::domain::fleet::CustomerFilter,
        from: Option<&crate::domain::fleet::PageCursor>,
        limit: usize,
    ) -> Result<crate::domain::fleet::Page<Customer>, StoreError>;

    /// A page of licenses matching `filter`.
    async fn list_licenses(
        &self,
        filter: &crate::domain::fleet::LicenseFilter,
        from: Option<&crate::domain::fleet::PageCursor>,
        limit: usize,
    ) -> Result<crate::domain::fleet::Page<License>, StoreError>;

    /// A page of installations matching `filter`.
    async fn list_installations(
        &self,
        filter: &crate::domain::fleet::InstallationFilter,
        from: Option<&crate::domain::fleet::PageCursor>,
        limit: usize,
    ) -> Result<crate::domain::fleet::Page<Installation>, StoreError>;

    /// A page of the flags of `kind` still listed at `now` (raised within their lifetime), by
    /// license then installation id.
    async fn list_flags(
        &self,
        kind: crate::domain::fleet::AttentionKind,
        now: OffsetDateTime,
        from: Option<&crate::domain::fleet::PageCursor>,
        limit: usize,
    ) -> Result<crate::domain::fleet::Page<crate::domain::fleet::Flag>, StoreError>;
}

/// Raises "needs attention" flags: the heartbeat (seat limit, clock tamper) and the lifecycle job
/// (usage) call it. One item per flag, overwritten when raised again, deleted by TTL after its
/// lifetime: the list stays as small as the problems are.
#[async_trait]
pub trait AttentionFlags: Send + Sync {
    /// Raises (or refreshes) the flag.
    async fn raise(&self, flag: &crate::domain::fleet::Flag) -> Result<(), StoreError>;
}

/// The dashboard's daily snapshots: one item per UTC day, written by the metrics job (writing a
/// day again replaces it: idempotent), read by the metrics routes in a bounded number of reads.
#[async_trait]
pub trait MetricsStore: Send + Sync {
    /// Stores the snapshot of its day, replacing an earlier one of the same day.
    async fn put_snapshot(
        &self,
        snapshot: &nectar_protocol::metrics::MetricsSnapshot,
    ) -> Result<(), StoreError>;

    /// The latest day's snapshot (one read).
    async fn latest_snapshot(
        &self,
    ) -> Result<Option<nectar_protocol::metrics::MetricsSnapshot>, StoreError>;

    /// The snapshots of the days `from..=to` (`YYYY-MM-DD`), oldest first.
    async fn snapshots(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Vec<nectar_protocol::metrics::MetricsSnapshot>, StoreError>;

    /// Every revenue change (see [`LicenseAmender::amend`]) made in `period`, oldest first.
    async fn revenue_changes(
        &self,
        period: super::Period,
    ) -> Result<Vec<super::revenue::RevenueChange>, StoreError>;
}
