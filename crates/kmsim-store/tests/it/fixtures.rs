//! A single-node Raft on `MemKvEngine`, and a network that reaches nobody.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;

use kmsim_store::open_stores;
use kmsim_store::testing::CounterApp;
use kmsim_store::MemKvEngine;
use kmsim_store::NodeId;
use kmsim_store::Raft;
use kmsim_store::TypeConfig;
use openraft::error::InstallSnapshotError;
use openraft::error::RPCError;
use openraft::error::RaftError;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::network::RaftNetwork;
use openraft::network::RaftNetworkFactory;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::InstallSnapshotRequest;
use openraft::raft::InstallSnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use openraft::BasicNode;
use openraft::Config;

/// How long a test waits for a condition before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A network for a one-member cluster: every peer is unreachable.
pub struct NoNetwork;

/// The (never used) connection of [`NoNetwork`].
pub struct NoConnection;

#[derive(Debug, thiserror::Error)]
#[error("single-node test cluster has no network")]
struct NoPeers;

impl RaftNetworkFactory<TypeConfig> for NoNetwork {
    type Network = NoConnection;

    async fn new_client(&mut self, _target: NodeId, _node: &BasicNode) -> Self::Network {
        NoConnection
    }
}

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl RaftNetwork<TypeConfig> for NoConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeers)))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeers)))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeers)))
    }
}

/// A running single-member Raft over `engine`, and the application it applies to.
pub async fn start_node(engine: &MemKvEngine, config: Config) -> (Raft, Arc<RwLock<CounterApp>>) {
    let app = Arc::new(RwLock::new(CounterApp::new()));
    let (log_store, state_machine) =
        open_stores(Arc::new(engine.clone()), Arc::clone(&app)).expect("open stores");
    let config = Arc::new(config.validate().expect("valid config"));
    let raft = Raft::new(1, config, NoNetwork, log_store, state_machine)
        .await
        .expect("start raft");
    (raft, app)
}

/// Initializes a fresh one-member cluster and waits until `raft` leads it.
pub async fn initialize(raft: &Raft) {
    let members = BTreeMap::from([(1, BasicNode::new("127.0.0.1:0"))]);
    raft.initialize(members).await.expect("initialize");
    raft.wait(Some(WAIT))
        .current_leader(1, "node 1 leads")
        .await
        .expect("leader");
}

/// Test config: fast elections, no automatic snapshots, purge everything a snapshot covers.
pub fn config() -> Config {
    Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: 0,
        ..Config::default()
    }
}
