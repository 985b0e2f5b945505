//! One member: writes, snapshots, purges and restarts through openraft itself.

use kmsim_store::keys;
use kmsim_store::testing::CounterApp;
use kmsim_store::KvEngine;
use kmsim_store::KvRead;
use kmsim_store::MemKvEngine;
use kmsim_store::RaftRequest;
use kmsim_store::WriteOp;
use kmsim_store::{BatchLimits, Batcher};

use crate::fixtures::config;
use crate::fixtures::initialize;
use crate::fixtures::start_node;
use crate::fixtures::WAIT;

async fn add(raft: &kmsim_store::Raft, amount: u64) -> (u64, Option<u64>) {
    let resp = raft
        .client_write(RaftRequest {
            payload: CounterApp::command(b"c", amount),
        })
        .await
        .expect("client write");
    (
        resp.log_id.index,
        CounterApp::decode_response(&resp.data.payload),
    )
}

#[tokio::test]
async fn client_writes_return_the_application_response() {
    let engine = MemKvEngine::new();
    let (raft, app) = start_node(&engine, config()).await;
    initialize(&raft).await;
    assert_eq!(add(&raft, 2).await.1, Some(2));
    assert_eq!(add(&raft, 3).await.1, Some(5));
    assert_eq!(app.read().expect("app lock").get(b"c"), Some(5));
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn restart_reapplies_committed_entries_lost_from_the_state_machine() {
    let engine = MemKvEngine::new();
    let (raft, _) = start_node(&engine, config()).await;
    initialize(&raft).await;
    add(&raft, 10).await;
    let (last, _) = add(&raft, 5).await;
    raft.shutdown().await.expect("shutdown");

    // Simulate a crash that lost every non-durable state machine batch: the log (durable)
    // and the committed id survive, the records and applied id do not.
    engine
        .write(
            vec![
                WriteOp::DeleteRange {
                    from: keys::APP_PREFIX.to_vec(),
                    to: keys::APP_END.to_vec(),
                },
                WriteOp::Delete {
                    key: keys::APPLIED.to_vec(),
                },
                WriteOp::Delete {
                    key: keys::MEMBERSHIP.to_vec(),
                },
            ],
            true,
        )
        .expect("wipe state machine");

    let (raft, app) = start_node(&engine, config()).await;
    raft.wait(Some(WAIT))
        .applied_index_at_least(Some(last), "re-applied")
        .await
        .expect("re-apply");
    assert_eq!(app.read().expect("app lock").get(b"c"), Some(15));
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn snapshot_purges_the_log_and_restart_starts_from_it() {
    let engine = MemKvEngine::new();
    let (raft, _) = start_node(&engine, config()).await;
    initialize(&raft).await;
    for amount in 1..=5 {
        add(&raft, amount).await;
    }
    let applied = raft.metrics().borrow().last_applied.expect("applied");
    raft.trigger().snapshot().await.expect("trigger snapshot");
    raft.wait(Some(WAIT))
        .snapshot(applied, "snapshot built")
        .await
        .expect("snapshot");
    raft.wait(Some(WAIT))
        .purged(Some(applied), "log purged")
        .await
        .expect("purged");
    raft.shutdown().await.expect("shutdown");
    assert!(engine
        .scan(keys::LOG_PREFIX, keys::LOG_END, 10)
        .expect("scan")
        .is_empty());

    let (raft, app) = start_node(&engine, config()).await;
    raft.wait(Some(WAIT))
        .applied_index_at_least(Some(applied.index), "state restored")
        .await
        .expect("restored");
    assert_eq!(app.read().expect("app lock").get(b"c"), Some(15));
    let metrics = raft.metrics().borrow().clone();
    assert_eq!(metrics.snapshot, Some(applied));
    assert_eq!(metrics.purged, Some(applied));
    raft.wait(Some(WAIT))
        .current_leader(1, "leads again")
        .await
        .expect("leader");
    assert_eq!(add(&raft, 100).await.1, Some(115));
    raft.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writes_each_get_their_own_answer_and_share_entries() {
    let engine = MemKvEngine::new();
    let (raft, app) = start_node(&engine, config()).await;
    initialize(&raft).await;
    let start = raft.metrics().borrow().last_log_index.unwrap_or(0);
    let batcher = Batcher::spawn(
        raft.clone(),
        BatchLimits {
            max_commands: 64,
            max_bytes: 1 << 20,
            in_flight: 2,
        },
    );
    // 300 writers at once, each adding its own amount to its own counter and one to a shared
    // counter; one payload starts with the batch marker itself.
    let writes = (0..300u64).map(|i| {
        let batcher = batcher.clone();
        async move {
            let name = if i == 7 {
                vec![kmsim_store::batch::BATCH_MARKER, b'x']
            } else {
                format!("c{i}").into_bytes()
            };
            let own = batcher
                .write(CounterApp::command(&name, i + 1))
                .await
                .expect("write");
            let shared = batcher
                .write(CounterApp::command(b"shared", 1))
                .await
                .expect("write");
            (i, name, own, shared)
        }
    });
    let results = futures::future::join_all(writes).await;
    let mut shared_sums = Vec::new();
    for (i, name, own, shared) in &results {
        assert_eq!(
            CounterApp::decode_response(&own.response),
            Some(i + 1),
            "writer {i}"
        );
        assert_eq!(app.read().expect("app lock").get(name), Some(i + 1));
        shared_sums.push(CounterApp::decode_response(&shared.response).expect("sum"));
    }
    // Every shared increment saw a different sum: applied once each, in some order.
    shared_sums.sort_unstable();
    assert_eq!(shared_sums, (1..=300).collect::<Vec<u64>>());
    let end = raft.metrics().borrow().last_log_index.unwrap_or(0);
    assert!(
        end - start < 300,
        "600 writes took {} entries: none were batched",
        end - start
    );
    raft.shutdown().await.expect("shutdown");
}
