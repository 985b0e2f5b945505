//! openraft's storage suite over `RocksKvEngine`.

use kmsim_store::testing::run_openraft_suite;

use crate::fresh_engine;

#[test]
fn openraft_storage_suite_passes_on_rocksdb() {
    run_openraft_suite(fresh_engine).expect("openraft storage suite");
}
