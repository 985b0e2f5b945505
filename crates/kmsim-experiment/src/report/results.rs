//! `results.json`: what a run measured and concluded, computed from the history alone.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{PairLag, ReportInput};
use crate::check::{Status, Verdict};
use crate::history::{Edge, FaultEvent, Micros, Op, Outcome, Phase, Record};
use crate::spec::{Experiment, Operation};

/// Highest latency or lag a histogram holds (one hour, in microseconds); longer values are
/// counted as one hour. A run's workload is bounded by an hour ([`crate::spec::MAX_DURATION`]).
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// Significant decimal digits the histograms keep (values within 0.1 %).
pub const HISTOGRAM_DIGITS: u8 = 3;

/// Everything `results.json` holds.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    /// The experiment as run (after `--quick`, if it was given).
    pub experiment: Experiment,
    /// The run's seed.
    pub seed: u64,
    /// `processes` or `docker`.
    pub runtime: String,
    /// The command that replays the run.
    pub command: String,
    /// When the run started (RFC 3339, wall clock).
    pub started_at: String,
    /// Why the run was stopped early, if it was.
    pub aborted: Option<String>,
    /// No checker failed and the run was not aborted.
    pub passed: bool,
    /// When each phase started, in microseconds since the run's clock started.
    pub phases: Vec<PhaseStart>,
    /// The workload phase as measured.
    pub workload: WorkloadSpan,
    /// Per (operation, Region), the calls made in the workload phase, by operation then Region.
    pub operations: Vec<OpStats>,
    /// Per (source, destination) Region pair, the synchronisation lag.
    pub sync_lag: Vec<LagStats>,
    /// The windows during which at least one fault was active, merged.
    pub fault_windows: Vec<Window>,
    /// Every fault start and end, as the runner applied it.
    pub fault_events: Vec<FaultEvent>,
    /// Steady-state probe breaches.
    pub breaches: Vec<Breach>,
    /// Every checker's verdict.
    pub verdicts: Vec<Verdict>,
}

/// A phase and when it started.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseStart {
    /// The phase.
    pub phase: Phase,
    /// When it started, in microseconds since the run's clock started.
    pub at_us: Micros,
}

/// The workload phase's bounds, in microseconds since the run's clock started.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WorkloadSpan {
    /// When it started.
    pub start_us: Micros,
    /// When it ended (the next phase's start, or the planned duration after its start).
    pub end_us: Micros,
    /// Its length in seconds (what throughput is divided by).
    pub seconds: f64,
}

/// A time window, in seconds since the workload started.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Window {
    /// Its start.
    pub start_s: f64,
    /// Its end.
    pub end_s: f64,
}

/// Latency or lag percentiles, in milliseconds (HdrHistogram, 3 significant digits).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// The calls of one operation in one Region during the workload phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpStats {
    /// The operation's AWS name.
    pub operation: Operation,
    /// The Region whose endpoint was called.
    pub region: String,
    /// Calls made.
    pub count: u64,
    /// Calls acknowledged.
    pub ok: u64,
    /// Calls refused, by AWS error code.
    pub failed: BTreeMap<String, u64>,
    /// Calls without an answer (timed out, connection lost).
    pub unknown: u64,
    /// Acknowledged calls per second of the workload phase.
    pub throughput: f64,
    /// Latency of every call, whatever came back, from when it was due (so a late call counts
    /// its wait: coordinated omission corrected); `None` without calls.
    pub latency_ms: Option<Percentiles>,
}

/// The synchronisation lag from one Region to another: from a change's commit in `source` to
/// its apply in `destination`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LagStats {
    /// Where changes were committed.
    pub source: String,
    /// Where they were applied.
    pub destination: String,
    /// Samples.
    pub count: u64,
    /// Percentiles (`None` without samples).
    pub lag_ms: Option<Percentiles>,
}

/// A steady-state probe breach.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breach {
    /// The probe.
    pub probe: String,
    /// When, in microseconds since the run's clock started.
    pub at_us: Micros,
    /// What was seen.
    pub seen: String,
    /// Whether the run was stopped for it.
    pub aborted: bool,
}

/// An empty latency histogram (1 µs to an hour, 3 digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, HISTOGRAM_DIGITS)
        .expect("invariant: 1 ≤ 1 h in µs and 3 digits are valid bounds")
}

/// The workload calls in the history.
pub(crate) fn workload_ops(records: &[Record]) -> impl Iterator<Item = &Op> {
    records.iter().filter_map(|r| match r {
        Record::Op(op) if op.phase == Phase::Workload => Some(op),
        _ => None,
    })
}

/// When each phase started, in file order.
pub(crate) fn phases(records: &[Record]) -> Vec<PhaseStart> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Phase { phase, at } => Some(PhaseStart {
                phase: *phase,
                at_us: *at,
            }),
            _ => None,
        })
        .collect()
}

/// The workload phase's bounds: from its phase record to the next phase's; without those
/// records, from its first call, for the schedule's duration.
pub(crate) fn workload_span(input: &ReportInput<'_>) -> WorkloadSpan {
    let phases = phases(input.records);
    let planned = u64::try_from(input.schedule.duration.as_micros()).unwrap_or(u64::MAX);
    let start_us = phases
        .iter()
        .find(|p| p.phase == Phase::Workload)
        .map(|p| p.at_us)
        .or_else(|| workload_ops(input.records).map(|o| o.due).min())
        .unwrap_or(0);
    let end_us = phases
        .iter()
        .filter(|p| p.phase > Phase::Workload && p.at_us >= start_us)
        .map(|p| p.at_us)
        .min()
        .unwrap_or_else(|| start_us.saturating_add(planned));
    WorkloadSpan {
        start_us,
        end_us,
        seconds: end_us.saturating_sub(start_us) as f64 / 1e6,
    }
}

/// The fault windows in seconds since the workload started: from the fault events the runner
/// recorded (a start that failed to apply is left out; a start without an end lasts to the
/// workload's end) or, when it recorded none, from the schedule.
pub(crate) fn fault_windows(input: &ReportInput<'_>, span: &WorkloadSpan) -> Vec<Window> {
    let secs = |us: Micros| (us as f64 - span.start_us as f64) / 1e6;
    let events: Vec<&FaultEvent> = input
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Fault(f) => Some(f),
            _ => None,
        })
        .collect();
    let mut raw: Vec<(f64, f64)> = if events.is_empty() {
        input
            .schedule
            .fault_windows()
            .into_iter()
            .map(|(s, e)| (s.as_secs_f64(), e.as_secs_f64()))
            .collect()
    } else {
        events
            .iter()
            .filter(|f| f.edge == Edge::Start && f.error.is_none())
            .map(|s| {
                let end = events
                    .iter()
                    .filter(|e| e.edge == Edge::End && e.occurrence == s.occurrence)
                    .map(|e| e.at)
                    .filter(|at| *at >= s.at)
                    .min()
                    .unwrap_or(span.end_us.max(s.at));
                (secs(s.at), secs(end))
            })
            .collect()
    };
    raw.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<Window> = Vec::new();
    for (s, e) in raw {
        match merged.last_mut() {
            Some(last) if s <= last.end_s => last.end_s = last.end_s.max(e),
            _ => merged.push(Window {
                start_s: s,
                end_s: e,
            }),
        }
    }
    merged
}

/// Computes `results.json` from the run's inputs.
pub fn results(input: &ReportInput<'_>) -> Results {
    let span = workload_span(input);
    let mut groups: BTreeMap<(Operation, String), (OpStats, Histogram<u64>)> = BTreeMap::new();
    for op in workload_ops(input.records) {
        let (stats, h) = groups
            .entry((op.operation(), op.region.clone()))
            .or_insert_with(|| {
                (
                    OpStats {
                        operation: op.operation(),
                        region: op.region.clone(),
                        count: 0,
                        ok: 0,
                        failed: BTreeMap::new(),
                        unknown: 0,
                        throughput: 0.0,
                        latency_ms: None,
                    },
                    histogram(),
                )
            });
        stats.count += 1;
        match &op.outcome {
            Outcome::Ok { .. } => stats.ok += 1,
            Outcome::Failed { code, .. } => *stats.failed.entry(code.clone()).or_insert(0) += 1,
            Outcome::Unknown { .. } => stats.unknown += 1,
        }
        h.saturating_record(op.latency());
    }
    let operations = groups
        .into_values()
        .map(|(mut stats, h)| {
            stats.throughput = if span.seconds > 0.0 {
                stats.ok as f64 / span.seconds
            } else {
                0.0
            };
            stats.latency_ms = Percentiles::of(&h);
            stats
        })
        .collect();
    let breaches = input
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Breach {
                probe,
                at,
                seen,
                aborted,
            } => Some(Breach {
                probe: probe.clone(),
                at_us: *at,
                seen: seen.clone(),
                aborted: *aborted,
            }),
            _ => None,
        })
        .collect();
    let fault_events = input
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Fault(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    Results {
        experiment: input.experiment.clone(),
        seed: input.seed,
        runtime: input.runtime.clone(),
        command: input.command.clone(),
        started_at: input.started_at.clone(),
        aborted: input.aborted.clone(),
        passed: passed(input.verdicts, input.aborted.as_deref()),
        phases: phases(input.records),
        workload: span,
        operations,
        sync_lag: input.sync_lag.iter().map(lag_stats).collect(),
        fault_windows: fault_windows(input, &span),
        fault_events,
        breaches,
        verdicts: input.verdicts.to_vec(),
    }
}

/// A run passes when no checker failed and it was not aborted (an `Unknown` verdict is not a
/// failure).
pub fn passed(verdicts: &[Verdict], aborted: Option<&str>) -> bool {
    aborted.is_none() && verdicts.iter().all(|v| v.status != Status::Fail)
}

fn lag_stats(p: &PairLag) -> LagStats {
    let mut h = histogram();
    for s in &p.samples_us {
        h.saturating_record(*s);
    }
    LagStats {
        source: p.source.clone(),
        destination: p.destination.clone(),
        count: p.samples_us.len() as u64,
        lag_ms: Percentiles::of(&h),
    }
}
