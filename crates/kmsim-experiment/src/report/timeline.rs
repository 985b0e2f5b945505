//! The run over time, as the plots draw it: the calls of the workload and heal phases, per
//! Region, in one-second buckets from the workload's start.

use crate::history::{Op, Outcome, Phase, Record};

use super::results::{Window, WorkloadSpan};

/// Most points the latency scatter draws per Region; above it every n-th acknowledged call is
/// drawn (every failure still is, up to the same bound), so the page stays small for long runs.
pub(crate) const MAX_POINTS_PER_REGION: usize = 6000;

/// How a call ended, for the scatter's colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Acknowledged.
    Ok,
    /// Refused with an AWS error.
    Failed,
    /// No answer.
    Unknown,
}

/// One Region's calls over time.
#[derive(Clone, Debug, Default)]
pub(crate) struct RegionSeries {
    /// The Region.
    pub region: String,
    /// (seconds since the workload started, latency in ms, outcome), subsampled.
    pub points: Vec<(f64, f64, Kind)>,
    /// Per second (by when calls were due): the p99 latency in ms, when there were calls.
    pub p99_ms: Vec<Option<f64>>,
    /// Per second (by when calls ended): calls acknowledged.
    pub ok_per_s: Vec<u64>,
    /// Per second (by when calls ended): calls refused or without an answer.
    pub errors_per_s: Vec<u64>,
    /// Per second (by when calls were due): share of the calls that were acknowledged, when
    /// there were calls.
    pub success: Vec<Option<f64>>,
}

/// What the plots draw.
#[derive(Clone, Debug)]
pub(crate) struct Timeline {
    /// Seconds from the workload's start to the last call drawn (at least the workload).
    pub end_s: f64,
    /// Where faults were active.
    pub windows: Vec<Window>,
    /// Per Region, in the experiment's client order, then any other Region seen.
    pub regions: Vec<RegionSeries>,
}

fn kind(op: &Op) -> Kind {
    match op.outcome {
        Outcome::Ok { .. } => Kind::Ok,
        Outcome::Failed { .. } => Kind::Failed,
        Outcome::Unknown { .. } => Kind::Unknown,
    }
}

/// Builds the timeline of the calls made in the workload and heal phases.
pub(crate) fn timeline(
    records: &[Record],
    order: &[String],
    span: &WorkloadSpan,
    windows: &[Window],
) -> Timeline {
    let ops: Vec<&Op> = records
        .iter()
        .filter_map(|r| match r {
            Record::Op(op)
                if matches!(op.phase, Phase::Workload | Phase::Heal) && op.due >= span.start_us =>
            {
                Some(op)
            }
            _ => None,
        })
        .collect();
    let secs = |us: u64| us.saturating_sub(span.start_us) as f64 / 1e6;
    let last = ops.iter().map(|o| secs(o.end)).fold(span.seconds, f64::max);
    let buckets = last.ceil().max(1.0) as usize + 1;
    let mut names: Vec<String> = order.to_vec();
    let mut extra: Vec<String> = ops
        .iter()
        .map(|o| o.region.clone())
        .filter(|r| !names.contains(r))
        .collect();
    extra.sort();
    extra.dedup();
    names.extend(extra);
    let bucket = |us: u64| (secs(us) as usize).min(buckets - 1);
    let regions = names
        .into_iter()
        .filter(|name| ops.iter().any(|o| &o.region == name))
        .map(|name| {
            let mine: Vec<&Op> = ops.iter().copied().filter(|o| o.region == name).collect();
            let mut s = RegionSeries {
                region: name,
                points: Vec::new(),
                p99_ms: vec![None; buckets],
                ok_per_s: vec![0; buckets],
                errors_per_s: vec![0; buckets],
                success: vec![None; buckets],
            };
            let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); buckets];
            let mut acked = vec![0u64; buckets];
            for o in &mine {
                let due = bucket(o.due);
                latencies[due].push(o.latency());
                let end = bucket(o.end);
                if o.ok() {
                    acked[due] += 1;
                    s.ok_per_s[end] += 1;
                } else {
                    s.errors_per_s[end] += 1;
                }
            }
            for (i, l) in latencies.iter_mut().enumerate() {
                if l.is_empty() {
                    continue;
                }
                l.sort_unstable();
                let rank = ((l.len() as f64 * 0.99).ceil() as usize).clamp(1, l.len()) - 1;
                s.p99_ms[i] = Some(l[rank] as f64 / 1000.0);
                s.success[i] = Some(acked[i] as f64 / l.len() as f64);
            }
            let oks = mine.iter().filter(|o| o.ok()).count();
            let every = oks.div_ceil(MAX_POINTS_PER_REGION).max(1);
            let (mut acks, mut failures) = (0usize, 0usize);
            for o in &mine {
                let k = kind(o);
                let keep = match k {
                    Kind::Ok => {
                        acks += 1;
                        (acks - 1) % every == 0
                    }
                    _ => {
                        failures += 1;
                        failures <= MAX_POINTS_PER_REGION
                    }
                };
                if keep {
                    s.points.push((secs(o.due), o.latency() as f64 / 1000.0, k));
                }
            }
            s
        })
        .collect();
    Timeline {
        end_s: last.max(1.0),
        windows: windows.to_vec(),
        regions,
    }
}
