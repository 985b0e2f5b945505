//! `kmsim chaos clock | sync | inject`: the faults that live in the nodes themselves, set on
//! every node of a Region through its admin API (`kmsim_sim::node_hooks`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use kmsim_experiment::units::{parse_drift, parse_duration, parse_signed_ms};
use kmsim_node::tls::Dialer;
use kmsim_proto::admin::v1::ApiFault;
use kmsim_sim::cluster::NodeName;
use kmsim_sim::node_hooks::{PerNode, RegionHooks};

/// `chaos clock`.
#[derive(Args)]
pub struct ClockArgs {
    /// The Region.
    #[arg(long)]
    region: String,
    /// Moves the Region's clock forward for good by this much (e.g. 8d, 90d, 1h): its
    /// replicated clock, so every node, restarts included. Keys whose deletion date passes
    /// are deleted, rotations that come due are made.
    #[arg(long, value_parser = parse_duration, conflicts_with_all = ["skew", "drift", "clear"])]
    jump: Option<Duration>,
    /// Skews each node of the Region by this much (e.g. 2h, -30m, 3d) until `--clear`: a
    /// node-local offset on top of the Region's clock, never replicated.
    #[arg(long, value_parser = parse_signed_ms, allow_hyphen_values = true)]
    skew: Option<i64>,
    /// Makes the skew grow by this much per real second, minute or hour (e.g. 1h/s, -10m/m).
    #[arg(long, value_parser = parse_drift, allow_hyphen_values = true)]
    drift: Option<i64>,
    /// Takes the skew back: the nodes read their Region's clock again.
    #[arg(long, conflicts_with_all = ["skew", "drift"])]
    clear: bool,
}

/// `chaos sync`.
#[derive(Subcommand)]
pub enum SyncAction {
    /// Pauses the Region's synchronizer: it sends nothing to other Regions and refuses what they
    /// deliver; the work (new replicas, shared-property changes, rotations, notices) waits in
    /// the replicated state, both sides.
    Pause {
        /// The Region.
        #[arg(long)]
        region: String,
    },
    /// Resumes it: what waited is delivered at once.
    Resume {
        /// The Region.
        #[arg(long)]
        region: String,
    },
}

/// `chaos inject`.
#[derive(Args)]
pub struct InjectArgs {
    /// The Region whose nodes answer the injected faults (every Region when absent, and with
    /// `--clear`).
    #[arg(long)]
    region: Option<String>,
    /// Only this operation, by its AWS name (e.g. Encrypt, CreateKey); every operation when
    /// absent.
    #[arg(long)]
    operation: Option<String>,
    /// Answer ThrottlingException ("Rate exceeded", retried by AWS clients) or
    /// KMSInternalException (a server fault) before the operation runs: nothing is committed.
    #[arg(long, value_parser = ["ThrottlingException", "KMSInternalException"], conflicts_with = "delay")]
    error: Option<String>,
    /// Delay the operation by this much before it runs (e.g. 200ms).
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
    /// The share of the matching calls hit, in percent (0 removes the rule). Default 100.
    #[arg(long, default_value_t = 100.0)]
    percent: f64,
    /// Removes every injected fault (of the Region, or of every node).
    #[arg(long, conflicts_with_all = ["operation", "error", "delay"])]
    clear: bool,
}

/// What a Region-wide setting did, one line per node.
fn report(what: &str, results: &PerNode) -> ExitCode {
    let mut failed = false;
    for (n, r) in results {
        match r {
            Ok(()) => outln!("{what} on {n}"),
            Err(e) => {
                failed = true;
                outln!("{what} NOT set on {n}: {e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs `chaos clock`.
pub async fn clock(
    a: &ClockArgs,
    dialer: &Dialer,
    nodes: &[(NodeName, String)],
) -> anyhow::Result<ExitCode> {
    let h = RegionHooks::new(dialer, nodes);
    if let Some(jump) = a.jump {
        let ms = i64::try_from(jump.as_millis()).unwrap_or(i64::MAX);
        let (leader, offset) = h
            .jump_clock(&a.region, ms)
            .await
            .map_err(anyhow::Error::msg)?;
        outln!(
            "moved the clock of {} forward by {} ms (through {leader}); it runs {offset} ms ahead",
            a.region,
            ms
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (skew, drift) = match (a.clear, a.skew, a.drift) {
        (true, _, _) => (0, 0),
        (false, None, None) => {
            anyhow::bail!("give --jump, --skew (and/or --drift) or --clear")
        }
        (false, s, d) => (s.unwrap_or(0), d.unwrap_or(0)),
    };
    let results = h
        .skew_clock(&a.region, skew, drift)
        .await
        .map_err(anyhow::Error::msg)?;
    let what = if skew == 0 && drift == 0 {
        "clock skew cleared".to_string()
    } else {
        format!("clock skew {skew} ms, drift {drift} ms/s")
    };
    Ok(report(&what, &results))
}

/// Runs `chaos sync pause|resume`.
pub async fn sync(
    a: &SyncAction,
    dialer: &Dialer,
    nodes: &[(NodeName, String)],
) -> anyhow::Result<ExitCode> {
    let h = RegionHooks::new(dialer, nodes);
    let (region, paused) = match a {
        SyncAction::Pause { region } => (region, true),
        SyncAction::Resume { region } => (region, false),
    };
    let results = h
        .pause_sync(region, paused)
        .await
        .map_err(anyhow::Error::msg)?;
    let what = if paused {
        "synchronizer paused"
    } else {
        "synchronizer resumed"
    };
    Ok(report(what, &results))
}

/// Runs `chaos inject`.
pub async fn inject(
    a: &InjectArgs,
    dialer: &Dialer,
    nodes: &[(NodeName, String)],
) -> anyhow::Result<ExitCode> {
    let h = RegionHooks::new(dialer, nodes);
    if a.clear {
        let results = h
            .clear_injected(a.region.as_deref())
            .await
            .map_err(anyhow::Error::msg)?;
        return Ok(report("injected faults cleared", &results));
    }
    let Some(region) = a.region.as_deref() else {
        anyhow::bail!("give --region (or --clear)");
    };
    if let Some(op) = &a.operation {
        anyhow::ensure!(
            kmsim_node::aws::dispatch::OPERATIONS.contains(&op.as_str()),
            "--operation '{op}' is not a KMS operation; use an AWS name such as {}",
            kmsim_node::aws::dispatch::OPERATIONS[..6].join(", ")
        );
    }
    anyhow::ensure!(
        (0.0..=100.0).contains(&a.percent),
        "--percent must be between 0 and 100"
    );
    let fault = ApiFault {
        operation: a.operation.clone().unwrap_or_default(),
        error: a.error.clone().unwrap_or_default(),
        delay_ms: a.delay.map(|d| d.as_millis() as u64).unwrap_or(0),
        percent: a.percent,
    };
    anyhow::ensure!(
        !fault.error.is_empty() || fault.delay_ms > 0,
        "give --error or --delay (or --clear)"
    );
    let what = format!(
        "{} on {}% of {}",
        if fault.error.is_empty() {
            format!("{} ms delay", fault.delay_ms)
        } else {
            fault.error.clone()
        },
        a.percent,
        match &a.operation {
            Some(op) => format!("{op} calls"),
            None => "every call".to_string(),
        }
    );
    let results = h
        .inject(Some(region), &fault)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(report(&what, &results))
}
