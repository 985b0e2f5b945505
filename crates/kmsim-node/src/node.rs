//! One node: wires the store, Raft, the KMS, Raft and admin services, the AWS JSON endpoint and
//! the background tasks, then serves until told to stop.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::SnapshotPolicy;
use tokio::net::TcpListener;
use tokio::sync::watch;

use kmsim_crypto::{DomainKey, TransportKeyPair};
use kmsim_proto::admin::v1::admin_service_server::AdminServiceServer;
use kmsim_proto::kms::v1::kms_service_server::KmsServiceServer;
use kmsim_proto::raft::v1::raft_service_server::RaftServiceServer;
use kmsim_proto::relay::v1::relay_service_server::RelayServiceServer;
use kmsim_store::{open_stores, KvEngine, Raft};

use crate::admin_service::AdminServiceImpl;
use crate::app::KmsApp;
use crate::aws::relay::RelayServiceImpl;
use crate::aws::AwsFront;
use crate::clock::SimClock;
use crate::config::Topology;
use crate::entropy::Entropy;
use crate::error::NodeError;
use crate::faults::FaultTable;
use crate::key_files::{load_domain_key, load_transport_key};
use crate::kms::KmsApi;
use crate::kms_service::KmsServiceImpl;
use crate::material::MaterialCache;
use crate::metrics::sampler::NodeSampler;
use crate::metrics::NodeMetrics;
use crate::network::{GrpcNetworkFactory, MAX_RAFT_MESSAGE_BYTES};
use crate::proposer::Proposer;
use crate::raft_service::RaftServiceImpl;
use crate::read_index::ReadIndex;
use crate::snapshot_policy::SnapshotRule;
use crate::sync::link::SyncLink;
use crate::sync::service::SyncServiceImpl;
use crate::sync::session::SessionKeys;
use crate::sync::task::SyncSettings;
use crate::sync::SyncIdentity;
use crate::tls::admit::{Admission, AdmitLayer};
use crate::tls::{Dialer, Local};
use kmsim_proto::sync::v1::sync_service_server::SyncServiceServer;

/// Streams one client connection may have open at once on the gRPC server (every service).
/// Callers beyond it wait for a stream (h2 flow control), they are not refused.
pub const GRPC_MAX_CONCURRENT_STREAMS: u32 = 256;

/// The longest any gRPC call may run on the server; a caller's shorter `grpc-timeout` wins. Longer
/// than every wait inside a call (a write waits 10 s for its apply, a forward 15 s).
pub const GRPC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
// A CPU-heavy call is answered (done or throttled) well before the server would cut it off.
const _: () = assert!(
    crate::heavy::QUEUE_WAIT.as_secs() + crate::heavy::WORK_WAIT.as_secs() + 5
        <= GRPC_REQUEST_TIMEOUT.as_secs()
);

/// How often the server pings an idle HTTP/2 connection, and how long it waits for the answer
/// before closing it: a peer that went away does not hold a connection forever.
const GRPC_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest header block the server accepts (HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`).
const GRPC_MAX_HEADER_LIST_BYTES: u32 = 16 << 10;

/// The largest KMS (and admin) request: KMS inputs are small (a 4 KiB plaintext, a 6 KiB
/// ciphertext, a 32 KiB policy); the AWS JSON front takes at most 1 MiB, and so does gRPC.
pub const KMS_MAX_REQUEST_BYTES: usize = 1 << 20;

/// The largest KMS response (a page of 1,000 keys is ~150 KiB).
const KMS_MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The largest admin response (a page of audit events).
const ADMIN_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// The largest synchronizer envelope either way (tonic's default, stated).
const SYNC_MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Runs one node of `region` until `shutdown` resolves, reading the Region's domain key from
/// its environment variable or key file.
pub async fn run_node<E: KvEngine>(
    topology: Topology,
    region: &str,
    node_id: u64,
    engine: Arc<E>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let region_cfg = topology
        .region(region)
        .ok_or_else(|| NodeError::Config(format!("region {region} is not in the topology")))?;
    let domain = load_domain_key(region_cfg)?;
    run_node_with_key(topology, region, node_id, engine, domain, shutdown).await
}

/// Runs one node of `region` with the given domain key until `shutdown` resolves.
pub async fn run_node_with_key<E: KvEngine>(
    topology: Topology,
    region: &str,
    node_id: u64,
    engine: Arc<E>,
    domain: DomainKey,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let region_cfg = topology
        .region(region)
        .ok_or_else(|| NodeError::Config(format!("region {region} is not in the topology")))?
        .clone();
    let me = region_cfg
        .node(node_id)
        .ok_or_else(|| NodeError::Config(format!("node {node_id} is not in region {region}")))?
        .clone();
    let scope = topology
        .scope(region)
        .map_err(|e| NodeError::Config(e.to_string()))?;

    // This node's metrics, served at `GET /metrics` of its AWS endpoint.
    let metrics = Arc::new(NodeMetrics::node(region, node_id));
    let clock = SimClock::new();
    let material_keys = std::num::NonZeroUsize::new(topology.caches.material_keys)
        .ok_or_else(|| NodeError::Config("caches: material_keys must be at least 1".into()))?;
    let materials = Arc::new(MaterialCache::new(domain, scope.clone(), material_keys));
    // The Region's request quotas, as this node enforces its share (the run-time rates
    // arrive with the applied state).
    let quotas = Arc::new(crate::quotas::Quotas::new(
        region,
        &topology.account,
        &topology.quotas,
        u32::try_from(region_cfg.nodes.len()).unwrap_or(u32::MAX),
    ));
    // IAM: the topology's `[iam]` until the state applies a run-time version; the STS key
    // opens run-time access keys.
    let sts_key = crate::aws::session_token::SessionKey::load(topology.sts.as_ref())
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let iam = Arc::new(crate::iam::Iam::with_home(
        topology.iam.as_ref(),
        topology
            .regions
            .first()
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        sts_key,
    ));
    let app = Arc::new(RwLock::new(KmsApp::new(
        scope.clone(),
        clock.clone(),
        &topology,
        materials.clone(),
        quotas.clone(),
        iam.clone(),
    )));
    let (log_store, state_machine) =
        open_stores(engine.clone(), app.clone()).map_err(|e| NodeError::Store(e.to_string()))?;
    let state_machine = state_machine.with_observer(Arc::new(metrics.raft.clone()));

    let t = &topology.raft;
    let config = openraft::Config {
        cluster_name: format!("kmsim-{region}"),
        heartbeat_interval: t.heartbeat_ms,
        election_timeout_min: t.election_timeout_min_ms,
        election_timeout_max: t.election_timeout_max_ms,
        install_snapshot_timeout: 5_000,
        // Snapshots are asked for by `snapshot_policy::run`, by the size of the state.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: t.logs_kept_after_snapshot,
        replication_lag_threshold: t.snapshot_after_logs * 2,
        max_payload_entries: crate::network::MAX_PAYLOAD_ENTRIES,
        snapshot_max_chunk_size: crate::network::SNAPSHOT_CHUNK_BYTES,
        ..Default::default()
    }
    .validate()
    .map_err(|e| NodeError::Config(e.to_string()))?;
    let faults = Arc::new(FaultTable::new(fault_seed(
        topology.fault_seed,
        region,
        node_id,
    )));
    // One dialer for every outgoing gRPC link (Raft, forwarded writes, the synchronizer,
    // joining the Region): this node's certificate, or plaintext without `[tls]`.
    let dialer = Dialer::for_node(topology.tls.as_ref(), region, node_id)
        .map_err(|e| NodeError::Config(format!("tls: {e}")))?;
    let network =
        GrpcNetworkFactory::new(node_id, region.to_string(), faults.clone(), dialer.clone());
    let snapshot_size = state_machine.snapshot_size();
    let raft = Raft::new(node_id, Arc::new(config), network, log_store, state_machine)
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    // An empty store (no membership yet) is a new member or one that lost its data; which of
    // the two, the peers tell (`rejoin::join`).
    let empty = !raft
        .is_initialized()
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    let election_guard = Arc::new(crate::rejoin::ElectionGuard::new(empty));
    let leader_contact = Arc::new(crate::leader_watch::LeaderContact::default());

    let proposer = Arc::new(Proposer::new(
        raft.clone(),
        region.to_string(),
        faults.clone(),
        dialer.clone(),
        metrics.raft.proposals_failed.clone(),
    ));
    // The synchronizer, when this Region has a transport key (single-Region topologies and
    // hand-written ones may go without).
    let sync_identity = match &region_cfg.transport_key_file {
        Some(_) => {
            let transport = load_transport_key(materials.domain(), &region_cfg)?;
            Some(Arc::new(sync_identity(
                &topology,
                region,
                transport,
                dialer.clone(),
            )?))
        }
        None => None,
    };
    let sync_link = sync_identity.clone().map(|id| {
        let t = &topology.sync;
        let settings = SyncSettings {
            retry_min: Duration::from_millis(t.retry_min_ms),
            retry_max: Duration::from_millis(t.retry_max_ms),
            anti_entropy: Duration::from_millis(t.anti_entropy_ms),
            session_key_period: Duration::from_millis(t.session_key_ms),
            ..SyncSettings::default()
        };
        Arc::new(SyncLink::new(
            id,
            faults.clone(),
            settings,
            metrics.sync_deliveries.clone(),
        ))
    });
    let api = Arc::new(KmsApi {
        scope: scope.clone(),
        app,
        proposer: proposer.clone(),
        reads: ReadIndex::new(proposer.clone()),
        materials,
        clock,
        entropy: Entropy,
        // Its own stream of the node's fault seed: injections do not shift the links' draws.
        injected: Arc::new(crate::inject::ApiFaults::new(
            fault_seed(topology.fault_seed, region, node_id) ^ 0x696e_6a65_6374,
        )),
        regions: topology
            .regions
            .iter()
            .map(|r| (r.name.clone(), topology.region_partition(r)))
            .collect(),
        unsynchronized: topology
            .regions
            .iter()
            .filter(|r| {
                r.transport_certificate.is_none()
                    || (r.name == region && r.transport_key_file.is_none())
            })
            .map(|r| r.name.clone())
            .collect(),
        sync: sync_link.clone(),
        calls: match topology.audit.record_calls {
            true => Some(Arc::new(
                crate::call_log::CallLog::open(
                    me.data_dir.join("audit-log"),
                    scope.clone(),
                    node_id,
                    topology.audit.retention_events,
                )
                .map_err(|e| NodeError::Store(format!("call log: {e}")))?,
            )),
            false => None,
        },
        iam,
        policies: Default::default(),
        secure_transport: crate::kms::SecureTransport {
            grpc: topology.tls.is_some(),
            aws_json: topology.aws_scheme() == "https",
        },
        quotas,
    });
    let wake = api.app.read().expect("invariant: lock not poisoned").wake();
    metrics.set_sampler(Arc::new(NodeSampler {
        api: api.clone(),
        faults: faults.clone(),
        engine,
    }));

    let listener = TcpListener::bind(me.listen)
        .await
        .map_err(|e| NodeError::Server(format!("cannot bind {}: {e}", me.listen)))?;
    tracing::info!(region, node_id, addr = %me.listen, "node listening");
    let aws_listener = match me.aws_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| NodeError::Server(format!("cannot bind {addr}: {e}")))?;
            tracing::info!(region, node_id, addr = %addr, "AWS JSON endpoint listening");
            Some(l)
        }
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::lifecycle::run(
        api.clone(),
        raft.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(crate::metrics::raft_watch::follow(
        raft.clone(),
        metrics.raft.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(crate::quotas::follow_voters(
        raft.clone(),
        api.quotas.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(crate::snapshot_policy::run(
        raft.clone(),
        snapshot_size,
        SnapshotRule::of(&topology.raft),
        stop_rx.clone(),
    ));
    // The AWS JSON front: behind the node's own AWS endpoint (when it has one) and the relay
    // service (requests relayed by the gateway and by nodes of other Regions).
    let front = Arc::new(AwsFront::new(
        &topology,
        Some(api.clone()),
        &format!("{region}/{node_id}"),
        faults.clone(),
        dialer.clone(),
        metrics.clone(),
    )?);
    // Client connections the gateway hands over (`[endpoint] handoff`), served like the AWS
    // endpoint's own. A node that cannot bind the socket (a data directory path too long for
    // one) still serves the gateway's relayed requests.
    let handed = match topology.endpoint.as_ref().is_some_and(|e| e.handoff) {
        true => match crate::aws::handoff::bind(&me.data_dir) {
            Ok((unix, path)) => {
                let (tx, rx) = tokio::sync::mpsc::channel(64);
                tasks.spawn(crate::aws::handoff::receive(
                    unix,
                    path,
                    tx,
                    stop_rx.clone(),
                ));
                Some(rx)
            }
            Err(e) => {
                tracing::warn!(region, node_id, error = %e, "cannot listen for handed connections; the gateway will relay to this node");
                None
            }
        },
        false => None,
    };
    if aws_listener.is_some() || handed.is_some() {
        // HTTPS with the node's certificate when the topology asks for it.
        let tls = match topology.tls.as_ref().filter(|t| t.aws_https) {
            Some(t) => Some(
                t.read_pair(&t.node_files(region, node_id))
                    .and_then(|c| crate::tls::https_acceptor(&c))
                    .map_err(|e| NodeError::Config(format!("tls: {e}")))?,
            ),
            None => None,
        };
        let options = crate::aws::ServeOptions {
            tls,
            hand_to: None,
            handed,
        };
        tasks.spawn(crate::aws::serve_with(
            aws_listener,
            front.clone(),
            stop_rx.clone(),
            options,
        ));
    }
    if let Some(link) = &sync_link {
        tasks.spawn(crate::sync::task::run(
            api.clone(),
            raft.clone(),
            link.clone(),
            wake,
            stop_rx.clone(),
        ));
    }
    tasks.spawn(crate::leader_watch::run(
        crate::leader_watch::LeaderWatch {
            raft: raft.clone(),
            contact: leader_contact.clone(),
            me: node_id,
            region: region_cfg.clone(),
            timing: topology.raft.clone(),
            dialer: dialer.clone(),
            faults: faults.clone(),
        },
        stop_rx.clone(),
    ));
    tasks.spawn(crate::rejoin::join(
        raft.clone(),
        election_guard.clone(),
        node_id,
        region_cfg.clone(),
        dialer.clone(),
        stop_rx.clone(),
    ));

    let sync_service = sync_identity.clone().map(|id| {
        // This node's session keys: memory only, rotated by their own task.
        let sessions = Arc::new(SessionKeys::new(
            node_id,
            Duration::from_millis(topology.sync.session_key_ms),
        ));
        tasks.spawn(sessions.clone().run(stop_rx.clone()));
        SyncServiceServer::new(SyncServiceImpl::new(
            api.clone(),
            id,
            sessions,
            metrics.sync_lag.clone(),
        ))
    });
    // With `[tls]`: mutual TLS (a client certificate from the CA, or no handshake) and
    // admission by the certificate's identity, before any handler runs.
    let (server_tls, admission) = match &topology.tls {
        Some(t) => {
            let config = crate::tls::server_config(t, region, node_id)
                .map_err(|e| NodeError::Config(format!("tls: {e}")))?;
            let local = Local {
                partition: scope.partition.to_string(),
                region: region.to_string(),
            };
            let root = format!("arn:{}:iam::{}:root", scope.partition, scope.account);
            (Some(config), Some(Admission::new(local, t, root)))
        }
        None => (None, None),
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(config) = server_tls {
        builder = builder
            .tls_config(config)
            .map_err(|e| NodeError::Config(format!("tls: {e}")))?;
    }
    let server = builder
        .tcp_nodelay(true)
        .max_concurrent_streams(Some(GRPC_MAX_CONCURRENT_STREAMS))
        .timeout(GRPC_REQUEST_TIMEOUT)
        .http2_keepalive_interval(Some(GRPC_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(GRPC_KEEPALIVE_TIMEOUT))
        .http2_max_header_list_size(GRPC_MAX_HEADER_LIST_BYTES)
        .layer(AdmitLayer::new(admission))
        .add_optional_service(sync_service.map(|s| {
            s.max_decoding_message_size(SYNC_MAX_MESSAGE_BYTES)
                .max_encoding_message_size(SYNC_MAX_MESSAGE_BYTES)
        }))
        .add_service(
            KmsServiceServer::new(KmsServiceImpl::new(api.clone()))
                .max_decoding_message_size(KMS_MAX_REQUEST_BYTES)
                .max_encoding_message_size(KMS_MAX_RESPONSE_BYTES),
        )
        .add_service(
            RelayServiceServer::new(RelayServiceImpl::new(front))
                .max_decoding_message_size(crate::aws::router::MAX_RELAY_REQUEST_BYTES)
                .max_encoding_message_size(crate::aws::router::MAX_RELAY_RESPONSE_BYTES),
        )
        .add_service(
            RaftServiceServer::new(RaftServiceImpl::new(
                raft.clone(),
                proposer,
                election_guard,
                leader_contact,
                region_cfg.nodes.iter().map(|n| n.id).collect(),
            ))
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES),
        )
        .add_service(
            AdminServiceServer::new(AdminServiceImpl::new(
                raft.clone(),
                api,
                node_id,
                me.advertise_addr(),
                topology.test_hooks,
                faults,
            ))
            .max_decoding_message_size(KMS_MAX_REQUEST_BYTES)
            .max_encoding_message_size(ADMIN_MAX_RESPONSE_BYTES),
        )
        .serve_with_incoming_shutdown(
            // `Server::tcp_nodelay` does not apply to an incoming stream we pass in: set it on
            // the accepted sockets, or Nagle's algorithm adds ~40 ms to every reply.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        );
    let served = server.await;

    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    served.map_err(|e| NodeError::Server(e.to_string()))
}

/// This Region's identity towards the others, from the topology.
pub fn sync_identity(
    topology: &Topology,
    region: &str,
    transport: TransportKeyPair,
    dialer: Dialer,
) -> Result<SyncIdentity, NodeError> {
    let cfg = topology
        .region(region)
        .ok_or_else(|| NodeError::Config(format!("region {region} is not in the topology")))?;
    let hex_field = |what: &str, v: &str| {
        hex::decode(v).map_err(|_| NodeError::Config(format!("{what} is not hex")))
    };
    let certificate = hex_field(
        "transport_certificate",
        cfg.transport_certificate.as_deref().ok_or_else(|| {
            NodeError::Config(format!("region {region} has no transport_certificate"))
        })?,
    )?;
    let mut anchors = BTreeMap::new();
    for a in &topology.trust_anchors {
        anchors.insert(
            a.partition.clone(),
            hex_field("trust anchor public_key", &a.public_key)?,
        );
    }
    let mut certificates = BTreeMap::new();
    let mut partitions = BTreeMap::new();
    let mut peers = BTreeMap::new();
    for r in &topology.regions {
        partitions.insert(r.name.clone(), topology.region_partition(r));
        if let Some(c) = &r.transport_certificate {
            certificates.insert(r.name.clone(), hex_field("transport_certificate", c)?);
        }
        peers.insert(
            r.name.clone(),
            r.nodes.iter().map(|n| (n.id, n.advertise_addr())).collect(),
        );
    }
    Ok(SyncIdentity {
        region: region.to_string(),
        partition: topology.region_partition(cfg),
        transport,
        certificate,
        anchors,
        partitions,
        certificates,
        peers,
        dialer,
        channels: std::sync::Mutex::new(std::collections::HashMap::new()),
        verified: std::sync::Mutex::new(std::collections::HashMap::new()),
    })
}

/// The seed of one node's fault layer: the topology's seed mixed with the Region and node id
/// (FNV-1a), so nodes draw different but repeatable sequences.
fn fault_seed(seed: u64, region: &str, node_id: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in region.bytes().chain(node_id.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
