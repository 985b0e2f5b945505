//! The simulated clock. Every node reads time through it; its offset from the host clock is
//! part of the Region's replicated state, so shifting it (admin `AdvanceClock`) moves the whole
//! Region, survives restarts and is seen by every node once applied.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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
    fn offset_moves_time_forward() {
        let c = SimClock::new();
        let before = c.now_ms();
        c.set_offset_ms(7 * 86_400_000);
        assert!(c.now_ms() >= before + 7 * 86_400_000);
    }
}
