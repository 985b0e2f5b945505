//! `kmsim bench`: throughput and latency of KMS operations against one running Region. The load
//! generator itself is `kmsim_sim::bench`; this file parses flags and prints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

use kmsim_sim::bench::{
    check_loopback, parse_concurrency_list, parse_duration, plan, run_workload, setup, BenchResult,
    RunConfig, WorkloadChoice, MAX_PAYLOAD_BYTES,
};
use kmsim_sim::cluster::ClusterDir;

/// Shown under the flags of `kmsim bench --help`: what the figures mean and how far a run goes.
const NOTES: &str = "\
Workloads: encrypt (Encrypt of --payload-bytes of plaintext), decrypt (Decrypt of a ciphertext \
made during setup), generate-data-key (GenerateDataKey, AES_256), create-key (CreateKey: the \
commit latency of a write through Raft). `all` runs the first three at every --concurrency level \
and create-key at the levels up to 8 (by default 1 and 8).

Setup creates one symmetric key, described \"kmsim bench\", and one ciphertext. Each run then \
starts N concurrent tasks, spread round-robin over every node of the Region (followers serve \
crypto from their applied state), each with one call in flight at a time. Calls started during \
--warmup are not counted. Latency is recorded for every call, successes and errors alike; failed \
calls are counted per AWS error code.

Bounded: every run stops by itself after --warmup + --duration or after --max-ops calls \
(warmup included), whichever comes first, and every call has a 10 s deadline. CreateKey runs \
create at most --max-ops keys each (default 20000), and the keys stay in the cluster.

The load generator runs on the same machine as the cluster, so it competes with the nodes for \
CPU: the figures include that cost and are not those of a dedicated client. Only loopback \
endpoints are used: the nodes of the topology in --data-dir, or the --endpoint list.

Exit status: 0 when every measured call succeeded, 1 when any failed (the results are printed \
either way) or when the benchmark could not run.";

/// Measures a running cluster.
#[derive(Args)]
#[command(after_help = NOTES)]
pub struct BenchArgs {
    /// The cluster's data directory; the benchmark loads the nodes of one Region of its
    /// topology.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The Region of --data-dir to load [default: the topology's first Region].
    #[arg(long)]
    region: Option<String>,
    /// Load these nodes (host:port, loopback only; repeat or comma separate) instead of the
    /// topology in --data-dir; they must all belong to one Region.
    #[arg(long = "endpoint", value_name = "HOST:PORT", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// What to measure: encrypt, decrypt, generate-data-key, create-key, or all.
    #[arg(long, default_value = "all", value_parser = WorkloadChoice::from_str)]
    workload: WorkloadChoice,
    /// Concurrency levels, comma separated; one run per workload and level (1 to 4096 each).
    #[arg(long, default_value = "1,8,64", value_parser = |s: &str| parse_concurrency_list(s).map(Levels))]
    concurrency: Levels,
    /// Measured time per run, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Time at the start of every run whose calls are not counted (0s for none).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Plaintext size of the encrypt and decrypt workloads, in bytes (1 to 4096).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u16).range(1..=MAX_PAYLOAD_BYTES as i64))]
    payload_bytes: u16,
    /// Cap on calls per run, warmup included [default: 2000000 for the crypto workloads, 20000 for
    /// create-key].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_ops: Option<u64>,
    /// Print a JSON array of result objects instead of a table.
    #[arg(long)]
    json: bool,
}

/// The parsed `--concurrency` list (a newtype so clap takes the whole list as one value).
#[derive(Clone)]
struct Levels(Vec<usize>);

/// `kmsim bench`
pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    if a.duration.is_zero() {
        anyhow::bail!("--duration must be more than 0");
    }
    let (region, endpoints) = resolve_endpoints(&a)?;
    for e in &endpoints {
        check_loopback(e)?;
    }
    let runs = plan(a.workload, &a.concurrency.0);
    let rt = super::runtime()?;
    let results = rt.block_on(async {
        let fixture = setup(&endpoints, usize::from(a.payload_bytes)).await?;
        eprintln!(
            "kmsim bench: {region}, {} node(s) {}; key {}; {} run(s) of {:?} + {:?} warmup; the generator shares this machine's {} core(s) with the cluster",
            endpoints.len(),
            endpoints.join(","),
            fixture.key_arn,
            runs.len(),
            a.duration,
            a.warmup,
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        );
        let mut results = Vec::with_capacity(runs.len());
        for (workload, concurrency) in runs {
            let cfg = RunConfig {
                workload,
                concurrency,
                duration: a.duration,
                warmup: a.warmup,
                max_ops: a.max_ops.unwrap_or(workload.default_max_ops()),
            };
            eprintln!("running {workload} at concurrency {concurrency} (at most {} calls)", cfg.max_ops);
            results.push(run_workload(&endpoints, &fixture, &cfg).await?);
        }
        anyhow::Ok(results)
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_table(&results);
    }
    let failed = results.iter().any(|r| r.errors > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The Region's name (for the banner) and the endpoints to load: `--endpoint` if given, else the
/// nodes of one Region of the topology.
fn resolve_endpoints(a: &BenchArgs) -> anyhow::Result<(String, Vec<String>)> {
    if !a.endpoints.is_empty() {
        if a.region.is_some() {
            anyhow::bail!(
                "--region selects nodes of --data-dir; it cannot be used with --endpoint"
            );
        }
        let endpoints: Vec<String> = a.endpoints.iter().map(|e| e.trim().to_string()).collect();
        return Ok(("endpoints".to_string(), endpoints));
    }
    let dir = ClusterDir::new(&a.data_dir);
    let nodes = dir.nodes()?;
    let mut regions: Vec<&str> = Vec::new();
    for (n, _) in &nodes {
        if !regions.contains(&n.region.as_str()) {
            regions.push(&n.region);
        }
    }
    let region = match &a.region {
        Some(r) if regions.contains(&r.as_str()) => r.clone(),
        Some(r) => anyhow::bail!(
            "region {r} is not in {}; it has {}",
            a.data_dir.display(),
            regions.join(", ")
        ),
        None => regions.first().map(|r| r.to_string()).ok_or_else(|| {
            anyhow::anyhow!("the topology in {} has no nodes", a.data_dir.display())
        })?,
    };
    let endpoints = nodes
        .iter()
        .filter(|(n, _)| n.region == region)
        .map(|(_, e)| e.advertise_addr())
        .collect();
    Ok((region, endpoints))
}

/// One line per run, then the error codes of the runs that had errors.
fn print_table(results: &[BenchResult]) {
    println!(
        "{:<18} {:>5} {:>10} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "WORKLOAD", "CONC", "OPS", "ERRORS", "OPS/S", "P50 ms", "P99 ms", "P999 ms", "MAX ms"
    );
    for r in results {
        println!(
            "{:<18} {:>5} {:>10} {:>7} {:>10.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3}{}",
            r.workload.name(),
            r.concurrency,
            r.ops,
            r.errors,
            r.ops_per_s,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            if r.hit_max_ops {
                "  (stopped at --max-ops)"
            } else {
                ""
            }
        );
    }
    for r in results.iter().filter(|r| r.errors > 0) {
        let codes: Vec<String> = r
            .error_codes
            .iter()
            .map(|(code, n)| format!("{code} x{n}"))
            .collect();
        println!(
            "errors in {} at concurrency {}: {}",
            r.workload,
            r.concurrency,
            codes.join(", ")
        );
    }
}
