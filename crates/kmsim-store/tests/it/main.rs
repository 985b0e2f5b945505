//! Integration tests: a real openraft `Raft` running on `kmsim-store`'s stores.

mod fixtures;
mod t10_single_node;
