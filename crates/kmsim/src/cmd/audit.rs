//! `kmsim audit`: the management audit events of a Region (CloudTrail record shape), or the
//! events of one multi-Region key in every Region merged into one timeline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{AuditEvent, ListAuditEventsRequest};
use kmsim_sim::cluster::ClusterDir;

/// Lists audit events: CreateKey, ReplicateKey, UpdatePrimaryRegion, SynchronizeMultiRegionKey,
/// ScheduleKeyDeletion, CancelKeyDeletion, DeleteKey, rotations, imports. Each Region keeps its
/// own events in its replicated state (the newest 10000). One JSON record per line.
#[derive(Args)]
pub struct AuditArgs {
    /// The Region whose events to list [default: the topology's first].
    #[arg(long, conflicts_with = "all_regions")]
    region: Option<String>,
    /// Merge the events of every Region into one timeline (ordered by event time); needs
    /// --key-id. A Region that does not answer is left out with a warning (exit status 1).
    #[arg(long, requires = "key_id")]
    all_regions: bool,
    /// Only events about this key ID (e.g. mrk-…).
    #[arg(long)]
    key_id: Option<String>,
    /// Print a short line per event instead of the whole record.
    #[arg(long)]
    brief: bool,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

async fn events_of(addrs: &[String], key_id: &str) -> anyhow::Result<Vec<AuditEvent>> {
    let mut last = None;
    for addr in addrs {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(10))
            .connect_lazy();
        let mut admin = AdminServiceClient::new(ch);
        let mut out = Vec::new();
        let mut after = None;
        let res: anyhow::Result<()> = async {
            loop {
                let page = admin
                    .list_audit_events(ListAuditEventsRequest {
                        key_id: key_id.to_string(),
                        after,
                        limit: Some(1000),
                    })
                    .await?
                    .into_inner()
                    .events;
                let done = page.len() < 1000;
                after = page.last().map(|e| e.seq);
                out.extend(page);
                if done {
                    return Ok(());
                }
            }
        }
        .await;
        match res {
            Ok(()) => return Ok(out),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("the Region has no nodes")))
}

/// `kmsim audit`
pub fn run(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let dir = ClusterDir::new(&a.data_dir);
    let topo = dir.topology()?;
    let regions: Vec<String> = if a.all_regions {
        topo.regions.iter().map(|r| r.name.clone()).collect()
    } else {
        let r = a
            .region
            .clone()
            .unwrap_or_else(|| topo.regions[0].name.clone());
        anyhow::ensure!(
            topo.region(&r).is_some(),
            "Region {r} is not in the cluster"
        );
        vec![r]
    };
    let key = a.key_id.clone().unwrap_or_default();
    let rt = super::runtime()?;
    let mut all: Vec<(String, AuditEvent)> = Vec::new();
    let mut missing = 0;
    for r in &regions {
        let addrs: Vec<String> = topo
            .region(r)
            .map(|c| c.nodes.iter().map(|n| n.advertise_addr()).collect())
            .unwrap_or_default();
        match rt.block_on(events_of(&addrs, &key)) {
            Ok(events) => all.extend(events.into_iter().map(|e| (r.clone(), e))),
            // One Region down must not hide the others' timeline: say so and go on.
            Err(e) if a.all_regions => {
                eprintln!("warning: {r} left out of the timeline: {e:#}");
                missing += 1;
            }
            Err(e) => return Err(e),
        }
    }
    all.sort_by(|x, y| (x.1.time_ms, &x.0, x.1.seq).cmp(&(y.1.time_ms, &y.0, y.1.seq)));
    for (region, e) in all {
        if a.brief {
            outln!(
                "{} {:<14} {:<28} {}",
                e.time_ms,
                region,
                e.event_name,
                e.key_id
            );
        } else {
            outln!("{}", e.record);
        }
    }
    // Partial answers are printed, but not reported as complete.
    Ok(if missing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
