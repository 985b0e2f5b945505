//! The simulated clock. Every node reads time through it; its offset from the host clock is
//! part of the Region's replicated state, so shifting it (admin `AdvanceClock`) moves the whole
//! Region, survives restarts and is seen by every node once applied.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
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

/// A clock: the host clock plus the Region's offset.
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    offset_ms: Arc<AtomicI64>,
}

impl SimClock {
    /// A clock with no offset.
    pub fn new() -> SimClock {
        SimClock::default()
    }

    /// Milliseconds since the epoch, as the Region sees them.
    pub fn now_ms(&self) -> i64 {
        host_now_ms() + self.offset_ms.load(Ordering::Acquire)
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
    fn offset_moves_time_forward() {
        let c = SimClock::new();
        let before = c.now_ms();
        c.set_offset_ms(7 * 86_400_000);
        assert!(c.now_ms() >= before + 7 * 86_400_000);
    }
}
