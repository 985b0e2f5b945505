//! `kmsim node`: run one node in the foreground, or `kmsim node kill|restart REGION/ID`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use nix::sys::signal::Signal;

use kmsim_node::config::Topology;
use kmsim_sim::bench::parse_duration;
use kmsim_sim::cluster::{ClusterDir, NodeName};
use kmsim_sim::process::{signal_node, KILL_WAIT};
use kmsim_store_rocks::RocksKvEngine;

use super::DataDirArg;

/// Runs one Raft member of one Region. Reads the topology file, opens (or creates) the node's
/// RocksDB data directory and serves the KMS, Raft and admin gRPC services on the node's
/// `listen` address, and the KMS API as AWS JSON 1.1 (SigV4) on its `aws_listen` address, until
/// SIGTERM or Ctrl-C. If another process still holds the data directory's RocksDB lock (a
/// killed predecessor still exiting), it waits up to `--lock-wait` for it first. Logs go to
/// stderr (`KMSIM_LOG` sets the filter, default `info`).
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
    #[arg(long, conflicts_with = "hostname")]
    id: Option<u64>,
    /// Instead of --id: the node of the Region whose advertised address has this host, or a
    /// host whose first DNS label is this (a Kubernetes StatefulSet pod passes its own name,
    /// `$(KMSIM_POD_NAME)`, and is found by its stable DNS name in the topology).
    #[arg(long)]
    hostname: Option<String>,
    /// How long to wait at start-up for another process to release the RocksDB lock of this
    /// node's data directory (`<data_dir>/LOCK`) before failing with the holder's pid, e.g.
    /// 500ms, 10s [default: KMSIM_LOCK_WAIT, else 10s]. Nodes started by `kmsim up`, `node
    /// restart` and `chaos restart-region` inherit KMSIM_LOCK_WAIT.
    #[arg(long, value_parser = parse_duration)]
    lock_wait: Option<Duration>,
    /// Export the spans of traced requests to this OpenTelemetry collector (OTLP over gRPC,
    /// an http:// URL such as http://127.0.0.1:4317) [default: KMSIM_OTLP_ENDPOINT, else no
    /// export]. Nodes started by `kmsim up`, `node restart` and `chaos restart-region` inherit
    /// KMSIM_OTLP_ENDPOINT. See docs/OBSERVABILITY.md.
    #[arg(long)]
    otlp_endpoint: Option<String>,
}

/// How long a starting node waits for its RocksDB lock unless told otherwise.
const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// `--lock-wait`, else KMSIM_LOCK_WAIT, else [`DEFAULT_LOCK_WAIT`]. (Not clap's `env`: a value
/// from the environment would count as given and conflict with the `kill`/`restart`
/// subcommands, whose nodes inherit the variable.)
fn lock_wait(flag: Option<Duration>) -> anyhow::Result<Duration> {
    if let Some(d) = flag {
        return Ok(d);
    }
    match std::env::var("KMSIM_LOCK_WAIT") {
        Ok(v) => parse_duration(&v).map_err(|e| anyhow::anyhow!("KMSIM_LOCK_WAIT: {e}")),
        Err(_) => Ok(DEFAULT_LOCK_WAIT),
    }
}

#[derive(Subcommand)]
enum NodeAction {
    /// SIGKILL one node of a cluster started by `kmsim up` (its data directory is kept) and
    /// return once every thread of it has exited, so its RocksDB lock is free (at most 30 s,
    /// then fail naming the node and pid).
    Kill {
        /// The node, as REGION/ID (e.g. us-east-1/2).
        node: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Start one node again (SIGKILL first if it is still running, waiting until it has exited)
    /// and wait until it answers (at most its lock wait + 30 s; fails at once, with the end of
    /// its log, if the node exits first). The node waits up to KMSIM_LOCK_WAIT (default 10s)
    /// for its RocksDB lock.
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
            if signal_node(&cluster, &name, Signal::SIGKILL, KILL_WAIT)? {
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
            let who = match (a.id, a.hostname) {
                (Some(id), _) => Who::Id(id),
                (None, Some(host)) => Who::Host(host),
                (None, None) => anyhow::bail!("--id or --hostname is required to run a node"),
            };
            serve(
                topology,
                region,
                who,
                lock_wait(a.lock_wait)?,
                a.otlp_endpoint,
            )
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
    let exe = std::env::current_exe()?;
    // A node may first wait for its lock (it inherits KMSIM_LOCK_WAIT), then needs to start.
    let answer_wait = lock_wait(None)? + Duration::from_secs(30);
    let started = super::runtime()?.block_on(kmsim_sim::process::restart_nodes(
        &exe,
        cluster,
        names,
        answer_wait,
    ))?;
    for (name, pid) in started {
        outln!("restarted {name} (pid {pid})");
    }
    Ok(())
}

/// The file RocksDB locks in a database directory.
const ROCKSDB_LOCK_FILE: &str = "LOCK";

/// How a starting node names itself in the topology.
enum Who {
    /// By its Raft id (`--id`).
    Id(u64),
    /// By its advertised host (`--hostname`).
    Host(String),
}

fn serve(
    topology_path: PathBuf,
    region: String,
    who: Who,
    lock_wait: Duration,
    otlp_flag: Option<String>,
) -> anyhow::Result<ExitCode> {
    let otlp = super::logging::otlp_endpoint(otlp_flag)?;
    let topology = Topology::load(&topology_path)?;
    let r = topology
        .region(&region)
        .with_context(|| format!("region {region} is not in {}", topology_path.display()))?;
    let entry = match &who {
        Who::Id(id) => r
            .node(*id)
            .with_context(|| format!("node {region}/{id} is not in {}", topology_path.display()))?,
        Who::Host(host) => r.node_by_host(host).with_context(|| {
            format!(
                "no node of {region} in {} is advertised as {host} (or {host}.…)",
                topology_path.display()
            )
        })?,
    };
    let id = entry.id;
    let rt = super::runtime()?;
    let service = super::logging::Service {
        name: "kmsim-node",
        instance: format!("{region}/{id}"),
        region: Some(region.clone()),
    };
    let _telemetry = {
        let _in_runtime = rt.enter();
        super::logging::init(otlp.map(|e| (e, service)))?
    };
    if let Who::Host(host) = &who {
        tracing::info!(region = %region, node_id = id, host = %host, "found this node by its hostname");
    }
    std::fs::create_dir_all(&entry.data_dir)
        .with_context(|| format!("create data dir {}", entry.data_dir.display()))?;
    // A predecessor killed a moment ago may still be exiting with the lock held.
    kmsim_node::lock_file::wait_for_lock(
        &entry.data_dir.join(ROCKSDB_LOCK_FILE),
        lock_wait,
        kmsim_node::lock_file::POLL_INTERVAL,
    )?;
    let engine = Arc::new(RocksKvEngine::open(&entry.data_dir)?);
    rt.block_on(async move {
        kmsim_node::run_node(topology, &region, id, engine, super::stop_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}
