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
