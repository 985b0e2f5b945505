//! [`StateMachineStore`]: openraft's state machine and snapshots, hosting an [`Application`].

use std::fmt::Debug;
use std::io::SeekFrom;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;
use std::sync::RwLockWriteGuard;
use std::time::Instant;

use openraft::storage::RaftStateMachine;
use openraft::EntryPayload;
use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use tokio::io::AsyncSeekExt;
use tokio::io::AsyncWriteExt;

use crate::application::AppRecords;
use crate::application::AppWrite;
use crate::application::Application;
use crate::batch;
use crate::codec;
use crate::codec::BlobDecoder;
use crate::codec::Piece;
use crate::codec::SnapshotHead;
use crate::codec::StoredSnapshot;
use crate::engine::for_each_page;
use crate::engine::KvEngine;
use crate::engine::KvRead;
use crate::engine::WriteOp;
use crate::error::StoreError;
use crate::keys;
use crate::observer::SnapshotKind;
use crate::observer::StoreObserver;
use crate::snapshot_file::chunk_op;
use crate::snapshot_file::read_snapshot_head;
use crate::snapshot_file::Lease;
use crate::snapshot_file::SlotTable;
use crate::snapshot_file::SnapshotFile;
use crate::types::Entry;
use crate::types::LogId;
use crate::types::RaftResponse;
use crate::types::Snapshot;
use crate::types::SnapshotMeta;
use crate::types::StorageError;
use crate::types::StoredMembership;
use crate::types::TypeConfig;

/// Records read per engine call when snapshotting the application.
const SCAN_PAGE: usize = 4096;

/// Bytes of snapshot data per stored chunk (chunk 0 aside: see [`crate::snapshot_file`]). A
/// build stores its data one chunk per engine write as it encodes it, so applies and log
/// appends interleave with it, and neither it nor a sender or receiver holds more than a chunk
/// or two of a snapshot.
const STORED_CHUNK_BYTES: usize = 1 << 20;

/// Bytes of application records per engine batch when a snapshot is installed.
const INSTALL_BATCH_BYTES: usize = 8 << 20;

/// The replicated state machine of one member: the application's records under `a/`, the
/// applied log id and membership under `s/`, and the current snapshot (its head under `s/`,
/// its data in chunks under `c/`).
///
/// Clones share everything; openraft's snapshot builder is a clone.
///
/// Concurrency: `apply` and `install_snapshot` hold the application's write lock across their
/// engine batch, which also carries the applied log id, so every engine state between two
/// batches is a consistent point of the state machine. A snapshot build takes no lock on the
/// application: it reads a [`KvEngine::view`] (taken between two batches) on a blocking thread
/// while applies and reads go on. Storing a snapshot (the end of a build, and an install)
/// holds `store_lock`, and a build never replaces a stored snapshot that is newer than its
/// own (an install can land while a build runs: openraft builds in a separate task). Builds,
/// receives and readers of snapshots each lease their chunk slot from `slots`.
///
/// One store (with its clones) per engine at a time.
pub struct StateMachineStore<E: KvEngine, A: Application> {
    /// Shared with the log store of the same member.
    engine: Arc<E>,
    /// The application; the node reads it directly for queries.
    app: Arc<RwLock<A>>,
    /// The third part of snapshot ids; continues from the stored snapshot after a restart.
    snapshot_counter: Arc<AtomicU64>,
    /// Held while a snapshot is stored.
    store_lock: Arc<Mutex<()>>,
    /// The snapshot chunk slots and who uses them.
    slots: Arc<SlotTable>,
    /// Records in the last snapshot built or installed.
    snapshot_records: Arc<AtomicU64>,
    /// Told how long applies and snapshots take (the node's metrics); none in tests.
    observer: Option<Arc<dyn StoreObserver>>,
}

/// How large the state machine's last snapshot was, for a snapshot policy that spaces
/// snapshots by the size of the state (see [`StateMachineStore::snapshot_size`]).
#[derive(Clone, Debug)]
pub struct SnapshotSize(Arc<AtomicU64>);

impl SnapshotSize {
    /// Application records in the last snapshot built or installed (persisted with it, so
    /// known at start-up without reading the state); 0 before the first one.
    pub fn records(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl<E: KvEngine, A: Application> Clone for StateMachineStore<E, A> {
    fn clone(&self) -> Self {
        Self {
            engine: Arc::clone(&self.engine),
            app: Arc::clone(&self.app),
            snapshot_counter: Arc::clone(&self.snapshot_counter),
            store_lock: Arc::clone(&self.store_lock),
            slots: Arc::clone(&self.slots),
            snapshot_records: Arc::clone(&self.snapshot_records),
            observer: self.observer.clone(),
        }
    }
}

impl<E: KvEngine, A: Application> Debug for StateMachineStore<E, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore").finish_non_exhaustive()
    }
}

impl<E: KvEngine, A: Application> StateMachineStore<E, A> {
    /// Opens the state machine stored in `engine` and opens `app` over its records
    /// (replacing whatever `app` held), writing what `app` asks for.
    pub fn new(engine: Arc<E>, app: Arc<RwLock<A>>) -> Result<Self, StoreError> {
        Self::with_chunk_bytes(engine, app, STORED_CHUNK_BYTES)
    }

    /// [`new`](Self::new), storing snapshots in chunks of `chunk_bytes` (tests use small ones;
    /// a store must be opened with the chunk size its snapshots were stored with).
    fn with_chunk_bytes(
        engine: Arc<E>,
        app: Arc<RwLock<A>>,
        chunk_bytes: usize,
    ) -> Result<Self, StoreError> {
        migrate_legacy_snapshot(engine.as_ref())?;
        finish_interrupted_install(engine.as_ref())?;
        clear_unused_slots(engine.as_ref())?;
        open_app(&engine, &mut *write_lock(&app)?)?;
        let snapshot_records = match engine.get(keys::SNAPSHOT_RECORDS)? {
            Some(bytes) => codec::decode("snapshot record count", &bytes)?,
            None => 0,
        };
        let next_counter = match read_snapshot_head(engine.as_ref())? {
            Some(head) => snapshot_counter_of(&head.meta.snapshot_id).saturating_add(1),
            None => 1,
        };
        let slots = SlotTable::new(engine.clone(), chunk_bytes);
        Ok(Self {
            engine,
            app,
            snapshot_counter: Arc::new(AtomicU64::new(next_counter)),
            store_lock: Arc::new(Mutex::new(())),
            slots,
            snapshot_records: Arc::new(AtomicU64::new(snapshot_records)),
            observer: None,
        })
    }

    /// This store, telling `observer` how long its applies and snapshots take. Set it before
    /// the store is handed to openraft: clones made earlier do not see it.
    pub fn with_observer(mut self, observer: Arc<dyn StoreObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs `work` and tells the observer how long it took, as `report` says.
    fn timed<T>(
        &self,
        work: impl FnOnce() -> T,
        report: impl FnOnce(&dyn StoreObserver, &T, std::time::Duration),
    ) -> T {
        let Some(observer) = self.observer.as_deref() else {
            return work();
        };
        let started = Instant::now();
        let out = work();
        report(observer, &out, started.elapsed());
        out
    }

    /// The size of the last snapshot, shared with this store (and its clones).
    pub fn snapshot_size(&self) -> SnapshotSize {
        SnapshotSize(Arc::clone(&self.snapshot_records))
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
                EntryPayload::Normal(request) => RaftResponse {
                    payload: apply_payload(&mut *app, index, &request.payload, &mut ops)?,
                },
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
        app.persisted();
        drop(app);
        Ok(responses)
    }

    /// Builds a snapshot of the state at the moment it starts; blocking (run it off the async
    /// workers). Applies go on meanwhile: see the type's docs.
    ///
    /// The records are encoded as they are read and stored as each chunk fills, into a slot
    /// leased for the build; the header goes into chunk 0 last. The returned snapshot reads
    /// them back from the slot.
    fn build(&self) -> Result<Snapshot, StoreError> {
        let view = self.engine.view()?;
        let (last_applied, last_membership) = read_applied_state(view.as_ref())?;
        let lease = self.slots.lease_for_writing()?;
        let engine = self.engine.as_ref();
        let (len, records) = encode_snapshot(
            view.as_ref(),
            &last_applied,
            &last_membership,
            self.slots.chunk_bytes(),
            |index, data| engine.write(vec![chunk_op(lease.slot(), index, data)], false),
        )?;
        drop(view);
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
        let stored = self.store_built(&meta, lease.slot(), len, records)?;
        if stored {
            self.snapshot_records.store(records, Ordering::Relaxed);
        }
        tracing::info!(
            snapshot_id = %meta.snapshot_id,
            records,
            bytes = len,
            stored,
            "built snapshot"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotFile::reader(lease.into_reader()?, len)),
        })
    }

    /// Makes a built snapshot, stored in `slot`, the current one, unless the current one is
    /// newer (an install that landed while this one was built); says whether it did.
    ///
    /// One batch points the head at it and drops the slot of the one it replaces (unless that
    /// one is being sent; then the last reader drops it). Not durable, like `apply`: the
    /// snapshot is derived from durable log and state, and the log purge that follows it is a
    /// durable write, which makes this one durable too (prefix durability).
    fn store_built(
        &self,
        meta: &SnapshotMeta,
        slot: u8,
        len: u64,
        records: u64,
    ) -> Result<bool, StoreError> {
        let _storing = lock(&self.store_lock)?;
        let current = read_snapshot_head(self.engine.as_ref())?;
        if current
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > meta.last_log_id)
        {
            return Ok(false);
        }
        self.slots
            .switch_head(head_ops(meta, slot, len, records)?, slot, false)?;
        Ok(true)
    }

    /// Installs a snapshot whose data, `len` bytes, was received into the slot `lease` holds,
    /// in bounded engine batches (the records are decoded from the stored chunks one at a
    /// time, never collected):
    ///
    /// 1. (done while receiving: the data went into a free slot, a chunk per write;)
    /// 2. one durable batch records the install ([`keys::INSTALLING`], the new head) and drops
    ///    the application records;
    /// 3. the snapshot's records go in, [`INSTALL_BATCH_BYTES`] per batch;
    /// 4. one durable batch sets the applied log id, the membership and the head, drops the
    ///    previous snapshot's slot and the install record.
    ///
    /// A crash between 2 and 4 leaves the install record: opening the store finishes the
    /// install from the stored chunks ([`finish_interrupted_install`]) before anything reads
    /// the state, so no state between two snapshots is ever served.
    fn install(&self, meta: &SnapshotMeta, lease: &Lease, len: u64) -> Result<(), StoreError> {
        let head = SnapshotHead {
            meta: meta.clone(),
            slot: lease.slot(),
            len,
        };
        let engine = self.engine.as_ref();
        let (last_applied, last_membership, records) =
            codec::open_snapshot_blob(stored_chunks(engine, &head), len)?;
        if last_applied != meta.last_log_id || last_membership != meta.last_membership {
            return Err(StoreError::corrupt(format!(
                "snapshot {} data does not match its meta",
                meta.snapshot_id
            )));
        }
        let _storing = lock(&self.store_lock)?;
        let mut app = write_lock(&self.app)?;
        let records = ingest_snapshot(engine, &head, records, |ops| {
            self.slots.switch_head(ops, head.slot, true)
        })?;
        open_app(&self.engine, &mut *app)?;
        self.snapshot_records.store(records, Ordering::Relaxed);
        tracing::info!(snapshot_id = %meta.snapshot_id, records, bytes = len, "installed snapshot");
        Ok(())
    }

    /// The whole data of a snapshot to install, stored in a slot of this store: `file` itself
    /// when it received the data (the last chunk is stored now), else a copy of what `file`
    /// reads (a snapshot of another store, as openraft's storage suite hands over).
    async fn received(&self, mut file: Box<SnapshotFile>) -> Result<(Arc<Lease>, u64), StoreError> {
        let io_error = |source| StoreError::Io {
            what: "receiving a snapshot",
            source,
        };
        if file.writes_into(&self.slots) {
            file.shutdown().await.map_err(io_error)?;
            return (*file).into_received();
        }
        let mut copy = SnapshotFile::writer(self.slots.lease_for_writing()?);
        file.seek(SeekFrom::Start(0)).await.map_err(io_error)?;
        tokio::io::copy(&mut *file, &mut copy)
            .await
            .map_err(io_error)?;
        copy.shutdown().await.map_err(io_error)?;
        copy.into_received()
    }

    /// Receives (if needed) and installs a snapshot: see [`install`](Self::install).
    async fn install_file(
        &self,
        meta: &SnapshotMeta,
        file: Box<SnapshotFile>,
    ) -> Result<(), StoreError> {
        let (lease, len) = self.received(file).await?;
        let this = self.clone();
        let meta = meta.clone();
        // Writing the whole state is long disk work: off the async workers.
        tokio::task::spawn_blocking(move || this.install(&meta, &lease, len))
            .await
            .map_err(|source| StoreError::Task {
                what: "snapshot install",
                source,
            })?
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        // The lease keeps the slot as it is while the snapshot is read, even if a newer one
        // becomes current meanwhile.
        let Some((head, lease)) = self.slots.open_current()? else {
            return Ok(None);
        };
        Ok(Some(Snapshot {
            meta: head.meta,
            snapshot: Box::new(SnapshotFile::reader(lease, head.len)),
        }))
    }
}

/// The ops storing `data` in chunks of `slot`, every one `chunk_bytes` long but the last.
fn chunk_ops(slot: u8, data: &[u8], chunk_bytes: usize) -> impl Iterator<Item = WriteOp> + '_ {
    data.chunks(chunk_bytes)
        .zip(0u32..)
        .map(move |(chunk, index)| chunk_op(slot, index, chunk.to_vec()))
}

/// Deletes the chunks of every slot but the current snapshot's: what a build or receive that
/// a crash or a restart interrupted left.
fn clear_unused_slots<E: KvEngine + ?Sized>(engine: &E) -> Result<(), StoreError> {
    let ops = match read_snapshot_head(engine)? {
        Some(head) => {
            let (from, to) = keys::chunk_range(head.slot);
            vec![
                WriteOp::DeleteRange {
                    from: keys::CHUNK_PREFIX.to_vec(),
                    to: from,
                },
                WriteOp::DeleteRange {
                    from: to,
                    to: keys::CHUNK_END.to_vec(),
                },
            ]
        }
        None => vec![WriteOp::DeleteRange {
            from: keys::CHUNK_PREFIX.to_vec(),
            to: keys::CHUNK_END.to_vec(),
        }],
    };
    engine.write(ops, false)
}

/// The op making the snapshot `meta`, whose `len` bytes of data are in `slot`, the current one.
fn head_op(meta: &SnapshotMeta, slot: u8, len: u64) -> Result<WriteOp, StoreError> {
    let head = SnapshotHead {
        meta: meta.clone(),
        slot,
        len,
    };
    Ok(WriteOp::Put {
        key: keys::SNAPSHOT_HEAD.to_vec(),
        value: codec::encode("snapshot head", &head)?,
    })
}

/// [`head_op`] and the number of application `records` in the snapshot (read at start-up by
/// the snapshot policy, without reading the snapshot).
fn head_ops(
    meta: &SnapshotMeta,
    slot: u8,
    len: u64,
    records: u64,
) -> Result<Vec<WriteOp>, StoreError> {
    Ok(vec![
        head_op(meta, slot, len)?,
        WriteOp::Put {
            key: keys::SNAPSHOT_RECORDS.to_vec(),
            value: codec::encode("snapshot record count", &records)?,
        },
    ])
}

/// Opens `app` over `engine`'s application records and writes, durably, the records its
/// opening asks for.
fn open_app<E: KvEngine, A: Application>(engine: &Arc<E>, app: &mut A) -> Result<(), StoreError> {
    let reader: Arc<dyn KvRead + Send + Sync> = engine.clone();
    let writes = app
        .open(AppRecords::new(reader))
        .map_err(StoreError::corrupt)?;
    if !writes.is_empty() {
        tracing::info!(records = writes.len(), "application upgraded its records");
        engine.write(app_ops(writes).collect(), true)?;
    }
    Ok(())
}

/// Replaces the application records with those of the snapshot `head` names, which `records`
/// decodes from its stored chunks, and makes it the current snapshot with `finish` (which
/// writes the last batch it is given, durably): steps 2 to 4 of
/// [`StateMachineStore::install`]. Returns the number of records.
fn ingest_snapshot<E, F>(
    engine: &E,
    head: &SnapshotHead,
    mut records: BlobDecoder<F>,
    finish: impl FnOnce(Vec<WriteOp>) -> Result<(), StoreError>,
) -> Result<u64, StoreError>
where
    E: KvEngine + ?Sized,
    F: FnMut() -> Piece,
{
    let count = records.remaining() as u64;
    // Durable: from here on the records are not a state of the machine until the last batch.
    engine.write(
        vec![
            WriteOp::Put {
                key: keys::INSTALLING.to_vec(),
                value: codec::encode("snapshot being installed", head)?,
            },
            WriteOp::DeleteRange {
                from: keys::APP_PREFIX.to_vec(),
                to: keys::APP_END.to_vec(),
            },
        ],
        true,
    )?;
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some((key, value)) = records.next_record()? {
        bytes += key.len() + value.len();
        batch.push(WriteOp::Put {
            key: keys::app_key(&key),
            value,
        });
        if bytes >= INSTALL_BATCH_BYTES {
            engine.write(std::mem::take(&mut batch), false)?;
            bytes = 0;
        }
    }
    let mut last = batch;
    last.extend([
        WriteOp::Put {
            key: keys::APPLIED.to_vec(),
            value: codec::encode("applied log id", &head.meta.last_log_id)?,
        },
        WriteOp::Put {
            key: keys::MEMBERSHIP.to_vec(),
            value: codec::encode("membership", &head.meta.last_membership)?,
        },
        WriteOp::Delete {
            key: keys::INSTALLING.to_vec(),
        },
    ]);
    last.extend(head_ops(&head.meta, head.slot, head.len, count)?);
    // Durable: after this returns openraft may purge the log the snapshot replaces and tell
    // the leader the entries are here; losing the install would leave a hole.
    finish(last)?;
    Ok(count)
}

/// Finishes a snapshot install a crash interrupted (the install record is present), from the
/// data stored in its slot; nothing when there is none.
fn finish_interrupted_install<E: KvEngine + ?Sized>(engine: &E) -> Result<(), StoreError> {
    let Some(bytes) = engine.get(keys::INSTALLING)? else {
        return Ok(());
    };
    let head: SnapshotHead = codec::decode("snapshot being installed", &bytes)?;
    let (_, _, records) = codec::open_snapshot_blob(stored_chunks(engine, &head), head.len)?;
    // The slot of the snapshot it replaces is cleared with every unused one after this.
    let records = ingest_snapshot(engine, &head, records, |ops| engine.write(ops, true))?;
    tracing::warn!(
        snapshot_id = %head.meta.snapshot_id,
        records,
        "finished a snapshot install that was interrupted"
    );
    Ok(())
}

/// The engine ops of an application's record writes.
fn app_ops(writes: Vec<AppWrite>) -> impl Iterator<Item = WriteOp> {
    writes.into_iter().map(|write| match write {
        AppWrite::Put { key, value } => WriteOp::Put {
            key: keys::app_key(&key),
            value,
        },
        AppWrite::Delete { key } => WriteOp::Delete {
            key: keys::app_key(&key),
        },
    })
}

/// Encodes the snapshot blob of `reader`'s application records page by page, handing each
/// stored chunk to `store` (index, bytes) as soon as it is complete: the records in chunks 1,
/// 2, … of `chunk_bytes`, then the header, known once they are counted, as chunk 0. Returns
/// the blob's length and the number of records.
fn encode_snapshot<R: KvRead + ?Sized>(
    reader: &R,
    last_applied: &Option<LogId>,
    last_membership: &StoredMembership,
    chunk_bytes: usize,
    mut store: impl FnMut(u32, Vec<u8>) -> Result<(), StoreError>,
) -> Result<(u64, u64), StoreError> {
    let mut encoder = codec::BlobEncoder::new(chunk_bytes);
    let mut next = 1u32;
    let mut len = 0u64;
    let mut put = |index: &mut u32, chunk: Vec<u8>| {
        len += chunk.len() as u64;
        store(*index, chunk)?;
        *index = index
            .checked_add(1)
            .ok_or_else(|| StoreError::corrupt("a snapshot of more than 2^32 chunks"))?;
        Ok::<_, StoreError>(())
    };
    for_each_page(
        keys::APP_PREFIX,
        SCAN_PAGE,
        |start, n| reader.scan(start, keys::APP_END, n),
        |page| {
            for (key, value) in &page {
                encoder.record(app_key_of(key)?, value)?;
                while let Some(chunk) = encoder.take_full() {
                    put(&mut next, chunk)?;
                }
            }
            Ok(())
        },
    )?;
    let (header, rest, records) = encoder.finish(last_applied, last_membership)?;
    if !rest.is_empty() {
        put(&mut next, rest)?;
    }
    put(&mut 0, header)?;
    Ok((len, records))
}

/// The stored chunks of the snapshot `head` names, one per call, in order, checked against its
/// length (a [`Piece`] source for [`codec::open_snapshot_blob`]).
fn stored_chunks<'a, R: KvRead + ?Sized>(
    reader: &'a R,
    head: &'a SnapshotHead,
) -> impl FnMut() -> Piece + 'a {
    let mut index = 0u32;
    let mut read = 0u64;
    move || {
        if read >= head.len {
            return Ok(None);
        }
        let chunk = reader
            .get(&keys::chunk_key(head.slot, index))?
            .ok_or_else(|| {
                StoreError::corrupt(format!(
                    "snapshot {} has {read} bytes stored of {}",
                    head.meta.snapshot_id, head.len
                ))
            })?;
        read += chunk.len() as u64;
        if read > head.len {
            return Err(StoreError::corrupt(format!(
                "snapshot {} has more than its {} bytes stored",
                head.meta.snapshot_id, head.len
            )));
        }
        index = index.saturating_add(1);
        Ok(Some(chunk))
    }
}

/// Moves a snapshot stored in one value (before 0.12) to the chunked layout, in one durable
/// batch; nothing when there is none.
fn migrate_legacy_snapshot<E: KvEngine + ?Sized>(engine: &E) -> Result<(), StoreError> {
    let Some(bytes) = engine.get(keys::LEGACY_SNAPSHOT)? else {
        return Ok(());
    };
    let legacy: StoredSnapshot = codec::decode("snapshot", &bytes)?;
    let mut ops = vec![WriteOp::DeleteRange {
        from: keys::CHUNK_PREFIX.to_vec(),
        to: keys::CHUNK_END.to_vec(),
    }];
    ops.extend(chunk_ops(0, &legacy.data, STORED_CHUNK_BYTES));
    ops.push(head_op(&legacy.meta, 0, legacy.data.len() as u64)?);
    ops.push(WriteOp::Delete {
        key: keys::LEGACY_SNAPSHOT.to_vec(),
    });
    engine.write(ops, true)?;
    tracing::info!(snapshot_id = %legacy.meta.snapshot_id, "moved the stored snapshot to chunks");
    Ok(())
}

fn lock(mutex: &Mutex<()>) -> Result<std::sync::MutexGuard<'_, ()>, StoreError> {
    mutex.lock().map_err(|_| StoreError::Poisoned {
        what: "snapshot store",
    })
}

/// The application key of an engine key in the `a/` range.
fn app_key_of(key: &[u8]) -> Result<&[u8], StoreError> {
    keys::strip_app_prefix(key)
        .ok_or_else(|| StoreError::corrupt("application record outside the a/ prefix"))
}

/// Applies one normal entry's payload (each payload of a batch, in order, at the same index);
/// adds its record writes to `ops` and returns the response.
fn apply_payload<A: Application>(
    app: &mut A,
    index: u64,
    payload: &[u8],
    ops: &mut Vec<WriteOp>,
) -> Result<Vec<u8>, StoreError> {
    let mut apply_one = |payload: &[u8]| {
        let applied = app.apply(index, payload).map_err(StoreError::corrupt)?;
        ops.extend(app_ops(applied.writes));
        Ok::<_, StoreError>(applied.response)
    };
    if payload.first() != Some(&batch::BATCH_MARKER) {
        return apply_one(payload);
    }
    let Some(payloads) = batch::decode_batch(payload) else {
        // Only a leader's batcher writes the marker; an entry that carries it and is no
        // batch is answered empty and changes nothing, on every member alike.
        tracing::warn!(index, "malformed batch entry ignored");
        return Ok(Vec::new());
    };
    let responses = payloads
        .iter()
        .map(|p| apply_one(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(batch::encode_batch(responses.iter().map(Vec::as_slice)).unwrap_or_default())
}

fn write_lock<A>(app: &RwLock<A>) -> Result<RwLockWriteGuard<'_, A>, StoreError> {
    app.write().map_err(|_| StoreError::Poisoned {
        what: "application",
    })
}

fn read_applied_state<R: KvRead + ?Sized>(
    reader: &R,
) -> Result<(Option<LogId>, StoredMembership), StoreError> {
    let applied = match reader.get(keys::APPLIED)? {
        Some(bytes) => codec::decode::<Option<LogId>>("applied log id", &bytes)?,
        None => None,
    };
    let membership = match reader.get(keys::MEMBERSHIP)? {
        Some(bytes) => codec::decode("membership", &bytes)?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
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
        // Reading and encoding the whole state is long CPU and disk work: off the async
        // workers, which carry heartbeats and requests.
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.timed(
                || this.build(),
                |o, _, took| o.snapshot(SnapshotKind::Build, took),
            )
        })
        .await
        .map_err(|source| StoreError::Task {
            what: "snapshot build",
            source,
        })
        .and_then(|built| built)
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
        self.timed(
            || self.apply_entries(entries.into_iter()),
            // One response per entry applied (none counted for a failed batch).
            |o, applied, took| o.applied(applied.as_ref().map_or(0, Vec::len), took),
        )
        .map_err(|e| e.into_storage_error(ErrorSubject::StateMachine, ErrorVerb::Write))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        self.slots
            .lease_for_writing()
            .map(|lease| Box::new(SnapshotFile::writer(lease)))
            .map_err(|e| e.into_storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        let started = Instant::now();
        let installed = self.install_file(meta, snapshot).await;
        if let Some(observer) = self.observer.as_deref() {
            observer.snapshot(SnapshotKind::Install, started.elapsed());
        }
        installed.map_err(|e| {
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
