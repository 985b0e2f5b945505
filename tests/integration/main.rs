//! Integration tests: real `kmsim node` processes (started by the real launcher), real
//! RocksDB, real gRPC, on 127.0.0.1 ports chosen by the OS. Modules are numbered by band:
//! `t10_` basics, `t20_` lifecycle, `t30_` API edges, `t40_` the AWS JSON endpoint with real
//! AWS clients, `t50_` faults, `t60_` security.

// Test code may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod harness;
mod t10_basics;
mod t15_launcher;
mod t20_lifecycle;
mod t30_api_edges;
mod t40_aws_sdk;
mod t41_aws_json_edges;
mod t50_faults;
mod t60_security;
