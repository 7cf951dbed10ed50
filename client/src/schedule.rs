//! When to beat next: the server's interval with ±10 % jitter (so a fleet restarted together does
//! not beat in lockstep), and capped exponential backoff after failures.

use std::time::Duration;

/// Heartbeat timing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Interval when the server gives none (it normally does: `heartbeat.intervalSeconds`).
    pub interval: Duration,
    /// Jitter as a fraction of the interval (0.1: ±10 %).
    pub jitter: f64,
    /// First retry delay after a failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3_600),
            jitter: 0.1,
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Schedule {
    /// Delay after a successful beat; `sample` is uniform in `[0, 1)`.
    pub fn after_success(&self, interval: Duration, sample: f64) -> Duration {
        let factor = 1.0 + self.jitter * (2.0 * sample.clamp(0.0, 1.0) - 1.0);
        interval.mul_f64(factor.max(0.0))
    }

    /// Delay after the `failures`-th consecutive failure (1-based); `sample` in `[0, 1)` adds up
    /// to 10 % so retries of many installations spread out.
    pub fn after_failure(&self, failures: u32, sample: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let delay = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_cap);
        delay
            .mul_f64(1.0 + 0.1 * sample.clamp(0.0, 1.0))
            .min(self.backoff_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successful_beats_are_spaced_by_the_interval_within_ten_percent() {
        let s = Schedule::default();
        let hour = Duration::from_secs(3_600);
        assert_eq!(s.after_success(hour, 0.0), Duration::from_secs(3_240));
        assert_eq!(s.after_success(hour, 0.5), hour);
        assert!(s.after_success(hour, 0.999_999) <= Duration::from_secs(3_960));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let s = Schedule::default();
        let delays: Vec<u64> = (1..=8).map(|n| s.after_failure(n, 0.0).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(s.after_failure(1_000, 0.99), Duration::from_secs(900));
    }
}
