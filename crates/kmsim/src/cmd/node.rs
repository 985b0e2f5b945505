//! `kmsim node`: run one node in the foreground, or `kmsim node kill|restart REGION/ID`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use nix::sys::signal::Signal;

use kmsim_node::config::Topology;
use kmsim_sim::cluster::{ClusterDir, NodeName};
use kmsim_sim::health::node_status;
use kmsim_sim::process::{running_pid, signal_node, start_node};
use kmsim_store_rocks::RocksKvEngine;

use super::DataDirArg;

/// Runs one Raft member of one Region. Reads the topology file, opens (or creates) the node's
/// RocksDB data directory and serves the KMS, Raft and admin gRPC services on the node's
/// `listen` address, and the KMS API as AWS JSON 1.1 (SigV4) on its `aws_listen` address, until
/// SIGTERM or Ctrl-C. Logs go to stderr (`KMSIM_LOG` sets the filter,
/// default `info`).
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeArgs {
    #[command(subcommand)]
    action: Option<NodeAction>,
    /// The topology file (TOML, version 1).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// This node's Region.
    #[arg(long)]
    region: Option<String>,
    /// This node's Raft id within the Region.
    #[arg(long)]
    id: Option<u64>,
}

#[derive(Subcommand)]
enum NodeAction {
    /// SIGKILL one node of a cluster started by `kmsim up` (its data directory is kept).
    Kill {
        /// The node, as REGION/ID (e.g. us-east-1/2).
        node: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Start one node again (SIGKILL first if it is still running) and wait until it answers.
    Restart {
        /// The node, as REGION/ID (e.g. us-east-1/2).
        node: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

/// `kmsim node …`
pub fn run(a: NodeArgs) -> anyhow::Result<ExitCode> {
    match a.action {
        Some(NodeAction::Kill { node, dir }) => {
            let name = NodeName::parse(&node)?;
            let cluster = ClusterDir::new(&dir.data_dir);
            if signal_node(&cluster, &name, Signal::SIGKILL, Duration::from_secs(5))? {
                outln!("killed {name}");
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!("{name} is not running (no live process in its PID file)")
            }
        }
        Some(NodeAction::Restart { node, dir }) => restart(&node, &dir),
        None => {
            let topology = a.topology.context("--topology is required to run a node")?;
            let region = a.region.context("--region is required to run a node")?;
            let id = a.id.context("--id is required to run a node")?;
            serve(topology, region, id)
        }
    }
}

fn restart(node: &str, dir: &DataDirArg) -> anyhow::Result<ExitCode> {
    let name = NodeName::parse(node)?;
    restart_nodes(&ClusterDir::new(&dir.data_dir), std::slice::from_ref(&name))?;
    Ok(ExitCode::SUCCESS)
}

/// Starts these nodes again (SIGKILL first for any still running) and waits until each
/// answers `Status`; prints one line per node.
pub fn restart_nodes(cluster: &ClusterDir, names: &[NodeName]) -> anyhow::Result<()> {
    let nodes = cluster.nodes()?;
    let exe = std::env::current_exe()?;
    let mut started = Vec::new();
    for name in names {
        let entry = nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
            .with_context(|| format!("{name} is not in the topology"))?;
        if running_pid(cluster, name).is_some() {
            signal_node(cluster, name, Signal::SIGKILL, Duration::from_secs(5))?;
        }
        let pid = start_node(&exe, cluster, name)?;
        started.push((name, entry.advertise_addr(), pid));
    }
    let rt = super::runtime()?;
    let dialer = cluster.operator_dialer()?;
    for (name, addr, pid) in started {
        let up = rt.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < deadline {
                if node_status(&dialer, &addr, Duration::from_millis(500))
                    .await
                    .is_some()
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        });
        anyhow::ensure!(
            up,
            "{name} (pid {pid}) did not answer within 30 s; see {}",
            cluster.log_path(name).display()
        );
        outln!("restarted {name} (pid {pid})");
    }
    Ok(())
}

fn serve(topology_path: PathBuf, region: String, id: u64) -> anyhow::Result<ExitCode> {
    super::init_logging();
    let topology = Topology::load(&topology_path)?;
    let entry = topology
        .region(&region)
        .and_then(|r| r.node(id))
        .with_context(|| format!("node {region}/{id} is not in {}", topology_path.display()))?;
    std::fs::create_dir_all(&entry.data_dir)
        .with_context(|| format!("create data dir {}", entry.data_dir.display()))?;
    let engine = Arc::new(RocksKvEngine::open(&entry.data_dir)?);
    let rt = super::runtime()?;
    rt.block_on(async move {
        kmsim_node::run_node(topology, &region, id, engine, super::stop_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}
