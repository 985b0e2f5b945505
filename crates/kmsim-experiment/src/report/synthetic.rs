//! A synthetic run for the report's tests (the unit tests and `tests/report_in_chromium.rs`,
//! which includes this file): 30 s of open-loop Encrypt and Decrypt calls in two Regions,
//! 50 calls/s each, with `eu-west-1` killed from 10 s to 15 s, when its calls fail (half
//! refused, half unanswered). The parent module names this crate `kx`.

#![allow(dead_code)]

use super::kx::check::{Status, Verdict};
use super::kx::history::{Call, Edge, FaultEvent, Op, Outcome, Phase, Record, Reply};
use super::kx::report::{PairLag, ReportInput};
use super::kx::schedule::Schedule;
use super::kx::Experiment;

/// The experiment file.
pub const TOML: &str = r#"
version = 1
name = "region-outage"
description = "eu-west-1 dies for 5 s; <b>keys</b> & ciphertexts must survive"
[cluster]
regions = ["us-east-1", "eu-west-1"]
[workload]
duration = "30s"
rate = "100/s"
mix = { encrypt = 3, decrypt = 1 }
[[fault]]
action = "kill-region"
region = "eu-west-1"
at = "10s"
for = "5s"
"#;

/// The replay command, with characters HTML must escape.
pub const COMMAND: &str =
    "kmsim experiment run experiments/region-outage.toml --seed 42 --runtime processes --label \"<a&b>\"";

/// When the workload starts, µs since the run's clock started.
pub const W0: u64 = 2_000_000;
/// Calls per second per Region.
pub const PER_SECOND: u64 = 50;
/// Workload seconds.
pub const SECONDS: u64 = 30;
/// The Regions.
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
/// The fault window, seconds since the workload started.
pub const FAULT: (u64, u64) = (10, 15);

/// The run's parts.
pub struct Run {
    /// The experiment.
    pub experiment: Experiment,
    /// Its schedule.
    pub schedule: Schedule,
    /// The history.
    pub records: Vec<Record>,
    /// The verdicts.
    pub verdicts: Vec<Verdict>,
    /// Sync-lag samples.
    pub lag: Vec<PairLag>,
}

impl Run {
    /// The report's input.
    pub fn input(&self) -> ReportInput<'_> {
        ReportInput {
            experiment: &self.experiment,
            seed: 42,
            command: COMMAND.to_string(),
            schedule: &self.schedule,
            records: &self.records,
            verdicts: &self.verdicts,
            sync_lag: &self.lag,
            started_at: "2026-12-07T07:00:00Z".to_string(),
            runtime: "processes".to_string(),
            aborted: None,
        }
    }
}

/// The latency of call `i` in Region `r` outside the fault, µs (deterministic, spread).
pub fn healthy_latency(r: usize, i: u64) -> u64 {
    let x = i.wrapping_mul(2_654_435_761) % 10_007;
    1_000 + x + if r == 1 { 20_000 + (i % 97) * 50 } else { 0 }
}

/// Builds the run.
pub fn run() -> Run {
    let experiment = Experiment::parse(TOML, false).expect("the synthetic experiment is valid");
    let schedule = Schedule::expand(&experiment, 42);
    let mut records = vec![
        Record::Phase {
            phase: Phase::Setup,
            at: 0,
        },
        Record::Phase {
            phase: Phase::Workload,
            at: W0,
        },
    ];
    let mut id = 0u64;
    let mut ops = Vec::new();
    for s in 0..SECONDS {
        for k in 0..PER_SECOND {
            for (r, region) in REGIONS.iter().enumerate() {
                id += 1;
                let due = W0 + s * 1_000_000 + k * (1_000_000 / PER_SECOND);
                let faulty = r == 1 && (FAULT.0..FAULT.1).contains(&s);
                let (latency, outcome) = if !faulty {
                    (
                        healthy_latency(r, id),
                        Outcome::Ok {
                            reply: Reply::default(),
                        },
                    )
                } else if k % 2 == 0 {
                    (
                        40_000 + id % 1000,
                        Outcome::Failed {
                            code: "KMSInternalException".into(),
                            message: "no leader".into(),
                        },
                    )
                } else {
                    (
                        1_000_000,
                        Outcome::Unknown {
                            reason: "timed out".into(),
                        },
                    )
                };
                let key = format!("arn:aws:kms:{region}:111122223333:key/mrk-1");
                let call = if k % 4 == 3 {
                    Call::Decrypt {
                        key,
                        of: id.saturating_sub(3),
                    }
                } else {
                    Call::Encrypt {
                        key,
                        plaintext: format!("{id:032x}"),
                    }
                };
                ops.push(Op {
                    id,
                    client: r as u32,
                    phase: Phase::Workload,
                    region: region.to_string(),
                    node: None,
                    due,
                    start: due + 100,
                    end: due + latency,
                    call,
                    outcome,
                });
            }
        }
    }
    records.push(Record::Fault(FaultEvent {
        occurrence: 0,
        edge: Edge::Start,
        at: W0 + FAULT.0 * 1_000_000,
        what: "SIGKILL every node of eu-west-1".into(),
        error: None,
    }));
    records.extend(ops.into_iter().map(Record::Op));
    records.push(Record::Fault(FaultEvent {
        occurrence: 0,
        edge: Edge::End,
        at: W0 + FAULT.1 * 1_000_000,
        what: "restart every node of eu-west-1".into(),
        error: None,
    }));
    records.push(Record::Phase {
        phase: Phase::Heal,
        at: W0 + SECONDS * 1_000_000,
    });
    records.push(Record::Phase {
        phase: Phase::Observe,
        at: W0 + (SECONDS + 10) * 1_000_000,
    });
    let verdicts = vec![
        Verdict {
            checker: "decrypt-everywhere".into(),
            status: Status::Pass,
            summary: "every acknowledged ciphertext decrypts in every Region".into(),
            ops: vec![],
        },
        Verdict {
            checker: "convergence".into(),
            status: Status::Unknown,
            summary: "1 key not read <in time> & skipped".into(),
            ops: vec![17, 23],
        },
    ];
    let lag = vec![
        PairLag {
            source: "us-east-1".into(),
            destination: "eu-west-1".into(),
            samples_us: (0..300).map(|i| 35_000 + (i * 7919) % 30_000).collect(),
        },
        PairLag {
            source: "eu-west-1".into(),
            destination: "us-east-1".into(),
            samples_us: (0..200).map(|i| 40_000 + (i * 104_729) % 400_000).collect(),
        },
    ];
    Run {
        experiment,
        schedule,
        records,
        verdicts,
        lag,
    }
}
