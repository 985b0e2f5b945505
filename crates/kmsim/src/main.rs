//! `kmsim`: one command line for the simulator. It runs a node (`kmsim node`), launches and
//! stops local clusters (`up`, `down`, `status`, `node kill|restart`), talks to a cluster like
//! the AWS CLI does (`kms …`) and measures it (`bench`); `gateway` serves the single AWS
//! endpoint. The only crate that parses flags and
//! environment and installs the tracing subscriber.
//!
//! Standard output goes through [`stdout`] (`outln!`, `out!`): a closed pipe (`kmsim status |
//! head -1`) ends the output quietly instead of panicking; the module says why this is not done
//! by restoring `SIGPIPE`.

// Every command writes standard output through `stdout` (see its module docs).
#![warn(clippy::print_stdout)]

/// `println!` for the commands: see [`stdout`].
macro_rules! outln {
    () => {
        $crate::stdout::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the commands: see [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::print(format_args!($($arg)*))
    };
}

mod cmd;
mod stdout;

/// Every kmsim process (node, gateway, load generator, experiment runner) allocates with
/// mimalloc rather than glibc's malloc: its per-thread free lists keep the many small, short
/// allocations of a request (headers, JSON, protobuf) off glibc's arena locks and slow paths,
/// which took 14 % of the gateway's CPU and a quarter of the runner's (docs/PERFORMANCE.md).
/// RocksDB's C++ allocations stay with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A distributed simulator of AWS KMS: every Region is a Raft cluster of `kmsim node`
/// processes with RocksDB storage, serving the KMS API over gRPC and as AWS JSON 1.1 (SigV4)
/// for the AWS SDKs and CLI, with one endpoint for every Region (`kmsim gateway`).
#[derive(Parser)]
#[command(name = "kmsim", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node, or kill/restart a node of a running cluster.
    Node(cmd::node::NodeArgs),
    /// Start a local cluster (writes topology and domain keys on first use) and wait for
    /// every Region to elect a leader.
    Up(cmd::up::UpArgs),
    /// Serve the single AWS endpoint (AWS JSON 1.1, SigV4) for every Region of a topology.
    Gateway(cmd::gateway::GatewayArgs),
    /// Stop every node (and the gateway) that `kmsim up` started for a data directory; for a
    /// cluster in containers, remove its labelled containers and networks (volumes with
    /// --volumes).
    Down(cmd::DownArgs),
    /// Show every node of a cluster: Region, id, PID, role, term, applied index, address.
    Status(cmd::status::StatusArgs),
    // No doc comment here: a variant's would replace TopArgs' (its first paragraph is the line
    // in `kmsim --help`, the whole of it `kmsim top --help`).
    Top(cmd::top::TopArgs),
    /// Call the KMS API of a cluster, with the AWS CLI's operation names, flags and JSON output.
    Kms(cmd::kms::KmsArgs),
    /// Measure a running cluster: throughput and latency percentiles of KMS operations.
    Bench(cmd::bench::BenchArgs),
    /// Inject faults into the links between nodes and Regions: delay, jitter, loss, partitions.
    Chaos(cmd::chaos::ChaosArgs),
    /// List management audit events of a Region, or of one key across every Region.
    Audit(cmd::audit::AuditArgs),
    /// Run a measurement program against a running cluster (e.g. synchronizer lag).
    Scenario(cmd::scenario::ScenarioArgs),
    /// Ask a node's or the gateway's /healthz or /readyz; exit 0 on 200 (for health checks).
    Health(cmd::health::HealthArgs),
    /// Build the container image kmsim:<version> (FROM scratch, no registry).
    Image(cmd::image::ImageArgs),
    /// Write deployment files: a docker-compose project for a topology.
    Deploy(cmd::deploy::DeployArgs),
    /// Run declared experiments: workload, seeded faults, probes, checkers and a report.
    Experiment(cmd::experiment::ExperimentArgs),
    /// IAM of a running cluster: `simulate` judges a principal's request on a key as the
    /// Region would (decision, deciding statement or grant, reason).
    Iam(cmd::iam::IamArgs),
}

/// Where `up`, `down`, `status`, `node kill|restart` and `kms` find the cluster by default.
pub const DEFAULT_DATA_DIR: &str = ".kmsim";

/// The data directory flag shared by the cluster commands.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(a) => cmd::node::run(a),
        Command::Up(a) => cmd::up::run(a),
        Command::Gateway(a) => cmd::gateway::run(a),
        Command::Down(a) => cmd::down(a),
        Command::Status(a) => cmd::status::run(a),
        Command::Top(a) => cmd::top::run(a),
        Command::Kms(a) => cmd::kms::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Chaos(a) => cmd::chaos::run(a),
        Command::Audit(a) => cmd::audit::run(a),
        Command::Scenario(a) => cmd::scenario::run_scenario(a),
        Command::Health(a) => cmd::health::run(a),
        Command::Image(a) => cmd::image::run(a),
        Command::Deploy(a) => cmd::deploy::run(a),
        Command::Experiment(a) => cmd::experiment::run(a),
        Command::Iam(a) => cmd::iam::run(a),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // Not `eprintln!`, which panics when standard error is a closed pipe too.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    };
    match stdout::take_error() {
        Some(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot write to standard output: {e}"
            );
            ExitCode::FAILURE
        }
        None => code,
    }
}
