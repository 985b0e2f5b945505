//! One kmsim node: the KMS operations over the replicated store, leader forwarding, the Raft
//! network over gRPC, the AWS JSON endpoint, the admin API, the simulated clock, the lifecycle
//! task and the synchronizer between Regions.
//!
//! Modules: [`config`] (topology file), [`key_files`] (domain and transport key files),
//! [`iam`] (the topology's principals and identity policies), [`iam_simulate`] (the policy
//! simulator of the admin API), [`node`] (wiring and bootstrap), [`kms`] (operations), [`kms_service`], [`raft_service`],
//! [`admin_service`] (gRPC faces), [`aws`] (the AWS JSON 1.1 face with SigV4, Region routing
//! and the gateway), [`proposer`] (writes from any node), [`read_index`] (read indexes shared
//! by concurrent reads that must not be stale), [`network`] (Raft client), [`app`] (state
//! machine bridge), [`material`] (unwrapped key cache), [`clock`], [`entropy`], [`backoff`]
//! (jittered retry delays), [`faults`] (injected link faults), [`lifecycle`] (deletion windows,
//! automatic rotation, expiry of imported material), [`sync`] (the synchronizer), [`lock_file`]
//! (waiting, at start-up, for a previous process's lock on the data directory), [`metrics`]
//! (the Prometheus metrics every node and the gateway serve at `GET /metrics`), [`trace`] (the
//! W3C trace context carried across processes and Regions).
//!
//! This crate is generic over `kmsim_store::KvEngine`; it never links RocksDB and never parses
//! command-line flags or installs a tracing subscriber (the binary does).

pub mod admin_service;
pub mod app;
pub mod aws;
pub mod backoff;
pub mod call_log;
pub mod clock;
pub mod commit_origins;
pub mod config;
pub mod entropy;
pub mod error;
pub mod faults;
pub mod heavy;
pub mod iam;
pub mod iam_admin;
pub mod iam_changes;
pub mod iam_simulate;
pub mod inject;
pub mod key_files;
pub mod kms;
pub mod kms_service;
pub mod leader_watch;
pub mod lifecycle;
pub mod lock_file;
pub mod material;
pub mod metrics;
pub mod network;
pub mod node;
pub mod proposer;
pub mod quotas;
pub mod raft_service;
pub mod read_index;
pub mod rejoin;
pub mod snapshot_policy;
pub mod sync;
pub mod tls;
pub mod trace;
mod wire;

#[cfg(test)]
mod cluster_tests;

pub use error::NodeError;
pub use node::{run_node, run_node_with_key};
