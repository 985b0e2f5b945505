//! The fault schedule of a run: every fault line expanded into its occurrences, with its
//! seeded choices made, before the run starts. The same experiment and seed give the same
//! schedule, whatever the runtime. Choices that depend on the cluster's state when the fault
//! starts (which node leads a Region) are resolved by the runner then; a follower is picked
//! among the followers of that moment by a number drawn here.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::spec::{Experiment, FaultAction, NodeTarget};

/// The seeded generator of one named stream of a run (`faults`, `client/us-east-1/3`): streams
/// are independent of each other, so adding a client does not change the fault schedule.
pub fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // FNV-1a of the name selects the stream.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    rng.set_stream(h);
    rng
}

/// A node, as the schedule names it once its seeded choice is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// This node.
    Node {
        /// Its Region.
        region: String,
        /// Its ID.
        id: u32,
    },
    /// Whichever node leads the Region when the fault starts.
    Leader {
        /// The Region.
        region: String,
    },
    /// Follower number `draw % followers` of the Region when the fault starts.
    Follower {
        /// The Region.
        region: String,
        /// The seeded draw.
        draw: u64,
    },
}

/// One fault of the run, as the runner applies it: the fault line's action with its node
/// target's seeded choice made.
pub type Act = FaultAction<Target>;

/// One occurrence of a fault line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Occurrence {
    /// The fault line (index in the file's `[[fault]]` list).
    pub fault: usize,
    /// Which repetition of it (0 for the first).
    pub repeat: u32,
    /// When it starts, from the workload's start.
    pub start: Duration,
    /// When it ends (`None`: at the heal after the workload).
    pub end: Option<Duration>,
    /// What it does.
    pub act: Act,
}

/// Something the runner does at a moment of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start occurrence `i` of [`Schedule::occurrences`].
    Start(usize),
    /// End occurrence `i`.
    End(usize),
}

/// The whole schedule of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    /// Every occurrence, ordered by start.
    pub occurrences: Vec<Occurrence>,
    /// The workload's duration (occurrences still active then end at the heal).
    pub duration: Duration,
}

impl Schedule {
    /// Expands `e`'s fault lines with `seed`.
    pub fn expand(e: &Experiment, seed: u64) -> Schedule {
        let mut rng = stream(seed, "faults");
        let duration = e.workload.duration;
        let mut occurrences = Vec::new();
        for (i, f) in e.faults.iter().enumerate() {
            let mut start = f.at;
            let mut repeat = 0u32;
            loop {
                let act = resolve(&f.action, e, &mut rng);
                let end = match act.is_instant() {
                    true => Some(start),
                    false => f.lasts.map(|l| start + l).filter(|t| *t < duration),
                };
                occurrences.push(Occurrence {
                    fault: i,
                    repeat,
                    start,
                    end,
                    act,
                });
                match f.every {
                    Some(every) if start + every < duration => {
                        start += every;
                        repeat += 1;
                    }
                    _ => break,
                }
            }
        }
        occurrences.sort_by_key(|o| (o.start, o.fault, o.repeat));
        Schedule {
            occurrences,
            duration,
        }
    }

    /// Every step in time order (an end before a start at the same moment), with its time.
    pub fn steps(&self) -> Vec<(Duration, Step)> {
        let mut steps: Vec<(Duration, Step)> = Vec::new();
        for (i, o) in self.occurrences.iter().enumerate() {
            steps.push((o.start, Step::Start(i)));
            if let Some(end) = o.end {
                steps.push((end, Step::End(i)));
            }
        }
        steps.sort_by_key(|(t, s)| {
            (
                *t,
                match s {
                    Step::End(i) => (0, *i),
                    Step::Start(i) => (1, *i),
                },
            )
        });
        steps
    }

    /// The windows during which at least one fault is active, merged, in time order (a fault
    /// without an end lasts to the workload's end).
    pub fn fault_windows(&self) -> Vec<(Duration, Duration)> {
        let mut w: Vec<(Duration, Duration)> = self
            .occurrences
            .iter()
            .map(|o| (o.start, o.end.unwrap_or(self.duration)))
            .collect();
        w.sort();
        let mut merged: Vec<(Duration, Duration)> = Vec::new();
        for (s, e) in w {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// Makes `a`'s seeded choice: the node an `any` target hits, the draw that picks a follower.
fn resolve(a: &FaultAction, e: &Experiment, rng: &mut ChaCha8Rng) -> Act {
    a.map_target(|t| match t {
        NodeTarget::Node { region, id } => Target::Node {
            region: region.clone(),
            id: *id,
        },
        NodeTarget::Leader(region) => Target::Leader {
            region: region.clone(),
        },
        NodeTarget::Follower(region) => Target::Follower {
            region: region.clone(),
            draw: rng.gen(),
        },
        NodeTarget::Any(region) => {
            let region = match region {
                Some(r) => r.clone(),
                None => e.cluster.regions[rng.gen_range(0..e.cluster.regions.len())].clone(),
            };
            Target::Node {
                region,
                id: rng.gen_range(1..=e.cluster.nodes),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHURN: &str = r#"
version = 1
name = "churn"
[cluster]
regions = ["us-east-1", "eu-west-1"]
nodes = 3
[workload]
duration = "60s"
concurrency = 4
mix = { encrypt = 1 }
[[fault]]
action = "kill"
pick = "any"
at = "5s"
for = "3s"
every = "10s"
[[fault]]
action = "pause"
region = "us-east-1"
pick = "follower"
at = "7s"
"#;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let e = Experiment::parse(CHURN, false).expect("valid");
        let a = Schedule::expand(&e, 42);
        assert_eq!(a, Schedule::expand(&e, 42));
        let others = (0..20u64).filter(|s| Schedule::expand(&e, *s) != a).count();
        assert!(
            others > 10,
            "the seed drives the choices ({others} of 20 differ)"
        );
    }

    #[test]
    fn a_repeated_fault_occurs_every_period_while_the_workload_runs() {
        let e = Experiment::parse(CHURN, false).expect("valid");
        let s = Schedule::expand(&e, 7);
        let kills: Vec<_> = s.occurrences.iter().filter(|o| o.fault == 0).collect();
        assert_eq!(kills.len(), 6, "at 5, 15, 25, 35, 45, 55 s");
        assert_eq!(kills[5].start, Duration::from_secs(55));
        assert_eq!(kills[5].end, Some(Duration::from_secs(58)));
        let pause = s.occurrences.iter().find(|o| o.fault == 1).expect("one");
        assert_eq!(pause.end, None, "no `for`: until the heal");
        assert!(
            matches!(&pause.act, Act::Pause(Target::Follower { region, .. }) if region == "us-east-1")
        );
        // Every chosen node exists.
        for o in &kills {
            let Act::Kill(Target::Node { region, id }) = &o.act else {
                panic!("any resolves to a node: {o:?}")
            };
            assert!(e.cluster.regions.contains(region) && (1..=3).contains(id));
        }
        let w = s.fault_windows();
        assert_eq!(w.len(), 1, "the pause lasts to the end: {w:?}");
        assert_eq!(w[0], (Duration::from_secs(5), Duration::from_secs(60)));
    }

    #[test]
    fn ends_come_before_starts_at_the_same_moment() {
        let text = CHURN
            .replace("for = \"3s\"", "for = \"10s\"\n")
            .replace("every = \"10s\"", "every = \"11s\"");
        let e = Experiment::parse(&text, false).expect("valid");
        let steps = Schedule::expand(&e, 1).steps();
        for w in steps.windows(2) {
            assert!(w[0].0 <= w[1].0);
            if w[0].0 == w[1].0 {
                assert!(!matches!((w[0].1, w[1].1), (Step::Start(_), Step::End(_))));
            }
        }
    }

    #[test]
    fn streams_are_independent() {
        let mut a = stream(1, "faults");
        let mut b = stream(1, "client/us-east-1/0");
        let mut a2 = stream(1, "faults");
        let x: u64 = a.gen();
        assert_ne!(x, b.gen::<u64>());
        assert_eq!(x, a2.gen::<u64>());
    }
}
