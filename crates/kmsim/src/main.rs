//! `kmsim`: one command line for the simulator. It runs a node (`kmsim node`), launches and
//! stops local clusters (`up`, `down`, `status`, `node kill|restart`), talks to a cluster like
//! the AWS CLI does (`kms …`) and measures it (`bench`); `gateway` serves the single AWS
//! endpoint. The only crate that parses flags and
//! environment and installs the tracing subscriber.

mod cmd;

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
    /// Stop every node (and the gateway) that `kmsim up` started for a data directory.
    Down(cmd::DataDirArg),
    /// Show every node of a cluster: Region, id, PID, role, term, applied index, address.
    Status(cmd::status::StatusArgs),
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
        Command::Kms(a) => cmd::kms::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Chaos(a) => cmd::chaos::run(a),
        Command::Audit(a) => cmd::audit::run(a),
        Command::Scenario(a) => cmd::scenario::run_scenario(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
