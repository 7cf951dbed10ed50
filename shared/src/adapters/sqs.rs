//! SQS adapter for the usage queue: one event per message (so a poison message fails alone), sent
//! with `SendMessageBatch` in calls of at most 10 entries and 256 KiB (SQS's limits per call).

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::domain::UsageEvent;
use crate::domain::ports::{QueueError, UsageQueue};

/// SQS accepts at most 10 entries per batch call.
const MAX_ENTRIES: usize = 10;
/// SQS accepts at most 256 KiB of message bodies per batch call.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The usage queue.
#[derive(Debug, Clone)]
pub struct SqsUsageQueue {
    client: Client,
    url: String,
}

impl SqsUsageQueue {
    /// Binds `client` to the queue at `url`.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

/// Splits bodies into send calls: at most 10 entries and 256 KiB each, order kept.
pub fn plan_batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && (i - start == MAX_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            batches.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

#[async_trait]
impl UsageQueue for SqsUsageQueue {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn enqueue(&self, events: &[UsageEvent]) -> Vec<Result<(), QueueError>> {
        let bodies: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect();
        let sizes: Vec<usize> = bodies.iter().map(String::len).collect();
        let mut outcome: Vec<Result<(), QueueError>> = vec![Ok(()); events.len()];
        for range in plan_batches(&sizes) {
            let entries: Result<Vec<_>, _> = range
                .clone()
                .map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&bodies[i])
                        .build()
                })
                .collect();
            let sent = match entries {
                Ok(entries) => {
                    self.client
                        .send_message_batch()
                        .queue_url(&self.url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                }
                Err(e) => {
                    for i in range {
                        outcome[i] = Err(QueueError::Unavailable(e.to_string()));
                    }
                    continue;
                }
            };
            match sent {
                Ok(out) => {
                    for failed in out.failed {
                        if let Ok(i) = failed.id.parse::<usize>()
                            && let Some(slot) = outcome.get_mut(i)
                        {
                            *slot = Err(QueueError::Unavailable(failed.code));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "usage queue send failed");
                    for i in range {
                        outcome[i] = Err(QueueError::Unavailable("send failed".into()));
                    }
                }
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let batches = plan_batches(&[100; 25]);
        assert_eq!(batches, vec![0..10, 10..20, 20..25]);
    }

    #[test]
    fn batches_stay_under_256_kib() {
        let big = 100 * 1024;
        let batches = plan_batches(&[big, big, big, 10, big]);
        assert_eq!(batches, vec![0..2, 2..5]);
        assert!(plan_batches(&[]).is_empty());
    }
}
