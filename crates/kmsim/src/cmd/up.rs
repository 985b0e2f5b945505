//! `kmsim up`: start a local cluster and wait until every Region has a leader.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::health::wait_healthy;
use kmsim_sim::process::{running_pid, start_node, stop_node};

/// Starts every node of a local cluster as a separate `kmsim node` process. On first use it
/// writes the topology (`topology.toml`) and one domain key per Region (`keys/<region>.key`,
/// mode 0600) into the data directory; later runs start the cluster found there and ignore
/// `--regions`, `--nodes` and `--base-port`. Waits until every Region has elected a leader,
/// prints the nodes and their endpoints, then stays in the foreground until Ctrl-C (which stops
/// every node cleanly), or returns at once with `--detach` (stop later with `kmsim down`).
#[derive(Args)]
pub struct UpArgs {
    /// Regions to create, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1")]
    regions: Vec<String>,
    /// Nodes per Region (1 to 7).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    nodes: u8,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// First gRPC port; nodes get consecutive ports. 0 lets the OS choose free ports.
    #[arg(long, default_value_t = 4601)]
    base_port: u16,
    /// Return once the cluster is healthy and leave the nodes running.
    #[arg(long)]
    detach: bool,
    /// How long to wait for every Region to elect a leader, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Enable test-only hooks on new clusters (exposes plaintext key material over the admin
    /// API; for leak tests only).
    #[arg(long, hide = true)]
    test_hooks: bool,
}

/// `kmsim up`
pub fn run(a: UpArgs) -> anyhow::Result<ExitCode> {
    let dir = ClusterDir::new(&a.data_dir);
    if !dir.topology_path().exists() {
        let regions: Vec<(String, usize)> = a
            .regions
            .iter()
            .map(|r| (r.trim().to_string(), a.nodes as usize))
            .collect();
        dir.create(&regions, a.base_port, a.test_hooks)?;
        println!("created cluster in {}", a.data_dir.display());
    } else {
        println!(
            "starting the cluster found in {} (its topology.toml decides Regions, nodes and ports)",
            a.data_dir.display()
        );
    }
    let nodes = dir.nodes()?;
    if let Some((n, _)) = nodes.iter().find(|(n, _)| running_pid(&dir, n).is_some()) {
        anyhow::bail!(
            "{n} of this cluster is already running; use `kmsim status` or `kmsim down` first"
        );
    }
    let exe = std::env::current_exe()?;
    for (n, _) in &nodes {
        start_node(&exe, &dir, n)?;
    }
    let rt = super::runtime()?;
    let statuses = match rt.block_on(wait_healthy(&dir, Duration::from_secs(a.timeout))) {
        Ok(s) => s,
        Err(e) => {
            for (n, _) in &nodes {
                let _ = stop_node(&dir, n);
            }
            return Err(e.into());
        }
    };
    super::status::print_table(&dir, &statuses)?;
    println!();
    println!(
        "KMS gRPC endpoints: {}",
        nodes
            .iter()
            .map(|(_, e)| e.advertise_addr())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "try:  kmsim kms create-key --data-dir {}",
        a.data_dir.display()
    );
    if a.detach {
        println!(
            "cluster running in the background; stop it with: kmsim down --data-dir {}",
            a.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("press Ctrl-C to stop the cluster");
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    println!("stopping…");
    for (n, _) in &nodes {
        if stop_node(&dir, n)? {
            println!("stopped {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
