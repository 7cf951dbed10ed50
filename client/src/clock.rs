//! Time as a port: every decision the client takes reads the clock through [`Clock`], so tests and
//! benchmarks drive expiry, grace and tampering deterministically.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// Wall-clock time in Unix seconds. Implementations must be cheap: `check` calls it every time.
pub trait Clock: Send + Sync {
    /// Now, in Unix seconds (UTC).
    fn now(&self) -> i64;
}

/// The machine's wall clock: the one production uses, and the one tampering detection watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// A clock tests set and advance by hand; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `unix` seconds.
    pub fn at(unix: i64) -> Self {
        Self(Arc::new(AtomicI64::new(unix)))
    }

    /// A clock showing the real time now (then only moving when told to).
    pub fn starting_now() -> Self {
        Self::at(SystemClock.now())
    }

    /// Sets the time (backwards too: that is how tests roll the clock back).
    pub fn set(&self, unix: i64) {
        self.0.store(unix, Ordering::SeqCst);
    }

    /// Moves the time by `secs` (negative: backwards).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Wall time that follows tokio's clock from a fixed start: under `tokio::time::pause` the
/// runtime's auto-advance moves it, so a simulated hour of background heartbeats takes
/// milliseconds while timers and the clock the client reads stay consistent.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock showing `unix` seconds now and moving with tokio's time.
    pub fn starting_at(unix: i64) -> Self {
        Self {
            base: unix,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> i64 {
        let elapsed = i64::try_from(self.start.elapsed().as_secs()).unwrap_or(i64::MAX);
        self.base.saturating_add(elapsed)
    }
}

/// Formats Unix seconds as RFC 3339 (UTC); out-of-range values yield `None`.
pub fn rfc3339(unix: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::at(1_000);
        let other = clock.clone();
        clock.advance(60);
        assert_eq!(other.now(), 1_060);
        clock.set(10);
        assert_eq!(other.now(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_follows_paused_time() {
        let clock = TokioClock::starting_at(5_000);
        tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
        assert_eq!(clock.now(), 8_600);
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
    }
}
