//! [`Records`]: the Region's records as [`KmsState`](super::KmsState) reads and writes them:
//! what the store persisted (read through a [`RecordSource`]) under the writes of the apply in
//! progress, with a bounded cache of decoded key records.
//!
//! The state holds no map of its keys, aliases, grants, notices or audit events: every read
//! goes to the records (through the cache for keys), so a Region's memory does not grow with
//! its number of keys. Without a source (a state built with [`KmsState::new`](super::KmsState::new),
//! as unit tests do) the written records are the whole state and stay in memory.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::{Arc, Mutex, OnceLock};

use lru::LruCache;
use serde::de::DeserializeOwned;

use super::command::encode;
use super::RecordChange;
use crate::ids::KeyId;
use crate::key::KeyRecord;

/// Records read per call of a source while scanning.
const SCAN_PAGE: usize = 256;

/// A record: its key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// The decoded key records a state keeps by default.
pub const DEFAULT_KEY_CACHE: usize = 10_000;

/// Reads of the records a store persisted (the state's own keyspace), as they are now.
///
/// An error is a storage failure (I/O, corruption): the state remembers the first one (see
/// [`KmsState::storage_fault`](super::KmsState::storage_fault)) and answers as if the record
/// were absent; its caller must then discard the answer.
pub trait RecordSource: Send + Sync {
    /// Record `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;

    /// The records with `from <= key < to` (an empty `to`: to the end), ascending, at most
    /// `limit`.
    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Record>, String>;
}

/// The records of one state (see the module docs).
pub(super) struct Records {
    /// What the store persisted; `None`: everything is in `overlay`.
    source: Option<Arc<dyn RecordSource>>,
    /// Records written and not yet persisted (`None`: deleted); with no source, all records.
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Decoded key records, and keys known to be absent (`None`), most recently used kept:
    /// an apply of CreateKey asks for the new key several times before it exists.
    keys: Mutex<LruCache<KeyId, Option<Arc<KeyRecord>>>>,
    /// The first storage failure seen since the state was opened.
    fault: OnceLock<String>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("persisted", &self.source.is_some())
            .field("unpersisted", &self.overlay.len())
            .finish_non_exhaustive()
    }
}

impl Records {
    /// Records held in memory only, keeping up to `cached_keys` decoded key records.
    pub fn memory(cached_keys: usize) -> Records {
        Records {
            source: None,
            overlay: BTreeMap::new(),
            keys: Mutex::new(LruCache::new(
                NonZeroUsize::new(cached_keys).unwrap_or(NonZeroUsize::MIN),
            )),
            fault: OnceLock::new(),
        }
    }

    /// Reads from `source` from now on, forgetting everything held (cache, unpersisted
    /// writes, a storage failure).
    pub fn open(&mut self, source: Arc<dyn RecordSource>) {
        self.source = Some(source);
        self.overlay.clear();
        self.cache().clear();
        self.fault = OnceLock::new();
    }

    /// The writes so far are in the source.
    pub fn persisted(&mut self) {
        if self.source.is_some() {
            self.overlay.clear();
        }
    }

    /// The first storage failure since opening.
    pub fn fault(&self) -> Option<&str> {
        self.fault.get().map(String::as_str)
    }

    fn failed(&self, error: String) {
        let _ = self.fault.set(error);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<KeyId, Option<Arc<KeyRecord>>>> {
        // A panic while holding the lock left at worst a stale cache entry of a key whose
        // record is unchanged (the cache is written after the record): keep using it.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record `key`.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(written) = self.overlay.get(key) {
            return written.clone();
        }
        let source = self.source.as_ref()?;
        source.get(key).unwrap_or_else(|e| {
            self.failed(format!("reading a record: {e}"));
            None
        })
    }

    /// Record `key` decoded as `what`.
    pub fn get_as<T: DeserializeOwned>(&self, key: &[u8], what: &str) -> Option<T> {
        let bytes = self.get(key)?;
        self.decode(key, &bytes, what)
    }

    /// `bytes` of record `key` decoded as `what`; a failure is a storage failure.
    pub fn decode<T: DeserializeOwned>(&self, key: &[u8], bytes: &[u8], what: &str) -> Option<T> {
        postcard::from_bytes(bytes)
            .map_err(|e| {
                self.failed(format!(
                    "cannot decode the {what} record {}: {e}",
                    String::from_utf8_lossy(key)
                ))
            })
            .ok()
    }

    /// The records with `from <= key < to` (an empty `to`: to the end), ascending, at most
    /// `limit`: the source's under this state's unpersisted writes.
    pub fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Vec<Record> {
        let mut out = Vec::new();
        if limit == 0 || (!to.is_empty() && from >= to) {
            return out;
        }
        let upper = |end: &[u8]| {
            if end.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Excluded(end.to_vec())
            }
        };
        let Some(source) = &self.source else {
            let range = (Bound::Included(from.to_vec()), upper(to));
            return self
                .overlay
                .range(range)
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .take(limit)
                .collect();
        };
        let mut cursor = from.to_vec();
        loop {
            let page = match source.scan(&cursor, to, limit) {
                Ok(page) => page,
                Err(e) => {
                    self.failed(format!("scanning records: {e}"));
                    return out;
                }
            };
            // The source's page covers [cursor, end); the overlay's writes in that range win.
            let full = page.len() == limit;
            let end = match page.last() {
                Some((last, _)) if full => successor(last),
                _ => to.to_vec(),
            };
            let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
                page.into_iter().map(|(k, v)| (k, Some(v))).collect();
            let range = (Bound::Included(cursor.clone()), upper(&end));
            for (k, v) in self.overlay.range(range) {
                merged.insert(k.clone(), v.clone());
            }
            for (k, v) in merged {
                if let Some(v) = v {
                    out.push((k, v));
                    if out.len() == limit {
                        return out;
                    }
                }
            }
            if !full {
                return out;
            }
            cursor = end;
        }
    }

    /// Calls `f` on every record with `from <= key < to` in order, page by page, until it
    /// returns false.
    pub fn for_each(&self, from: &[u8], to: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) {
        let mut cursor = from.to_vec();
        loop {
            let page = self.scan(&cursor, to, SCAN_PAGE);
            for (k, v) in &page {
                if !f(k, v) {
                    return;
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == SCAN_PAGE => cursor = successor(last),
                _ => return,
            }
        }
    }

    /// Writes record `key`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>, changes: &mut Vec<RecordChange>) {
        self.overlay.insert(key.clone(), Some(value.clone()));
        changes.push(RecordChange::Put { key, value });
    }

    /// Writes `value` encoded under `key`.
    pub fn put_encoded<T: serde::Serialize>(
        &mut self,
        key: Vec<u8>,
        value: &T,
        changes: &mut Vec<RecordChange>,
    ) {
        self.put(key, encode(value), changes);
    }

    /// Deletes record `key`.
    pub fn delete(&mut self, key: Vec<u8>, changes: &mut Vec<RecordChange>) {
        if self.source.is_some() {
            self.overlay.insert(key.clone(), None);
        } else {
            self.overlay.remove(&key);
        }
        changes.push(RecordChange::Delete { key });
    }

    /// The key record stored under `record_key`, through the cache.
    pub fn key(&self, id: &KeyId, record_key: &[u8]) -> Option<Arc<KeyRecord>> {
        if let Some(hit) = self.cache().get(id) {
            return hit.clone();
        }
        let key = self.get_as::<KeyRecord>(record_key, "key").map(Arc::new);
        // A read that failed looks absent: not remembered (the answer is discarded anyway).
        if self.fault().is_none() {
            self.cache().put(id.clone(), key.clone());
        }
        key
    }

    /// Writes a key record and caches it.
    pub fn put_key(
        &mut self,
        record_key: Vec<u8>,
        key: Arc<KeyRecord>,
        changes: &mut Vec<RecordChange>,
    ) {
        self.put_encoded(record_key, key.as_ref(), changes);
        self.cache().put(key.key_id.clone(), Some(key));
    }

    /// Deletes a key record and caches its absence.
    pub fn delete_key(&mut self, id: &KeyId, record_key: Vec<u8>, changes: &mut Vec<RecordChange>) {
        self.delete(record_key, changes);
        self.cache().put(id.clone(), None);
    }

    /// Every record, for tests comparing a state with what it reported.
    #[cfg(test)]
    pub fn all(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.scan(&[], &[], usize::MAX).into_iter().collect()
    }
}

/// The smallest key greater than `key`.
pub(super) fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// The first key after every key that starts with `prefix` (`prefix` must not end in 0xff,
/// which no prefix of the state's records does).
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// Records persisted by a test "store", shared with the states opened over them.
#[cfg(test)]
#[derive(Default)]
pub(super) struct MemSource(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

#[cfg(test)]
impl MemSource {
    pub(super) fn with(records: BTreeMap<Vec<u8>, Vec<u8>>) -> Arc<MemSource> {
        Arc::new(MemSource(Mutex::new(records)))
    }

    /// Writes `changes`, as a store does after an apply.
    pub(super) fn write(&self, changes: &[RecordChange]) {
        let mut records = self.0.lock().unwrap();
        for c in changes {
            match c {
                RecordChange::Put { key, value } => {
                    records.insert(key.clone(), value.clone());
                }
                RecordChange::Delete { key } => {
                    records.remove(key);
                }
            }
        }
    }

    pub(super) fn records(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.0.lock().unwrap().clone()
    }
}

#[cfg(test)]
impl RecordSource for MemSource {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Record>, String> {
        let records = self.0.lock().unwrap();
        Ok(records
            .range(from.to_vec()..)
            .take_while(|(k, _)| to.is_empty() || k.as_slice() < to)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn short_key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..4, 0..4)
    }

    proptest! {
        /// Reads over a source with unpersisted writes on top answer what the source would
        /// hold with the writes applied, for any range and page size.
        #[test]
        fn scans_merge_unpersisted_writes_over_the_source(
            persisted in proptest::collection::btree_map(short_key(), short_key(), 0..40),
            writes in proptest::collection::vec((short_key(), proptest::option::of(short_key())), 0..40),
            from in short_key(),
            to in short_key(),
            limit in 1usize..12,
        ) {
            let mut model = persisted.clone();
            let mut records = Records::memory(4);
            records.open(MemSource::with(persisted));
            let mut changes = Vec::new();
            for (k, v) in writes {
                match v {
                    Some(v) => {
                        model.insert(k.clone(), v.clone());
                        records.put(k, v, &mut changes);
                    }
                    None => {
                        model.remove(&k);
                        records.delete(k, &mut changes);
                    }
                }
            }
            let expected: Vec<Record> = model
                .range(from.clone()..)
                .take_while(|(k, _)| to.is_empty() || **k < to)
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(records.scan(&from, &to, limit), expected);
            for (k, v) in &model {
                prop_assert_eq!(records.get(k), Some(v.clone()));
            }
            prop_assert!(records.fault().is_none());
        }
    }
}
