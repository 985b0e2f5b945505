//! [`Application`]: the deterministic state machine the store hosts, and [`AppRecords`], its
//! reads of the records the store persisted.

use std::sync::Arc;

use crate::engine::KvPair;
use crate::engine::KvRead;
use crate::error::StoreError;
use crate::keys;

/// What applying one command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Returned to the proposer as `RaftResponse::payload`.
    pub response: Vec<u8>,
    /// Records to persist, in the application's own keyspace; written in the same atomic
    /// batch as the new applied log id.
    pub writes: Vec<AppWrite>,
}

/// One change to the application's persisted records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppWrite {
    /// Sets record `key` to `value`.
    Put {
        /// Key in the application's keyspace.
        key: Vec<u8>,
        /// The record.
        value: Vec<u8>,
    },
    /// Removes record `key`.
    Delete {
        /// Key in the application's keyspace.
        key: Vec<u8>,
    },
}

/// Reads of the application's persisted records, in its own keyspace (without the store's
/// `a/` prefix), as the engine holds them now: every batch the store has written, nothing of
/// an apply still running. Cheap to clone.
#[derive(Clone)]
pub struct AppRecords {
    engine: Arc<dyn KvRead + Send + Sync>,
}

impl std::fmt::Debug for AppRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRecords").finish_non_exhaustive()
    }
}

impl AppRecords {
    /// The application records of `engine`.
    pub fn new(engine: Arc<dyn KvRead + Send + Sync>) -> Self {
        Self { engine }
    }

    /// Record `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.engine.get(&keys::app_key(key))
    }

    /// The records with `from <= key < to` (an empty `to`: to the end), ascending, at most
    /// `limit` of them.
    pub fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        let end = if to.is_empty() {
            keys::APP_END.to_vec()
        } else {
            keys::app_key(to)
        };
        self.engine
            .scan(&keys::app_key(from), &end, limit)?
            .into_iter()
            .map(|(key, value)| match keys::strip_app_prefix(&key) {
                Some(app_key) => Ok((app_key.to_vec(), value)),
                None => Err(StoreError::corrupt(
                    "application record outside the a/ prefix",
                )),
            })
            .collect()
    }

    /// Every record with `from <= key < to` (an empty `to`: to the end), ascending, read
    /// `page` records per engine call.
    pub fn scan_all(&self, from: &[u8], to: &[u8], page: usize) -> Result<Vec<KvPair>, StoreError> {
        let mut out = Vec::new();
        crate::engine::for_each_page(
            from,
            page,
            |start, n| self.scan(start, to, n),
            |batch| {
                out.extend(batch);
                Ok(())
            },
        )?;
        Ok(out)
    }
}

/// A deterministic state machine whose state is a set of records, kept by the store.
///
/// The persisted records are the state: an application may hold as much or as little of it
/// in memory as it likes (caches), reading the rest through the [`AppRecords`] it was
/// opened with. While it applies a batch of entries its own writes are not yet in the
/// engine (the store writes them, with the new applied log id, in one batch after the last
/// entry, then calls [`persisted`](Self::persisted)): it must read them from memory until then.
pub trait Application: Send + Sync + 'static {
    /// Opens the application over the persisted records, dropping whatever it held: on start
    /// and after a snapshot install replaced the records. Returns records to write at once
    /// (an upgrade of an older layout, such as a new index built from the records); the store
    /// writes them durably before anything else happens.
    ///
    /// A record the application cannot read is an error (the data dir is corrupt or from an
    /// incompatible version); the store reports it as a storage failure instead of serving a
    /// partial state.
    fn open(&mut self, records: AppRecords) -> Result<Vec<AppWrite>, String>;

    /// Applies one committed command. Must be deterministic: no clock, no randomness.
    ///
    /// An error means the application could not read its records (a storage failure, not a
    /// refused command: refusals are answers in [`Applied::response`]); the store stops.
    fn apply(&mut self, log_index: u64, payload: &[u8]) -> Result<Applied, String>;

    /// Every write reported by `apply` so far is in the engine.
    fn persisted(&mut self) {}
}
