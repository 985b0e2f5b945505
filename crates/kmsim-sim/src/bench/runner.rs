//! The loops that drive one run: a task per client, closed loop (call, answer, call again) or
//! open loop (calls due at the [`Schedule`]'s times, latency counted from then), each task's
//! figures merged into the run's [`BenchResult`] at the end.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::schedule::{self, Schedule};
use super::{
    new_histogram, percentiles_ms, BenchError, BenchResult, HistogramReport, OpenLoopReport,
    RunConfig, Workload,
};

/// What one task saw.
#[derive(Debug)]
struct TaskStats {
    /// Latency of every measured call, in microseconds: from when it was due (open loop) or
    /// started (closed loop).
    latency: Histogram<u64>,
    /// Open loop: latency of every measured call from when it started, in microseconds.
    service: Option<Histogram<u64>>,
    /// Successful measured calls.
    ok: u64,
    /// Failed measured calls per AWS error code.
    errors: BTreeMap<String, u64>,
    /// Whether this task stopped on the call cap.
    hit_max_ops: bool,
    /// Connections reopened during measured calls.
    reconnections: u64,
    /// Open loop: measured calls started more than [`schedule::LATE_AFTER`] after they were due.
    late: u64,
    /// Open loop: calls started, warmup included (what the schedule's backlog is counted from).
    started: u64,
}

impl TaskStats {
    fn new(open_loop: bool) -> TaskStats {
        TaskStats {
            latency: new_histogram(),
            service: open_loop.then(new_histogram),
            ok: 0,
            errors: BTreeMap::new(),
            hit_max_ops: false,
            reconnections: 0,
            late: 0,
            started: 0,
        }
    }

    /// Records one measured call that took `latency` (and `service` from its actual start).
    fn record(&mut self, outcome: Result<(), String>, latency: Duration, service: Duration) {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(us(latency));
        if let Some(h) = &mut self.service {
            h.saturating_record(us(service));
        }
        match outcome {
            Ok(()) => self.ok += 1,
            Err(code) => *self.errors.entry(code).or_default() += 1,
        }
    }

    /// Adds another task's figures to these.
    fn merge(&mut self, other: TaskStats) {
        add_histogram(&mut self.latency, &other.latency);
        if let (Some(mine), Some(theirs)) = (&mut self.service, &other.service) {
            add_histogram(mine, theirs);
        }
        self.ok += other.ok;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.hit_max_ops |= other.hit_max_ops;
        self.reconnections += other.reconnections;
        self.late += other.late;
        self.started += other.started;
    }

    /// The result of a run whose merged figures these are; `backlog` is the open loop's.
    fn into_result(
        self,
        cfg: &RunConfig,
        nodes: usize,
        elapsed: Duration,
        backlog: u64,
    ) -> BenchResult {
        let (p50_ms, p99_ms, p999_ms, max_ms) = percentiles_ms(&self.latency);
        let secs = elapsed.as_secs_f64();
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let errors = self.errors.values().sum();
        let open_loop = match (cfg.rate, &self.service) {
            (Some(rate), Some(service)) => Some(OpenLoopReport {
                rate,
                late: self.late,
                backlog,
                service_histogram: HistogramReport::of(service),
            }),
            _ => None,
        };
        BenchResult {
            workload: cfg.workload,
            concurrency: cfg.concurrency,
            nodes,
            ops: self.ok,
            errors,
            error_codes: self.errors,
            elapsed_s: secs,
            ops_per_s: per_s(self.ok),
            calls_per_s: per_s(self.ok + errors),
            p50_ms,
            p99_ms,
            p999_ms,
            max_ms,
            hit_max_ops: self.hit_max_ops,
            reconnections: self.reconnections,
            histogram: HistogramReport::of(&self.latency),
            open_loop,
            skipped: None,
        }
    }
}

/// Adds `from` to `into`. Both have the same bounds, so adding cannot fail; saturate rather
/// than lose a task's calls if it ever did.
fn add_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// One task's connection to the endpoint under test: makes one call of a workload.
pub trait BenchClient: Send + 'static {
    /// Makes one call of `workload`; `Err` carries the AWS error code.
    fn call(&mut self, workload: Workload) -> impl Future<Output = Result<(), String>> + Send;

    /// Connections this client has opened after its first, so far (0 for a client whose
    /// transport reconnects by itself, unseen).
    fn reconnections(&self) -> u64 {
        0
    }
}

/// When a run's calls count and when it ends.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// The run's start: the open loop's schedule counts from here.
    start: Instant,
    /// Calls that start (closed loop) or are due (open loop) before this are not measured.
    measure_from: Instant,
    /// No call starts at or after this.
    end: Instant,
}

/// The closed loop of one task: call, record, repeat until `end` or until the run's call count
/// reaches `max_ops`.
async fn closed_loop<C: BenchClient>(
    mut client: C,
    workload: Workload,
    window: Window,
    issued: Arc<AtomicU64>,
    max_ops: u64,
) -> TaskStats {
    let mut stats = TaskStats::new(false);
    loop {
        if Instant::now() >= window.end {
            break;
        }
        if issued.fetch_add(1, Ordering::Relaxed) >= max_ops {
            stats.hit_max_ops = true;
            break;
        }
        let reconnected_before = client.reconnections();
        let started = Instant::now();
        let outcome = client.call(workload).await;
        if started < window.measure_from {
            continue;
        }
        let took = started.elapsed();
        stats.reconnections += client.reconnections() - reconnected_before;
        stats.record(outcome, took, took);
    }
    stats
}

/// The open loop of one task: take the schedule's next call, wait until it is due (not at all
/// when it is already late), make it, record its latency from when it was due; stop at the
/// first call due at or after `end`, when `end` has passed, or at the `max_ops`th call.
async fn open_loop<C: BenchClient>(
    mut client: C,
    workload: Workload,
    window: Window,
    schedule: Arc<Schedule>,
    max_ops: u64,
) -> TaskStats {
    let mut stats = TaskStats::new(true);
    loop {
        let k = schedule.take();
        if k >= max_ops {
            stats.hit_max_ops = true;
            break;
        }
        let due = window.start + schedule.due_at(k);
        if due >= window.end {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let started = Instant::now();
        if started >= window.end {
            // Due before the end but never started: part of the backlog.
            break;
        }
        stats.started += 1;
        let reconnected_before = client.reconnections();
        let outcome = client.call(workload).await;
        if due < window.measure_from {
            continue;
        }
        let done = Instant::now();
        if started.duration_since(due) > schedule::LATE_AFTER {
            stats.late += 1;
        }
        stats.reconnections += client.reconnections() - reconnected_before;
        stats.record(
            outcome,
            done.duration_since(due),
            done.duration_since(started),
        );
    }
    stats
}

/// Runs one (workload, concurrency) with one client per task and returns its figures; the
/// run lasts `warmup + duration` at most and issues at most `max_ops` calls, closed loop, or
/// open loop at `cfg.rate`.
pub async fn run_clients<C: BenchClient>(
    clients: Vec<C>,
    cfg: &RunConfig,
    nodes: usize,
) -> Result<BenchResult, BenchError> {
    let schedule = cfg
        .rate
        .map(Schedule::new)
        .transpose()
        .map_err(BenchError::Invalid)?
        .map(Arc::new);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let window = Window {
        start,
        measure_from: start + cfg.warmup,
        end: start + cfg.warmup + cfg.duration,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        match &schedule {
            None => tasks.spawn(closed_loop(
                client,
                cfg.workload,
                window,
                issued.clone(),
                cfg.max_ops,
            )),
            Some(s) => tasks.spawn(open_loop(
                client,
                cfg.workload,
                window,
                s.clone(),
                cfg.max_ops,
            )),
        };
    }
    let mut total = TaskStats::new(schedule.is_some());
    while let Some(joined) = tasks.join_next().await {
        let stats =
            joined.map_err(|e| BenchError::Invalid(format!("a benchmark task failed: {e}")))?;
        total.merge(stats);
    }
    let elapsed = Instant::now().saturating_duration_since(window.measure_from);
    let backlog = match &schedule {
        Some(s) => {
            let due = s.due_within(window.end - window.start).min(cfg.max_ops);
            due.saturating_sub(total.started)
        }
        None => 0,
    };
    Ok(total.into_result(cfg, nodes, elapsed, backlog))
}

/// Refuses a run with no endpoint or no task.
pub fn check_run(endpoints: usize, cfg: &RunConfig) -> Result<(), BenchError> {
    if endpoints == 0 {
        return Err(BenchError::Invalid("no endpoints to benchmark".into()));
    }
    if cfg.concurrency == 0 {
        return Err(BenchError::Invalid("concurrency must be at least 1".into()));
    }
    Ok(())
}

/// The result of a run that could not be made, and why (e.g. Sign without a signing key).
pub fn skipped(cfg: &RunConfig, nodes: usize, why: String) -> BenchResult {
    let mut r = TaskStats::new(cfg.rate.is_some()).into_result(cfg, nodes, Duration::ZERO, 0);
    r.skipped = Some(why);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_histograms_report_percentiles_of_all_tasks_in_ms() {
        let mut a = TaskStats::new(false);
        let mut b = TaskStats::new(false);
        // Task a: 900 calls of 1 ms; task b: 98 calls of 10 ms and two of 250 ms.
        a.latency.saturating_record_n(1_000, 900);
        a.ok = 899;
        b.latency.saturating_record_n(10_000, 98);
        b.latency.saturating_record_n(250_000, 2);
        b.ok = 98;
        b.errors.insert("ThrottlingException".into(), 2);
        a.errors.insert("ThrottlingException".into(), 1);
        a.merge(b);
        let cfg = RunConfig {
            workload: Workload::Encrypt,
            concurrency: 2,
            duration: Duration::from_secs(2),
            warmup: Duration::ZERO,
            max_ops: 10,
            rate: None,
        };
        a.reconnections = 4;
        let r = a.into_result(&cfg, 3, Duration::from_secs(2), 0);
        assert_eq!(r.ops, 997);
        assert_eq!(r.errors, 3);
        assert_eq!(r.error_codes.get("ThrottlingException"), Some(&3));
        assert!((r.ops_per_s - 498.5).abs() < 1e-9);
        assert!((r.calls_per_s - 500.0).abs() < 1e-9);
        assert_eq!(r.reconnections, 4);
        assert_eq!(r.histogram.count, 1000);
        assert!(r.open_loop.is_none());
        let close = |x: f64, want: f64| (x - want).abs() <= want * 0.002;
        assert!(close(r.p50_ms, 1.0), "p50 {}", r.p50_ms);
        assert!(close(r.p99_ms, 10.0), "p99 {}", r.p99_ms);
        assert!(close(r.p999_ms, 250.0), "p999 {}", r.p999_ms);
        assert!(close(r.max_ms, 250.0), "max {}", r.max_ms);
        assert_eq!(percentiles_ms(&new_histogram()), (0.0, 0.0, 0.0, 0.0));
        // Latencies past the histogram's bound saturate instead of being lost.
        let mut h = new_histogram();
        h.saturating_record(u64::MAX);
        assert_eq!(h.len(), 1);
    }

    /// A client that answers after `delay`, opens a new connection for every call, fails every
    /// fourth, and tracks how many calls of its run are in flight at once.
    struct FakeClient {
        delay: Duration,
        calls: u64,
        in_flight: Arc<AtomicU64>,
        most_in_flight: Arc<AtomicU64>,
    }

    impl BenchClient for FakeClient {
        async fn call(&mut self, _: Workload) -> Result<(), String> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.calls += 1;
            match self.calls % 4 {
                0 => Err("ThrottlingException".into()),
                _ => Ok(()),
            }
        }

        fn reconnections(&self) -> u64 {
            self.calls
        }
    }

    /// Runs `cfg` against `cfg.concurrency` fake clients answering after `delay`; also returns
    /// the most calls that were in flight at once.
    async fn fake_run(cfg: &RunConfig, delay: Duration) -> (BenchResult, u64) {
        let in_flight = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let clients = (0..cfg.concurrency)
            .map(|_| FakeClient {
                delay,
                calls: 0,
                in_flight: in_flight.clone(),
                most_in_flight: most.clone(),
            })
            .collect();
        let r = run_clients(clients, cfg, 1).await.expect("runs");
        (r, most.load(Ordering::SeqCst))
    }

    fn fake_cfg(
        concurrency: usize,
        duration_ms: u64,
        max_ops: u64,
        rate: Option<u64>,
    ) -> RunConfig {
        RunConfig {
            workload: Workload::Encrypt,
            concurrency,
            duration: Duration::from_millis(duration_ms),
            warmup: Duration::ZERO,
            max_ops,
            rate,
        }
    }

    /// Latency from when calls were due is never below their service time, percentile by
    /// percentile, and both histograms hold every measured call.
    fn assert_due_latency_covers_service(r: &BenchResult) {
        let open = r.open_loop.as_ref().expect("an open-loop result");
        let (due, service) = (
            &r.histogram.percentiles_us,
            &open.service_histogram.percentiles_us,
        );
        assert!(due.p50 >= service.p50, "{due:?} {service:?}");
        assert!(due.p99 >= service.p99, "{due:?} {service:?}");
        assert!(due.max >= service.max, "{due:?} {service:?}");
        assert_eq!(r.histogram.count, r.ops + r.errors);
        assert_eq!(open.service_histogram.count, r.ops + r.errors);
    }

    #[tokio::test]
    async fn open_loop_makes_or_reports_every_call_due_and_counts_reconnections() {
        // 2,000 calls per second for 100 ms: 200 calls due, 4 tasks, instant answers.
        let (r, most) = fake_run(&fake_cfg(4, 100, 1_000_000, Some(2_000)), Duration::ZERO).await;
        let open = r.open_loop.as_ref().expect("open loop");
        let calls = r.ops + r.errors;
        assert_eq!(calls + open.backlog, 200, "{r:?}");
        assert!(calls > 0, "{r:?}");
        assert_eq!(open.rate, 2_000);
        assert_eq!(r.reconnections, calls);
        assert!(most <= 4, "{most} calls in flight");
        assert!(!r.hit_max_ops);
        assert_due_latency_covers_service(&r);
    }

    #[tokio::test]
    async fn open_loop_that_cannot_keep_up_reports_late_calls_and_a_backlog() {
        // 1,000 calls per second for 100 ms, but one task whose calls take 20 ms: at most 5
        // calls can start, and every one after the first starts late.
        let (r, most) = fake_run(
            &fake_cfg(1, 100, 1_000_000, Some(1_000)),
            Duration::from_millis(20),
        )
        .await;
        let open = r.open_loop.as_ref().expect("open loop");
        let calls = r.ops + r.errors;
        assert!((1..=5).contains(&calls), "{r:?}");
        assert_eq!(open.backlog, 100 - calls, "{r:?}");
        assert!(open.late >= calls - 1, "{r:?}");
        assert_eq!(most, 1);
        // The last call was due at (calls - 1) ms and answered no earlier than 20 × calls ms.
        assert!(r.histogram.percentiles_us.max >= 19_000 * calls, "{r:?}");
        assert_due_latency_covers_service(&r);
    }

    #[tokio::test]
    async fn both_loops_stop_at_max_ops() {
        let (open, _) = fake_run(&fake_cfg(3, 10_000, 30, Some(100_000)), Duration::ZERO).await;
        assert_eq!(open.ops + open.errors, 30, "{open:?}");
        assert_eq!(open.errors, open.error_codes["ThrottlingException"]);
        assert!(open.hit_max_ops);
        assert_eq!(open.open_loop.as_ref().map(|o| o.backlog), Some(0));
        let (closed, most) = fake_run(&fake_cfg(2, 10_000, 50, None), Duration::ZERO).await;
        assert_eq!(closed.ops + closed.errors, 50, "{closed:?}");
        assert!(closed.hit_max_ops);
        assert_eq!(closed.reconnections, 50);
        assert_eq!(closed.histogram.count, 50);
        assert!(closed.open_loop.is_none());
        assert!(most <= 2);
    }
}
