//! `kmsim audit`: the audit events of a Region (CloudTrail record shape) — its replicated log
//! merged with the call logs of all its nodes — or the events of one multi-Region key in every
//! Region merged into one timeline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use kmsim_node::tls::Dialer;
use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{AuditEvent, ListAuditEventsRequest};
use kmsim_sim::cluster::ClusterDir;

/// Lists audit events in the CloudTrail record shape, oldest first, one JSON record per line.
///
/// A Region's events are the union of two logs: its replicated log (successful CreateKey,
/// ReplicateKey, UpdatePrimaryRegion, ScheduleKeyDeletion, CancelKeyDeletion,
/// ImportKeyMaterial, key rotation settings and rotations, and KMS's own events such as
/// DeleteKey and SynchronizeMultiRegionKey; the newest `[audit] region_retention_events`,
/// default 10000, on every node) and the call log of each of its nodes (every other call the
/// node answered: cryptographic calls, reads, other writes, and every refused or failed call
/// with errorCode and errorMessage, including calls the AWS endpoint refused before any
/// operation; each node keeps its newest `[audit] retention_events`, default 200000). When
/// retention has deleted older events, a note on stderr says how many. Times are ISO-8601 UTC.
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
    /// Only events at or after this time, ISO-8601 / RFC 3339 (e.g. 2026-12-06T05:00:00Z).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only events at or before this time, ISO-8601 / RFC 3339.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Only events of this eventName (e.g. Encrypt).
    #[arg(long)]
    event_name: Option<String>,
    /// Print only the newest N of the selected events.
    #[arg(long)]
    limit: Option<usize>,
    /// Print a short line per event (time with milliseconds, Region, eventName, key,
    /// errorCode) in fixed-width columns instead of the whole record.
    #[arg(long)]
    brief: bool,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// An RFC 3339 time as epoch milliseconds.
fn parse_time(s: &str) -> Result<i64, String> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("not an ISO-8601 time like 2026-12-06T05:00:00Z: {e}"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|e| e.to_string())
}

/// Epoch milliseconds as ISO-8601 UTC with milliseconds, always 24 characters
/// (`2026-12-06T07:19:02.230Z`), so `--brief` columns line up.
fn iso(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// What every page request carries.
#[derive(Clone, Default)]
struct Selection {
    key_id: String,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    event_name: String,
}

/// Every page of one log of one node.
async fn all_pages(
    dialer: &Dialer,
    addr: &str,
    sel: &Selection,
    node_calls: bool,
) -> anyhow::Result<Vec<AuditEvent>> {
    let mut admin = AdminServiceClient::new(super::admin_channel(dialer, addr)?);
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let resp = admin
            .list_audit_events(ListAuditEventsRequest {
                key_id: sel.key_id.clone(),
                after,
                limit: Some(1000),
                since_ms: sel.since_ms,
                until_ms: sel.until_ms,
                event_name: sel.event_name.clone(),
                node_calls,
            })
            .await?
            .into_inner();
        if after.is_none() && resp.lost_calls > 0 {
            eprintln!(
                "warning: node {addr} answered {} calls it could not record",
                resp.lost_calls
            );
        }
        if after.is_none() && resp.dropped_events > 0 {
            let (log, setting) = if node_calls {
                (format!("node {addr}'s call log"), "retention_events")
            } else {
                ("the Region's log".to_string(), "region_retention_events")
            };
            eprintln!(
                "note: retention has deleted the oldest {} events of {log} ([audit] {setting})",
                resp.dropped_events
            );
        }
        let page = resp.events;
        let done = page.len() < 1000;
        after = page.last().map(|e| e.seq);
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// The Region's replicated log, from the first node that answers.
async fn region_log(
    dialer: &Dialer,
    addrs: &[String],
    sel: &Selection,
) -> anyhow::Result<Vec<AuditEvent>> {
    let mut last = None;
    for addr in addrs {
        match all_pages(dialer, addr, sel, false).await {
            Ok(out) => return Ok(out),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("the Region has no nodes")))
}

/// `kmsim audit`
pub fn run(a: AuditArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::relayed(&a.data_dir)? {
        return Ok(code);
    }
    let dir = ClusterDir::new(&a.data_dir);
    let dialer = dir.operator_dialer()?;
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
    let sel = Selection {
        key_id: a.key_id.clone().unwrap_or_default(),
        since_ms: a.since,
        until_ms: a.until,
        event_name: a.event_name.clone().unwrap_or_default(),
    };
    let rt = super::runtime()?;
    let mut all: Vec<(String, AuditEvent)> = Vec::new();
    let mut missing = 0;
    for r in &regions {
        let addrs: Vec<String> = topo
            .region(r)
            .map(|c| c.nodes.iter().map(|n| n.advertise_addr()).collect())
            .unwrap_or_default();
        match rt.block_on(region_log(&dialer, &addrs, &sel)) {
            Ok(events) => all.extend(events.into_iter().map(|e| (r.clone(), e))),
            // One Region down must not hide the others' timeline: say so and go on.
            Err(e) if a.all_regions => {
                eprintln!("warning: {r} left out of the timeline: {e:#}");
                missing += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        // Each node's own calls; a node that does not answer is reported, not hidden.
        for addr in &addrs {
            match rt.block_on(all_pages(&dialer, addr, &sel, true)) {
                Ok(events) => all.extend(events.into_iter().map(|e| (r.clone(), e))),
                Err(e) => {
                    eprintln!(
                        "warning: the calls answered by node {addr} ({r}) are left out: {e:#}"
                    );
                    missing += 1;
                }
            }
        }
    }
    all.sort_by(|x, y| (x.1.time_ms, &x.0, x.1.seq).cmp(&(y.1.time_ms, &y.0, y.1.seq)));
    if let Some(n) = a.limit {
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
    }
    for (region, e) in all {
        if a.brief {
            let error = serde_json::from_str::<serde_json::Value>(&e.record)
                .ok()
                .and_then(|v| {
                    v.get("errorCode")
                        .and_then(|c| c.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            outln!(
                "{} {:<14} {:<28} {:<40} {}",
                iso(e.time_ms),
                region,
                e.event_name,
                e.key_id,
                error
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_times_have_a_fixed_width() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_796_158_119_230), "2026-12-01T20:48:39.230Z");
        assert_eq!(iso(1_796_158_119_233), "2026-12-01T20:48:39.233Z");
        for ms in [1, 10, 100, 999, 1_000, 1_796_158_119_000] {
            assert_eq!(iso(ms).len(), 24, "{}", iso(ms));
            assert_eq!(parse_time(&iso(ms)), Ok(ms));
        }
    }
}
