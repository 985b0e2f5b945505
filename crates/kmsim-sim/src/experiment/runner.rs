//! One run of an experiment: setup, the workload with its fault schedule and probes, the heal
//! and settle, the observations, then the checkers and the report. Everything it does to the
//! cluster goes through a [`Runtime`]; everything it learns goes into the history.

use std::collections::{BTreeMap, VecDeque};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use kmsim_experiment::check::{self, Verdict};
use kmsim_experiment::history::{self, Call, Op, Outcome, Phase, Record};
use kmsim_experiment::schedule::Schedule;
use kmsim_experiment::spec::{Arrival, Experiment, LinkSpec, Operation};
use kmsim_proto::admin::v1::LinkProfile;

use super::calls::{self, KeyBook, Planned};
use super::clients::{run_probes, spawn_clients};
use super::faults::{apply_schedule, undo, wait_leaders};
use super::observe::observe;
use super::runtime::{LinkSetting, Runtime};
use super::sink::Sink;
use crate::aws_client::{AwsJsonClient, OwnConnection};
use crate::cluster::NodeName;

/// What a run needs besides the experiment.
pub struct RunOptions {
    /// The seed of the workload and the fault schedule.
    pub seed: u64,
    /// Where the history and the report go.
    pub out: PathBuf,
    /// Called with one line per phase and fault, for the terminal.
    pub progress: Box<dyn Fn(&str) + Send + Sync>,
    /// Counters a progress display reads while the run goes (`Live::default()` when none).
    pub live: Arc<super::live::Live>,
}

/// What a run produced.
pub struct RunOutcome {
    /// The fault schedule as expanded.
    pub schedule: Schedule,
    /// Every record, as written to `history.jsonl`.
    pub records: Vec<Record>,
    /// The checkers' verdicts.
    pub verdicts: Vec<Verdict>,
    /// The probe that stopped the run, if one did.
    pub aborted: Option<String>,
    /// The synchronizer's lag per Region pair, as the nodes measured it.
    pub sync_lag: Vec<kmsim_experiment::report::PairLag>,
}

impl RunOutcome {
    /// True when no checker failed and no probe stopped the run.
    pub fn passed(&self) -> bool {
        kmsim_experiment::report::passed(&self.verdicts, self.aborted.as_deref())
    }
}

/// A workload call as the probes see it.
pub(super) struct Recent {
    /// When it ended.
    pub(super) end: u64,
    /// The Region it was made in.
    pub(super) region: String,
    /// Its operation.
    pub(super) operation: kmsim_experiment::spec::Operation,
    /// Acknowledged.
    pub(super) ok: bool,
    /// From due to end, in microseconds.
    pub(super) latency: u64,
}

/// Who makes a call: which client, in which Region, in which phase.
#[derive(Clone, Copy)]
pub(super) struct Caller<'a> {
    /// The Region whose endpoint is called.
    pub(super) region: &'a str,
    /// The client (one call at a time each).
    pub(super) client: u32,
    /// The phase.
    pub(super) phase: Phase,
}

/// The history's clock and sink, shared by every task of the run.
pub(super) struct Recorder {
    pub(super) clock: Instant,
    /// Where records go, on their way to `history.jsonl`.
    pub(super) sink: Arc<Sink>,
    pub(super) next_id: std::sync::atomic::AtomicU64,
    /// Recent workload calls for the probes: (end, Region, operation, ok, latency).
    pub(super) recent: Mutex<VecDeque<Recent>>,
    /// The longest probe window, in microseconds.
    pub(super) keep_us: u64,
    /// Every acknowledged Encrypt, GenerateDataKey and ReEncrypt: (op id, key ARN,
    /// ciphertext), for the observations.
    pub(super) encrypts: Mutex<Vec<(u64, String, String)>>,
    /// Every acknowledged Sign and GenerateMac, for the observations.
    pub(super) signed: Mutex<Vec<calls::Signed>>,
    /// What a progress display shows.
    pub(super) live: Arc<super::live::Live>,
}

impl Recorder {
    pub(super) fn now(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    pub(super) fn at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.clock).as_micros() as u64
    }

    pub(super) fn record(&self, r: Record) {
        self.live.note(&r);
        // A push is dropped only after the writer stopped on an error, which the run reports
        // when it joins the writer.
        self.sink.push(r);
    }

    pub(super) fn op(&self, op: Op) {
        if let (
            Call::Encrypt { key, .. } | Call::GenerateDataKey { key } | Call::ReEncrypt { key, .. },
            Outcome::Ok { reply },
        ) = (&op.call, &op.outcome)
        {
            if let Some(blob) = &reply.ciphertext {
                self.encrypts
                    .lock()
                    .expect("invariant: never poisoned")
                    .push((op.id, key.clone(), blob.clone()));
            }
        }
        if op.phase == Phase::Workload && self.keep_us > 0 {
            let mut recent = self.recent.lock().expect("invariant: never poisoned");
            recent.push_back(Recent {
                end: op.end,
                region: op.region.clone(),
                operation: op.operation(),
                ok: op.ok(),
                latency: op.latency(),
            });
            while recent
                .front()
                .is_some_and(|r| r.end + self.keep_us < op.end)
            {
                recent.pop_front();
            }
        }
        self.record(Record::Op(op));
    }

    pub(super) fn phase(&self, phase: Phase) {
        self.record(Record::Phase {
            phase,
            at: self.now(),
        });
    }
}

/// Runs `e` on `rt`: writes `history.jsonl` into `opts.out` and returns the verdicts. The
/// report is written by the caller from the outcome.
pub async fn run<R: Runtime + 'static>(
    e: &Experiment,
    rt: Arc<R>,
    opts: &RunOptions,
) -> Result<RunOutcome, String> {
    let nodes = rt.nodes();
    for r in &e.cluster.regions {
        let n = nodes.iter().filter(|x| &x.region == r).count();
        if n as u32 != e.cluster.nodes {
            return Err(format!(
                "the cluster has {n} node(s) in {r}; the experiment wants {}",
                e.cluster.nodes
            ));
        }
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|err| format!("create {}: {err}", opts.out.display()))?;
    let schedule = Schedule::expand(e, opts.seed);
    let path = opts.out.join("history.jsonl");
    let file =
        std::fs::File::create(&path).map_err(|err| format!("create {}: {err}", path.display()))?;
    let sink = Arc::new(Sink::default());
    let writer = {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || sink.write_all(BufWriter::new(file)).map(|_| ()))
    };
    let keep_us = e
        .probes
        .iter()
        .map(|p| p.window.as_micros() as u64)
        .max()
        .unwrap_or(0);
    let rec = Arc::new(Recorder {
        clock: Instant::now(),
        sink: sink.clone(),
        next_id: std::sync::atomic::AtomicU64::new(1),
        recent: Mutex::new(VecDeque::new()),
        keep_us,
        encrypts: Mutex::new(Vec::new()),
        signed: Mutex::new(Vec::new()),
        live: opts.live.clone(),
    });
    let result = phases(e, &rt, &schedule, &rec, opts).await;
    drop(rec);
    // Every task that records has ended with the phases.
    sink.close();
    writer
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| format!("write {}: {err}", path.display()))?;
    let aborted = result?;
    let sync_lag = rt
        .sync_lag()
        .await
        .into_iter()
        .map(
            |(source, destination, samples_us)| kmsim_experiment::report::PairLag {
                source,
                destination,
                samples_us,
            },
        )
        .collect();
    let file = std::fs::File::open(&path).map_err(|err| format!("{}: {err}", path.display()))?;
    let records = history::read(std::io::BufReader::new(file))?;
    let verdicts = check::run_all(&check::Input {
        experiment: e,
        schedule: &schedule,
        records: &records,
    });
    Ok(RunOutcome {
        schedule,
        records,
        verdicts,
        aborted,
        sync_lag,
    })
}

/// The phases; returns the probe that aborted the run, if one did.
async fn phases<R: Runtime + 'static>(
    e: &Experiment,
    rt: &Arc<R>,
    schedule: &Schedule,
    rec: &Arc<Recorder>,
    opts: &RunOptions,
) -> Result<Option<String>, String> {
    let progress = &opts.progress;
    let mut clients = BTreeMap::new();
    for r in &e.cluster.regions {
        clients.insert(r.clone(), rt.client(r)?);
    }
    let clients = Arc::new(clients);
    let mut book = KeyBook::default();
    book.no_pool = [Operation::Decrypt, Operation::ReEncrypt]
        .iter()
        .all(|o| e.workload.weight(*o) == 0);
    let book = Arc::new(Mutex::new(book));

    rec.phase(Phase::Setup);
    progress("setup: link profiles and keys");
    rt.clear_links().await?;
    rt.set_links(&base_links(&e.links, &rt.nodes())).await?;
    setup_keys(e, &clients, &book, rec).await?;

    rec.phase(Phase::Workload);
    progress(&format!(
        "workload: {} for {:?}, {} fault(s) scheduled",
        match e.workload.arrival {
            Arrival::Rate(r) => format!("{r} calls/s open loop"),
            Arrival::Concurrency(c) => format!("{c} clients per Region"),
        },
        e.workload.duration,
        schedule.occurrences.len()
    ));
    let start = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    spawn_clients(
        e, &clients, &book, rec, opts.seed, start, &stop_rx, &mut tasks,
    );
    let aborted = Arc::new(Mutex::new(None::<String>));
    let probes = tokio::spawn(run_probes(
        e.clone(),
        rec.clone(),
        start,
        stop_tx.clone(),
        aborted.clone(),
    ));
    let mut active = apply_schedule(e, rt, schedule, rec, start, stop_rx.clone(), progress).await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    probes.abort();

    // The instant the convergence bound counts from (the Heal phase's record).
    let healed = Instant::now();
    rec.phase(Phase::Heal);
    progress("heal: every fault undone");
    for (i, resolved) in active.iter_mut().enumerate() {
        if let Some(r) = resolved.take() {
            undo(rt, e, schedule, i, r, rec, progress).await;
        }
    }
    rt.clear_links().await?;
    rt.set_links(&base_links(&e.links, &rt.nodes())).await?;
    wait_leaders(rt.as_ref(), &e.cluster.regions).await?;
    progress(&format!("settle: {:?}", e.workload.settle));
    tokio::time::sleep(e.workload.settle).await;

    rec.phase(Phase::Observe);
    progress("observe: every key in every Region, every ciphertext where it should decrypt");
    observe(e, rt, &clients, &book, rec, healed).await;
    let aborted = aborted.lock().expect("invariant: never poisoned").clone();
    Ok(aborted)
}

/// The link settings of the experiment's `[links]`, node by node.
pub(super) fn base_links(links: &[LinkSpec], nodes: &[NodeName]) -> Vec<LinkSetting> {
    let mut out = Vec::new();
    for l in links {
        let profile = LinkProfile {
            delay_ms: l.delay.as_millis() as u64,
            jitter_ms: l.jitter.as_millis() as u64,
            loss: l.loss,
            partitioned: false,
        };
        for from in nodes.iter().filter(|n| n.region == l.from) {
            for to in nodes.iter().filter(|n| n.region == l.to) {
                out.push(LinkSetting {
                    from: from.clone(),
                    to: to.clone(),
                    profile,
                });
            }
        }
    }
    out
}

/// Makes one call, updates the book with its outcome and returns it, to be recorded.
pub(super) async fn make_call(
    rec: &Recorder,
    conn: &mut OwnConnection,
    book: &Mutex<KeyBook>,
    who: Caller<'_>,
    due: Instant,
    planned: &Planned,
) -> Op {
    let id = rec
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = rec.now();
    let outcome = calls::send(conn, planned).await;
    let end = rec.now();
    calls::apply(
        &mut book.lock().expect("invariant: never poisoned"),
        who.region,
        id,
        planned,
        &outcome,
        who.phase == Phase::Workload,
    );
    if let Some(s) = calls::signed(id, planned, &outcome) {
        rec.signed
            .lock()
            .expect("invariant: never poisoned")
            .push(s);
    }
    Op {
        id,
        client: who.client,
        phase: who.phase,
        region: who.region.to_string(),
        node: None,
        due: rec.at(due).min(start),
        start,
        end,
        call: planned.call.clone(),
        outcome,
    }
}

/// Creates the setup's keys: in each client Region, `keys` keys of each kind the mix needs
/// (symmetric; signing; HMAC), the multi-Region ones replicated into every other client
/// Region; each Region then uses its own keys and the replicas it holds.
async fn setup_keys(
    e: &Experiment,
    clients: &BTreeMap<String, AwsJsonClient>,
    book: &Mutex<KeyBook>,
    rec: &Recorder,
) -> Result<(), String> {
    let w = &e.workload;
    for region in &w.clients {
        let mut conn = OwnConnection::new(clients[region].clone());
        let mrks = w.multi_region_keys();
        for (kind, k) in calls::KeyKind::needed(w)
            .into_iter()
            .flat_map(|kind| (0..w.keys).map(move |k| (kind, k)))
        {
            let multi_region = k < mrks;
            let planned = kind.create(multi_region, w);
            let op = retry_setup(rec, &mut conn, book, region, planned).await?;
            let Outcome::Ok { reply } = &op.outcome else {
                unreachable!("retry_setup returns acknowledged calls")
            };
            let arn = reply
                .key
                .clone()
                .ok_or("CreateKey answered without an Arn")?;
            {
                let mut b = book.lock().expect("invariant: never poisoned");
                b.add_crypto(region, &arn, kind);
            }
            if multi_region {
                for target in w.clients.iter().filter(|r| *r != region) {
                    let planned = Planned::new(
                        Call::ReplicateKey {
                            key: arn.clone(),
                            replica_region: target.clone(),
                        },
                        "ReplicateKey",
                        serde_json::json!({ "KeyId": arn, "ReplicaRegion": target }),
                    );
                    retry_setup(rec, &mut conn, book, region, planned).await?;
                    let mut b = book.lock().expect("invariant: never poisoned");
                    b.add_crypto(target, &calls::arn_in(&arn, target), kind);
                }
            }
        }
    }
    // A replica is usable once its material has arrived: wait until every replica is Enabled.
    let replicas: Vec<(String, String)> = {
        let b = book.lock().expect("invariant: never poisoned");
        b.known
            .values()
            .filter(|k| k.multi_region)
            .flat_map(|k| {
                w.clients
                    .iter()
                    .filter(|r| **r != k.home)
                    .map(|r| (r.clone(), calls::arn_in(&k.arn, r)))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    for (region, arn) in replicas {
        loop {
            let answer = clients[&region]
                .call("DescribeKey", &serde_json::json!({ "KeyId": arn }))
                .await;
            let state = answer
                .ok()
                .map(|a| a.json()["KeyMetadata"]["KeyState"].clone());
            if state.as_ref().and_then(|s| s.as_str()) == Some("Enabled") {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("the replica {arn} is not Enabled after 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// A setup call, made again on a retryable failure (the cluster may still be settling); at most
/// 20 tries.
async fn retry_setup(
    rec: &Recorder,
    conn: &mut OwnConnection,
    book: &Mutex<KeyBook>,
    region: &str,
    planned: Planned,
) -> Result<Op, String> {
    let mut last = String::new();
    let mut unknown_before = false;
    for attempt in 0..20u32 {
        let who = Caller {
            region,
            client: 0,
            phase: Phase::Setup,
        };
        let op = make_call(rec, conn, book, who, Instant::now(), &planned).await;
        rec.op(op.clone());
        match &op.outcome {
            Outcome::Ok { .. } => {
                if let Call::CreateKey { multi_region, .. } = &op.call {
                    if let Outcome::Ok { reply } = &op.outcome {
                        if let Some(arn) = &reply.key {
                            book.lock().expect("invariant: never poisoned").add_known(
                                region,
                                arn,
                                *multi_region,
                            );
                        }
                    }
                }
                return Ok(op);
            }
            // An earlier try whose outcome was unknown did create the replica.
            Outcome::Failed { code, .. }
                if unknown_before
                    && code == "AlreadyExistsException"
                    && matches!(op.call, Call::ReplicateKey { .. }) =>
            {
                return Ok(op);
            }
            Outcome::Failed { code, message } => last = format!("{code}: {message}"),
            Outcome::Unknown { reason } => {
                unknown_before = true;
                last = reason.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt + 1))).await;
    }
    Err(format!("setup {} failed: {last}", planned.operation))
}

impl Planned {
    /// A call of the setup.
    fn new(call: Call, operation: &'static str, body: serde_json::Value) -> Planned {
        calls::planned(call, operation, body)
    }
}

/// Where the run's files go by default: `experiments-out/<name>-<seed>`.
pub fn default_out(e: &Experiment, seed: u64) -> PathBuf {
    Path::new("experiments-out").join(format!("{}-{seed}", e.name))
}
