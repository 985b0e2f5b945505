//! kmsim-store: a generic, persistent, replicated state machine host for openraft 0.9.
//!
//! It owns the openraft type configuration ([`TypeConfig`]), the Raft log store
//! ([`LogStore`]) and the state machine store ([`StateMachineStore`]), both written against
//! the small ordered key-value engine trait [`KvEngine`]. It knows nothing about KMS: commands
//! are opaque bytes applied by an [`Application`], which reports the records it changed.
//!
//! It must not depend on RocksDB (that is `kmsim-store-rocks`) nor on any KMS crate; unit tests
//! and simulations use the in-memory [`MemKvEngine`].
//!
//! # Modules
//!
//! - [`types`]: `TypeConfig`, `RaftRequest`/`RaftResponse`, aliases of openraft types.
//! - [`engine`] and [`mem_engine`]: the engine trait and its in-memory implementation.
//! - [`log_store`]: `RaftLogStorage` (entries, vote, committed).
//! - [`state_machine`]: `RaftStateMachine` and `RaftSnapshotBuilder` hosting an `Application`.
//! - [`application`]: the `Application` trait.
//! - [`batch`]: the `Batcher`, which proposes many payloads in one entry.
//! - [`snapshot_file`]: [`SnapshotFile`], openraft's `SnapshotData`: a snapshot's stored chunks,
//!   read or written one at a time, and the leases of the chunk slots.
//! - [`snapshot_guard`]: the bounds an incoming snapshot chunk is checked against.
//! - [`keys`]: the key layout below; `codec` (private) holds the value encoding.
//! - `testing` (feature `testing`): `CounterApp` and a runner of openraft's storage suite.
//!
//! # Key layout in the engine
//!
//! | key                     | value (postcard)                          | written by |
//! |-------------------------|-------------------------------------------|------------|
//! | `l/` + u64 BE index     | `Entry<TypeConfig>`                       | log store, durable |
//! | `m/vote`                | `Vote<u64>`                               | log store, durable |
//! | `m/committed`           | `Option<LogId<u64>>`                      | log store |
//! | `m/last_purged`         | `LogId<u64>`                              | log store (with the purge) |
//! | `s/applied`             | `Option<LogId<u64>>`                      | state machine, with the records |
//! | `s/membership`          | `StoredMembership<u64, BasicNode>`        | state machine, with the records |
//! | `s/snapshot-head`       | current snapshot: meta, data slot, length | snapshot build / install |
//! | `s/snapshot-records`    | u64: application records in that snapshot | with the head |
//! | `s/installing`          | head of the snapshot being installed      | snapshot install |
//! | `c/` + slot + u32 BE    | chunk of a snapshot's data blob (chunk 0: its first bytes, then 1 MiB each) | snapshot build / receive |
//! | `a/` + application key  | application record (application's bytes)  | state machine |
//!
//! The snapshot data blob is postcard of (last applied log id, membership, every `a/` record
//! with the prefix stripped, ascending). A build reads the records from an engine view on a
//! blocking thread while applies go on and stores the blob as it encodes it, chunk by chunk,
//! into a slot nobody uses (the header, known once the records are counted, into chunk 0
//! last), then switches the head in one batch. A snapshot is sent and received through
//! [`SnapshotFile`], which reads or writes the stored chunks one at a time: no node holds a
//! snapshot whole in memory. (Before 0.12 the snapshot was one value under `s/snapshot`;
//! opening a store moves it to the chunked layout.)
//!
//! # Durability
//!
//! Log appends, votes, truncations and snapshot installs are durable (`fsync`) before they
//! return. State machine batches are not: the engine's prefix durability (see [`KvEngine`])
//! means a crash loses at most a suffix of them, consistently, and openraft re-applies the
//! committed log from the persisted applied id at start-up.

pub mod application;
pub mod batch;
mod codec;
pub mod engine;
mod error;
pub mod keys;
pub mod log_store;
pub mod mem_engine;
pub mod observer;
pub mod snapshot_file;
pub mod snapshot_guard;
pub mod state_machine;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;

use std::sync::Arc;
use std::sync::RwLock;

pub use application::AppRecords;
pub use application::AppWrite;
pub use application::Application;
pub use application::Applied;
pub use batch::{BatchError, BatchLimits, Batcher, Written};
pub use engine::EngineStats;
pub use engine::KvEngine;
pub use engine::KvPair;
pub use engine::KvRead;
pub use engine::WriteOp;
pub use error::StoreError;
pub use log_store::LogStore;
pub use mem_engine::MemKvEngine;
pub use observer::{SnapshotKind, StoreObserver};
pub use snapshot_file::SnapshotFile;
pub use snapshot_guard::{ChunkError, SnapshotChunks, MAX_SNAPSHOT_BYTES};
pub use state_machine::SnapshotSize;
pub use state_machine::StateMachineStore;
pub use types::NodeId;
pub use types::Raft;
pub use types::RaftRequest;
pub use types::RaftResponse;
pub use types::TypeConfig;

/// Opens the log store and the state machine store of one member over the same engine,
/// opening `app` over the persisted application records.
///
/// Pass both to `Raft::new(node_id, config, network, log_store, state_machine)`.
pub fn open_stores<E, A>(
    engine: Arc<E>,
    app: Arc<RwLock<A>>,
) -> Result<(LogStore<E>, StateMachineStore<E, A>), StoreError>
where
    E: KvEngine,
    A: Application,
{
    let state_machine = StateMachineStore::new(Arc::clone(&engine), app)?;
    Ok((LogStore::new(engine), state_machine))
}
