//! kmsim-store-rocks: the RocksDB [`KvEngine`] of `kmsim-store`.
//!
//! It owns [`RocksKvEngine`], one RocksDB instance per node in the default column family, laid
//! out as `kmsim-store` documents (`l/` log, `m/` log metadata, `s/` state machine metadata and
//! snapshot, `a/` application records). It is the only kmsim crate that links RocksDB; it must
//! not know about Raft or KMS beyond the `KvEngine` trait.
//!
//! Durability: the WAL is always on and recovery is point-in-time, so after a crash the
//! database holds a prefix of the write sequence; a `durable` write syncs the WAL, which makes
//! it and every earlier write durable. That is the prefix durability `KvEngine` requires.

mod rocks_engine;

pub use rocks_engine::RocksKvEngine;
