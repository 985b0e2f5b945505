//! The load generator behind `kmsim bench`: it measures the KMS API of one running Region.
//!
//! A benchmark is a list of runs, one per (workload, concurrency). [`setup`] creates one
//! symmetric key and one ciphertext; [`run_workload`] then drives N tokio tasks that call the
//! Region's nodes round-robin and returns a [`BenchResult`]. By default the loop is closed (each
//! task makes its next call as soon as the last one answered); with a rate it is open
//! ([`schedule`]): calls are due at fixed intervals from the run's start and each one's latency
//! is counted from when it was due, so a stalled endpoint cannot hide its stall by slowing the
//! generator down (coordinated omission). Every run stops by itself: at the end of its duration
//! or after `max_ops` calls, whichever comes first, and every call has a deadline. Latency is
//! recorded for every call (successes and errors) in microseconds, per task, and merged at the
//! end ([`histogram`] is its JSON form); calls that start (or, open loop, are due) during the
//! warmup are not counted. Failed calls are counted per AWS error code, never dropped.
//!
//! The generator runs on the same machine as the cluster, so it competes with the nodes for CPU
//! and its figures include that. It only talks to loopback endpoints.
//!
//! [`failover`] is the measurement behind `kmsim scenario failover`: the pause in acknowledged
//! writes through the gateway when a Region's leader is killed or frozen.

pub mod aws_json;
pub mod failover;
pub mod grpc;
pub mod histogram;
pub mod runner;
pub mod schedule;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use kmsim_core::KmsError;

pub use grpc::{run_workload, setup};
pub use histogram::HistogramReport;
pub use runner::{check_run, run_clients, skipped, BenchClient};
pub use schedule::{parse_rate, Schedule};

/// Description of every key the benchmark creates, so they are easy to recognise later.
pub const BENCH_KEY_DESCRIPTION: &str = "kmsim bench";

/// Largest plaintext `Encrypt` accepts (AWS limit).
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// Default cap on calls per run for the crypto workloads.
pub const DEFAULT_MAX_CRYPTO_OPS: u64 = 2_000_000;

/// Default cap on calls per run for `CreateKey`: every call leaves a key behind.
pub const DEFAULT_MAX_CREATE_KEYS: u64 = 20_000;

/// Highest concurrency accepted: beyond this the generator itself is what gets measured.
pub const MAX_CONCURRENCY: usize = 4096;

/// Deadline of one benchmark call; a call that takes longer counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long setup waits for the new keys to be applied on every node.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Size of the message the Sign (RAW, ECDSA_SHA_384) and GenerateMac (HMAC_SHA_256) workloads
/// authenticate.
pub const MESSAGE_BYTES: usize = 256;

/// Largest latency the histograms track, in microseconds (one minute); longer calls saturate.
const HISTOGRAM_MAX_US: u64 = 60_000_000;

/// Errors of the benchmark itself (the cluster's answers to benchmark calls are counted in the
/// result instead).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An endpoint is malformed or not a loopback address.
    #[error("invalid endpoint '{endpoint}': {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A node could not be reached.
    #[error("cannot connect to {peer}")]
    Connect {
        /// The node's address.
        peer: String,
        /// Why the connection failed.
        source: tonic::transport::Error,
    },
    /// A setup call was answered with an error.
    #[error("setup {step} on {peer} failed")]
    Setup {
        /// Which setup step failed.
        step: &'static str,
        /// The node that answered.
        peer: String,
        /// The API error.
        source: KmsError,
    },
    /// The benchmark's parameters are not usable.
    #[error("{0}")]
    Invalid(String),
    /// An AWS JSON setup call could not be made.
    #[error("{0}")]
    Client(#[from] crate::aws_client::ClientError),
}

/// Which face of the KMS API the benchmark speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `kmsim.kms.v1` over gRPC, to the nodes of one kmsim Region.
    Grpc,
    /// AWS JSON 1.1 over HTTP/1.1 with SigV4, to any AWS-compatible KMS endpoint.
    AwsJson,
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grpc" => Ok(Protocol::Grpc),
            "aws-json" => Ok(Protocol::AwsJson),
            other => Err(format!(
                "unknown protocol '{other}'; expected grpc or aws-json"
            )),
        }
    }
}

/// One KMS operation the benchmark can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `Encrypt` of a `payload_bytes` plaintext under the benchmark key.
    Encrypt,
    /// `Decrypt` of the ciphertext made during setup.
    Decrypt,
    /// `GenerateDataKey` with key spec `AES_256` under the benchmark key.
    GenerateDataKey,
    /// `Sign` (RAW, `ECDSA_SHA_384`) of a [`MESSAGE_BYTES`] message under an
    /// `ECC_NIST_P384` `SIGN_VERIFY` key.
    Sign,
    /// `GenerateMac` (`HMAC_SHA_256`) of a [`MESSAGE_BYTES`] message under an `HMAC_256` key.
    GenerateMac,
    /// `CreateKey` of a symmetric key: the latency of a commit through Raft.
    CreateKey,
    /// `DescribeKey` of the benchmark key: a management read, which confirms the Region's read
    /// index with the leader before it answers (what read-after-write costs).
    DescribeKey,
    /// `DescribeKey` of a key that does not exist: a negative answer, confirmed with the
    /// leader before it is given (every call answers `NotFoundException`).
    DescribeMissingKey,
}

/// A well-formed key ID that no Region holds, for [`Workload::DescribeMissingKey`].
pub const MISSING_KEY_ID: &str = "00000000-0000-4000-8000-000000000000";

impl Workload {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Encrypt => "encrypt",
            Workload::Decrypt => "decrypt",
            Workload::GenerateDataKey => "generate-data-key",
            Workload::Sign => "sign",
            Workload::GenerateMac => "generate-mac",
            Workload::CreateKey => "create-key",
            Workload::DescribeKey => "describe-key",
            Workload::DescribeMissingKey => "describe-missing-key",
        }
    }

    /// The run's default cap on calls: every `CreateKey` leaves a key behind.
    pub fn default_max_ops(self) -> u64 {
        match self {
            Workload::CreateKey => DEFAULT_MAX_CREATE_KEYS,
            _ => DEFAULT_MAX_CRYPTO_OPS,
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What `--workload` selects: one workload, or the standard set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadChoice {
    /// Only this workload, at every concurrency level.
    One(Workload),
    /// Encrypt, Decrypt, GenerateDataKey, Sign and GenerateMac at every level, then
    /// CreateKey at the levels up to [`ALL_CREATE_KEY_MAX_CONCURRENCY`] (over gRPC only: against
    /// another endpoint the benchmark creates no more keys than its setup needs).
    All,
}

/// In `all`, CreateKey runs only at concurrency levels up to this: it measures commit latency,
/// and higher levels would mostly create more keys.
pub const ALL_CREATE_KEY_MAX_CONCURRENCY: usize = 8;

impl FromStr for WorkloadChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "encrypt" => WorkloadChoice::One(Workload::Encrypt),
            "decrypt" => WorkloadChoice::One(Workload::Decrypt),
            "generate-data-key" => WorkloadChoice::One(Workload::GenerateDataKey),
            "sign" => WorkloadChoice::One(Workload::Sign),
            "generate-mac" => WorkloadChoice::One(Workload::GenerateMac),
            "create-key" => WorkloadChoice::One(Workload::CreateKey),
            "describe-key" => WorkloadChoice::One(Workload::DescribeKey),
            "describe-missing-key" => WorkloadChoice::One(Workload::DescribeMissingKey),
            "all" => WorkloadChoice::All,
            other => {
                return Err(format!(
                    "unknown workload '{other}'; expected encrypt, decrypt, generate-data-key, sign, generate-mac, create-key, describe-key, describe-missing-key or all"
                ))
            }
        })
    }
}

/// The runs of a benchmark, in order: every (workload, concurrency) pair to measure.
pub fn plan(
    choice: WorkloadChoice,
    levels: &[usize],
    protocol: Protocol,
) -> Vec<(Workload, usize)> {
    match choice {
        WorkloadChoice::One(w) => levels.iter().map(|&c| (w, c)).collect(),
        WorkloadChoice::All => {
            let mut runs = Vec::new();
            let crypto = [
                Workload::Encrypt,
                Workload::Decrypt,
                Workload::GenerateDataKey,
                Workload::Sign,
                Workload::GenerateMac,
            ];
            for w in crypto {
                runs.extend(levels.iter().map(|&c| (w, c)));
            }
            if protocol == Protocol::AwsJson {
                return runs;
            }
            let mut create: Vec<usize> = levels
                .iter()
                .copied()
                .filter(|&c| c <= ALL_CREATE_KEY_MAX_CONCURRENCY)
                .collect();
            // Every level is high: still measure commit latency once, at the lowest.
            if create.is_empty() {
                create.extend(levels.iter().copied().min());
            }
            runs.extend(create.into_iter().map(|c| (Workload::CreateKey, c)));
            runs
        }
    }
}

/// Parses a duration such as `10s`, `500ms`, `1.5s`, `2m` or `1h`; a bare number is seconds
/// (one reader of times with units for the whole command line and the experiment files).
pub use kmsim_experiment::units::parse_duration;

/// Parses a comma separated list of concurrency levels such as `1,8,64`; each between 1 and
/// [`MAX_CONCURRENCY`], no duplicates, order kept.
pub fn parse_concurrency_list(s: &str) -> Result<Vec<usize>, String> {
    let mut levels = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let n: usize = part
            .parse()
            .map_err(|_| format!("'{part}' is not a concurrency level (a positive integer)"))?;
        if n == 0 || n > MAX_CONCURRENCY {
            return Err(format!("concurrency {n} is outside 1..={MAX_CONCURRENCY}"));
        }
        if levels.contains(&n) {
            return Err(format!("concurrency {n} is listed twice"));
        }
        levels.push(n);
    }
    Ok(levels)
}

/// Checks that `endpoint` is `host:port` on the loopback interface (`127.0.0.0/8`, `[::1]` or
/// `localhost`): the benchmark never sends load anywhere else, but for one case: relayed into
/// a cluster in containers ([`crate::container::relay`]), it loads that cluster's nodes, by
/// the names the topology gives them on the networks kmsim created for it (a relayed command
/// never has `--endpoint`: those run on the host).
pub fn check_loopback(endpoint: &str) -> Result<(), BenchError> {
    let invalid = |reason: &str| BenchError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    if crate::container::relay::in_cluster() {
        return Ok(());
    }
    if let Ok(addr) = endpoint.parse::<SocketAddr>() {
        return if addr.ip().is_loopback() {
            Ok(())
        } else {
            Err(invalid(
                "not a loopback address; kmsim bench only loads local clusters",
            ))
        };
    }
    match endpoint.rsplit_once(':') {
        Some(("localhost", port)) if port.parse::<u16>().is_ok() => Ok(()),
        Some(_) => Err(invalid(
            "not a loopback address; kmsim bench only loads local clusters",
        )),
        None => Err(invalid("expected host:port, e.g. 127.0.0.1:4601")),
    }
}

/// Checks that `url` is `http://host:port` on the loopback interface (see [`check_loopback`]).
pub fn check_loopback_url(url: &str) -> Result<(), BenchError> {
    let invalid = |reason: &str| BenchError::InvalidEndpoint {
        endpoint: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid("expected http://HOST:PORT, e.g. http://127.0.0.1:4599"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('?') {
        return Err(invalid("the endpoint URL has no path"));
    }
    check_loopback(authority)
        .map_err(|_| invalid("not a loopback address; kmsim bench only loads local endpoints"))
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The operation.
    pub workload: Workload,
    /// Concurrent tasks, each with at most one call in flight.
    pub concurrency: usize,
    /// Measured time, after the warmup.
    pub duration: Duration,
    /// Time at the start whose calls are not counted.
    pub warmup: Duration,
    /// Cap on calls of the whole run, warmup included.
    pub max_ops: u64,
    /// Open loop: calls per second across every task (at most `concurrency` in flight);
    /// `None` for the closed loop.
    pub rate: Option<u64>,
}

/// What every run works on, made once by [`setup`].
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The benchmark key's ARN.
    pub key_arn: String,
    /// The plaintext Encrypt sends.
    pub plaintext: Vec<u8>,
    /// A ciphertext of `plaintext` under the key, for Decrypt.
    pub ciphertext: Vec<u8>,
    /// The ARN of the `ECC_NIST_P384` signing key, or why there is none (the endpoint refused
    /// to create it); Sign runs are skipped with that reason.
    pub sign_key: Result<String, String>,
    /// The ARN of the `HMAC_256` key, or why there is none; GenerateMac runs are skipped with
    /// that reason.
    pub mac_key: Result<String, String>,
}

impl Fixture {
    /// Why runs of `workload` cannot be made against this endpoint (its extra key could not be
    /// created), or `None` when they can.
    pub fn skip_reason(&self, workload: Workload) -> Option<&str> {
        let key = match workload {
            Workload::Sign => &self.sign_key,
            Workload::GenerateMac => &self.mac_key,
            _ => return None,
        };
        key.as_ref().err().map(String::as_str)
    }
}

/// The measured figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// The operation.
    pub workload: Workload,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Nodes the tasks were spread over.
    pub nodes: usize,
    /// Successful calls in the measured window.
    pub ops: u64,
    /// Failed calls in the measured window.
    pub errors: u64,
    /// Failed calls per AWS error code; failures of the client itself have their own codes:
    /// `TransportError` (the request went out and no answer came back), `Timeout` (no answer
    /// within the call's deadline), `ConnectError` (no connection could be opened).
    pub error_codes: BTreeMap<String, u64>,
    /// Length of the measured window, in seconds.
    pub elapsed_s: f64,
    /// Successful calls per second of the measured window.
    pub ops_per_s: f64,
    /// Calls (successes and errors) per second of the measured window: the rate achieved.
    pub calls_per_s: f64,
    /// Median latency of every call (successes and errors), in milliseconds; in an open-loop
    /// run counted from when the call was due.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile latency, in milliseconds.
    pub p999_ms: f64,
    /// Slowest call, in milliseconds.
    pub max_ms: f64,
    /// True when the run stopped because it reached `max_ops`, not its duration.
    pub hit_max_ops: bool,
    /// Connections opened again during measured calls because the endpoint had closed the
    /// previous one (`Connection: close`, an idle close) or a failed call left it unusable; a
    /// call that had to wait for one is not an error. Counted over AWS JSON only (gRPC
    /// channels reconnect by themselves).
    pub reconnections: u64,
    /// The latency of every measured call (successes and errors), in microseconds: from when it
    /// was due in an open-loop run, from when it started in a closed-loop one.
    pub histogram: HistogramReport,
    /// The open loop's own figures; absent for a closed-loop run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoopReport>,
    /// Why the run was not made (e.g. Sign without a signing key); `None` for a run made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What an open-loop run (`--rate`) adds to its result.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoopReport {
    /// The calls per second asked for.
    pub rate: u64,
    /// Measured calls that started more than [`schedule::LATE_AFTER`] after they were due
    /// (every task was busy, or the machine did not run the generator in time).
    pub late: u64,
    /// Calls due before the run's end that never started: the schedule's backlog when the
    /// run stopped (0 when the endpoint kept up).
    pub backlog: u64,
    /// The latency of the same calls counted from when each actually started (the service
    /// time, what a closed loop would report), in microseconds.
    pub service_histogram: HistogramReport,
}

/// An empty latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)
        .expect("invariant: constant bounds are valid")
}

/// Latency percentiles in milliseconds: (p50, p99, p999, max); zeros for an empty histogram.
pub fn percentiles_ms(h: &Histogram<u64>) -> (f64, f64, f64, f64) {
    if h.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    (
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bare_seconds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "s", "10x", "-1s", "ten", "1..2s", "10 sec"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn concurrency_lists_keep_order_and_reject_zero_duplicates_and_junk() {
        assert_eq!(parse_concurrency_list("1,8,64"), Ok(vec![1, 8, 64]));
        assert_eq!(parse_concurrency_list(" 16 , 2"), Ok(vec![16, 2]));
        assert_eq!(parse_concurrency_list("4096"), Ok(vec![4096]));
        for bad in ["", "0", "1,,8", "1,1", "4097", "a", "-1", "1.5"] {
            assert!(parse_concurrency_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn all_runs_crypto_at_every_level_and_create_key_only_at_low_ones() {
        let runs = plan(WorkloadChoice::All, &[1, 8, 64], Protocol::Grpc);
        let names: Vec<String> = runs.iter().map(|(w, c)| format!("{w}@{c}")).collect();
        assert_eq!(
            names,
            [
                "encrypt@1",
                "encrypt@8",
                "encrypt@64",
                "decrypt@1",
                "decrypt@8",
                "decrypt@64",
                "generate-data-key@1",
                "generate-data-key@8",
                "generate-data-key@64",
                "sign@1",
                "sign@8",
                "sign@64",
                "generate-mac@1",
                "generate-mac@8",
                "generate-mac@64",
                "create-key@1",
                "create-key@8",
            ]
        );
        assert_eq!(
            plan(WorkloadChoice::All, &[64, 32], Protocol::Grpc).last(),
            Some(&(Workload::CreateKey, 32))
        );
        assert_eq!(
            plan("create-key".parse().expect("valid"), &[64], Protocol::Grpc),
            vec![(Workload::CreateKey, 64)]
        );
        assert!("verify".parse::<WorkloadChoice>().is_err());
        // Over AWS JSON, `all` creates no keys beyond the setup's.
        let aws: Vec<String> = plan(WorkloadChoice::All, &[64], Protocol::AwsJson)
            .iter()
            .map(|(w, c)| format!("{w}@{c}"))
            .collect();
        assert_eq!(
            aws,
            [
                "encrypt@64",
                "decrypt@64",
                "generate-data-key@64",
                "sign@64",
                "generate-mac@64"
            ]
        );
        assert_eq!("aws-json".parse::<Protocol>(), Ok(Protocol::AwsJson));
        assert!("http".parse::<Protocol>().is_err());
        assert_eq!(Workload::CreateKey.default_max_ops(), 20_000);
        assert_eq!(Workload::Decrypt.default_max_ops(), 2_000_000);
    }

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        for ok in [
            "127.0.0.1:4601",
            "127.1.2.3:1",
            "[::1]:4601",
            "localhost:4601",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1:4601",
            "example.com:443",
            "localhost",
            "localhost:x",
            "0.0.0.0:4601",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:4599",
            "http://localhost:4599/",
            "http://[::1]:1",
            "https://127.0.0.1:4599",
        ] {
            assert!(check_loopback_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:4599",
            "ftp://127.0.0.1:4599",
            "https://10.0.0.1:4599",
            "http://10.0.0.1:4599",
            "http://127.0.0.1:4599/x",
            "http://kms.us-east-1.amazonaws.com:80",
        ] {
            assert!(check_loopback_url(bad).is_err(), "{bad}");
        }
    }
}
