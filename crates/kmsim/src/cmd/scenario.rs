//! `kmsim scenario …`: measurement programs that drive a running cluster through a sequence
//! and report figures (bounded in count and time).

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use kmsim_sim::bench::failover::{self, FailoverConfig, FaultMode, RoundReport, Spread};
use kmsim_sim::bench::parse_duration;
use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::experiment::{DockerRuntime, ProcessRuntime};
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
    /// Failover of a Region's leader, as a client of the gateway sees it. Each round runs
    /// --concurrency writers of CreateKey through the gateway (AWS JSON, one connection each; a
    /// failed call is retried after 10 ms), finds the Region's leader (admin Status) and, after
    /// --before, kills it (--mode kill: SIGKILL, or `docker kill` of its container; started
    /// again after the round) or freezes it for --freeze-for then thaws it (--mode freeze:
    /// SIGSTOP and SIGCONT, or `docker pause` and `unpause`; a gray failure, its connections
    /// stay open). Writing goes on until writes are acknowledged again, and
    /// --after more (at most 30 s). Per round: the pause (longest gap between acknowledged
    /// writes, from the last one before the fault on), the election (fault until a surviving
    /// node reports itself leader, polled every 10 ms) and the first acknowledgement of a call
    /// started after the fault; then p50/p99/max over the rounds. Between rounds the Region
    /// must be healthy again, the old leader following and caught up. Only the nodes the
    /// launcher started (PID files checked against /proc) or the cluster's own containers are
    /// faulted; on containers the command runs on the host and reaches the nodes' admin API
    /// at their addresses on the cluster's inter-Region network. Keys stay in the cluster (at
    /// most 20,000 per round).
    Failover {
        /// kill (SIGKILL or docker kill, started again after the round) or freeze (SIGSTOP or
        /// docker pause, then resumed).
        #[arg(long, value_parser = FaultMode::from_str)]
        mode: FaultMode,
        /// Rounds (1 to 100).
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// The Region whose leader is faulted [default: the topology's first].
        #[arg(long)]
        region: Option<String>,
        /// Concurrent writers (1 to 64).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Steady writing before each fault.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        before: Duration,
        /// Writing after writes are acknowledged again (frozen: and after the node resumed).
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        after: Duration,
        /// How long a frozen leader stays stopped (--mode freeze).
        #[arg(long, value_parser = parse_duration, default_value = "3s")]
        freeze_for: Duration,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn round_line(r: &RoundReport) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "  round {:>3}: leader {} -> {}  term {} -> {}  pause {:>6.0} ms  election {:>5} ms  first ack {:>5} ms  acked {:<5} errors {}{}{}",
        r.round,
        r.old_leader,
        r.new_leader.map_or("-".to_string(), |l| l.to_string()),
        r.term_before,
        r.term_after,
        r.pause_ms,
        opt(r.election_ms),
        opt(r.first_ack_ms),
        r.acked,
        if errors.is_empty() { "none".to_string() } else { errors.join(",") },
        if r.recovered { "" } else { "  NOT RECOVERED" },
        if r.old_leader_role == "follower" {
            String::new()
        } else {
            format!("  old leader is {}", r.old_leader_role)
        },
    ) + &r
        .error_examples
        .iter()
        .map(|(code, message)| format!("\n           e.g. {code}: {message}"))
        .collect::<String>()
}

fn spread_line(what: &str, d: &Spread) -> String {
    format!(
        "  {what:<10} n={:<4} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        d.n, d.p50_ms, d.p99_ms, d.max_ms
    )
}

/// `kmsim scenario …`
pub fn run_scenario(a: ScenarioArgs) -> anyhow::Result<ExitCode> {
    // sync-lag talks to the nodes' APIs: on a cluster in containers it runs inside the
    // cluster's networks. failover kills or pauses containers with the Docker CLI, so it
    // runs on the host (`DockerRuntime`).
    match a.scenario {
        Scenario::SyncLag { .. } => {
            if let Some(code) = super::relayed(&a.data_dir)? {
                return Ok(code);
            }
        }
        Scenario::Failover { .. } => {}
    }
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
        Scenario::Failover {
            mode,
            rounds,
            region,
            concurrency,
            before,
            after,
            freeze_for,
            json,
        } => {
            anyhow::ensure!(
                (1..=failover::MAX_ROUNDS).contains(&rounds),
                "--rounds must be 1 to {}",
                failover::MAX_ROUNDS
            );
            anyhow::ensure!(
                (1..=failover::MAX_CONCURRENCY).contains(&concurrency),
                "--concurrency must be 1 to {}",
                failover::MAX_CONCURRENCY
            );
            let topo = dir.topology()?;
            let region = region.unwrap_or_else(|| topo.regions[0].name.clone());
            let cfg = FailoverConfig {
                region,
                mode,
                rounds,
                concurrency,
                before,
                after,
                freeze_for,
            };
            let in_containers = kmsim_sim::container::runtime::is_compose_project(&a.data_dir);
            if !json {
                outln!(
                    "failover ({}), {}, {} round(s), {} writer(s) of CreateKey through the gateway",
                    match (mode, in_containers) {
                        (FaultMode::Kill, false) =>
                            "SIGKILL of the leader, restarted after each round",
                        (FaultMode::Freeze, false) =>
                            "SIGSTOP of the leader, SIGCONT after --freeze-for",
                        (FaultMode::Kill, true) =>
                            "docker kill of the leader's container, started after each round",
                        (FaultMode::Freeze, true) =>
                            "docker pause of the leader's container, unpaused after --freeze-for",
                    },
                    cfg.region,
                    rounds,
                    concurrency
                );
            }
            let print = |r: &RoundReport| {
                if !json {
                    outln!("{}", round_line(r));
                }
            };
            let rt = super::runtime()?;
            let report = if in_containers {
                let runtime = DockerRuntime::open(&dir).map_err(anyhow::Error::msg)?;
                rt.block_on(failover::run(Arc::new(runtime), &cfg, print))
            } else {
                let exe = std::env::current_exe()?;
                let runtime = ProcessRuntime::open(dir, exe).map_err(anyhow::Error::msg)?;
                rt.block_on(failover::run(Arc::new(runtime), &cfg, print))
            }
            .map_err(anyhow::Error::msg)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                outln!("{}", spread_line("pause", &report.pause));
                outln!("{}", spread_line("election", &report.election));
                outln!("{}", spread_line("first ack", &report.first_ack));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
