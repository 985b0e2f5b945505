//! The open loop's schedule (`kmsim bench --rate N`): call `k` of a run is due at `k / N`
//! seconds after the run's start, whatever happened to the calls before it, as in wrk2. The
//! tasks take the calls in order from one shared counter, so at most one call per task is in
//! flight and nothing is queued: a schedule the endpoint cannot keep up with leaves calls
//! started late (their latency, counted from the time they were due, shows it) and, at the end
//! of the run, a backlog of due calls that never started, which is reported instead of being
//! held in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Calls per second accepted by `--rate`: beyond this the schedule's interval is below a
/// microsecond and the generator, not the endpoint, is what gets measured.
pub const MAX_RATE: u64 = 1_000_000;

/// A call that starts more than this after it was due counts as late: the timer's resolution
/// is one millisecond, so a call started on time can already be up to that much behind.
pub const LATE_AFTER: Duration = Duration::from_millis(1);

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The calls of one open-loop run: when each is due, and which is next.
#[derive(Debug)]
pub struct Schedule {
    /// Calls per second, across every task.
    rate: u64,
    /// The index of the next call a task takes.
    next: AtomicU64,
}

impl Schedule {
    /// A schedule of `rate` calls per second (1 to [`MAX_RATE`]).
    pub fn new(rate: u64) -> Result<Schedule, String> {
        if !(1..=MAX_RATE).contains(&rate) {
            return Err(format!(
                "rate {rate} is outside 1..={MAX_RATE} calls per second"
            ));
        }
        Ok(Schedule {
            rate,
            next: AtomicU64::new(0),
        })
    }

    /// Calls per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// When call `k` is due, after the run's start: `k / rate` seconds, rounded down to the
    /// nanosecond, computed from `k` (never by adding intervals, which would drift).
    pub fn due_at(&self, k: u64) -> Duration {
        let nanos = u128::from(k) * NANOS_PER_SEC / u128::from(self.rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many calls are due strictly before `window` has passed since the start: the calls
    /// `k` with `k / rate < window`, i.e. `ceil(window × rate)`.
    pub fn due_within(&self, window: Duration) -> u64 {
        let scaled = window.as_nanos() * u128::from(self.rate);
        u64::try_from(scaled.div_ceil(NANOS_PER_SEC)).unwrap_or(u64::MAX)
    }

    /// Takes the next call: its index. Every index is handed out once.
    pub fn take(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Parses `--rate`: calls per second, a whole number from 1 to [`MAX_RATE`]; `/s` may follow.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let rate: u64 = t
        .parse()
        .map_err(|_| format!("'{s}' is not a rate; use calls per second, e.g. 1000"))?;
    Schedule::new(rate).map(|_| rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_due_at_k_over_rate_without_drift() {
        let s = Schedule::new(3).expect("valid");
        assert_eq!(s.due_at(0), Duration::ZERO);
        assert_eq!(s.due_at(1), Duration::from_nanos(333_333_333));
        assert_eq!(s.due_at(2), Duration::from_nanos(666_666_666));
        assert_eq!(s.due_at(3), Duration::from_secs(1));
        // A million intervals later the schedule is still exact (adding a rounded interval
        // each time would be 1 ms behind by now).
        assert_eq!(s.due_at(3_000_000), Duration::from_secs(1_000_000));
        let fast = Schedule::new(MAX_RATE).expect("valid");
        assert_eq!(fast.due_at(1), Duration::from_micros(1));
        assert_eq!(fast.due_at(u64::MAX), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn due_within_counts_the_calls_due_before_the_window_ends() {
        let s = Schedule::new(1000).expect("valid");
        assert_eq!(s.due_within(Duration::ZERO), 0);
        // Call 0 is due at the start itself.
        assert_eq!(s.due_within(Duration::from_nanos(1)), 1);
        assert_eq!(s.due_within(Duration::from_millis(1)), 1);
        assert_eq!(s.due_within(Duration::from_micros(1001)), 2);
        assert_eq!(s.due_within(Duration::from_secs(10)), 10_000);
        let third = Schedule::new(3).expect("valid");
        assert_eq!(third.due_within(Duration::from_secs(1)), 3);
        assert_eq!(third.due_within(Duration::from_millis(1001)), 4);
        // It agrees with due_at: call k is counted in a window exactly when it is due inside it.
        for rate in [1, 3, 7, 1000, 999_983] {
            let s = Schedule::new(rate).expect("valid");
            for k in [0u64, 1, 2, 10, 12_345] {
                let at = s.due_at(k);
                assert!(s.due_within(at) <= k, "rate {rate} k {k}");
                assert!(
                    s.due_within(at + Duration::from_nanos(1)) > k,
                    "rate {rate} k {k}"
                );
            }
        }
    }

    #[test]
    fn tasks_take_every_call_once_in_order() {
        let s = Schedule::new(10).expect("valid");
        assert_eq!((s.take(), s.take(), s.take()), (0, 1, 2));
        assert_eq!(s.rate(), 10);
    }

    #[test]
    fn rates_parse_as_whole_calls_per_second() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate(" 50/s "), Ok(50));
        assert_eq!(parse_rate("1000000"), Ok(MAX_RATE));
        for bad in ["", "0", "-5", "1.5", "1e3", "1000001", "fast", "10/m"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
