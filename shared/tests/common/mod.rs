//! Support shared by the service test files (each says `mod common;`): the [`Layer`] that both
//! stacks implement, so that one scenario runs on the in-memory adapters and on the emulator, and
//! the arrange helpers every file would otherwise write again.

#![allow(
    dead_code,
    reason = "each test file is a crate of its own and uses only some of these"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use nectar_workflow::{
    Env, HttpCaller, HttpError, HttpRequest, HttpResponse, StatisticalAnalytics,
};
use serde_json::Value;
use shared::domain::ports::{
    AuditLog, CustomerDirectory, EventPublisher, ExecutionLog, HeartbeatReport,
    InstallationRegistry, LicenseReader, LicenseWriter, LifecycleIndex, NoticeLedger,
    OperatorDirectory, RateLimiter, SeatClaim, TokenSigner, UsageLedger,
};
use shared::domain::workflow::{ExecutionId, WorkflowPolicy};
use shared::domain::{
    EventId, Feature, InstallationId, LicenseId, Period, Plan, StoreError, UsageEvent,
};
use shared::service::admin::{IssueCommand, Term};
use shared::service::heartbeat::{Beat, HeartbeatCommand, heartbeat};
use shared::service::lifecycle::{Job, JobReport, LifecycleStore, Settings, run};
use shared::service::usage::Message;
use shared::service::validate::ValidateCommand;
use shared::service::workflows::{ExecuteCommand, Refusal, execute_workflow, workflows_feature};
use shared::testing::{Issued, MemoryStack, Stack};
use shared::token::{KeyRing, LicenseKey};
use time::{Duration, OffsetDateTime};

// ---- the two layers ----

/// Every store port: what both layers' stores implement.
pub trait Store:
    LicenseReader
    + LicenseWriter
    + AuditLog
    + InstallationRegistry
    + CustomerDirectory
    + UsageLedger
    + LifecycleIndex
    + NoticeLedger
    + RateLimiter
    + ExecutionLog
    + OperatorDirectory
    + shared::domain::ports::FleetIndex
    + shared::domain::ports::AttentionFlags
    + shared::domain::ports::MetricsStore
    + shared::domain::ports::LicenseAmender
    + shared::domain::ports::SessionStore
{
}

impl<T> Store for T where
    T: LicenseReader
        + LicenseWriter
        + AuditLog
        + InstallationRegistry
        + CustomerDirectory
        + UsageLedger
        + LifecycleIndex
        + NoticeLedger
        + RateLimiter
        + ExecutionLog
        + OperatorDirectory
        + shared::domain::ports::FleetIndex
        + shared::domain::ports::AttentionFlags
        + shared::domain::ports::MetricsStore
        + shared::domain::ports::LicenseAmender
        + shared::domain::ports::SessionStore
{
}

/// A fresh stack of one layer: the in-memory adapters ([`MemoryStack`]) or a fresh table and key
/// on the emulator ([`Stack`]). A scenario written against it runs on both; what it measures of
/// the backend ([`Layer::calls`]) is handed back for the emulator test to assert.
pub trait Layer {
    /// The store behind every port.
    type Store: Store + LifecycleStore;
    /// The signing key's signer.
    type Signer: TokenSigner;
    /// The backend calls a step made: AWS calls per `Service.Operation` on the emulator; nothing
    /// in memory.
    type Calls: std::fmt::Debug;
    /// The store.
    fn store(&self) -> &Self::Store;
    /// A signer for the stack's license key.
    async fn signer(&self) -> Self::Signer;
    /// A signer for the stack's lease key (what heartbeats sign with).
    async fn lease_signer(&self) -> Self::Signer;
    /// The ring trusting the stack's key.
    async fn key_ring(&self) -> KeyRing;
    /// Creates a customer and issues them a 30-day `plan` license at `now`, adjusted by `tweak`.
    async fn issue(
        &self,
        plan: Plan,
        now: OffsetDateTime,
        tweak: impl FnOnce(&mut IssueCommand),
    ) -> Issued;
    /// Starts counting backend calls afresh.
    fn reset_calls(&self);
    /// The backend calls since the last reset.
    fn calls(&self) -> Self::Calls;
}

impl Layer for MemoryStack {
    type Store = shared::adapters::memory::MemoryStore;
    type Signer = shared::adapters::local::LocalSigner;
    type Calls = ();
    fn store(&self) -> &Self::Store {
        &self.store
    }
    async fn signer(&self) -> Self::Signer {
        MemoryStack::signer(self).await
    }
    async fn lease_signer(&self) -> Self::Signer {
        MemoryStack::lease_signer(self).await
    }
    async fn key_ring(&self) -> KeyRing {
        MemoryStack::key_ring(self).await
    }
    async fn issue(
        &self,
        plan: Plan,
        now: OffsetDateTime,
        tweak: impl FnOnce(&mut IssueCommand),
    ) -> Issued {
        MemoryStack::issue(self, plan, now, tweak).await
    }
    fn reset_calls(&self) {}
    fn calls(&self) {}
}

impl Layer for Stack {
    type Store = shared::adapters::dynamo::DynamoStore;
    type Signer = shared::adapters::kms::KmsSigner;
    type Calls = BTreeMap<String, usize>;
    fn store(&self) -> &Self::Store {
        &self.store
    }
    async fn signer(&self) -> Self::Signer {
        Stack::signer(self).await
    }
    async fn lease_signer(&self) -> Self::Signer {
        Stack::lease_signer(self).await
    }
    async fn key_ring(&self) -> KeyRing {
        Stack::key_ring(self).await
    }
    async fn issue(
        &self,
        plan: Plan,
        now: OffsetDateTime,
        tweak: impl FnOnce(&mut IssueCommand),
    ) -> Issued {
        Stack::issue(self, plan, now, tweak).await
    }
    fn reset_calls(&self) {
        self.calls.reset();
    }
    fn calls(&self) -> Self::Calls {
        self.calls.snapshot()
    }
}

/// AWS calls by `Service.Operation`, as [`Layer::calls`] gives them on the emulator.
pub fn aws_calls(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

// ---- licenses, validation and heartbeats ----

pub fn installation(id: &str) -> InstallationId {
    InstallationId::parse(id).expect("valid installation id")
}

pub fn feature(name: &str) -> Feature {
    Feature::parse(name).expect("valid feature")
}

/// A license issued at `now` that expires at `expires_at`.
pub async fn issue_expiring<L: Layer>(
    stack: &L,
    plan: Plan,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Issued {
    stack
        .issue(plan, now, |c| c.term = Term::Until(expires_at))
        .await
}

/// Validation of `key` on installation `inst`, with no domain and no feature.
pub fn validate_cmd(key: &LicenseKey, inst: &str) -> ValidateCommand {
    ValidateCommand {
        key: key.clone(),
        installation_id: installation(inst),
        domain: None,
        feature: None,
    }
}

/// A heartbeat of installation `inst` (version 1.4.2, no readings, no signals).
pub fn beat_cmd(key: &LicenseKey, inst: &str) -> HeartbeatCommand {
    HeartbeatCommand {
        key: key.clone(),
        installation_id: installation(inst),
        version: "1.4.2".into(),
        domain: None,
        gauges: Default::default(),
        signals: Vec::new(),
    }
}

/// One heartbeat of `inst` at `at`, with the usual command.
pub async fn beat_once<S>(
    ring: &KeyRing,
    store: &S,
    signer: &dyn TokenSigner,
    key: &LicenseKey,
    inst: &str,
    at: OffsetDateTime,
) -> Beat
where
    S: LicenseReader
        + InstallationRegistry
        + AuditLog
        + shared::domain::ports::AttentionFlags
        + shared::domain::ports::RateLimiter,
{
    heartbeat(
        ring,
        store,
        signer,
        &beat_cmd(key, inst),
        Duration::hours(1),
        at,
    )
    .await
    .expect("heartbeat")
}

/// A heartbeat of installation `inst` as the store sees it (version 1.0.0, no readings).
pub fn report(license: &LicenseId, inst: &str, at: OffsetDateTime) -> HeartbeatReport {
    HeartbeatReport {
        license_id: license.clone(),
        installation_id: installation(inst),
        version: "1.0.0".into(),
        domain: None,
        gauges: Default::default(),
        at,
    }
}

/// The seats `license` holds taken.
pub async fn seats<S: LicenseReader>(store: &S, license: &LicenseId) -> u64 {
    store
        .license(license)
        .await
        .expect("read")
        .expect("license")
        .active_installations
}

/// How many of concurrent seat claims were seated, and how many found the seats full.
pub fn seated_and_full(claims: &[Result<SeatClaim, StoreError>]) -> (usize, usize) {
    let seated = claims
        .iter()
        .filter(|c| matches!(c, Ok(SeatClaim::Seated(_))))
        .count();
    let full = claims
        .iter()
        .filter(|c| matches!(c, Ok(SeatClaim::SeatsFull)))
        .count();
    (seated, full)
}

// ---- usage ----

/// A usage event of the `workflows` feature.
pub fn event(license: &LicenseId, id: &str, quantity: u64, at: OffsetDateTime) -> UsageEvent {
    UsageEvent {
        license_id: license.clone(),
        event_id: EventId::parse(id).expect("valid event id"),
        feature: feature("workflows"),
        quantity,
        occurred_at: at,
        metadata: None,
    }
}

/// The queue message `msg-{n}` carrying `e`.
pub fn message(n: usize, e: &UsageEvent) -> Message {
    Message {
        id: format!("msg-{n}"),
        body: serde_json::to_string(e).expect("json"),
    }
}

/// The `workflows` total and daily series of `license` in `period`.
pub async fn used<S: UsageLedger>(
    store: &S,
    license: &LicenseId,
    period: Period,
) -> (u64, Vec<u64>) {
    store
        .usage(license, &[feature("workflows")], period)
        .await
        .expect("usage")
        .remove(0)
}

// ---- lifecycle ----

/// The notices' types, with their threshold where they have one (`license.expiry_warning@7`).
pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let threshold = e["threshold"]
                .as_u64()
                .map(|t| format!("@{t}"))
                .unwrap_or_default();
            format!("{}{threshold}", e["type"].as_str().unwrap_or("?"))
        })
        .collect()
}

/// Runs `jobs` at `at`; every job must run.
pub async fn run_ok<S, P>(
    store: &S,
    publisher: &P,
    jobs: &[Job],
    at: OffsetDateTime,
    settings: Settings,
) -> Vec<JobReport>
where
    S: LifecycleStore,
    P: EventPublisher,
{
    run(store, publisher, jobs, at, settings)
        .await
        .into_iter()
        .map(|r| r.expect("job ran"))
        .collect()
}

// ---- workflows ----

/// Counts outbound calls; answers 200 `{"ok": true}`.
#[derive(Default)]
pub struct CountingHttp(AtomicUsize);

impl CountingHttp {
    /// Calls made so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl HttpCaller for CountingHttp {
    async fn call(&self, _req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(HttpResponse {
            status: 200,
            headers: Default::default(),
            body: br#"{"ok": true}"#.to_vec(),
        })
    }
}

/// An execution of `workflow` on `data` with a fresh execution id.
pub fn execute_cmd(issued: &Issued, workflow: Value, data: Value) -> ExecuteCommand {
    ExecuteCommand {
        key: issued.key.clone(),
        workflow_id: "wf-1".into(),
        workflow,
        data,
        execution_id: ExecutionId::from_uuid(uuid::Uuid::now_v7()),
    }
}

/// A stack with its ring and a counting HTTP caller, running workflows at `now`.
pub struct Harness<L> {
    pub stack: L,
    pub ring: KeyRing,
    pub http: CountingHttp,
    pub now: OffsetDateTime,
}

impl<L: Layer> Harness<L> {
    pub async fn new(stack: L, now: OffsetDateTime) -> Self {
        let ring = stack.key_ring().await;
        Self {
            stack,
            ring,
            http: CountingHttp::default(),
            now,
        }
    }

    /// A one-year `plan` license with `limit` workflows a month (the plan's when `None`).
    pub async fn issue(&self, plan: Plan, limit: Option<u64>) -> Issued {
        self.stack
            .issue(plan, self.now, |c| {
                c.term = Term::Days(365);
                c.limits.workflows_per_month = limit;
            })
            .await
    }

    pub async fn run_with(
        &self,
        policy: impl Fn(Plan) -> WorkflowPolicy,
        c: ExecuteCommand,
        at: OffsetDateTime,
    ) -> Result<Value, Refusal> {
        let env = Env {
            http: &self.http,
            analytics: &StatisticalAnalytics,
        };
        execute_workflow(&self.ring, self.stack.store(), &env, policy, c, at)
            .await
            .map(|e| e.body)
    }

    /// Runs under the plan's own policy at `now`.
    pub async fn run(&self, c: ExecuteCommand) -> Result<Value, Refusal> {
        self.run_with(Plan::workflow_policy, c, self.now).await
    }

    /// Workflows counted this month.
    pub async fn used(&self, issued: &Issued) -> u64 {
        self.stack
            .store()
            .usage(
                &issued.license.id,
                &[workflows_feature()],
                Period::containing(self.now),
            )
            .await
            .expect("usage")[0]
            .0
    }
}
