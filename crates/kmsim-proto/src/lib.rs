//! kmsim's gRPC API: the Rust code generated from the workspace's `proto/` directory, and the
//! single place where a [`kmsim_core::KmsError`] crosses gRPC as a [`tonic::Status`].
//!
//! Main modules:
//! - [`kms::v1`] (`kmsim.kms.v1`): the AWS KMS operations, one rpc each, messages that mirror the
//!   AWS shapes member for member (field conventions in this crate's README);
//! - [`raft::v1`] (`kmsim.raft.v1`): Raft traffic between the nodes of one Region, carried as
//!   opaque payloads, and write forwarding to the leader;
//! - [`admin::v1`] (`kmsim.admin.v1`): node status, the simulated clock, snapshots, test hooks;
//! - [`sync::v1`] (`kmsim.sync.v1`): the synchronizer between Regions;
//! - [`relay::v1`] (`kmsim.relay.v1`): AWS JSON requests relayed to a node of their Region;
//! - [`status`]: `KmsError` ↔ `tonic::Status`;
//! - [`json`]: the AWS JSON 1.1 spelling of the `kms::v1` messages (serde derives set up in
//!   `build.rs`, base64 for blobs).
//!
//! Generated servers are `<pkg>::<service>_server::<Service>` traits (implemented elsewhere as
//! `<Service>ServiceImpl`) wrapped by `<Service>Server`; clients are
//! `<pkg>::<service>_client::<Service>Client`.
//!
//! This crate depends only on `kmsim-core` (for `KmsError`) and the gRPC/protobuf runtime; it
//! must not depend on storage, Raft or crypto crates, so that any client can link it cheaply.

pub mod json;
pub mod status;

pub use status::{error_from_status, status_from_error, ERROR_CODE_HEADER};

/// Package `kmsim.kms.v1`.
pub mod kms {
    /// The AWS KMS API (`KmsService`), generated from `proto/kmsim/kms/v1/kms.proto`.
    #[allow(clippy::all, clippy::unwrap_used, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("kmsim.kms.v1");
    }
}

/// Package `kmsim.raft.v1`.
pub mod raft {
    /// Raft transport inside one Region (`RaftService`), generated from
    /// `proto/kmsim/raft/v1/raft.proto`.
    #[allow(clippy::all, clippy::unwrap_used, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("kmsim.raft.v1");
    }
}

/// Package `kmsim.sync.v1`.
pub mod sync {
    /// Region-to-Region synchronization (`SyncService`), generated from
    /// `proto/kmsim/sync/v1/sync.proto`.
    #[allow(clippy::all, clippy::unwrap_used, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("kmsim.sync.v1");
    }
}

/// Package `kmsim.admin.v1`.
pub mod admin {
    /// Node administration (`AdminService`), generated from `proto/kmsim/admin/v1/admin.proto`.
    #[allow(clippy::all, clippy::unwrap_used, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("kmsim.admin.v1");
    }
}

/// Package `kmsim.relay.v1`.
pub mod relay {
    /// The AWS JSON relay (`RelayService`): the gateway and nodes hand a client's request to a
    /// node of its Region, generated from `proto/kmsim/relay/v1/relay.proto`.
    #[allow(clippy::all, clippy::unwrap_used, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("kmsim.relay.v1");
    }
}
