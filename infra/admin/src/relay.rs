//! `relay-sqs`: local stand-in for the SQS → Lambda event source mapping, which neither the
//! emulator nor `cargo lambda watch` provides. It mirrors the AWS semantics the processor relies
//! on: batches of up to 10 messages held under a visibility timeout, one invocation per batch
//! through the Lambda Invoke API, `ReportBatchItemFailures` (only successes are deleted; failures
//! reappear after the timeout), and redrive to the DLQ after `maxReceiveCount` (done by the queue).

use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};

/// Relay settings.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The queue to drain.
    pub queue_url: String,
    /// The function to invoke, as `cargo lambda watch` names it.
    pub function: String,
    /// Base URL of the Lambda Invoke API (`cargo lambda watch`).
    pub invoke_url: String,
    /// Messages per invocation (collected over several receives of at most 10).
    pub batch_size: i32,
    /// How long a received message stays hidden before SQS redelivers it.
    pub visibility_timeout: i32,
}

/// The event a batch of SQS messages becomes, shaped as Lambda delivers it.
pub fn to_event(messages: &[Message], queue_arn: &str, region: &str) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(queue_arn.to_owned());
            record.aws_region = Some(region.to_owned());
            record.attributes = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            record
        })
        .collect();
    event
}

/// Receipt handles to delete after an invocation: every message but the reported failures. An
/// invocation that failed as a whole (`None`) deletes nothing, as Lambda does.
pub fn to_delete<'a>(
    messages: &'a [Message],
    response: Option<&SqsBatchResponse>,
) -> Vec<&'a Message> {
    let Some(response) = response else {
        return Vec::new();
    };
    messages
        .iter()
        .filter(|m| {
            !response
                .batch_item_failures
                .iter()
                .any(|f| Some(f.item_identifier.as_str()) == m.message_id.as_deref())
        })
        .collect()
}

impl Relay {
    /// One batch: receives (10 at most per call, as SQS allows) until `batch_size` messages or the
    /// one-second batching window is over, like `MaximumBatchingWindowInSeconds: 1`.
    async fn collect(&self, sqs: &aws_sdk_sqs::Client) -> Vec<Message> {
        let window = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut batch: Vec<Message> = Vec::new();
        while batch.len() < self.batch_size.max(1) as usize {
            let want = (self.batch_size as usize - batch.len()).clamp(1, 10) as i32;
            let received = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(want)
                .visibility_timeout(self.visibility_timeout)
                .wait_time_seconds(if batch.is_empty() { 1 } else { 0 })
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await;
            match received {
                Ok(out) => {
                    let got = out.messages.unwrap_or_default();
                    let empty = got.is_empty();
                    batch.extend(got);
                    if (empty && !batch.is_empty()) || tokio::time::Instant::now() >= window {
                        break;
                    }
                    if empty {
                        return batch;
                    }
                }
                Err(e) => {
                    eprintln!(
                        "relay: receive failed: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        batch
    }

    /// Relays until stopped (or, with `idle_exit`, until the queue stays empty that long).
    pub async fn run(
        &self,
        sqs: &aws_sdk_sqs::Client,
        region: &str,
        idle_exit: Option<Duration>,
    ) -> Result<()> {
        let http = reqwest::Client::new();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .context("reading the queue arn")?
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .context("queue arn")?;
        let endpoint = format!(
            "{}/2015-03-31/functions/{}/invocations",
            self.invoke_url.trim_end_matches('/'),
            self.function
        );
        let mut idle_since = tokio::time::Instant::now();
        loop {
            let messages = self.collect(sqs).await;
            if messages.is_empty() {
                if idle_exit.is_some_and(|d| idle_since.elapsed() >= d) {
                    return Ok(());
                }
                continue;
            }
            idle_since = tokio::time::Instant::now();
            let event = to_event(&messages, &arn, region);
            let response = match http.post(&endpoint).json(&event).send().await {
                Ok(r) if r.status().is_success() => r.json::<SqsBatchResponse>().await.ok(),
                Ok(r) => {
                    eprintln!("relay: {} answered {}", self.function, r.status());
                    None
                }
                Err(e) => {
                    eprintln!("relay: invoking {} failed: {e}", self.function);
                    None
                }
            };
            let done = to_delete(&messages, response.as_ref());
            if done.is_empty() {
                continue;
            }
            let entries: Vec<DeleteMessageBatchRequestEntry> = done
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .set_receipt_handle(m.receipt_handle.clone())
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                // Undeleted messages come back after the timeout and are deduplicated then.
                eprintln!(
                    "relay: delete failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::BatchItemFailure;

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("rh-{id}"))
            .body(format!("{{\"n\":\"{id}\"}}"))
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build()
    }

    #[test]
    fn a_batch_becomes_an_sqs_event_as_lambda_delivers_it() {
        let event = to_event(
            &[message("a"), message("b")],
            "arn:aws:sqs:us-east-1:1:q",
            "us-east-1",
        );
        let json = serde_json::to_value(&event).expect("json");
        let first = &json["Records"][0];
        assert_eq!(first["messageId"], "a");
        assert_eq!(first["receiptHandle"], "rh-a");
        assert_eq!(first["eventSource"], "aws:sqs");
        assert_eq!(first["eventSourceARN"], "arn:aws:sqs:us-east-1:1:q");
        assert_eq!(first["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(json["Records"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn only_messages_not_reported_as_failures_are_deleted() {
        let batch = [message("a"), message("b"), message("c")];
        let mut response = SqsBatchResponse::default();
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = "b".into();
        response.batch_item_failures = vec![failure];
        let deleted: Vec<_> = to_delete(&batch, Some(&response))
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect();
        assert_eq!(deleted, ["a", "c"]);
    }

    #[test]
    fn a_failed_invocation_deletes_nothing() {
        let batch = [message("a")];
        assert!(to_delete(&batch, None).is_empty());
        assert_eq!(
            to_delete(&batch, Some(&SqsBatchResponse::default())).len(),
            1
        );
    }
}
