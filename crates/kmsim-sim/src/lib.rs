//! The launcher and the tools around a local cluster: data directory layout and topology
//! creation ([`cluster`]), node processes and PID files ([`process`]), health checks
//! ([`health`]), clusters as containers ([`container`]: image, compose project, Kubernetes
//! manifests), the
//! benchmark load generator ([`bench`]) and its SigV4-signing AWS JSON client
//! ([`aws_client`]), the synchronizer's lag measurement ([`sync_lag`]), and the reader of the
//! nodes' and the gateway's `GET /metrics` ([`scrape`]), the Prometheus discovery file `kmsim
//! up` writes ([`prometheus_sd`]), and the sampling, model and drawing of `kmsim top` ([`top`]).
//!
//! Depends on `kmsim-node` for the topology format and on `kmsim-proto` for clients; never on
//! RocksDB.

pub mod aws_client;
pub mod bench;
pub mod cluster;
pub mod container;
pub mod experiment;
pub mod health;
pub mod node_hooks;
pub mod ports;
pub mod process;
pub mod prometheus_sd;
pub mod scrape;
pub mod sync_lag;
pub mod top;
