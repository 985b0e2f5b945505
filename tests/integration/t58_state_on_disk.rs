//! The Region's state on disk: with a key cache of a few keys (so most reads go to RocksDB),
//! a Region whose every node was restarted and one of whose nodes was wiped and caught up by
//! a snapshot install still lists every key in order, finds aliases by key, counts keys, and
//! deletes scheduled keys when their date comes (found through the index records).

use std::collections::BTreeSet;
use std::time::Duration;

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, wait_for, Cluster};

const R: &str = "us-east-1";
const KEYS: usize = 40;
const SCHEDULED: usize = 5;
const DAY_MS: i64 = 86_400_000;

/// Every key ID a node lists, page by page (pages of 7).
async fn list_all(c: &Cluster, id: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = ok(c
            .kms(R, id)
            .list_keys(pb::ListKeysRequest {
                limit: Some(7),
                marker: marker.clone(),
            })
            .await);
        out.extend(page.keys.into_iter().filter_map(|k| k.key_id));
        if page.truncated != Some(true) {
            return out;
        }
        marker = page.next_marker;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_read_from_disk_answers_the_same_after_restarts_a_snapshot_install_and_due_work() {
    let c = Cluster::start_edited(&[R], 3, |t| {
        t.caches.key_records = 3;
        t.raft.snapshot_after_logs = 25;
        t.raft.snapshot_log_percent = 0;
        t.raft.logs_kept_after_snapshot = 5;
    });
    let leader = c.leader(R).await;
    let mut keys = Vec::new();
    for i in 0..KEYS {
        let md = ok(c
            .kms(R, leader)
            .create_key(pb::CreateKeyRequest {
                description: Some(format!("on disk {i}")),
                ..Default::default()
            })
            .await)
        .key_metadata
        .unwrap();
        keys.push(md.key_id.unwrap());
    }
    for (i, k) in keys.iter().take(3).enumerate() {
        ok(c.kms(R, leader)
            .create_alias(pb::CreateAliasRequest {
                alias_name: Some(format!("alias/on-disk-{i}")),
                target_key_id: Some(k.clone()),
            })
            .await);
    }
    for k in keys.iter().take(SCHEDULED) {
        ok(c.kms(R, leader)
            .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
                key_id: Some(k.clone()),
                pending_window_in_days: Some(7),
            })
            .await);
    }

    // Every node restarted: each opens its state without loading it.
    for id in c.ids(R) {
        c.kill(R, id);
    }
    for id in c.ids(R) {
        c.restart(R, id);
    }
    // One node wiped: the leader's log behind its snapshot is purged, so it is caught up by a
    // snapshot install, after which it reads the installed records.
    let leader = c.leader(R).await;
    let wiped = *c.ids(R).iter().find(|i| **i != leader).unwrap();
    c.kill(R, wiped);
    std::fs::remove_dir_all(c.node_data_dir(R, wiped)).unwrap();
    c.restart(R, wiped);

    let expected: BTreeSet<String> = keys.iter().cloned().collect();
    for id in c.ids(R) {
        wait_for(Duration::from_secs(60), "every key counted", || async {
            c.status(R, id).await.filter(|s| s.key_count == KEYS as u64)
        })
        .await;
        let listed = list_all(&c, id).await;
        assert!(
            listed.windows(2).all(|w| w[0] < w[1]),
            "node {id}: {listed:?}"
        );
        assert_eq!(
            listed.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "node {id}"
        );
        let aliases = ok(c
            .kms(R, id)
            .list_aliases(pb::ListAliasesRequest {
                key_id: Some(keys[1].clone()),
                ..Default::default()
            })
            .await);
        let names: Vec<_> = aliases
            .aliases
            .into_iter()
            .filter_map(|a| a.alias_name)
            .collect();
        assert_eq!(names, vec!["alias/on-disk-1".to_string()], "node {id}");
    }

    // The deletion dates come: the leader's lifecycle task finds the keys through the due
    // index and deletes them, on every node (the wiped one included).
    c.advance_clock(R, 8 * DAY_MS).await;
    for id in c.ids(R) {
        wait_for(
            Duration::from_secs(60),
            "the scheduled keys deleted",
            || async {
                c.status(R, id)
                    .await
                    .filter(|s| s.key_count == (KEYS - SCHEDULED) as u64)
            },
        )
        .await;
        let listed: BTreeSet<String> = list_all(&c, id).await.into_iter().collect();
        let kept: BTreeSet<String> = keys.iter().skip(SCHEDULED).cloned().collect();
        assert_eq!(listed, kept, "node {id}");
        let gone = kms_err(
            c.kms(R, id)
                .describe_key(pb::DescribeKeyRequest {
                    key_id: Some(keys[0].clone()),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(gone.code(), "NotFoundException", "node {id}");
    }
    c.down();
}
