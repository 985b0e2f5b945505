//! Multi-Region deletion (`docs/AWS-BEHAVIOUR.md` §7.6) on the simulated clocks of each Region, and
//! multi-Region keys with imported material.

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, Cluster};
use crate::t70_multi_region::{create_mrk, replicate, view, A, ALL, B, C};

const DAY_MS: i64 = 86_400_000;

async fn schedule(
    c: &Cluster,
    region: &str,
    key: &str,
    days: i32,
) -> pb::ScheduleKeyDeletionResponse {
    ok(c.kms(region, 1)
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(key.into()),
            pending_window_in_days: Some(days),
        })
        .await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_primary_is_deleted_only_after_its_last_replica_and_its_own_window() {
    let c = Cluster::start(&ALL, 3);
    for r in ALL {
        c.leader(r).await;
    }
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    replicate(&c, &key, A, C, "Enabled").await;

    // Day 1: everything scheduled with 7 days. The primary waits for its replicas.
    let p = schedule(&c, A, &key, 7).await;
    assert_eq!(p.key_state.as_deref(), Some("PendingReplicaDeletion"));
    assert!(p.deletion_date.is_none());
    c.settle(A).await;
    let d = c.describe(A, 2, &key).await;
    assert_eq!(d.pending_deletion_window_in_days, Some(7));
    assert_eq!(d.enabled, Some(false));
    assert!(d.deletion_date.is_none());
    for r in [B, C] {
        let s = schedule(&c, r, &key, 7).await;
        assert_eq!(s.key_state.as_deref(), Some("PendingDeletion"));
        assert!(s.deletion_date.is_some());
    }
    // Scheduling the primary changes nothing in the replicas' Regions but theirs.
    let e = kms_err(
        c.kms(A, 1)
            .replicate_key(pb::ReplicateKeyRequest {
                key_id: Some(key.clone()),
                replica_region: Some("us-west-2".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");

    // Day 7+: the replicas' windows end in their Regions; the primary learns it.
    for r in [B, C] {
        c.advance_clock(r, 7 * DAY_MS + 60_000).await;
    }
    for r in [B, C] {
        for n in c.ids(r) {
            crate::harness::wait_for(
                std::time::Duration::from_secs(30),
                "replica deleted",
                || {
                    let mut k = c.kms(r, n);
                    let key = key.clone();
                    async move {
                        k.describe_key(pb::DescribeKeyRequest {
                            key_id: Some(key),
                            ..Default::default()
                        })
                        .await
                        .err()
                    }
                },
            )
            .await;
        }
    }
    let md = c
        .wait_key(A, 1, &key, "primary's own window starts", |m| {
            m.key_state.as_deref() == Some("PendingDeletion")
        })
        .await;
    assert!(md.deletion_date.is_some());
    assert!(md
        .multi_region_configuration
        .unwrap()
        .replica_keys
        .is_empty());
    // Cancelling now gives Disabled; rescheduling a primary without replicas is plain pending.
    let cancel = ok(c
        .kms(A, 2)
        .cancel_key_deletion(pb::CancelKeyDeletionRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert!(cancel.key_id.unwrap().ends_with(&key));
    c.settle(A).await;
    assert_eq!(
        c.describe(A, 3, &key).await.key_state.as_deref(),
        Some("Disabled")
    );
    assert_eq!(
        schedule(&c, A, &key, 7).await.key_state.as_deref(),
        Some("PendingDeletion")
    );
    c.advance_clock(A, 7 * DAY_MS + 60_000).await;
    for n in c.ids(A) {
        crate::harness::wait_for(
            std::time::Duration::from_secs(30),
            "primary deleted",
            || {
                let mut k = c.kms(A, n);
                let key = key.clone();
                async move {
                    k.describe_key(pb::DescribeKeyRequest {
                        key_id: Some(key),
                        ..Default::default()
                    })
                    .await
                    .err()
                }
            },
        )
        .await;
    }
    // Every Region recorded its DeleteKey.
    for r in ALL {
        let events = ok(c
            .admin(r, 1)
            .list_audit_events(kmsim_proto::admin::v1::ListAuditEventsRequest {
                key_id: key.clone(),
                ..Default::default()
            })
            .await)
        .events;
        assert!(events.iter().any(|e| e.event_name == "DeleteKey"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_replica_can_be_replicated_again() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    let blob = crate::t70_multi_region::encrypt(&c, A, &key, "kept").await;
    schedule(&c, B, &key, 7).await;
    c.advance_clock(B, 7 * DAY_MS + 60_000).await;
    crate::harness::wait_for(
        std::time::Duration::from_secs(30),
        "the primary forgets the replica",
        || async { view(&c, A, 1, &key).await.2.is_empty().then_some(()) },
    )
    .await;
    replicate(&c, &key, A, B, "Enabled").await;
    let d = crate::t70_multi_region::decrypt(&c, B, 2, &blob, None)
        .await
        .unwrap();
    assert_eq!(d.plaintext.as_deref(), Some(&b"kept"[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_of_an_imported_key_need_the_same_material() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let o = crate::openssl::Openssl::new();
    let md = ok(c
        .kms(A, 1)
        .create_key(pb::CreateKeyRequest {
            multi_region: Some(true),
            origin: Some("EXTERNAL".into()),
            ..Default::default()
        })
        .await)
    .key_metadata
    .unwrap();
    let key = md.key_id.unwrap();
    c.wait_sees(A, 2, &key).await;
    // A primary pending import cannot be replicated.
    let e = kms_err(
        c.kms(A, 2)
            .replicate_key(pb::ReplicateKeyRequest {
                key_id: Some(key.clone()),
                replica_region: Some(B.into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "KMSInvalidStateException");
    o.ok(&["rand", "-out", "m1.bin", "32"]);
    o.ok(&["rand", "-out", "other.bin", "32"]);
    import(&c, &o, A, &key, "m1.bin", None).await.unwrap();
    c.wait_key(A, 2, &key, "imported", |m| {
        m.key_state.as_deref() == Some("Enabled")
    })
    .await;
    replicate(&c, &key, A, B, "PendingImport").await;
    let e = import(&c, &o, B, &key, "other.bin", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "IncorrectKeyMaterialException");
    import(&c, &o, B, &key, "m1.bin", None).await.unwrap();
    c.wait_key(B, 1, &key, "replica imported", |m| {
        m.key_state.as_deref() == Some("Enabled")
    })
    .await;
    let blob = crate::t70_multi_region::encrypt(&c, A, &key, "imported everywhere").await;
    let d = crate::t70_multi_region::decrypt(&c, B, 3, &blob, None)
        .await
        .unwrap();
    assert_eq!(d.plaintext.as_deref(), Some(&b"imported everywhere"[..]));

    // New material: pending multi-Region import until the replica has it, then rotatable.
    o.ok(&["rand", "-out", "m2.bin", "32"]);
    import(&c, &o, A, &key, "m2.bin", Some("NEW_KEY_MATERIAL"))
        .await
        .unwrap();
    c.settle(A).await;
    let states = material_states(&c, A, &key).await;
    assert_eq!(
        states,
        ["CURRENT", "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"]
    );
    let e = kms_err(
        c.kms(A, 1)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key.clone()),
            })
            .await,
    );
    assert_eq!(e.code(), "KMSInvalidStateException");
    // The replica learns of the new material, imports it as existing material.
    crate::harness::wait_for(
        std::time::Duration::from_secs(30),
        "replica sees the new material",
        || async { (material_states(&c, B, &key).await.len() == 2).then_some(()) },
    )
    .await;
    import(&c, &o, B, &key, "m2.bin", Some("EXISTING_KEY_MATERIAL"))
        .await
        .unwrap();
    crate::harness::wait_for(
        std::time::Duration::from_secs(30),
        "the primary learns the replica has it",
        || async {
            (material_states(&c, A, &key).await == ["CURRENT", "PENDING_ROTATION"]).then_some(())
        },
    )
    .await;
    let before = c.describe(A, 1, &key).await.current_key_material_id;
    assert!(before.is_some());
    ok(c.kms(A, 1)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key.clone()),
        })
        .await);
    let new_id = c
        .wait_key(B, 1, &key, "rotated everywhere", |m| {
            m.current_key_material_id.is_some() && m.current_key_material_id != before
        })
        .await
        .current_key_material_id;
    assert_eq!(c.describe(A, 1, &key).await.current_key_material_id, new_id);
}

async fn material_states(c: &Cluster, region: &str, key: &str) -> Vec<String> {
    ok(c.kms(region, 1)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key.into()),
            include_key_material: Some("ALL_KEY_MATERIAL".into()),
            ..Default::default()
        })
        .await)
    .rotations
    .into_iter()
    .filter_map(|r| r.key_material_state)
    .collect()
}

async fn import(
    c: &Cluster,
    o: &crate::openssl::Openssl,
    region: &str,
    key: &str,
    material_file: &str,
    import_type: Option<&str>,
) -> Result<pb::ImportKeyMaterialResponse, kmsim_core::KmsError> {
    let p = ok(c
        .kms(region, 1)
        .get_parameters_for_import(pb::GetParametersForImportRequest {
            key_id: Some(key.into()),
            wrapping_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            wrapping_key_spec: Some("RSA_2048".into()),
        })
        .await);
    let wrapped = o.oaep_sha256(p.public_key.as_ref().unwrap(), &o.read(material_file));
    c.kms(region, 2)
        .import_key_material(pb::ImportKeyMaterialRequest {
            key_id: Some(key.into()),
            import_token: p.import_token,
            encrypted_key_material: Some(wrapped),
            expiration_model: Some("KEY_MATERIAL_DOES_NOT_EXPIRE".into()),
            import_type: import_type.map(str::to_string),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| kmsim_proto::error_from_status(&s))
}
