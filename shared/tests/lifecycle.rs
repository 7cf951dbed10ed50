//! The lifecycle job on the in-memory adapters, with an injected clock: every notice goes out
//! exactly once per threshold however often (and however concurrently) the job runs, a crash
//! between publishing and recording re-sends the same idempotency id, and silent installations
//! give their seats back. The walk to expiry also runs on the emulator, through SNS → SQS
//! (`memory::` and `emulator::`, the latter ignored by plain `cargo test`); undecodable DynamoDB
//! items are in `emulator.rs`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use common::{Layer, beat_cmd, beat_once, issue_expiring, run_ok, seats, types};
use serde_json::Value;
use shared::adapters::memory::MemoryPublisher;
use shared::domain::lifecycle::Notice;
use shared::domain::ports::{
    CustomerDirectory, EventPublisher, InstallationRegistry, LicenseReader, PublishError,
    UsageLedger,
};
use shared::domain::{Feature, InstallationStatus, LicenseStatus, Plan};
use shared::service::admin::Term;
use shared::service::check::Code;
use shared::service::heartbeat::heartbeat;
use shared::service::lifecycle::{Job, JobReport, Settings, run};
use shared::testing::{Inbox, Issued, MemoryStack, Stack};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// Runs `jobs` at `at` on the memory stack, publishing to its topic; every job must run.
async fn run_jobs(
    stack: &MemoryStack,
    jobs: &[Job],
    at: OffsetDateTime,
    settings: Settings,
) -> Vec<JobReport> {
    run_ok(&stack.store, &stack.publisher, jobs, at, settings).await
}

/// Runs the one job `job` at `at` on the memory stack; its report.
async fn sweep(stack: &MemoryStack, job: Job, at: OffsetDateTime, settings: Settings) -> JobReport {
    run_jobs(stack, &[job], at, settings).await.remove(0)
}

/// The notice ledger entries kept on the license item, named as the DynamoDB attributes are.
fn notice_attributes(stack: &MemoryStack, issued: &Issued) -> Vec<String> {
    stack
        .store
        .notice_ids(&issued.license.id)
        .into_iter()
        .map(|id| format!("notice:{id}"))
        .collect()
}

#[tokio::test]
async fn plan_grace_delays_the_expiry_and_renewal_re_arms_the_warnings() {
    // Arrange: professional (3 days of expiry grace), expiring in 5 days.
    let stack = MemoryStack::new();
    let expires = NOW + Duration::days(5);
    let issued = issue_expiring(&stack, Plan::Professional, NOW, expires).await;
    let jobs = [Job::ExpiryWarnings, Job::Expiry];
    let s = Settings::default();
    // Act / Assert: 5 days left → the 7-day warning only (never a belated 30-day one).
    run_jobs(&stack, &jobs, NOW, s).await;
    assert_eq!(
        types(&stack.publisher.drain()),
        ["license.expiry_warning@7"]
    );
    // Two days past expiry, inside the grace: still active, nothing sent.
    run_jobs(&stack, &jobs, expires + Duration::days(2), s).await;
    assert_eq!(stack.publisher.drain().len(), 0);
    // A renewal (new expiry, through the admin service) arms the thresholds again.
    let renewed = NOW + Duration::days(40);
    shared::service::admin::renew_license(
        &stack.store,
        &stack.signer().await,
        shared::testing::TEST_ISSUER,
        shared::service::admin::RenewCommand {
            id: issued.license.id.clone(),
            term: Term::Until(renewed),
            reason: Some("order 1042".into()),
        },
        shared::domain::Actor::operator("bootstrap", None),
        NOW,
    )
    .await
    .expect("renew");
    run_jobs(&stack, &jobs, renewed - Duration::days(30), s).await;
    assert_eq!(
        types(&stack.publisher.drain()),
        ["license.expiry_warning@30"]
    );
    let ledger = notice_attributes(&stack, &issued);
    let renewed_at = renewed.unix_timestamp().to_string();
    assert!(
        ledger.len() == 1 && ledger[0].contains(&renewed_at),
        "notices of the former expiry are forgotten: {ledger:?}"
    );
    // Past the renewed expiry plus grace: expired.
    run_jobs(&stack, &jobs, renewed + Duration::days(3), s).await;
    assert_eq!(types(&stack.publisher.drain()), ["license.expired"]);
}

/// Publishes, then fails `crashes` times as if the process died before recording the notice.
struct CrashAfterPublish<'a> {
    inner: &'a MemoryPublisher,
    crashes: AtomicUsize,
    before_publish: bool,
}

#[async_trait]
impl EventPublisher for CrashAfterPublish<'_> {
    async fn publish(&self, notice: &Notice) -> Result<(), PublishError> {
        let crash = self
            .crashes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if crash && self.before_publish {
            return Err(PublishError("injected crash before publishing".into()));
        }
        self.inner.publish(notice).await?;
        if crash {
            return Err(PublishError("injected crash after publishing".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_crash_between_publishing_and_recording_resends_the_same_idempotency_id() {
    // Arrange
    let stack = MemoryStack::new();
    let expires = NOW + Duration::days(7);
    issue_expiring(&stack, Plan::Starter, NOW, expires).await;
    let crashing = CrashAfterPublish {
        inner: &stack.publisher,
        crashes: AtomicUsize::new(1),
        before_publish: false,
    };
    let s = Settings::default();
    let jobs = [Job::ExpiryWarnings];
    // Act: the crashing run; a run while its claim holds; a run after the claim lapsed; and more.
    let first = run_ok(&stack.store, &crashing, &jobs, NOW, s).await;
    let during_claim = run_ok(
        &stack.store,
        &crashing,
        &jobs,
        NOW + Duration::minutes(1),
        s,
    )
    .await;
    let after_claim = run_ok(
        &stack.store,
        &crashing,
        &jobs,
        NOW + s.claim_for + Duration::seconds(1),
        s,
    )
    .await;
    run_ok(&stack.store, &crashing, &jobs, NOW + Duration::hours(1), s).await;
    // Assert
    assert_eq!((first[0].published, first[0].failures), (0, 1));
    assert_eq!(
        (during_claim[0].published, during_claim[0].failures),
        (0, 0)
    );
    assert_eq!((after_claim[0].published, after_claim[0].failures), (1, 0));
    let events = stack.publisher.drain();
    assert_eq!(
        events.len(),
        2,
        "the warning was not lost; one duplicate: {events:#?}"
    );
    assert_eq!(events[0]["idempotencyId"], events[1]["idempotencyId"]);
    assert_eq!(types(&events[..1]), ["license.expiry_warning@7"]);
}

#[tokio::test]
async fn a_crash_before_publishing_delays_the_warning_but_sends_it_once() {
    // Arrange
    let stack = MemoryStack::new();
    issue_expiring(&stack, Plan::Starter, NOW, NOW + Duration::days(1)).await;
    let crashing = CrashAfterPublish {
        inner: &stack.publisher,
        crashes: AtomicUsize::new(1),
        before_publish: true,
    };
    let s = Settings::default();
    // Act
    for minutes in [0, 1, 6, 7, 30] {
        run_ok(
            &stack.store,
            &crashing,
            &[Job::ExpiryWarnings],
            NOW + Duration::minutes(minutes),
            s,
        )
        .await;
    }
    // Assert
    assert_eq!(
        types(&stack.publisher.drain()),
        ["license.expiry_warning@1"]
    );
}

#[tokio::test]
async fn usage_warnings_go_out_at_80_and_100_percent_once_per_period() {
    // Arrange: 10 workflows a month.
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| {
            c.term = Term::Days(365);
            c.limits.workflows_per_month = Some(10);
        })
        .await;
    let workflows = Feature::parse("workflows").expect("valid");
    let use_units = |n: u64, at: OffsetDateTime| {
        let (store, id, f) = (&stack.store, &issued.license.id, &workflows);
        async move {
            store.reserve(id, f, at, n, 1_000).await.expect("reserve");
        }
    };
    let jobs = [Job::UsageWarnings];
    let s = Settings::default();
    let mut seen = Vec::new();
    // Act: 7 → nothing; 8 → 80 %; 9 → nothing new; 10 → 100 %; 12 → nothing new.
    for (units, minute) in [(7, 0), (1, 1), (1, 2), (1, 3), (2, 4)] {
        let at = NOW + Duration::minutes(minute);
        use_units(units, at).await;
        for _ in 0..2 {
            run_jobs(&stack, &jobs, at, s).await;
        }
        seen.extend(stack.publisher.drain());
    }
    // Next month starts from zero: 8 units warn again, for the new period.
    let next_month = datetime!(2026-07-02 12:00 UTC);
    use_units(8, next_month).await;
    run_jobs(&stack, &jobs, next_month, s).await;
    seen.extend(stack.publisher.drain());
    // Assert
    assert_eq!(
        types(&seen),
        [
            "license.usage_warning@80",
            "license.usage_warning@100",
            "license.usage_warning@80"
        ],
        "{seen:#?}"
    );
    assert_eq!(
        (&seen[0]["period"], &seen[0]["used"], &seen[0]["limit"]),
        (
            &serde_json::json!("2026-06"),
            &serde_json::json!(8),
            &serde_json::json!(10)
        )
    );
    assert_eq!(seen[2]["period"], "2026-07");
    // The ledger forgot June when July's first notice was claimed.
    let ledger = notice_attributes(&stack, &issued);
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert!(ledger[0].contains(":2026-07:80"), "{ledger:?}");
}

#[tokio::test]
async fn sweeps_are_bounded_per_run_and_resume_where_they_stopped() {
    // Arrange: five licenses inside the 30-day window; each run may examine three.
    let stack = MemoryStack::new();
    for day in 20..25 {
        issue_expiring(&stack, Plan::Starter, NOW, NOW + Duration::days(day)).await;
    }
    let s = Settings {
        page_size: 2,
        budget: 3,
        ..Settings::default()
    };
    // Act
    let first = sweep(&stack, Job::ExpiryWarnings, NOW, s).await;
    let second = sweep(&stack, Job::ExpiryWarnings, NOW + Duration::minutes(15), s).await;
    let third = sweep(&stack, Job::ExpiryWarnings, NOW + Duration::minutes(30), s).await;
    // Assert
    assert_eq!(
        (first.examined, first.published, first.swept),
        (3, 3, false)
    );
    assert_eq!(
        (second.examined, second.published, second.swept),
        (2, 2, true)
    );
    assert_eq!(
        (third.examined, third.published),
        (3, 0),
        "starts over; all sent"
    );
    assert_eq!(stack.publisher.drain().len(), 5);
}

/// A starter license for a year with two seats.
async fn two_seat_license(stack: &MemoryStack) -> Issued {
    stack
        .issue(Plan::Starter, NOW, |c| {
            c.term = Term::Days(365);
            c.limits.installations = Some(2);
        })
        .await
}

#[tokio::test]
async fn a_silent_installation_loses_its_seat_to_a_new_one_and_cannot_take_it_back() {
    // Arrange: one seat, held by "old", which then falls silent.
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| c.term = Term::Days(365))
        .await;
    let (ring, signer) = (stack.key_ring().await, stack.lease_signer().await);
    let beat = |inst: &'static str, at: OffsetDateTime| {
        let (ring, signer, store, key) = (&ring, &signer, &stack.store, &issued.key);
        async move {
            beat_once(ring, store, signer, key, inst, at)
                .await
                .verdict
                .code
        }
    };
    assert_eq!(beat("old", NOW).await, Code::Valid);
    assert_eq!(
        beat("new", NOW + Duration::hours(1)).await,
        Code::InstallationLimit
    );
    let window = Plan::Starter.policy().heartbeat_window;
    let s = Settings::default();
    // Act
    let early = sweep(
        &stack,
        Job::Installations,
        NOW + window - Duration::minutes(1),
        s,
    )
    .await;
    let late = sweep(
        &stack,
        Job::Installations,
        NOW + window + Duration::minutes(1),
        s,
    )
    .await;
    let again = sweep(
        &stack,
        Job::Installations,
        NOW + window + Duration::minutes(2),
        s,
    )
    .await;
    let new_beat = beat("new", NOW + window + Duration::minutes(3)).await;
    let old_beat = beat("old", NOW + window + Duration::minutes(4)).await;
    // Assert
    assert_eq!(early.changed, 0, "still inside its window");
    assert_eq!(late.changed, 1);
    assert_eq!(again.examined, 0, "a culled installation leaves the index");
    assert_eq!(new_beat, Code::Valid, "the freed seat is taken");
    assert_eq!(
        old_beat,
        Code::InstallationLimit,
        "no seat left to revive into"
    );
    let installations = stack
        .store
        .installations(&issued.license.id)
        .await
        .expect("read");
    let status = |id: &str| {
        installations
            .iter()
            .find(|i| i.id.as_str() == id)
            .map(|i| i.status)
    };
    assert_eq!(status("old"), Some(InstallationStatus::Inactive));
    assert_eq!(status("new"), Some(InstallationStatus::Active));
    assert_eq!(seats(&stack.store, &issued.license.id).await, 1);
    let audit = &stack
        .store
        .licenses_of(&issued.customer.id)
        .await
        .expect("lookup")[0]
        .audit;
    assert!(
        audit.iter().any(|e| e.action == "installation.deactivated"
            && e.reason.as_deref().is_some_and(|r| r.starts_with("old:"))),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_culled_installation_revives_when_a_seat_is_free() {
    // Arrange: two seats; "a" falls silent and is culled.
    let stack = MemoryStack::new();
    let issued = two_seat_license(&stack).await;
    let (ring, signer) = (stack.key_ring().await, stack.lease_signer().await);
    let window = Plan::Starter.policy().heartbeat_window;
    let first = beat_once(&ring, &stack.store, &signer, &issued.key, "a", NOW).await;
    assert_eq!(first.verdict.code, Code::Valid);
    let culled = sweep(
        &stack,
        Job::Installations,
        NOW + window + Duration::hours(1),
        Settings::default(),
    )
    .await;
    // Act
    let back = beat_once(
        &ring,
        &stack.store,
        &signer,
        &issued.key,
        "a",
        NOW + window + Duration::hours(2),
    )
    .await;
    // Assert
    assert_eq!(culled.changed, 1);
    assert_eq!(back.verdict.code, Code::Valid);
    assert_eq!(
        back.installation.map(|i| i.status),
        Some(InstallationStatus::Active)
    );
}

#[tokio::test]
async fn gauge_warnings_go_out_when_active_installations_approach_their_user_limit() {
    // Arrange: starter allows 5 users; two installations report 2 and 2 users (80 %).
    let stack = MemoryStack::new();
    let issued = two_seat_license(&stack).await;
    let (ring, signer) = (stack.key_ring().await, stack.lease_signer().await);
    for inst in ["a", "b"] {
        let mut cmd = beat_cmd(&issued.key, inst);
        cmd.gauges.users = Some(2);
        let beat = heartbeat(&ring, &stack.store, &signer, &cmd, Duration::hours(1), NOW)
            .await
            .expect("beat");
        assert_eq!(beat.verdict.code, Code::Valid);
    }
    // Act
    let first = sweep(&stack, Job::UsageWarnings, NOW, Settings::default()).await;
    let again = sweep(
        &stack,
        Job::UsageWarnings,
        NOW + Duration::minutes(15),
        Settings::default(),
    )
    .await;
    // Assert
    assert_eq!((first.published, again.published), (1, 0));
    let events = stack.publisher.drain();
    assert_eq!(types(&events), ["license.usage_warning@80"]);
    assert_eq!(
        (
            &events[0]["feature"],
            &events[0]["used"],
            &events[0]["limit"]
        ),
        (
            &serde_json::json!("users"),
            &serde_json::json!(4),
            &serde_json::json!(5)
        )
    );
}

// ---- a rule that also runs on the emulator ----

/// A topic whose notices a test reads back: the memory topic, or an SNS topic's SQS inbox.
trait Notices {
    type Publisher: EventPublisher;
    /// Publishes to the topic.
    fn publisher(&self) -> &Self::Publisher;
    /// Every notice delivered so far (removed), as JSON.
    async fn drain(&self) -> Vec<Value>;
}

impl Notices for MemoryPublisher {
    type Publisher = MemoryPublisher;
    fn publisher(&self) -> &MemoryPublisher {
        self
    }
    async fn drain(&self) -> Vec<Value> {
        MemoryPublisher::drain(self)
    }
}

impl Notices for Inbox {
    type Publisher = shared::adapters::sns::SnsPublisher;
    fn publisher(&self) -> &Self::Publisher {
        &self.publisher
    }
    async fn drain(&self) -> Vec<Value> {
        Inbox::drain(self).await
    }
}

/// The rule, on either layer, with the notices published to `notices`.
async fn a_license_walking_to_its_expiry_gets_three_warnings_one_expiry_and_one_audit_entry<
    L: Layer,
>(
    stack: &L,
    notices: &impl Notices,
) {
    // Arrange: a starter license (no expiry grace) expiring 31 days from now.
    let expires = NOW + Duration::days(31);
    let issued = issue_expiring(stack, Plan::Starter, NOW, expires).await;
    let jobs = [Job::ExpiryWarnings, Job::Expiry];
    let settings = Settings::default();
    // Act: at each step the job runs twice at once, then three more times.
    for days_left in [31, 30, 8, 7, 2, 1, 0, -1] {
        let at = expires - Duration::days(days_left);
        let (a, b) = futures::join!(
            run(stack.store(), notices.publisher(), &jobs, at, settings),
            run(stack.store(), notices.publisher(), &jobs, at, settings),
        );
        assert!(a.iter().chain(&b).all(Result::is_ok));
        for minute in 1..4 {
            run_ok(
                stack.store(),
                notices.publisher(),
                &jobs,
                at + Duration::minutes(minute),
                settings,
            )
            .await;
        }
    }
    // Assert
    let events = notices.drain().await;
    assert_eq!(
        types(&events),
        [
            "license.expiry_warning@30",
            "license.expiry_warning@7",
            "license.expiry_warning@1",
            "license.expired",
        ],
        "{events:#?}"
    );
    let expired = &events[3];
    assert_eq!(expired["licenseId"], issued.license.id.as_str());
    assert_eq!(expired["customerId"], issued.customer.id.to_string());
    assert_eq!(expired["email"], issued.customer.email);
    let ids: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["idempotencyId"].as_str())
        .collect();
    assert_eq!(ids.len(), 4, "each notice has its own idempotency id");
    let license = stack
        .store()
        .license(&issued.license.id)
        .await
        .expect("read")
        .expect("license");
    assert_eq!(license.status, LicenseStatus::Expired);
    let (_, details) = stack
        .store()
        .licenses_of(&issued.customer.id)
        .await
        .map(|l| ((), l))
        .expect("lookup");
    let expiries: Vec<_> = details[0]
        .audit
        .iter()
        .filter(|e| e.action == "license.expired")
        .collect();
    assert_eq!(expiries.len(), 1, "{:?}", details[0].audit);
    assert_eq!(
        (expiries[0].from, expiries[0].to),
        (Some(LicenseStatus::Active), Some(LicenseStatus::Expired))
    );
    assert_eq!(expiries[0].actor.as_str(), "system:lifecycle");
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn a_license_walking_to_its_expiry_gets_three_warnings_one_expiry_and_one_audit_entry() {
        let stack = MemoryStack::new();
        super::a_license_walking_to_its_expiry_gets_three_warnings_one_expiry_and_one_audit_entry(
            &stack,
            &stack.publisher,
        )
        .await;
    }
}

mod emulator {
    use super::*;

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_license_walking_to_its_expiry_gets_three_warnings_one_expiry_and_one_audit_entry() {
        super::a_license_walking_to_its_expiry_gets_three_warnings_one_expiry_and_one_audit_entry(
            &Stack::new().await,
            &Inbox::new().await,
        )
        .await;
    }
}

/// Publishes to an inner publisher after yielding to the scheduler `yields` times: the window in
/// which a concurrent renewal can land between the expiry decision and its write.
struct YieldingPublisher {
    inner: MemoryPublisher,
    yields: usize,
}

#[async_trait]
impl EventPublisher for YieldingPublisher {
    async fn publish(&self, notice: &Notice) -> Result<(), PublishError> {
        for _ in 0..self.yields {
            tokio::task::yield_now().await;
        }
        self.inner.publish(notice).await
    }
}

#[tokio::test]
async fn a_renewal_racing_the_expiry_run_never_leaves_an_expired_license_with_a_future_expiry() {
    // Many interleavings: the renewal lands before the run decides, between its decision and
    // its write (while it publishes), or after it.
    for (round, (publish_yields, renew_yields)) in [
        (0, 0),
        (1, 0),
        (3, 1),
        (5, 2),
        (8, 8),
        (2, 5),
        (10, 0),
        (0, 3),
    ]
    .into_iter()
    .cycle()
    .take(40)
    .enumerate()
    {
        let stack = MemoryStack::new();
        let expires = NOW - Duration::days(1);
        let issued = issue_expiring(&stack, Plan::Starter, NOW - Duration::days(30), expires).await;
        let publisher = YieldingPublisher {
            inner: stack.publisher.clone(),
            yields: publish_yields,
        };
        let renewed_to = NOW + Duration::days(365);
        let signer = stack.signer().await;
        let renew = async {
            for _ in 0..renew_yields {
                tokio::task::yield_now().await;
            }
            shared::service::admin::renew_license(
                &stack.store,
                &signer,
                shared::testing::TEST_ISSUER,
                shared::service::admin::RenewCommand {
                    id: issued.license.id.clone(),
                    term: Term::Until(renewed_to),
                    reason: Some("paid".into()),
                },
                shared::domain::Actor::operator("bootstrap", None),
                NOW,
            )
            .await
            .expect("renewed")
        };
        let expire = run(
            &stack.store,
            &publisher,
            &[Job::Expiry],
            NOW,
            Settings::default(),
        );
        let (_, reports) = tokio::join!(renew, expire);
        let license = stack
            .store
            .license(&issued.license.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(
            license.expires_at, renewed_to,
            "round {round}: the renewal stands"
        );
        assert_eq!(
            license.status,
            LicenseStatus::Active,
            "round {round}: expired with an expiry a year away ({reports:?})"
        );
    }
}

#[tokio::test]
async fn a_leaked_seat_is_given_back_once_the_drift_persists() {
    // Arrange: two seats, one active installation — and a seat leaked by a crash between a
    // claim's count and its installation write (the count says 2).
    let stack = MemoryStack::new();
    let issued = two_seat_license(&stack).await;
    let (ring, signer) = (stack.key_ring().await, stack.lease_signer().await);
    beat_once(&ring, &stack.store, &signer, &issued.key, "a", NOW).await;
    let leak = shared::domain::AuditEntry {
        action: "test.leak".into(),
        actor: shared::domain::Actor::system("test"),
        reason: None,
        from: None,
        to: None,
        at: NOW,
    };
    use shared::domain::ports::LifecycleIndex;
    assert!(
        stack
            .store
            .repair_seat_count(&issued.license.id, 1, 2, &leak)
            .await
            .expect("leak")
    );
    let count = |stack: &MemoryStack| {
        let id = issued.license.id.clone();
        let store = stack.store.clone();
        async move {
            store
                .license(&id)
                .await
                .expect("read")
                .expect("exists")
                .active_installations
        }
    };
    // The leaked seat keeps a second installation out.
    assert_eq!(
        beat_once(&ring, &stack.store, &signer, &issued.key, "b", NOW)
            .await
            .verdict
            .code,
        Code::InstallationLimit
    );
    // Act: the first run only notes the drift; a run 5 minutes later still waits (a claim in
    // flight would look the same for a moment); 11 minutes after the first it repairs.
    let s = Settings::default();
    assert_eq!(sweep(&stack, Job::Seats, NOW, s).await.changed, 0);
    assert_eq!(count(&stack).await, 2);
    assert_eq!(
        sweep(&stack, Job::Seats, NOW + Duration::minutes(5), s)
            .await
            .changed,
        0
    );
    assert_eq!(count(&stack).await, 2);
    let report = sweep(&stack, Job::Seats, NOW + Duration::minutes(11), s).await;
    // Assert
    assert_eq!(report.changed, 1);
    assert_eq!(count(&stack).await, 1);
    let (_, licenses) = shared::service::admin::lookup_customer(&stack.store, &issued.customer.id)
        .await
        .expect("lookup");
    assert!(
        licenses[0]
            .audit
            .iter()
            .any(|a| a.action == "license.seats_recounted"),
        "audited"
    );
    assert_eq!(
        beat_once(
            &ring,
            &stack.store,
            &signer,
            &issued.key,
            "b",
            NOW + Duration::minutes(12)
        )
        .await
        .verdict
        .code,
        Code::Valid,
        "the seat is back"
    );
    // A consistent count is left alone.
    assert_eq!(
        sweep(&stack, Job::Seats, NOW + Duration::hours(1), s)
            .await
            .changed,
        0
    );
}
