//! `kmsim bench` against a real Region, over both protocols: every workload is really run
//! (none skipped) and every measured call succeeds. Short and bounded by call count; the
//! figures themselves are for the benchmark program, not for assertions.

use serde_json::Value;

use crate::harness::{kmsim, Cluster};

const R: &str = "us-east-1";

/// Runs a short `kmsim bench --workload all --json` with `extra` flags and checks each run.
fn bench_all(c: &Cluster, extra: &[&str]) -> Vec<Value> {
    let data = c.data_dir();
    let mut args = vec![
        "bench",
        "--data-dir",
        &data,
        "--workload",
        "all",
        "--concurrency",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--max-ops",
        "200",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = kmsim(&args);
    let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
    for r in &runs {
        assert!(r["skipped"].is_null(), "run skipped: {r}");
        assert!(r["ops"].as_u64().unwrap() > 0, "no call completed: {r}");
        assert_eq!(r["errors"].as_u64(), Some(0), "calls failed: {r}");
    }
    runs
}

#[test]
fn bench_runs_every_workload_over_grpc_and_aws_json() {
    let c = Cluster::start(&[R], 3);
    let names = |runs: &[Value]| -> Vec<String> {
        runs.iter()
            .map(|r| r["workload"].as_str().unwrap().to_string())
            .collect()
    };
    let grpc = bench_all(&c, &[]);
    assert_eq!(
        names(&grpc),
        [
            "encrypt",
            "decrypt",
            "generate-data-key",
            "sign",
            "generate-mac",
            "create-key"
        ]
    );
    let aws = bench_all(&c, &["--protocol", "aws-json"]);
    assert_eq!(
        names(&aws),
        [
            "encrypt",
            "decrypt",
            "generate-data-key",
            "sign",
            "generate-mac"
        ]
    );
}
