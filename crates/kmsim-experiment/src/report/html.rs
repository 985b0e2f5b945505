//! `report.html`: one self-contained page (inline CSS and SVG; no script, font or URL), every
//! string from the experiment or the history escaped.

use std::fmt::Write;

use super::results::{fault_windows, workload_span, Percentiles, Results};
use super::timeline::timeline;
use super::{escape, plots, ReportInput};
use crate::check::Status;
use crate::history::Edge;
use crate::spec::Arrival;

const STYLE: &str = "
body { font-family: sans-serif; margin: 24px auto; max-width: 1160px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
.banner { font-size: 28px; font-weight: bold; padding: 12px 18px; border-radius: 6px; }
.pass { background: #dff0d8; color: #1d5e1d; } .fail { background: #f8d7da; color: #8a1c24; }
pre.cmd { background: #f4f4f4; padding: 10px; user-select: all; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.status-pass { color: #1d5e1d; font-weight: bold; } .status-fail { color: #b0202a; font-weight: bold; }
.status-unknown { color: #8a6d00; font-weight: bold; }
figure { margin: 8px 0; } figure svg { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: 14px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; } dt { font-weight: bold; }
";

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn percentile_cells(out: &mut String, p: Option<&Percentiles>, all: bool) {
    match p {
        Some(p) => {
            let mut v = vec![p.p50, p.p90, p.p99];
            if all {
                v.push(p.p99_9);
            }
            v.push(p.max);
            for x in v {
                let _ = write!(out, "<td class=\"n\">{}</td>", ms(x));
            }
        }
        None => {
            let _ = write!(
                out,
                "<td colspan=\"{}\">no samples</td>",
                if all { 5 } else { 4 }
            );
        }
    }
}

fn figure(out: &mut String, title: &str, svg: Result<String, String>, caption: &str) {
    let _ = write!(out, "<h2>{}</h2>\n<figure>", escape(title));
    match svg {
        Ok(svg) => out.push_str(&svg),
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"note\">The plot could not be drawn: {}</p>",
                escape(&e)
            );
        }
    }
    let _ = writeln!(out, "<figcaption>{}</figcaption></figure>", escape(caption));
}

/// The page for a run, given its [`Results`].
pub fn html(input: &ReportInput<'_>, r: &Results) -> String {
    let e = input.experiment;
    let span = workload_span(input);
    let windows = fault_windows(input, &span);
    let t = timeline(input.records, &e.workload.clients, &span, &windows);
    let mut o = String::new();
    let verdict = if r.passed { "PASS" } else { "FAIL" };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{verdict}: kmsim experiment {name}</title><style>{STYLE}</style></head><body>\n\
         <h1>kmsim experiment: {name}</h1>\n<p>{desc}</p>\n",
        name = escape(&e.name),
        desc = escape(&e.description),
    );
    let failed: Vec<&str> = r
        .verdicts
        .iter()
        .filter(|v| v.status == Status::Fail)
        .map(|v| v.checker.as_str())
        .collect();
    let why = match (&r.aborted, failed.is_empty()) {
        (Some(a), _) => format!("aborted: {a}"),
        (None, false) => format!("failed: {}", failed.join(", ")),
        (None, true) => format!("{} checkers, none failed", r.verdicts.len()),
    };
    let _ = writeln!(
        o,
        "<div class=\"banner {}\">{verdict} <span style=\"font-size:16px\">({})</span></div>",
        if r.passed { "pass" } else { "fail" },
        escape(&why)
    );
    let arrival = match e.workload.arrival {
        Arrival::Rate(n) => format!("open loop, {n} calls/s in all"),
        Arrival::Concurrency(n) => format!("closed loop, {n} calls in flight per client Region"),
    };
    let mix: Vec<String> = e
        .workload
        .mix
        .iter()
        .map(|(op, w)| format!("{} {w}", op.name()))
        .collect();
    let rows: [(&str, String); 8] = [
        ("seed", r.seed.to_string()),
        ("runtime", r.runtime.clone()),
        ("started", r.started_at.clone()),
        (
            "Regions",
            format!(
                "{} ({} nodes each)",
                e.cluster.regions.join(", "),
                e.cluster.nodes
            ),
        ),
        ("clients in", e.workload.clients.join(", ")),
        (
            "workload",
            format!("{:.1} s measured, {arrival}", span.seconds),
        ),
        ("mix", mix.join(", ")),
        ("quick", e.quick.to_string()),
    ];
    o.push_str("<dl>");
    for (k, v) in rows {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    }
    o.push_str("</dl>\n<h2>Replay</h2>\n<pre class=\"cmd\">");
    o.push_str(&escape(&r.command));
    o.push_str("</pre>\n<h2>Checkers</h2>\n<table><tr><th>checker</th><th>status</th><th>summary</th><th>ops involved</th></tr>\n");
    for v in &r.verdicts {
        let status = match v.status {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        };
        let ops: Vec<String> = v.ops.iter().map(u64::to_string).collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"status-{status}\">{status}</td><td>{}</td><td>{}</td></tr>",
            escape(&v.checker),
            escape(&v.summary),
            escape(&ops.join(", "))
        );
    }
    o.push_str("</table>\n");
    if r.verdicts.is_empty() {
        o.push_str("<p class=\"note\">No checker ran.</p>\n");
    }
    figure(
        &mut o,
        "Latency over time",
        plots::latency(&t),
        "Every call by when it was due (latency counts from then, so a call that waited to be \
         sent counts its wait); blue acknowledged, red refused, orange no answer; the black line \
         is each second's p99. Shaded: a fault was active. Long runs draw a sample of the \
         acknowledged calls.",
    );
    figure(
        &mut o,
        "Throughput",
        plots::throughput(&t),
        "Calls that ended in each second, per Region: solid acknowledged, dashed refused or \
         unanswered. Shaded: a fault was active.",
    );
    match plots::sync_lag_cdf(input.sync_lag) {
        Some(svg) => figure(
            &mut o,
            "Sync lag",
            svg,
            "For each Region pair, the share of changes committed in the source that were \
             applied in the destination within the lag on the x axis.",
        ),
        None => o.push_str(
            "<h2>Sync lag</h2>\n<p class=\"note\">No sync-lag samples were recorded in this run.</p>\n",
        ),
    }
    figure(
        &mut o,
        "Availability",
        plots::availability(&t),
        "Per Region, each second coloured by the share of the calls due in it that were \
         acknowledged; the top row shows when faults were active.",
    );
    tables(&mut o, input, r);
    o.push_str("</body></html>\n");
    o
}

fn tables(o: &mut String, input: &ReportInput<'_>, r: &Results) {
    o.push_str(
        "<h2>Calls in the workload phase</h2>\n<table><tr><th>operation</th><th>Region</th>\
         <th>calls</th><th>ok</th><th>failed</th><th>unknown</th><th>ok/s</th><th>p50 ms</th>\
         <th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n",
    );
    for s in &r.operations {
        let failed: Vec<String> = s.failed.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{:.1}</td>",
            escape(s.operation.name()),
            escape(&s.region),
            s.count,
            s.ok,
            escape(&failed.join(", ")),
            s.unknown,
            s.throughput
        );
        percentile_cells(o, s.latency_ms.as_ref(), true);
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
    if !r.sync_lag.is_empty() {
        o.push_str(
            "<h2>Sync lag per Region pair</h2>\n<table><tr><th>source</th><th>destination</th>\
             <th>changes</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>\n",
        );
        for l in &r.sync_lag {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td>",
                escape(&l.source),
                escape(&l.destination),
                l.count
            );
            percentile_cells(o, l.lag_ms.as_ref(), false);
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
    }
    let start = r.workload.start_us as f64;
    o.push_str(
        "<h2>Faults</h2>\n<table><tr><th>at (s since the workload started)</th><th>edge</th>\
         <th>occurrence</th><th>what</th><th>error</th></tr>\n",
    );
    for f in &r.fault_events {
        let _ = writeln!(
            o,
            "<tr><td class=\"n\">{:.3}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            (f.at as f64 - start) / 1e6,
            if f.edge == Edge::Start { "start" } else { "end" },
            f.occurrence,
            escape(&f.what),
            escape(f.error.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</table>\n");
    if r.fault_events.is_empty() {
        o.push_str("<p class=\"note\">No fault was applied.</p>\n");
    }
    if !r.breaches.is_empty() {
        o.push_str("<h2>Probe breaches</h2>\n<table><tr><th>at (s)</th><th>probe</th><th>seen</th><th>aborted</th></tr>\n");
        for b in &r.breaches {
            let _ = writeln!(
                o,
                "<tr><td class=\"n\">{:.3}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (b.at_us as f64 - start) / 1e6,
                escape(&b.probe),
                escape(&b.seen),
                b.aborted
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h2>Phases</h2>\n<table><tr><th>phase</th><th>started (s since the run's clock started)</th></tr>\n");
    for p in &r.phases {
        let name = serde_json::to_value(p.phase)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"n\">{:.3}</td></tr>",
            escape(&name),
            p.at_us as f64 / 1e6
        );
    }
    o.push_str("</table>\n<h2>Configuration</h2>\n<details><summary>The experiment as run (JSON)</summary><pre>");
    let config = serde_json::to_string_pretty(input.experiment).unwrap_or_default();
    o.push_str(&escape(&config));
    o.push_str("</pre></details>\n");
}
