//! The fault schedule applied in time: each occurrence resolved to the nodes it hits when it
//! starts (the leader of that moment), and undone exactly there when it ends or at the heal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use kmsim_experiment::history::{Edge, FaultEvent, Record};
use kmsim_experiment::schedule::{Act, Schedule, Step, Target};
use kmsim_experiment::spec::{Experiment, Operation, Side};
use kmsim_proto::admin::v1::{ApiFault, LinkProfile};

use super::runner::{base_links, Recorder};
use super::runtime::{LinkSetting, Runtime};
use crate::cluster::NodeName;

/// How long the heal waits for every Region to have a leader again.
const HEAL_WAIT: Duration = Duration::from_secs(60);

/// A fault as it was applied: the nodes it hit, so its end undoes exactly that.
#[derive(Clone, Debug)]
pub(super) struct Resolved {
    nodes: Vec<NodeName>,
    links: Vec<LinkSetting>,
}

/// Applies the schedule in time until the workload's end (or an abort); returns what is still
/// active then, by occurrence.
pub(super) async fn apply_schedule<R: Runtime>(
    e: &Experiment,
    rt: &Arc<R>,
    schedule: &Schedule,
    rec: &Recorder,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Vec<Option<Resolved>> {
    let mut active: Vec<Option<Resolved>> = vec![None; schedule.occurrences.len()];
    let end = start + e.workload.duration;
    for (t, step) in schedule.steps() {
        let at = start + t;
        if at >= end {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = stop.changed() => return active,
        }
        match step {
            Step::Start(i) => {
                let o = &schedule.occurrences[i];
                let began = rec.now();
                let (what, result) = begin(rt.as_ref(), e, &o.act).await;
                let error = result.as_ref().err().cloned();
                edge(rec, progress, i, Edge::Start, (t, began), what, error);
                if o.act.is_instant() && result.is_ok() {
                    // Done once applied (a clock jump): its window closes at once.
                    let at = rec.now();
                    let what = "done (a clock jump is never undone)".to_string();
                    edge(
                        rec,
                        progress,
                        i,
                        Edge::End,
                        (Duration::from_micros(at), at),
                        what,
                        None,
                    );
                    continue;
                }
                active[i] = result.ok();
            }
            Step::End(i) => {
                if let Some(r) = active[i].take() {
                    undo(rt, e, schedule, i, r, rec, progress).await;
                }
            }
        }
    }
    tokio::select! {
        _ = tokio::time::sleep_until(end.into()) => {}
        _ = stop.changed() => {}
    }
    active
}

/// The nodes of one side of a link fault.
fn side_nodes(side: &Side, nodes: &[NodeName]) -> Vec<NodeName> {
    nodes
        .iter()
        .filter(|n| match side {
            Side::Region(r) => &n.region == r,
            Side::Node { region, id } => &n.region == region && n.id == u64::from(*id),
        })
        .cloned()
        .collect()
}

/// Link settings between two sides.
fn links_between(
    a: &Side,
    b: &Side,
    both: bool,
    p: LinkProfile,
    nodes: &[NodeName],
) -> Vec<LinkSetting> {
    let (xs, ys) = (side_nodes(a, nodes), side_nodes(b, nodes));
    let mut out = Vec::new();
    for x in &xs {
        for y in ys.iter().filter(|y| *y != x) {
            out.push(LinkSetting {
                from: x.clone(),
                to: y.clone(),
                profile: p,
            });
            if both {
                out.push(LinkSetting {
                    from: y.clone(),
                    to: x.clone(),
                    profile: p,
                });
            }
        }
    }
    out
}

/// Which node a target names now.
async fn resolve<R: Runtime>(rt: &R, t: &Target) -> Result<NodeName, String> {
    match t {
        Target::Node { region, id } => Ok(NodeName {
            region: region.clone(),
            id: u64::from(*id),
        }),
        Target::Leader { region } => rt
            .leader(region)
            .await
            .ok_or_else(|| format!("{region} has no leader to hit")),
        Target::Follower { region, draw } => {
            let leader = rt.leader(region).await;
            let followers: Vec<NodeName> = rt
                .nodes()
                .into_iter()
                .filter(|n| &n.region == region && Some(n) != leader.as_ref())
                .collect();
            if followers.is_empty() {
                return Err(format!("{region} has no follower"));
            }
            Ok(followers[(*draw % followers.len() as u64) as usize].clone())
        }
    }
}

/// Starts a fault; returns what it did and what to undo.
async fn begin<R: Runtime>(
    rt: &R,
    _e: &Experiment,
    act: &Act,
) -> (String, Result<Resolved, String>) {
    let nodes = rt.nodes();
    match act {
        Act::Kill(target) | Act::Pause(target) => {
            let n = match resolve(rt, target).await {
                Ok(n) => n,
                Err(err) => return (format!("{act:?}"), Err(err)),
            };
            let role = match target {
                Target::Leader { .. } => " (leader)",
                Target::Follower { .. } => " (follower)",
                Target::Node { .. } => "",
            };
            let (what, r) = if matches!(act, Act::Kill(_)) {
                (
                    format!("kill {n}{role}"),
                    rt.kill(std::slice::from_ref(&n)).await,
                )
            } else {
                (format!("pause {n}{role}"), rt.pause(&n).await)
            };
            (
                what,
                r.map(|()| Resolved {
                    nodes: vec![n],
                    links: Vec::new(),
                }),
            )
        }
        Act::KillRegion(region) => {
            let hit: Vec<NodeName> = nodes.into_iter().filter(|n| &n.region == region).collect();
            (
                format!("kill every node of {region}"),
                rt.kill(&hit).await.map(|()| Resolved {
                    nodes: hit,
                    links: Vec::new(),
                }),
            )
        }
        Act::Partition { a, b, both_ways } => {
            let cut = LinkProfile {
                partitioned: true,
                ..Default::default()
            };
            set_between(rt, "partition", a, b, *both_ways, cut, &nodes).await
        }
        Act::Link {
            from,
            to,
            both_ways,
            delay,
            jitter,
            loss,
        } => {
            let (delay_ms, jitter_ms) = (delay.as_millis() as u64, jitter.as_millis() as u64);
            let p = LinkProfile {
                delay_ms,
                jitter_ms,
                loss: *loss,
                partitioned: false,
            };
            let (what, r) = set_between(rt, "link", from, to, *both_ways, p, &nodes).await;
            (
                format!("{what}: delay {delay_ms}ms jitter {jitter_ms}ms loss {loss}"),
                r,
            )
        }
        Act::ClockJump { region, by } => {
            let by_ms = by.as_millis() as i64;
            (
                format!("jump the clock of {region} by {}", days(by_ms)),
                rt.jump_clock(region, by_ms)
                    .await
                    .map(|()| Resolved::none()),
            )
        }
        Act::ClockSkew {
            region,
            skew_ms,
            drift_ms_per_s,
        } => (
            format!(
                "skew the clock of {region} by {}{}",
                days(*skew_ms),
                match drift_ms_per_s {
                    0 => String::new(),
                    d => format!(", drifting {} per second", days(*d)),
                }
            ),
            rt.skew_clock(region, *skew_ms, *drift_ms_per_s)
                .await
                .map(|()| Resolved::none()),
        ),
        Act::PauseSync(region) => (
            format!("pause the synchronizer of {region}"),
            rt.pause_sync(region, true).await.map(|()| Resolved::none()),
        ),
        Act::InjectError { region, .. } | Act::InjectLatency { region, .. } => {
            let fault = api_fault(act, None);
            (
                format!("inject {} in {region}", injected(&fault)),
                rt.inject(region, &fault).await.map(|()| Resolved::none()),
            )
        }
    }
}

impl Resolved {
    /// A fault that hit no node or link of its own (a node hook set on a Region).
    fn none() -> Resolved {
        Resolved {
            nodes: Vec::new(),
            links: Vec::new(),
        }
    }
}

/// A signed span of simulated time, readable (`+8d`, `-2h`, `+1500ms`).
fn days(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let a = ms.unsigned_abs();
    let text = match a {
        a if a % 86_400_000 == 0 && a > 0 => format!("{}d", a / 86_400_000),
        a if a % 3_600_000 == 0 && a > 0 => format!("{}h", a / 3_600_000),
        a => kmsim_experiment::units::format_duration(Duration::from_millis(a)),
    };
    format!("{sign}{text}")
}

/// The API fault rule of an injection act; `percent` overrides its share (0 removes it).
fn api_fault(act: &Act, percent: Option<f64>) -> ApiFault {
    match act {
        Act::InjectError {
            operation,
            error,
            percent: p,
            ..
        } => ApiFault {
            operation: operation_name(*operation),
            error: error.code().to_string(),
            delay_ms: 0,
            percent: percent.unwrap_or(*p),
        },
        Act::InjectLatency {
            operation,
            delay,
            percent: p,
            ..
        } => ApiFault {
            operation: operation_name(*operation),
            error: String::new(),
            delay_ms: delay.as_millis() as u64,
            percent: percent.unwrap_or(*p),
        },
        _ => ApiFault::default(),
    }
}

/// The AWS name of the operation an API fault rule is for (empty: every operation).
fn operation_name(operation: Option<Operation>) -> String {
    operation.map(|o| o.name().to_string()).unwrap_or_default()
}

/// What an API fault rule does, for the history (`ThrottlingException on 20% of Encrypt`).
fn injected(f: &ApiFault) -> String {
    let effect = match f.error.as_str() {
        "" => format!("{}ms delay", f.delay_ms),
        e => e.to_string(),
    };
    let ops = match f.operation.as_str() {
        "" => "every operation".to_string(),
        op => op.to_string(),
    };
    format!("{effect} on {}% of {ops}", f.percent)
}

/// Sets `p` on the links between two sides; names what it did (`partition a <-> b`).
async fn set_between<R: Runtime>(
    rt: &R,
    verb: &str,
    a: &Side,
    b: &Side,
    both_ways: bool,
    p: LinkProfile,
    nodes: &[NodeName],
) -> (String, Result<Resolved, String>) {
    let links = links_between(a, b, both_ways, p, nodes);
    let what = format!(
        "{verb} {} {} {}",
        side_name(a),
        if both_ways { "<->" } else { "->" },
        side_name(b)
    );
    let r = rt.set_links(&links).await.map(|()| Resolved {
        nodes: Vec::new(),
        links,
    });
    (what, r)
}

fn side_name(s: &Side) -> String {
    match s {
        Side::Region(r) => r.clone(),
        Side::Node { region, id } => format!("{region}/{id}"),
    }
}

/// Ends a fault: restarts, resumes, or sets its links back to the experiment's profile.
pub(super) async fn undo<R: Runtime>(
    rt: &Arc<R>,
    e: &Experiment,
    schedule: &Schedule,
    i: usize,
    r: Resolved,
    rec: &Recorder,
    progress: &(dyn Fn(&str) + Send + Sync),
) {
    let at = rec.now();
    let act = &schedule.occurrences[i].act;
    let names = r
        .nodes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (what, result) = match act {
        Act::ClockJump { .. } => ("nothing to undo".to_string(), Ok(())),
        Act::ClockSkew { region, .. } => (
            format!("take back the clock skew of {region}"),
            rt.skew_clock(region, 0, 0).await,
        ),
        Act::PauseSync(region) => (
            format!("resume the synchronizer of {region}"),
            rt.pause_sync(region, false).await,
        ),
        Act::InjectError { region, .. } | Act::InjectLatency { region, .. } => (
            format!(
                "stop injecting {} in {region}",
                injected(&api_fault(act, None))
            ),
            rt.inject(region, &api_fault(act, Some(0.0))).await,
        ),
        Act::Kill(_) | Act::KillRegion(_) => {
            (format!("restart {names}"), rt.restart(&r.nodes).await)
        }
        Act::Pause(_) => {
            let mut result = Ok(());
            for n in &r.nodes {
                if let Err(err) = rt.resume(n).await {
                    result = Err(err);
                }
            }
            (format!("resume {names}"), result)
        }
        Act::Partition { .. } | Act::Link { .. } => {
            let base = base_links(&e.links, &rt.nodes());
            let restored: Vec<LinkSetting> = r
                .links
                .iter()
                .map(|l| LinkSetting {
                    profile: base
                        .iter()
                        .find(|b| b.from == l.from && b.to == l.to)
                        .map(|b| b.profile)
                        .unwrap_or_default(),
                    ..l.clone()
                })
                .collect();
            (
                format!("restore {} link(s)", restored.len()),
                rt.set_links(&restored).await,
            )
        }
    };
    let shown = Duration::from_micros(at);
    edge(rec, progress, i, Edge::End, (shown, at), what, result.err());
}

/// Reports one edge of occurrence `i` on the terminal (at `when.0`) and in the history (at
/// `when.1`, the run's clock).
fn edge(
    rec: &Recorder,
    progress: &(dyn Fn(&str) + Send + Sync),
    i: usize,
    edge: Edge,
    when: (Duration, u64),
    what: String,
    error: Option<String>,
) {
    let label = match edge {
        Edge::Start => "fault",
        Edge::End => "end of fault",
    };
    let failed = error
        .as_ref()
        .map(|e| format!(" (failed: {e})"))
        .unwrap_or_default();
    progress(&format!(
        "{:>6.1}s {label} {i}: {what}{failed}",
        when.0.as_secs_f64()
    ));
    rec.record(Record::Fault(FaultEvent {
        occurrence: i,
        edge,
        at: when.1,
        what,
        error,
    }));
}

/// Waits until every Region has a leader.
pub(super) async fn wait_leaders<R: Runtime>(rt: &R, regions: &[String]) -> Result<(), String> {
    let deadline = Instant::now() + HEAL_WAIT;
    for r in regions {
        while rt.leader(r).await.is_none() {
            if Instant::now() > deadline {
                return Err(format!("{r} has no leader {HEAL_WAIT:?} after the heal"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
