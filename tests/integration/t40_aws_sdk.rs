//! The official AWS SDK for Rust (`aws-sdk-kms`) against a real cluster, through the gateway
//! (the single endpoint) and through every node's own AWS endpoint: every operation of the
//! operation list, pagination, error codes and messages, and Region routing by the SigV4 scope.

use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState, Tag};
use aws_sdk_kms::Client;

use crate::harness::{wait_for, Cluster};

const R: &str = "us-east-1";
const EU: &str = "eu-west-1";

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

/// Creates a key and returns (key id, ARN).
async fn create(sdk: &Client, description: &str) -> (String, String) {
    let out = sdk
        .create_key()
        .description(description)
        .send()
        .await
        .unwrap();
    let md = out.key_metadata().unwrap();
    (md.key_id().to_string(), md.arn().unwrap().to_string())
}

/// Decrypts a blob that names its key; returns the plaintext.
async fn open(sdk: &Client, blob: Blob) -> Vec<u8> {
    let out = sdk.decrypt().ciphertext_blob(blob).send().await.unwrap();
    out.plaintext().unwrap().as_ref().to_vec()
}

/// Every operation of the list, through one SDK client, with its observable effect checked.
/// Returns the names of the operations called.
pub async fn every_operation(sdk: &Client, region: &str) -> Vec<&'static str> {
    let mut called = Vec::new();
    // CreateKey, DescribeKey.
    let out = sdk
        .create_key()
        .description("sdk")
        .tags(tag("team", "kms"))
        .send()
        .await
        .unwrap();
    assert!(out
        .request_id()
        .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
    let md = out.key_metadata().unwrap();
    let key = md.key_id().to_string();
    let arn = md.arn().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:kms:{region}:111122223333:key/")));
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert!(md.creation_date().is_some());
    let d = sdk.describe_key().key_id(&arn).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("sdk"));
    called.extend(["CreateKey", "DescribeKey"]);

    // Encrypt, Decrypt, ReEncrypt, with an encryption context.
    let enc = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"attack at dawn".to_vec()))
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let blob = enc.ciphertext_blob().unwrap().clone();
    let dec = sdk
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"attack at dawn");
    assert_eq!(dec.key_id(), Some(arn.as_str()));
    let (other, other_arn) = create(sdk, "sdk re-encrypt target").await;
    let re = sdk
        .re_encrypt()
        .ciphertext_blob(blob)
        .source_encryption_context("purpose", "test")
        .destination_key_id(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(re.key_id(), Some(other_arn.as_str()));
    assert_eq!(re.source_key_id(), Some(arn.as_str()));
    let dec = open(sdk, re.ciphertext_blob().unwrap().clone()).await;
    assert_eq!(dec, b"attack at dawn");
    called.extend(["Encrypt", "Decrypt", "ReEncrypt"]);

    // Data keys and randomness.
    let dk = sdk
        .generate_data_key()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 32);
    let opened = open(sdk, dk.ciphertext_blob().unwrap().clone()).await;
    assert_eq!(opened, dk.plaintext().unwrap().as_ref());
    let dk = sdk
        .generate_data_key_without_plaintext()
        .key_id(&key)
        .number_of_bytes(16)
        .send()
        .await
        .unwrap();
    let opened = open(sdk, dk.ciphertext_blob().unwrap().clone()).await;
    assert_eq!(opened.len(), 16);
    let rnd = sdk
        .generate_random()
        .number_of_bytes(24)
        .send()
        .await
        .unwrap();
    assert_eq!(rnd.plaintext().unwrap().as_ref().len(), 24);
    called.extend([
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
    ]);

    // Enable, disable, description.
    sdk.disable_key().key_id(&key).send().await.unwrap();
    let e = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("DisabledException"));
    assert_eq!(e.message(), Some(format!("{arn} is disabled.").as_str()));
    sdk.enable_key().key_id(&key).send().await.unwrap();
    sdk.update_key_description()
        .key_id(&key)
        .description("renamed")
        .send()
        .await
        .unwrap();
    let d = sdk.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("renamed"));
    assert_eq!(
        d.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled)
    );
    called.extend(["DisableKey", "EnableKey", "UpdateKeyDescription"]);

    // Aliases, with pagination (names unique to this call: the function runs more than once).
    let p = &key[..8];
    for i in 0..3 {
        sdk.create_alias()
            .alias_name(format!("alias/sdk-{p}-{i}"))
            .target_key_id(&key)
            .send()
            .await
            .unwrap();
    }
    sdk.update_alias()
        .alias_name(format!("alias/sdk-{p}-2"))
        .target_key_id(&other)
        .send()
        .await
        .unwrap();
    let enc = sdk
        .encrypt()
        .key_id(format!("alias/sdk-{p}-2"))
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(other_arn.as_str()));
    let aliases: Vec<_> = sdk
        .list_aliases()
        .limit(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let names: Vec<&str> = aliases.iter().filter_map(|a| a.alias_name()).collect();
    for i in 0..3 {
        assert!(
            names.contains(&format!("alias/sdk-{p}-{i}").as_str()),
            "{names:?}"
        );
    }
    let page = sdk.list_aliases().key_id(&key).send().await.unwrap();
    assert_eq!(page.aliases().len(), 2);
    sdk.delete_alias()
        .alias_name(format!("alias/sdk-{p}-0"))
        .send()
        .await
        .unwrap();
    let page = sdk.list_aliases().key_id(&key).send().await.unwrap();
    assert_eq!(page.aliases().len(), 1);
    called.extend(["CreateAlias", "UpdateAlias", "ListAliases", "DeleteAlias"]);

    // Tags, with pagination.
    sdk.tag_resource()
        .key_id(&key)
        .tags(tag("a", "1"))
        .tags(tag("b", "2"))
        .tags(tag("c", ""))
        .send()
        .await
        .unwrap();
    sdk.untag_resource()
        .key_id(&key)
        .tag_keys("b")
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = sdk
        .list_resource_tags()
        .key_id(&key)
        .limit(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = tags.iter().map(|t| (t.tag_key(), t.tag_value())).collect();
    assert_eq!(pairs, [("team", "kms"), ("a", "1"), ("c", "")]);
    called.extend(["TagResource", "UntagResource", "ListResourceTags"]);

    // Key policies.
    let policy = sdk
        .get_key_policy()
        .key_id(&key)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    let text = policy.policy().unwrap().to_string();
    assert!(text.contains("kms:*"), "{text}");
    let changed = text.replace("Enable IAM User Permissions", "Root may do anything");
    sdk.put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(&changed)
        .send()
        .await
        .unwrap();
    let policy = sdk.get_key_policy().key_id(&key).send().await.unwrap();
    assert!(policy.policy().unwrap().contains("Root may do anything"));
    let names = sdk.list_key_policies().key_id(&key).send().await.unwrap();
    assert_eq!(names.policy_names(), ["default"]);
    called.extend(["GetKeyPolicy", "PutKeyPolicy", "ListKeyPolicies"]);

    // Deletion window, cancelled.
    let s = sdk
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(s.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(s.pending_window_in_days(), Some(7));
    assert!(s.deletion_date().is_some());
    let c = sdk.cancel_key_deletion().key_id(&key).send().await.unwrap();
    assert_eq!(c.key_id(), Some(arn.as_str()));
    let d = sdk.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    called.extend(["ScheduleKeyDeletion", "CancelKeyDeletion"]);

    // ListKeys, paginated one key a page.
    let keys: Vec<_> = sdk
        .list_keys()
        .limit(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let ids: Vec<&str> = keys.iter().filter_map(|k| k.key_id()).collect();
    assert!(
        ids.contains(&key.as_str()) && ids.contains(&other.as_str()),
        "{ids:?}"
    );
    assert!(keys
        .iter()
        .all(|k| k.key_arn().is_some_and(|a| a.contains(region))));
    called.push("ListKeys");
    called
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_sdk_calls_every_operation_through_the_gateway_and_every_node() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let gateway = c.sdk(&c.gateway_url(), R);
    let called = every_operation(&gateway, R).await;
    for op in &called {
        assert!(
            kmsim_node::aws::dispatch::OPERATIONS.contains(op),
            "{op} is not in the operation list"
        );
    }
    // The operations of the other key types, rotation, import, grants and multi-Region keys
    // are called by `t42_aws_sdk_key_types`, which asserts that together they cover the list.

    // Each node's own endpoint serves its Region, and sees what the gateway created.
    let (key, arn) = create(&gateway, "seen everywhere").await;
    for id in c.ids(R) {
        let node = c.sdk(&c.aws_url(R, id), R);
        let d = wait_for(Duration::from_secs(10), "the node applies the key", || {
            let node = node.clone();
            let key = key.clone();
            async move { node.describe_key().key_id(key).send().await.ok() }
        })
        .await;
        assert_eq!(d.key_metadata().unwrap().arn(), Some(arn.as_str()));
        let enc = node
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(vec![7; 4096]))
            .send()
            .await
            .unwrap();
        let dec = open(&gateway, enc.ciphertext_blob().unwrap().clone()).await;
        assert_eq!(dec, vec![7; 4096]);
    }
    // And a node's endpoint runs the whole list too.
    every_operation(&c.sdk(&c.aws_url(R, 2), R), R).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_errors_carry_the_aws_codes_and_messages() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let sdk = c.sdk(&c.gateway_url(), R);
    let (key, arn) = create(&sdk, "errors").await;

    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let e = sdk.describe_key().key_id(missing).send().await.unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"));
    assert_eq!(
        e.message(),
        Some(format!("Key 'arn:aws:kms:{R}:111122223333:key/{missing}' does not exist").as_str())
    );
    assert!(e.into_service_error().is_not_found_exception());
    let e = sdk
        .describe_key()
        .key_id("fake-key-id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Some("NotFoundException"),
            Some("Invalid keyId 'fake-key-id'")
        )
    );
    let e = sdk
        .describe_key()
        .key_id(format!("arn:aws:kms:us-west-2:111122223333:key/{key}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.message(), Some("Invalid arn us-west-2"));

    // Bad ciphertexts: an empty message, as AWS sends it.
    let e = sdk
        .decrypt()
        .ciphertext_blob(Blob::new(vec![1, 2, 3]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidCiphertextException"));
    assert!(e.into_service_error().is_invalid_ciphertext_exception());

    // Framework validation the SDK does not do itself.
    let e = sdk
        .generate_random()
        .number_of_bytes(1025)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));
    assert_eq!(e.message(), Some("1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"));
    let e = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(vec![0; 4097]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.message(), Some("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"));
    let e = sdk
        .create_alias()
        .alias_name("noprefix")
        .target_key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));

    // Conflicts and states.
    sdk.create_alias()
        .alias_name("alias/one")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    let e = sdk
        .create_alias()
        .alias_name("alias/one")
        .target_key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_already_exists_exception());
    let e = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Some("DryRunOperationException"),
            Some("The request would have succeeded, but the DryRun option is set.")
        )
    );
    sdk.schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let e = sdk
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("KMSInvalidStateException"));
    assert_eq!(
        e.message(),
        Some(format!("{arn} is pending deletion.").as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_signed_for_another_region_is_forwarded_and_answered_there() {
    let c = Cluster::start(&[R, EU], 3);
    c.leader(R).await;
    c.leader(EU).await;
    // Signed for eu-west-1, sent to a node of us-east-1: forwarded, served by eu-west-1.
    let eu_via_us = c.sdk(&c.aws_url(R, 1), EU);
    let (key, arn) = create(&eu_via_us, "made in eu-west-1").await;
    assert!(arn.starts_with("arn:aws:kms:eu-west-1:"), "{arn}");
    let eu_direct = c.sdk(&c.aws_url(EU, 2), EU);
    wait_for(
        Duration::from_secs(10),
        "eu-west-1 node 2 applies the key",
        || {
            let eu_direct = eu_direct.clone();
            let key = key.clone();
            async move { eu_direct.describe_key().key_id(key).send().await.ok() }
        },
    )
    .await;
    let us = c.sdk(&c.aws_url(R, 1), R);
    let e = us.describe_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"));
    // The gateway routes by the scope: the same key is found only from eu-west-1 clients.
    let gw_eu = c.sdk(&c.gateway_url(), EU);
    let gw_us = c.sdk(&c.gateway_url(), R);
    assert_eq!(
        gw_eu
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .arn(),
        Some(arn.as_str())
    );
    assert!(gw_us.describe_key().key_id(&key).send().await.is_err());
    let listed = gw_eu.list_keys().send().await.unwrap();
    assert!(listed
        .keys()
        .iter()
        .any(|k| k.key_arn() == Some(arn.as_str())));

    // Forwarding goes through the fault layer: cut us-east-1/1 off from eu-west-1 and its
    // forwarded requests fail, while eu-west-1 keeps serving its own clients.
    crate::harness::kmsim(&[
        "chaos",
        "link",
        "--from",
        "us-east-1/1",
        "--to",
        EU,
        "--partition",
        "--data-dir",
        &c.data_dir(),
    ]);
    let e = eu_via_us
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("DependencyTimeoutException"), "{e:?}");
    assert!(eu_direct.describe_key().key_id(&key).send().await.is_ok());
    crate::harness::kmsim(&["chaos", "heal", "--data-dir", &c.data_dir()]);
    assert!(eu_via_us.describe_key().key_id(&key).send().await.is_ok());
}
