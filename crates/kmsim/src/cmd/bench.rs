//! `kmsim bench`: throughput and latency of KMS operations against one running Region. The load
//! generator itself is `kmsim_sim::bench`; this file parses flags and prints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

use kmsim_node::tls::Dialer;
use kmsim_sim::aws_client::{AwsJsonClient, Signer};
use kmsim_sim::bench::{
    aws_json, check_loopback, check_loopback_url, grpc, parse_concurrency_list, parse_duration,
    parse_rate, plan, BenchResult, Fixture, Protocol, RunConfig, Workload, WorkloadChoice,
    MAX_PAYLOAD_BYTES,
};
use kmsim_sim::cluster::ClusterDir;

/// Shown under the flags of `kmsim bench --help`: what the figures mean and how far a run goes.
const NOTES: &str = "\
Workloads: encrypt (Encrypt of --payload-bytes of plaintext), decrypt (Decrypt of a ciphertext \
made during setup), generate-data-key (GenerateDataKey, AES_256), sign (Sign, RAW, ECDSA_SHA_384 on an \
ECC_NIST_P384 key, of a 256-byte message), generate-mac (GenerateMac, HMAC_SHA_256 on an HMAC_256 \
key, of a 256-byte message), create-key (CreateKey: the commit latency of a write through \
Raft). `all` runs encrypt, decrypt, generate-data-key, sign and generate-mac at every \
--concurrency level, and over grpc create-key at the levels up to 8 (by default 1 and 8).

Protocols: grpc (kmsim.kms.v1 to the nodes of one Region, host:port endpoints) and aws-json (AWS \
JSON 1.1 over HTTP/1.1, one connection per task kept alive as long as the endpoint allows, every \
request signed with SigV4 by the aws-sigv4 crate, \
http://host:port endpoints, or https://host:port trusting the CA of --data-dir's cluster, \
started with --aws-tls). Over grpc the calls use the cluster's operator certificate (mutual TLS). \
aws-json uses only standard KMS calls (CreateKey, DescribeKey, \
Encrypt, Decrypt, GenerateDataKey, Sign, GenerateMac), so it loads any AWS-compatible KMS endpoint on this \
machine, e.g. another emulator, for side-by-side figures. Without --endpoint it loads the AWS \
endpoints of the nodes of one Region of --data-dir; `--endpoint http://127.0.0.1:4599` loads \
the gateway. Requests are signed for --region (default: the Region loaded, else us-east-1) with \
--access-key-id/--secret-access-key (default: the topology's first credentials, else test/test).

Over aws-json a task opens a new connection whenever the endpoint has closed its last one \
(servers that answer every request with Connection: close, such as moto's, or that drop idle \
connections): a call whose request had not gone out yet is sent on the new connection and \
counted as a reconnection (RECONN), not an error; a call whose answer was lost is an error \
(TransportError), never resent. Other client-side error codes: Timeout (no answer within the \
call's deadline), ConnectError (no connection could be opened).

Setup creates one symmetric key, described \"kmsim bench\" (with --key-policy as its policy), one ciphertext, an ECC_NIST_P384 \
SIGN_VERIFY key for sign and an HMAC_256 key for generate-mac (over aws-json, an endpoint that \
refuses one of these, e.g. with UnsupportedOperationException, gets the runs that need it \
reported as skipped, with the answer; the other runs are unaffected). Each run then starts N concurrent tasks, spread round-robin over \
the endpoints (followers serve crypto from their applied state), each with one call in flight \
at a time. Closed loop (the default): each task makes its next call as soon as the last one \
answered, and latency runs from a call's start. Open loop (--rate R): call k is due k/R seconds \
after the run's start, whatever happened to the calls before it; the tasks take the \
due calls in order (so at most N are in flight and nothing queues in memory), and latency runs \
from when the call was due, so time a call spent waiting for a free task counts (coordinated \
omission corrected, as wrk2 does); the timer's resolution adds up to 1 ms. An open-loop run \
also reports the calls that started more than 1 ms late, the achieved rate, the service time \
(latency from the actual start) and the backlog: calls due before the end that never started \
because every task was busy (the endpoint, or the generator at this concurrency, could not keep \
up). Calls started (open loop: due) during --warmup are not counted. Latency is recorded for \
every call, successes and errors alike; failed calls are counted per AWS error code.

--json prints one object per run with the figures of the table, reconnections, and histogram: \
the latency HdrHistogram (microseconds) in its standard interchange form (V2 compressed, \
base64: hdr_v2_compressed_base64, readable by any HdrHistogram implementation) with a \
percentile table (percentiles_us: p50, p90, p99, p99.9, p99.99, max); an open-loop run adds \
open_loop: rate, late, backlog and service_histogram (same form).

Bounded: every run stops by itself after --warmup + --duration or after --max-ops calls \
(warmup included), whichever comes first, and every call has a 10 s deadline. CreateKey runs \
create at most --max-ops keys each (default 20000), and the keys stay in the cluster.

The load generator runs on the same machine as the cluster, so it competes with the nodes for \
CPU: the figures include that cost and are not those of a dedicated client. Only loopback \
endpoints are used: the nodes of the topology in --data-dir, or the --endpoint list.

Exit status: 0 when every measured call succeeded (skipped runs do not count), 1 when any failed \
(the results are printed either way) or when the benchmark could not run.";

/// Measures a running cluster.
#[derive(Args)]
#[command(after_help = NOTES)]
pub struct BenchArgs {
    /// The cluster's data directory; the benchmark loads the nodes of one Region of its
    /// topology.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The Region of --data-dir to load [default: the topology's first Region]; with
    /// --protocol aws-json, also the Region requests are signed for (default us-east-1 when
    /// --endpoint is given).
    #[arg(long)]
    region: Option<String>,
    /// The API to load: grpc or aws-json.
    #[arg(long, default_value = "grpc", value_parser = Protocol::from_str)]
    protocol: Protocol,
    /// Load these endpoints instead of the topology in --data-dir (loopback only; repeat or
    /// comma separate): host:port of nodes of one Region for grpc, http://host:port (or https://
    /// with the CA of --data-dir's cluster) for aws-json (a node's AWS endpoint, the gateway, or any AWS-compatible KMS endpoint).
    #[arg(long = "endpoint", value_name = "ENDPOINT", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// aws-json: the access key id to sign with [default: the topology's, else test].
    #[arg(long, env = "KMSIM_BENCH_ACCESS_KEY_ID")]
    access_key_id: Option<String>,
    /// aws-json: the secret access key to sign with [default: the topology's, else test].
    #[arg(long, env = "KMSIM_BENCH_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// aws-json: a session token to send (temporary credentials).
    #[arg(long, env = "KMSIM_BENCH_SESSION_TOKEN", hide_env_values = true)]
    session_token: Option<String>,
    /// What to measure: encrypt, decrypt, generate-data-key, sign, generate-mac, create-key,
    /// describe-key (a management read: it confirms the read index with the Region's leader),
    /// describe-missing-key (a NotFoundException, confirmed the same way), or all (the first
    /// six).
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
    /// Open loop: calls per second across every task, due at fixed intervals from each run's
    /// start, latency counted from when each was due (--concurrency then caps the calls in
    /// flight); without it, every task calls in a closed loop.
    #[arg(long, value_name = "CALLS_PER_S", value_parser = parse_rate)]
    rate: Option<u64>,
    /// Print a JSON array of result objects instead of a table.
    #[arg(long)]
    json: bool,
    /// The key policy (JSON text) of the symmetric key setup creates, the one the encrypt,
    /// decrypt and generate-data-key workloads use (default: the endpoint's default policy);
    /// e.g. to measure what authorization costs with a policy of several conditions.
    #[arg(long, value_name = "JSON")]
    key_policy: Option<String>,
}

/// The parsed `--concurrency` list (a newtype so clap takes the whole list as one value).
#[derive(Clone)]
struct Levels(Vec<usize>);

/// `kmsim bench`
pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    // Against the topology of a cluster in containers, from inside its networks; explicit
    // --endpoint addresses are loaded from here.
    if a.endpoints.is_empty() {
        if let Some(code) = super::relayed(&a.data_dir)? {
            return Ok(code);
        }
    }
    if a.duration.is_zero() {
        anyhow::bail!("--duration must be more than 0");
    }
    let target = resolve_target(&a)?;
    let runs = plan(a.workload, &a.concurrency.0, a.protocol);
    let rt = super::runtime()?;
    let results = rt.block_on(async {
        let payload = usize::from(a.payload_bytes);
        let fixture = match &target {
            Target::Grpc(dialer, endpoints) => {
                grpc::setup(dialer, endpoints, payload, a.key_policy.as_deref()).await?
            }
            Target::AwsJson(clients) => {
                aws_json::setup(clients, payload, a.key_policy.as_deref()).await?
            }
        };
        print_banner(&a, &target, &fixture, runs.len());
        let mut results = Vec::with_capacity(runs.len());
        for (workload, concurrency) in runs {
            let cfg = RunConfig {
                workload,
                concurrency,
                duration: a.duration,
                warmup: a.warmup,
                max_ops: a.max_ops.unwrap_or(workload.default_max_ops()),
                rate: a.rate,
            };
            let pace = match a.rate {
                Some(r) => format!(", open loop at {r} calls/s"),
                None => String::new(),
            };
            eprintln!(
                "running {workload} at concurrency {concurrency}{pace} (at most {} calls)",
                cfg.max_ops
            );
            results.push(match &target {
                Target::Grpc(dialer, endpoints) => {
                    grpc::run_workload(dialer, endpoints, &fixture, &cfg).await?
                }
                Target::AwsJson(clients) => aws_json::run_workload(clients, &fixture, &cfg).await?,
            });
        }
        anyhow::Ok(results)
    })?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
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

/// What a benchmark loads.
enum Target {
    /// gRPC `host:port` of the nodes of one Region, dialed as the operator.
    Grpc(Dialer, Vec<String>),
    /// One AWS JSON client per endpoint URL.
    AwsJson(Vec<AwsJsonClient>),
}

fn print_banner(a: &BenchArgs, target: &Target, fixture: &Fixture, runs: usize) {
    let (what, endpoints) = match target {
        Target::Grpc(_, e) => ("grpc", e.clone()),
        Target::AwsJson(c) => ("aws-json", c.iter().map(|c| c.url()).collect()),
    };
    eprintln!(
        "kmsim bench: {what}, {} endpoint(s) {}; key {}; {runs} run(s) of {:?} + {:?} warmup; the generator shares this machine's {} core(s) with the cluster",
        endpoints.len(),
        endpoints.join(","),
        fixture.key_arn,
        a.duration,
        a.warmup,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    );
    for w in [Workload::Sign, Workload::GenerateMac] {
        if let Some(why) = fixture.skip_reason(w) {
            eprintln!("{w} runs will be skipped: {why}");
        }
    }
}

/// The endpoints to load: `--endpoint` if given, else the nodes of one Region of the topology.
fn resolve_target(a: &BenchArgs) -> anyhow::Result<Target> {
    let trimmed: Vec<String> = a.endpoints.iter().map(|e| e.trim().to_string()).collect();
    match a.protocol {
        Protocol::Grpc => {
            // The operator certificate of the cluster in --data-dir (plaintext without one).
            let dir = ClusterDir::new(&a.data_dir);
            let dialer = match dir.topology_path().exists() {
                true => dir.operator_dialer()?,
                false => Dialer::plain(),
            };
            if !trimmed.is_empty() {
                if a.region.is_some() {
                    anyhow::bail!(
                        "--region selects nodes of --data-dir; it cannot be used with --endpoint"
                    );
                }
                for e in &trimmed {
                    check_loopback(e)?;
                }
                return Ok(Target::Grpc(dialer, trimmed));
            }
            let (_, nodes) = region_nodes(a)?;
            let endpoints: Vec<String> = nodes.iter().map(|n| n.advertise_addr()).collect();
            for e in &endpoints {
                check_loopback(e)?;
            }
            Ok(Target::Grpc(dialer, endpoints))
        }
        Protocol::AwsJson => {
            let topology = ClusterDir::new(&a.data_dir).topology().ok();
            let (region, urls) = if trimmed.is_empty() {
                let (region, nodes) = region_nodes(a)?;
                let urls: Vec<String> = nodes
                    .iter()
                    .filter_map(|n| n.aws_advertise_addr())
                    .map(|addr| {
                        let scheme = topology.as_ref().map_or("http", |t| t.aws_scheme());
                        format!("{scheme}://{addr}")
                    })
                    .collect();
                anyhow::ensure!(
                    !urls.is_empty(),
                    "the nodes of {region} in {} serve no AWS endpoint (no aws_listen)",
                    a.data_dir.display()
                );
                (region, urls)
            } else {
                let region = a.region.clone().unwrap_or_else(|| "us-east-1".to_string());
                (region, trimmed)
            };
            let cred = topology.as_ref().and_then(|t| t.credentials.first());
            let signer = Signer {
                access_key_id: a
                    .access_key_id
                    .clone()
                    .or_else(|| cred.map(|c| c.access_key_id.clone()))
                    .unwrap_or_else(|| "test".to_string()),
                secret_access_key: a
                    .secret_access_key
                    .clone()
                    .or_else(|| cred.map(|c| c.secret_access_key.expose().to_string()))
                    .unwrap_or_else(|| "test".to_string()),
                session_token: a.session_token.clone().or_else(|| {
                    cred.and_then(|c| c.session_token.as_ref().map(|t| t.expose().to_string()))
                }),
                region,
            };
            // https:// endpoints are trusted through the cluster's CA (--aws-tls clusters).
            let ca = match topology.as_ref().and_then(|t| t.tls.as_ref()) {
                Some(t) if urls.iter().any(|u| u.starts_with("https://")) => Some(t.read_ca()?),
                _ => None,
            };
            let mut clients = Vec::with_capacity(urls.len());
            for url in &urls {
                check_loopback_url(url)?;
                clients.push(AwsJsonClient::with_ca(url, signer.clone(), ca.as_deref())?);
            }
            Ok(Target::AwsJson(clients))
        }
    }
}

/// The name and nodes of the Region `--region` (default: the first) of the topology in
/// `--data-dir`.
fn region_nodes(a: &BenchArgs) -> anyhow::Result<(String, Vec<kmsim_node::config::NodeEntry>)> {
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
    let entries = nodes
        .into_iter()
        .filter(|(n, _)| n.region == region)
        .map(|(_, e)| e)
        .collect();
    Ok((region, entries))
}

/// One line per run, a line of open-loop figures under each open-loop run, then the error
/// codes of the runs that had errors.
fn print_table(results: &[BenchResult]) {
    outln!(
        "{:<18} {:>5} {:>10} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "WORKLOAD",
        "CONC",
        "OPS",
        "ERRORS",
        "OPS/S",
        "P50 ms",
        "P99 ms",
        "P999 ms",
        "MAX ms",
        "RECONN"
    );
    for r in results {
        if let Some(why) = &r.skipped {
            outln!(
                "{:<18} {:>5} skipped: {why}",
                r.workload.name(),
                r.concurrency
            );
            continue;
        }
        outln!(
            "{:<18} {:>5} {:>10} {:>7} {:>10.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7}{}",
            r.workload.name(),
            r.concurrency,
            r.ops,
            r.errors,
            r.ops_per_s,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            r.reconnections,
            if r.hit_max_ops {
                "  (stopped at --max-ops)"
            } else {
                ""
            }
        );
        if let Some(open) = &r.open_loop {
            let ms = |us: u64| us as f64 / 1000.0;
            let service = &open.service_histogram.percentiles_us;
            outln!(
                "{:<18} open loop at {}/s: achieved {:.1} calls/s, {} started late, backlog {}; service time p50 {:.3} p99 {:.3} max {:.3} ms{}",
                "",
                open.rate,
                r.calls_per_s,
                open.late,
                open.backlog,
                ms(service.p50),
                ms(service.p99),
                ms(service.max),
                if open.backlog > 0 {
                    "  (could not keep up: raise --concurrency or lower --rate)"
                } else {
                    ""
                }
            );
        }
    }
    for r in results.iter().filter(|r| r.errors > 0) {
        let codes: Vec<String> = r
            .error_codes
            .iter()
            .map(|(code, n)| format!("{code} x{n}"))
            .collect();
        outln!(
            "errors in {} at concurrency {}: {}",
            r.workload,
            r.concurrency,
            codes.join(", ")
        );
    }
}
