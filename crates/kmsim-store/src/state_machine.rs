//! [`StateMachineStore`]: openraft's state machine and snapshots, hosting an [`Application`].

use std::fmt::Debug;
use std::io::Cursor;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::RwLockReadGuard;
use std::sync::RwLockWriteGuard;

use openraft::storage::RaftStateMachine;
use openraft::EntryPayload;
use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;

use crate::application::AppWrite;
use crate::application::Application;
use crate::codec;
use crate::codec::SnapshotBlob;
use crate::codec::StoredSnapshot;
use crate::engine::scan_all;
use crate::engine::KvEngine;
use crate::engine::KvPair;
use crate::engine::WriteOp;
use crate::error::StoreError;
use crate::keys;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::RaftResponse;
use crate::types::Snapshot;
use crate::types::SnapshotMeta;
use crate::types::StorageError;
use crate::types::StoredMembership;
use crate::types::TypeConfig;

/// Records read per engine call when loading or snapshotting the application.
const SCAN_PAGE: usize = 4096;

/// The replicated state machine of one member: the application's records under `a/`, the
/// applied log id and membership under `s/`, and the current snapshot.
///
/// Clones share everything; openraft's snapshot builder is a clone.
///
/// Locking: `apply` and `install_snapshot` hold the application's write lock across their
/// engine batch, and a snapshot build holds its read lock while it scans and stores the
/// snapshot. So a snapshot always sees records and applied id of the same point, and a build
/// running concurrently with an install (openraft builds in a separate task) cannot overwrite
/// a newer installed snapshot with an older one.
pub struct StateMachineStore<E: KvEngine, A: Application> {
    /// Shared with the log store of the same member.
    engine: Arc<E>,
    /// The application; the node reads it directly for queries.
    app: Arc<RwLock<A>>,
    /// The third part of snapshot ids; continues from the stored snapshot after a restart.
    snapshot_counter: Arc<AtomicU64>,
}

impl<E: KvEngine, A: Application> Clone for StateMachineStore<E, A> {
    fn clone(&self) -> Self {
        Self {
            engine: Arc::clone(&self.engine),
            app: Arc::clone(&self.app),
            snapshot_counter: Arc::clone(&self.snapshot_counter),
        }
    }
}

impl<E: KvEngine, A: Application> Debug for StateMachineStore<E, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore").finish_non_exhaustive()
    }
}

impl<E: KvEngine, A: Application> StateMachineStore<E, A> {
    /// Opens the state machine stored in `engine` and loads its records into `app`
    /// (replacing whatever `app` held).
    pub fn new(engine: Arc<E>, app: Arc<RwLock<A>>) -> Result<Self, StoreError> {
        let records = read_app_records(engine.as_ref())?;
        write_lock(&app)?
            .load(records)
            .map_err(StoreError::corrupt)?;
        let next_counter = match read_stored_snapshot(engine.as_ref())? {
            Some(stored) => snapshot_counter_of(&stored.meta.snapshot_id).saturating_add(1),
            None => 1,
        };
        Ok(Self {
            engine,
            app,
            snapshot_counter: Arc::new(AtomicU64::new(next_counter)),
        })
    }

    /// The application this store applies to.
    pub fn app(&self) -> &Arc<RwLock<A>> {
        &self.app
    }

    /// The engine underneath.
    pub fn engine(&self) -> &Arc<E> {
        &self.engine
    }

    /// The persisted last applied log id and membership.
    pub fn read_applied_state(&self) -> Result<(Option<LogId>, StoredMembership), StoreError> {
        read_applied_state(self.engine.as_ref())
    }

    fn apply_entries(
        &self,
        entries: impl Iterator<Item = Entry>,
    ) -> Result<Vec<RaftResponse>, StoreError> {
        let mut app = write_lock(&self.app)?;
        let mut responses = Vec::new();
        let mut ops = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        for entry in entries {
            let index = entry.log_id.index;
            last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => RaftResponse::default(),
                EntryPayload::Normal(request) => {
                    let applied = app.apply(index, &request.payload);
                    ops.extend(applied.writes.into_iter().map(|write| match write {
                        AppWrite::Put { key, value } => WriteOp::Put {
                            key: keys::app_key(&key),
                            value,
                        },
                        AppWrite::Delete { key } => WriteOp::Delete {
                            key: keys::app_key(&key),
                        },
                    }));
                    RaftResponse {
                        payload: applied.response,
                    }
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    RaftResponse::default()
                }
            };
            responses.push(response);
        }
        let Some(last_applied) = last_applied else {
            return Ok(responses);
        };
        ops.push(WriteOp::Put {
            key: keys::APPLIED.to_vec(),
            value: codec::encode("applied log id", &Some(last_applied))?,
        });
        if let Some(membership) = membership {
            ops.push(WriteOp::Put {
                key: keys::MEMBERSHIP.to_vec(),
                value: codec::encode("membership", &membership)?,
            });
        }
        // Not durable: the log is the durable source. A batch lost in a crash leaves records and
        // applied id at an earlier, consistent point (one batch, prefix durability), and
        // openraft re-applies the missing entries from the log at start-up.
        // The write happens under the application lock so readers of the engine (snapshot
        // builds) never see the application ahead of or behind its records.
        self.engine.write(ops, false)?;
        drop(app);
        Ok(responses)
    }

    fn build(&self) -> Result<Snapshot, StoreError> {
        // Held until the snapshot is stored: see the type's docs.
        let _app = read_lock(&self.app)?;
        let records = read_app_records(self.engine.as_ref())?;
        let (last_applied, last_membership) = read_applied_state(self.engine.as_ref())?;
        let blob = SnapshotBlob {
            last_applied,
            last_membership: last_membership.clone(),
            records,
        };
        let data = codec::encode("snapshot blob", &blob)?;
        let counter = self.snapshot_counter.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{counter}", id.leader_id.term, id.index),
            None => format!("0-0-{counter}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        let stored = StoredSnapshot { meta, data };
        // Not durable, like `apply`: the snapshot is derived from durable log and state.
        self.engine.write(
            vec![WriteOp::Put {
                key: keys::SNAPSHOT.to_vec(),
                value: codec::encode("snapshot", &stored)?,
            }],
            false,
        )?;
        tracing::info!(
            snapshot_id = %stored.meta.snapshot_id,
            records = blob.records.len(),
            bytes = stored.data.len(),
            "built snapshot"
        );
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }

    fn install(&self, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StoreError> {
        let blob: SnapshotBlob = codec::decode("snapshot blob", &data)?;
        if blob.last_applied != meta.last_log_id || blob.last_membership != meta.last_membership {
            return Err(StoreError::corrupt(format!(
                "snapshot {} data does not match its meta",
                meta.snapshot_id
            )));
        }
        let mut ops = Vec::with_capacity(blob.records.len() + 4);
        ops.push(WriteOp::DeleteRange {
            from: keys::APP_PREFIX.to_vec(),
            to: keys::APP_END.to_vec(),
        });
        ops.extend(blob.records.iter().map(|(key, value)| WriteOp::Put {
            key: keys::app_key(key),
            value: value.clone(),
        }));
        ops.push(WriteOp::Put {
            key: keys::APPLIED.to_vec(),
            value: codec::encode("applied log id", &meta.last_log_id)?,
        });
        ops.push(WriteOp::Put {
            key: keys::MEMBERSHIP.to_vec(),
            value: codec::encode("membership", &meta.last_membership)?,
        });
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        ops.push(WriteOp::Put {
            key: keys::SNAPSHOT.to_vec(),
            value: codec::encode("snapshot", &stored)?,
        });
        let mut app = write_lock(&self.app)?;
        // Durable: after this returns openraft may purge the log the snapshot replaces and
        // tell the leader the entries are here; losing the install would leave a hole.
        self.engine.write(ops, true)?;
        app.load(blob.records).map_err(StoreError::corrupt)?;
        tracing::info!(snapshot_id = %meta.snapshot_id, "installed snapshot");
        Ok(())
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(
            read_stored_snapshot(self.engine.as_ref())?.map(|stored| Snapshot {
                meta: stored.meta,
                snapshot: Box::new(Cursor::new(stored.data)),
            }),
        )
    }
}

fn read_lock<A>(app: &RwLock<A>) -> Result<RwLockReadGuard<'_, A>, StoreError> {
    app.read().map_err(|_| StoreError::Poisoned {
        what: "application",
    })
}

fn write_lock<A>(app: &RwLock<A>) -> Result<RwLockWriteGuard<'_, A>, StoreError> {
    app.write().map_err(|_| StoreError::Poisoned {
        what: "application",
    })
}

/// Every application record, keys stripped of `a/`, ascending.
fn read_app_records<E: KvEngine + ?Sized>(engine: &E) -> Result<Vec<KvPair>, StoreError> {
    scan_all(engine, keys::APP_PREFIX, keys::APP_END, SCAN_PAGE)?
        .into_iter()
        .map(|(key, value)| match keys::strip_app_prefix(&key) {
            Some(app_key) => Ok((app_key.to_vec(), value)),
            None => Err(StoreError::corrupt(
                "application record outside the a/ prefix",
            )),
        })
        .collect()
}

fn read_applied_state<E: KvEngine + ?Sized>(
    engine: &E,
) -> Result<(Option<LogId>, StoredMembership), StoreError> {
    let applied = match engine.get(keys::APPLIED)? {
        Some(bytes) => codec::decode::<Option<LogId>>("applied log id", &bytes)?,
        None => None,
    };
    let membership = match engine.get(keys::MEMBERSHIP)? {
        Some(bytes) => codec::decode("membership", &bytes)?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

fn read_stored_snapshot<E: KvEngine + ?Sized>(
    engine: &E,
) -> Result<Option<StoredSnapshot>, StoreError> {
    engine
        .get(keys::SNAPSHOT)?
        .map(|bytes| codec::decode("snapshot", &bytes))
        .transpose()
}

/// The `<counter>` of a `<term>-<index>-<counter>` snapshot id; 0 for ids of another shape
/// (a snapshot installed from a leader names it however the leader did).
fn snapshot_counter_of(snapshot_id: &str) -> u64 {
    snapshot_id
        .rsplit('-')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

impl<E: KvEngine, A: Application> RaftSnapshotBuilder<TypeConfig> for StateMachineStore<E, A> {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        self.build()
            .map_err(|e| e.into_storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write))
    }
}

impl<E: KvEngine, A: Application> RaftStateMachine<TypeConfig> for StateMachineStore<E, A> {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        self.read_applied_state()
            .map_err(|e| e.into_storage_error(ErrorSubject::StateMachine, ErrorVerb::Read))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<RaftResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.apply_entries(entries.into_iter())
            .map_err(|e| e.into_storage_error(ErrorSubject::StateMachine, ErrorVerb::Write))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        self.install(meta, snapshot.into_inner()).map_err(|e| {
            e.into_storage_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
            )
        })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        self.current_snapshot()
            .map_err(|e| e.into_storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read))
    }
}

#[cfg(test)]
mod tests;
