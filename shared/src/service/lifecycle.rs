//! The lifecycle job, run on a schedule: expiry warnings (30/7/1 days), expiry of licenses past
//! their date and plan grace, usage warnings (80/100 % of a period's limit) and culling of
//! installations that stopped heartbeating.
//!
//! Contracts:
//! - Every notice is claimed (conditional write), then published, then marked sent. Two runs at
//!   once: one wins the claim. A run that dies after publishing: the claim expires and the next
//!   run re-sends the *same* idempotency id — a duplicate subscribers can drop, never a loss.
//! - Usage warnings cover `workflows` (counters) and the `users` / `storage_gb` gauges (sums of the
//!   active installations' latest readings), each once per threshold per month.
//! - Candidates come from index range queries (status + expiry; last heartbeat), never a scan.
//!   Each job examines at most `budget` items per run and saves where it stopped; the next run
//!   resumes there, and a sweep that reaches the end starts over.
//! - One bad candidate is logged and counted; it never stops the others.

use std::collections::HashMap;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::domain::license::whole_seconds;
use crate::domain::lifecycle::{
    EXPIRY_WARNING_DAYS, Notice, NoticeKind, NoticeState, expiry_warning_due, usage_warning_due,
};
use crate::domain::ports::{
    AttentionFlags, Candidate, CustomerDirectory, EventPublisher, InstallationRegistry,
    LicenseReader, LicenseWriter, LifecycleIndex, NoticeClaim, NoticeLedger,
};
use crate::domain::{
    Actor, AuditEntry, CustomerId, DomainError, Feature, Installation, License, LicenseId,
    LicenseStatus, Period, Plan, StoreError,
};

/// One job of the lifecycle function; the schedule's input names which to run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Job {
    /// Warn active licenses 30, 7 and 1 days before expiry.
    ExpiryWarnings,
    /// Mark licenses past expiry (plus plan grace) `expired` and say so.
    Expiry,
    /// Warn at 80 % and 100 % of a period's workflow limit.
    UsageWarnings,
    /// Free seats of installations silent for longer than their plan's heartbeat window.
    Installations,
    /// Recount each active license's seats from its installation items and repair a drift (a
    /// seat leaked by a crash between a claim's writes), once seen on two runs.
    Seats,
}

impl Job {
    /// Every job, in the order a run performs them.
    pub const ALL: &[Job] = <Job as strum::VariantArray>::VARIANTS;

    /// The name used in the schedule input and for the sweep cursor.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Parses [`Job::name`].
    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }
}

/// Prefix of the seat-drift observations kept in a license's notice ledger.
const SEAT_DRIFT: &str = "seat-drift:";

/// How long a seat-count drift must persist before it is repaired (see `recount`).
pub const SEAT_DRIFT_CONFIRM: Duration = Duration::minutes(10);

/// How much one run may do.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Items per index query.
    pub page_size: usize,
    /// Items examined per job per run; the rest wait for the next run.
    pub budget: usize,
    /// How long a claim on a notice holds before another run may take it over.
    pub claim_for: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            page_size: 100,
            budget: 1_000,
            claim_for: Duration::minutes(5),
        }
    }
}

/// What one job did in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    /// The job (`expiry_warnings`, …).
    pub job: &'static str,
    /// Candidates looked at.
    pub examined: usize,
    /// Notices published.
    pub published: usize,
    /// Licenses expired or installations deactivated.
    pub changed: usize,
    /// Candidates that failed (logged; retried on a later run).
    pub failures: usize,
    /// Whether the sweep reached the end of its range (else it resumes next run).
    pub swept: bool,
}

/// The ports a run uses.
pub trait LifecycleStore:
    LifecycleIndex
    + AttentionFlags
    + NoticeLedger
    + LicenseWriter
    + LicenseReader
    + CustomerDirectory
    + InstallationRegistry
{
}

impl<T> LifecycleStore for T where
    T: LifecycleIndex
        + AttentionFlags
        + NoticeLedger
        + LicenseWriter
        + LicenseReader
        + CustomerDirectory
        + InstallationRegistry
        + ?Sized
{
}

/// Runs `jobs` at `now`. A job whose index query fails ends early with the error; the others
/// still run.
pub async fn run<S, P>(
    store: &S,
    publisher: &P,
    jobs: &[Job],
    now: OffsetDateTime,
    settings: Settings,
) -> Vec<Result<JobReport, DomainError>>
where
    S: LifecycleStore + ?Sized,
    P: EventPublisher + ?Sized,
{
    let mut runner = Runner {
        store,
        publisher,
        now: whole_seconds(now),
        settings,
        emails: HashMap::new(),
        windows: HashMap::new(),
    };
    let mut reports = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut report = JobReport {
            job: job.name(),
            ..JobReport::default()
        };
        let outcome = runner.run_job(*job, &mut report).await;
        if let Err(e) = &outcome {
            tracing::error!(job = job.name(), error = %e, "lifecycle job failed");
        }
        tracing::info!(
            job = job.name(),
            examined = report.examined,
            published = report.published,
            changed = report.changed,
            failures = report.failures,
            swept = report.swept,
            "lifecycle job done"
        );
        reports.push(outcome.map(|()| report));
    }
    reports
}

struct Runner<'a, S: ?Sized, P: ?Sized> {
    store: &'a S,
    publisher: &'a P,
    now: OffsetDateTime,
    settings: Settings,
    emails: HashMap<CustomerId, Option<String>>,
    /// Heartbeat window per license (`None`: no such license), read once per run.
    windows: HashMap<LicenseId, Option<Duration>>,
}

/// Whether a candidate's notice went out in this run.
enum Sent {
    Now,
    Earlier,
}

impl<S, P> Runner<'_, S, P>
where
    S: LifecycleStore + ?Sized,
    P: EventPublisher + ?Sized,
{
    async fn run_job(&mut self, job: Job, report: &mut JobReport) -> Result<(), DomainError> {
        let mut after = self.store.cursor(job.name()).await?;
        loop {
            let limit = self
                .settings
                .page_size
                .min(self.settings.budget - report.examined)
                .max(1);
            let next = match job {
                Job::Installations => {
                    let page = self
                        .store
                        .silent_installations(self.silent_since(), after.as_deref(), limit)
                        .await?;
                    for inst in page.items {
                        report.examined += 1;
                        match self.cull(&inst).await {
                            Ok(true) => report.changed += 1,
                            Ok(false) => {}
                            Err(e) => {
                                report.failures += 1;
                                tracing::error!(error = %e, license_id = %inst.license_id, installation_id = %inst.id, "cull failed");
                            }
                        }
                    }
                    page.next
                }
                _ => {
                    let (from, to) = self.expiry_range(job);
                    let page = self
                        .store
                        .licenses_by_expiry(
                            LicenseStatus::Active,
                            from,
                            to,
                            after.as_deref(),
                            limit,
                        )
                        .await?;
                    report.examined += page.items.len();
                    let totals = if job == Job::UsageWarnings {
                        let ids: Vec<LicenseId> =
                            page.items.iter().map(|c| c.license.id.clone()).collect();
                        self.store
                            .usage_totals(&ids, &workflows(), Period::containing(self.now))
                            .await?
                    } else {
                        HashMap::new()
                    };
                    for candidate in &page.items {
                        let outcome = match job {
                            Job::ExpiryWarnings => self
                                .warn_expiry(candidate)
                                .await
                                .map(|(p, c)| (usize::from(p), usize::from(c))),
                            Job::Expiry => self
                                .expire(candidate)
                                .await
                                .map(|(p, c)| (usize::from(p), usize::from(c))),
                            Job::Seats => {
                                self.recount(candidate).await.map(|c| (0, usize::from(c)))
                            }
                            _ => {
                                let used = totals.get(&candidate.license.id).copied().unwrap_or(0);
                                self.warn_usage(candidate, used).await.map(|n| (n, 0))
                            }
                        };
                        match outcome {
                            Ok((published, changed)) => {
                                report.published += published;
                                report.changed += changed;
                            }
                            Err(e) => {
                                report.failures += 1;
                                tracing::error!(error = %e, license_id = %candidate.license.id, job = job.name(), "lifecycle step failed");
                            }
                        }
                    }
                    page.next
                }
            };
            match next {
                Some(n) if report.examined < self.settings.budget => after = Some(n),
                Some(n) => {
                    self.store.save_cursor(job.name(), Some(&n)).await?;
                    return Ok(());
                }
                None => {
                    if after.is_some() || report.examined > 0 {
                        self.store.save_cursor(job.name(), None).await?;
                    }
                    report.swept = true;
                    return Ok(());
                }
            }
        }
    }

    /// The expiry range a license job sweeps.
    fn expiry_range(&self, job: Job) -> (OffsetDateTime, OffsetDateTime) {
        let longest_warning = Duration::days(EXPIRY_WARNING_DAYS[0]);
        match job {
            Job::ExpiryWarnings => (self.now, self.now + longest_warning),
            Job::Expiry => (OffsetDateTime::UNIX_EPOCH, self.now),
            _ => (OffsetDateTime::UNIX_EPOCH, far_future()),
        }
    }

    /// Installations silent since before this are candidates; each is then held to its own
    /// plan's window.
    fn silent_since(&self) -> OffsetDateTime {
        let shortest = Plan::ALL
            .iter()
            .map(|p| p.policy().heartbeat_window)
            .min()
            .unwrap_or(Duration::days(3));
        self.now - shortest
    }

    async fn warn_expiry(&mut self, c: &Candidate) -> Result<(bool, bool), DomainError> {
        let Some(days) = expiry_warning_due(c.license.expires_at, self.now) else {
            return Ok((false, false));
        };
        let sent = self
            .send(c, NoticeKind::ExpiryWarning { days }, None)
            .await?;
        Ok((matches!(sent, Some(Sent::Now)), false))
    }

    async fn expire(&mut self, c: &Candidate) -> Result<(bool, bool), DomainError> {
        let license = &c.license;
        let grace = license.plan.policy().expiry_grace;
        if self.now < license.expires_at + grace {
            return Ok((false, false));
        }
        // The candidate came from an eventually consistent index: decide on the license as it
        // is now (a renewal may have landed), and write conditioned on that expiry (below).
        match self.store.license(&license.id).await? {
            Some(l) if l.status == LicenseStatus::Active && l.expires_at == license.expires_at => {}
            _ => return Ok((false, false)),
        }
        let entry = AuditEntry {
            action: "license.expired".into(),
            actor: Actor::system("lifecycle"),
            reason: Some(format!(
                "expiry {} passed; plan grace {} h",
                rfc3339(license.expires_at),
                grace.whole_hours()
            )),
            from: Some(LicenseStatus::Active),
            to: Some(LicenseStatus::Expired),
            at: self.now,
        };
        let sent = self.send(c, NoticeKind::Expired, Some(entry)).await?;
        let now = matches!(sent, Some(Sent::Now));
        Ok((now, now))
    }

    /// Usage warnings for the period: `workflows` against `workflows_per_month` (from the
    /// counters read for the whole page), and the `users` / `storage_gb` gauges — the sums of the
    /// active installations' latest readings, read only for licenses with active installations —
    /// against their limits. Returns how many notices went out.
    async fn warn_usage(&mut self, c: &Candidate, used: u64) -> Result<usize, DomainError> {
        let license = &c.license;
        let mut readings = Vec::new();
        if license.has_feature(&workflows()) {
            readings.push((workflows(), used, license.limits.workflows_per_month));
        }
        if license.active_installations > 0 {
            for g in crate::service::usage::gauges(self.store, license).await? {
                if let Ok(name) = Feature::parse(g.gauge) {
                    readings.push((name, g.value, g.limit));
                }
            }
        }
        let mut published = 0;
        let mut over = Vec::new();
        for (feature, used, limit) in readings {
            let Some(percent) = usage_warning_due(used, limit) else {
                continue;
            };
            over.push(format!(
                "{feature} at {} % of {limit} this month ({used} used)",
                used.saturating_mul(100) / limit.max(1)
            ));
            let kind = NoticeKind::UsageWarning {
                feature,
                period: Period::containing(self.now).to_string(),
                percent,
                used,
                limit,
            };
            if matches!(self.send(c, kind, None).await?, Some(Sent::Now)) {
                published += 1;
            }
        }
        // On the operators' "needs attention" list for as long as it stays over: each run
        // refreshes the one flag of the license (naming every reading over); it lapses a week
        // after the usage drops back, e.g. when a new period starts.
        if !over.is_empty() {
            let flag = crate::domain::fleet::Flag {
                kind: crate::domain::fleet::AttentionKind::Usage,
                license_id: license.id.clone(),
                installation_id: None,
                detail: over.join("; "),
                raised_at: self.now,
            };
            if let Err(e) = self.store.raise(&flag).await {
                tracing::error!(error = %e, license_id = %license.id, "attention flag not raised");
            }
        }
        Ok(published)
    }

    /// Claim → publish → (expire, when `expire` is given) → mark sent. `None`: nothing to do
    /// (another run holds a live claim). Publishing comes before the status change so that a crash
    /// in between leaves the license `active`, still found by the next run, which re-sends.
    async fn send(
        &mut self,
        c: &Candidate,
        kind: NoticeKind,
        expire: Option<AuditEntry>,
    ) -> Result<Option<Sent>, DomainError> {
        let license = &c.license;
        let id = Notice::id_for(&kind, &license.id, license.expires_at);
        match c.notices.get(&id) {
            Some(NoticeState::Sent) => return Ok(Some(Sent::Earlier)),
            Some(NoticeState::Claimed { until }) if *until > self.now => return Ok(None),
            _ => {}
        }
        let until = self.now + self.settings.claim_for;
        let stale = stale_notices(c, Period::containing(self.now));
        if self
            .store
            .claim_notice(&license.id, &id, self.now, until, &stale)
            .await?
            == NoticeClaim::Taken
        {
            return Ok(None);
        }
        let notice = Notice {
            idempotency_id: id.clone(),
            threshold: kind.threshold(),
            kind,
            license_id: license.id.clone(),
            customer_id: license.customer_id,
            email: self.email_of(license).await,
            expires_at: license.expires_at,
            at: self.now,
        };
        self.publisher
            .publish(&notice)
            .await
            .map_err(|e| DomainError::Store(StoreError::Backend(e.into())))?;
        if let Some(entry) = expire {
            // Conditioned on the expiry decided on: a renewal that landed meanwhile wins.
            let changed = self
                .store
                .expire_license(&license.id, license.expires_at, &entry)
                .await?;
            // Not applied: fine if the status or the expiry moved on (another run, an operator,
            // a renewal); if the license is unchanged the transaction lost a conflict, so leave
            // the notice unmarked — its claim lapses and a later run expires it (re-sending the
            // same idempotency id).
            if !changed
                && self.store.license(&license.id).await?.is_some_and(|l| {
                    l.status == LicenseStatus::Active && l.expires_at == license.expires_at
                })
            {
                return Err(DomainError::Store(StoreError::Backend(
                    "the expiry did not apply; retried on a later run".into(),
                )));
            }
        }
        self.store
            .mark_notice_sent(&license.id, &id, self.now)
            .await?;
        tracing::info!(license_id = %license.id, notice = %id, "notice published");
        Ok(Some(Sent::Now))
    }

    /// Recounts `c`'s seats from its installation items. A drift is repaired only once the same
    /// drift (same recorded and counted) has been seen on an earlier run at least
    /// [`SEAT_DRIFT_CONFIRM`] ago: a claim in flight (count raised, installation not yet
    /// written) lasts seconds, so a drift that persists is a leak. The observation is kept in the
    /// license's notice ledger (`seat-drift:<recorded>:<counted>`, never blocking anything); the
    /// repair is conditioned on the recorded count and audited.
    async fn recount(&mut self, c: &Candidate) -> Result<bool, DomainError> {
        let license = &c.license;
        let counted = u64::try_from(
            self.store
                .installations(&license.id)
                .await?
                .iter()
                .filter(|i| i.status == crate::domain::InstallationStatus::Active)
                .count(),
        )
        .unwrap_or(u64::MAX);
        let recorded = license.active_installations;
        let seen: Vec<String> = c
            .notices
            .keys()
            .filter(|k| k.starts_with(SEAT_DRIFT))
            .cloned()
            .collect();
        if counted == recorded {
            if !seen.is_empty() {
                // Forget earlier observations, so a future drift is confirmed afresh.
                let none = format!("{SEAT_DRIFT}none");
                let stale: Vec<String> = seen.into_iter().filter(|k| *k != none).collect();
                if !stale.is_empty() {
                    self.store
                        .claim_notice(&license.id, &none, self.now, self.now, &stale)
                        .await?;
                }
            }
            return Ok(false);
        }
        let id = format!("{SEAT_DRIFT}{recorded}:{counted}");
        match c.notices.get(&id) {
            Some(NoticeState::Claimed { until }) if *until <= self.now - SEAT_DRIFT_CONFIRM => {
                let entry = AuditEntry {
                    action: "license.seats_recounted".into(),
                    actor: Actor::system("lifecycle"),
                    reason: Some(format!(
                        "seat count {recorded} but {counted} active installations (seen since {}); repaired",
                        rfc3339(*until)
                    )),
                    from: None,
                    to: None,
                    at: self.now,
                };
                let repaired = self
                    .store
                    .repair_seat_count(&license.id, recorded, counted, &entry)
                    .await?;
                if repaired {
                    tracing::warn!(license_id = %license.id, recorded, counted, "seat count repaired");
                }
                Ok(repaired)
            }
            Some(_) => Ok(false),
            None => {
                let stale: Vec<String> = seen.into_iter().filter(|k| *k != id).collect();
                // `until = now`: an observation, not a claim — it holds nothing back.
                self.store
                    .claim_notice(&license.id, &id, self.now, self.now, &stale)
                    .await?;
                Ok(false)
            }
        }
    }

    async fn email_of(&mut self, license: &License) -> Option<String> {
        if let Some(e) = self.emails.get(&license.customer_id) {
            return e.clone();
        }
        let email = match self.store.customer(&license.customer_id).await {
            Ok(c) => c.map(|c| c.email),
            Err(e) => {
                // The notice still goes out; subscribers can look the customer up by id.
                tracing::warn!(error = %e, customer_id = %license.customer_id, "customer lookup failed");
                return None;
            }
        };
        self.emails.insert(license.customer_id, email.clone());
        email
    }

    async fn cull(&mut self, inst: &Installation) -> Result<bool, DomainError> {
        let window = match self.windows.get(&inst.license_id) {
            Some(w) => *w,
            None => {
                let w = self
                    .store
                    .license(&inst.license_id)
                    .await?
                    .map(|l| l.plan.policy().heartbeat_window);
                self.windows.insert(inst.license_id.clone(), w);
                w
            }
        };
        let Some(window) = window else {
            return Ok(false);
        };
        if inst.last_seen_at > self.now - window {
            return Ok(false);
        }
        // An installation still holding a signed lease (an offline activation runs for months)
        // keeps its seat until the lease ends: the seat is what the lease vouches for.
        if inst.lease.as_ref().is_some_and(|l| l.expires_at > self.now) {
            return Ok(false);
        }
        let entry = AuditEntry {
            action: "installation.deactivated".into(),
            actor: Actor::system("lifecycle"),
            reason: Some(format!(
                "{}: no heartbeat since {} (window {} h); seat released",
                inst.id,
                rfc3339(inst.last_seen_at),
                window.whole_hours()
            )),
            from: None,
            to: None,
            at: self.now,
        };
        Ok(self.store.deactivate_installation(inst, &entry).await?)
    }
}

/// Ledger entries that can never matter again: usage notices of past periods and expiry notices
/// of a former expiry date (the ids say which, see [`Notice::id_for`]).
fn stale_notices(c: &Candidate, period: Period) -> Vec<String> {
    let expiry = c.license.expires_at.unix_timestamp().to_string();
    let period = period.to_string();
    c.notices
        .keys()
        .filter(|id| {
            let parts: Vec<&str> = id.split(':').collect();
            match parts.as_slice() {
                ["license.usage_warning", _, _, p, _] => *p < period.as_str(),
                ["license.expiry_warning", _, exp, _] | ["license.expired", _, exp] => {
                    *exp != expiry
                }
                _ => false,
            }
        })
        .cloned()
        .collect()
}

fn workflows() -> Feature {
    Feature::parse("workflows").unwrap_or_else(|_| unreachable!("a valid feature name"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn far_future() -> OffsetDateTime {
    time::macros::datetime!(9999-12-31 23:59:59 UTC)
}
