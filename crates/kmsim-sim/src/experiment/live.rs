//! What a run is doing right now, for a progress display: the phase, the calls made and how
//! many were not acknowledged, and the faults active. The runner updates it from the records
//! it writes (so it says what the history says); a display polls [`Live::snapshot`].

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kmsim_experiment::history::{Edge, Phase, Record};

/// The run's live counters, shared between the runner and a display.
#[derive(Debug, Default)]
pub struct Live {
    /// The phase and when it started (`None` before the setup).
    phase: Mutex<Option<(Phase, Instant)>>,
    /// Client calls recorded, every phase.
    calls: AtomicU64,
    /// Of them, refused (`failed`) or unanswered (`unknown`).
    errors: AtomicU64,
    /// The fault occurrences started (without an error) and not yet ended.
    faults: Mutex<BTreeSet<usize>>,
}

/// One reading of [`Live`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The phase and when it started.
    pub phase: Option<(Phase, Instant)>,
    /// Client calls recorded so far.
    pub calls: u64,
    /// Of them, not acknowledged.
    pub errors: u64,
    /// Faults active now.
    pub faults: usize,
}

impl Live {
    /// Counts a record the runner writes.
    pub fn note(&self, r: &Record) {
        match r {
            Record::Phase { phase, .. } => {
                *self.phase.lock().expect("invariant: never poisoned") =
                    Some((*phase, Instant::now()));
            }
            Record::Op(op) => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                if !op.ok() {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Record::Fault(f) => {
                let mut active = self.faults.lock().expect("invariant: never poisoned");
                match (f.edge, &f.error) {
                    (Edge::Start, None) => {
                        active.insert(f.occurrence);
                    }
                    (Edge::Start, Some(_)) => {}
                    (Edge::End, _) => {
                        active.remove(&f.occurrence);
                    }
                }
            }
            Record::Observation(_) | Record::Breach { .. } => {}
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: *self.phase.lock().expect("invariant: never poisoned"),
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            faults: self.faults.lock().expect("invariant: never poisoned").len(),
        }
    }
}

/// The name of a phase as the progress line shows it.
pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Setup => "setup",
        Phase::Workload => "workload",
        Phase::Heal => "heal",
        Phase::Observe => "observe",
    }
}

/// Calls per second over the last `window`, from readings of the calls count.
#[derive(Debug)]
pub struct Rate {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// A rate over the last `window`.
    pub fn new(window: Duration) -> Rate {
        Rate {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Adds a reading (`calls` so far at `now`) and returns the calls per second between the
    /// oldest reading still inside the window and this one (0 with a single reading).
    pub fn sample(&mut self, now: Instant, calls: u64) -> f64 {
        self.samples.push_back((now, calls));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now - *t >= self.window)
        {
            self.samples.pop_front();
        }
        let (t0, c0) = self.samples[0];
        let dt = (now - t0).as_secs_f64();
        if dt <= 0.0 {
            0.0
        } else {
            calls.saturating_sub(c0) as f64 / dt
        }
    }
}

/// The progress line: `workload 0:12 · run 0:45 · 153 ops/s · 1204 calls · 4 errors · 1 fault
/// active`.
pub fn line(s: &Snapshot, now: Instant, run: Duration, ops_per_sec: f64) -> String {
    let clock = |d: Duration| format!("{}:{:02}", d.as_secs() / 60, d.as_secs() % 60);
    let phase = match s.phase {
        Some((p, since)) => format!("{} {}", phase_name(p), clock(now - since)),
        None => "starting".to_string(),
    };
    let faults = match s.faults {
        0 => "no fault active".to_string(),
        1 => "1 fault active".to_string(),
        n => format!("{n} faults active"),
    };
    format!(
        "{phase} · run {} · {ops_per_sec:.0} ops/s · {} calls · {} errors · {faults}",
        clock(run),
        s.calls,
        s.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsim_experiment::history::{Call, FaultEvent, Op, Outcome, Reply};

    fn op(outcome: Outcome) -> Record {
        Record::Op(Op {
            id: 1,
            client: 0,
            phase: Phase::Workload,
            region: "us-east-1".into(),
            node: None,
            due: 0,
            start: 0,
            end: 1,
            call: Call::DescribeKey { key: "k".into() },
            outcome,
        })
    }

    fn fault(occurrence: usize, edge: Edge, error: Option<&str>) -> Record {
        Record::Fault(FaultEvent {
            occurrence,
            edge,
            at: 0,
            what: "x".into(),
            error: error.map(String::from),
        })
    }

    #[test]
    fn counts_calls_errors_and_the_faults_active() {
        let live = Live::default();
        assert_eq!(live.snapshot().phase, None);
        live.note(&Record::Phase {
            phase: Phase::Workload,
            at: 0,
        });
        live.note(&op(Outcome::Ok {
            reply: Reply::default(),
        }));
        live.note(&op(Outcome::Unknown {
            reason: "timed out".into(),
        }));
        live.note(&op(Outcome::Failed {
            code: "NotFoundException".into(),
            message: String::new(),
        }));
        live.note(&fault(0, Edge::Start, None));
        live.note(&fault(1, Edge::Start, None));
        live.note(&fault(2, Edge::Start, Some("no such node")));
        live.note(&fault(0, Edge::End, None));
        let s = live.snapshot();
        assert_eq!(s.phase.map(|(p, _)| p), Some(Phase::Workload));
        assert_eq!((s.calls, s.errors, s.faults), (3, 2, 1));
        let now = s.phase.expect("set").1 + Duration::from_secs(72);
        assert_eq!(
            line(&s, now, Duration::from_secs(80), 152.6),
            "workload 1:12 · run 1:20 · 153 ops/s · 3 calls · 2 errors · 1 fault active"
        );
    }

    #[test]
    fn the_rate_is_taken_over_the_last_window() {
        let t = Instant::now();
        let mut r = Rate::new(Duration::from_secs(2));
        assert_eq!(r.sample(t, 0), 0.0);
        assert_eq!(r.sample(t + Duration::from_secs(1), 100), 100.0);
        assert_eq!(r.sample(t + Duration::from_secs(2), 300), 150.0);
        // The first reading has left the window: (600 - 100) / 2 s.
        assert_eq!(r.sample(t + Duration::from_secs(3), 600), 250.0);
    }
}
