//! [`LogStore`]: openraft's log storage (entries, vote, committed id) over a [`KvEngine`].

use std::fmt::Debug;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::LogFlushed;
use openraft::storage::LogState;
use openraft::storage::RaftLogStorage;
use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::OptionalSend;
use openraft::RaftLogReader;

use crate::codec;
use crate::engine::KvEngine;
use crate::engine::WriteOp;
use crate::error::StoreError;
use crate::keys;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::StorageError;
use crate::types::TypeConfig;
use crate::types::Vote;

/// The Raft log, vote and committed log id of one member, stored under `l/` and `m/`.
///
/// Stateless apart from the engine: clones (openraft's log readers) read the engine directly,
/// so there is no cache that could disagree with the data after a restart.
pub struct LogStore<E: KvEngine> {
    /// Shared with the state machine store of the same member.
    engine: Arc<E>,
}

impl<E: KvEngine> Clone for LogStore<E> {
    fn clone(&self) -> Self {
        Self {
            engine: Arc::clone(&self.engine),
        }
    }
}

impl<E: KvEngine> Debug for LogStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl<E: KvEngine> LogStore<E> {
    /// A log store over `engine`; whatever the engine already holds is the log.
    pub fn new(engine: Arc<E>) -> Self {
        Self { engine }
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.engine
            .get(key)?
            .map(|bytes| codec::decode(what, &bytes))
            .transpose()
    }

    fn read_entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>, StoreError> {
        let from = keys::log_key(start);
        let to = end.map_or_else(|| keys::LOG_END.to_vec(), keys::log_key);
        self.engine
            .scan(&from, &to, usize::MAX)?
            .into_iter()
            .map(|(_, value)| codec::decode::<Entry>("log entry", &value))
            .collect()
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>, StoreError> {
        let last_purged: Option<LogId> = self.get_meta(keys::LAST_PURGED, "last purged log id")?;
        let last_present = match self.engine.last_in_range(keys::LOG_PREFIX, keys::LOG_END)? {
            Some((_, value)) => Some(codec::decode::<Entry>("log entry", &value)?.log_id),
            None => None,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last_present.or(last_purged),
        })
    }
}

/// `[start, end)` of a range of log indexes; `end == None` means unbounded.
fn index_range<RB: RangeBounds<u64>>(range: &RB) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.checked_add(1),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    Some((start, end))
}

impl<E: KvEngine> RaftLogReader<TypeConfig> for LogStore<E> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let Some((start, end)) = index_range(&range) else {
            return Ok(Vec::new());
        };
        if end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        self.read_entries(start, end)
            .map_err(|e| e.into_storage_error(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl<E: KvEngine> RaftLogStorage<TypeConfig> for LogStore<E> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state()
            .map_err(|e| e.into_storage_error(ErrorSubject::Logs, ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let write = || -> Result<(), StoreError> {
            let value = codec::encode("vote", vote)?;
            // Durable: a vote must survive a crash or the member could vote twice in a term.
            self.engine.write(
                vec![WriteOp::Put {
                    key: keys::VOTE.to_vec(),
                    value,
                }],
                true,
            )
        };
        write().map_err(|e| e.into_storage_error(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(keys::VOTE, "vote")
            .map_err(|e| e.into_storage_error(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let write = || -> Result<(), StoreError> {
            let value = codec::encode("committed log id", &committed)?;
            // Not durable: losing it only means openraft re-applies less of the log at start-up
            // and waits for the leader to tell it the commit index again.
            self.engine.write(
                vec![WriteOp::Put {
                    key: keys::COMMITTED.to_vec(),
                    value,
                }],
                false,
            )
        };
        write().map_err(|e| e.into_storage_error(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.get_meta::<Option<LogId>>(keys::COMMITTED, "committed log id")
            .map(Option::flatten)
            .map_err(|e| e.into_storage_error(ErrorSubject::Store, ErrorVerb::Read))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut ops = Vec::new();
        for entry in entries {
            let value = codec::encode("log entry", &entry).map_err(|e| {
                e.into_storage_error(ErrorSubject::Log(entry.log_id), ErrorVerb::Write)
            })?;
            ops.push(WriteOp::Put {
                key: keys::log_key(entry.log_id.index),
                value,
            });
        }
        if !ops.is_empty() {
            // Durable before the callback: openraft counts this member towards a quorum once
            // the callback reports success.
            self.engine
                .write(ops, true)
                .map_err(|e| e.into_storage_error(ErrorSubject::Logs, ErrorVerb::Write))?;
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(log_index = log_id.index, "truncating log");
        let op = WriteOp::DeleteRange {
            from: keys::log_key(log_id.index),
            to: keys::LOG_END.to_vec(),
        };
        // Durable so that removed (uncommitted) entries cannot reappear after a crash.
        self.engine
            .write(vec![op], true)
            .map_err(|e| e.into_storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(log_index = log_id.index, "purging log");
        let purge = || -> Result<(), StoreError> {
            let value = codec::encode("last purged log id", &log_id)?;
            let ops = vec![
                WriteOp::Put {
                    key: keys::LAST_PURGED.to_vec(),
                    value,
                },
                WriteOp::DeleteRange {
                    from: keys::LOG_PREFIX.to_vec(),
                    to: keys::log_key_after(log_id.index),
                },
            ];
            // Not durable: purged entries are already in a snapshot; if the purge is lost in a
            // crash they simply come back and are purged again.
            self.engine.write(ops, false)
        };
        purge().map_err(|e| e.into_storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete))
    }
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::blank_ent;
    use openraft::testing::log_id;

    use super::*;
    use crate::mem_engine::MemKvEngine;

    fn store() -> (MemKvEngine, LogStore<MemKvEngine>) {
        let engine = MemKvEngine::new();
        let store = LogStore::new(Arc::new(engine.clone()));
        (engine, store)
    }

    async fn append_blanks(
        store: &mut LogStore<MemKvEngine>,
        term: u64,
        indexes: std::ops::RangeInclusive<u64>,
    ) {
        let entries: Vec<Entry> = indexes
            .map(|i| blank_ent::<TypeConfig>(term, 1, i))
            .collect();
        store.blocking_append(entries).await.expect("append");
    }

    #[tokio::test]
    async fn restart_on_the_same_engine_keeps_log_vote_and_committed() {
        let (engine, mut store) = store();
        append_blanks(&mut store, 1, 1..=5).await;
        store.save_vote(&Vote::new(3, 2)).await.expect("vote");
        store
            .save_committed(Some(log_id(1, 1, 4)))
            .await
            .expect("committed");
        drop(store);

        let mut restarted = LogStore::new(Arc::new(engine));
        assert_eq!(
            restarted.read_vote().await.expect("read vote"),
            Some(Vote::new(3, 2))
        );
        assert_eq!(
            restarted.read_committed().await.expect("read"),
            Some(log_id(1, 1, 4))
        );
        let state = restarted.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 5)));
        assert_eq!(state.last_purged_log_id, None);
        let entries = restarted.try_get_log_entries(2..=3).await.expect("entries");
        assert_eq!(
            entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[tokio::test]
    async fn purge_moves_the_log_state_and_drops_entries() {
        let (_, mut store) = store();
        append_blanks(&mut store, 1, 0..=10).await;
        store.purge(log_id(1, 1, 4)).await.expect("purge");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 4)));
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 10)));
        let left = store.try_get_log_entries(..).await.expect("entries");
        assert_eq!(left.first().map(|e| e.log_id.index), Some(5));
        assert_eq!(left.len(), 6);

        // Purging everything leaves the purged id as the last log id.
        store.purge(log_id(1, 1, 10)).await.expect("purge all");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 10)));
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 10)));
        assert!(store
            .try_get_log_entries(..)
            .await
            .expect("entries")
            .is_empty());
    }

    #[tokio::test]
    async fn truncate_removes_the_suffix() {
        let (_, mut store) = store();
        append_blanks(&mut store, 1, 1..=10).await;
        store.truncate(log_id(1, 1, 6)).await.expect("truncate");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 5)));
        append_blanks(&mut store, 2, 6..=7).await;
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 7)));
    }

    #[test]
    fn index_ranges_handle_edges() {
        assert_eq!(index_range(&(..)), Some((0, None)));
        assert_eq!(index_range(&(3..7)), Some((3, Some(7))));
        assert_eq!(index_range(&(3..=u64::MAX)), Some((3, None)));
        assert_eq!(
            index_range(&(Bound::Excluded(u64::MAX), Bound::Unbounded)),
            None
        );
    }
}
