//! Unit tests of the state machine store over `MemKvEngine`.

use std::collections::BTreeSet;
use std::io::SeekFrom;
use std::sync::mpsc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use openraft::storage::RaftLogStorageExt;
use openraft::storage::RaftStateMachine;
use openraft::testing::blank_ent;
use openraft::testing::log_id;
use openraft::testing::membership_ent;
use openraft::EntryPayload;
use openraft::RaftSnapshotBuilder;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncSeekExt;
use tokio::io::AsyncWriteExt;

use super::STORED_CHUNK_BYTES;
use crate::codec;
use crate::codec::SnapshotBlob;
use crate::codec::StoredSnapshot;
use crate::keys;
use crate::mem_engine::MemKvEngine;
use crate::open_stores;
use crate::testing::CounterApp;
use crate::types::Entry;
use crate::types::RaftRequest;
use crate::types::TypeConfig;
use crate::types::Vote;
use crate::KvEngine;
use crate::KvPair;
use crate::KvRead;
use crate::LogStore;
use crate::SnapshotFile;
use crate::StateMachineStore;
use crate::StoreError;
use crate::WriteOp;

type Stores = (
    LogStore<MemKvEngine>,
    StateMachineStore<MemKvEngine, CounterApp>,
);

fn open(engine: &MemKvEngine) -> (Stores, Arc<RwLock<CounterApp>>) {
    let app = Arc::new(RwLock::new(CounterApp::new()));
    let stores = open_stores(Arc::new(engine.clone()), Arc::clone(&app)).expect("open stores");
    (stores, app)
}

fn add(term: u64, index: u64, name: &[u8], amount: u64) -> Entry {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(RaftRequest {
            payload: CounterApp::command(name, amount),
        }),
    }
}

type Sm = StateMachineStore<MemKvEngine, CounterApp>;

/// A snapshot built now.
async fn build(sm: &mut Sm) -> crate::types::Snapshot {
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build")
}

/// The current snapshot (there must be one).
async fn current_of(sm: &mut Sm) -> crate::types::Snapshot {
    sm.get_current_snapshot()
        .await
        .expect("current")
        .expect("some snapshot")
}

/// Every byte of a snapshot's data, read from its stored chunks.
async fn bytes_of(file: &mut SnapshotFile) -> Vec<u8> {
    file.seek(SeekFrom::Start(0)).await.expect("seek");
    let mut out = Vec::new();
    file.read_to_end(&mut out).await.expect("read");
    out
}

/// [`bytes_of`] outside a runtime (for the tests that run builds on threads).
fn bytes_blocking(file: &mut SnapshotFile) -> Vec<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bytes_of(file))
}

/// What openraft's receiving side does with a snapshot sent in pieces of `piece` bytes: a file
/// from `begin_receiving_snapshot`, each piece written at its offset (every third one sent
/// twice, as after a lost answer), shut down at the end.
async fn receive<E: KvEngine>(
    sm: &mut StateMachineStore<E, CounterApp>,
    data: &[u8],
    piece: usize,
) -> Box<SnapshotFile> {
    let mut file = sm.begin_receiving_snapshot().await.expect("begin");
    for (i, chunk) in data.chunks(piece).enumerate() {
        let offset = (i * piece) as u64;
        let times = if i % 3 == 2 { 2 } else { 1 };
        for _ in 0..times {
            file.seek(SeekFrom::Start(offset)).await.expect("seek");
            file.write_all(chunk).await.expect("write");
        }
    }
    file.shutdown().await.expect("shutdown");
    file
}

fn voters(ids: &[u64]) -> Vec<BTreeSet<u64>> {
    vec![ids.iter().copied().collect()]
}

fn counters(app: &Arc<RwLock<CounterApp>>) -> Vec<(Vec<u8>, u64)> {
    app.read()
        .expect("app lock")
        .counters()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[tokio::test]
async fn apply_answers_per_entry_and_records_applied_state() {
    let engine = MemKvEngine::new();
    let ((_, mut sm), app) = open(&engine);
    let responses = sm
        .apply(vec![
            blank_ent::<TypeConfig>(1, 1, 1),
            membership_ent::<TypeConfig>(1, 1, 2, voters(&[1, 2, 3])),
            add(1, 3, b"a", 5),
            add(1, 4, b"a", 2),
        ])
        .await
        .expect("apply");
    let sums: Vec<Option<u64>> = responses
        .iter()
        .map(|r| CounterApp::decode_response(&r.payload))
        .collect();
    assert_eq!(sums, vec![None, None, Some(5), Some(7)]);
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 1, 4)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1, 2)));
    assert_eq!(app.read().expect("app lock").get(b"a"), Some(7));
    assert_eq!(
        engine.get(&crate::keys::app_key(b"a")).expect("get"),
        Some(7u64.to_be_bytes().to_vec())
    );
}

#[tokio::test]
async fn restart_on_the_same_engine_keeps_log_vote_applied_state_and_records() {
    let engine = MemKvEngine::new();
    let ((mut log, mut sm), _) = open(&engine);
    let entries = vec![
        membership_ent::<TypeConfig>(1, 1, 1, voters(&[1])),
        add(1, 2, b"x", 10),
        add(1, 3, b"y", 1),
        add(1, 4, b"x", 5),
    ];
    log.blocking_append(entries.clone()).await.expect("append");
    log.save_vote(&Vote::new(1, 1)).await.expect("vote");
    log.save_committed(Some(log_id(1, 1, 4)))
        .await
        .expect("committed");
    sm.apply(entries).await.expect("apply");
    drop((log, sm));

    let ((mut log, mut sm), app) = open(&engine);
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(1, 1)));
    assert_eq!(
        log.read_committed().await.expect("committed"),
        Some(log_id(1, 1, 4))
    );
    assert_eq!(
        log.get_log_state().await.expect("log state").last_log_id,
        Some(log_id(1, 1, 4))
    );
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 1, 4)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1, 1)));
    assert_eq!(
        counters(&app),
        vec![(b"x".to_vec(), 15), (b"y".to_vec(), 1)]
    );

    // Applying continues from the loaded state.
    let responses = sm.apply(vec![add(1, 5, b"x", 1)]).await.expect("apply");
    assert_eq!(CounterApp::decode_response(&responses[0].payload), Some(16));
}

#[tokio::test]
async fn snapshot_installed_into_a_fresh_store_reproduces_records_and_applied_id() {
    let leader_engine = MemKvEngine::new();
    let ((_, mut leader), leader_app) = open(&leader_engine);
    leader
        .apply(vec![
            membership_ent::<TypeConfig>(2, 1, 1, voters(&[1, 2])),
            add(2, 2, b"k1", 4),
            add(2, 3, b"k2", 9),
        ])
        .await
        .expect("apply");
    let snapshot = build(&mut leader).await;
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(2, 1, 3)));
    assert_eq!(snapshot.meta.snapshot_id, "2-3-1");

    // A follower that already had other state: the install replaces it completely.
    let follower_engine = MemKvEngine::new();
    let ((_, mut follower), follower_app) = open(&follower_engine);
    follower
        .apply(vec![add(1, 1, b"stale", 1)])
        .await
        .expect("apply");

    let mut snapshot = snapshot;
    let data = bytes_of(&mut snapshot.snapshot).await;
    let receiving = receive(&mut follower, &data, 7).await;
    follower
        .install_snapshot(&snapshot.meta, receiving)
        .await
        .expect("install");

    assert_eq!(counters(&follower_app), counters(&leader_app));
    assert_eq!(
        follower.applied_state().await.expect("applied"),
        leader.applied_state().await.expect("applied")
    );
    let current = current_of(&mut follower).await;
    assert_eq!(current.meta, snapshot.meta);

    // The installed state, including the current snapshot, survives a restart.
    drop(follower);
    let ((_, mut restarted), restarted_app) = open(&follower_engine);
    assert_eq!(counters(&restarted_app), counters(&leader_app));
    let current = current_of(&mut restarted).await;
    assert_eq!(current.meta, snapshot.meta);
}

#[tokio::test]
async fn current_snapshot_and_counter_survive_a_restart() {
    let engine = MemKvEngine::new();
    let ((_, mut sm), _) = open(&engine);
    sm.apply(vec![add(1, 1, b"a", 1)]).await.expect("apply");
    let mut first = sm.build_snapshot().await.expect("build");
    let first_data = bytes_of(&mut first.snapshot).await;
    let first_meta = first.meta.clone();
    drop((sm, first));

    let ((_, mut sm), _) = open(&engine);
    let mut current = current_of(&mut sm).await;
    assert_eq!(current.meta, first_meta);
    assert_eq!(bytes_of(&mut current.snapshot).await, first_data);
    drop(current);
    let second = sm.build_snapshot().await.expect("build");
    assert_eq!(second.meta.snapshot_id, "1-1-2");
}

#[tokio::test]
async fn install_rejects_data_that_does_not_match_the_meta() {
    let engine = MemKvEngine::new();
    let ((_, mut sm), _) = open(&engine);
    sm.apply(vec![add(1, 1, b"a", 1)]).await.expect("apply");
    let snapshot = sm.build_snapshot().await.expect("build");
    let mut meta = snapshot.meta.clone();
    meta.last_log_id = Some(log_id(1, 1, 99));
    let err = sm
        .install_snapshot(&meta, snapshot.snapshot)
        .await
        .expect_err("must fail");
    assert!(err.to_string().contains("does not match"), "{err}");
}

/// A [`MemKvEngine`] whose next view, once armed, stops in its first `scan` until released:
/// a snapshot build held in the middle of reading the state.
#[derive(Default)]
struct GatedEngine {
    inner: MemKvEngine,
    /// Told when the held scan starts.
    entered: Mutex<Option<mpsc::Sender<()>>>,
    /// Waited on by the held scan.
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

impl GatedEngine {
    /// Arms the gate: returns (the scan has started, let it go on).
    fn arm(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        *self.entered.lock().expect("lock") = Some(entered_tx);
        *self.release.lock().expect("lock") = Some(release_rx);
        (entered_rx, release_tx)
    }
}

struct GatedView<'a> {
    inner: Box<dyn KvRead + 'a>,
    engine: &'a GatedEngine,
}

impl KvRead for GatedView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        let entered = self.engine.entered.lock().expect("lock").take();
        if let Some(entered) = entered {
            let _ = entered.send(());
            let release = self.engine.release.lock().expect("lock").take();
            if let Some(release) = release {
                let _ = release.recv();
            }
        }
        self.inner.scan(from, to, limit)
    }
}

impl KvRead for GatedEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        self.inner.scan(from, to, limit)
    }
}

impl KvEngine for GatedEngine {
    fn write(&self, ops: Vec<WriteOp>, durable: bool) -> Result<(), StoreError> {
        self.inner.write(ops, durable)
    }

    fn view(&self) -> Result<Box<dyn KvRead + '_>, StoreError> {
        Ok(Box::new(GatedView {
            inner: self.inner.view()?,
            engine: self,
        }))
    }
}

type GatedStore = StateMachineStore<GatedEngine, CounterApp>;

fn open_gated() -> (Arc<GatedEngine>, GatedStore, Arc<RwLock<CounterApp>>) {
    let engine = Arc::new(GatedEngine::default());
    let app = Arc::new(RwLock::new(CounterApp::new()));
    let sm = StateMachineStore::new(Arc::clone(&engine), Arc::clone(&app)).expect("open");
    (engine, sm, app)
}

/// Starts a build held in its first read of the state; returns it and its release.
fn held_build(
    engine: &GatedEngine,
    sm: &GatedStore,
) -> (
    std::thread::JoinHandle<Result<crate::types::Snapshot, StoreError>>,
    mpsc::Sender<()>,
) {
    let (entered, release) = engine.arm();
    let builder = sm.clone();
    let build = std::thread::spawn(move || builder.build());
    entered.recv().expect("the build reads the state");
    (build, release)
}

/// Generous bound for work that must not wait for the held build; only reached if it does.
const MUST_NOT_WAIT: Duration = Duration::from_secs(60);

#[test]
fn applies_and_reads_go_on_while_a_build_reads_the_state() {
    let (engine, sm, app) = open_gated();
    sm.apply_entries(vec![add(1, 1, b"a", 1), add(1, 2, b"b", 2)].into_iter())
        .expect("apply");
    let (build, release) = held_build(&engine, &sm);

    // The build is inside its read of the state; an apply (which takes the application's
    // write lock) and a read of the application both finish without it.
    let (done_tx, done_rx) = mpsc::channel();
    let applier = sm.clone();
    let reader = Arc::clone(&app);
    std::thread::spawn(move || {
        let applied = applier.apply_entries(vec![add(1, 3, b"a", 10)].into_iter());
        let read = reader.read().map(|a| a.counters().len()).ok();
        let _ = done_tx.send((applied.is_ok(), read));
    });
    let done = done_rx.recv_timeout(MUST_NOT_WAIT);
    release.send(()).expect("release");
    assert_eq!(
        done.expect("an apply and a read finished while the build was held"),
        (true, Some(2))
    );

    // The build saw the state as it was when it started, and became the current snapshot.
    let mut built = build.join().expect("build thread").expect("build");
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 1, 2)));
    let blob: SnapshotBlob =
        codec::decode("blob", &bytes_blocking(&mut built.snapshot)).expect("decode");
    assert_eq!(blob.records.len(), 2);
    let a = CounterApp::decode_response(&blob.records[0].1);
    assert_eq!(a, Some(1), "the record of `a` before the apply");
    let current = sm.current_snapshot().expect("current").expect("some");
    assert_eq!(current.meta, built.meta);
}

#[test]
fn a_build_never_replaces_a_newer_installed_snapshot() {
    // A newer snapshot, built elsewhere.
    let leader_engine = MemKvEngine::new();
    let ((_, leader), _) = open(&leader_engine);
    leader
        .apply_entries((1..=9).map(|i| add(2, i, b"x", i)))
        .expect("apply");
    let mut newer = leader.build().expect("build");
    let newer_data = bytes_blocking(&mut newer.snapshot);

    let (engine, sm, _) = open_gated();
    sm.apply_entries(vec![add(1, 1, b"a", 1)].into_iter())
        .expect("apply");
    let (build, release) = held_build(&engine, &sm);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (lease, len) = runtime
        .block_on(async {
            let file = receive(&mut sm.clone(), &newer_data, 3).await;
            sm.received(file).await
        })
        .expect("received while the build is held");
    sm.install(&newer.meta, &lease, len)
        .expect("install while the build is held");
    release.send(()).expect("release");
    let older = build.join().expect("build thread").expect("build");
    assert_eq!(older.meta.last_log_id, Some(log_id(1, 1, 1)));

    let mut current = sm.current_snapshot().expect("current").expect("some");
    assert_eq!(
        current.meta, newer.meta,
        "the installed snapshot stays current"
    );
    assert_eq!(bytes_blocking(&mut current.snapshot), newer_data);
}

#[tokio::test]
async fn a_snapshot_larger_than_a_chunk_is_stored_in_chunks_and_read_back_after_restart() {
    let engine = MemKvEngine::new();
    let ((_, mut sm), _) = open(&engine);
    // 600 records with 4 KiB names: about 2.4 MiB of snapshot, three chunks and the header.
    let entries: Vec<Entry> = (1..=600u64)
        .map(|i| {
            let mut name = vec![b'n'; 4096];
            name.extend_from_slice(&i.to_be_bytes());
            add(1, i, &name, i)
        })
        .collect();
    sm.apply(entries).await.expect("apply");
    let mut built = sm.build_snapshot().await.expect("build");
    let data = bytes_of(&mut built.snapshot).await;
    drop(built);
    assert!(data.len() > 2 * STORED_CHUNK_BYTES, "{} bytes", data.len());
    let chunks = engine
        .scan(keys::CHUNK_PREFIX, keys::CHUNK_END, 100)
        .expect("scan");
    // Chunk 0 is the header alone (written last); the records follow in full chunks.
    let header = chunks[0].1.len();
    assert!(header < 100, "a header of {header} bytes");
    assert_eq!(
        chunks.len(),
        1 + (data.len() - header).div_ceil(STORED_CHUNK_BYTES)
    );
    assert!(chunks[1..chunks.len() - 1]
        .iter()
        .all(|(_, c)| c.len() == STORED_CHUNK_BYTES));

    // A second build goes to another slot and frees the first (nothing reads it).
    sm.apply(vec![add(1, 601, b"more", 1)])
        .await
        .expect("apply");
    let mut second = sm.build_snapshot().await.expect("build");
    let second_data = bytes_of(&mut second.snapshot).await;
    let second_meta = second.meta.clone();
    drop(second);
    let stored = engine
        .scan(keys::CHUNK_PREFIX, keys::CHUNK_END, 100)
        .expect("scan");
    assert_eq!(stored.len(), chunks.len());
    assert!(stored.iter().all(|(k, _)| k[keys::CHUNK_PREFIX.len()] == 1));

    drop(sm);
    let ((_, mut sm), _) = open(&engine);
    let mut current = current_of(&mut sm).await;
    assert_eq!(current.meta, second_meta);
    assert_eq!(bytes_of(&mut current.snapshot).await, second_data);
}

#[tokio::test]
async fn a_snapshot_stored_in_one_value_moves_to_chunks_when_the_store_opens() {
    let engine = MemKvEngine::new();
    let ((_, mut sm), _) = open(&engine);
    sm.apply(vec![add(1, 1, b"a", 1), add(1, 2, b"b", 2)])
        .await
        .expect("apply");
    let mut built = sm.build_snapshot().await.expect("build");
    let built_data = bytes_of(&mut built.snapshot).await;
    drop(sm);
    // Rewrite the store as 0.11 left it: the snapshot in one value, no head, no chunks.
    let legacy = StoredSnapshot {
        meta: built.meta.clone(),
        data: built_data.clone(),
    };
    engine
        .write(
            vec![
                WriteOp::Delete {
                    key: keys::SNAPSHOT_HEAD.to_vec(),
                },
                WriteOp::DeleteRange {
                    from: keys::CHUNK_PREFIX.to_vec(),
                    to: keys::CHUNK_END.to_vec(),
                },
                WriteOp::Put {
                    key: keys::LEGACY_SNAPSHOT.to_vec(),
                    value: codec::encode("legacy", &legacy).expect("encode"),
                },
            ],
            true,
        )
        .expect("write");

    let ((_, mut sm), _) = open(&engine);
    assert_eq!(engine.get(keys::LEGACY_SNAPSHOT).expect("get"), None);
    let mut current = current_of(&mut sm).await;
    assert_eq!(current.meta, built.meta);
    assert_eq!(bytes_of(&mut current.snapshot).await, built_data);
    assert_eq!(
        sm.build_snapshot().await.expect("build").meta.snapshot_id,
        "1-2-2",
        "the counter continues from the moved snapshot"
    );
}

/// An application that keeps nothing in memory between batches: it reads its one record,
/// `sum`, from the store. When opened over records without `layout` it asks for it to be
/// written (an upgrade). A payload of `fail` is a storage failure.
#[derive(Default)]
struct DiskApp {
    records: Option<crate::AppRecords>,
    /// `sum` as written by the batch in progress, until the store says it is persisted.
    unpersisted: Option<u64>,
    persisted_calls: u32,
}

impl crate::Application for DiskApp {
    fn open(&mut self, records: crate::AppRecords) -> Result<Vec<crate::AppWrite>, String> {
        let layout = records.get(b"layout").map_err(|e| e.to_string())?;
        self.records = Some(records);
        self.unpersisted = None;
        Ok(match layout {
            Some(_) => Vec::new(),
            None => vec![crate::AppWrite::Put {
                key: b"layout".to_vec(),
                value: vec![2],
            }],
        })
    }

    fn apply(&mut self, _index: u64, payload: &[u8]) -> Result<crate::Applied, String> {
        if payload == b"fail" {
            return Err("cannot read".into());
        }
        let records = self.records.as_ref().ok_or("not opened")?;
        let stored = records.get(b"sum").map_err(|e| e.to_string())?;
        let before = match (self.unpersisted, stored) {
            (Some(sum), _) => sum,
            (None, Some(bytes)) => u64::from_be_bytes(bytes.try_into().map_err(|_| "sum")?),
            (None, None) => 0,
        };
        let sum = before + payload.len() as u64;
        self.unpersisted = Some(sum);
        Ok(crate::Applied {
            response: sum.to_be_bytes().to_vec(),
            writes: vec![crate::AppWrite::Put {
                key: b"sum".to_vec(),
                value: sum.to_be_bytes().to_vec(),
            }],
        })
    }

    fn persisted(&mut self) {
        self.unpersisted = None;
        self.persisted_calls += 1;
    }
}

fn normal(index: u64, payload: &[u8]) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(RaftRequest {
            payload: payload.to_vec(),
        }),
    }
}

#[tokio::test]
async fn an_application_reads_its_state_from_the_store_and_upgrades_it_when_opened() {
    let engine = MemKvEngine::new();
    let app = Arc::new(RwLock::new(DiskApp::default()));
    let (_, mut sm) = open_stores(Arc::new(engine.clone()), Arc::clone(&app)).expect("open");
    // Opening an empty store wrote what the application asked for.
    assert_eq!(
        engine.get(&keys::app_key(b"layout")).expect("get"),
        Some(vec![2])
    );
    // Two entries in one batch: the second sees the first's write before it is persisted.
    let responses = sm
        .apply(vec![normal(1, b"abc"), normal(2, b"de")])
        .await
        .expect("apply");
    let sums: Vec<_> = responses
        .iter()
        .map(|r| CounterApp::decode_response(&r.payload))
        .collect();
    assert_eq!(sums, vec![Some(3), Some(5)]);
    assert_eq!(app.read().expect("lock").persisted_calls, 1);
    assert_eq!(
        engine.get(&keys::app_key(b"sum")).expect("get"),
        Some(5u64.to_be_bytes().to_vec())
    );
    // The next batch reads the persisted record.
    let responses = sm.apply(vec![normal(3, b"f")]).await.expect("apply");
    assert_eq!(CounterApp::decode_response(&responses[0].payload), Some(6));
    drop(sm);

    // Reopening finds the layout: nothing more to write; the state continues from the store.
    engine
        .write(
            vec![WriteOp::Put {
                key: keys::app_key(b"layout"),
                value: vec![9],
            }],
            true,
        )
        .expect("mark");
    let app = Arc::new(RwLock::new(DiskApp::default()));
    let (_, mut sm) = open_stores(Arc::new(engine.clone()), Arc::clone(&app)).expect("reopen");
    assert_eq!(
        engine.get(&keys::app_key(b"layout")).expect("get"),
        Some(vec![9])
    );
    let responses = sm.apply(vec![normal(4, b"gh")]).await.expect("apply");
    assert_eq!(CounterApp::decode_response(&responses[0].payload), Some(8));

    // An application that cannot read its records stops the state machine: nothing of the
    // batch is written.
    assert!(sm
        .apply(vec![normal(5, b"ij"), normal(6, b"fail")])
        .await
        .is_err());
    assert_eq!(
        engine.get(&keys::app_key(b"sum")).expect("get"),
        Some(8u64.to_be_bytes().to_vec())
    );
    let (applied, _) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 1, 4)));
}

/// Records what the state machine tells its observer.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl crate::StoreObserver for Recorder {
    fn applied(&self, entries: usize, _took: Duration) {
        self.0
            .lock()
            .expect("lock")
            .push(format!("applied {entries}"));
    }

    fn snapshot(&self, kind: crate::SnapshotKind, _took: Duration) {
        self.0.lock().expect("lock").push(format!("{kind:?}"));
    }
}

#[tokio::test]
async fn the_observer_hears_of_every_apply_build_and_install_and_clones_share_it() {
    let recorder = Arc::new(Recorder::default());
    let ((_, sm), _) = open(&MemKvEngine::new());
    let mut sm = sm.with_observer(recorder.clone());
    sm.apply(vec![
        membership_ent::<TypeConfig>(1, 1, 1, voters(&[1])),
        add(1, 2, b"a", 1),
    ])
    .await
    .expect("apply");
    sm.apply(Vec::new()).await.expect("an empty apply");
    // The builder is a clone: it reports too.
    let mut snapshot = build(&mut sm).await;
    let data = bytes_of(&mut snapshot.snapshot).await;
    let receiving = receive(&mut sm, &data, 100).await;
    sm.install_snapshot(&snapshot.meta, receiving)
        .await
        .expect("install");
    assert_eq!(
        *recorder.0.lock().expect("lock"),
        ["applied 2", "applied 0", "Build", "Install"]
    );
}

/// A crash in the middle of an install (the install record written, the old records dropped,
/// part of the new ones in): opening the store finishes the install from the stored chunks,
/// so the state is the snapshot's, never a mix.
#[tokio::test]
async fn an_install_interrupted_by_a_crash_is_finished_when_the_store_opens() {
    let leader_engine = MemKvEngine::new();
    let ((_, mut leader), leader_app) = open(&leader_engine);
    let mut entries = vec![membership_ent::<TypeConfig>(2, 1, 1, voters(&[1, 2]))];
    for i in 0..50u64 {
        entries.push(add(2, 2 + i, format!("k{i}").as_bytes(), i + 1));
    }
    leader.apply(entries).await.expect("apply");
    let mut snapshot = build(&mut leader).await;
    let data = bytes_of(&mut snapshot.snapshot).await;

    let follower_engine = MemKvEngine::new();
    {
        let ((_, mut follower), _) = open(&follower_engine);
        follower
            .apply(vec![add(1, 1, b"stale", 1)])
            .await
            .expect("apply");
    }
    // What `install` writes before the crash: the chunks, the install record with the old
    // records dropped, and the first record of the snapshot.
    let head = codec::SnapshotHead {
        meta: snapshot.meta.clone(),
        slot: 0,
        len: data.len() as u64,
    };
    for op in super::chunk_ops(0, &data, STORED_CHUNK_BYTES) {
        follower_engine.write(vec![op], false).expect("chunk");
    }
    let blob: SnapshotBlob = codec::decode("blob", &data).expect("blob");
    let (key, value) = blob.records[0].clone();
    follower_engine
        .write(
            vec![
                WriteOp::Put {
                    key: keys::INSTALLING.to_vec(),
                    value: codec::encode("head", &head).expect("encode"),
                },
                WriteOp::DeleteRange {
                    from: keys::APP_PREFIX.to_vec(),
                    to: keys::APP_END.to_vec(),
                },
                WriteOp::Put {
                    key: keys::app_key(&key),
                    value,
                },
            ],
            true,
        )
        .expect("partial install");

    let ((_, mut reopened), reopened_app) = open(&follower_engine);
    assert_eq!(counters(&reopened_app), counters(&leader_app));
    assert_eq!(counters(&reopened_app).len(), 50);
    assert_eq!(
        reopened.applied_state().await.expect("applied"),
        leader.applied_state().await.expect("applied")
    );
    let current = current_of(&mut reopened).await;
    assert_eq!(current.meta, snapshot.meta);
    assert!(follower_engine
        .get(keys::INSTALLING)
        .expect("get")
        .is_none());
}

/// A store on `engine` storing snapshots in chunks of `chunk_bytes`.
fn open_chunked(engine: &MemKvEngine, chunk_bytes: usize) -> (Sm, Arc<RwLock<CounterApp>>) {
    let app = Arc::new(RwLock::new(CounterApp::new()));
    let sm = StateMachineStore::with_chunk_bytes(
        Arc::new(engine.clone()),
        Arc::clone(&app),
        chunk_bytes,
    )
    .expect("open");
    (sm, app)
}

/// Membership and `n` counters, applied at term `term`.
fn counters_up_to(term: u64, n: u64) -> Vec<Entry> {
    let mut entries = vec![membership_ent::<TypeConfig>(term, 1, 1, voters(&[1, 2, 3]))];
    entries.extend((1..=n).map(|i| add(term, 1 + i, format!("counter-{i:05}").as_bytes(), i)));
    entries
}

/// The current snapshot's head.
fn head_of(engine: &MemKvEngine) -> codec::SnapshotHead {
    let bytes = engine
        .get(keys::SNAPSHOT_HEAD)
        .expect("get")
        .expect("a head");
    codec::decode("head", &bytes).expect("decode")
}

/// The chunks stored in `slot`.
fn chunks_in(engine: &MemKvEngine, slot: u8) -> Vec<KvPair> {
    let (from, to) = keys::chunk_range(slot);
    engine.scan(&from, &to, usize::MAX).expect("scan")
}

#[tokio::test]
async fn a_snapshot_of_many_chunks_reads_back_at_any_offset_and_installs_from_pieces() {
    let leader_engine = MemKvEngine::new();
    let (mut leader, leader_app) = open_chunked(&leader_engine, 64);
    leader.apply(counters_up_to(2, 300)).await.expect("apply");
    let snapshot = build(&mut leader).await;
    let mut current = current_of(&mut leader).await;
    assert_eq!(current.meta, snapshot.meta);
    let whole = bytes_of(&mut current.snapshot).await;
    let blob: SnapshotBlob = codec::decode("blob", &whole).expect("the postcard of the blob");
    assert_eq!(blob.records.len(), 300);
    let chunks = chunks_in(&leader_engine, head_of(&leader_engine).slot);
    assert!(chunks.len() > 50, "{} chunks", chunks.len());
    assert!(chunks[1..chunks.len() - 1]
        .iter()
        .all(|(_, c)| c.len() == 64));

    // Reads at offsets spread over the whole, of sizes within and across chunks.
    let mut x = 7u64;
    for _ in 0..200 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let offset = (x >> 33) % (whole.len() as u64 + 10);
        let size = ((x >> 13) % 300) as usize;
        current
            .snapshot
            .seek(SeekFrom::Start(offset))
            .await
            .expect("seek");
        let mut got = Vec::new();
        (&mut current.snapshot)
            .take(size as u64)
            .read_to_end(&mut got)
            .await
            .expect("read");
        let from = (offset as usize).min(whole.len());
        assert_eq!(
            got,
            whole[from..(from + size).min(whole.len())],
            "at {offset}+{size}"
        );
    }

    // A follower with other chunks receives it in openraft-like pieces, with resends.
    let follower_engine = MemKvEngine::new();
    let (mut follower, follower_app) = open_chunked(&follower_engine, 100);
    let receiving = receive(&mut follower, &whole, 150).await;
    follower
        .install_snapshot(&snapshot.meta, receiving)
        .await
        .expect("install");
    assert_eq!(counters(&follower_app), counters(&leader_app));
    assert_eq!(counters(&follower_app).len(), 300);
    let mut installed = current_of(&mut follower).await;
    assert_eq!(installed.meta, snapshot.meta);
    assert_eq!(bytes_of(&mut installed.snapshot).await, whole);
}

/// A crash while a snapshot is received (part of it stored, nothing released): the store
/// opens on its old snapshot, whole, and drops the part received.
#[tokio::test]
async fn a_crash_while_receiving_leaves_the_old_snapshot_usable() {
    let leader_engine = MemKvEngine::new();
    let (mut leader, leader_app) = open_chunked(&leader_engine, 64);
    leader.apply(counters_up_to(3, 200)).await.expect("apply");
    let mut sent = build(&mut leader).await;
    let data = bytes_of(&mut sent.snapshot).await;

    let engine = MemKvEngine::new();
    let (mut follower, _) = open_chunked(&engine, 64);
    follower.apply(counters_up_to(1, 20)).await.expect("apply");
    let mut old = build(&mut follower).await;
    let old_data = bytes_of(&mut old.snapshot).await;
    let old_meta = old.meta.clone();
    drop(old);
    let old_slot = head_of(&engine).slot;

    let mut receiving = follower.begin_receiving_snapshot().await.expect("begin");
    receiving
        .write_all(&data[..data.len() / 2])
        .await
        .expect("write half");
    receiving.flush().await.expect("flush");
    let partial: usize = (0..=u8::MAX)
        .filter(|slot| *slot != old_slot)
        .map(|slot| chunks_in(&engine, slot).len())
        .sum();
    assert!(partial > 5, "{partial} chunks received");
    // The crash: the process ends with nothing released.
    std::mem::forget(receiving);
    drop(follower);

    let (mut reopened, reopened_app) = open_chunked(&engine, 64);
    let mut current = current_of(&mut reopened).await;
    assert_eq!(current.meta, old_meta);
    assert_eq!(bytes_of(&mut current.snapshot).await, old_data);
    assert_eq!(counters(&reopened_app).len(), 20);
    let left: usize = (0..=u8::MAX)
        .filter(|slot| *slot != old_slot)
        .map(|slot| chunks_in(&engine, slot).len())
        .sum();
    assert_eq!(
        left, 0,
        "the part received was dropped when the store opened"
    );
    drop(current);

    // Sent again, it installs.
    let receiving = receive(&mut reopened, &data, 90).await;
    reopened
        .install_snapshot(&sent.meta, receiving)
        .await
        .expect("install");
    assert_eq!(counters(&reopened_app), counters(&leader_app));
}

#[tokio::test]
async fn a_snapshot_being_sent_keeps_its_chunks_while_newer_ones_replace_it() {
    let engine = MemKvEngine::new();
    let (mut sm, _) = open_chunked(&engine, 64);
    sm.apply(counters_up_to(1, 50)).await.expect("apply");
    build(&mut sm).await;
    let first_slot = head_of(&engine).slot;
    let mut sending = current_of(&mut sm).await;
    let mut copy = current_of(&mut sm).await;
    let whole = bytes_of(&mut copy.snapshot).await;
    drop(copy);
    let mut start = vec![0u8; 10];
    sending.snapshot.read_exact(&mut start).await.expect("read");

    // Two newer snapshots: neither writes into nor clears the slot being sent.
    sm.apply(vec![add(1, 60, b"more", 1)]).await.expect("apply");
    build(&mut sm).await;
    let second_slot = head_of(&engine).slot;
    sm.apply(vec![add(1, 61, b"more", 1)]).await.expect("apply");
    build(&mut sm).await;
    let third_slot = head_of(&engine).slot;
    assert!(first_slot != second_slot && first_slot != third_slot);
    assert!(
        chunks_in(&engine, second_slot).is_empty(),
        "a replaced snapshot nobody reads is dropped"
    );

    let mut rest = Vec::new();
    sending.snapshot.read_to_end(&mut rest).await.expect("read");
    start.extend(rest);
    assert_eq!(start, whole);
    assert!(!chunks_in(&engine, first_slot).is_empty());
    drop(sending);
    assert!(
        chunks_in(&engine, first_slot).is_empty(),
        "its last reader gone, the replaced snapshot is dropped"
    );
    assert!(!chunks_in(&engine, third_slot).is_empty());
}
