//! Read-after-write as AWS clients expect it, through the single endpoint: the gateway sends
//! every new client connection to the next node of the Region, so consecutive calls on fresh
//! connections land on different nodes, followers included. A call that follows an
//! acknowledged write must see it wherever it lands: the replica of a ReplicateKey in its own
//! Region (`Creating` at once), a new key, the new primary of an UpdatePrimaryRegion.

use std::time::Duration;

use bytes::Bytes;
use kmsim_proto::kms::v1 as pb;
use kmsim_sim::aws_client::{Answer, AwsJsonClient};
use serde_json::{json, Value};

use crate::harness::{kms_err, ok, wait_for, Cluster};
use crate::t70_multi_region::{create_mrk, A, B};
use crate::t71_multi_region_faults::chaos;

/// Calls `op` on a new connection to the gateway (so on the next node of the Region).
async fn fresh(client: &AwsJsonClient, op: &str, body: Value) -> Answer {
    let mut conn = client.connect().await.expect("connect to the gateway");
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
    conn.send(client.signed(op, bytes).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

/// The answer's JSON, failing the test on an error answer.
fn success(what: &str, a: Answer) -> Value {
    assert!(
        a.status.is_success(),
        "{what}: {:?} {}",
        a.error_code(),
        a.error_message()
    );
    a.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_sees_what_was_just_acknowledged_through_the_gateway() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let gw = c.gateway_url();
    let (in_a, in_b) = (c.raw(&gw, A), c.raw(&gw, B));
    for i in 0..200 {
        // CreateKey, then DescribeKey on another node of the same Region.
        let created = success(
            "CreateKey",
            fresh(&in_a, "CreateKey", json!({"MultiRegion": true})).await,
        );
        let key = created["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        success(
            &format!("DescribeKey of a new key, round {i}"),
            fresh(&in_a, "DescribeKey", json!({"KeyId": key})).await,
        );
        // ReplicateKey, then DescribeKey in the replica's Region on whichever node.
        let r = success(
            "ReplicateKey",
            fresh(
                &in_a,
                "ReplicateKey",
                json!({"KeyId": key, "ReplicaRegion": B, "Description": format!("replica {i}")}),
            )
            .await,
        );
        assert_eq!(r["ReplicaKeyMetadata"]["KeyState"], "Creating");
        let d = success(
            &format!("DescribeKey of a new replica, round {i}"),
            fresh(&in_b, "DescribeKey", json!({"KeyId": key})).await,
        );
        let md = &d["KeyMetadata"];
        let state = md["KeyState"].as_str().unwrap();
        assert!(state == "Creating" || state == "Enabled", "{state}");
        assert_eq!(md["Description"], format!("replica {i}"));
        assert_eq!(
            md["MultiRegionConfiguration"]["MultiRegionKeyType"],
            "REPLICA"
        );
        assert_eq!(
            md["MultiRegionConfiguration"]["PrimaryKey"]["Region"], A,
            "{md}"
        );
        // The creation date is the replica Region's, the same in the answer and in DescribeKey.
        assert_eq!(md["CreationDate"], r["ReplicaKeyMetadata"]["CreationDate"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn update_primary_region_is_seen_in_both_regions_once_it_answers() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let gw = c.gateway_url();
    let clients = [(A, c.raw(&gw, A)), (B, c.raw(&gw, B))];
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    success(
        "ReplicateKey",
        fresh(
            &clients[0].1,
            "ReplicateKey",
            json!({"KeyId": key, "ReplicaRegion": B}),
        )
        .await,
    );
    let mut primary = 0;
    for round in 0..10 {
        // Both keys Enabled again (the previous hand-over is over) before the next one.
        for (_, client) in &clients {
            wait_for(Duration::from_secs(30), "both keys Enabled", || async {
                let d = fresh(client, "DescribeKey", json!({"KeyId": key}))
                    .await
                    .json();
                (d["KeyMetadata"]["KeyState"] == "Enabled").then_some(())
            })
            .await;
        }
        let new = 1 - primary;
        success(
            "UpdatePrimaryRegion",
            fresh(
                &clients[primary].1,
                "UpdatePrimaryRegion",
                json!({"KeyId": key, "PrimaryRegion": clients[new].0}),
            )
            .await,
        );
        for (region, client) in &clients {
            for _ in 0..3 {
                let d = success(
                    "DescribeKey",
                    fresh(client, "DescribeKey", json!({"KeyId": key})).await,
                );
                let m = &d["KeyMetadata"]["MultiRegionConfiguration"];
                assert_eq!(
                    m["PrimaryKey"]["Region"], clients[new].0,
                    "round {round}: {region} still shows the old primary: {d}"
                );
                let expected = if *region == clients[new].0 {
                    "PRIMARY"
                } else {
                    "REPLICA"
                };
                assert_eq!(m["MultiRegionKeyType"], expected, "round {round}: {d}");
            }
        }
        primary = new;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creating_replica_takes_what_aws_allows_and_refuses_the_rest() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    // A slow link: the replica request and the material each take 3 s to reach B, so the
    // replica stays Creating for about 3 s after ReplicateKey answers.
    chaos(&c, &["link", "--from", A, "--to", B, "--delay", "3000ms"]);
    let r = ok(c
        .kms(A, 1)
        .replicate_key(pb::ReplicateKeyRequest {
            key_id: Some(key.clone()),
            replica_region: Some(B.into()),
            ..Default::default()
        })
        .await);
    let arn = r.replica_key_metadata.unwrap().arn.unwrap();
    let mut b = c.kms(B, 2);
    let state = |m: pb::KeyMetadata| m.key_state.unwrap();
    assert_eq!(state(c.describe(B, 2, &key).await), "Creating");
    // Allowed while Creating.
    ok(b.tag_resource(pb::TagResourceRequest {
        key_id: Some(key.clone()),
        tags: vec![pb::Tag {
            tag_key: Some("window".into()),
            tag_value: Some("creating".into()),
        }],
    })
    .await);
    ok(b.create_alias(pb::CreateAliasRequest {
        alias_name: Some("alias/while-creating".into()),
        target_key_id: Some(key.clone()),
    })
    .await);
    ok(b.update_key_description(pb::UpdateKeyDescriptionRequest {
        key_id: Some(key.clone()),
        description: Some("set while creating".into()),
    })
    .await);
    let policy = ok(b
        .get_key_policy(pb::GetKeyPolicyRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await)
    .policy
    .unwrap();
    ok(b.put_key_policy(pb::PutKeyPolicyRequest {
        key_id: Some(key.clone()),
        policy: Some(policy),
        ..Default::default()
    })
    .await);
    ok(b.list_grants(pb::ListGrantsRequest {
        key_id: Some(key.clone()),
        ..Default::default()
    })
    .await);
    // Refused while Creating, with AWS's code and message.
    let e = kms_err(
        b.encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"too early".to_vec()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), "KMSInvalidStateException");
    assert_eq!(e.message(), format!("{arn} is creating."));
    let e = kms_err(
        b.enable_key(pb::EnableKeyRequest {
            key_id: Some(key.clone()),
        })
        .await,
    );
    assert_eq!(e.code(), "KMSInvalidStateException");
    // All of the above happened inside the window: the material has not arrived yet.
    assert_eq!(state(c.describe(B, 2, &key).await), "Creating");
    // ScheduleKeyDeletion is allowed too, and holds when the material arrives.
    ok(b.schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
        key_id: Some(key.clone()),
        pending_window_in_days: Some(7),
    })
    .await);
    chaos(&c, &["heal"]);
    ok(b.cancel_key_deletion(pb::CancelKeyDeletionRequest {
        key_id: Some(key.clone()),
    })
    .await);
    ok(b.enable_key(pb::EnableKeyRequest {
        key_id: Some(key.clone()),
    })
    .await);
    // Once the synchronizer has delivered the material, the replica encrypts (through the alias
    // set while Creating), and its Regional changes are all still there.
    wait_for(Duration::from_secs(30), "the replica encrypts", || async {
        c.kms(B, 3)
            .encrypt(pb::EncryptRequest {
                key_id: Some("alias/while-creating".into()),
                plaintext: Some(b"after the window".to_vec()),
                ..Default::default()
            })
            .await
            .ok()
    })
    .await;
    let md = c.describe(B, 3, &key).await;
    assert_eq!(md.key_state.as_deref(), Some("Enabled"));
    assert_eq!(md.description.as_deref(), Some("set while creating"));
    let tags = ok(b
        .list_resource_tags(pb::ListResourceTagsRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await)
    .tags;
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].tag_value.as_deref(), Some("creating"));
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_key_to_an_unreachable_region_fails_retryably_and_leaves_no_replica() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    chaos(&c, &["partition", A, B]);
    let e = kms_err(
        c.kms(A, 2)
            .replicate_key(pb::ReplicateKeyRequest {
                key_id: Some(key.clone()),
                replica_region: Some(B.into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "DependencyTimeoutException", "{e}");
    assert!(e.is_retryable());
    assert!(e.message().contains(B), "{e}");
    // Nothing in the primary's set, on any node.
    for n in c.ids(A) {
        let md = c.describe(A, n, &key).await;
        let replicas = md.multi_region_configuration.unwrap().replica_keys;
        assert!(replicas.is_empty(), "node {n} lists {replicas:?}");
    }
    chaos(&c, &["heal"]);
    // Nothing in the replica Region either (each node confirms with its leader first).
    for n in c.ids(B) {
        let e = kms_err(
            c.kms(B, n)
                .describe_key(pb::DescribeKeyRequest {
                    key_id: Some(key.clone()),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "NotFoundException");
    }
    // The retry the error invites succeeds.
    let r = ok(c
        .kms(A, 2)
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
    c.wait_key(B, 1, &key, "the replica becomes Enabled", |m| {
        m.key_state.as_deref() == Some("Enabled")
    })
    .await;
}
