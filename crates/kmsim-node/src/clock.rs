//! The simulated clock. Every node reads time through it; its offset from the host clock is
//! part of the Region's replicated state, so shifting it (admin `AdvanceClock`) moves the whole
//! Region, survives restarts and is seen by every node once applied.
//!
//! On top of the Region's offset a node may carry a *skew* (admin `SetClockSkew`, a chaos
//! fault): a signed offset, optionally growing at a drift rate, that only this node reads, that
//! no command replicates and no restart keeps, and that is taken back by setting it to zero.
//! Since every date the state stores is decided by the proposing node and travels inside its
//! command, a skew never makes the Region's replicas disagree: it changes the dates this node
//! proposes, what its lifecycle task finds due while it leads, `aws:CurrentTime` in the calls it
//! answers and the times of the audit records it writes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest single `AdvanceClock` step: ten years (of 366 days). Enough for any deletion
/// window, rotation period or import expiry a test needs, in one call.
pub const MAX_CLOCK_STEP_MS: i64 = 10 * 366 * 86_400_000;

/// The largest offset the clock may reach: a hundred years (of 366 days) ahead of the host,
/// so that host time plus offset never overflows, nor do the dates computed from it.
pub const MAX_CLOCK_OFFSET_MS: i64 = kmsim_core::state::MAX_CLOCK_OFFSET_MS;

/// The offset after moving `current` forward by `step_ms`, or why that is refused (a step
/// that is not positive or larger than [`MAX_CLOCK_STEP_MS`], or an offset beyond
/// [`MAX_CLOCK_OFFSET_MS`]). Checked arithmetic: no value wraps.
pub fn advanced_offset(current: i64, step_ms: i64) -> Result<i64, String> {
    if step_ms <= 0 {
        return Err("millis must be greater than 0".into());
    }
    if step_ms > MAX_CLOCK_STEP_MS {
        return Err(format!(
            "millis must be at most {MAX_CLOCK_STEP_MS} (ten years) per call, got {step_ms}"
        ));
    }
    match current.checked_add(step_ms) {
        Some(o) if o <= MAX_CLOCK_OFFSET_MS => Ok(o),
        _ => Err(format!(
            "the clock offset may not exceed {MAX_CLOCK_OFFSET_MS} ms (a hundred years); it is {current} ms now"
        )),
    }
}

/// The largest skew a node may carry, either way: ten years, like one AdvanceClock step.
pub const MAX_CLOCK_SKEW_MS: i64 = MAX_CLOCK_STEP_MS;

/// The largest drift rate: a simulated day per real second, either way (a skew fault of a
/// two-minute experiment can so cover any deletion window).
pub const MAX_CLOCK_DRIFT_MS_PER_S: i64 = 86_400_000;

/// A node-local clock skew: `offset_ms` from the moment it was set, plus `drift_ms_per_s` for
/// every host second since then; the total is held within [`MAX_CLOCK_SKEW_MS`] either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockSkew {
    /// The skew when it was set, in ms (negative: this node runs behind its Region).
    pub offset_ms: i64,
    /// How much the skew grows per host second, in ms (negative: it shrinks).
    pub drift_ms_per_s: i64,
    /// Host time when it was set, in ms.
    pub since_host_ms: i64,
}

impl ClockSkew {
    /// The skew, in ms, at host time `host_ms`.
    pub fn at(&self, host_ms: i64) -> i64 {
        let elapsed = host_ms.saturating_sub(self.since_host_ms).max(0);
        let drift = (i128::from(elapsed) * i128::from(self.drift_ms_per_s) / 1000)
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        self.offset_ms
            .saturating_add(drift)
            .clamp(-MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS)
    }

    /// A skew starting now, or why it is refused (beyond the bounds).
    pub fn new(offset_ms: i64, drift_ms_per_s: i64) -> Result<ClockSkew, String> {
        if offset_ms.abs() > MAX_CLOCK_SKEW_MS {
            return Err(format!(
                "skew_ms must be within ±{MAX_CLOCK_SKEW_MS} (ten years), got {offset_ms}"
            ));
        }
        if drift_ms_per_s.abs() > MAX_CLOCK_DRIFT_MS_PER_S {
            return Err(format!(
                "drift_ms_per_s must be within ±{MAX_CLOCK_DRIFT_MS_PER_S} (a day per second), got {drift_ms_per_s}"
            ));
        }
        Ok(ClockSkew {
            offset_ms,
            drift_ms_per_s,
            since_host_ms: host_now_ms(),
        })
    }

    /// True when the skew changes nothing.
    pub fn is_none(&self) -> bool {
        self.offset_ms == 0 && self.drift_ms_per_s == 0
    }
}

/// A clock: the host clock plus the Region's offset, plus this node's skew.
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    offset_ms: Arc<AtomicI64>,
    skew: Arc<RwLock<ClockSkew>>,
}

impl SimClock {
    /// A clock with no offset.
    pub fn new() -> SimClock {
        SimClock::default()
    }

    /// Milliseconds since the epoch, as the Region sees them (with this node's skew).
    pub fn now_ms(&self) -> i64 {
        let host = host_now_ms();
        let skew = self
            .skew
            .read()
            .expect("invariant: lock not poisoned")
            .at(host);
        host + self.offset_ms.load(Ordering::Acquire) + skew
    }

    /// The host's own time in ms, with neither the Region's offset nor this node's skew (SigV4
    /// accepts a request signed with either this or [`SimClock::now_ms`]).
    pub fn host_ms(&self) -> i64 {
        host_now_ms()
    }

    /// This node's skew (zero when none is set).
    pub fn skew(&self) -> ClockSkew {
        *self.skew.read().expect("invariant: lock not poisoned")
    }

    /// This node's skew now, in ms.
    pub fn skew_ms(&self) -> i64 {
        self.skew().at(host_now_ms())
    }

    /// Sets this node's skew (a zero one takes it back: the node reads its Region's time again).
    pub fn set_skew(&self, skew: ClockSkew) {
        *self.skew.write().expect("invariant: lock not poisoned") = skew;
    }

    /// Seconds since the epoch as a float (AWS JSON timestamps).
    pub fn now_secs(&self) -> f64 {
        self.now_ms() as f64 / 1000.0
    }

    /// The current offset from the host clock.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Acquire)
    }

    /// Called by the state machine when an applied command changes the offset.
    pub fn set_offset_ms(&self, offset: i64) {
        self.offset_ms.store(offset, Ordering::Release);
    }
}

/// The host's wall clock in ms. The only place node code reads the system time.
fn host_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_steps_are_bounded_and_never_wrap() {
        assert_eq!(advanced_offset(0, 1), Ok(1));
        assert_eq!(
            advanced_offset(5, MAX_CLOCK_STEP_MS),
            Ok(5 + MAX_CLOCK_STEP_MS)
        );
        assert!(advanced_offset(0, 0).is_err());
        assert!(advanced_offset(0, -1).is_err());
        assert!(advanced_offset(0, MAX_CLOCK_STEP_MS + 1).is_err());
        assert!(advanced_offset(0, i64::MAX).is_err());
        assert!(advanced_offset(i64::MAX, 1).is_err());
        assert!(advanced_offset(MAX_CLOCK_OFFSET_MS, 1).is_err());
        assert_eq!(
            advanced_offset(MAX_CLOCK_OFFSET_MS - 1, 1),
            Ok(MAX_CLOCK_OFFSET_MS)
        );
    }

    #[test]
    fn a_skew_shifts_and_drifts_this_clock_and_is_taken_back() {
        let c = SimClock::new();
        let before = c.now_ms();
        c.set_skew(ClockSkew::new(-3_600_000, 0).unwrap());
        assert!(c.now_ms() <= before - 3_600_000 + 1_000);
        let s = ClockSkew {
            offset_ms: 1_000,
            drift_ms_per_s: 86_400_000,
            since_host_ms: 0,
        };
        assert_eq!(s.at(0), 1_000);
        assert_eq!(s.at(2_000), 1_000 + 2 * 86_400_000);
        assert_eq!(s.at(i64::MAX), MAX_CLOCK_SKEW_MS, "held within its bound");
        assert!(ClockSkew::new(MAX_CLOCK_SKEW_MS + 1, 0).is_err());
        assert!(ClockSkew::new(0, -MAX_CLOCK_DRIFT_MS_PER_S - 1).is_err());
        c.set_skew(ClockSkew::default());
        assert!(c.now_ms() >= before);
        assert_eq!(c.skew_ms(), 0);
    }

    #[test]
    fn offset_moves_time_forward() {
        let c = SimClock::new();
        let before = c.now_ms();
        c.set_offset_ms(7 * 86_400_000);
        assert!(c.now_ms() >= before + 7 * 86_400_000);
    }
}
