//! The usage buffer: events are written to disk (one checksummed file per accepted request,
//! atomically) before the agent acknowledges them, forwarded to `POST /api/usage` in batches of
//! at most 100, and removed only once the server has accepted (or conclusively rejected) them.
//! A crash at any point loses nothing; a resend after a crash is harmless because the server
//! deduplicates by event id.
//!
//! The buffer is bounded (`NECTAR_USAGE_BUFFER_MAX_EVENTS`): while the server cannot be reached,
//! whatever calls the local API must not be able to fill the disk. The number of waiting events is
//! kept in memory (counted from the files at open, then updated by every append and removal), so
//! the cap costs nothing per request; an append reserves its room under the same lock that checks
//! it, so concurrent requests cannot together pass the cap.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nectar_client::LicenseClient;
use nectar_client::persist::{self, PersistError};
use nectar_client::server::{NetError, UsageEvent, UsageOutcome};
use serde::{Deserialize, Serialize};

/// The server accepts at most this many events per request.
pub const MAX_BATCH: usize = 100;
/// Most events the buffer holds unless configured otherwise.
pub const DEFAULT_MAX_EVENTS: usize = crate::config::DEFAULT_USAGE_BUFFER_MAX_EVENTS;

/// One accepted `POST /v1/usage` request, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Batch {
    events: Vec<UsageEvent>,
}

/// Events waiting for delivery, in `<state dir>/usage/`.
#[derive(Debug)]
pub struct UsageBuffer {
    dir: PathBuf,
    flushing: tokio::sync::Mutex<()>,
    counts: Mutex<Counts>,
    max_events: usize,
}

/// Events per batch file, and their total. Kept per file (not just a total) so that removing or
/// rewriting a file adjusts the total by exactly what that file held, whoever wrote it.
#[derive(Debug, Default)]
struct Counts {
    files: HashMap<PathBuf, usize>,
    total: usize,
}

impl Counts {
    /// Records that `path` now holds `events` (0: the file is gone).
    fn set(&mut self, path: &Path, events: usize) {
        let before = if events == 0 {
            self.files.remove(path)
        } else {
            self.files.insert(path.to_path_buf(), events)
        };
        self.total = self
            .total
            .saturating_sub(before.unwrap_or(0))
            .saturating_add(events);
    }
}

/// Why events were not appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// They would take the buffer past its cap; nothing was written.
    #[error(
        "the usage buffer holds {pending} of at most {capacity} events; {incoming} more do not fit"
    )]
    Full {
        /// Events waiting now.
        pending: usize,
        /// The cap.
        capacity: usize,
        /// Events refused.
        incoming: usize,
    },
    /// Writing failed; nothing was stored.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// What one flush achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Events the server accepted (counted exactly once).
    pub delivered: usize,
    /// Events the server refused for good (not entitled, invalid); dropped with a warning.
    pub dropped: usize,
    /// Events still waiting.
    pub remaining: usize,
}

impl UsageBuffer {
    /// Opens (creating) the buffer under `state_dir`, holding at most [`DEFAULT_MAX_EVENTS`].
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        Self::open_with_capacity(state_dir, DEFAULT_MAX_EVENTS)
    }

    /// Opens (creating) the buffer under `state_dir`, holding at most `max_events` events. The
    /// waiting events are counted once, here. A buffer left over a lower cap by a previous run
    /// keeps its events (they are delivered); it only takes new ones once below the cap.
    pub fn open_with_capacity(state_dir: &Path, max_events: usize) -> std::io::Result<Self> {
        let dir = state_dir.join("usage");
        fs::create_dir_all(&dir)?;
        let buffer = Self {
            dir,
            flushing: tokio::sync::Mutex::new(()),
            counts: Mutex::new(Counts::default()),
            max_events,
        };
        let found = buffer.batches();
        {
            let mut counts = buffer.counts();
            for (path, batch) in &found {
                counts.set(path, batch.events.len());
            }
        }
        Ok(buffer)
    }

    /// The counts. A panic elsewhere while holding the lock must not stop usage intake: the
    /// counts are then at worst off until the next start recounts them.
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Most events the buffer holds.
    pub fn capacity(&self) -> usize {
        self.max_events
    }

    /// Persists `events` durably; only then may the caller acknowledge them. Refused whole, with
    /// nothing written, when they would take the buffer past its cap.
    pub fn append(&self, events: Vec<UsageEvent>) -> Result<(), AppendError> {
        let incoming = events.len();
        // UUIDv7 names sort by creation time, so delivery roughly follows arrival.
        let path = self
            .dir
            .join(format!("{}.json", uuid::Uuid::now_v7().simple()));
        {
            // Check and reserve in one step: a concurrent append sees this reservation. The file
            // is counted before it exists, so a flush that delivers and removes it right after it
            // appears finds it counted and uncounts it exactly once.
            let mut counts = self.counts();
            if incoming > self.max_events.saturating_sub(counts.total) {
                return Err(AppendError::Full {
                    pending: counts.total,
                    capacity: self.max_events,
                    incoming,
                });
            }
            counts.set(&path, incoming);
        }
        // Written outside the lock: appends do not wait for each other's fsync.
        let saved = persist::save(&path, &Batch { events });
        if saved.is_err() {
            // The temp file never became `path`: release the room.
            self.counts().set(&path, 0);
        }
        Ok(saved?)
    }

    /// Every waiting batch, oldest first. A damaged file is moved aside (never deleted, never
    /// sent) with a warning.
    fn batches(&self) -> Vec<(PathBuf, Batch)> {
        let mut paths: Vec<PathBuf> = match fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.starts_with('.'))
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the usage buffer");
                return Vec::new();
            }
        };
        paths.sort();
        paths
            .into_iter()
            .filter_map(|p| match persist::load::<Batch>(&p) {
                Ok(Some(b)) => Some((p, b)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "usage batch damaged; moved aside, not sent");
                    let _ = fs::rename(&p, p.with_extension("corrupt"));
                    self.counts().set(&p, 0);
                    None
                }
            })
            .collect()
    }

    /// Events waiting for delivery (including those of an append being written), from memory.
    pub fn pending(&self) -> usize {
        self.counts().total
    }

    /// Sends everything waiting, 100 events per request, until the buffer is empty or the server
    /// cannot take more now. One flush runs at a time.
    pub async fn flush(&self, client: &LicenseClient) -> Result<FlushReport, NetError> {
        let _one_at_a_time = self.flushing.lock().await;
        let mut report = FlushReport::default();
        loop {
            let batches = self.batches();
            let events: Vec<UsageEvent> = batches
                .iter()
                .flat_map(|(_, b)| b.events.iter().cloned())
                .take(MAX_BATCH)
                .collect();
            if events.is_empty() {
                return Ok(report);
            }
            let sent = events.len();
            let done: HashSet<String> = match client.submit_usage(events).await? {
                UsageOutcome::Statuses(statuses) => statuses
                    .into_iter()
                    .filter_map(|s| match s.status.as_str() {
                        "accepted" => {
                            report.delivered += 1;
                            Some(s.event_id)
                        }
                        "rejected" => {
                            tracing::warn!(event_id = %s.event_id, code = ?s.code, "usage event rejected by the server; dropped");
                            report.dropped += 1;
                            Some(s.event_id)
                        }
                        // `failed`: not queued; kept and sent again.
                        _ => None,
                    })
                    .collect(),
                UsageOutcome::Invalid(ids) => {
                    // Nothing was accepted; the named events never will be. The rest go again.
                    for id in &ids {
                        tracing::warn!(event_id = %id, "usage event invalid for the server; dropped");
                    }
                    report.dropped += ids.len();
                    ids.into_iter().collect()
                }
            };
            self.remove(&batches, &done)?;
            if done.len() < sent {
                // Some were not queued (503): stop here and let the caller back off.
                report.remaining = self.pending();
                return Ok(report);
            }
        }
    }

    fn remove(&self, batches: &[(PathBuf, Batch)], done: &HashSet<String>) -> Result<(), NetError> {
        for (path, batch) in batches {
            let rest: Vec<UsageEvent> = batch
                .events
                .iter()
                .filter(|e| !done.contains(&e.event_id))
                .cloned()
                .collect();
            if rest.len() == batch.events.len() {
                continue;
            }
            let left = rest.len();
            let result = if rest.is_empty() {
                fs::remove_file(path).map_err(|e| e.to_string())
            } else {
                persist::save(path, &Batch { events: rest }).map_err(|e| e.to_string())
            };
            match result {
                Ok(()) => self.counts().set(path, left),
                // Delivered events stay in the file (and counted) and are sent again: harmless
                // (deduplicated).
                Err(e) => tracing::warn!(error = %e, "could not update the usage buffer"),
            }
        }
        Ok(())
    }

    /// Forwards in the background: after `wake` or every `every`, with backoff while the server
    /// cannot be reached.
    pub async fn forward_forever(
        &self,
        client: &LicenseClient,
        wake: &tokio::sync::Notify,
        every: Duration,
    ) {
        let mut failures = 0u32;
        loop {
            let wait = if failures == 0 {
                every
            } else {
                Duration::from_secs(5u64 << failures.min(6)).min(Duration::from_secs(300))
            };
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            match self.flush(client).await {
                Ok(r) if r.remaining == 0 => failures = 0,
                Ok(r) => {
                    failures = failures.saturating_add(1);
                    tracing::info!(remaining = r.remaining, "usage partly delivered; retrying");
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, pending = self.pending(), "usage not delivered; retrying");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nectar_client::testing::FakeServer;
    use nectar_client::{LicenseServer, ManualClock};

    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nectar-agent-usage-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn event(id: &str, quantity: u64) -> UsageEvent {
        UsageEvent {
            event_id: id.into(),
            feature: "workflows".into(),
            quantity,
            occurred_at: None,
            metadata: None,
        }
    }

    fn client(server: &Arc<FakeServer>, dir: &Path, clock: &ManualClock) -> LicenseClient {
        let config = server.client_config(dir);
        LicenseClient::new(
            config,
            Arc::new(clock.clone()),
            server.clone() as Arc<dyn LicenseServer>,
        )
        .expect("client")
    }

    #[tokio::test]
    async fn the_usage_buffer_survives_a_restart_and_delivers_every_event_once() {
        // Arrange: events buffered while the server is unreachable.
        let clock = ManualClock::at(1_780_272_000);
        let server = Arc::new(FakeServer::new(Arc::new(clock.clone())));
        let dir = temp_dir();
        server.set_reachable(false);
        {
            let buffer = UsageBuffer::open(&dir).expect("open");
            buffer
                .append((0..150).map(|i| event(&format!("e{i}"), 2)).collect())
                .expect("append");
            buffer.append(vec![event("late", 5)]).expect("append");
            assert!(buffer.flush(&client(&server, &dir, &clock)).await.is_err());
            assert_eq!(buffer.pending(), 151);
        } // the agent stops
        // Act: a new process over the same directory, server reachable again.
        server.set_reachable(true);
        let buffer = UsageBuffer::open(&dir).expect("reopen");
        let report = buffer
            .flush(&client(&server, &dir, &clock))
            .await
            .expect("flush");
        // Assert
        assert_eq!(report.delivered, 151);
        assert_eq!(buffer.pending(), 0);
        assert_eq!(server.usage_calls(), 2, "100 + 51");
        let counted = server.counted_usage();
        assert_eq!(counted.len(), 151);
        assert_eq!(counted.values().sum::<u64>(), 305);
    }

    #[tokio::test]
    async fn a_resend_after_a_crash_between_delivery_and_removal_counts_once() {
        let clock = ManualClock::at(1_780_272_000);
        let server = Arc::new(FakeServer::new(Arc::new(clock.clone())));
        let dir = temp_dir();
        let buffer = UsageBuffer::open(&dir).expect("open");
        buffer
            .append(vec![event("a", 1), event("b", 2)])
            .expect("append");
        let saved: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir.join("usage"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| (e.path(), fs::read(e.path()).expect("read")))
            .collect();
        buffer
            .flush(&client(&server, &dir, &clock))
            .await
            .expect("flush");
        // The crash: the files come back as if the removal never happened.
        for (path, bytes) in saved {
            fs::write(path, bytes).expect("restore");
        }
        buffer
            .flush(&client(&server, &dir, &clock))
            .await
            .expect("flush");
        assert_eq!(buffer.pending(), 0);
        assert_eq!(server.counted_usage().values().sum::<u64>(), 3);
    }

    #[test]
    fn a_damaged_batch_file_is_set_aside_not_sent() {
        let dir = temp_dir();
        let buffer = UsageBuffer::open(&dir).expect("open");
        buffer.append(vec![event("a", 1)]).expect("append");
        let file = fs::read_dir(dir.join("usage"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .next()
            .expect("file");
        fs::write(
            &file,
            b"{\"format\":\"nectar-sealed/1\",\"sha256\":\"00\",\"payload\":\"{}\"}",
        )
        .expect("damage");
        // Found when the buffer is (re)opened and counted from the files.
        let reopened = UsageBuffer::open(&dir).expect("reopen");
        assert_eq!(reopened.pending(), 0);
        assert!(file.with_extension("corrupt").exists());
        assert!(!file.exists());
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir.join("usage"))
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect()
    }

    #[test]
    fn the_pending_count_follows_appends_and_is_recounted_from_the_files_at_open() {
        let dir = temp_dir();
        let buffer = UsageBuffer::open(&dir).expect("open");
        buffer
            .append(vec![event("a", 1), event("b", 1)])
            .expect("append");
        buffer.append(vec![event("c", 1)]).expect("append");
        assert_eq!(buffer.pending(), 3);
        // Counted from memory: a file added behind the buffer's back is only seen at open.
        let stray = files_in(&dir)[0].clone();
        let copied = persist::load::<Batch>(&stray)
            .expect("readable")
            .expect("present")
            .events
            .len();
        fs::copy(&stray, dir.join("usage").join("0stray.json")).expect("copy");
        assert_eq!(buffer.pending(), 3);
        assert_eq!(
            UsageBuffer::open(&dir).expect("reopen").pending(),
            3 + copied
        );
    }

    #[test]
    fn an_append_past_the_cap_is_refused_whole_and_writes_nothing() {
        let dir = temp_dir();
        let buffer = UsageBuffer::open_with_capacity(&dir, 10).expect("open");
        buffer
            .append((0..6).map(|i| event(&format!("a{i}"), 1)).collect())
            .expect("fits");
        let refused = buffer
            .append((0..5).map(|i| event(&format!("b{i}"), 1)).collect())
            .expect_err("6 + 5 > 10");
        assert!(
            matches!(
                refused,
                AppendError::Full {
                    pending: 6,
                    capacity: 10,
                    incoming: 5
                }
            ),
            "{refused}"
        );
        assert_eq!(buffer.pending(), 6);
        assert_eq!(
            files_in(&dir).len(),
            1,
            "nothing written for the refused append"
        );
        buffer
            .append((0..4).map(|i| event(&format!("c{i}"), 1)).collect())
            .expect("exactly fills");
        assert_eq!(buffer.pending(), 10);
        assert!(buffer.append(vec![event("d", 1)]).is_err());
        // A reopened buffer enforces the same cap from the counted files.
        let reopened = UsageBuffer::open_with_capacity(&dir, 10).expect("reopen");
        assert!(matches!(
            reopened.append(vec![event("e", 1)]),
            Err(AppendError::Full { pending: 10, .. })
        ));
    }

    #[test]
    fn concurrent_appends_near_the_cap_never_exceed_it() {
        let dir = temp_dir();
        let buffer = Arc::new(UsageBuffer::open_with_capacity(&dir, 50).expect("open"));
        let barrier = Arc::new(std::sync::Barrier::new(24));
        let threads: Vec<_> = (0..24)
            .map(|t| {
                let (buffer, barrier) = (buffer.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    buffer
                        .append((0..5).map(|i| event(&format!("t{t}-{i}"), 1)).collect())
                        .is_ok()
                })
            })
            .collect();
        let accepted = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .filter(|ok| *ok)
            .count();
        assert_eq!(accepted, 10, "exactly 50 / 5 appends fit");
        assert_eq!(buffer.pending(), 50);
        let on_disk: usize = files_in(&dir)
            .iter()
            .filter_map(|p| persist::load::<Batch>(p).ok().flatten())
            .map(|b| b.events.len())
            .sum();
        assert_eq!(on_disk, 50);
    }
}
