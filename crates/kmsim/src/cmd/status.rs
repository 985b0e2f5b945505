//! `kmsim status`: every node of a cluster, live.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use kmsim_proto::admin::v1::StatusResponse;
use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::health::node_status;
use kmsim_sim::process::{gateway_pid, running_pid};

/// Shows every node of the cluster in the data directory: Region, id, PID, role, term, last
/// applied log index, gRPC and AWS addresses; then the gateway (the single AWS endpoint) with its
/// PID and address. Nodes that do not answer are shown as `down`.
#[derive(Args)]
pub struct StatusArgs {
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Print JSON (one object per node, `kind` "node", then one of `kind` "gateway") instead
    /// of a table.
    #[arg(long)]
    json: bool,
}

/// `kmsim status`
pub fn run(a: StatusArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::relayed(&a.data_dir)? {
        return Ok(code);
    }
    let dir = ClusterDir::new(&a.data_dir);
    let nodes = dir.nodes()?;
    let dialer = dir.operator_dialer()?;
    let rt = super::runtime()?;
    let statuses: Vec<StatusResponse> = rt.block_on(async {
        let mut out = Vec::new();
        for (_, e) in &nodes {
            if let Some(s) =
                node_status(&dialer, &e.advertise_addr(), Duration::from_millis(800)).await
            {
                out.push(s);
            }
        }
        out
    });
    if a.json {
        let mut rows: Vec<serde_json::Value> = nodes
            .iter()
            .map(|(n, e)| {
                let s = statuses
                    .iter()
                    .find(|s| s.region == n.region && s.node_id == n.id);
                json!({
                    "kind": "node",
                    "region": n.region,
                    "node_id": n.id,
                    "pid": s.map(|s| s.pid).or(running_pid(&dir, n)),
                    "role": s.map(|s| s.role.as_str()).unwrap_or("down"),
                    "term": s.map(|s| s.term),
                    "leader_id": s.and_then(|s| s.leader_id),
                    "last_log_index": s.and_then(|s| s.last_log_index),
                    "last_applied_index": s.and_then(|s| s.last_applied_index),
                    "snapshot_index": s.and_then(|s| s.snapshot_index),
                    "key_count": s.map(|s| s.key_count),
                    "material_cache_keys": s.map(|s| s.material_cache_keys),
                    "material_cache_capacity": s.map(|s| s.material_cache_capacity),
                    "address": e.advertise_addr(),
                    "aws_address": e.aws_advertise_addr(),
                })
            })
            .collect();
        if let Some(g) = dir.topology()?.endpoint {
            rows.push(json!({
                "kind": "gateway",
                "pid": gateway_pid(&dir),
                "role": if gateway_pid(&dir).is_some() { "running" } else { "down" },
                "aws_address": g.listen.to_string(),
            }));
        }
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&dir, &statuses)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one line per node of the topology.
pub fn print_table(dir: &ClusterDir, statuses: &[StatusResponse]) -> anyhow::Result<()> {
    outln!(
        "{:<16} {:>3} {:>8} {:<9} {:>5} {:>8}  {:<21} AWS ADDRESS",
        "REGION",
        "ID",
        "PID",
        "ROLE",
        "TERM",
        "APPLIED",
        "ADDRESS"
    );
    for (n, e) in dir.nodes()? {
        let s = statuses
            .iter()
            .find(|s| s.region == n.region && s.node_id == n.id);
        let pid = s
            .map(|s| s.pid)
            .or(running_pid(dir, &n))
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let dash = || "-".to_string();
        outln!(
            "{:<16} {:>3} {:>8} {:<9} {:>5} {:>8}  {:<21} {}",
            n.region,
            n.id,
            pid,
            s.map(|s| s.role.clone()).unwrap_or_else(|| "down".into()),
            s.map(|s| s.term.to_string()).unwrap_or_else(dash),
            s.and_then(|s| s.last_applied_index)
                .map(|i| i.to_string())
                .unwrap_or_else(dash),
            e.advertise_addr(),
            e.aws_advertise_addr().unwrap_or_else(dash)
        );
    }
    if let Some(g) = dir.topology()?.endpoint {
        let pid = gateway_pid(dir)
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let role = if pid == "-" { "down" } else { "running" };
        outln!(
            "{:<16} {:>3} {:>8} {:<9} {:>5} {:>8}  {:<21} {}",
            "gateway",
            "-",
            pid,
            role,
            "-",
            "-",
            "-",
            g.listen
        );
    }
    Ok(())
}
