//! Multi-Region keys under faults between Regions: a Region killed, a leader killed in the
//! middle of ReplicateKey, partitions with shared-property changes and a primary hand-over.

use std::collections::HashSet;
use std::time::Duration;

use kmsim_proto::admin::v1::ListAuditEventsRequest;
use kmsim_proto::kms::v1 as pb;

use crate::harness::{kmsim, ok, wait_for, Cluster};
use crate::t70_multi_region::{create_mrk, decrypt, replicate, view, A, ALL, B, C};

pub fn chaos(c: &Cluster, args: &[&str]) -> String {
    let dir = c.data_dir();
    let mut all = vec!["chaos"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", &dir]);
    kmsim(&all)
}

/// How many Regions describe their key of the set as the primary.
async fn primaries(c: &Cluster, key: &str) -> usize {
    let mut n = 0;
    for r in ALL {
        if view(c, r, 1, key).await.0 == "PRIMARY" {
            n += 1;
        }
    }
    n
}

async fn encrypt_on(c: &Cluster, region: &str, node: u64, key: &str, text: &str) -> Vec<u8> {
    ok(c.kms(region, node)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.into()),
            plaintext: Some(text.as_bytes().to_vec()),
            encryption_context: crate::t70_multi_region::ctx(),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap()
}

async fn current_material(c: &Cluster, region: &str, key: &str) -> String {
    c.describe(region, 1, key)
        .await
        .current_key_material_id
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_replica_region_converges_after_restart_and_rotation_waits_for_it() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    let before = current_material(&c, A, &key).await;

    chaos(&c, &["kill-region", B]);
    ok(c.kms(A, 1)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key.clone()),
        })
        .await);
    // While the replica Region is down the rotation is in progress: the primary keeps
    // encrypting under the material every Region holds.
    c.settle(A).await;
    let s = ok(c
        .kms(A, 2)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert!(s.on_demand_rotation_start_date.is_some());
    assert_eq!(current_material(&c, A, &key).await, before);
    let meanwhile = encrypt_on(&c, A, 2, &key, "while B was down").await;

    chaos(&c, &["restart-region", B]);
    c.leader(B).await;
    for r in [A, B] {
        for n in c.ids(r) {
            c.wait_key(r, n, &key, "rotation completes in both Regions", |m| {
                m.current_key_material_id
                    .as_deref()
                    .is_some_and(|id| id != before)
            })
            .await;
        }
    }
    assert_eq!(
        current_material(&c, A, &key).await,
        current_material(&c, B, &key).await
    );
    let after = encrypt_on(&c, A, 3, &key, "after").await;
    for n in c.ids(B) {
        for (blob, text) in [(&meanwhile, "while B was down"), (&after, "after")] {
            let d = decrypt(&c, B, n, blob, None).await.unwrap();
            assert_eq!(d.plaintext.as_deref(), Some(text.as_bytes()));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_keep_working_while_the_primary_region_is_down() {
    let c = Cluster::start(&ALL, 3);
    for r in ALL {
        c.leader(r).await;
    }
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    replicate(&c, &key, A, C, "Enabled").await;
    chaos(&c, &["kill-region", A]);
    let from_b = encrypt_on(&c, B, 1, &key, "written while the primary was down").await;
    let d = decrypt(&c, C, 2, &from_b, None).await.unwrap();
    assert_eq!(
        d.plaintext.as_deref(),
        Some(&b"written while the primary was down"[..])
    );
    chaos(&c, &["restart-region", A]);
    c.leader(A).await;
    for n in c.ids(A) {
        c.wait_sees(A, n, &key).await;
        let d = decrypt(&c, A, n, &from_b, None).await.unwrap();
        assert_eq!(
            d.plaintext.as_deref(),
            Some(&b"written while the primary was down"[..])
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_key_survives_the_sending_leader_being_killed() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    // Slow the link so the replica cannot be created before the leader dies.
    chaos(&c, &["link", "--from", A, "--to", B, "--delay", "1500ms"]);
    let leader = c.leader(A).await;
    let via = c.ids(A).into_iter().find(|n| *n != leader).unwrap();
    let r = ok(c
        .kms(A, via)
        .replicate_key(pb::ReplicateKeyRequest {
            key_id: Some(key.clone()),
            replica_region: Some(B.into()),
            ..Default::default()
        })
        .await);
    assert_eq!(
        r.replica_key_metadata.unwrap().key_state.as_deref(),
        Some("Creating")
    );
    c.kill(A, leader);
    chaos(&c, &["heal"]);
    for n in c.ids(B) {
        c.wait_key(B, n, &key, "the replica reaches Enabled", |m| {
            m.key_state.as_deref() == Some("Enabled")
        })
        .await;
    }
    c.restart(A, leader);
    // The creation is acknowledged: the primary lists the replica and stops sending it.
    let survivors: Vec<u64> = c.ids(A);
    c.leader_among(A, &survivors).await;
    assert_eq!(view(&c, A, via, &key).await.2, vec![B.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioned_regions_converge_after_heal_and_apply_nothing_twice() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    chaos(&c, &["partition", A, B]);
    ok(c.kms(A, 1)
        .enable_key_rotation(pb::EnableKeyRotationRequest {
            key_id: Some(key.clone()),
            rotation_period_in_days: Some(180),
        })
        .await);
    ok(c.kms(A, 2)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key.clone()),
        })
        .await);
    // Nothing crosses the partition.
    c.settle(A).await;
    let s = ok(c
        .kms(B, 1)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert_eq!(s.key_rotation_enabled, Some(false));
    chaos(&c, &["heal"]);
    crate::t70_multi_region::wait_rotation_setting(&c, B, &key).await;
    let current = wait_for(
        Duration::from_secs(30),
        "same material everywhere",
        || async {
            let a = c.describe(A, 1, &key).await.current_key_material_id;
            let b = c.describe(B, 1, &key).await.current_key_material_id;
            (a == b && rotated(&c, &key).await).then_some(a)
        },
    )
    .await;
    for n in c.ids(B) {
        c.wait_key(B, n, &key, "every node converged", |m| {
            m.current_key_material_id == current
        })
        .await;
    }
    let s = ok(c
        .kms(B, 1)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert_eq!(s.rotation_period_in_days, Some(180));
    // Every synchronization B applied carried a newer (epoch, version) than the one before.
    let events = ok(c
        .admin(B, 1)
        .list_audit_events(ListAuditEventsRequest {
            key_id: key.clone(),
            ..Default::default()
        })
        .await)
    .events;
    let stamps: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e.event_name == "SynchronizeMultiRegionKey")
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.record).unwrap();
            let d = &v["serviceEventDetails"];
            (d["epoch"].as_u64().unwrap(), d["version"].as_u64().unwrap())
        })
        .collect();
    assert!(!stamps.is_empty());
    let unique: HashSet<_> = stamps.iter().collect();
    assert_eq!(
        unique.len(),
        stamps.len(),
        "a synchronization applied twice: {stamps:?}"
    );
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
}

async fn rotated(c: &Cluster, key: &str) -> bool {
    let list = c
        .kms(B, 1)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key.into()),
            ..Default::default()
        })
        .await;
    list.is_ok_and(|l| l.into_inner().rotations.len() == 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn update_primary_region_waits_out_a_partition_and_never_makes_two_primaries() {
    let c = Cluster::start(&ALL, 3);
    for r in ALL {
        c.leader(r).await;
    }
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    replicate(&c, &key, A, C, "Enabled").await;
    chaos(&c, &["partition", A, B]);
    // The call cannot deliver the promotion, so it does not claim success; the hand-over has
    // begun and goes on.
    let e = crate::harness::kms_err(
        c.kms(A, 1)
            .update_primary_region(pb::UpdatePrimaryRegionRequest {
                key_id: Some(key.clone()),
                primary_region: Some(B.into()),
            })
            .await,
    );
    assert_eq!(e.code(), "KMSInternalException", "{e}");
    assert!(e.message().contains("could not be reached yet"), "{e}");
    c.settle(A).await;
    // The hand-over waits: the old primary is Updating (still usable), nobody else is primary.
    for _ in 0..10 {
        assert!(primaries(&c, &key).await <= 1, "two primaries");
        assert_eq!(
            c.describe(A, 2, &key).await.key_state.as_deref(),
            Some("Updating")
        );
        assert_eq!(view(&c, B, 1, &key).await.0, "REPLICA");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    encrypt_on(&c, A, 1, &key, "crypto keeps working while Updating").await;
    let e = crate::harness::kms_err(
        c.kms(A, 1)
            .disable_key(pb::DisableKeyRequest {
                key_id: Some(key.clone()),
            })
            .await,
    );
    assert_eq!(e.code(), "KMSInvalidStateException");
    assert!(e.message().ends_with("is updating."), "{e}");

    chaos(&c, &["heal"]);
    for r in ALL {
        wait_for(
            Duration::from_secs(30),
            "every Region knows the new primary",
            || async {
                let v = view(&c, r, 1, &key).await;
                assert!(primaries(&c, &key).await <= 1, "two primaries");
                (v.1 == B).then_some(())
            },
        )
        .await;
        c.wait_key(r, 1, &key, "back to Enabled", |m| {
            m.key_state.as_deref() == Some("Enabled")
        })
        .await;
    }
    assert_eq!(view(&c, B, 1, &key).await.0, "PRIMARY");
    assert_eq!(
        view(&c, A, 1, &key).await,
        (
            "REPLICA".into(),
            B.into(),
            vec![C.to_string(), A.to_string()]
        )
    );
    // The new primary takes shared-property changes; the old one refuses them.
    ok(c.kms(B, 2)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key.clone()),
        })
        .await);
    let e = crate::harness::kms_err(
        c.kms(A, 2)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key.clone()),
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    // An audit event in each of the two Regions.
    for r in [A, B] {
        let events = ok(c
            .admin(r, 1)
            .list_audit_events(ListAuditEventsRequest {
                key_id: key.clone(),
                ..Default::default()
            })
            .await)
        .events;
        assert!(
            events.iter().any(|e| e.event_name == "UpdatePrimaryRegion"),
            "{r}: {events:?}"
        );
    }
}
