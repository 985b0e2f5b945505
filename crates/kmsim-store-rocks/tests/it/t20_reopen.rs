//! Data survives closing and reopening the database.

use std::sync::Arc;
use std::sync::RwLock;

use kmsim_store::open_stores;
use kmsim_store::testing::CounterApp;
use kmsim_store::KvEngine;
use kmsim_store::KvRead;
use kmsim_store::RaftRequest;
use kmsim_store::TypeConfig;
use kmsim_store::WriteOp;
use openraft::storage::RaftLogStorage;
use openraft::storage::RaftLogStorageExt;
use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::testing::membership_ent;
use openraft::EntryPayload;
use openraft::RaftLogReader;

use crate::fresh_engine;
use crate::put;
use crate::reopen;

#[test]
fn durable_and_non_durable_writes_are_read_back_after_reopen() {
    let (dir, e) = fresh_engine().expect("engine");
    e.write(vec![put(b"d/1", b"durable")], true).expect("write");
    e.write(vec![put(b"n/1", b"buffered"), put(b"d/2", b"x")], false)
        .expect("write");
    e.write(
        vec![WriteOp::DeleteRange {
            from: b"d/2".to_vec(),
            to: b"d0".to_vec(),
        }],
        false,
    )
    .expect("write");
    drop(e);

    let e = reopen(dir.path());
    assert_eq!(e.get(b"d/1").expect("get"), Some(b"durable".to_vec()));
    assert_eq!(e.get(b"n/1").expect("get"), Some(b"buffered".to_vec()));
    assert_eq!(e.get(b"d/2").expect("get"), None);
}

#[tokio::test]
async fn stores_reopened_from_disk_keep_log_vote_applied_state_and_records() {
    let (dir, e) = fresh_engine().expect("engine");
    let add = |index: u64, amount: u64| openraft::Entry::<TypeConfig> {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(RaftRequest {
            payload: CounterApp::command(b"c", amount),
        }),
    };
    let entries = vec![
        membership_ent::<TypeConfig>(1, 1, 1, vec![[1u64].into_iter().collect()]),
        add(2, 40),
        add(3, 2),
    ];
    {
        let app = Arc::new(RwLock::new(CounterApp::new()));
        let (mut log, mut sm) = open_stores(Arc::new(e), app).expect("open stores");
        log.blocking_append(entries.clone()).await.expect("append");
        log.save_vote(&openraft::Vote::new(1, 1))
            .await
            .expect("vote");
        sm.apply(entries).await.expect("apply");
    }

    let app = Arc::new(RwLock::new(CounterApp::new()));
    let (mut log, mut sm) =
        open_stores(Arc::new(reopen(dir.path())), Arc::clone(&app)).expect("reopen stores");
    assert_eq!(
        log.read_vote().await.expect("vote"),
        Some(openraft::Vote::new(1, 1))
    );
    assert_eq!(
        log.get_log_state().await.expect("state").last_log_id,
        Some(log_id(1, 1, 3))
    );
    assert_eq!(
        log.try_get_log_entries(1..4).await.expect("entries").len(),
        3
    );
    assert_eq!(
        sm.applied_state().await.expect("applied").0,
        Some(log_id(1, 1, 3))
    );
    assert_eq!(app.read().expect("app lock").get(b"c"), Some(42));
}
