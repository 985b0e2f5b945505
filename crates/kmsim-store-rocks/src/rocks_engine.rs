//! [`RocksKvEngine`]: [`KvEngine`] over one RocksDB instance.

use std::fmt::Debug;
use std::path::Path;
use std::path::PathBuf;

use kmsim_store::EngineStats;
use kmsim_store::KvEngine;
use kmsim_store::KvPair;
use kmsim_store::KvRead;
use kmsim_store::StoreError;
use kmsim_store::WriteOp;
use rocksdb::BlockBasedOptions;
use rocksdb::Cache;
use rocksdb::DBCompressionType;
use rocksdb::DBRawIterator;
use rocksdb::DBRecoveryMode;
use rocksdb::Options;
use rocksdb::ReadOptions;
use rocksdb::Snapshot;
use rocksdb::WriteBatch;
use rocksdb::WriteOptions;
use rocksdb::DB;

/// Block cache size: a node's working set (keys, recent log) is small; 32 MiB keeps a
/// several-node cluster on one machine cheap.
const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// RocksDB info LOG files kept per database (they rotate on every open).
const KEEP_INFO_LOGS: usize = 4;

/// Background flush/compaction threads; the build and test machines have 2 cores.
const BACKGROUND_JOBS: i32 = 2;

/// A [`KvEngine`] stored in one RocksDB database (default column family).
pub struct RocksKvEngine {
    /// The open database; closed on drop.
    db: DB,
    /// Where it lives, for logs and errors.
    path: PathBuf,
}

impl Debug for RocksKvEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKvEngine")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RocksKvEngine {
    /// Opens (creating if missing) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(BLOCK_CACHE_BYTES));

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_block_based_table_factory(&table);
        opts.set_keep_log_file_num(KEEP_INFO_LOGS);
        opts.set_max_background_jobs(BACKGROUND_JOBS);
        // Explicit although it is RocksDB's default: recovery stops at the first damaged WAL
        // record, so a crash loses a suffix of writes, never one in the middle.
        opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);

        let db = DB::open(&opts, path).map_err(StoreError::engine)?;
        tracing::info!(path = %path.display(), "opened rocksdb");
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read options limited to `[from, to)`, so iterators stop at the range end instead of
    /// walking over whatever (tombstones included) follows it.
    fn bounded(from: &[u8], to: &[u8]) -> ReadOptions {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(from.to_vec());
        opts.set_iterate_upper_bound(to.to_vec());
        opts
    }
}

/// Up to `limit` pairs of `[from, to)` from an iterator made with [`RocksKvEngine::bounded`].
fn scan_with(
    mut it: DBRawIterator<'_>,
    from: &[u8],
    to: &[u8],
    limit: usize,
) -> Result<Vec<KvPair>, StoreError> {
    let mut out = Vec::new();
    it.seek(from);
    while let Some((key, value)) = it.item() {
        if key >= to || out.len() >= limit {
            break;
        }
        out.push((key.to_vec(), value.to_vec()));
        it.next();
    }
    it.status().map_err(StoreError::engine)?;
    Ok(out)
}

/// A [`RocksKvEngine::view`]: a RocksDB snapshot, which pins the sequence number it was
/// taken at (compaction keeps the versions it needs) without copying anything.
struct RocksView<'a> {
    snapshot: Snapshot<'a>,
}

impl KvRead for RocksView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot.get(key).map_err(StoreError::engine)
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let it = self
            .snapshot
            .raw_iterator_opt(RocksKvEngine::bounded(from, to));
        scan_with(it, from, to, limit)
    }
}

impl KvRead for RocksKvEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(StoreError::engine)
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let it = self.db.raw_iterator_opt(Self::bounded(from, to));
        scan_with(it, from, to, limit)
    }
}

impl KvEngine for RocksKvEngine {
    fn write(&self, ops: Vec<WriteOp>, durable: bool) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                WriteOp::Put { key, value } => batch.put(key, value),
                WriteOp::Delete { key } => batch.delete(key),
                // RocksDB rejects inverted ranges; the trait defines them as empty.
                WriteOp::DeleteRange { from, to } if from < to => batch.delete_range(from, to),
                WriteOp::DeleteRange { .. } => {}
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durable);
        self.db.write_opt(batch, &opts).map_err(StoreError::engine)
    }

    fn view(&self) -> Result<Box<dyn KvRead + '_>, StoreError> {
        Ok(Box::new(RocksView {
            snapshot: self.db.snapshot(),
        }))
    }

    fn stats(&self) -> EngineStats {
        // Estimates RocksDB keeps up to date itself: reading them costs no I/O. A property it
        // cannot give is left unknown.
        let property = |name: &str| self.db.property_int_value(name).ok().flatten();
        EngineStats {
            live_data_bytes: property("rocksdb.estimate-live-data-size"),
            pending_compaction_bytes: property("rocksdb.estimate-pending-compaction-bytes"),
        }
    }

    fn last_in_range(&self, from: &[u8], to: &[u8]) -> Result<Option<KvPair>, StoreError> {
        if from >= to {
            return Ok(None);
        }
        let mut it = self.db.raw_iterator_opt(Self::bounded(from, to));
        // With an upper bound set, SeekToLast positions on the last key below it.
        it.seek_to_last();
        let found = it
            .item()
            .filter(|(key, _)| *key >= from && *key < to)
            .map(|(key, value)| (key.to_vec(), value.to_vec()));
        it.status().map_err(StoreError::engine)?;
        Ok(found)
    }
}
