//! The queue and topic in memory: [`MemoryQueue`] keeps what was queued for a test to drain (as
//! the usage processor would receive it), [`MemoryPublisher`] keeps published notices as the JSON
//! a subscriber receives; both fail on demand, as SQS and SNS sometimes do.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::UsageEvent;
use crate::domain::lifecycle::Notice;
use crate::domain::ports::{EventPublisher, PublishError, QueueError, UsageQueue};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Queued {
    events: Vec<UsageEvent>,
    /// While set, every send fails (a missing queue, an outage).
    unavailable: bool,
    /// The next this many events fail, then sends succeed again.
    fail_next: usize,
}

/// A usage queue that keeps what it was given, in order.
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    inner: Arc<Mutex<Queued>>,
}

impl MemoryQueue {
    /// An empty, working queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything queued so far (removed from the queue), in order.
    pub fn drain(&self) -> Vec<UsageEvent> {
        std::mem::take(&mut lock(&self.inner).events)
    }

    /// While `true`, every event sent fails and nothing is queued.
    pub fn set_unavailable(&self, unavailable: bool) {
        lock(&self.inner).unavailable = unavailable;
    }

    /// The next `n` events sent fail (each on its own; the others of a call are queued).
    pub fn fail_next(&self, n: usize) {
        lock(&self.inner).fail_next = n;
    }
}

#[async_trait]
impl UsageQueue for MemoryQueue {
    async fn enqueue(&self, events: &[UsageEvent]) -> Vec<Result<(), QueueError>> {
        let mut q = lock(&self.inner);
        events
            .iter()
            .map(|e| {
                if q.unavailable {
                    return Err(QueueError::Unavailable(
                        "queue unavailable (injected)".into(),
                    ));
                }
                if q.fail_next > 0 {
                    q.fail_next -= 1;
                    return Err(QueueError::Unavailable("send failed (injected)".into()));
                }
                q.events.push(e.clone());
                Ok(())
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Published {
    notices: Vec<serde_json::Value>,
    fail_next: usize,
}

/// An events topic that keeps every published notice, as the JSON body SNS would deliver.
#[derive(Debug, Clone, Default)]
pub struct MemoryPublisher {
    inner: Arc<Mutex<Published>>,
}

impl MemoryPublisher {
    /// An empty, working topic.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every notice published so far (removed), in order: the message bodies a subscriber gets.
    pub fn drain(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut lock(&self.inner).notices)
    }

    /// The next `n` publishes fail without publishing.
    pub fn fail_next(&self, n: usize) {
        lock(&self.inner).fail_next = n;
    }
}

#[async_trait]
impl EventPublisher for MemoryPublisher {
    async fn publish(&self, notice: &Notice) -> Result<(), PublishError> {
        // The same body the SNS adapter sends.
        let body = serde_json::to_value(notice).map_err(|e| PublishError(e.into()))?;
        let mut p = lock(&self.inner);
        if p.fail_next > 0 {
            p.fail_next -= 1;
            return Err(PublishError("publish failed (injected)".into()));
        }
        p.notices.push(body);
        Ok(())
    }
}
