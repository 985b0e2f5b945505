use super::synthetic::{self, COMMAND, FAULT, PER_SECOND, REGIONS, SECONDS};
use super::*;
use crate::check::Status;
use crate::history::{Op, Phase};
use crate::spec::Operation;

/// The exact percentile HdrHistogram approximates: the value at rank ceil(q·n).
fn exact(sorted: &[u64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn close(hdr: f64, exact: f64) -> bool {
    (hdr - exact).abs() <= exact * 1e-3 + 1e-3
}

#[test]
fn results_count_every_call_and_measure_latency_from_due() {
    let run = synthetic::run();
    let r = results(&run.input());
    assert_eq!(r.seed, 42);
    assert!(r.passed, "a pass and an unknown verdict pass");
    assert_eq!(r.workload.start_us, synthetic::W0);
    assert!((r.workload.seconds - SECONDS as f64).abs() < 1e-9);
    assert_eq!(r.operations.len(), 4, "Encrypt and Decrypt in two Regions");
    let per_region = PER_SECOND * SECONDS;
    for region in REGIONS {
        let mine: Vec<&OpStats> = r.operations.iter().filter(|s| s.region == region).collect();
        assert_eq!(mine.iter().map(|s| s.count).sum::<u64>(), per_region);
    }
    let eu: Vec<&OpStats> = r
        .operations
        .iter()
        .filter(|s| s.region == "eu-west-1")
        .collect();
    let faulty = PER_SECOND * (FAULT.1 - FAULT.0);
    assert_eq!(eu.iter().map(|s| s.ok).sum::<u64>(), per_region - faulty);
    assert_eq!(eu.iter().map(|s| s.unknown).sum::<u64>(), faulty / 2);
    let refused: u64 = eu
        .iter()
        .filter_map(|s| s.failed.get("KMSInternalException"))
        .sum();
    assert_eq!(refused, faulty / 2);
    let us = r
        .operations
        .iter()
        .find(|s| s.region == "us-east-1" && s.operation == Operation::Encrypt)
        .expect("Encrypt in us-east-1");
    assert!(us.failed.is_empty() && us.unknown == 0);
    assert!((us.throughput - us.ok as f64 / SECONDS as f64).abs() < 1e-9);

    // Percentiles against the exact ones, within HdrHistogram's 3 digits.
    for s in &r.operations {
        let mut lat: Vec<u64> = run
            .records
            .iter()
            .filter_map(|rec| match rec {
                Record::Op(o) if o.region == s.region && o.operation() == s.operation => {
                    Some(Op::latency(o))
                }
                _ => None,
            })
            .collect();
        lat.sort_unstable();
        let p = s.latency_ms.expect("calls were made");
        for (hdr, q) in [(p.p50, 0.5), (p.p90, 0.9), (p.p99, 0.99), (p.p99_9, 0.999)] {
            assert!(
                close(hdr, exact(&lat, q)),
                "{} {} q{q}: {hdr} vs {}",
                s.operation.name(),
                s.region,
                exact(&lat, q)
            );
        }
        assert!(close(p.max, exact(&lat, 1.0)));
    }
    let eu_encrypt = eu
        .iter()
        .find(|s| s.operation == Operation::Encrypt)
        .expect("some");
    assert!(
        eu_encrypt.latency_ms.expect("some").max >= 999.0,
        "unanswered calls count their timeout"
    );

    assert_eq!(r.sync_lag.len(), 2);
    let lag = r.sync_lag[0].lag_ms.expect("samples");
    assert_eq!(r.sync_lag[0].count, 300);
    assert!(lag.p50 > 35.0 && lag.max < 65.1, "{lag:?}");
    assert_eq!(
        r.fault_windows,
        vec![Window {
            start_s: 10.0,
            end_s: 15.0
        }]
    );
    assert_eq!(r.fault_events.len(), 2);
    assert_eq!(
        r.phases.iter().map(|p| p.phase).collect::<Vec<_>>(),
        [Phase::Setup, Phase::Workload, Phase::Heal, Phase::Observe]
    );
}

#[test]
fn a_failed_verdict_or_an_abort_fails_the_run() {
    let mut run = synthetic::run();
    assert!(results(&run.input()).passed);
    let mut input = run.input();
    input.aborted = Some("probe eu-errors breached".into());
    assert!(!results(&input).passed);
    run.verdicts[1].status = Status::Fail;
    assert!(!results(&run.input()).passed);
}

#[test]
fn results_json_has_the_documented_shape() {
    let run = synthetic::run();
    let v = serde_json::to_value(results(&run.input())).expect("serializable");
    for key in [
        "experiment",
        "seed",
        "runtime",
        "command",
        "phases",
        "operations",
        "sync_lag",
        "fault_events",
        "fault_windows",
        "verdicts",
        "passed",
    ] {
        assert!(v.get(key).is_some(), "results.json lacks {key}");
    }
    let op = &v["operations"][0];
    assert_eq!(op["operation"], "Encrypt");
    assert!(op["latency_ms"]["p99.9"].is_number(), "{op}");
    assert_eq!(v["experiment"]["name"], "region-outage");
}

#[test]
fn without_fault_events_the_schedule_gives_the_windows() {
    let mut run = synthetic::run();
    run.records.retain(|r| !matches!(r, Record::Fault(_)));
    let r = results(&run.input());
    assert_eq!(
        r.fault_windows,
        vec![Window {
            start_s: 10.0,
            end_s: 15.0
        }]
    );
}

#[test]
fn the_page_is_self_contained_with_four_plots_and_escaped_text() {
    let run = synthetic::run();
    let input = run.input();
    let page = html(&input, &results(&input));
    assert_eq!(page.matches("<svg").count(), 4, "four plots");
    assert!(page.contains(&escape(COMMAND)), "the escaped command");
    assert!(page.contains("--label &quot;&lt;a&amp;b&gt;&quot;"));
    assert!(
        !page.contains("<a&b>") && !page.contains("<b>keys</b>"),
        "nothing unescaped"
    );
    assert!(page.contains("<td>decrypt-everywhere</td><td class=\"status-pass\">pass</td>"));
    assert!(page.contains("<td>convergence</td><td class=\"status-unknown\">unknown</td>"));
    assert!(page.contains("1 key not read &lt;in time&gt; &amp; skipped</td><td>17, 23</td>"));
    assert!(page.contains(">PASS <"));
    assert!(page.contains("KMSInternalException: 125"));
    let rgb = |c: plotters::style::RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
    assert!(page.contains(&rgb(plots::SHADE)), "fault windows shaded");
    // No resource from anywhere: the only URL is the SVG namespace.
    let without_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("<img"));
}

#[test]
fn without_sync_lag_samples_the_cdf_is_replaced_by_a_note() {
    let mut run = synthetic::run();
    for p in &mut run.lag {
        p.samples_us.clear();
    }
    let input = run.input();
    let r = results(&input);
    assert!(r
        .sync_lag
        .iter()
        .all(|l| l.count == 0 && l.lag_ms.is_none()));
    let page = html(&input, &r);
    assert_eq!(page.matches("<svg").count(), 3);
    assert!(page.contains("No sync-lag samples"));
}

#[test]
fn a_failing_run_says_why_in_its_banner() {
    let mut run = synthetic::run();
    run.verdicts[0].status = Status::Fail;
    let input = run.input();
    let page = html(&input, &results(&input));
    assert!(page.contains("<div class=\"banner fail\">FAIL"));
    assert!(page.contains("failed: decrypt-everywhere"));
}

#[test]
fn write_all_writes_results_logs_and_page() {
    let run = synthetic::run();
    let dir = tempfile::tempdir().expect("temp dir");
    write_all(dir.path(), &run.input()).expect("written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).expect("read"))
            .expect("JSON");
    assert_eq!(json["passed"], true);
    assert!(std::fs::read_to_string(dir.path().join("report.html"))
        .expect("read")
        .starts_with("<!DOCTYPE html>"));
    // The interval log reads back with hdrhistogram's own reader, one histogram per second.
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let log = std::fs::read(dir.path().join("latency/eu-west-1-Encrypt.hlog")).expect("log");
    let mut total = 0u64;
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&log) {
        if let LogEntry::Interval(i) = entry.expect("valid entry") {
            intervals += 1;
            assert_eq!(i.tag().map(|t| t.as_str()), Some("Encrypt"));
            let bytes = base64_decode(i.encoded_histogram());
            let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                .deserialize(&mut &bytes[..])
                .expect("V2 deflate");
            total += h.len();
        }
    }
    assert_eq!(intervals, SECONDS);
    let expected = run
        .records
        .iter()
        .filter(|r| matches!(r, Record::Op(o) if o.region == "eu-west-1" && o.operation() == Operation::Encrypt))
        .count() as u64;
    assert_eq!(total, expected);
    assert_eq!(
        std::fs::read_dir(dir.path().join("latency"))
            .expect("dir")
            .count(),
        4
    );
}

/// Standard base64 (the interval log's encoding), for the test only.
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = s.bytes().filter(|c| *c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, d) in chunk.iter().enumerate() {
            n |= u32::from(*d) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
