//! Capped exponential backoff with jitter, for every retry loop of a node: without jitter,
//! the nodes that lost the same leader (or the same peer Region) retry in lockstep.

use std::time::Duration;

use rand::Rng;

/// The delays of one retry loop: each is drawn uniformly from [d/2, d], where d starts at
/// `min` and doubles up to `max` ("equal jitter": never shorter than half the step, so the
/// cap still bounds the retry rate).
#[derive(Debug, Clone)]
pub struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff starting at `min` and capped at `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            step: min.min(max),
            max,
        }
    }

    /// The next delay to wait.
    pub fn delay(&mut self) -> Duration {
        let d = self.step;
        self.step = (self.step * 2).min(self.max);
        jittered(d)
    }
}

/// `d` with equal jitter: uniform in [d/2, d].
pub fn jittered(d: Duration) -> Duration {
    let half = d / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_within_half_to_full() {
        let mut b = Backoff::new(Duration::from_millis(20), Duration::from_millis(300));
        let steps = [20u64, 40, 80, 160, 300, 300, 300];
        for step in steps {
            let d = b.delay();
            let step = Duration::from_millis(step);
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} outside [{:?}, {step:?}]",
                step / 2
            );
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let draws: std::collections::BTreeSet<Duration> = (0..50)
            .map(|_| jittered(Duration::from_millis(100)))
            .collect();
        assert!(draws.len() > 10, "only {} distinct delays", draws.len());
    }
}
