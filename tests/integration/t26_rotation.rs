//! Rotation of symmetric keys: on demand and automatic on the simulated clock; every older
//! material keeps decrypting on every node.

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, Cluster};
use crate::t10_basics::create_key;

const R: &str = "us-east-1";
const DAY_MS: i64 = 86_400_000;

async fn encrypt(c: &Cluster, node: u64, key_id: &str, text: &[u8]) -> Vec<u8> {
    ok(c.kms(R, node)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key_id.into()),
            plaintext: Some(text.to_vec()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap()
}

async fn decrypt(c: &Cluster, node: u64, blob: &[u8]) -> pb::DecryptResponse {
    ok(c.kms(R, node)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: Some(blob.to_vec()),
            ..Default::default()
        })
        .await)
}

async fn status(c: &Cluster, node: u64, key_id: &str) -> pb::GetKeyRotationStatusResponse {
    ok(c.kms(R, node)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key_id.into()),
        })
        .await)
}

async fn rotations(
    c: &Cluster,
    node: u64,
    key_id: &str,
    include: &str,
) -> Vec<pb::RotationsListEntry> {
    ok(c.kms(R, node)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key_id.into()),
            include_key_material: Some(include.into()),
            ..Default::default()
        })
        .await)
    .rotations
}

#[tokio::test(flavor = "multi_thread")]
async fn on_demand_rotation_keeps_every_older_material_decrypting_on_every_node() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let md = create_key(&c, 1, "rotated").await;
    let key_id = md.key_id.unwrap();
    let first_material = md.current_key_material_id.unwrap();
    let mut blobs = vec![(encrypt(&c, 1, &key_id, b"v0").await, first_material.clone())];
    let mut materials = vec![first_material];
    for round in 1..=3u64 {
        let r = ok(c
            .kms(R, (round % 3) + 1)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key_id.clone()),
            })
            .await);
        assert_eq!(r.key_id.as_deref(), Some(key_id.as_str()));
        let before = materials.last().unwrap().clone();
        for n in c.ids(R) {
            let md = c
                .wait_key(R, n, &key_id, "the new material", |m| {
                    m.current_key_material_id.as_deref() != Some(before.as_str())
                })
                .await;
            if n == 1 {
                materials.push(md.current_key_material_id.unwrap());
            }
        }
        let text = format!("v{round}");
        blobs.push((
            encrypt(&c, 2, &key_id, text.as_bytes()).await,
            materials.last().unwrap().clone(),
        ));
    }
    // Every ciphertext decrypts on every node, naming the material that made it.
    for (i, (blob, material)) in blobs.iter().enumerate() {
        for n in c.ids(R) {
            let d = decrypt(&c, n, blob).await;
            assert_eq!(d.plaintext, Some(format!("v{i}").into_bytes()));
            assert_eq!(d.key_material_id.as_deref(), Some(material.as_str()));
        }
    }
    let list = rotations(&c, 3, &key_id, "ROTATIONS_ONLY").await;
    assert_eq!(list.len(), 3);
    assert!(list
        .iter()
        .all(|r| r.rotation_type.as_deref() == Some("ON_DEMAND")));
    assert!(list.iter().all(|r| r.rotation_date.is_some()));
    let all = rotations(&c, 2, &key_id, "ALL_KEY_MATERIAL").await;
    assert_eq!(all.len(), 4);
    let states: Vec<_> = all
        .iter()
        .filter_map(|r| r.key_material_state.clone())
        .collect();
    assert_eq!(
        states,
        ["NON_CURRENT", "NON_CURRENT", "NON_CURRENT", "CURRENT"]
    );
    let ids: Vec<_> = all
        .iter()
        .filter_map(|r| r.key_material_id.clone())
        .collect();
    assert_eq!(ids, materials);
    // Pagination by Marker.
    let page = ok(c
        .kms(R, 1)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key_id.clone()),
            include_key_material: Some("ALL_KEY_MATERIAL".into()),
            limit: Some(3),
            ..Default::default()
        })
        .await);
    assert_eq!(page.truncated, Some(true));
    let rest = ok(c
        .kms(R, 1)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key_id.clone()),
            include_key_material: Some("ALL_KEY_MATERIAL".into()),
            marker: page.next_marker,
            ..Default::default()
        })
        .await);
    assert_eq!(rest.rotations.len(), 1);
    assert_eq!(rest.truncated, Some(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_rotation_fires_on_the_simulated_clock() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let md = create_key(&c, 1, "auto").await;
    let key_id = md.key_id.unwrap();
    let first = md.current_key_material_id.unwrap();
    let old = encrypt(&c, 3, &key_id, b"before").await;
    let s = status(&c, 2, &key_id).await;
    assert_eq!(s.key_rotation_enabled, Some(false));
    assert!(s.next_rotation_date.is_none());

    let e = kms_err(
        c.kms(R, 1)
            .enable_key_rotation(pb::EnableKeyRotationRequest {
                key_id: Some(key_id.clone()),
                rotation_period_in_days: Some(2561),
            })
            .await,
    );
    assert_eq!(
        e.message(),
        "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560"
    );
    ok(c.kms(R, 2)
        .enable_key_rotation(pb::EnableKeyRotationRequest {
            key_id: Some(key_id.clone()),
            rotation_period_in_days: Some(90),
        })
        .await);
    c.settle(R).await;
    let s = status(&c, 3, &key_id).await;
    assert_eq!(s.key_rotation_enabled, Some(true));
    assert_eq!(s.rotation_period_in_days, Some(90));
    let next = s.next_rotation_date.unwrap();
    let now = c.status(R, 1).await.unwrap().clock_now;
    assert!(
        (next - now - 90.0 * 86_400.0).abs() < 60.0,
        "{next} vs {now}"
    );

    // On-demand rotation just before the automatic one is a conflict (AWS: 20 minutes).
    c.advance_clock(R, 90 * DAY_MS - 10 * 60_000).await;
    let e = kms_err(
        c.kms(R, 1)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key_id.clone()),
            })
            .await,
    );
    assert_eq!(e.code(), "ConflictException");
    c.advance_clock(R, 11 * 60_000).await;
    for n in c.ids(R) {
        c.wait_key(R, n, &key_id, "automatic rotation", |m| {
            m.current_key_material_id.as_deref() != Some(first.as_str())
        })
        .await;
    }
    let list = rotations(&c, 1, &key_id, "ROTATIONS_ONLY").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].rotation_type.as_deref(), Some("AUTOMATIC"));
    let s = status(&c, 1, &key_id).await;
    assert!(s.next_rotation_date.unwrap() > next + 89.0 * 86_400.0);
    for n in c.ids(R) {
        let d = decrypt(&c, n, &old).await;
        assert_eq!(d.plaintext.as_deref(), Some(&b"before"[..]));
        assert_eq!(d.key_material_id.as_deref(), Some(first.as_str()));
    }

    // While pending deletion the status reads false; cancelling restores it.
    ok(c.kms(R, 1)
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(key_id.clone()),
            pending_window_in_days: Some(7),
        })
        .await);
    assert_eq!(
        status(&c, 1, &key_id).await.key_rotation_enabled,
        Some(false)
    );
    ok(c.kms(R, 1)
        .cancel_key_deletion(pb::CancelKeyDeletionRequest {
            key_id: Some(key_id.clone()),
        })
        .await);
    assert_eq!(
        status(&c, 1, &key_id).await.key_rotation_enabled,
        Some(true)
    );
    c.settle(R).await;
    // Disabled keys cannot change the setting.
    let e = kms_err(
        c.kms(R, 2)
            .disable_key_rotation(pb::DisableKeyRotationRequest {
                key_id: Some(key_id.clone()),
            })
            .await,
    );
    assert_eq!(e.code(), "DisabledException");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_demand_rotations_are_limited_and_only_symmetric_keys_rotate() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let md = create_key(&c, 1, "limited").await;
    let key_id = md.key_id.unwrap();
    let arn = md.arn.unwrap();
    for i in 0..25 {
        ok(c.kms(R, (i % 3) + 1)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key_id.clone()),
            })
            .await);
    }
    let e = kms_err(
        c.kms(R, 1)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key_id.clone()),
            })
            .await,
    );
    assert_eq!(e.code(), "LimitExceededException");
    assert_eq!(
        e.message(),
        format!("The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}")
    );
    c.settle(R).await;
    assert_eq!(rotations(&c, 2, &key_id, "ROTATIONS_ONLY").await.len(), 25);

    let signing = crate::t25_key_types::create(&c, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let e = kms_err(
        c.kms(R, 1)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: signing.key_id.clone(),
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    assert_eq!(e.message(), "");
    let e = kms_err(
        c.kms(R, 1)
            .enable_key_rotation(pb::EnableKeyRotationRequest {
                key_id: signing.key_id.clone(),
                rotation_period_in_days: None,
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
}
