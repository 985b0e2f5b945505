//! Unit tests of the state machine store over `MemKvEngine`.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::RwLock;

use openraft::storage::RaftLogStorage;
use openraft::storage::RaftLogStorageExt;
use openraft::storage::RaftStateMachine;
use openraft::testing::blank_ent;
use openraft::testing::log_id;
use openraft::testing::membership_ent;
use openraft::EntryPayload;
use openraft::RaftSnapshotBuilder;

use crate::mem_engine::MemKvEngine;
use crate::open_stores;
use crate::testing::CounterApp;
use crate::types::Entry;
use crate::types::RaftRequest;
use crate::types::TypeConfig;
use crate::types::Vote;
use crate::KvEngine;
use crate::LogStore;
use crate::StateMachineStore;

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
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(2, 1, 3)));
    assert_eq!(snapshot.meta.snapshot_id, "2-3-1");

    // A follower that already had other state: the install replaces it completely.
    let follower_engine = MemKvEngine::new();
    let ((_, mut follower), follower_app) = open(&follower_engine);
    follower
        .apply(vec![add(1, 1, b"stale", 1)])
        .await
        .expect("apply");

    let mut receiving = follower.begin_receiving_snapshot().await.expect("begin");
    *receiving = Cursor::new(snapshot.snapshot.into_inner());
    follower
        .install_snapshot(&snapshot.meta, receiving)
        .await
        .expect("install");

    assert_eq!(counters(&follower_app), counters(&leader_app));
    assert_eq!(
        follower.applied_state().await.expect("applied"),
        leader.applied_state().await.expect("applied")
    );
    let current = follower
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("some snapshot");
    assert_eq!(current.meta, snapshot.meta);

    // The installed state, including the current snapshot, survives a restart.
    drop(follower);
    let ((_, mut restarted), restarted_app) = open(&follower_engine);
    assert_eq!(counters(&restarted_app), counters(&leader_app));
    let current = restarted
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("some snapshot");
    assert_eq!(current.meta, snapshot.meta);
}

#[tokio::test]
async fn current_snapshot_and_counter_survive_a_restart() {
    let engine = MemKvEngine::new();
    let ((_, mut sm), _) = open(&engine);
    sm.apply(vec![add(1, 1, b"a", 1)]).await.expect("apply");
    let first = sm.build_snapshot().await.expect("build");
    drop(sm);

    let ((_, mut sm), _) = open(&engine);
    let current = sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("some snapshot");
    assert_eq!(current.meta, first.meta);
    assert_eq!(current.snapshot.into_inner(), first.snapshot.into_inner());
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
