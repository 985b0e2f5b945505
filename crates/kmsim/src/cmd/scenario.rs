//! `kmsim scenario …`: measurement programs that drive a running cluster through a sequence
//! and report figures (never run by the test suite; bounded in count and time).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use kmsim_sim::bench::parse_duration;
use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::sync_lag::{run, SyncLagConfig, MAX_KEYS};

/// Measurement programs against a running cluster.
#[derive(Args)]
pub struct ScenarioArgs {
    #[command(subcommand)]
    scenario: Scenario,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR, global = true)]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Scenario {
    /// Synchronizer lag between Regions: for --keys new multi-Region keys, the ReplicateKey
    /// call itself (one round trip to the replica Region: it commits the replica as Creating
    /// there before answering), the time from ReplicateKey to the replica visible (Creating)
    /// and to it Enabled in each replica Region, and from RotateKeyOnDemand
    /// on the primary to the new material held by every replica Region (usable to decrypt) and
    /// current in every Region; p50/p99/max. --delay is injected on the links from the
    /// primary Region to the replica Regions for the run (then cleared). Keys stay in the
    /// cluster.
    SyncLag {
        /// Keys to create, replicate and rotate (1 to 1000).
        #[arg(long, default_value_t = 50)]
        keys: usize,
        /// The primary Region [default: the topology's first].
        #[arg(long)]
        primary: Option<String>,
        /// Replica Regions, comma separated [default: every other Region of the topology].
        #[arg(long, value_delimiter = ',')]
        replicas: Vec<String>,
        /// One-way delay to inject from the primary's Region to the replicas' (e.g. 80ms).
        #[arg(long, value_parser = parse_duration, default_value = "0ms")]
        delay: Duration,
        /// Polling interval of the waits (the figures' granularity).
        #[arg(long, value_parser = parse_duration, default_value = "2ms")]
        poll: Duration,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `kmsim scenario …`
pub fn run_scenario(a: ScenarioArgs) -> anyhow::Result<ExitCode> {
    let dir = ClusterDir::new(&a.data_dir);
    match a.scenario {
        Scenario::SyncLag {
            keys,
            primary,
            replicas,
            delay,
            poll,
            json,
        } => {
            anyhow::ensure!(
                (1..=MAX_KEYS).contains(&keys),
                "--keys must be 1 to {MAX_KEYS}"
            );
            let topo = dir.topology()?;
            let primary = primary.unwrap_or_else(|| topo.regions[0].name.clone());
            let replicas = if replicas.is_empty() {
                topo.regions
                    .iter()
                    .map(|r| r.name.clone())
                    .filter(|r| *r != primary)
                    .collect()
            } else {
                replicas
            };
            anyhow::ensure!(
                !replicas.is_empty(),
                "the topology has no Region to replicate to"
            );
            let cfg = SyncLagConfig {
                keys,
                primary,
                replicas,
                delay,
                poll,
            };
            let report = super::runtime()?
                .block_on(run(&dir, &cfg))
                .map_err(anyhow::Error::msg)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                outln!(
                    "sync lag, {} keys, {} -> {}, injected one-way delay {:.0} ms",
                    keys,
                    cfg.primary,
                    cfg.replicas.join(","),
                    report.delay_ms
                );
                for (what, d) in [
                    ("ReplicateKey call", &report.replicate_key_call),
                    (
                        "ReplicateKey -> replica visible (Creating)",
                        &report.replicate_to_visible,
                    ),
                    (
                        "ReplicateKey -> replica Enabled",
                        &report.replicate_to_enabled,
                    ),
                    (
                        "RotateKeyOnDemand -> material in every replica",
                        &report.rotation_material_everywhere,
                    ),
                    (
                        "RotateKeyOnDemand -> current everywhere",
                        &report.rotation_current_everywhere,
                    ),
                ] {
                    outln!(
                        "  {what:<48} n={:<5} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
                        d.n,
                        d.p50_ms,
                        d.p99_ms,
                        d.max_ms
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
