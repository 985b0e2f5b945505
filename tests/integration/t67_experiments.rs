//! `kmsim experiment run`: three library experiments run with `--quick` on real processes
//! (a whole Region killed; a Region's leader frozen under management load; primaries handed
//! over while their Regions are partitioned) and must pass every checker, with their history,
//! results and report written; `experiment check` judges the recorded run again; and a run whose availability rule cannot hold fails, as does
//! one a probe aborts, each exiting non-zero.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use kmsim_experiment::history::{self, Edge, Observation, Record};

use crate::harness::kmsim_exe;

/// Runs `kmsim experiment run <args>`; returns whether it exited 0, and its output.
fn run_experiment(args: &[&str]) -> (bool, String) {
    let out = Command::new(kmsim_exe())
        .arg("experiment")
        .arg("run")
        .args(args)
        .output()
        .expect("run kmsim");
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs the library experiment `name --quick --seed <seed>` (and `extra`) into a new temp
/// dir; returns the dir (kept while it lives), the run's output directory, whether it exited
/// 0, and its output.
fn run_quick(
    name: &str,
    seed: &str,
    extra: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf, bool, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("run");
    let mut args = vec![
        name,
        "--quick",
        "--seed",
        seed,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let (ok, text) = run_experiment(&args);
    (tmp, out, ok, text)
}

fn results(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).expect("results.json"))
        .expect("results.json is JSON")
}

fn records(dir: &Path) -> Vec<Record> {
    let f = std::fs::File::open(dir.join("history.jsonl")).expect("history.jsonl");
    history::read(std::io::BufReader::new(f)).expect("a valid history")
}

/// The run passed: every checker but `linearizable-keys` (which may run out of its budget,
/// `unknown`) passed, and that one did not fail.
fn assert_every_checker_passed(r: &Value) {
    assert_eq!(r["passed"], true, "{r}");
    for checker in [
        "decrypt-everywhere",
        "no-lost-writes",
        "single-primary",
        "convergence",
        "availability",
    ] {
        assert_eq!(verdict(r, checker), "pass", "{checker}: {r}");
    }
    assert_ne!(verdict(r, "linearizable-keys"), "fail", "{r}");
}

/// The status of checker `name` in results.json.
fn verdict(r: &Value, name: &str) -> String {
    r["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .find(|v| v["checker"] == name)
        .unwrap_or_else(|| panic!("no verdict of {name}: {r}"))["status"]
        .as_str()
        .expect("a status")
        .to_string()
}

#[test]
fn a_region_outage_passes_every_checker_and_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("run");
    let out_s = out.to_str().expect("utf-8");
    let (ok, text) = run_experiment(&["region-outage", "--quick", "--seed", "11", "--out", out_s]);
    assert!(ok, "the run failed:\n{text}");
    assert!(text.contains("replay with: kmsim experiment run region-outage --seed 11 --quick"));

    let r = results(&out);
    assert_every_checker_passed(&r);
    assert_eq!(r["seed"], 11);

    // The Region really went down and came back, and the others decrypted what it made.
    let recs = records(&out);
    let faults: Vec<(Edge, String)> = recs
        .iter()
        .filter_map(|x| match x {
            Record::Fault(f) => Some((f.edge, f.what.clone())),
            _ => None,
        })
        .collect();
    assert!(
        faults
            .iter()
            .any(|(e, w)| *e == Edge::Start && w.contains("kill every node of us-east-1")),
        "{faults:?}"
    );
    assert!(
        faults
            .iter()
            .any(|(e, w)| *e == Edge::End && w.starts_with("restart")),
        "{faults:?}"
    );
    let decrypted_in = |region: &str| {
        recs.iter()
            .filter(|x| {
                matches!(x, Record::Observation(Observation::Decrypt { region: r, plaintext: Some(_), .. }) if r == region)
            })
            .count()
    };
    for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        assert!(decrypted_in(region) > 0, "nothing decrypted in {region}");
    }
    // Replica Regions kept serving while us-east-1 was down.
    let replica_ok_during_outage = recs
        .iter()
        .filter(|x| matches!(x, Record::Op(op) if op.region == "eu-west-1" && op.ok()))
        .count();
    assert!(replica_ok_during_outage > 0);

    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    // Latency, throughput, sync lag (the nodes' histograms) and availability.
    assert_eq!(html.matches("<svg").count(), 4, "four plots");
    let lag = r["sync_lag"].as_array().expect("sync_lag");
    assert!(
        lag.iter()
            .any(|p| p["source"] == "us-east-1" && p["destination"] == "eu-west-1"),
        "{lag:?}"
    );
    for heading in [
        "Latency over time",
        "Throughput",
        "Availability",
        "decrypt-everywhere",
    ] {
        assert!(html.contains(heading), "{heading}");
    }
    assert!(out.join("latency").is_dir());

    // The recorded run is judged the same again.
    let again = Command::new(kmsim_exe())
        .args(["experiment", "check", out_s])
        .output()
        .expect("run kmsim");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("decrypt-everywhere"));
}

#[test]
fn a_frozen_leader_fails_over_and_loses_nothing() {
    let (_tmp, out, ok, text) = run_quick("gray-leader", "5", &[]);
    assert!(ok, "the run failed:\n{text}");
    assert!(
        !text.contains("progress:"),
        "no progress lines when stderr is not a terminal"
    );
    let r = results(&out);
    for checker in ["no-lost-writes", "decrypt-everywhere", "convergence"] {
        assert_eq!(verdict(&r, checker), "pass", "{checker}: {r}");
    }
    assert_ne!(verdict(&r, "linearizable-keys"), "fail", "{r}");
    let recs = records(&out);
    let frozen = recs
        .iter()
        .filter(|x| matches!(x, Record::Fault(f) if f.edge == Edge::Start && f.what.starts_with("pause us-east-1/") && f.what.ends_with("(leader)") && f.error.is_none()))
        .count();
    let thawed = recs
        .iter()
        .filter(|x| matches!(x, Record::Fault(f) if f.edge == Edge::End && f.what.starts_with("resume") && f.error.is_none()))
        .count();
    assert_eq!(
        (frozen, thawed),
        (1, 1),
        "the leader was frozen, then thawed"
    );
    let writes = recs
        .iter()
        .filter(|x| matches!(x, Record::Op(op) if op.operation().is_write() && op.ok()))
        .count();
    assert!(writes > 0, "management writes were acknowledged");
}

#[test]
fn throttled_calls_are_retried_and_show_in_the_figures() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("run");
    let (ok, text) = run_experiment(&[
        "throttling-retries",
        "--quick",
        "--seed",
        "3",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(ok, "the run failed:\n{text}");
    let r = results(&out);
    for checker in ["no-lost-writes", "decrypt-everywhere", "availability"] {
        assert_eq!(verdict(&r, checker), "pass", "{checker}: {r}");
    }
    let recs = records(&out);
    let edges: Vec<&history::FaultEvent> = recs
        .iter()
        .filter_map(|x| match x {
            Record::Fault(f) if f.error.is_none() => Some(f),
            _ => None,
        })
        .collect();
    assert!(
        edges.iter().any(|f| f.edge == Edge::Start
            && f.what == "inject ThrottlingException on 20% of every operation in us-east-1"),
        "{edges:?}"
    );
    assert!(
        edges.iter().any(|f| f.edge == Edge::End),
        "the rule removed: {edges:?}"
    );
    let ops: Vec<&history::Op> = recs
        .iter()
        .filter_map(|x| match x {
            Record::Op(op) if op.phase == history::Phase::Workload => Some(op),
            _ => None,
        })
        .collect();
    let throttled = |op: &&&history::Op| matches!(&op.outcome, history::Outcome::Failed { code, .. } if code == "ThrottlingException");
    let in_us = ops
        .iter()
        .filter(|o| o.region == "us-east-1")
        .filter(throttled)
        .count();
    let in_eu = ops
        .iter()
        .filter(|o| o.region == "eu-west-1")
        .filter(throttled)
        .count();
    assert!(
        in_us > 0 && in_eu == 0,
        "throttled: us-east-1 {in_us}, eu-west-1 {in_eu}"
    );
    // A throttled attempt is followed by a retry of the same client, due when the first was.
    let retried = ops
        .iter()
        .filter(throttled)
        .filter(|t| {
            ops.iter()
                .any(|o| o.client == t.client && o.due == t.due && o.start > t.end)
        })
        .count();
    assert!(retried > 0, "no throttled call was retried");
    let counted: u64 = r["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .filter(|o| o["region"] == "us-east-1")
        .filter_map(|o| o["failed"]["ThrottlingException"].as_u64())
        .sum();
    assert_eq!(
        counted as usize, in_us,
        "results.json counts every throttle"
    );
}

/// A small experiment whose availability rule cannot hold (the only Region of its clients is
/// killed), and, with `abort`, a probe that stops it.
fn doomed(abort: bool) -> String {
    let probe = if abort {
        "[[probe]]\nname = \"no errors at all\"\nwindow = \"1s\"\nmax_error_rate = 0.0\nabort = true\n"
    } else {
        ""
    };
    format!(
        r#"
version = 1
name = "doomed"
[cluster]
regions = ["us-east-1", "eu-west-1"]
nodes = 1
[workload]
duration = "8s"
settle = "1s"
concurrency = 2
keys = 1
multi_region = 0.0
clients = ["us-east-1"]
mix = {{ encrypt = 1 }}
[[fault]]
action = "kill-region"
region = "us-east-1"
at = "2s"
for = "3s"
[[checks.availability]]
region = "us-east-1"
min_success = 0.99
{probe}"#
    )
}

/// Writes `text` as an experiment file in `dir` and runs it with seed 3 into `dir/<out>`.
fn run_file(dir: &Path, text: &str, out: &str) -> (std::path::PathBuf, bool, String) {
    let file = dir.join(format!("{out}.toml"));
    std::fs::write(&file, text).expect("write");
    let out = dir.join(out);
    let (ok, output) = run_experiment(&[
        file.to_str().expect("utf-8"),
        "--seed",
        "3",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    (out, ok, output)
}

#[test]
fn a_run_whose_availability_rule_breaks_fails_and_a_probe_can_abort_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, ok, text) = run_file(tmp.path(), &doomed(false), "run");
    assert!(!ok, "the run should fail:\n{text}");
    let r = results(&out);
    assert_eq!(verdict(&r, "availability"), "fail", "{r}");
    assert_eq!(r["passed"], false);

    let (out, ok, text) = run_file(tmp.path(), &doomed(true), "aborted");
    assert!(!ok, "the run should fail:\n{text}");
    assert!(text.contains("ABORTED: probe 'no errors at all'"), "{text}");
    let breaches = records(&out)
        .into_iter()
        .filter(|x| matches!(x, Record::Breach { aborted: true, .. }))
        .count();
    assert_eq!(breaches, 1);
}

#[test]
fn a_bad_file_is_refused_naming_its_field_and_nothing_is_started() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = doomed(false).replace("\"eu-west-1\"]", "\"mars\"]");
    let (out, ok, text) = run_file(tmp.path(), &bad, "run");
    assert!(!ok);
    assert!(text.contains("cluster.regions[1]"), "{text}");
    assert!(!out.exists(), "nothing was created for a refused file");
}

#[test]
fn a_primary_hand_over_under_a_partition_leaves_one_primary_and_everything_usable() {
    let (_tmp, out, ok, text) = run_quick(
        "primary-handover-partition",
        "14",
        &["--progress", "always"],
    );
    assert!(ok, "the run failed:\n{text}");
    let r = results(&out);
    assert_every_checker_passed(&r);

    let recs = records(&out);
    let ops: Vec<&history::Op> = recs
        .iter()
        .filter_map(|x| match x {
            Record::Op(op) => Some(op),
            _ => None,
        })
        .collect();
    // The partition's window, as the runner applied it.
    let edge = |e: Edge| {
        recs.iter()
            .find_map(|x| match x {
                Record::Fault(f) if f.edge == e && f.error.is_none() => Some(f.at),
                _ => None,
            })
            .unwrap_or_else(|| panic!("a fault {e:?}"))
    };
    let (cut, healed) = (edge(Edge::Start), edge(Edge::End));
    let handovers: Vec<&&history::Op> = ops
        .iter()
        .filter(|op| matches!(op.call, history::Call::UpdatePrimaryRegion { .. }))
        .collect();
    assert!(
        handovers.iter().any(|op| op.ok()),
        "a hand-over was acknowledged: {handovers:?}"
    );
    assert!(
        handovers
            .iter()
            .any(|op| op.start >= cut && op.start < healed),
        "a hand-over was asked for under the partition: {handovers:?}"
    );
    // Some primary really moved: a key is PRIMARY after the heal in a Region other than the
    // one that created it.
    let created_in: std::collections::BTreeMap<String, String> = ops
        .iter()
        .filter_map(|op| match (&op.call, &op.outcome) {
            (history::Call::CreateKey { .. }, history::Outcome::Ok { reply }) => reply
                .key
                .as_deref()
                .and_then(|arn| arn.rsplit_once("key/"))
                .map(|(_, id)| (id.to_string(), op.region.clone())),
            _ => None,
        })
        .collect();
    let moved = recs
        .iter()
        .filter(|x| {
            matches!(x, Record::Observation(Observation::Key { region, key_id, view: Some(v), .. })
                if v.multi_region_type.as_deref() == Some("PRIMARY")
                    && created_in.get(key_id).is_some_and(|home| home != region))
        })
        .count();
    assert!(moved > 0, "no primary moved");
    // Both Regions kept their cryptography up under the partition, and afterwards
    // signatures, MACs and re-encrypted ciphertexts were checked in both Regions.
    for region in ["us-east-1", "eu-west-1"] {
        let served = ops
            .iter()
            .filter(|op| op.region == region && op.start >= cut && op.end < healed && op.ok())
            .count();
        assert!(served > 0, "{region} served nothing under the partition");
        let verified = recs
            .iter()
            .filter(|x| matches!(x, Record::Observation(Observation::Verify { region: r, error: None, .. }) if r == region))
            .count();
        assert!(verified > 0, "nothing verified in {region}");
    }
    let re_encrypted: std::collections::BTreeSet<u64> = ops
        .iter()
        .filter(|op| op.ok() && matches!(op.call, history::Call::ReEncrypt { .. }))
        .map(|op| op.id)
        .collect();
    assert!(
        recs.iter().any(|x| matches!(x, Record::Observation(Observation::Decrypt { of, plaintext: Some(_), .. }) if re_encrypted.contains(of))),
        "no re-encrypted ciphertext was decrypted"
    );
    // `--progress always` without a terminal: plain progress lines on stderr.
    assert!(
        text.contains("progress: workload") && text.contains("ops/s"),
        "{text}"
    );
}
