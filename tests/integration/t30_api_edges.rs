//! Bad input gets the AWS error code and message, and changes nothing.

use std::collections::HashMap;

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, Cluster};
use crate::t10_basics::create_key;

const R: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_aws_errors_and_changes_nothing() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let md = create_key(&c, 1, "edges").await;
    let key = md.key_id.clone().unwrap();
    let arn = md.arn.clone().unwrap();
    let mut k = c.kms(R, 2);

    // Unknown and malformed key identifiers.
    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let e = kms_err(
        k.describe_key(pb::DescribeKeyRequest {
            key_id: Some(missing.into()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        (
            "NotFoundException",
            format!("Key 'arn:aws:kms:{R}:111122223333:key/{missing}' does not exist").as_str()
        )
    );
    let e = kms_err(
        k.describe_key(pb::DescribeKeyRequest {
            key_id: Some("fake-key-id".into()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        ("NotFoundException", "Invalid keyId 'fake-key-id'")
    );
    let other_region = format!("arn:aws:kms:us-west-2:111122223333:key/{key}");
    let e = kms_err(
        k.describe_key(pb::DescribeKeyRequest {
            key_id: Some(other_region),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        ("NotFoundException", "Invalid arn us-west-2")
    );

    // Wrong alias forms.
    let e = kms_err(
        k.create_alias(pb::CreateAliasRequest {
            alias_name: Some("noprefix".into()),
            target_key_id: Some(key.clone()),
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");
    assert!(
        e.message()
            .starts_with("Alias must start with the prefix \"alias/\""),
        "{e}"
    );
    let e = kms_err(
        k.create_alias(pb::CreateAliasRequest {
            alias_name: Some("alias/aws/s3".into()),
            target_key_id: Some(key.clone()),
        })
        .await,
    );
    assert_eq!(e.code(), "InvalidAliasNameException");
    let e = kms_err(
        k.create_alias(pb::CreateAliasRequest {
            alias_name: Some("alias/bad name".into()),
            target_key_id: Some(key.clone()),
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");
    let e = kms_err(
        k.create_alias(pb::CreateAliasRequest {
            alias_name: Some("alias/x".into()),
            target_key_id: Some("alias/other".into()),
        })
        .await,
    );
    assert_eq!(e.code(), "NotFoundException");
    let e = kms_err(
        k.describe_key(pb::DescribeKeyRequest {
            key_id: Some("alias/none".into()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), "NotFoundException");
    let e = kms_err(
        k.enable_key(pb::EnableKeyRequest {
            key_id: Some("alias/none".into()),
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        ("NotFoundException", "Invalid keyId 'alias/none'")
    );

    // Oversize and empty plaintext; sensitive values are not echoed.
    let e = kms_err(
        k.encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(vec![0; 4097]),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");
    assert_eq!(e.message(), "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096");
    let e = kms_err(
        k.encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: None,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");

    // Bad encryption context: a ciphertext only opens with exactly its context.
    let ctx: HashMap<String, String> = [("a".to_string(), "1".to_string())].into();
    let blob = ok(k
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"x".to_vec()),
            encryption_context: ctx.clone(),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap();
    for wrong in [
        HashMap::new(),
        [("a".to_string(), "2".to_string())].into(),
        [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into(),
    ] {
        let e = kms_err(
            k.decrypt(pb::DecryptRequest {
                ciphertext_blob: Some(blob.clone()),
                encryption_context: wrong,
                ..Default::default()
            })
            .await,
        );
        assert_eq!((e.code(), e.message()), ("InvalidCiphertextException", ""));
    }
    // Tampered and truncated blobs.
    for bad in [
        blob[..blob.len() - 1].to_vec(),
        {
            let mut b = blob.clone();
            b[20] ^= 1;
            b
        },
        vec![1, 2, 3],
        vec![0xff; 80],
    ] {
        let e = kms_err(
            k.decrypt(pb::DecryptRequest {
                ciphertext_blob: Some(bad),
                encryption_context: ctx.clone(),
                ..Default::default()
            })
            .await,
        );
        assert_eq!(e.code(), "InvalidCiphertextException");
    }
    // The wrong key named in Decrypt.
    let other = create_key(&c, 3, "other").await.key_id.unwrap();
    let e = kms_err(
        k.decrypt(pb::DecryptRequest {
            ciphertext_blob: Some(blob.clone()),
            encryption_context: ctx.clone(),
            key_id: Some(other),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        (
            "IncorrectKeyException",
            "The key ID in the request does not identify a CMK that can perform this operation."
        )
    );

    // Ranges, enums and required members the SDKs do not check.
    let e = kms_err(
        k.generate_random(pb::GenerateRandomRequest {
            number_of_bytes: Some(1025),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.message(), "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024");
    let e = kms_err(
        k.generate_random(pb::GenerateRandomRequest::default())
            .await,
    );
    assert_eq!(e.message(), "NumberOfBytes is required.");
    let e = kms_err(
        k.create_key(pb::CreateKeyRequest {
            key_spec: Some("BOGUS".into()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");
    assert!(e.message().starts_with("1 validation error detected: Value 'BOGUS' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048"), "{e}");
    let e = kms_err(
        k.create_key(pb::CreateKeyRequest {
            key_spec: Some("HMAC_256".into()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        e.message(),
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
    );
    let e = kms_err(
        k.schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(key.clone()),
            pending_window_in_days: Some(31),
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");
    let e = kms_err(
        k.list_keys(pb::ListKeysRequest {
            limit: Some(0),
            marker: None,
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");
    let e = kms_err(
        k.list_keys(pb::ListKeysRequest {
            limit: None,
            marker: Some("garbage".into()),
        })
        .await,
    );
    assert_eq!(e.code(), "InvalidMarkerException");
    let e = kms_err(
        k.generate_data_key(pb::GenerateDataKeyRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(e.code(), "ValidationException");
    let tag = |k: &str| pb::Tag {
        tag_key: Some(k.into()),
        tag_value: Some("v".into()),
    };
    let e = kms_err(
        k.tag_resource(pb::TagResourceRequest {
            key_id: Some(key.clone()),
            tags: vec![tag("aws:reserved")],
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        ("TagException", "Tags beginning with aws: are reserved")
    );
    let e = kms_err(
        k.encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(vec![1]),
            dry_run: Some(true),
            ..Default::default()
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        (
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun option is set."
        )
    );
    let e = kms_err(
        k.cancel_key_deletion(pb::CancelKeyDeletionRequest {
            key_id: Some(key.clone()),
        })
        .await,
    );
    assert_eq!(
        (e.code(), e.message()),
        (
            "KMSInvalidStateException",
            format!("{arn} is not pending deletion.").as_str()
        )
    );

    // Nothing above changed the key.
    let d = ok(k
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await)
    .key_metadata
    .unwrap();
    assert_eq!(d.key_state.as_deref(), Some("Enabled"));
    let tags = ok(k
        .list_resource_tags(pb::ListResourceTagsRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await);
    assert!(tags.tags.is_empty());
    let aliases = ok(k.list_aliases(pb::ListAliasesRequest::default()).await);
    assert!(aliases.aliases.is_empty(), "{:?}", aliases.aliases);
}

/// The request id of a gRPC answer (`x-amzn-requestid`), which must be a UUID.
fn request_id(metadata: &tonic::metadata::MetadataMap) -> uuid::Uuid {
    let v = metadata
        .get("x-amzn-requestid")
        .expect("the answer carries x-amzn-requestid")
        .to_str()
        .expect("ASCII");
    uuid::Uuid::parse_str(v).unwrap_or_else(|e| panic!("{v:?} is not a UUID: {e}"))
}

/// Like the AWS JSON face's `x-amzn-RequestId` header, every gRPC answer, success or error,
/// carries its request id, and it is the one the audit log records for the call.
#[tokio::test(flavor = "multi_thread")]
async fn grpc_answers_carry_the_request_id_the_audit_log_records() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    let mut k = c.kms(R, 1);
    let created = k
        .create_key(pb::CreateKeyRequest {
            description: Some("request id".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let create_id = request_id(created.metadata());
    let key = created.into_inner().key_metadata.unwrap().key_id.unwrap();

    let described = k
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let describe_id = request_id(described.metadata());
    assert_ne!(describe_id, create_id, "each call has its own id");

    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let status = k
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(missing.into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        kmsim_proto::status::error_from_status(&status).code(),
        "NotFoundException"
    );
    let error_id = request_id(status.metadata());
    assert_ne!(error_id, create_id);
    assert_ne!(error_id, describe_id);

    let events = ok(c
        .admin(R, 1)
        .list_audit_events(kmsim_proto::admin::v1::ListAuditEventsRequest {
            key_id: key.clone(),
            ..Default::default()
        })
        .await)
    .events;
    let event = events
        .iter()
        .find(|e| e.event_name == "CreateKey")
        .expect("CreateKey is audited");
    let record: serde_json::Value = serde_json::from_str(&event.record).unwrap();
    assert_eq!(record["requestID"], create_id.to_string());
}
