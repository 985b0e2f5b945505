//! The subcommands.

pub mod audit;
pub mod bench;
pub mod chaos;
pub mod chaos_hooks;
pub mod deploy;
pub mod experiment;
pub mod gateway;
pub mod health;
pub mod iam;
pub mod iam_change;
pub mod image;
pub mod kms;
pub mod logging;
pub mod node;
pub mod scenario;
pub mod status;
pub mod top;
pub mod up;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tonic::transport::Channel;

use kmsim_node::tls::Dialer;

use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::process::{stop_gateway, stop_node};

/// `--data-dir`
#[derive(Args, Debug, Clone)]
pub struct DataDirArg {
    /// The cluster's data directory (topology, keys, node data, logs, PID files).
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// The shape of a new cluster: `--regions` and `--nodes` (`up`, `deploy compose`).
#[derive(Args, Debug, Clone)]
pub struct ShapeArgs {
    /// Regions to create, comma separated. Each is its own Raft cluster; a Region's partition
    /// follows its name (cn-* is aws-cn, us-gov-* is aws-us-gov, else aws) and multi-Region
    /// keys replicate only within a partition; aws-cn has none, as in AWS.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "us-east-1,eu-west-1,ap-southeast-2"
    )]
    pub regions: Vec<String>,
    /// Nodes per Region (1 to 7).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub nodes: u8,
}

impl ShapeArgs {
    /// Every Region with its node count.
    pub fn regions(&self) -> Vec<(String, usize)> {
        self.regions
            .iter()
            .map(|r| (r.trim().to_string(), self.nodes as usize))
            .collect()
    }
}

/// How long a command waits for a node's TCP (and TLS) connection.
pub const ADMIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one admin call of a command may take: a change commits through the Region's Raft
/// (the proposer's 10 s for a leader, then up to 10 s for this node to apply it).
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A channel to the admin service of the node at `addr`, connected on first use.
pub fn admin_channel(dialer: &Dialer, addr: &str) -> anyhow::Result<Channel> {
    Ok(dialer
        .endpoint(addr)?
        .connect_timeout(ADMIN_CONNECT_TIMEOUT)
        .timeout(ADMIN_TIMEOUT)
        .connect_lazy())
}

/// A multi-threaded tokio runtime for commands that talk to nodes.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// On a cluster in containers, runs this command line again inside the cluster's networks
/// (`kmsim_sim::container::relay`: its nodes publish no port) and returns that run's exit code;
/// `None` when the command is to run here.
pub fn relayed(data_dir: &Path) -> anyhow::Result<Option<ExitCode>> {
    use kmsim_sim::container::{docker::Docker, relay};
    if !relay::needed(data_dir) {
        return Ok(None);
    }
    let topology = ClusterDir::new(data_dir).topology()?;
    let docker = Docker::connect()?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let code = relay::run(&docker, data_dir, &topology, &args)?;
    Ok(Some(ExitCode::from(u8::try_from(code).unwrap_or(1))))
}

/// Resolves on SIGTERM or Ctrl-C: how a node or the gateway is told to stop.
pub async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("invariant: SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

/// `kmsim down`'s flags.
#[derive(Args, Debug, Clone)]
pub struct DownArgs {
    #[command(flatten)]
    dir: DataDirArg,
    /// For a cluster in containers, remove its volumes (the nodes' data) too.
    #[arg(long)]
    volumes: bool,
}

/// `kmsim down`
pub fn down(a: DownArgs) -> anyhow::Result<ExitCode> {
    let (a, volumes) = (a.dir, a.volumes);
    if kmsim_sim::container::runtime::is_compose_project(&a.data_dir) {
        return down_docker(&a, volumes);
    }
    let dir = ClusterDir::new(&a.data_dir);
    let mut stopped = 0;
    if stop_gateway(&dir)? {
        outln!("stopped gateway");
    }
    for (name, _) in dir.nodes()? {
        if stop_node(&dir, &name)? {
            outln!("stopped {name}");
            stopped += 1;
        }
    }
    outln!(
        "{stopped} node(s) stopped; data kept in {}",
        a.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `kmsim down` of a cluster in containers: removes exactly the objects labelled with its name.
fn down_docker(a: &DataDirArg, volumes: bool) -> anyhow::Result<ExitCode> {
    let topology = ClusterDir::new(&a.data_dir).topology()?;
    let name = kmsim_sim::container::runtime::cluster_name(&topology)
        .ok_or_else(|| anyhow::anyhow!("{} holds no container topology", a.data_dir.display()))?;
    let docker = kmsim_sim::container::docker::Docker::connect()?;
    let removed = docker.remove_cluster(&name, volumes)?;
    outln!(
        "cluster {name}: removed {} containers, {} networks, {} volumes{}",
        removed.containers.len(),
        removed.networks.len(),
        removed.volumes.len(),
        if volumes {
            ""
        } else {
            " (volumes kept; --volumes removes them)"
        }
    );
    Ok(ExitCode::SUCCESS)
}
