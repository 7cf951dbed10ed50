//! Usage metering on the in-memory adapters: exact counting under duplicates, poison messages,
//! crashes and redelivery; reservations; statistics; USAGE_EXCEEDED in validate; submission to the
//! queue. The rules that also run on the emulator (`memory::` and `emulator::`, the latter ignored
//! by plain `cargo test`) are written once, at the end. Concurrency on the real counter and
//! transactions at DynamoDB's item limit are in `emulator.rs`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use common::{Layer, event, feature, message, used, validate_cmd};
use shared::adapters::memory::MemoryQueue;
use shared::adapters::sqs::SqsUsageQueue;
use shared::domain::ports::{Recorded, UsageLedger, UsageQueue};
use shared::domain::{EventId, Feature, LicenseId, Period, Plan, StoreError, UsageEvent};
use shared::service::check::Code;
use shared::service::usage::{
    EventInput, EventStatus, Message, Reservation, process_batch, reserve, statistics, submit,
};
use shared::service::validate::{ValidateCommand, validate};
use shared::testing::{Issued, MemoryStack, Stack, count_calls};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-07-15 12:00 UTC);

/// The processor's production setting: several counters written at once.
const PARALLELISM: usize = shared::config::DEFAULT_USAGE_GROUP_CONCURRENCY;

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
    assert_eq!(used(&stack.store, id, Period::containing(NOW)).await.0, 8);
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
            used(&stack.store, license, Period::containing(NOW)).await.0,
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
        used(&stack.store, &issued.license.id, Period::containing(NOW))
            .await
            .0,
        7
    );
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
            gauges: Gauges {
                users,
                storage_gb: storage,
            },
            ..common::beat_cmd(&issued.key, inst)
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

// ---- rules that also run on the emulator ----

async fn a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum<L: Layer>(
    stack: &L,
) {
    // Arrange: 900 distinct events (quantities 1..=5 over three days), and 100 of them sent again
    // — some in the same batch, most in later batches, as client re-sends and SQS redeliveries.
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
        let outcome = process_batch(stack.store(), &messages, NOW, PARALLELISM).await;
        assert!(outcome.failed.is_empty(), "batch {b}: {outcome:?}");
        counted += outcome.counted;
        duplicates += outcome.duplicates;
    }
    // Assert
    let (total, daily) = used(stack.store(), id, Period::containing(NOW)).await;
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

/// The rule, on either layer; hands back the calls of the validate that says USAGE_EXCEEDED.
async fn validate_says_usage_exceeded_once_the_limit_is_reached_and_valid_again_next_month<
    L: Layer,
>(
    stack: &L,
) -> L::Calls {
    // Arrange: a limit of 5, and 6 units reported asynchronously (reports may pass the limit).
    let issued = stack
        .issue(Plan::Starter, NOW, |c| {
            c.limits.workflows_per_month = Some(5)
        })
        .await;
    let ring = stack.key_ring().await;
    let code = |f: &str, at| {
        let cmd = ValidateCommand {
            feature: Some(feature(f)),
            ..validate_cmd(&issued.key, "i-1")
        };
        let (ring, store) = (&ring, stack.store());
        async move {
            validate(ring, store, &cmd, at)
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
    assert_eq!(code("workflows", NOW).await, Code::Valid);
    // Act
    process_batch(stack.store(), &msgs, NOW, PARALLELISM).await;
    // Assert: counted past the limit, never dropped; validate refuses the feature, not the rest.
    assert_eq!(used(stack.store(), id, Period::containing(NOW)).await.0, 6);
    stack.reset_calls();
    assert_eq!(code("workflows", NOW).await, Code::UsageExceeded);
    let refusal_calls = stack.calls();
    assert_eq!(code("api_access", NOW).await, Code::Valid);
    let next_month = Period::containing(NOW).end() + Duration::hours(1);
    assert_eq!(code("workflows", next_month).await, Code::Valid);
    refusal_calls
}

/// A usage queue a test can read back and make fail: the memory queue, or an SQS queue.
trait TestQueue {
    type Queue: UsageQueue;
    /// The queue, working.
    fn queue(&self) -> &Self::Queue;
    /// A queue of the same kind on which every send fails.
    fn broken(&self) -> Self::Queue;
    /// Everything queued so far (removed from the queue).
    async fn drain(&self) -> Vec<UsageEvent>;
}

impl TestQueue for MemoryQueue {
    type Queue = MemoryQueue;
    fn queue(&self) -> &MemoryQueue {
        self
    }
    /// The same queue, unavailable from now on.
    fn broken(&self) -> MemoryQueue {
        self.set_unavailable(true);
        self.clone()
    }
    async fn drain(&self) -> Vec<UsageEvent> {
        MemoryQueue::drain(self)
    }
}

/// A fresh SQS queue on the emulator.
struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    queue: SqsUsageQueue,
}

impl SqsQueue {
    async fn new() -> Self {
        let sqs = aws_sdk_sqs::Client::new(&shared::testing::emulator().await);
        let url = sqs
            .create_queue()
            .queue_name(shared::testing::unique("usage"))
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("url");
        let queue = SqsUsageQueue::new(sqs.clone(), &url);
        Self { sqs, url, queue }
    }
}

impl TestQueue for SqsQueue {
    type Queue = SqsUsageQueue;
    fn queue(&self) -> &SqsUsageQueue {
        &self.queue
    }
    /// A queue that does not exist.
    fn broken(&self) -> SqsUsageQueue {
        SqsUsageQueue::new(self.sqs.clone(), format!("{}-missing", self.url))
    }
    async fn drain(&self) -> Vec<UsageEvent> {
        let mut out = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.extend(serde_json::from_str(m.body().unwrap_or("null")).ok());
                self.sqs
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// The rule, on either layer; hands back the license, whose event "a" was counted.
async fn submit_rejects_unentitled_features_per_event_and_reports_queue_failures_honestly<
    L: Layer,
>(
    stack: &L,
    queue: &impl TestQueue,
) -> Issued {
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
        stack.store(),
        queue.queue(),
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
    let queued = queue.drain().await;
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
    process_batch(stack.store(), &[message(0, &queued[0])], NOW, PARALLELISM).await;
    assert_eq!(
        used(stack.store(), &issued.license.id, Period::containing(NOW))
            .await
            .0,
        1
    );
    // A queue that fails: nothing is silently half-accepted.
    let broken = queue.broken();
    let submitted = submit(
        &ring,
        stack.store(),
        &broken,
        &issued.key,
        vec![input("c", "workflows")],
        NOW,
    )
    .await
    .map_err(|_| "submit failed")
    .expect("submitted");
    assert!(submitted.any_failed());
    assert_eq!(submitted.statuses[0].1, EventStatus::Failed);
    assert!(queue.drain().await.is_empty());
    issued
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum() {
        super::a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum(
            &MemoryStack::new(),
        )
        .await;
    }

    #[tokio::test]
    async fn validate_says_usage_exceeded_once_the_limit_is_reached_and_valid_again_next_month() {
        super::validate_says_usage_exceeded_once_the_limit_is_reached_and_valid_again_next_month(
            &MemoryStack::new(),
        )
        .await;
    }

    #[tokio::test]
    async fn submit_rejects_unentitled_features_per_event_and_reports_queue_failures_honestly() {
        let stack = MemoryStack::new();
        super::submit_rejects_unentitled_features_per_event_and_reports_queue_failures_honestly(
            &stack,
            &stack.queue,
        )
        .await;
    }
}

mod emulator {
    use super::*;

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum() {
        super::a_thousand_events_with_ten_percent_resent_count_exactly_the_distinct_sum(
            &Stack::new().await,
        )
        .await;
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn validate_says_usage_exceeded_once_the_limit_is_reached_and_valid_again_next_month() {
        let refusal = super::validate_says_usage_exceeded_once_the_limit_is_reached_and_valid_again_next_month(
            &Stack::new().await,
        )
        .await;
        assert_eq!(
            count_calls(&refusal, "DynamoDB."),
            1,
            "counter read in the same round trip"
        );
    }

    #[tokio::test]
    #[ignore = "emulator: run by make test"]
    async fn submit_rejects_unentitled_features_per_event_and_reports_queue_failures_honestly() {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        let stack = Stack::new().await;
        let issued =
            super::submit_rejects_unentitled_features_per_event_and_reports_queue_failures_honestly(
                &stack,
                &SqsQueue::new().await,
            )
            .await;
        // The event's metadata is kept on its dedupe marker for billing reconciliation.
        let marker = stack
            .dynamo
            .get_item()
            .table_name(stack.store.table())
            .key("pk", S(format!("EVENT#{}#a", issued.license.id)))
            .key("sk", S("EVENT".into()))
            .send()
            .await
            .expect("get marker")
            .item
            .expect("marker exists");
        let kept = marker
            .get("metadata")
            .and_then(|v| v.as_s().ok())
            .expect("metadata kept");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(kept).expect("json"),
            serde_json::json!({"run": "wf-42"})
        );
    }
}
