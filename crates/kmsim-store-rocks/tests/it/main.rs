//! Integration tests of `RocksKvEngine`, on real databases in temp dirs.

mod t10_engine;
mod t20_reopen;
mod t30_openraft_suite;

use std::path::Path;

use kmsim_store::StoreError;
use kmsim_store::WriteOp;
use kmsim_store_rocks::RocksKvEngine;

/// A fresh engine in its own temp dir; keep the dir alive as long as the engine.
pub fn fresh_engine() -> Result<(tempfile::TempDir, RocksKvEngine), StoreError> {
    let dir = tempfile::tempdir().map_err(StoreError::engine)?;
    let engine = RocksKvEngine::open(&dir.path().join("db"))?;
    Ok((dir, engine))
}

/// Opens the engine under `dir` (as `fresh_engine` laid it out).
pub fn reopen(dir: &Path) -> RocksKvEngine {
    RocksKvEngine::open(&dir.join("db")).expect("reopen rocksdb")
}

pub fn put(key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}
