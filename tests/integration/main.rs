//! Integration tests: real `kmsim node` processes (started by the real launcher), real
//! RocksDB, real gRPC, on 127.0.0.1 ports chosen by the OS. Modules are numbered by band:
//! `t10_` basics, `t20_` lifecycle (`t25_`–`t29_` key types, rotation, import, grants, the
//! material cache), `t30_` API edges, `t40_` the AWS JSON endpoint with real AWS clients,
//! `t50_` faults (`t51_` process control), `t60_` security, `t70_` multi-Region keys, `t80_`
//! hostile clients and peers.

// Test code may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod harness;
mod openssl;
mod t10_basics;
mod t15_launcher;
mod t16_cli_key_types;
mod t20_lifecycle;
mod t25_key_types;
mod t26_rotation;
mod t27_import;
mod t28_grants;
mod t29_material_cache;
mod t30_api_edges;
mod t40_aws_sdk;
mod t41_aws_json_edges;
mod t42_aws_sdk_key_types;
mod t45_bench;
mod t46_gateway_handoff;
mod t50_faults;
mod t51_failover;
mod t51_process_control;
mod t55_snapshots;
mod t56_health;
mod t57_metrics;
mod t58_state_on_disk;
mod t59_containers;
mod t59_swarm;
mod t60_security;
mod t61_limits;
mod t61_quotas;
mod t62_secrets;
mod t63_authorization;
mod t63_sts;
mod t64_prometheus;
mod t65_top;
mod t66_traces;
mod t67_experiments;
mod t68_node_hooks;
mod t70_multi_region;
mod t71_multi_region_faults;
mod t72_multi_region_lifecycle;
mod t73_sync_security;
mod t74_read_after_write;
mod t75_audit;
mod t76_runtime_iam;
mod t80_transport_security;
mod t81_hostile_raft;
