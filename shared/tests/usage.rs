//! Usage metering on the in-memory adapters: exact counting under duplicates, poison messages,
//! crashes and redelivery; reservations; statistics; USAGE_EXCEEDED in validate; submission to the
//! queue. Concurrency on the real counter, transactions at DynamoDB's item limit, call counts and
//! SQS itself are in `emulator.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use shared::domain::ports::{Recorded, UsageLedger};
use shared::domain::{
    EventId, Feature, InstallationId, LicenseId, Period, Plan, StoreError, UsageEvent,
};
use shared::service::check::Code;
use shared::service::usage::{
    EventInput, EventStatus, Message, Reservation, process_batch, reserve, statistics, submit,
};
use shared::service::validate::{ValidateCommand, validate};
use shared::testing::MemoryStack;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-07-15 12:00 UTC);

/// The processor's production setting: several counters written at once.
const PARALLELISM: usize = shared::config::DEFAULT_USAGE_GROUP_CONCURRENCY;

fn feature(name: &str) -> Feature {
    Feature::parse(name).expect("valid feature")
}

fn event(license: &LicenseId, id: &str, quantity: u64, at: OffsetDateTime) -> UsageEvent {
    UsageEvent {
        license_id: license.clone(),
        event_id: EventId::parse(id).expect("valid id"),
        feature: feature("workflows"),
        quantity,
        occurred_at: at,
        metadata: None,
    }
}

fn message(n: usize, e: &UsageEvent) -> Message {
    Message {
        id: format!("msg-{n}"),
        body: serde_json::to_string(e).expect("json"),
    }
}

async fn used(stack: &MemoryStack, license: &LicenseId, period: Period) -> (u64, Vec<u64>) {
    stack
        .store
        .usage(license, &[feature("workflows")], period)
        .await
        .expect("usage")
        .remove(0)
}

#[tokio::test]
async fn a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum() {
    // Arrange: 900 distinct events (quantities 1..=5 over three days), and 100 of them sent again
    // — some in the same batch, most in later batches, as client re-sends and SQS redeliveries.
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Enterprise, NOW, |_| {}).await;
    let id = &issued.license.id;
    let distinct: Vec<UsageEvent> = (0..900)
        .map(|i| {
            event(
                id,
                &format!("evt-{i}"),
                (i % 5) as u64 + 1,
                NOW - Duration::days((i % 3) as i64),
            )
        })
        .collect();
    let mut stream = distinct.clone();
    for k in 0..100 {
        stream.insert((k * 9 + 5).min(stream.len()), distinct[k * 7].clone());
    }
    let expected: u64 = distinct.iter().map(|e| e.quantity).sum();
    // Act: batches of 100, as the event source mapping delivers them (BatchSize 100 with a
    // batching window in template.yaml).
    let mut counted = 0;
    let mut duplicates = 0;
    for (b, chunk) in stream.chunks(100).enumerate() {
        let messages: Vec<Message> = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| message(b * 100 + i, e))
            .collect();
        let outcome = process_batch(&stack.store, &messages, NOW, PARALLELISM).await;
        assert!(outcome.failed.is_empty(), "batch {b}: {outcome:?}");
        counted += outcome.counted;
        duplicates += outcome.duplicates;
    }
    // Assert
    let (total, daily) = used(&stack, id, Period::containing(NOW)).await;
    assert_eq!(total, expected);
    assert_eq!((counted, duplicates), (900, 100));
    assert_eq!(
        daily.iter().sum::<u64>(),
        expected,
        "the daily series adds up to the total"
    );
    assert_eq!(daily.len(), 31, "July has 31 days");
    assert!(
        daily[12] > 0 && daily[13] > 0 && daily[14] > 0 && daily[15] == 0,
        "{daily:?}"
    );
}

#[tokio::test]
async fn a_poison_message_fails_alone_while_its_batch_mates_are_counted() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Enterprise, NOW, |_| {}).await;
    let id = &issued.license.id;
    let mut messages: Vec<Message> = (0..4)
        .map(|i| message(i, &event(id, &format!("e{i}"), 2, NOW)))
        .collect();
    messages.insert(
        2,
        Message {
            id: "poison".into(),
            body: "{\"licenseId\": 42".into(),
        },
    );
    messages.push(Message {
        id: "zero".into(),
        body: serde_json::to_string(&event(id, "z", 0, NOW)).expect("json"),
    });
    let outcome = process_batch(&stack.store, &messages, NOW, PARALLELISM).await;
    assert_eq!(outcome.failed, vec!["poison".to_owned(), "zero".to_owned()]);
    assert_eq!(outcome.counted, 4);
    assert_eq!(used(&stack, id, Period::containing(NOW)).await.0, 8);
}

/// A ledger that crashes after `survive` successful writes, as a processor dying mid-batch.
struct Crashing<'a> {
    inner: &'a shared::adapters::memory::MemoryStore,
    survive: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl UsageLedger for Crashing<'_> {
    async fn record(
        &self,
        events: &[UsageEvent],
        now: OffsetDateTime,
    ) -> Result<Vec<Recorded>, StoreError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.survive {
            return Err(StoreError::Backend("process killed".into()));
        }
        self.inner.record(events, now).await
    }
    async fn usage(
        &self,
        l: &LicenseId,
        f: &[Feature],
        p: Period,
    ) -> Result<Vec<(u64, Vec<u64>)>, StoreError> {
        self.inner.usage(l, f, p).await
    }
    async fn reserve(
        &self,
        l: &LicenseId,
        f: &Feature,
        at: OffsetDateTime,
        q: u64,
        limit: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.reserve(l, f, at, q, limit).await
    }
}

#[tokio::test]
async fn a_crash_mid_batch_then_redelivery_still_counts_every_event_once() {
    // Arrange: one batch touching three counters (three licenses).
    let stack = MemoryStack::new();
    let licenses: Vec<LicenseId> =
        futures::future::join_all((0..3).map(|_| stack.issue(Plan::Enterprise, NOW, |_| {})))
            .await
            .into_iter()
            .map(|i| i.license.id)
            .collect();
    let events: Vec<UsageEvent> = (0..12)
        .map(|i| event(&licenses[i % 3], &format!("c{i}"), 1 + i as u64, NOW))
        .collect();
    let messages: Vec<Message> = events
        .iter()
        .enumerate()
        .map(|(i, e)| message(i, e))
        .collect();
    // Act: the first run dies after one counter's write; SQS then redelivers the whole batch
    // (the runtime reported no partial success), and a healthy run processes it.
    let crashing = Crashing {
        inner: &stack.store,
        survive: 1,
        calls: AtomicUsize::new(0),
    };
    let first = process_batch(&crashing, &messages, NOW, PARALLELISM).await;
    let second = process_batch(&stack.store, &messages, NOW, PARALLELISM).await;
    let third = process_batch(&stack.store, &messages, NOW, PARALLELISM).await;
    // Assert
    assert_eq!(
        first.failed.len(),
        8,
        "two of three groups failed: {first:?}"
    );
    assert_eq!((second.counted, second.duplicates), (8, 4));
    assert_eq!((third.counted, third.duplicates), (0, 12));
    for (k, license) in licenses.iter().enumerate() {
        let expected: u64 = events
            .iter()
            .filter(|e| &e.license_id == license)
            .map(|e| e.quantity)
            .sum();
        assert_eq!(
            used(&stack, license, Period::containing(NOW)).await.0,
            expected,
            "license {k}"
        );
    }
}

#[tokio::test]
async fn a_reservation_larger_than_what_is_left_is_refused_whole() {
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| {
            c.limits.workflows_per_month = Some(10)
        })
        .await;
    let workflows = feature("workflows");
    assert_eq!(
        reserve(&stack.store, &issued.license, &workflows, 7, NOW)
            .await
            .expect("reserve"),
        Reservation::Granted {
            used: 7,
            remaining: 3,
            limit: 10
        }
    );
    assert_eq!(
        reserve(&stack.store, &issued.license, &workflows, 4, NOW)
            .await
            .expect("reserve"),
        Reservation::Exceeded { limit: 10 }
    );
    assert_eq!(
        reserve(&stack.store, &issued.license, &workflows, 11, NOW)
            .await
            .expect("reserve"),
        Reservation::Exceeded { limit: 10 }
    );
    assert!(
        reserve(
            &stack.store,
            &issued.license,
            &feature("api_access"),
            1,
            NOW
        )
        .await
        .is_err(),
        "uncapped features are not reservable"
    );
    assert_eq!(
        used(&stack, &issued.license.id, Period::containing(NOW))
            .await
            .0,
        7
    );
}

#[tokio::test]
async fn validate_says_usage_exceeded_once_the_limit_is_reached_and_valid_again_next_month() {
    // Arrange: a limit of 5, and 6 units reported asynchronously (reports may pass the limit).
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| {
            c.limits.workflows_per_month = Some(5)
        })
        .await;
    let ring = stack.key_ring().await;
    let cmd = |f: &str| ValidateCommand {
        key: issued.key.clone(),
        installation_id: InstallationId::parse("i-1").expect("valid"),
        domain: None,
        feature: Some(feature(f)),
    };
    let code = |c: ValidateCommand, at| {
        let (ring, store) = (&ring, &stack.store);
        async move {
            validate(ring, store, &c, at)
                .await
                .expect("validate")
                .verdict
                .code
        }
    };
    let id = &issued.license.id;
    let msgs: Vec<Message> = (0..3)
        .map(|i| message(i, &event(id, &format!("u{i}"), 2, NOW)))
        .collect();
    assert_eq!(code(cmd("workflows"), NOW).await, Code::Valid);
    // Act
    process_batch(&stack.store, &msgs, NOW, PARALLELISM).await;
    // Assert: counted past the limit, never dropped; validate refuses the feature, not the rest.
    assert_eq!(used(&stack, id, Period::containing(NOW)).await.0, 6);
    assert_eq!(code(cmd("workflows"), NOW).await, Code::UsageExceeded);
    assert_eq!(code(cmd("api_access"), NOW).await, Code::Valid);
    let next_month = Period::containing(NOW).end() + Duration::hours(1);
    assert_eq!(code(cmd("workflows"), next_month).await, Code::Valid);
}

#[tokio::test]
async fn statistics_report_used_limit_remaining_and_the_daily_series_per_feature() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
    let id = &issued.license.id;
    let mut api = event(id, "a1", 4, NOW - Duration::days(1));
    api.feature = feature("api_access");
    let batch = [
        event(id, "w1", 3, NOW),
        event(id, "w2", 2, NOW - Duration::days(2)),
        api,
    ];
    let msgs: Vec<Message> = batch
        .iter()
        .enumerate()
        .map(|(i, e)| message(i, e))
        .collect();
    process_batch(&stack.store, &msgs, NOW, PARALLELISM).await;
    let stats = statistics(&stack.store, &issued.license, Period::containing(NOW))
        .await
        .expect("stats");
    let by_name = |n: &str| {
        stats
            .iter()
            .find(|u| u.feature.as_str() == n)
            .expect("feature listed")
    };
    let w = by_name("workflows");
    assert_eq!(
        (w.used, w.limit, w.remaining()),
        (5, Some(10_000), Some(9_995))
    );
    assert_eq!((w.daily[12], w.daily[14]), (2, 3));
    let a = by_name("api_access");
    assert_eq!((a.used, a.limit, a.remaining()), (4, None, None));
    assert_eq!(
        by_name("integrations").used,
        0,
        "entitled but unused features are listed with 0"
    );
    assert_eq!(stats.len(), issued.license.features.len());
}

#[tokio::test]
async fn submit_rejects_unentitled_features_per_event_and_reports_queue_failures_honestly() {
    let stack = MemoryStack::new();
    let issued = stack.issue(Plan::Starter, NOW, |_| {}).await;
    let ring = stack.key_ring().await;
    let input = |id: &str, f: &str| EventInput {
        event_id: EventId::parse(id).expect("valid"),
        feature: feature(f),
        quantity: 1,
        occurred_at: None,
        metadata: None,
    };
    // A working queue: one accepted, one rejected (starter has no analytics).
    let mut with_meta = input("a", "workflows");
    with_meta.metadata = serde_json::json!({"run": "wf-42"}).as_object().cloned();
    let submitted = submit(
        &ring,
        &stack.store,
        &stack.queue,
        &issued.key,
        vec![with_meta, input("b", "analytics")],
        NOW,
    )
    .await
    .map_err(|_| "submit failed")
    .expect("submitted");
    assert_eq!(submitted.statuses[0].1, EventStatus::Accepted);
    assert!(
        matches!(&submitted.statuses[1].1, EventStatus::Rejected(v) if v.code == Code::FeatureNotEntitled)
    );
    let queued = stack.queue.drain();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].event_id.as_str(), "a");
    assert_eq!(
        queued[0].occurred_at, NOW,
        "occurredAt defaults to the time of receipt"
    );
    // Metadata travels with the event (the emulator test checks it is kept on its marker).
    assert_eq!(
        queued[0].metadata.as_ref().and_then(|m| m.get("run")),
        Some(&serde_json::json!("wf-42"))
    );
    process_batch(&stack.store, &[message(0, &queued[0])], NOW, PARALLELISM).await;
    assert_eq!(
        used(&stack, &issued.license.id, Period::containing(NOW))
            .await
            .0,
        1
    );
    // A queue that fails: nothing is silently half-accepted.
    stack.queue.set_unavailable(true);
    let submitted = submit(
        &ring,
        &stack.store,
        &stack.queue,
        &issued.key,
        vec![input("c", "workflows")],
        NOW,
    )
    .await
    .map_err(|_| "submit failed")
    .expect("submitted");
    assert!(submitted.any_failed());
    assert_eq!(submitted.statuses[0].1, EventStatus::Failed);
    assert!(stack.queue.drain().is_empty());
}

#[tokio::test]
async fn gauges_keep_each_installations_latest_reading_and_sum_the_active_ones() {
    use shared::domain::Gauges;
    use shared::service::heartbeat::{HeartbeatCommand, heartbeat};
    use shared::service::usage::gauges;

    // Arrange: users limit 5 (starter).
    let stack = MemoryStack::new();
    let issued = stack
        .issue(Plan::Starter, NOW, |c| c.limits.installations = Some(3))
        .await;
    let ring = stack.key_ring().await;
    let signer = stack.signer().await;
    let beat = |inst: &str, users: Option<u64>, storage: Option<u64>| {
        let cmd = HeartbeatCommand {
            key: issued.key.clone(),
            installation_id: InstallationId::parse(inst).expect("valid"),
            version: "1.0.0".into(),
            domain: None,
            gauges: Gauges {
                users,
                storage_gb: storage,
            },
            signals: Vec::new(),
        };
        let (ring, store, signer) = (&ring, &stack.store, &signer);
        async move {
            heartbeat(ring, store, signer, &cmd, Duration::hours(1), NOW)
                .await
                .expect("beat");
        }
    };
    let read = || async {
        gauges(&stack.store, &issued.license)
            .await
            .expect("gauges")
            .into_iter()
            .map(|g| (g.gauge, g.value, g.over_limit()))
            .collect::<Vec<_>>()
    };
    // Act + Assert
    beat("a", Some(3), Some(4)).await;
    beat("b", Some(2), None).await;
    assert_eq!(
        read().await,
        [("users", 5, false), ("storage_gb", 4, false)]
    );
    beat("b", Some(4), None).await; // b's latest reading replaces its previous one
    assert_eq!(read().await, [("users", 7, true), ("storage_gb", 4, false)]);
    beat("a", None, None).await; // a beat without readings keeps a's readings
    assert_eq!(read().await, [("users", 7, true), ("storage_gb", 4, false)]);
}
