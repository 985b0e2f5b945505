//! Snapshots by the node's own policy (`[raft] snapshot_after_logs`, `snapshot_log_percent`):
//! every node compacts its log as writes go on, and a node restarted afterwards starts from its
//! snapshot and the log behind it.

use std::time::Duration;

use kmsim_proto::kms::v1 as pb;

use crate::harness::{ok, wait_for, Cluster};

const R: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread")]
async fn every_node_snapshots_as_the_log_grows_and_restarts_from_its_snapshot() {
    let c = Cluster::start_edited(&[R], 3, |t| {
        t.raft.snapshot_after_logs = 25;
        t.raft.snapshot_log_percent = 0;
        t.raft.logs_kept_after_snapshot = 5;
    });
    let leader = c.leader(R).await;
    let mut keys = Vec::new();
    for i in 0..40 {
        let md = ok(c
            .kms(R, leader)
            .create_key(pb::CreateKeyRequest {
                description: Some(format!("key {i}")),
                ..Default::default()
            })
            .await)
        .key_metadata
        .unwrap();
        keys.push(md.key_id.unwrap());
    }
    // No one asked for a snapshot: each node's policy does, and openraft purges behind it.
    for id in c.ids(R) {
        let st = wait_for(
            Duration::from_secs(60),
            "a snapshot by the policy",
            || async {
                c.status(R, id).await.filter(|s| {
                    s.snapshot_index >= Some(25) && s.purged_index.is_some_and(|p| p > 0)
                })
            },
        )
        .await;
        assert!(
            st.snapshot_index <= st.last_applied_index,
            "node {id}: {st:?}"
        );
    }

    // A follower restarted now loads the snapshot's records and replays only the log after it.
    let follower = *c.ids(R).iter().find(|i| **i != leader).unwrap();
    c.kill(R, follower);
    c.restart(R, follower);
    for k in &keys {
        c.wait_sees(R, follower, k).await;
    }
    let enc = ok(c
        .kms(R, follower)
        .encrypt(pb::EncryptRequest {
            key_id: Some(keys[0].clone()),
            plaintext: Some(vec![7; 16]),
            ..Default::default()
        })
        .await);
    let dec = ok(c
        .kms(R, leader)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: enc.ciphertext_blob,
            ..Default::default()
        })
        .await);
    assert_eq!(dec.plaintext, Some(vec![7; 16]));
}
