//! Faults inside one Region: a killed leader, a killed follower, a wiped node.

use std::time::Duration;

use kmsim_proto::admin::v1::TriggerSnapshotRequest;
use kmsim_proto::kms::v1 as pb;

use crate::harness::{ok, wait_for, Cluster};
use crate::t10_basics::create_key;

const R: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread")]
async fn a_write_survives_sigkill_of_the_leader_and_a_new_leader_keeps_serving() {
    let c = Cluster::start(&[R], 3);
    let old = c.leader(R).await;
    let before = create_key(&c, old, "before the crash")
        .await
        .key_id
        .unwrap();
    c.kill(R, old);

    let survivors: Vec<u64> = c.ids(R).into_iter().filter(|i| *i != old).collect();
    let new = c.leader_among(R, &survivors).await;
    assert_ne!(new, old);
    for id in &survivors {
        c.wait_sees(R, *id, &before).await;
    }
    // Writes through either survivor (one forwards to the new leader) and crypto keep working.
    let mut made = Vec::new();
    for id in &survivors {
        let md = ok(c
            .kms(R, *id)
            .create_key(pb::CreateKeyRequest::default())
            .await)
        .key_metadata
        .unwrap();
        made.push(md.key_id.unwrap());
        let enc = ok(c
            .kms(R, *id)
            .encrypt(pb::EncryptRequest {
                key_id: Some(before.clone()),
                plaintext: Some(vec![9; 32]),
                ..Default::default()
            })
            .await);
        assert!(enc.ciphertext_blob.is_some());
    }
    // The old leader comes back as a follower and catches up.
    c.restart(R, old);
    for k in &made {
        c.wait_sees(R, old, k).await;
    }
    let st = c.status(R, old).await.unwrap();
    assert_ne!(
        st.role, "leader",
        "the restarted node should rejoin as a follower"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_follower_restarts_from_its_data_dir_and_catches_up() {
    let c = Cluster::start(&[R], 3);
    let leader = c.leader(R).await;
    let follower = c.ids(R).into_iter().find(|i| *i != leader).unwrap();
    let first = create_key(&c, leader, "first").await.key_id.unwrap();
    c.kill(R, follower);
    let mut during = Vec::new();
    for _ in 0..5 {
        let md = ok(c
            .kms(R, leader)
            .create_key(pb::CreateKeyRequest::default())
            .await)
        .key_metadata
        .unwrap();
        during.push(md.key_id.unwrap());
    }
    c.restart(R, follower);
    c.wait_sees(R, follower, &first).await;
    for k in &during {
        c.wait_sees(R, follower, k).await;
    }
    let leader_applied = c.status(R, leader).await.unwrap().last_applied_index;
    wait_for(
        Duration::from_secs(20),
        "follower applied as far as the leader",
        || async {
            c.status(R, follower)
                .await
                .filter(|s| s.last_applied_index >= leader_applied)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_node_catches_up_through_a_snapshot() {
    let c = Cluster::start(&[R], 3);
    let leader = c.leader(R).await;
    let victim = *c.ids(R).iter().filter(|i| **i != leader).max().unwrap();
    let mut keys = Vec::new();
    for i in 0..10 {
        keys.push(
            create_key(&c, leader, &format!("key {i}"))
                .await
                .key_id
                .unwrap(),
        );
    }
    c.kill(R, victim);
    // The leader compacts its log into a snapshot and purges it: the victim can only catch up
    // from the snapshot.
    let snap = ok(c
        .admin(R, leader)
        .trigger_snapshot(TriggerSnapshotRequest {})
        .await);
    let snapshot_index = snap.snapshot_index.expect("snapshot built");
    wait_for(Duration::from_secs(20), "leader purged its log", || async {
        c.status(R, leader)
            .await
            .filter(|s| s.purged_index >= Some(snapshot_index))
    })
    .await;
    std::fs::remove_dir_all(c.node_data_dir(R, victim)).unwrap();
    std::fs::create_dir_all(c.node_data_dir(R, victim)).unwrap();

    c.restart(R, victim);
    for k in &keys {
        c.wait_sees(R, victim, k).await;
    }
    let st = c.status(R, victim).await.unwrap();
    assert!(
        st.snapshot_index >= Some(snapshot_index),
        "victim installed a snapshot: {st:?}"
    );
    // It serves crypto with material that came only through the snapshot.
    let enc = ok(c
        .kms(R, victim)
        .encrypt(pb::EncryptRequest {
            key_id: Some(keys[0].clone()),
            plaintext: Some(vec![5; 16]),
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
    assert_eq!(dec.plaintext, Some(vec![5; 16]));
}

/// Every key ID a node lists (following NextMarker).
async fn listed_keys(c: &Cluster, id: u64) -> Option<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    let mut marker = None;
    loop {
        let page = c
            .kms(R, id)
            .list_keys(pb::ListKeysRequest {
                limit: Some(1000),
                marker: marker.clone(),
            })
            .await
            .ok()?
            .into_inner();
        out.extend(page.keys.into_iter().filter_map(|k| k.key_id));
        if page.truncated != Some(true) {
            return Some(out);
        }
        marker = page.next_marker;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_leader_crashes_under_load() {
    let c = std::sync::Arc::new(Cluster::start(&[R], 3));
    c.leader(R).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    // One writer per node, bounded in count; a failed or timed-out call is an unknown outcome,
    // not a failure: only acknowledged keys must survive.
    let mut writers = Vec::new();
    for id in c.ids(R) {
        let (c, stop) = (c.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut unknown = 0;
            for _ in 0..400 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                match c
                    .kms(R, id)
                    .create_key(pb::CreateKeyRequest::default())
                    .await
                {
                    Ok(r) => acked.push(r.into_inner().key_metadata.unwrap().key_id.unwrap()),
                    Err(_) => {
                        unknown += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (acked, unknown)
        }));
    }

    // Two leader crashes while the writers run; each old leader comes back.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let leader = c.leader(R).await;
        let cc = c.clone();
        tokio::task::spawn_blocking(move || cc.kill(R, leader))
            .await
            .unwrap();
        let survivors: Vec<u64> = c.ids(R).into_iter().filter(|i| *i != leader).collect();
        c.leader_among(R, &survivors).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cc = c.clone();
        tokio::task::spawn_blocking(move || cc.restart(R, leader))
            .await
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = std::collections::BTreeSet::new();
    let mut unknown = 0;
    for w in writers {
        let (a, u) = w.await.unwrap();
        acked.extend(a);
        unknown += u;
    }
    eprintln!(
        "acknowledged {} keys, {unknown} unknown outcomes",
        acked.len()
    );
    assert!(
        acked.len() > 20,
        "too few acknowledged writes to mean anything: {} ({unknown} unknown)",
        acked.len()
    );

    // Every node converges on one key set that contains every acknowledged key.
    let mut sets = Vec::new();
    for id in c.ids(R) {
        let set = wait_for(
            Duration::from_secs(30),
            "node holds every acknowledged key",
            || async { listed_keys(&c, id).await.filter(|s| s.is_superset(&acked)) },
        )
        .await;
        sets.push(set);
    }
    let settled = wait_for(
        Duration::from_secs(30),
        "every node lists the same keys",
        || async {
            let mut all = Vec::new();
            for id in c.ids(R) {
                all.push(listed_keys(&c, id).await?);
            }
            all.windows(2).all(|w| w[0] == w[1]).then_some(all)
        },
    )
    .await;
    // Keys beyond the acknowledged ones can only come from unknown outcomes.
    assert!(
        settled[0].len() <= acked.len() + unknown,
        "{} keys, {} acked, {unknown} unknown",
        settled[0].len(),
        acked.len()
    );
    assert!(sets.iter().all(|s| s.is_superset(&acked)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_off_with_kmsim_chaos_is_replaced_and_rejoins_after_heal() {
    let c = Cluster::start(&[R], 3);
    let old = c.leader(R).await;
    let dd = c.data_dir();
    let out = crate::harness::kmsim(&[
        "chaos",
        "partition",
        &format!("{R}/{old}"),
        R,
        "--data-dir",
        &dd,
    ]);
    assert!(out.contains("4 link(s) set"), "{out}");
    let shown = crate::harness::kmsim(&["chaos", "show", "--data-dir", &dd]);
    assert_eq!(shown.matches("PARTITIONED").count(), 4, "{shown}");

    let others: Vec<u64> = c.ids(R).into_iter().filter(|i| *i != old).collect();
    let new = c.leader_among(R, &others).await;
    assert_ne!(new, old);
    let key = ok(c
        .kms(R, new)
        .create_key(pb::CreateKeyRequest::default())
        .await)
    .key_metadata
    .unwrap()
    .key_id
    .unwrap();
    // The isolated node cannot confirm a read with a leader: rather than answer without the
    // write, its management reads fail (retryably) until the partition heals.
    let e = crate::harness::kms_err(
        c.kms(R, old)
            .list_keys(pb::ListKeysRequest::default())
            .await,
    );
    assert_eq!(e.code(), "DependencyTimeoutException", "{e}");

    crate::harness::kmsim(&["chaos", "heal", "--data-dir", &dd]);
    c.wait_sees(R, old, &key).await;
    wait_for(
        Duration::from_secs(30),
        "the old leader follows",
        || async { c.status(R, old).await.filter(|s| s.role == "follower") },
    )
    .await;
    let shown = crate::harness::kmsim(&["chaos", "show", "--data-dir", &dd]);
    assert!(!shown.contains("PARTITIONED"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_region_killed_and_restarted_keeps_every_key() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let key = create_key(&c, 2, "survives a Region outage")
        .await
        .key_id
        .unwrap();
    let blob = ok(c
        .kms(R, 3)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"outage".to_vec()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob;
    let dd = c.data_dir();
    let out = crate::harness::kmsim(&["chaos", "kill-region", R, "--data-dir", &dd]);
    assert_eq!(out.matches("killed ").count(), 3, "{out}");
    for id in c.ids(R) {
        assert!(c.status(R, id).await.is_none(), "node {id} still answers");
    }
    let out = crate::harness::kmsim(&["chaos", "restart-region", R, "--data-dir", &dd]);
    assert_eq!(out.matches("restarted ").count(), 3, "{out}");
    c.leader(R).await;
    for id in c.ids(R) {
        c.wait_sees(R, id, &key).await;
        let dec = ok(c
            .kms(R, id)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: blob.clone(),
                ..Default::default()
            })
            .await);
        assert_eq!(dec.plaintext.as_deref(), Some(&b"outage"[..]));
    }
    // Writes work again.
    ok(c.kms(R, 1)
        .create_key(pb::CreateKeyRequest::default())
        .await);
}
