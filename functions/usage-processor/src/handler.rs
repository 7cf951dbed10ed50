//! Processor handler: SQS batch → `service::usage::process_batch` → partial batch failures.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use shared::domain::ports::{Clock, UsageLedger};
use shared::service::usage::{Message, process_batch};

/// Counts one batch; returns the ids of the messages to retry (never an `Err`: that would make
/// SQS redeliver the whole batch).
pub async fn handle<L: UsageLedger>(
    ledger: &L,
    clock: &dyn Clock,
    parallelism: usize,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut unreadable = Vec::new();
    let messages: Vec<Message> = event
        .payload
        .records
        .into_iter()
        .filter_map(|r| match (r.message_id, r.body) {
            (Some(id), Some(body)) => Some(Message { id, body }),
            (Some(id), None) => {
                unreadable.push(id);
                None
            }
            // Without an id a message cannot even be reported; SQS will redeliver it by timeout.
            (None, _) => None,
        })
        .collect();
    let outcome = process_batch(ledger, &messages, clock.now(), parallelism).await;
    tracing::info!(
        counted = outcome.counted,
        duplicates = outcome.duplicates,
        failed = outcome.failed.len() + unreadable.len(),
        "usage batch processed"
    );
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .failed
        .into_iter()
        .chain(unreadable)
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::ports::UsageLedger;
    use shared::domain::{EventId, Feature, Period, Plan, UsageEvent};
    use shared::testing::{FixedClock, MemoryStack};
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2026-06-15 12:00 UTC);

    /// The SQS fixture with two well-formed events of `license` and a poison message.
    fn batch(license: &shared::domain::LicenseId) -> LambdaEvent<SqsEvent> {
        let body = |id: &str, quantity: u64| {
            let event = UsageEvent {
                license_id: license.clone(),
                event_id: EventId::parse(id).expect("id"),
                feature: Feature::parse("workflows").expect("feature"),
                quantity,
                occurred_at: datetime!(2026-06-15 11:00 UTC),
                metadata: None,
            };
            // The body is a JSON string inside the fixture's JSON.
            serde_json::to_string(&serde_json::to_string(&event).expect("event")).expect("body")
        };
        let text = include_str!("../../../tests/fixtures/sqs/usage_batch.json")
            .replace("\"__BODY_1__\"", &body("e-1", 3))
            .replace("\"__BODY_2__\"", &body("e-2", 4));
        LambdaEvent::new(
            serde_json::from_str(&text).expect("an SQS event"),
            lambda_runtime::Context::default(),
        )
    }

    async fn used(stack: &MemoryStack, license: &shared::domain::LicenseId) -> u64 {
        let feature = Feature::parse("workflows").expect("feature");
        stack
            .store
            .usage(license, &[feature], Period::containing(NOW))
            .await
            .expect("usage")[0]
            .0
    }

    #[tokio::test]
    async fn a_batch_is_counted_once_and_only_the_poison_message_is_retried() {
        // Arrange
        let stack = MemoryStack::new();
        let issued = stack.issue(Plan::Professional, NOW, |_| {}).await;
        // Act: the batch, then the same batch redelivered.
        let first = handle(&stack.store, &FixedClock(NOW), 4, batch(&issued.license.id))
            .await
            .expect("never Err");
        let again = handle(&stack.store, &FixedClock(NOW), 4, batch(&issued.license.id))
            .await
            .expect("never Err");
        // Assert
        let failed = |r: &SqsBatchResponse| -> Vec<String> {
            r.batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect()
        };
        assert_eq!(failed(&first), ["m-poison"]);
        assert_eq!(failed(&again), ["m-poison"]);
        assert_eq!(used(&stack, &issued.license.id).await, 7, "3 + 4, once");
    }
}
