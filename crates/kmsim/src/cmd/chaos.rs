//! `kmsim chaos`: inject faults into a running cluster: into the links between nodes (the
//! nodes' application-level fault layer), into processes or containers (kill, pause), and, on
//! a cluster in containers, into the network itself.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{
    ClearApiFaultsRequest, ClearLinkFaultsRequest, GetApiFaultsRequest, GetLinkFaultsRequest,
    LinkProfile, SetClockSkewRequest, SetLinkFaultsRequest, SetSyncPausedRequest,
    SetThrottleRequest, StatusRequest,
};
use kmsim_sim::bench::parse_duration;
use kmsim_sim::cluster::{ClusterDir, NodeName};
use kmsim_sim::container::faults::{ContainerAction, ContainerCluster, CutTarget};
use kmsim_sim::process::{kill_nodes, signal_running, KILL_WAIT};

/// Injects faults into a running cluster, at three layers.
///
/// Application (`link`, `partition`, `heal`, `show`; processes, and containers, where the
/// command runs in a throwaway container on the cluster's networks): every node applies
/// the profile of each of its outgoing links (delay, jitter, loss, partition) to every message
/// it sends on it: Raft RPCs and forwarded writes inside a Region, and the synchronizer's
/// messages between Regions and AWS JSON requests relayed to another Region. A SIDE is a node
/// (`us-east-1/2`) or a whole Region (`us-east-1`, meaning each of its nodes); a profile from
/// Region A to Region B applies to every node of A sending to any node of B.
///
/// Runtime (`kill-region`, `restart-region`, `pause`, `resume`; processes or containers):
/// SIGKILL (`docker kill`) makes peers see refused connections at once; a pause (SIGSTOP, or
/// `docker pause`) is a gray failure: the process keeps its connections open and never
/// answers, so peers see timeouts.
///
/// Request quotas (`throttle`; processes and containers): a Region's requests per second, for
/// one operation, a shared quota or every operation, answered `ThrottlingException` (`Rate
/// exceeded`) beyond it, as AWS throttles, so client retry and backoff can be studied.
///
/// Network (`cut`, `reconnect`; clusters in containers, `kmsim up --runtime docker`): a Region
/// cut off leaves the inter-Region network (its nodes still reach each other), a node cut off
/// leaves both its networks; packets have no route, so peers see connections fail or time out.
///
/// Node hooks (`clock`, `sync`, `inject`; set on every node of a Region through its admin API,
/// in memory, except a clock jump): a Region's clock jumped for good or skewed for a while, its
/// synchronizer paused, a share of its API calls answered ThrottlingException or
/// KMSInternalException, or delayed, before they run. `heal` removes these too.
#[derive(Args)]
pub struct ChaosArgs {
    #[command(subcommand)]
    action: ChaosAction,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR, global = true)]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum ChaosAction {
    /// Sets the profile of the links from one side to another (one direction). Values not
    /// given are 0: `kmsim chaos link --from A --to B` alone heals that direction.
    Link {
        /// Sending side: REGION or REGION/ID.
        #[arg(long)]
        from: String,
        /// Receiving side: REGION or REGION/ID.
        #[arg(long)]
        to: String,
        /// Delay added to every message (e.g. 80ms, 1s).
        #[arg(long, value_parser = parse_duration, default_value = "0ms")]
        delay: Duration,
        /// Extra delay drawn uniformly from [0, jitter] per message.
        #[arg(long, value_parser = parse_duration, default_value = "0ms")]
        jitter: Duration,
        /// Probability (0 to 1) that a message is dropped.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Drop everything on these links.
        #[arg(long)]
        partition: bool,
    },
    /// Cuts every link between two sides, in both directions.
    Partition {
        /// One side: REGION or REGION/ID.
        a: String,
        /// The other side: REGION or REGION/ID.
        b: String,
    },
    /// Removes every fault from every node: link profiles, injected API faults, clock skews,
    /// paused synchronizers (a clock jump stays: it never goes back).
    Heal,
    /// SIGKILLs every node of a Region (their data dirs are kept) and returns once every
    /// thread of each has exited, so their RocksDB locks are free (at most 30 s, then fails
    /// naming the node and pid still running).
    KillRegion {
        /// The Region.
        region: String,
    },
    /// Starts every node of a Region again and waits until each answers (a node first waits up
    /// to KMSIM_LOCK_WAIT, default 10s, for a predecessor to release its RocksDB lock) and the
    /// Region has elected a leader (at most 30 s).
    RestartRegion {
        /// The Region.
        region: String,
    },
    /// Lists the faults of every node: its faulty links, injected API faults, clock skew and
    /// whether its synchronizer is paused.
    Show,
    /// Freezes one node (SIGSTOP, or `docker pause` on a cluster in containers): a gray
    /// failure, its connections stay open and nothing answers. `resume` thaws it.
    Pause {
        /// The node, as REGION/ID.
        node: String,
    },
    /// Thaws a node frozen by `pause` (SIGCONT, or `docker unpause`).
    Resume {
        /// The node, as REGION/ID.
        node: String,
    },
    /// Cuts a Region (from the other Regions and the gateway) or a node (from everything) off
    /// at the network level: `docker network disconnect`. Clusters in containers only; on
    /// processes use `partition`.
    Cut {
        /// REGION or REGION/ID.
        side: String,
    },
    /// Connects what `cut` cut off again (`docker network connect`).
    Reconnect {
        /// REGION or REGION/ID.
        side: String,
    },
    /// Sets a Region's request quota at run time: a Region setting replicated by Raft, which
    /// every node of the Region enforces, its share each (RATE / nodes), a node restarted or
    /// unreachable at the time too (it applies it from the Region's log). Works whether or not the topology turns
    /// quotas on (`quotas = "aws"`); it takes precedence over the topology's values until
    /// cleared. Calls beyond it are answered `ThrottlingException` (`Rate exceeded`).
    Throttle {
        /// The Region.
        #[arg(long)]
        region: String,
        /// The quota: an operation (e.g. Encrypt) or a shared quota
        /// (CryptographicOperationsSymmetric, CryptographicOperationsRsa,
        /// CryptographicOperationsEcc, CryptographicOperationsMlDsa,
        /// GenerateDataKeyPair/<KeyPairSpec>). Without it: every operation, each at RATE.
        #[arg(long)]
        operation: Option<String>,
        /// Requests per second for the whole Region (0 refuses every call), or `off` to clear
        /// the run-time rate (without --operation: every run-time rate).
        #[arg(long, required_unless_present = "clear")]
        rate: Option<String>,
        /// The same as `--rate off`.
        #[arg(long, conflicts_with = "rate")]
        clear: bool,
    },
    /// Moves a Region's simulated clock. `--jump 30d` moves its replicated clock forward for
    /// good (AdvanceClock on its leader; never back): deletion windows, rotation periods,
    /// imported material's expiry, `aws:CurrentTime` and audit times follow. `--skew 2h`
    /// (or `-2h`, optionally `--drift 1h/s`) sets a skew on each of its nodes until `--clear`:
    /// node-local, never replicated and lost on restart; a skewed node proposes dates (deletion
    /// dates, creation dates), finds deletions and rotations due while it leads, evaluates
    /// `aws:CurrentTime` and stamps audit records by its skewed clock. The Regions' clocks are
    /// independent: moving one never moves another.
    Clock(super::chaos_hooks::ClockArgs),
    /// Pauses or resumes a Region's multi-Region key synchronization (`sync pause --region R`):
    /// paused, its nodes send nothing to other Regions and refuse their deliveries, so no new
    /// replica, shared-property change, rotation or deletion notice crosses in either
    /// direction; nothing is lost, the work waits in each Region's replicated state and is
    /// delivered on `sync resume`. ReplicateKey and UpdatePrimaryRegion, which must reach the
    /// other Region before they answer, fail meanwhile.
    Sync {
        #[command(subcommand)]
        action: super::chaos_hooks::SyncAction,
    },
    /// Injects API faults in a Region: `--error ThrottlingException|KMSInternalException
    /// --percent P` answers that share of the calls (of `--operation OP`, else of every
    /// operation) with the error before the operation runs, so nothing is committed;
    /// `--delay 200ms` delays them. One rule per operation and kind (error or delay), the last
    /// set wins; `--percent 0` removes it; `--clear` removes every rule. Draws are seeded (the
    /// topology's fault_seed). Both faces (AWS JSON and gRPC) answer them.
    Inject(super::chaos_hooks::InjectArgs),
}

/// How long `restart-region` waits for the containers of a Region to be ready.
const CONTAINER_READY_WAIT: Duration = Duration::from_secs(60);
/// How long killed containers may take to stop running.
const CONTAINER_KILL_WAIT: Duration = Duration::from_secs(20);

/// `kmsim chaos …`
pub fn run(a: ChaosArgs) -> anyhow::Result<ExitCode> {
    // The application-level link faults are set through each node's admin API: on a cluster
    // in containers they are set from inside its networks (the command relayed there, where
    // it runs as on processes). The runtime and network faults act on the containers from here.
    let app_level = matches!(
        a.action,
        ChaosAction::Link { .. }
            | ChaosAction::Partition { .. }
            | ChaosAction::Heal
            | ChaosAction::Show
            | ChaosAction::Throttle { .. }
            | ChaosAction::Clock(_)
            | ChaosAction::Sync { .. }
            | ChaosAction::Inject(_)
    );
    if app_level {
        if let Some(code) = super::relayed(&a.data_dir)? {
            return Ok(code);
        }
    }
    let dir = ClusterDir::new(&a.data_dir);
    let nodes = dir.nodes()?;
    // (In the relay container, where the link faults run, there is no docker to ask.)
    let containers = if app_level {
        None
    } else {
        ContainerCluster::open(&a.data_dir, &dir.topology()?)?
    };
    let side = |spec: &str| -> anyhow::Result<Vec<NodeName>> {
        let picked: Vec<NodeName> = match spec.split_once('/') {
            Some(_) => {
                let n = NodeName::parse(spec)?;
                nodes
                    .iter()
                    .filter(|(m, _)| *m == n)
                    .map(|(m, _)| m.clone())
                    .collect()
            }
            None => nodes
                .iter()
                .filter(|(m, _)| m.region == spec)
                .map(|(m, _)| m.clone())
                .collect(),
        };
        anyhow::ensure!(
            !picked.is_empty(),
            "'{spec}' names no node of the cluster in {}",
            a.data_dir.display()
        );
        Ok(picked)
    };
    let addr = |n: &NodeName| -> String {
        nodes
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, e)| e.advertise_addr())
            .unwrap_or_default()
    };
    // (sender, peer, profile) settings to apply.
    let mut settings: Vec<(NodeName, NodeName, LinkProfile)> = Vec::new();
    match &a.action {
        ChaosAction::Link {
            from,
            to,
            delay,
            jitter,
            loss,
            partition,
        } => {
            anyhow::ensure!((0.0..=1.0).contains(loss), "--loss must be between 0 and 1");
            let profile = LinkProfile {
                delay_ms: delay.as_millis() as u64,
                jitter_ms: jitter.as_millis() as u64,
                loss: *loss,
                partitioned: *partition,
            };
            for s in side(from)? {
                for d in side(to)?.into_iter().filter(|d| *d != s) {
                    settings.push((s.clone(), d, profile));
                }
            }
        }
        ChaosAction::Partition { a: x, b: y } => {
            let cut = LinkProfile {
                partitioned: true,
                ..Default::default()
            };
            let (xs, ys) = (side(x)?, side(y)?);
            for s in &xs {
                for d in ys.iter().filter(|d| *d != s) {
                    settings.push((s.clone(), d.clone(), cut));
                    settings.push((d.clone(), s.clone(), cut));
                }
            }
        }
        _ => {}
    }
    if let Some(c) = &containers {
        return run_on_containers(c, &a.action, side);
    }
    match &a.action {
        ChaosAction::Pause { node } | ChaosAction::Resume { node } => {
            let name = NodeName::parse(node)?;
            anyhow::ensure!(
                nodes.iter().any(|(n, _)| *n == name),
                "{name} is not in the topology"
            );
            let (signal, done) = match &a.action {
                ChaosAction::Pause { .. } => (nix::sys::signal::Signal::SIGSTOP, "paused"),
                _ => (nix::sys::signal::Signal::SIGCONT, "resumed"),
            };
            let pid = signal_running(&dir, &name, signal).map_err(anyhow::Error::msg)?;
            outln!("{done} {name} (pid {pid})");
            return Ok(ExitCode::SUCCESS);
        }
        ChaosAction::Cut { .. } | ChaosAction::Reconnect { .. } => anyhow::bail!(
            "`chaos cut` and `reconnect` act on the network of a cluster in containers \
             (`kmsim up --runtime docker`); the nodes in {} are processes: use `kmsim chaos \
             partition` (the application-level fault layer)",
            a.data_dir.display()
        ),
        ChaosAction::KillRegion { region } => {
            for (n, was_running) in kill_nodes(&dir, &side(region)?, KILL_WAIT)? {
                if was_running {
                    outln!("killed {n}");
                } else {
                    outln!("{n} was not running");
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        ChaosAction::RestartRegion { region } => {
            super::node::restart_nodes(&dir, &side(region)?)?;
            let statuses = super::runtime()?.block_on(kmsim_sim::health::wait_healthy_regions(
                &dir,
                Some(region),
                Duration::from_secs(30),
            ))?;
            if let Some(leader) = statuses.iter().find(|s| s.role == "leader") {
                outln!("{region} has a leader again: node {}", leader.node_id);
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let rt = super::runtime()?;
    let dialer = dir.operator_dialer()?;
    let admin_addrs: Vec<(NodeName, String)> = nodes
        .iter()
        .map(|(n, e)| (n.clone(), e.advertise_addr()))
        .collect();
    match &a.action {
        ChaosAction::Clock(c) => {
            return rt.block_on(super::chaos_hooks::clock(c, &dialer, &admin_addrs))
        }
        ChaosAction::Sync { action } => {
            return rt.block_on(super::chaos_hooks::sync(action, &dialer, &admin_addrs))
        }
        ChaosAction::Inject(i) => {
            return rt.block_on(super::chaos_hooks::inject(i, &dialer, &admin_addrs))
        }
        _ => {}
    }
    rt.block_on(async {
        let client = |n: &NodeName| {
            let addr = addr(n);
            let dialer = dialer.clone();
            async move {
                let ep = dialer
                    .endpoint(&addr)?
                    .connect_timeout(Duration::from_secs(1))
                    .timeout(Duration::from_secs(5));
                let ch = ep
                    .connect()
                    .await
                    .with_context(|| format!("cannot reach {addr}"))?;
                anyhow::Ok(AdminServiceClient::new(ch))
            }
        };
        match &a.action {
            ChaosAction::Throttle {
                region,
                operation,
                rate,
                clear,
            } => {
                anyhow::ensure!(
                    !region.contains('/'),
                    "--region {region}: a quota is the whole Region's, name a Region (e.g. us-east-1)"
                );
                let rate = throttle_rate(rate.as_deref(), *clear)?;
                if let Some(op) = operation {
                    anyhow::ensure!(
                        kmsim_node::quotas::quota_index(op).is_some(),
                        "{}",
                        kmsim_node::quotas::unknown_quota(op)
                    );
                }
                // A Region setting replicated by Raft, so every node applies it, one restarted
                // later too. Sent to each node all the same: each answers once it has applied
                // it, so when this returns every node that answered enforces it (a node that
                // cannot be reached applies it from the Region's log when it is back).
                let mut answer = None;
                let mut failures = Vec::new();
                for n in side(region)? {
                    let sent = async {
                        client(&n)
                            .await?
                            .set_throttle(SetThrottleRequest {
                                quota: operation.clone().unwrap_or_default(),
                                rate,
                            })
                            .await
                            .with_context(|| format!("setting the quota on {n}"))
                    };
                    match sent.await {
                        Ok(r) => answer = Some(r.into_inner()),
                        Err(e) => failures.push(format!("{e:#}")),
                    }
                }
                let Some(r) = answer else {
                    anyhow::bail!("no node of {region} took the quota: {}", failures.join("; "));
                };
                let mut out = format!("{region}: {} node(s) share the Region's rates\n", r.share);
                for f in &failures {
                    out.push_str(&format!("  (not confirmed: {f}; it applies the rate when back)\n"));
                }
                for q in r.quotas {
                    out.push_str(&format!("  {} {}/s\n", q.quota, q.rate));
                }
                let what = operation.as_deref().unwrap_or("every operation");
                match rate {
                    Some(r) => outln!("{what} in {region}: {r} requests per second"),
                    None => outln!("{what} in {region}: run-time rate cleared"),
                }
                crate::stdout::write_bytes(out.as_bytes());
            }
            ChaosAction::Heal => {
                for (n, _) in &nodes {
                    match client(n).await {
                        Ok(mut c) => {
                            c.clear_link_faults(ClearLinkFaultsRequest {}).await?;
                            c.clear_api_faults(ClearApiFaultsRequest {}).await?;
                            c.set_clock_skew(SetClockSkewRequest::default()).await?;
                            // (A node without a synchronizer refuses; it has none to resume.)
                            let _ = c
                                .set_sync_paused(SetSyncPausedRequest { paused: false })
                                .await;
                            outln!("healed {n}");
                        }
                        Err(e) => outln!("skipped {n}: {e:#}"),
                    }
                }
            }
            ChaosAction::Show => {
                // Written at once, and a closed pipe (`| head`) is not an error.
                let mut out = String::new();
                for (n, _) in &nodes {
                    let Ok(mut c) = client(n).await else {
                        out.push_str(&format!("{n}: down\n"));
                        continue;
                    };
                    if let Ok(st) = c.status(StatusRequest {}).await {
                        let st = st.into_inner();
                        if st.clock_skew_ms != 0 {
                            out.push_str(&format!("{n}: clock skew {} ms\n", st.clock_skew_ms));
                        }
                        if st.sync_paused {
                            out.push_str(&format!("{n}: synchronizer PAUSED\n"));
                        }
                    }
                    for f in c
                        .get_api_faults(GetApiFaultsRequest {})
                        .await?
                        .into_inner()
                        .faults
                    {
                        let effect = if f.error.is_empty() {
                            format!("{} ms delay", f.delay_ms)
                        } else {
                            f.error
                        };
                        let op = if f.operation.is_empty() {
                            "every operation".to_string()
                        } else {
                            f.operation
                        };
                        out.push_str(&format!("{n}: inject {effect} on {}% of {op}\n", f.percent));
                    }
                    for l in c
                        .get_link_faults(GetLinkFaultsRequest {})
                        .await?
                        .into_inner()
                        .links
                    {
                        let p = l.profile.unwrap_or_default();
                        out.push_str(&format!(
                            "{n} -> {}: delay {}ms jitter {}ms loss {}{}\n",
                            l.peer,
                            p.delay_ms,
                            p.jitter_ms,
                            p.loss,
                            if p.partitioned { " PARTITIONED" } else { "" }
                        ));
                    }
                }
                crate::stdout::write_bytes(out.as_bytes());
            }
            _ => {
                for (s, d, profile) in &settings {
                    let mut c = client(s).await?;
                    c.set_link_faults(SetLinkFaultsRequest {
                        peer: d.to_string(),
                        profile: Some(*profile),
                    })
                    .await?;
                }
                outln!("{} link(s) set", settings.len());
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The faults on a cluster in containers: runtime and network level. (The application-level
/// link faults are relayed into the cluster's networks by [`run`].)
fn run_on_containers(
    c: &ContainerCluster,
    action: &ChaosAction,
    side: impl Fn(&str) -> anyhow::Result<Vec<NodeName>>,
) -> anyhow::Result<ExitCode> {
    let target = |spec: &str| -> anyhow::Result<CutTarget> {
        side(spec)?;
        Ok(match spec.split_once('/') {
            Some(_) => CutTarget::Node(NodeName::parse(spec)?),
            None => CutTarget::Region(spec.to_string()),
        })
    };
    match action {
        ChaosAction::KillRegion { region } => {
            let names = side(region)?;
            c.kill_and_wait(&names, CONTAINER_KILL_WAIT)?;
            for n in &names {
                outln!("killed {n} ({})", c.container(n));
            }
        }
        ChaosAction::RestartRegion { region } => {
            let names = side(region)?;
            c.start_and_wait(&names, CONTAINER_READY_WAIT)?;
            for n in &names {
                outln!("{n} ready ({})", c.container(n));
            }
        }
        ChaosAction::Pause { node } | ChaosAction::Resume { node } => {
            let name = NodeName::parse(node)?;
            side(node)?;
            let (act, done) = match action {
                ChaosAction::Pause { .. } => (ContainerAction::Pause, "paused"),
                _ => (ContainerAction::Resume, "resumed"),
            };
            c.act(act, &name)?;
            outln!("{done} {name} ({})", c.container(&name));
        }
        ChaosAction::Cut { side: spec } => {
            for (network, container) in c.cut(&target(spec)?)? {
                outln!("disconnected {container} from {network}");
            }
        }
        ChaosAction::Reconnect { side: spec } => {
            for (network, container) in c.reconnect(&target(spec)?)? {
                outln!("connected {container} to {network}");
            }
        }
        ChaosAction::Link { .. }
        | ChaosAction::Partition { .. }
        | ChaosAction::Heal
        | ChaosAction::Show
        | ChaosAction::Throttle { .. }
        | ChaosAction::Clock(_)
        | ChaosAction::Sync { .. }
        | ChaosAction::Inject(_) => anyhow::bail!(
            "internal: the link faults of {} are set from inside its networks ([`run`])",
            c.name
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The rate of `chaos throttle`: requests per second, or `None` for `off` / `--clear`.
fn throttle_rate(rate: Option<&str>, clear: bool) -> anyhow::Result<Option<f64>> {
    match rate {
        _ if clear => Ok(None),
        None | Some("off") => Ok(None),
        Some(r) => {
            let v: f64 = r
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .with_context(|| {
                    format!("--rate {r}: expected requests per second (0 or more) or `off`")
                })?;
            Ok(Some(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::throttle_rate;

    #[test]
    fn throttle_rates_are_numbers_or_off() {
        assert_eq!(throttle_rate(Some("2.5"), false).unwrap(), Some(2.5));
        assert_eq!(throttle_rate(Some("0"), false).unwrap(), Some(0.0));
        assert_eq!(throttle_rate(Some("off"), false).unwrap(), None);
        assert_eq!(throttle_rate(None, true).unwrap(), None);
        for bad in ["-1", "fast", "NaN", "inf"] {
            assert!(throttle_rate(Some(bad), false).is_err(), "{bad}");
        }
    }
}
