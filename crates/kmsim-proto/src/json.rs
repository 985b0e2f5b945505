//! The AWS JSON 1.1 spelling of the `kmsim.kms.v1` messages.
//!
//! Every message of [`crate::kms::v1`] derives `serde::Serialize`/`Deserialize` (attributes set in
//! `build.rs` from the compiled descriptors) so that `serde_json` reads and writes exactly the
//! bodies AWS KMS and its SDKs exchange (`docs/AWS-BEHAVIOUR.md` §2.2):
//! - members are PascalCase (`KeyId`, `CiphertextBlob`), except `KeyMetadata.AWSAccountId`;
//! - absent members (`None`, empty lists and maps) are omitted, except
//!   `MultiRegionConfiguration.ReplicaKeys`, which AWS always sends (`[]` for a lone primary);
//! - missing members parse as absent, unknown members are ignored;
//! - blobs are standard base64 with padding ([`b64_opt`]); timestamps are JSON numbers (epoch
//!   seconds); maps are JSON objects.

/// `Option<Vec<u8>>` as an optional standard base64 string (with padding), the AWS JSON encoding
/// of blob members. Used through `#[serde(with = "crate::json::b64_opt")]`.
pub mod b64_opt {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the bytes as base64, or `null` for `None` (which callers skip anyway).
    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    /// Reads a base64 string (or `null`); bad base64 is a deserialization error, never a panic.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        STANDARD
            .decode(text.as_bytes())
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64 blob: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{json, Value};

    use crate::kms::v1::*;

    fn primary_metadata() -> KeyMetadata {
        KeyMetadata {
            aws_account_id: Some("111122223333".into()),
            key_id: Some("mrk-0123456789abcdef0123456789abcdef".into()),
            arn: Some(
                "arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
                    .into(),
            ),
            creation_date: Some(1_655_753_311.082),
            enabled: Some(true),
            description: Some(String::new()),
            key_usage: Some("ENCRYPT_DECRYPT".into()),
            key_state: Some("Enabled".into()),
            origin: Some("AWS_KMS".into()),
            key_manager: Some("CUSTOMER".into()),
            customer_master_key_spec: Some("SYMMETRIC_DEFAULT".into()),
            key_spec: Some("SYMMETRIC_DEFAULT".into()),
            encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
            multi_region: Some(true),
            multi_region_configuration: Some(MultiRegionConfiguration {
                multi_region_key_type: Some("PRIMARY".into()),
                primary_key: Some(MultiRegionKey {
                    arn: Some("arn:aws:kms:us-east-1:111122223333:key/mrk-0123".into()),
                    region: Some("us-east-1".into()),
                }),
                replica_keys: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn key_metadata_uses_aws_member_names_and_omits_absent_members() {
        let v = serde_json::to_value(primary_metadata()).expect("serializes");
        let obj = v.as_object().expect("an object");
        assert_eq!(obj["AWSAccountId"], json!("111122223333"));
        assert_eq!(obj["KeyId"], json!("mrk-0123456789abcdef0123456789abcdef"));
        assert!(obj["CreationDate"].is_number());
        assert_eq!(obj["CreationDate"].as_f64(), Some(1_655_753_311.082));
        assert_eq!(obj["Enabled"], json!(true));
        // Present and empty is kept; absent is omitted (never `null`).
        assert_eq!(obj["Description"], json!(""));
        for absent in [
            "AwsAccountId",
            "DeletionDate",
            "ValidTo",
            "SigningAlgorithms",
            "MacAlgorithms",
            "XksKeyConfiguration",
            "PendingDeletionWindowInDays",
            "CurrentKeyMaterialId",
        ] {
            assert!(!obj.contains_key(absent), "{absent} must be omitted");
        }
        assert!(obj.values().all(|v| !v.is_null()));
        assert_eq!(
            obj["MultiRegionConfiguration"],
            json!({
                "MultiRegionKeyType": "PRIMARY",
                "PrimaryKey": {
                    "Arn": "arn:aws:kms:us-east-1:111122223333:key/mrk-0123",
                    "Region": "us-east-1"
                },
                "ReplicaKeys": []
            })
        );
    }

    #[test]
    fn empty_messages_serialize_as_an_empty_object() {
        assert_eq!(
            serde_json::to_string(&EnableKeyResponse {}).expect("serializes"),
            "{}"
        );
        assert_eq!(
            serde_json::to_string(&ListKeysRequest::default()).expect("serializes"),
            "{}"
        );
        assert_eq!(
            serde_json::from_str::<ListKeysRequest>("{}").expect("parses"),
            ListKeysRequest::default()
        );
        // An empty page still names its list, as AWS sends it.
        assert_eq!(
            serde_json::to_value(ListGrantsResponse::default()).expect("serializes"),
            json!({"Grants": []})
        );
        assert_eq!(
            serde_json::to_value(ListKeysResponse::default()).expect("serializes"),
            json!({"Keys": []})
        );
    }

    #[test]
    fn encrypt_request_parses_what_boto3_sends() {
        let r: EncryptRequest = serde_json::from_str(
            r#"{"KeyId":"k","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}"#,
        )
        .expect("parses");
        assert_eq!(
            r,
            EncryptRequest {
                key_id: Some("k".into()),
                plaintext: Some(b"hello".to_vec()),
                encryption_context: HashMap::from([("a".into(), "b".into())]),
                ..Default::default()
            }
        );
        assert_eq!(
            serde_json::to_value(&r).expect("serializes"),
            json!({"KeyId":"k","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}})
        );
    }

    #[test]
    fn unknown_members_are_ignored() {
        let r: DescribeKeyRequest =
            serde_json::from_str(r#"{"KeyId":"k","SomethingNew":{"x":[1,2]},"Other":null}"#)
                .expect("parses");
        assert_eq!(r.key_id.as_deref(), Some("k"));
    }

    #[test]
    fn invalid_base64_is_an_error() {
        for body in [
            r#"{"CiphertextBlob":"not base64!"}"#,
            r#"{"CiphertextBlob":"aGVsbG8"}"#,  // padding missing
            r#"{"CiphertextBlob":"aGVs-G8="}"#, // URL-safe alphabet
            r#"{"CiphertextBlob":42}"#,
        ] {
            let e = serde_json::from_str::<DecryptRequest>(body).expect_err(body);
            assert!(e.is_data(), "{body}: {e}");
        }
        // `null` is absent, like a missing member.
        let r: DecryptRequest = serde_json::from_str(r#"{"CiphertextBlob":null}"#).expect("parses");
        assert_eq!(r.ciphertext_blob, None);
    }

    #[test]
    fn member_names_are_case_sensitive_like_aws() {
        let r: EncryptRequest = serde_json::from_str(r#"{"keyId":"k"}"#).expect("parses");
        assert_eq!(r.key_id, None);
    }

    #[test]
    fn recorded_create_key_response_parses_and_serializes_back() {
        let recorded = json!({"KeyMetadata": {
            "AWSAccountId":"111111111111","Arn":"arn:aws:kms:eu-west-1:111111111111:key/mrk-1",
            "CreationDate":1.655753311082E9,"CurrentKeyMaterialId":"ab".repeat(32),
            "CustomerMasterKeySpec":"SYMMETRIC_DEFAULT","Description":"d","Enabled":true,
            "EncryptionAlgorithms":["SYMMETRIC_DEFAULT"],"KeyId":"mrk-1","KeyManager":"CUSTOMER",
            "KeySpec":"SYMMETRIC_DEFAULT","KeyState":"Enabled","KeyUsage":"ENCRYPT_DECRYPT",
            "MultiRegion":true,
            "MultiRegionConfiguration":{"MultiRegionKeyType":"PRIMARY",
                "PrimaryKey":{"Arn":"arn:aws:kms:eu-west-1:111111111111:key/mrk-1","Region":"eu-west-1"},
                "ReplicaKeys":[]},
            "Origin":"AWS_KMS"}});
        let r: CreateKeyResponse = serde_json::from_value(recorded.clone()).expect("parses");
        let m = r.key_metadata.as_ref().expect("metadata");
        assert_eq!(m.aws_account_id.as_deref(), Some("111111111111"));
        assert_eq!(m.creation_date, Some(1_655_753_311.082));
        assert_eq!(serde_json::to_value(&r).expect("serializes"), recorded);
    }

    /// Serializes `value`, checks it against `expected`, parses it back and checks equality.
    fn round_trip<T>(value: T, expected: Value)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let text = serde_json::to_string(&value).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Value>(&text).expect("valid json"),
            expected
        );
        assert_eq!(
            serde_json::from_str::<T>(&text).expect("parses back"),
            value
        );
    }

    #[test]
    fn every_kind_of_field_round_trips() {
        // strings, doubles, bools, int32, repeated strings, nested and repeated messages.
        let mut m = primary_metadata();
        m.key_state = Some("PendingReplicaDeletion".into());
        m.deletion_date = Some(1_700_000_000.5);
        m.pending_deletion_window_in_days = Some(7);
        m.xks_key_configuration = Some(XksKeyConfiguration {
            id: Some("xks-1".into()),
        });
        if let Some(c) = m.multi_region_configuration.as_mut() {
            c.replica_keys = vec![MultiRegionKey {
                arn: Some("arn:aws:kms:eu-west-1:111122223333:key/mrk-0123".into()),
                region: Some("eu-west-1".into()),
            }];
        }
        let mut expected = serde_json::to_value(primary_metadata()).expect("serializes");
        expected["KeyState"] = json!("PendingReplicaDeletion");
        expected["DeletionDate"] = json!(1_700_000_000.5);
        expected["PendingDeletionWindowInDays"] = json!(7);
        expected["XksKeyConfiguration"] = json!({"Id": "xks-1"});
        expected["MultiRegionConfiguration"]["ReplicaKeys"] = json!([{
            "Arn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123",
            "Region": "eu-west-1"
        }]);
        round_trip(
            DescribeKeyResponse {
                key_metadata: Some(m),
            },
            json!({ "KeyMetadata": expected }),
        );

        // blobs, including an empty one (present, so kept).
        round_trip(
            GenerateDataKeyResponse {
                ciphertext_blob: Some(vec![0, 1, 2, 0xfe, 0xff]),
                plaintext: Some(vec![]),
                key_id: Some("arn:k".into()),
                ciphertext_for_recipient: Some(b"hello".to_vec()),
                key_material_id: None,
            },
            json!({
                "CiphertextBlob": "AAEC/v8=",
                "Plaintext": "",
                "KeyId": "arn:k",
                "CiphertextForRecipient": "aGVsbG8="
            }),
        );

        // lists of structures, booleans, markers.
        round_trip(
            ListAliasesResponse {
                aliases: vec![AliasListEntry {
                    alias_name: Some("alias/a".into()),
                    alias_arn: Some("arn:aws:kms:us-east-1:111122223333:alias/a".into()),
                    target_key_id: Some("k".into()),
                    creation_date: Some(1.5),
                    last_updated_date: Some(2.0),
                }],
                next_marker: Some("m".into()),
                truncated: Some(true),
            },
            json!({
                "Aliases": [{
                    "AliasName": "alias/a",
                    "AliasArn": "arn:aws:kms:us-east-1:111122223333:alias/a",
                    "TargetKeyId": "k",
                    "CreationDate": 1.5,
                    "LastUpdatedDate": 2.0
                }],
                "NextMarker": "m",
                "Truncated": true
            }),
        );

        // maps, nested message with a blob, repeated strings (a request).
        round_trip(
            DecryptRequest {
                ciphertext_blob: Some(vec![9; 36]),
                encryption_context: HashMap::from([
                    ("purpose".into(), "test".into()),
                    ("ünïcode".into(), "✓".into()),
                ]),
                grant_tokens: vec!["t1".into()],
                key_id: Some("alias/a".into()),
                encryption_algorithm: Some("SYMMETRIC_DEFAULT".into()),
                recipient: Some(RecipientInfo {
                    key_encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
                    attestation_document: Some(vec![1, 2, 3]),
                }),
                dry_run: Some(false),
                dry_run_modifiers: vec!["IGNORE_CIPHERTEXT".into()],
            },
            json!({
                "CiphertextBlob": "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ",
                "EncryptionContext": {"purpose": "test", "ünïcode": "✓"},
                "GrantTokens": ["t1"],
                "KeyId": "alias/a",
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "Recipient": {
                    "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                    "AttestationDocument": "AQID"
                },
                "DryRun": false,
                "DryRunModifiers": ["IGNORE_CIPHERTEXT"]
            }),
        );
    }
}
