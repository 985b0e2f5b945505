//! Every operation of the foundation, through every node of a 3-node Region.

use std::collections::HashMap;
use std::time::Duration;

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, wait_for, Cluster};

const R: &str = "us-east-1";

/// Creates a key through node `via` and waits until every node has applied it.
pub async fn create_key(c: &Cluster, via: u64, description: &str) -> pb::KeyMetadata {
    let resp = ok(c
        .kms(R, via)
        .create_key(pb::CreateKeyRequest {
            description: Some(description.into()),
            ..Default::default()
        })
        .await);
    let md = resp.key_metadata.expect("metadata");
    let key_id = md.key_id.clone().expect("key id");
    for id in c.ids(R) {
        c.wait_sees(R, id, &key_id).await;
    }
    md
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_works_through_any_node() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;

    // CreateKey through each node in turn (followers forward to the leader).
    let mut keys = Vec::new();
    for via in c.ids(R) {
        let md = create_key(&c, via, &format!("made via node {via}")).await;
        assert_eq!(md.key_state.as_deref(), Some("Enabled"));
        assert_eq!(md.enabled, Some(true));
        assert_eq!(md.key_spec.as_deref(), Some("SYMMETRIC_DEFAULT"));
        assert_eq!(
            md.customer_master_key_spec.as_deref(),
            Some("SYMMETRIC_DEFAULT")
        );
        assert_eq!(md.key_usage.as_deref(), Some("ENCRYPT_DECRYPT"));
        assert_eq!(md.origin.as_deref(), Some("AWS_KMS"));
        assert_eq!(md.key_manager.as_deref(), Some("CUSTOMER"));
        assert_eq!(md.multi_region, Some(false));
        assert!(md.multi_region_configuration.is_none());
        assert_eq!(
            md.encryption_algorithms,
            vec!["SYMMETRIC_DEFAULT".to_string()]
        );
        assert_eq!(md.aws_account_id.as_deref(), Some("111122223333"));
        let id = md.key_id.clone().unwrap();
        assert_eq!(
            md.arn.as_deref(),
            Some(format!("arn:aws:kms:{R}:111122223333:key/{id}").as_str())
        );
        assert_eq!(
            md.current_key_material_id.as_ref().map(|m| m.len()),
            Some(64)
        );
        keys.push(md);
    }
    let key = keys[0].key_id.clone().unwrap();
    let arn = keys[0].arn.clone().unwrap();

    // Encrypt on one node, decrypt on every node, with no KeyId and with every form of it.
    let ctx: HashMap<String, String> = [("purpose".to_string(), "test".to_string())].into();
    let enc = ok(c
        .kms(R, 1)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"hello kmsim".to_vec()),
            encryption_context: ctx.clone(),
            ..Default::default()
        })
        .await);
    assert_eq!(enc.key_id.as_deref(), Some(arn.as_str()));
    assert_eq!(
        enc.encryption_algorithm.as_deref(),
        Some("SYMMETRIC_DEFAULT")
    );
    let blob = enc.ciphertext_blob.unwrap();
    for via in c.ids(R) {
        for key_id in [None, Some(key.clone()), Some(arn.clone())] {
            let dec = ok(c
                .kms(R, via)
                .decrypt(pb::DecryptRequest {
                    ciphertext_blob: Some(blob.clone()),
                    encryption_context: ctx.clone(),
                    key_id,
                    ..Default::default()
                })
                .await);
            assert_eq!(dec.plaintext.as_deref(), Some(&b"hello kmsim"[..]));
            assert_eq!(dec.key_id.as_deref(), Some(arn.as_str()));
            assert_eq!(dec.key_material_id, keys[0].current_key_material_id);
        }
    }

    // ReEncrypt to the second key; decrypt the result.
    let key2_arn = keys[1].arn.clone().unwrap();
    let re = ok(c
        .kms(R, 2)
        .re_encrypt(pb::ReEncryptRequest {
            ciphertext_blob: Some(blob.clone()),
            source_encryption_context: ctx.clone(),
            destination_key_id: keys[1].key_id.clone(),
            ..Default::default()
        })
        .await);
    assert_eq!(re.source_key_id.as_deref(), Some(arn.as_str()));
    assert_eq!(re.key_id.as_deref(), Some(key2_arn.as_str()));
    let dec = ok(c
        .kms(R, 3)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: re.ciphertext_blob,
            ..Default::default()
        })
        .await);
    assert_eq!(dec.plaintext.as_deref(), Some(&b"hello kmsim"[..]));
    assert_eq!(dec.key_id.as_deref(), Some(key2_arn.as_str()));

    // Data keys: plaintext and wrapped copy agree; the WithoutPlaintext copy decrypts.
    let dk = ok(c
        .kms(R, 3)
        .generate_data_key(pb::GenerateDataKeyRequest {
            key_id: Some(key.clone()),
            key_spec: Some("AES_256".into()),
            ..Default::default()
        })
        .await);
    assert_eq!(dk.plaintext.as_ref().map(|p| p.len()), Some(32));
    let dec = ok(c
        .kms(R, 1)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: dk.ciphertext_blob.clone(),
            ..Default::default()
        })
        .await);
    assert_eq!(dec.plaintext, dk.plaintext);
    let dk2 = ok(c
        .kms(R, 2)
        .generate_data_key_without_plaintext(pb::GenerateDataKeyWithoutPlaintextRequest {
            key_id: Some(key.clone()),
            number_of_bytes: Some(64),
            ..Default::default()
        })
        .await);
    let dec = ok(c
        .kms(R, 3)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: dk2.ciphertext_blob,
            ..Default::default()
        })
        .await);
    assert_eq!(dec.plaintext.map(|p| p.len()), Some(64));

    let rnd = ok(c
        .kms(R, 2)
        .generate_random(pb::GenerateRandomRequest {
            number_of_bytes: Some(100),
            ..Default::default()
        })
        .await);
    assert_eq!(rnd.plaintext.map(|p| p.len()), Some(100));

    // DisableKey through a follower; every node refuses Encrypt once it has applied it.
    ok(c.kms(R, 2)
        .disable_key(pb::DisableKeyRequest {
            key_id: Some(key.clone()),
        })
        .await);
    for via in c.ids(R) {
        let e = wait_for(Duration::from_secs(10), "DisableKey applied", || {
            let mut client = c.kms(R, via);
            let key = key.clone();
            async move {
                client
                    .encrypt(pb::EncryptRequest {
                        key_id: Some(key),
                        plaintext: Some(vec![1]),
                        ..Default::default()
                    })
                    .await
                    .err()
            }
        })
        .await;
        let e = kmsim_proto::status::error_from_status(&e);
        assert_eq!(e.code(), "DisabledException");
        assert_eq!(e.message(), format!("{arn} is disabled."));
    }
    let d = ok(c
        .kms(R, 1)
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await);
    assert_eq!(
        d.key_metadata.unwrap().key_state.as_deref(),
        Some("Disabled")
    );
    ok(c.kms(R, 3)
        .enable_key(pb::EnableKeyRequest {
            key_id: Some(arn.clone()),
        })
        .await);

    // UpdateKeyDescription.
    ok(c.kms(R, 3)
        .update_key_description(pb::UpdateKeyDescriptionRequest {
            key_id: Some(key.clone()),
            description: Some("new words".into()),
        })
        .await);
    let d = ok(c
        .kms(R, 3)
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await);
    assert_eq!(
        d.key_metadata.unwrap().description.as_deref(),
        Some("new words")
    );

    // Aliases: create, use in Encrypt/DescribeKey by name and ARN, update, list, delete.
    ok(c.kms(R, 2)
        .create_alias(pb::CreateAliasRequest {
            alias_name: Some("alias/app".into()),
            target_key_id: Some(key.clone()),
        })
        .await);
    let alias_arn = format!("arn:aws:kms:{R}:111122223333:alias/app");
    for key_id in ["alias/app".to_string(), alias_arn.clone()] {
        let d = ok(c
            .kms(R, 2)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(key_id.clone()),
                ..Default::default()
            })
            .await);
        assert_eq!(
            d.key_metadata.unwrap().key_id.as_deref(),
            Some(key.as_str())
        );
        let e = ok(c
            .kms(R, 2)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key_id),
                plaintext: Some(vec![7; 10]),
                ..Default::default()
            })
            .await);
        assert_eq!(e.key_id.as_deref(), Some(arn.as_str()));
    }
    let dup = kms_err(
        c.kms(R, 1)
            .create_alias(pb::CreateAliasRequest {
                alias_name: Some("alias/app".into()),
                target_key_id: Some(key.clone()),
            })
            .await,
    );
    assert_eq!(dup.code(), "AlreadyExistsException");
    ok(c.kms(R, 1)
        .update_alias(pb::UpdateAliasRequest {
            alias_name: Some("alias/app".into()),
            target_key_id: keys[1].key_id.clone(),
        })
        .await);
    let list = ok(c
        .kms(R, 1)
        .list_aliases(pb::ListAliasesRequest {
            key_id: keys[1].key_id.clone(),
            ..Default::default()
        })
        .await);
    assert_eq!(list.aliases.len(), 1);
    let entry = &list.aliases[0];
    assert_eq!(entry.alias_name.as_deref(), Some("alias/app"));
    assert_eq!(entry.alias_arn.as_deref(), Some(alias_arn.as_str()));
    assert_eq!(entry.target_key_id, keys[1].key_id);
    assert!(entry.creation_date.is_some() && entry.last_updated_date.is_some());
    ok(c.kms(R, 3)
        .delete_alias(pb::DeleteAliasRequest {
            alias_name: Some("alias/app".into()),
        })
        .await);
    let gone = kms_err(
        c.kms(R, 1)
            .delete_alias(pb::DeleteAliasRequest {
                alias_name: Some("alias/app".into()),
            })
            .await,
    );
    assert_eq!(gone.code(), "NotFoundException");

    // Tags: add, overwrite, list in insertion order with pagination, remove.
    let tag = |k: &str, v: &str| pb::Tag {
        tag_key: Some(k.into()),
        tag_value: Some(v.into()),
    };
    ok(c.kms(R, 3)
        .tag_resource(pb::TagResourceRequest {
            key_id: Some(key.clone()),
            tags: vec![tag("a", "1"), tag("b", "2"), tag("c", "3")],
        })
        .await);
    ok(c.kms(R, 2)
        .tag_resource(pb::TagResourceRequest {
            key_id: Some(key.clone()),
            tags: vec![tag("a", "9")],
        })
        .await);
    let page1 = ok(c
        .kms(R, 2)
        .list_resource_tags(pb::ListResourceTagsRequest {
            key_id: Some(key.clone()),
            limit: Some(2),
            ..Default::default()
        })
        .await);
    assert_eq!(page1.tags, vec![tag("a", "9"), tag("b", "2")]);
    assert_eq!(page1.truncated, Some(true));
    let page2 = ok(c
        .kms(R, 2)
        .list_resource_tags(pb::ListResourceTagsRequest {
            key_id: Some(key.clone()),
            limit: Some(2),
            marker: page1.next_marker,
        })
        .await);
    assert_eq!(page2.tags, vec![tag("c", "3")]);
    assert_eq!(page2.truncated, Some(false));
    ok(c.kms(R, 1)
        .untag_resource(pb::UntagResourceRequest {
            key_id: Some(key.clone()),
            tag_keys: vec!["b".into(), "zz".into()],
        })
        .await);
    let all = ok(c
        .kms(R, 1)
        .list_resource_tags(pb::ListResourceTagsRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await);
    assert_eq!(all.tags, vec![tag("a", "9"), tag("c", "3")]);

    // Key policies: default policy, put, get, list.
    let p = ok(c
        .kms(R, 1)
        .get_key_policy(pb::GetKeyPolicyRequest {
            key_id: Some(key.clone()),
            policy_name: None,
        })
        .await);
    let doc: serde_json::Value = serde_json::from_str(p.policy.as_deref().unwrap()).unwrap();
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::111122223333:root"
    );
    let new_policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"s","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
    ok(c.kms(R, 2)
        .put_key_policy(pb::PutKeyPolicyRequest {
            key_id: Some(key.clone()),
            policy: Some(new_policy.into()),
            ..Default::default()
        })
        .await);
    let p = ok(c
        .kms(R, 2)
        .get_key_policy(pb::GetKeyPolicyRequest {
            key_id: Some(key.clone()),
            policy_name: Some("default".into()),
        })
        .await);
    assert_eq!(p.policy.as_deref(), Some(new_policy));
    assert_eq!(p.policy_name.as_deref(), Some("default"));
    let names = ok(c
        .kms(R, 3)
        .list_key_policies(pb::ListKeyPoliciesRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await);
    assert_eq!(names.policy_names, vec!["default".to_string()]);
    let bad = kms_err(
        c.kms(R, 3)
            .put_key_policy(pb::PutKeyPolicyRequest {
                key_id: Some(key.clone()),
                policy: Some("{nope".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(bad.code(), "MalformedPolicyDocumentException");

    // ListKeys with pagination: every key exactly once.
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = ok(c
            .kms(R, 3)
            .list_keys(pb::ListKeysRequest {
                limit: Some(2),
                marker: marker.clone(),
            })
            .await);
        assert!(page.keys.len() <= 2);
        seen.extend(page.keys.iter().map(|k| k.key_id.clone().unwrap()));
        for k in &page.keys {
            assert_eq!(
                k.key_arn.as_deref(),
                Some(
                    format!(
                        "arn:aws:kms:{R}:111122223333:key/{}",
                        k.key_id.as_deref().unwrap()
                    )
                    .as_str()
                )
            );
        }
        if page.truncated != Some(true) {
            break;
        }
        marker = page.next_marker;
    }
    let mut expected: Vec<String> = keys.iter().map(|k| k.key_id.clone().unwrap()).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // ScheduleKeyDeletion then CancelKeyDeletion gives Disabled.
    let s = ok(c
        .kms(R, 2)
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: keys[2].key_id.clone(),
            pending_window_in_days: Some(7),
        })
        .await);
    assert_eq!(s.key_state.as_deref(), Some("PendingDeletion"));
    assert_eq!(s.pending_window_in_days, Some(7));
    assert_eq!(s.key_id, keys[2].arn);
    let days = (s.deletion_date.unwrap() - keys[2].creation_date.unwrap()) / 86_400.0;
    assert!(
        (6.99..7.01).contains(&days),
        "deletion date {days} days after creation"
    );
    let c2 = ok(c
        .kms(R, 3)
        .cancel_key_deletion(pb::CancelKeyDeletionRequest {
            key_id: keys[2].key_id.clone(),
        })
        .await);
    assert_eq!(c2.key_id, keys[2].arn);
    let d = ok(c
        .kms(R, 3)
        .describe_key(pb::DescribeKeyRequest {
            key_id: keys[2].key_id.clone(),
            ..Default::default()
        })
        .await);
    let md = d.key_metadata.unwrap();
    assert_eq!(md.key_state.as_deref(), Some("Disabled"));
    assert!(md.deletion_date.is_none());
}
