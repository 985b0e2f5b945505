//! The cache of unwrapped key material: bounded on every node by the topology's
//! `[caches] material_keys`, and emptied of a key on every node — not only on the node that
//! proposed it — when its material is deleted (DeleteImportedKeyMaterial, and the deletion of
//! a key at the end of its waiting period). Observed through every node's admin Status.

use std::time::Duration;

use kmsim_proto::kms::v1 as pb;

use crate::harness::{ok, wait_for, Cluster};
use crate::openssl::Openssl;
use crate::t10_basics::create_key;

const R: &str = "us-east-1";
const DAY_MS: i64 = 86_400_000;
const CAPACITY: u64 = 4;

/// Encrypts with `key_id` through node `node` (which unwraps the key's material into its cache).
async fn encrypt(c: &Cluster, node: u64, key_id: &str) {
    let out = ok(c
        .kms(R, node)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key_id.to_string()),
            plaintext: Some(b"cached".to_vec()),
            ..Default::default()
        })
        .await);
    assert!(out.ciphertext_blob.is_some());
}

/// How many keys node `node` holds unwrapped material of.
async fn cached(c: &Cluster, node: u64) -> u64 {
    let s = c.status(R, node).await.expect("node answers");
    assert_eq!(s.material_cache_capacity, CAPACITY, "node {node}");
    assert!(
        s.material_cache_keys <= CAPACITY,
        "node {node} holds {} keys, more than its capacity",
        s.material_cache_keys
    );
    s.material_cache_keys
}

/// Waits until every node holds exactly `n` keys' material.
async fn wait_every_node_holds(c: &Cluster, n: u64, what: &str) {
    for id in c.ids(R) {
        wait_for(Duration::from_secs(30), what, || async {
            (cached(c, id).await == n).then_some(())
        })
        .await;
    }
}

/// An EXTERNAL symmetric key with material imported (wrapped by openssl), seen by every node.
async fn imported_key(c: &Cluster) -> String {
    let key_id = ok(c
        .kms(R, 2)
        .create_key(pb::CreateKeyRequest {
            origin: Some("EXTERNAL".into()),
            ..Default::default()
        })
        .await)
    .key_metadata
    .unwrap()
    .key_id
    .unwrap();
    let params = ok(c
        .kms(R, 1)
        .get_parameters_for_import(pb::GetParametersForImportRequest {
            key_id: Some(key_id.clone()),
            wrapping_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            wrapping_key_spec: Some("RSA_2048".into()),
        })
        .await);
    let o = Openssl::new();
    o.ok(&["rand", "-out", "material.bin", "32"]);
    let wrapped = o.oaep_sha256(params.public_key.as_ref().unwrap(), &o.read("material.bin"));
    ok(c.kms(R, 1)
        .import_key_material(pb::ImportKeyMaterialRequest {
            key_id: Some(key_id.clone()),
            import_token: params.import_token.clone(),
            encrypted_key_material: Some(wrapped),
            expiration_model: Some("KEY_MATERIAL_DOES_NOT_EXPIRE".into()),
            ..Default::default()
        })
        .await);
    for id in c.ids(R) {
        c.wait_key(R, id, &key_id, "imported material", |m| {
            m.key_state.as_deref() == Some("Enabled")
        })
        .await;
    }
    key_id
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_caches_at_most_material_keys_and_evicts_deleted_material_whoever_proposed() {
    let c = Cluster::start_edited(&[R], 3, |t| t.caches.material_keys = CAPACITY as usize);
    c.leader(R).await;
    for id in c.ids(R) {
        assert_eq!(cached(&c, id).await, 0, "node {id} before any use");
    }

    // More keys than the cache holds, each used on every node: each node keeps the newest 4.
    let mut keys = Vec::new();
    for i in 0..CAPACITY + 2 {
        keys.push(create_key(&c, 1, &format!("key {i}")).await.key_id.unwrap());
    }
    for id in c.ids(R) {
        for k in &keys {
            encrypt(&c, id, k).await;
        }
        assert_eq!(cached(&c, id).await, CAPACITY, "node {id}");
    }
    // A key evicted by the bound is unwrapped again on its next use.
    for id in c.ids(R) {
        encrypt(&c, id, &keys[0]).await;
        assert_eq!(cached(&c, id).await, CAPACITY, "node {id}");
    }

    // Imported material in use on every node, then deleted through one node only: every node
    // drops it from its cache (4 → 3; nothing else leaves a full cache).
    let imported = imported_key(&c).await;
    for id in c.ids(R) {
        encrypt(&c, id, &imported).await;
        assert_eq!(cached(&c, id).await, CAPACITY, "node {id}");
    }
    ok(c.kms(R, 3)
        .delete_imported_key_material(pb::DeleteImportedKeyMaterialRequest {
            key_id: Some(imported.clone()),
            key_material_id: None,
        })
        .await);
    wait_every_node_holds(
        &c,
        CAPACITY - 1,
        "the deleted material evicted on every node",
    )
    .await;

    // A key used last on every node, scheduled for deletion (its material still exists: the
    // cache keeps it), then deleted by the leader's lifecycle task when the window ends: every
    // node drops it (3 → 2).
    let doomed = keys[0].clone();
    for id in c.ids(R) {
        encrypt(&c, id, &doomed).await;
    }
    ok(c.kms(R, 2)
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(doomed.clone()),
            pending_window_in_days: Some(7),
        })
        .await);
    c.settle(R).await;
    for id in c.ids(R) {
        assert_eq!(
            cached(&c, id).await,
            CAPACITY - 1,
            "node {id} while pending"
        );
    }
    c.advance_clock(R, 8 * DAY_MS).await;
    wait_every_node_holds(&c, CAPACITY - 2, "the deleted key evicted on every node").await;
    for id in c.ids(R) {
        let gone = c
            .kms(R, id)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(doomed.clone()),
                ..Default::default()
            })
            .await;
        assert!(gone.is_err(), "node {id} still describes the deleted key");
    }
}
