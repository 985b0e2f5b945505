//! [`KvEngine`]: the small ordered key-value engine trait, the only seam to RocksDB.

use crate::error::StoreError;

/// How many pairs [`KvEngine::last_in_range`]'s default implementation reads per page.
const DEFAULT_PAGE: usize = 1024;

/// A key and its value.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// One mutation inside an atomic [`KvEngine::write`] batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes `key` (no error when absent).
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Removes every key in `[from, to)`; an empty or inverted range removes nothing.
    DeleteRange {
        /// First key removed.
        from: Vec<u8>,
        /// First key kept.
        to: Vec<u8>,
    },
}

/// Figures an engine may report about itself (each `None` when it does not know it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Estimated bytes of live data (RocksDB `rocksdb.estimate-live-data-size`).
    pub live_data_bytes: Option<u64>,
    /// Estimated bytes compaction still has to rewrite (RocksDB
    /// `rocksdb.estimate-pending-compaction-bytes`).
    pub pending_compaction_bytes: Option<u64>,
}

/// Reads of an ordered byte-string key-value store: of an engine as it is now, or of a
/// [`KvEngine::view`] of it as it was.
pub trait KvRead {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// All pairs with from <= key < to, ascending, at most `limit` of them.
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError>;
}

/// An ordered byte-string key-value store with atomic batches.
///
/// Keys compare as byte strings. Contract the stores in this crate rely on:
///
/// - **Atomic batches**: a [`write`](Self::write) is applied entirely or not at all, also
///   across a crash, and its ops take effect in order (a later op on the same key wins).
/// - **Read your writes**: once `write` returns, every reader sees the batch.
/// - **Consistent views**: a [`view`](Self::view) reads the engine between two batches and
///   keeps reading it so while later batches are written; reading a view does not block
///   writers (the state machine builds snapshots from one while applies go on).
/// - **Prefix durability**: after a crash the engine holds a prefix of the sequence of
///   batches; a `durable = true` write returns only after it *and every earlier write* are
///   on stable storage. The state machine's non-durable batches rely on this: a later durable
///   log append or vote makes them durable too, and a lost suffix is re-applied from the log.
pub trait KvEngine: KvRead + Send + Sync + 'static {
    /// Atomic batch. `durable = true` means fsync before returning (used for log appends and votes).
    fn write(&self, ops: Vec<WriteOp>, durable: bool) -> Result<(), StoreError>;

    /// A read-only view of the engine as it is now (a RocksDB snapshot): batches written
    /// later are not seen through it. Cheap to take; it pins what it reads until dropped.
    fn view(&self) -> Result<Box<dyn KvRead + '_>, StoreError>;

    /// The engine's own figures, for the node's metrics; an engine without them keeps the
    /// default (none known).
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }

    /// The pair with the greatest key in `[from, to)`, if any.
    ///
    /// The log store needs the last log entry without reading the whole log. The default
    /// implementation pages through [`scan`](Self::scan); engines with reverse iteration
    /// should override it.
    fn last_in_range(&self, from: &[u8], to: &[u8]) -> Result<Option<KvPair>, StoreError> {
        let mut start = from.to_vec();
        let mut last = None;
        loop {
            let page = self.scan(&start, to, DEFAULT_PAGE)?;
            let full = page.len() == DEFAULT_PAGE;
            if let Some(pair) = page.into_iter().last() {
                start = key_successor(&pair.0);
                last = Some(pair);
            }
            if !full {
                return Ok(last);
            }
        }
    }
}

/// The smallest key greater than `key` (`key` followed by a zero byte).
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Pages through a range from `from` on: `scan(start, n)` reads at most `n` pairs from `start`
/// on, ascending, and each page read goes to `visit`, until a page comes back short.
pub(crate) fn for_each_page(
    from: &[u8],
    page: usize,
    mut scan: impl FnMut(&[u8], usize) -> Result<Vec<KvPair>, StoreError>,
    mut visit: impl FnMut(Vec<KvPair>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let page = page.max(1);
    let mut start = from.to_vec();
    loop {
        let batch = scan(&start, page)?;
        let full = batch.len() == page;
        if let Some((key, _)) = batch.last() {
            start = key_successor(key);
        }
        visit(batch)?;
        if !full {
            return Ok(());
        }
    }
}
