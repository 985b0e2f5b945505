//! The measurement behind `kmsim scenario failover`: how long acknowledged writes stop when a
//! Region's leader dies or freezes (a gray failure: its connections stay open), as an AWS
//! client of the gateway sees it. It runs on any [`Runtime`]: on local processes the leader is
//! SIGKILLed or SIGSTOPped, in containers it is `docker kill`ed or `docker pause`d.
//!
//! Each round: `concurrency` writers call CreateKey through the gateway (AWS JSON, SigV4, one
//! keep-alive connection each, so the gateway spreads them over the Region's nodes), in a
//! closed loop; a failed call is retried after [`RETRY_PAUSE`] (the figures are the cluster's,
//! not a client backoff's). After `before` of steady writes the Region's leader (the node
//! whose admin `Status` says so) is faulted: `kill` kills it, `freeze` pauses it for
//! `freeze_for`, then resumes it. The writers go on until writes are acknowledged again and
//! `after` more has passed (at most [`ROUND_LIMIT`]); then the round is over, a killed node is
//! started again, and the next round waits until the Region is healthy and the old leader
//! follows and has caught up.
//!
//! Per round: the *pause*, the longest gap between successive acknowledged writes from the
//! last one acknowledged before the fault on (what an application sees stop); the time from
//! the fault until a surviving node reports itself leader (*election*, polled every
//! [`POLL`]); and until the first acknowledgement of a call started after the fault
//! (*first ack*). Over the rounds: p50/p99/max of each.
//!
//! Only the runtime's own nodes are ever faulted (processes by the launcher's PID files,
//! containers by the cluster's names). Bounded: at most [`MAX_ROUNDS`] rounds, each at most
//! [`ROUND_LIMIT`] of writing and at most [`MAX_WRITES_PER_ROUND`] calls; every key it
//! creates stays in the cluster.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use kmsim_proto::admin::v1::{StatusRequest, StatusResponse};

use crate::aws_client::{AwsJsonClient, ClientError, Connection};
use crate::cluster::NodeName;
use crate::experiment::Runtime;
use crate::health::{wait_until, Health};

/// The most rounds one run makes.
pub const MAX_ROUNDS: usize = 100;
/// The most writers.
pub const MAX_CONCURRENCY: usize = 64;
/// The longest a round writes after its fault.
pub const ROUND_LIMIT: Duration = Duration::from_secs(30);
/// The most CreateKey calls of one round (every one leaves a key behind).
pub const MAX_WRITES_PER_ROUND: u64 = 20_000;
/// How long a writer waits after a failed call before the next one.
pub const RETRY_PAUSE: Duration = Duration::from_millis(10);
/// How long one `Status` call may take.
const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the survivors' `Status` is polled for a new leader.
pub const POLL: Duration = Duration::from_millis(10);
/// How long to wait for the Region to be healthy (and the old leader caught up) between rounds.
const HEAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Description of every key the scenario creates.
pub const KEY_DESCRIPTION: &str = "kmsim scenario failover";

/// Which fault a round injects into the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultMode {
    /// SIGKILL; the node is started again after the round.
    Kill,
    /// SIGSTOP for `freeze_for`, then SIGCONT.
    Freeze,
}

impl FromStr for FaultMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kill" => Ok(FaultMode::Kill),
            "freeze" => Ok(FaultMode::Freeze),
            other => Err(format!("unknown mode '{other}'; expected kill or freeze")),
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct FailoverConfig {
    /// The Region whose leader is faulted.
    pub region: String,
    /// The fault.
    pub mode: FaultMode,
    /// Rounds (1 to [`MAX_ROUNDS`]).
    pub rounds: usize,
    /// Writers (1 to [`MAX_CONCURRENCY`]).
    pub concurrency: usize,
    /// Steady writing before the fault.
    pub before: Duration,
    /// Writing after writes are acknowledged again (and, frozen, after the node resumes).
    pub after: Duration,
    /// How long a frozen leader stays stopped.
    pub freeze_for: Duration,
}

/// One distribution over the rounds, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    /// Rounds with a value.
    pub n: usize,
    /// Median (nearest rank).
    pub p50_ms: f64,
    /// 99th percentile (nearest rank: the maximum below 100 rounds).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Spread {
    /// The spread of `values` (milliseconds).
    pub fn of(values: &[f64]) -> Spread {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let i = (q * v.len() as f64).ceil() as usize;
            v[i.clamp(1, v.len()) - 1]
        };
        Spread {
            n: v.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: v[v.len() - 1],
        }
    }
}

/// The figures of one round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// 1-based.
    pub round: usize,
    /// The faulted leader.
    pub old_leader: u64,
    /// The leader afterwards (when one was found).
    pub new_leader: Option<u64>,
    /// Raft term before the fault.
    pub term_before: u64,
    /// Raft term when the Region had healed.
    pub term_after: u64,
    /// Longest gap between acknowledged writes, from the last one before the fault on.
    pub pause_ms: f64,
    /// Fault until a surviving node reports itself leader (none while the old one still led).
    pub election_ms: Option<f64>,
    /// Fault until the first acknowledgement of a call started after it.
    pub first_ack_ms: Option<f64>,
    /// Writes acknowledged in the round.
    pub acked: u64,
    /// Failed calls by error code (`Timeout`, `TransportError` for the client's own).
    pub errors: BTreeMap<String, u64>,
    /// The message of the first failed call of each error code.
    pub error_examples: BTreeMap<String, String>,
    /// False when writes were not acknowledged again within the round's limit.
    pub recovered: bool,
    /// The old leader's role once the Region healed (`follower` when it rejoined).
    pub old_leader_role: String,
}

/// The figures of a run.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    /// The fault.
    pub mode: FaultMode,
    /// The Region.
    pub region: String,
    /// Writers.
    pub concurrency: usize,
    /// Every round.
    pub rounds: Vec<RoundReport>,
    /// The pause over the rounds.
    pub pause: Spread,
    /// The election over the rounds.
    pub election: Spread,
    /// The first acknowledgement of a new call over the rounds.
    pub first_ack: Spread,
}

/// One call's outcome, times from the round's start.
struct Outcome {
    started: Duration,
    ended: Duration,
    /// `None`: acknowledged; else the error code and message.
    error: Option<(String, String)>,
}

/// The writers' shared state.
struct Writers {
    stop: AtomicBool,
    calls: AtomicU64,
    outcomes: Mutex<Vec<Outcome>>,
}

/// Runs the scenario on the cluster `rt` operates (local processes or containers). `progress`
/// is told each round's figures as they come.
pub async fn run<R: Runtime + 'static>(
    rt: Arc<R>,
    cfg: &FailoverConfig,
    mut progress: impl FnMut(&RoundReport),
) -> Result<FailoverReport, String> {
    if !(1..=MAX_ROUNDS).contains(&cfg.rounds) {
        return Err(format!("--rounds must be 1 to {MAX_ROUNDS}"));
    }
    if !(1..=MAX_CONCURRENCY).contains(&cfg.concurrency) {
        return Err(format!("--concurrency must be 1 to {MAX_CONCURRENCY}"));
    }
    let client = rt.client(&cfg.region)?;
    let nodes: Vec<NodeName> = rt
        .nodes()
        .into_iter()
        .filter(|n| n.region == cfg.region)
        .collect();
    if nodes.len() < 3 {
        return Err(format!(
            "{} has {} node(s); a failover needs at least 3",
            cfg.region,
            nodes.len()
        ));
    }
    let mut rounds = Vec::with_capacity(cfg.rounds);
    for round in 1..=cfg.rounds {
        let r = one_round(&rt, cfg, &client, &nodes, round).await?;
        progress(&r);
        rounds.push(r);
    }
    let spread = |f: &dyn Fn(&RoundReport) -> Option<f64>| {
        Spread::of(&rounds.iter().filter_map(f).collect::<Vec<_>>())
    };
    Ok(FailoverReport {
        mode: cfg.mode,
        region: cfg.region.clone(),
        concurrency: cfg.concurrency,
        pause: spread(&|r| Some(r.pause_ms)),
        election: spread(&|r| r.election_ms),
        first_ack: spread(&|r| r.first_ack_ms),
        rounds,
    })
}

/// Waits until every node of the Region answers, all name the same leader, and every node
/// has applied what its leader had; returns their statuses.
async fn healthy<R: Runtime>(rt: &R, nodes: &[NodeName]) -> Result<Vec<StatusResponse>, String> {
    let wanted = Health {
        nodes: nodes.len(),
        caught_up: true,
    };
    let status = |n| rt.status(n, POLL_TIMEOUT);
    wait_until(
        wanted,
        nodes,
        status,
        HEAL_TIMEOUT,
        Duration::from_millis(50),
    )
    .await
    .map_err(|why| format!("the Region did not heal within {HEAL_TIMEOUT:?}: {why}"))
}

async fn one_round<R: Runtime + 'static>(
    rt: &Arc<R>,
    cfg: &FailoverConfig,
    client: &AwsJsonClient,
    nodes: &[NodeName],
    round: usize,
) -> Result<RoundReport, String> {
    let statuses = healthy(rt.as_ref(), nodes).await?;
    let leader = statuses
        .iter()
        .find(|s| s.role == "leader")
        .ok_or("no leader")?;
    let (old, term_before) = (leader.node_id, leader.term);
    let name = NodeName {
        region: cfg.region.clone(),
        id: old,
    };
    // The election, as the survivors report it (one kept connection each: a new TLS
    // handshake per poll would load the nodes being measured).
    let mut admins = Vec::new();
    for n in nodes.iter().filter(|n| n.id != old) {
        admins.push(rt.admin(n).await?);
    }

    let writers = Arc::new(Writers {
        stop: AtomicBool::new(false),
        calls: AtomicU64::new(0),
        outcomes: Mutex::new(Vec::new()),
    });
    let start = Instant::now();
    let body = Bytes::from(json!({ "Description": KEY_DESCRIPTION }).to_string());
    let tasks: Vec<_> = (0..cfg.concurrency)
        .map(|_| {
            tokio::spawn(write_loop(
                client.clone(),
                body.clone(),
                writers.clone(),
                start,
            ))
        })
        .collect();

    tokio::time::sleep(cfg.before).await;
    let fault_at = start.elapsed();
    let (killer, mut frozen) = match cfg.mode {
        FaultMode::Kill => {
            let (rt, name) = (rt.clone(), name.clone());
            let kill = tokio::spawn(async move { rt.kill(&[name]).await });
            (Some(kill), None)
        }
        FaultMode::Freeze => (None, Some(rt.pause(&name).await)),
    };
    let election = tokio::spawn(async move {
        let since_fault = || start.elapsed().saturating_sub(fault_at);
        while since_fault() < ROUND_LIMIT {
            for admin in &mut admins {
                let asked = tokio::time::timeout(POLL_TIMEOUT, admin.status(StatusRequest {}));
                if let Ok(Ok(s)) = asked.await {
                    let s = s.into_inner();
                    if s.role == "leader" {
                        return Some((since_fault(), s.node_id));
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
        None
    });

    // Write until acknowledged again (and resumed, frozen), then `after` more. A node that
    // was frozen is always thawed before this returns, whatever failed.
    let limit = fault_at + ROUND_LIMIT;
    let mut resumed_at = None;
    let mut recovered_at = None;
    let mut thawed = Ok(());
    loop {
        let now = start.elapsed();
        if frozen.is_some() && now >= fault_at + cfg.freeze_for {
            thawed = thaw(rt.as_ref(), &name, frozen.take()).await;
            resumed_at = Some(now);
        }
        if recovered_at.is_none() {
            recovered_at = first_ack_after(&writers, fault_at);
        }
        let done_after = match cfg.mode {
            FaultMode::Kill => recovered_at,
            FaultMode::Freeze => recovered_at.zip(resumed_at).map(|(a, b)| a.max(b)),
        };
        if done_after.is_some_and(|t| now >= t + cfg.after)
            || now >= limit
            || writers.calls.load(Ordering::Relaxed) >= MAX_WRITES_PER_ROUND
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if frozen.is_some() {
        thawed = thaw(rt.as_ref(), &name, frozen.take()).await;
    }
    writers.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    thawed?;
    if let Some(k) = killer {
        k.await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("kill {name}: {e}"))?;
    }
    let election = election.await.ok().flatten();
    let end = start.elapsed();

    let outcomes = std::mem::take(&mut *writers.outcomes.lock().expect("lock"));
    let mut errors = BTreeMap::new();
    let mut error_examples = BTreeMap::new();
    let mut acks: Vec<Duration> = Vec::new();
    for o in &outcomes {
        match &o.error {
            None => acks.push(o.ended),
            Some((code, message)) => {
                *errors.entry(code.clone()).or_insert(0) += 1;
                error_examples
                    .entry(code.clone())
                    .or_insert_with(|| message.clone());
            }
        }
    }
    acks.sort();
    let recovered = recovered_at.is_some();
    let pause = pause_after(&acks, fault_at, end);

    // Heal: a killed node is started again; then the Region must be whole again.
    if cfg.mode == FaultMode::Kill {
        rt.restart(std::slice::from_ref(&name))
            .await
            .map_err(|e| format!("restart {name}: {e}"))?;
    }
    let healed = healthy(rt.as_ref(), nodes).await?;
    let old_leader_role = healed
        .iter()
        .find(|s| s.node_id == old)
        .map(|s| s.role.clone())
        .unwrap_or_default();
    let after = healed.iter().find(|s| s.role == "leader");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(RoundReport {
        round,
        old_leader: old,
        new_leader: after.map(|s| s.node_id).or(election.map(|e| e.1)),
        term_before,
        term_after: after.map(|s| s.term).unwrap_or(term_before),
        pause_ms: ms(pause),
        election_ms: election.map(|e| ms(e.0)),
        first_ack_ms: recovered_at.map(|t| ms(t.saturating_sub(fault_at))),
        acked: acks.len() as u64,
        errors,
        error_examples,
        recovered,
        old_leader_role,
    })
}

/// Resumes a node that `paused` (the outcome of pausing it) froze; a failed pause is the
/// error then.
async fn thaw<R: Runtime>(
    rt: &R,
    node: &NodeName,
    paused: Option<Result<(), String>>,
) -> Result<(), String> {
    match paused {
        Some(Ok(())) => rt
            .resume(node)
            .await
            .map_err(|e| format!("resume {node}: {e}")),
        Some(Err(e)) => Err(format!("pause {node}: {e}")),
        None => Ok(()),
    }
}

/// The end of the first acknowledged call started at or after `fault_at`.
fn first_ack_after(writers: &Writers, fault_at: Duration) -> Option<Duration> {
    writers
        .outcomes
        .lock()
        .expect("lock")
        .iter()
        .filter(|o| o.error.is_none() && o.started >= fault_at)
        .map(|o| o.ended)
        .min()
}

/// The longest gap between successive acknowledgements (`acks`, sorted) counted from the last
/// one at or before `fault_at` (or `fault_at` itself) on; with none after the fault, the time
/// from there to `end`.
pub fn pause_after(acks: &[Duration], fault_at: Duration, end: Duration) -> Duration {
    let split = acks.partition_point(|a| *a <= fault_at);
    let mut prev = if split > 0 { acks[split - 1] } else { fault_at };
    let after = &acks[split..];
    if after.is_empty() {
        return end.saturating_sub(prev);
    }
    let mut longest = Duration::ZERO;
    for a in after {
        longest = longest.max(a.saturating_sub(prev));
        prev = *a;
    }
    longest
}

/// One writer: CreateKey in a closed loop on its own connection until told to stop.
async fn write_loop(client: AwsJsonClient, body: Bytes, w: Arc<Writers>, start: Instant) {
    let mut conn: Option<Connection> = None;
    while !w.stop.load(Ordering::Relaxed)
        && w.calls.fetch_add(1, Ordering::Relaxed) < MAX_WRITES_PER_ROUND
    {
        let started = start.elapsed();
        let error = call(&client, &mut conn, &body).await.err();
        let failed = error.is_some();
        w.outcomes.lock().expect("lock").push(Outcome {
            started,
            ended: start.elapsed(),
            error,
        });
        if failed {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// One CreateKey; `Err` carries the AWS error code and message, or the client's own failure.
async fn call(
    client: &AwsJsonClient,
    conn: &mut Option<Connection>,
    body: &Bytes,
) -> Result<(), (String, String)> {
    let own = |what: &str, e: String| (what.to_string(), e);
    let req = client
        .signed("CreateKey", body.clone())
        .map_err(|e| own("SigningError", e.to_string()))?;
    let c = match conn {
        Some(c) => c,
        None => conn.insert(
            client
                .connect()
                .await
                .map_err(|e| own("ConnectError", e.to_string()))?,
        ),
    };
    let answer = c.send(req).await;
    if answer.is_err() {
        *conn = None;
    }
    match answer {
        Ok(a) => match a.error_code() {
            None if a.status.is_success() => Ok(()),
            None => Err(own(&format!("HTTP {}", a.status.as_u16()), String::new())),
            Some(code) => Err((code, a.error_message())),
        },
        Err(e @ ClientError::Timeout(_)) => Err(own("Timeout", e.to_string())),
        Err(e) => Err(own("TransportError", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn the_pause_spans_the_fault_and_counts_only_gaps_from_the_last_ack_before_it() {
        let acks = [ms(10), ms(20), ms(90), ms(100), ms(900), ms(910), ms(1000)];
        // Fault at 95: counted from the ack at 90, the gaps are 10, 800, 10 and 90.
        assert_eq!(pause_after(&acks, ms(95), ms(2000)), ms(800));
        // Gaps before the last ack before the fault do not count.
        assert_eq!(pause_after(&acks, ms(905), ms(2000)), ms(90));
        // No ack after the fault: until the end.
        assert_eq!(pause_after(&acks, ms(1500), ms(2000)), ms(1000));
        // No ack at all before the fault: from the fault.
        assert_eq!(pause_after(&[ms(300)], ms(100), ms(400)), ms(200));
    }

    #[test]
    fn spreads_use_the_nearest_rank() {
        let s = Spread::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.n, s.p50_ms, s.p99_ms, s.max_ms), (5, 3.0, 5.0, 5.0));
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        let s = Spread::of(&v);
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms), (100.0, 198.0, 200.0));
        assert_eq!(Spread::of(&[]).n, 0);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("kill".parse::<FaultMode>(), Ok(FaultMode::Kill));
        assert_eq!("freeze".parse::<FaultMode>(), Ok(FaultMode::Freeze));
        assert!("stop".parse::<FaultMode>().is_err());
    }
}
