//! The workload's clients: a closed loop of `concurrency` clients per Region, or an open loop
//! of calls due at a fixed rate; and the steady-state probes over their recent calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use kmsim_experiment::history::{Phase, Record};
use kmsim_experiment::schedule;
use kmsim_experiment::spec::{Arrival, Experiment};

use super::calls::{self, KeyBook, Planned};
use super::retries::call_retrying;
use super::runner::{Caller, Recorder};
use crate::aws_client::{AwsJsonClient, OwnConnection};

/// Most calls in flight per client Region in the open loop (a call due while all are busy
/// waits, and its latency counts from when it was due).
const OPEN_LOOP_IN_FLIGHT: usize = 64;

/// Starts the clients of every client Region.
#[allow(clippy::too_many_arguments)]
pub(super) fn spawn_clients(
    e: &Experiment,
    clients: &Arc<BTreeMap<String, AwsJsonClient>>,
    book: &Arc<Mutex<KeyBook>>,
    rec: &Arc<Recorder>,
    seed: u64,
    start: Instant,
    stop: &watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let w = Arc::new(e.workload.clone());
    let end = start + w.duration;
    let regions = w.clients.clone();
    for (ri, region) in regions.iter().enumerate() {
        match w.arrival {
            Arrival::Concurrency(n) => {
                for i in 0..n {
                    let (w, clients, book, rec) =
                        (w.clone(), clients.clone(), book.clone(), rec.clone());
                    let region = region.clone();
                    let mut stop = stop.clone();
                    let client_id = ri as u32 * 10_000 + i;
                    tasks.spawn(async move {
                        let mut rng = schedule::stream(seed, &format!("client/{region}/{i}"));
                        let mut conn = OwnConnection::new(clients[&region].clone());
                        while Instant::now() < end && !*stop.borrow_and_update() {
                            let planned = {
                                let mut b = book.lock().expect("invariant: never poisoned");
                                next_call(&w, &region, &mut b, &mut rng)
                            };
                            let Some(planned) = planned else { break };
                            let due = Instant::now();
                            let who = Caller {
                                region: &region,
                                client: client_id,
                                phase: Phase::Workload,
                            };
                            call_retrying(&rec, &mut conn, &book, who, due, planned, w.retries)
                                .await;
                        }
                    });
                }
            }
            Arrival::Rate(total) => {
                let share = (total / regions.len() as u64).max(1);
                let (w, clients, book, rec) =
                    (w.clone(), clients.clone(), book.clone(), rec.clone());
                let region = region.clone();
                let stop = stop.clone();
                tasks.spawn(async move {
                    open_loop(
                        w, clients, book, rec, region, ri as u32, share, seed, start, end, stop,
                    )
                    .await;
                });
            }
        }
    }
}

/// Plans the next call; an operation with nothing to act on yet becomes an Encrypt (so a
/// Decrypt-heavy mix starts by making ciphertexts).
fn next_call(
    w: &kmsim_experiment::spec::Workload,
    region: &str,
    book: &mut KeyBook,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Option<Planned> {
    let op = calls::pick(&w.mix, rng);
    calls::plan(op, region, w, book, rng).or_else(|| {
        calls::plan(
            kmsim_experiment::spec::Operation::Encrypt,
            region,
            w,
            book,
            rng,
        )
    })
}

/// One Region's open loop: call k is due at k / rate from the start.
#[allow(clippy::too_many_arguments)]
async fn open_loop(
    w: Arc<kmsim_experiment::spec::Workload>,
    clients: Arc<BTreeMap<String, AwsJsonClient>>,
    book: Arc<Mutex<KeyBook>>,
    rec: Arc<Recorder>,
    region: String,
    region_index: u32,
    rate: u64,
    seed: u64,
    start: Instant,
    end: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(OPEN_LOOP_IN_FLIGHT));
    // The clients of the loop: an id each (a client makes one call at a time) and its own
    // connection.
    let new_conn = || OwnConnection::new(clients[&region].clone());
    let free = Arc::new(Mutex::new(
        (0..OPEN_LOOP_IN_FLIGHT as u32)
            .map(|i| (region_index * 10_000 + i, new_conn()))
            .collect::<Vec<_>>(),
    ));
    let mut rng = schedule::stream(seed, &format!("client/{region}/open"));
    let retries = w.retries;
    let mut k: u64 = 0;
    let mut inflight = tokio::task::JoinSet::new();
    loop {
        let due = start + Duration::from_nanos(k.saturating_mul(1_000_000_000) / rate);
        if due >= end || *stop.borrow_and_update() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = stop.changed() => break,
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let planned = {
            let mut b = book.lock().expect("invariant: never poisoned");
            next_call(&w, &region, &mut b, &mut rng)
        };
        let Some(planned) = planned else { break };
        // A permit is held, so a client is free.
        let (id, mut conn) = free
            .lock()
            .expect("invariant: never poisoned")
            .pop()
            .unwrap_or_else(|| {
                (
                    region_index * 10_000 + OPEN_LOOP_IN_FLIGHT as u32,
                    new_conn(),
                )
            });
        let (book, rec, region, free) = (book.clone(), rec.clone(), region.clone(), free.clone());
        inflight.spawn(async move {
            let who = Caller {
                region: &region,
                client: id,
                phase: Phase::Workload,
            };
            call_retrying(&rec, &mut conn, &book, who, due, planned, retries).await;
            free.lock()
                .expect("invariant: never poisoned")
                .push((id, conn));
            drop(permit);
        });
        while inflight.try_join_next().is_some() {}
        k += 1;
    }
    while inflight.join_next().await.is_some() {}
}

/// Evaluates the probes every second; a breach is recorded, and one that aborts stops the run.
pub(super) async fn run_probes(
    e: Experiment,
    rec: Arc<Recorder>,
    start: Instant,
    stop: watch::Sender<bool>,
    aborted: Arc<Mutex<Option<String>>>,
) {
    if e.probes.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    loop {
        tick.tick().await;
        let now = rec.now();
        for p in &e.probes {
            let window = p.window.as_micros() as u64;
            if rec.at(start) + window > now {
                continue;
            }
            let (mut n, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            {
                let recent = rec.recent.lock().expect("invariant: never poisoned");
                for r in recent.iter() {
                    if r.end + window < now
                        || p.region.as_ref().is_some_and(|x| *x != r.region)
                        || p.operation.is_some_and(|o| o != r.operation)
                    {
                        continue;
                    }
                    n += 1;
                    if !r.ok {
                        failed += 1;
                    }
                    latencies.push(r.latency);
                }
            }
            if n == 0 {
                continue;
            }
            latencies.sort_unstable();
            let p99 = latencies
                [((latencies.len() as f64 * 0.99).ceil() as usize).clamp(1, latencies.len()) - 1];
            let rate = failed as f64 / n as f64;
            let breach = match (p.max_error_rate, p.max_p99) {
                (Some(max), _) if rate > max => {
                    Some(format!("error rate {rate:.3} > {max} over {n} calls"))
                }
                (_, Some(max)) if Duration::from_micros(p99) > max => Some(format!(
                    "p99 {:.1} ms > {:?} over {n} calls",
                    p99 as f64 / 1000.0,
                    max
                )),
                _ => None,
            };
            if let Some(seen) = breach {
                rec.record(Record::Breach {
                    probe: p.name.clone(),
                    at: now,
                    seen: seen.clone(),
                    aborted: p.abort,
                });
                if p.abort {
                    *aborted.lock().expect("invariant: never poisoned") =
                        Some(format!("probe '{}': {seen}", p.name));
                    let _ = stop.send(true);
                    return;
                }
            }
        }
    }
}
