//! The openraft type configuration shared by every crate that talks Raft.
//!
//! Commands and responses are opaque bytes: the meaning belongs to the
//! [`Application`](crate::Application) that applies them.

use serde::Deserialize;
use serde::Serialize;

openraft::declare_raft_types!(
    /// openraft type configuration of a kmsim Region.
    pub TypeConfig:
        D = RaftRequest,
        R = RaftResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A command proposed through Raft; `payload` is interpreted only by the application.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct RaftRequest {
    /// Application-defined command bytes.
    pub payload: Vec<u8>,
}

/// What applying one [`RaftRequest`] returned; blank and membership entries answer empty.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct RaftResponse {
    /// Application-defined response bytes.
    pub payload: Vec<u8>,
}

/// Raft member id inside one Region (openraft needs a plain integer here).
pub type NodeId = u64;

/// A running Raft member with kmsim's type configuration.
pub type Raft = openraft::Raft<TypeConfig>;

/// A log id (leader term and node, index) under [`TypeConfig`].
pub type LogId = openraft::LogId<NodeId>;

/// A vote under [`TypeConfig`].
pub type Vote = openraft::Vote<NodeId>;

/// A log entry under [`TypeConfig`].
pub type Entry = openraft::Entry<TypeConfig>;

/// Membership plus the log id it was committed at, as kept by the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;

/// Snapshot metadata under [`TypeConfig`].
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;

/// A snapshot (metadata plus data) under [`TypeConfig`].
pub type Snapshot = openraft::Snapshot<TypeConfig>;

/// The error type every storage trait method returns.
pub type StorageError = openraft::StorageError<NodeId>;
