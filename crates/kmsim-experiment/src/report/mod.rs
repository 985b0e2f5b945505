//! The report of a run, written into its output directory by [`write_all`]:
//!
//! - `results.json` ([`Results`]): configuration, seed, phases, per (operation, Region) counts,
//!   throughput and latency percentiles, sync-lag percentiles per Region pair, fault events,
//!   the checkers' verdicts and whether the run passed;
//! - `latency/<Region>-<Operation>.hlog`: HdrHistogram interval logs (one histogram per second
//!   of the workload), for HdrHistogram's own tools;
//! - `report.html`: one self-contained page with the verdicts, the tables and four SVG plots
//!   (latency over time, throughput, sync-lag CDF, availability), fault windows shaded.
//!
//! Everything is computed from the history, the schedule, the verdicts and the sync-lag
//! samples the runner gives; nothing here talks to a cluster (`docs/EXPERIMENTS.md`,
//! "The report").

mod html;
mod plots;
mod results;
mod timeline;

#[cfg(test)]
mod synthetic;
/// The synthetic run's name for this crate (it is shared with an integration test).
#[cfg(test)]
use crate as kx;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::check::Verdict;
use crate::history::Record;
use crate::schedule::Schedule;
use crate::spec::{Experiment, Operation};

pub use html::html;
pub use results::{
    histogram, passed, results, Breach, LagStats, OpStats, Percentiles, PhaseStart, Results,
    Window, WorkloadSpan, HISTOGRAM_DIGITS, HISTOGRAM_MAX_US,
};

/// What the report is made from.
#[derive(Clone, Debug)]
pub struct ReportInput<'a> {
    /// The experiment as run.
    pub experiment: &'a Experiment,
    /// The run's seed.
    pub seed: u64,
    /// The exact command that replays the run (shown in the report, copyable).
    pub command: String,
    /// The fault schedule expanded with the seed.
    pub schedule: &'a Schedule,
    /// Every record of `history.jsonl`, in file order.
    pub records: &'a [Record],
    /// The checkers' verdicts.
    pub verdicts: &'a [Verdict],
    /// Sync-lag samples per Region pair (may be empty).
    pub sync_lag: &'a [PairLag],
    /// When the run started: wall clock, RFC 3339.
    pub started_at: String,
    /// `processes` or `docker`.
    pub runtime: String,
    /// Why the run was stopped early (a probe with `abort`), if it was.
    pub aborted: Option<String>,
}

/// The synchronisation lag samples of one Region pair: for each change, the time from its
/// commit in `source` to its apply in `destination`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairLag {
    /// Where the changes were committed.
    pub source: String,
    /// Where they were applied.
    pub destination: String,
    /// One sample per change, in microseconds.
    pub samples_us: Vec<u64>,
}

/// Writes `results.json`, `latency/<Region>-<Operation>.hlog` and `report.html` into `dir`
/// (created if needed; existing files are replaced).
pub fn write_all(dir: &Path, input: &ReportInput<'_>) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let r = results(input);
    let json = serde_json::to_vec_pretty(&r).map_err(io::Error::other)?;
    fs::write(dir.join("results.json"), json)?;
    write_latency_logs(&dir.join("latency"), input, &r)?;
    fs::write(dir.join("report.html"), html(input, &r))?;
    Ok(())
}

/// The file name part for a Region or operation: letters, digits, `-` and `_` kept, anything
/// else `_` (Region names are validated, but a history is read from a file).
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One interval log per (operation, Region) of the workload phase: a histogram of latencies
/// (µs, from `due`) per second, bucketed by when the call was due; timestamps are seconds
/// since the workload started.
fn write_latency_logs(dir: &Path, input: &ReportInput<'_>, r: &Results) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let start = r.workload.start_us;
    // (second, latency) per (operation, Region), in one pass over the history.
    let mut groups: BTreeMap<(Operation, &str), Vec<(u64, u64)>> = BTreeMap::new();
    for op in results::workload_ops(input.records) {
        groups
            .entry((op.operation(), op.region.as_str()))
            .or_default()
            .push((op.due.saturating_sub(start) / 1_000_000, op.latency()));
    }
    for ((operation, region), mut calls) in groups {
        // One histogram at a time: a long run has thousands of seconds.
        calls.sort_unstable();
        let mut out = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment("[Histogram log format version 1.3]")
            .add_comment(&format!(
                "kmsim experiment {}: {} in {}, latency in microseconds from when each call \
                 was due; one histogram per second, timestamps in seconds since the workload \
                 started ({})",
                input.experiment.name,
                operation.name(),
                region,
                input.started_at
            ))
            .with_max_value_divisor(1000.0);
        let mut log = builder.begin_log_with(&mut out, &mut serializer)?;
        log.write_comment(
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"",
        )?;
        let tag = Tag::new(operation.name());
        let mut h = histogram();
        for (i, (second, latency)) in calls.iter().enumerate() {
            h.saturating_record(*latency);
            if calls.get(i + 1).is_none_or(|next| next.0 != *second) {
                log.write_histogram(
                    &h,
                    Duration::from_secs(*second),
                    Duration::from_secs(1),
                    tag,
                )
                .map_err(|e| io::Error::other(format!("{e:?}")))?;
                h.reset();
            }
        }
        let name = format!("{}-{}.hlog", file_part(region), file_part(operation.name()));
        let mut f = io::BufWriter::new(fs::File::create(dir.join(name))?);
        f.write_all(&out)?;
        f.flush()?;
    }
    Ok(())
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
