//! The Prometheus metrics of one node, or of the gateway: one [`NodeMetrics`] (a registry of
//! its own, whose every series carries the labels `region` and `node`), served by the AWS
//! JSON endpoint at `GET /metrics` in the Prometheus text format 0.0.4. Every metric is listed
//! in docs/OBSERVABILITY.md.
//!
//! Where the numbers come from:
//! - Raft: [`raft_watch`] follows openraft's metrics channel; the proposer counts failed
//!   proposals; the state machine reports how long applies and snapshots take through
//!   `kmsim_store::StoreObserver` ([`RaftMetrics`] implements it).
//! - API: [`crate::aws::AwsFront::handle`] times every request ([`ApiMetrics::begin`]).
//! - Synchronizer: [`crate::sync::link::SyncLink::send`] counts deliveries.
//! - At scrape time, from the node's state ([`Sampler`], implemented in [`sampler`]): keys by
//!   state, the material cache, active faults, pending synchronization, the engine's figures;
//!   and the process's own figures ([`process`]).
//!
//! Registries are per node, never global: tests run several nodes in one process.

pub mod process;
pub mod raft_watch;
pub mod sampler;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use kmsim_store::{EngineStats, SnapshotKind, StoreObserver};

/// The `Content-Type` of `GET /metrics`: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `region` and `node` label values of the gateway's series (it belongs to no Region).
pub const GATEWAY_LABEL: &str = "gateway";

/// Buckets of `kmsim_api_request_duration_seconds`: 0.5 ms to 16 s, doubling.
fn api_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Buckets of `kmsim_raft_apply_duration_seconds`: 0.1 ms to 3.3 s, doubling (etcd's apply
/// histogram starts at 0.1 ms too).
fn apply_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Buckets of `kmsim_raft_snapshot_duration_seconds`: 1 ms to 33 s, doubling.
fn snapshot_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Labels of `kmsim_api_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The operation (`Encrypt`), `UnknownOperation` for anything else.
    pub operation: &'static str,
    /// `ok`, or the AWS error code answered.
    pub code: &'static str,
}

/// Labels of `kmsim_api_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// As in [`RequestLabels::operation`].
    pub operation: &'static str,
}

/// Buckets of `kmsim_sync_lag_seconds`: 1 ms to 46 s, four per doubling (each bound 2^¼ ≈
/// 1.19 times the last), so that a lag can be read within a few percent of the link delays
/// it is compared with (an experiment's report, docs/EXPERIMENTS.md).
fn sync_lag_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2f64.powf(0.25), 63))
}

/// Labels of `kmsim_sync_lag_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    /// The Region the change was committed in (the key's primary).
    pub source: String,
    /// The Region that applied it (this node's).
    pub destination: String,
}

/// `kmsim_sync_lag_seconds`, by Region pair.
pub type SyncLag = Family<LagLabels, Histogram, fn() -> Histogram>;

/// Labels of `kmsim_raft_snapshot_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SnapshotLabels {
    /// `build` or `install`.
    pub kind: &'static str,
}

/// Labels of `kmsim_sync_deliveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The Region delivered to.
    pub destination: String,
    /// `ok` (an authentic answer came back, whatever it says) or `failed` (no node of the
    /// destination gave one: unreachable, partitioned, refused, timed out).
    pub result: &'static str,
}

/// Labels of `kmsim_gateway_connections_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandoffLabels {
    /// `handed`, `unrouted` or `not_taken` (the gateway's offer of a connection to the nodes).
    pub result: &'static str,
}

/// The Raft figures of a node, fed by [`raft_watch`], the proposer and the state machine.
#[derive(Clone, Debug)]
pub struct RaftMetrics {
    has_leader: Gauge,
    is_leader: Gauge,
    term: Gauge,
    leader_changes: Counter,
    last_log_index: Gauge,
    last_applied_index: Gauge,
    /// Proposals of this node that were not committed (no leader in time, refused, outcome
    /// unknown): counted by the proposer.
    pub proposals_failed: Counter,
    apply_duration: Histogram,
    snapshot_duration: Family<SnapshotLabels, Histogram, fn() -> Histogram>,
}

impl Default for RaftMetrics {
    fn default() -> Self {
        RaftMetrics {
            has_leader: Gauge::default(),
            is_leader: Gauge::default(),
            term: Gauge::default(),
            leader_changes: Counter::default(),
            last_log_index: Gauge::default(),
            last_applied_index: Gauge::default(),
            proposals_failed: Counter::default(),
            apply_duration: apply_buckets(),
            snapshot_duration: Family::new_with_constructor(snapshot_buckets),
        }
    }
}

/// What [`RaftMetrics::observe`] reads of openraft's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftView {
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// This node is the leader.
    pub is_leader: bool,
    /// Its current term.
    pub term: u64,
    /// Its last log index.
    pub last_log_index: Option<u64>,
    /// Its last applied index.
    pub last_applied_index: Option<u64>,
}

impl RaftMetrics {
    /// Sets the gauges from `now`; counts a leader change when a leader is known and it is
    /// not the one `before` (etcd's rule: the first leader seen counts, and so does a leader
    /// seen again after a time without one).
    pub fn observe(&self, before: &RaftView, now: &RaftView) {
        self.has_leader.set(i64::from(now.leader.is_some()));
        self.is_leader.set(i64::from(now.is_leader));
        self.term.set(saturating_i64(now.term));
        self.last_log_index
            .set(saturating_i64(now.last_log_index.unwrap_or(0)));
        self.last_applied_index
            .set(saturating_i64(now.last_applied_index.unwrap_or(0)));
        if now.leader.is_some() && now.leader != before.leader {
            self.leader_changes.inc();
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "kmsim_raft_has_leader",
            "1 when this node knows a leader of its Region, else 0",
            self.has_leader.clone(),
        );
        r.register(
            "kmsim_raft_is_leader",
            "1 when this node is its Region's leader, else 0",
            self.is_leader.clone(),
        );
        r.register(
            "kmsim_raft_term",
            "The Raft term this node is in",
            self.term.clone(),
        );
        r.register(
            "kmsim_raft_leader_changes_seen",
            "Times this node saw a new leader (the first one included)",
            self.leader_changes.clone(),
        );
        r.register(
            "kmsim_raft_last_log_index",
            "The index of the last entry in this node's Raft log (0: none)",
            self.last_log_index.clone(),
        );
        r.register(
            "kmsim_raft_last_applied_index",
            "The index of the last entry this node applied (0: none)",
            self.last_applied_index.clone(),
        );
        r.register(
            "kmsim_raft_proposals_failed",
            "Proposals of this node that were not committed (no leader in time, refused, or outcome unknown)",
            self.proposals_failed.clone(),
        );
        r.register(
            "kmsim_raft_apply_duration_seconds",
            "Time of one apply call of the state machine: a batch of committed entries and its engine write",
            self.apply_duration.clone(),
        );
        r.register(
            "kmsim_raft_snapshot_duration_seconds",
            "Time to build (kind=build) or install (kind=install) one snapshot",
            self.snapshot_duration.clone(),
        );
    }
}

impl StoreObserver for RaftMetrics {
    fn applied(&self, _entries: usize, took: Duration) {
        self.apply_duration.observe(took.as_secs_f64());
    }

    fn snapshot(&self, kind: SnapshotKind, took: Duration) {
        let kind = match kind {
            SnapshotKind::Build => "build",
            SnapshotKind::Install => "install",
        };
        self.snapshot_duration
            .get_or_create(&SnapshotLabels { kind })
            .observe(took.as_secs_f64());
    }
}

/// The API figures of an AWS JSON endpoint (a node's or the gateway's).
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    inflight: Gauge,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(api_buckets),
            inflight: Gauge::default(),
        }
    }
}

/// One request being answered: counted in `kmsim_api_inflight_requests` until dropped.
#[must_use = "a request is counted when it ends"]
pub struct ApiRequest<'a> {
    metrics: &'a ApiMetrics,
    started: Instant,
    /// False when the process counts no requests (`trace::request_telemetry`).
    counting: bool,
}

impl ApiRequest<'_> {
    /// Counts the request as answered with `code` (`ok` or the AWS error code).
    pub fn end(self, operation: &'static str, code: &'static str) {
        if !self.counting {
            return;
        }
        let took = self.started.elapsed().as_secs_f64();
        self.metrics
            .requests
            .get_or_create(&RequestLabels { operation, code })
            .inc();
        self.metrics
            .duration
            .get_or_create(&OperationLabels { operation })
            .observe(took);
    }
}

impl Drop for ApiRequest<'_> {
    fn drop(&mut self) {
        if self.counting {
            self.metrics.inflight.dec();
        }
    }
}

impl ApiMetrics {
    /// A request starts: counted in flight until the returned guard is dropped, and in the
    /// totals when it [ends](ApiRequest::end) (a request whose client went away meanwhile is
    /// only in flight while it was).
    pub fn begin(&self) -> ApiRequest<'_> {
        let counting = crate::trace::request_telemetry();
        if counting {
            self.inflight.inc();
        }
        ApiRequest {
            metrics: self,
            started: Instant::now(),
            counting,
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "kmsim_api_requests",
            "AWS JSON requests answered, by operation and by code (ok, or the AWS error code)",
            self.requests.clone(),
        );
        r.register(
            "kmsim_api_request_duration_seconds",
            "Time from a request's headers to its answer, by operation",
            self.duration.clone(),
        );
        r.register(
            "kmsim_api_inflight_requests",
            "AWS JSON requests being answered",
            self.inflight.clone(),
        );
    }
}

/// What a node's state says at scrape time (see [`Sampler`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Keys of the Region by state (every state, zeros included).
    pub keys: Vec<(&'static str, u64)>,
    /// Keys whose unwrapped material this node's cache holds.
    pub material_cache_entries: u64,
    /// Authorization decisions so far: answered by the decision cache, evaluated and kept,
    /// evaluated and not kept (they read the clock); and how many it holds.
    pub authz_decisions: AuthzDecisions,
    /// This node's outgoing links with an injected fault.
    pub faults_active: u64,
    /// Synchronizer work due for each other Region (every Region it synchronizes with).
    pub sync_pending: Vec<(String, u64)>,
    /// The storage engine's figures.
    pub engine: EngineStats,
}

/// How a node's authorization decision cache has answered (`kmsim_policy::CacheStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthzDecisions {
    /// Answered from the cache.
    pub hits: u64,
    /// Evaluated, then kept.
    pub misses: u64,
    /// Evaluated and not kept: the policies read the clock.
    pub uncacheable: u64,
    /// Decisions held now.
    pub entries: u64,
}

/// Reads a node's [`Sample`] when `/metrics` is scraped.
pub trait Sampler: Send + Sync + 'static {
    /// The figures as they are now.
    fn sample(&self) -> Sample;
}

/// The registry's collector of [`Sample`]s: nothing until a sampler is set.
struct SampleCollector(Arc<OnceLock<Arc<dyn Sampler>>>);

impl fmt::Debug for SampleCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SampleCollector").finish_non_exhaustive()
    }
}

/// Encodes one gauge, with one series per label set in `series`. `help` ends without a full
/// stop, as for registered metrics (the registry adds it).
fn encode_gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), fmt::Error> {
    let help = format!("{help}.");
    let mut metric = encoder.encode_descriptor(name, &help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(saturating_i64(value)).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one gauge without labels of its own.
pub(crate) fn encode_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let no_labels: [(&str, &str); 0] = [];
    encode_gauges(encoder, name, help, [(no_labels, value)])
}

impl Collector for SampleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(sampler) = self.0.get() else {
            return Ok(());
        };
        let s = sampler.sample();
        let e = &mut encoder;
        encode_gauges(
            e,
            "kmsim_keys",
            "Keys of this node's Region by key state, as this node has applied them",
            s.keys.iter().map(|(state, n)| ([("state", *state)], *n)),
        )?;
        encode_gauge(
            e,
            "kmsim_material_cache_entries",
            "Keys whose unwrapped material this node's cache holds",
            s.material_cache_entries,
        )?;
        let a = s.authz_decisions;
        let mut decisions = e.encode_descriptor(
            "kmsim_authz_decisions",
            "Authorization decisions of this node by how its decision cache answered: hit, miss (evaluated and kept), uncacheable (evaluated; the policies read the clock).",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [
            ("hit", a.hits),
            ("miss", a.misses),
            ("uncacheable", a.uncacheable),
        ] {
            ConstCounter::new(n).encode(decisions.encode_family(&[("result", result)])?)?;
        }
        encode_gauge(
            e,
            "kmsim_authz_decision_cache_entries",
            "Authorization decisions this node's cache holds",
            a.entries,
        )?;
        encode_gauge(
            e,
            "kmsim_faults_active",
            "Outgoing links of this node with an injected fault (delay, jitter, loss or partition)",
            s.faults_active,
        )?;
        encode_gauges(
            e,
            "kmsim_sync_pending",
            "Synchronizer deliveries due to each Region (replicas behind, hand-overs, notices), as this node's state says",
            s.sync_pending
                .iter()
                .map(|(region, n)| ([("destination", region.as_str())], *n)),
        )?;
        if let Some(bytes) = s.engine.live_data_bytes {
            encode_gauge(
                e,
                "kmsim_rocksdb_live_data_bytes",
                "RocksDB's estimate of the live data of this node's store",
                bytes,
            )?;
        }
        if let Some(bytes) = s.engine.pending_compaction_bytes {
            encode_gauge(
                e,
                "kmsim_rocksdb_pending_compaction_bytes",
                "RocksDB's estimate of the bytes compaction still has to rewrite",
                bytes,
            )?;
        }
        Ok(())
    }
}

/// The metrics of one node or of the gateway.
pub struct NodeMetrics {
    registry: Registry,
    /// Raft figures (registered on nodes only).
    pub raft: RaftMetrics,
    /// AWS JSON endpoint figures.
    pub api: ApiMetrics,
    /// Synchronizer deliveries (registered on nodes only).
    pub sync_deliveries: Family<DeliveryLabels, Counter>,
    /// From a change's commit in its primary's Region to its apply in this node's Region
    /// (registered on nodes only; observed by the node that received the synchronization).
    pub sync_lag: SyncLag,
    /// What became of the client connections offered to nodes (registered on the gateway
    /// only, and counted with `[endpoint] handoff` only).
    handoffs: Family<HandoffLabels, Counter>,
    /// The node's scrape-time figures, once the node is wired.
    sampler: Arc<OnceLock<Arc<dyn Sampler>>>,
}

impl fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

impl NodeMetrics {
    /// The metrics of node `node_id` of `region`.
    pub fn node(region: &str, node_id: u64) -> NodeMetrics {
        let mut m = NodeMetrics::empty(region, &node_id.to_string());
        m.raft.register(&mut m.registry);
        m.registry.register(
            "kmsim_sync_deliveries",
            "Synchronizer messages sent to another Region, by destination and result",
            m.sync_deliveries.clone(),
        );
        m.registry.register(
            "kmsim_sync_lag_seconds",
            "Time from a change's commit in the primary key's Region to its apply in this Region, measured by the receiving node from the commit time the synchronization carries",
            m.sync_lag.clone(),
        );
        m.registry
            .register_collector(Box::new(SampleCollector(m.sampler.clone())));
        m
    }

    /// The metrics of the gateway: the API and the process, labelled
    /// `region="gateway",node="gateway"`.
    pub fn gateway() -> NodeMetrics {
        let mut m = NodeMetrics::empty(GATEWAY_LABEL, GATEWAY_LABEL);
        m.registry.register(
            "kmsim_gateway_connections",
            "Client connections the gateway offered to nodes ([endpoint] handoff), by what became of them: handed (a node serves it), unrouted (served here: its first request named no Region of the topology or came in pieces), not_taken (served here: no node of its Region took it)",
            m.handoffs.clone(),
        );
        m
    }

    /// Counts a connection offered to the nodes, by what became of it (`handed`, `unrouted`,
    /// `not_taken`).
    pub fn count_handoff(&self, result: &'static str) {
        self.handoffs.get_or_create(&HandoffLabels { result }).inc();
    }

    /// The API's and the process's metrics, every series labelled `region` and `node`.
    fn empty(region: &str, node: &str) -> NodeMetrics {
        let labels = [
            (Cow::Borrowed("region"), Cow::Owned(region.to_string())),
            (Cow::Borrowed("node"), Cow::Owned(node.to_string())),
        ];
        let mut m = NodeMetrics {
            registry: Registry::with_labels(labels.into_iter()),
            raft: RaftMetrics::default(),
            api: ApiMetrics::default(),
            sync_deliveries: Family::default(),
            sync_lag: Family::new_with_constructor(sync_lag_buckets),
            handoffs: Family::default(),
            sampler: Arc::new(OnceLock::new()),
        };
        m.api.register(&mut m.registry);
        m.registry
            .register_collector(Box::new(process::ProcessCollector));
        m
    }

    /// Where the scrape-time figures come from (set once, when the node is wired; a second
    /// call is ignored).
    pub fn set_sampler(&self, sampler: Arc<dyn Sampler>) {
        let _ = self.sampler.set(sampler);
    }

    /// Every metric, in the Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("invariant: writing to a String cannot fail");
        out
    }
}

/// `v` as a gauge value (gauges are `i64`; no figure here comes near its end).
fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
