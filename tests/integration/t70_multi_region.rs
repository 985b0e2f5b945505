//! Multi-Region keys across Region clusters: replication, cross-Region use, rotation that
//! reaches every replica. Each Region is its own Raft cluster; they exchange nothing but the
//! synchronizer's messages.

use std::collections::HashMap;

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, Cluster};

pub const A: &str = "us-east-1";
pub const B: &str = "eu-west-1";
pub const C: &str = "ap-southeast-2";
pub const ALL: [&str; 3] = [A, B, C];

/// Creates a multi-Region primary in `region` (symmetric unless `spec`/`usage` say otherwise).
pub async fn create_mrk(c: &Cluster, region: &str, spec: Option<(&str, &str)>) -> pb::KeyMetadata {
    let md = ok(c
        .kms(region, 1)
        .create_key(pb::CreateKeyRequest {
            multi_region: Some(true),
            key_spec: spec.map(|s| s.0.to_string()),
            key_usage: spec.map(|s| s.1.to_string()),
            description: Some("primary".into()),
            ..Default::default()
        })
        .await)
    .key_metadata
    .unwrap();
    for n in c.ids(region) {
        c.wait_sees(region, n, md.key_id.as_deref().unwrap()).await;
    }
    md
}

/// ReplicateKey from `from` to `to`, then waits until every node of `to` shows `state`.
pub async fn replicate(
    c: &Cluster,
    key_id: &str,
    from: &str,
    to: &str,
    state: &str,
) -> pb::ReplicateKeyResponse {
    let r = ok(c
        .kms(from, 2)
        .replicate_key(pb::ReplicateKeyRequest {
            key_id: Some(key_id.into()),
            replica_region: Some(to.into()),
            description: Some(format!("replica in {to}")),
            ..Default::default()
        })
        .await);
    for n in c.ids(to) {
        c.wait_key(to, n, key_id, "replica created", |m| {
            m.key_state.as_deref() == Some(state)
        })
        .await;
    }
    r
}

/// The set as one Region describes it: (type, primary Region, sorted replica Regions).
pub async fn view(
    c: &Cluster,
    region: &str,
    node: u64,
    key_id: &str,
) -> (String, String, Vec<String>) {
    let m = c
        .describe(region, node, key_id)
        .await
        .multi_region_configuration
        .unwrap();
    let mut replicas: Vec<String> = m
        .replica_keys
        .iter()
        .filter_map(|k| k.region.clone())
        .collect();
    replicas.sort();
    (
        m.multi_region_key_type.unwrap(),
        m.primary_key.and_then(|p| p.region).unwrap(),
        replicas,
    )
}

/// Encrypts `text` under `key` in `region`.
pub async fn encrypt(c: &Cluster, region: &str, key: &str, text: &str) -> Vec<u8> {
    ok(c.kms(region, 3)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.into()),
            plaintext: Some(text.as_bytes().to_vec()),
            encryption_context: ctx(),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap()
}

pub fn ctx() -> HashMap<String, String> {
    [("app".to_string(), "mrk-test".to_string())].into()
}

pub async fn decrypt(
    c: &Cluster,
    region: &str,
    node: u64,
    blob: &[u8],
    key_id: Option<String>,
) -> Result<pb::DecryptResponse, kmsim_core::KmsError> {
    c.kms(region, node)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: Some(blob.to_vec()),
            key_id,
            encryption_context: ctx(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| kmsim_proto::error_from_status(&s))
}

fn arn(region: &str, key: &str) -> String {
    format!("arn:aws:kms:{region}:111122223333:key/{key}")
}

#[tokio::test(flavor = "multi_thread")]
async fn ciphertexts_of_any_region_decrypt_in_every_other_with_the_local_arn() {
    let c = Cluster::start(&ALL, 3);
    for r in ALL {
        c.leader(r).await;
    }
    let md = create_mrk(&c, A, None).await;
    let key = md.key_id.unwrap();
    assert!(key.starts_with("mrk-") && key.len() == 36, "{key}");
    assert_eq!(
        view(&c, A, 1, &key).await,
        ("PRIMARY".into(), A.into(), vec![])
    );

    // ReplicateKey answers at once: the replica Creating, with the request's Regional properties.
    let r = replicate(&c, &key, A, B, "Enabled").await;
    let rk = r.replica_key_metadata.unwrap();
    assert_eq!(rk.key_state.as_deref(), Some("Creating"));
    assert_eq!(rk.enabled, Some(false));
    assert_eq!(rk.arn.as_deref(), Some(arn(B, &key).as_str()));
    assert_eq!(
        rk.description.as_deref(),
        Some(format!("replica in {B}").as_str())
    );
    assert!(rk.current_key_material_id.is_none());
    let rcfg = rk.multi_region_configuration.unwrap();
    assert_eq!(rcfg.multi_region_key_type.as_deref(), Some("REPLICA"));
    assert!(r
        .replica_policy
        .unwrap()
        .contains("Enable IAM User Permissions"));
    assert!(r.replica_tags.is_empty());
    replicate(&c, &key, A, C, "Enabled").await;

    // Every Region shows the same set; only the type differs. Regional properties stay apart.
    let replicas = vec![C.to_string(), B.to_string()];
    let mut sorted = replicas.clone();
    sorted.sort();
    for region in ALL {
        let want = if region == A { "PRIMARY" } else { "REPLICA" };
        c.wait_key(region, 1, &key, "the whole set", |m| {
            m.multi_region_configuration
                .as_ref()
                .is_some_and(|x| x.replica_keys.len() == 2)
        })
        .await;
        assert_eq!(
            view(&c, region, 1, &key).await,
            (want.into(), A.into(), sorted.clone())
        );
        let d = c.describe(region, 2, &key).await;
        assert_eq!(d.arn.as_deref(), Some(arn(region, &key).as_str()));
        let want_desc = if region == A {
            "primary".to_string()
        } else {
            format!("replica in {region}")
        };
        assert_eq!(d.description.as_deref(), Some(want_desc.as_str()));
        assert_eq!(d.current_key_material_id, md.current_key_material_id);
    }

    // 3×3: encrypt in each Region, decrypt in each other with no KeyId, the mrk id, the local
    // ARN; the foreign ARN is NotFoundException; the answer names the serving Region's ARN.
    for from in ALL {
        let blob = encrypt(&c, from, &key, from).await;
        for to in ALL {
            for key_id in [None, Some(key.clone()), Some(arn(to, &key))] {
                let d = decrypt(&c, to, 2, &blob, key_id).await.unwrap();
                assert_eq!(d.plaintext.as_deref(), Some(from.as_bytes()));
                assert_eq!(d.key_id.as_deref(), Some(arn(to, &key).as_str()));
            }
            if from != to {
                let e = decrypt(&c, to, 1, &blob, Some(arn(from, &key)))
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), "NotFoundException");
                assert_eq!(e.message(), format!("Invalid arn {from}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_key_is_refused_as_aws_refuses_it() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    let req = |k: &str, to: &str| pb::ReplicateKeyRequest {
        key_id: Some(k.into()),
        replica_region: Some(to.into()),
        ..Default::default()
    };
    let e = kms_err(c.kms(A, 1).replicate_key(req(&key, B)).await);
    assert_eq!(e.code(), "AlreadyExistsException");
    let e = kms_err(c.kms(A, 1).replicate_key(req(&key, A)).await);
    assert_eq!(e.code(), "AlreadyExistsException");
    let e = kms_err(c.kms(B, 1).replicate_key(req(&key, A)).await);
    assert_eq!(e.code(), "UnsupportedOperationException");
    assert_eq!(
        e.message(),
        format!("{} is not a multi-region primary key.", arn(B, &key))
    );
    let single = crate::t10_basics::create_key(&c, 1, "single").await;
    let e = kms_err(
        c.kms(A, 1)
            .replicate_key(req(single.key_id.as_deref().unwrap(), B))
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    let e = kms_err(c.kms(A, 1).replicate_key(req(&key, "NOT A REGION")).await);
    assert_eq!(e.code(), "ValidationException");
    let e = kms_err(c.kms(A, 1).replicate_key(req(&key, "eu-central-1")).await);
    assert_eq!(
        e.code(),
        "UnsupportedOperationException",
        "a Region outside the topology"
    );
    // Shared properties cannot be changed on a replica.
    let e = kms_err(
        c.kms(B, 1)
            .enable_key_rotation(pb::EnableKeyRotationRequest {
                key_id: Some(key.clone()),
                rotation_period_in_days: None,
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    let e = kms_err(
        c.kms(B, 2)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key.clone()),
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    // Independent properties are the replica's own: disabling it leaves the primary alone.
    ok(c.kms(B, 1)
        .disable_key(pb::DisableKeyRequest {
            key_id: Some(key.clone()),
        })
        .await);
    c.settle(B).await;
    assert_eq!(
        c.describe(A, 1, &key).await.key_state.as_deref(),
        Some("Enabled")
    );
    let e = kms_err(c.kms(A, 1).replicate_key(req(&key, B)).await);
    assert_eq!(e.code(), "AlreadyExistsException");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotations_on_the_primary_reach_every_replica_and_old_ciphertexts_keep_decrypting() {
    let c = Cluster::start(&ALL, 3);
    for r in ALL {
        c.leader(r).await;
    }
    let md = create_mrk(&c, A, None).await;
    let key = md.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    replicate(&c, &key, A, C, "Enabled").await;
    let v0 = encrypt(&c, B, &key, "v0").await;

    ok(c.kms(A, 1)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key.clone()),
        })
        .await);
    let first = md.current_key_material_id.unwrap();
    let mut current = String::new();
    for r in ALL {
        for n in c.ids(r) {
            let m = c
                .wait_key(r, n, &key, "on-demand rotation everywhere", |m| {
                    m.current_key_material_id
                        .as_deref()
                        .is_some_and(|id| id != first)
                })
                .await;
            if current.is_empty() {
                current = m.current_key_material_id.unwrap();
            }
            assert_eq!(
                c.describe(r, n, &key)
                    .await
                    .current_key_material_id
                    .as_deref(),
                Some(current.as_str())
            );
        }
    }
    let v1 = encrypt(&c, C, &key, "v1").await;

    // Automatic rotation, fired by the primary Region's simulated clock.
    ok(c.kms(A, 2)
        .enable_key_rotation(pb::EnableKeyRotationRequest {
            key_id: Some(key.clone()),
            rotation_period_in_days: Some(90),
        })
        .await);
    for r in [B, C] {
        wait_rotation_setting(&c, r, &key).await;
    }
    c.advance_clock(A, 91 * 86_400_000).await;
    let mut automatic = String::new();
    for r in ALL {
        let m = c
            .wait_key(r, 1, &key, "automatic rotation everywhere", |m| {
                m.current_key_material_id
                    .as_deref()
                    .is_some_and(|id| id != first && id != current)
            })
            .await;
        let id = m.current_key_material_id.unwrap();
        if automatic.is_empty() {
            automatic = id.clone();
        }
        assert_eq!(
            id, automatic,
            "CurrentKeyMaterialId is equal in every Region"
        );
    }
    let v2 = encrypt(&c, A, &key, "v2").await;
    for r in ALL {
        for (blob, text) in [(&v0, "v0"), (&v1, "v1"), (&v2, "v2")] {
            let d = decrypt(&c, r, 2, blob, None).await.unwrap();
            assert_eq!(d.plaintext.as_deref(), Some(text.as_bytes()), "{r} {text}");
        }
    }
    let rotations = ok(c
        .kms(B, 1)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await)
    .rotations;
    let kinds: Vec<_> = rotations
        .iter()
        .filter_map(|r| r.rotation_type.clone())
        .collect();
    assert_eq!(kinds, ["ON_DEMAND", "AUTOMATIC"]);
}

/// Waits until `region` reports the primary's rotation setting (it is a shared property).
pub async fn wait_rotation_setting(c: &Cluster, region: &str, key: &str) {
    crate::harness::wait_for(
        std::time::Duration::from_secs(30),
        "rotation setting synchronized",
        || async {
            let s = c
                .kms(region, 1)
                .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
                    key_id: Some(key.into()),
                })
                .await
                .ok()?
                .into_inner();
            (s.key_rotation_enabled == Some(true)).then_some(())
        },
    )
    .await;
}

/// Related keys stay in one partition: us-gov-west-1 (aws-us-gov, which has multi-Region keys)
/// and us-east-1 (aws) refuse to replicate into each other.
#[tokio::test(flavor = "multi_thread")]
async fn a_region_of_another_partition_is_refused_as_a_replica_target() {
    const GOV: &str = "us-gov-west-1";
    let c = Cluster::start(&[A, GOV], 1);
    c.leader(A).await;
    c.leader(GOV).await;
    // us-gov-west-1 is its own partition: its keys have aws-us-gov ARNs.
    let gov_key = create_mrk(&c, GOV, None).await;
    let gov_arn = gov_key.arn.unwrap();
    assert!(
        gov_arn.starts_with("arn:aws-us-gov:kms:us-gov-west-1:"),
        "{gov_arn}"
    );
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    for (from, to, key, message) in [
        (
            A,
            GOV,
            key.clone(),
            format!(
                "{} cannot be replicated to us-gov-west-1: it is in partition aws-us-gov, and related multi-Region keys must all be in partition aws.",
                arn(A, &key)
            ),
        ),
        (
            GOV,
            A,
            gov_key.key_id.unwrap(),
            format!(
                "{gov_arn} cannot be replicated to us-east-1: it is in partition aws, and related multi-Region keys must all be in partition aws-us-gov."
            ),
        ),
    ] {
        let e = kms_err(
            c.kms(from, 1)
                .replicate_key(pb::ReplicateKeyRequest {
                    key_id: Some(key.clone()),
                    replica_region: Some(to.into()),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "UnsupportedOperationException");
        assert_eq!(e.message(), message);
        // Nothing was created on either side.
        let m = c
            .describe(from, 1, &key)
            .await
            .multi_region_configuration
            .unwrap();
        assert!(m.replica_keys.is_empty(), "{m:?}");
        let e = kms_err(
            c.kms(to, 1)
                .describe_key(pb::DescribeKeyRequest {
                    key_id: Some(key),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "NotFoundException");
    }
}

/// AWS has no multi-Region keys in China (Beijing) and China (Ningxia), the Regions of the
/// aws-cn partition: CreateKey `MultiRegion=true` and ReplicateKey into them are refused, and
/// single-Region keys work there as anywhere.
#[tokio::test(flavor = "multi_thread")]
async fn the_china_regions_have_no_multi_region_keys() {
    const BJS: &str = "cn-north-1";
    const ZHY: &str = "cn-northwest-1";
    let c = Cluster::start(&[BJS, ZHY], 1);
    for region in [BJS, ZHY] {
        c.leader(region).await;
        let e = kms_err(
            c.kms(region, 1)
                .create_key(pb::CreateKeyRequest {
                    multi_region: Some(true),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "UnsupportedOperationException", "{region}");
        assert_eq!(
            e.message(),
            format!("Multi-Region keys are not supported in {region}.")
        );
        // The same through the one AWS endpoint, with the AWS SDK.
        let sdk = c.sdk(&c.gateway_url(), region);
        let e = sdk
            .create_key()
            .multi_region(true)
            .send()
            .await
            .unwrap_err();
        use aws_sdk_kms::error::ProvideErrorMetadata;
        assert_eq!(e.code(), Some("UnsupportedOperationException"), "{e:?}");
        assert_eq!(
            e.message(),
            Some(format!("Multi-Region keys are not supported in {region}.").as_str())
        );
        assert!(
            sdk.list_keys().send().await.unwrap().keys().is_empty(),
            "a refused CreateKey created a key in {region}"
        );
    }

    // A single-Region key works, with its aws-cn ARN.
    let md = ok(c
        .kms(BJS, 1)
        .create_key(pb::CreateKeyRequest::default())
        .await)
    .key_metadata
    .unwrap();
    let key = md.key_id.unwrap();
    assert!(!key.starts_with("mrk-"), "{key}");
    assert_eq!(md.multi_region, Some(false));
    assert_eq!(
        md.arn.as_deref(),
        Some(format!("arn:aws-cn:kms:cn-north-1:111122223333:key/{key}").as_str())
    );
    let blob = ok(c
        .kms(BJS, 1)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"beijing".to_vec()),
            encryption_context: ctx(),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap();
    let plain = decrypt(&c, BJS, 1, &blob, None).await.unwrap();
    assert_eq!(plain.plaintext.as_deref(), Some(&b"beijing"[..]));

    // ReplicateKey into the other China Region is refused for what the partition lacks.
    let e = kms_err(
        c.kms(BJS, 1)
            .replicate_key(pb::ReplicateKeyRequest {
                key_id: Some(key.clone()),
                replica_region: Some(ZHY.into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    assert_eq!(
        e.message(),
        "Multi-Region keys are not supported in cn-northwest-1."
    );
    let e = kms_err(
        c.kms(ZHY, 1)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(key),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "NotFoundException");
}

/// A Region without a transport key runs no synchronizer: no multi-Region key is replicated
/// to or from it (instead of a replica that would stay `Creating` for ever).
#[tokio::test(flavor = "multi_thread")]
async fn a_region_without_a_transport_key_is_refused_both_ways() {
    let c = Cluster::start_edited(&[A, B], 1, |t| {
        let b = t.regions.iter_mut().find(|r| r.name == B).unwrap();
        b.transport_key_file = None;
        b.transport_certificate = None;
    });
    c.leader(A).await;
    c.leader(B).await;
    let expected = format!(
        "Region {B} has no transport key in this kmsim topology (transport_key_file and transport_certificate), so multi-Region keys cannot be exchanged with it."
    );
    for (from, to) in [(A, B), (B, A)] {
        let key = create_mrk(&c, from, None).await.key_id.unwrap();
        let e = kms_err(
            c.kms(from, 1)
                .replicate_key(pb::ReplicateKeyRequest {
                    key_id: Some(key.clone()),
                    replica_region: Some(to.into()),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "UnsupportedOperationException", "{from} -> {to}");
        assert_eq!(e.message(), expected, "{from} -> {to}");
        let m = c
            .describe(from, 1, &key)
            .await
            .multi_region_configuration
            .unwrap();
        assert!(m.replica_keys.is_empty(), "{m:?}");
    }
}
