//! The one list of KMS operations this node serves. Both faces of the API are generated from
//! it: the gRPC service (`kms_service.rs`) and the AWS JSON 1.1 dispatcher, so an operation
//! added here is served by both and its logic is written once, in [`super::KmsApi`].

/// Calls `$m!` with every operation as `AwsName => method(Request) -> Response;`, where
/// `AwsName` is the AWS operation (the `X-Amz-Target` suffix), `method` the [`super::KmsApi`]
/// method and the gRPC rpc, and the messages are those of `kmsim.kms.v1`.
#[macro_export]
macro_rules! for_each_kms_operation {
    ($m:ident) => {
        $m! {
            CreateKey => create_key(CreateKeyRequest) -> CreateKeyResponse;
            DescribeKey => describe_key(DescribeKeyRequest) -> DescribeKeyResponse;
            ListKeys => list_keys(ListKeysRequest) -> ListKeysResponse;
            Encrypt => encrypt(EncryptRequest) -> EncryptResponse;
            Decrypt => decrypt(DecryptRequest) -> DecryptResponse;
            ReEncrypt => re_encrypt(ReEncryptRequest) -> ReEncryptResponse;
            GenerateDataKey => generate_data_key(GenerateDataKeyRequest) -> GenerateDataKeyResponse;
            GenerateDataKeyWithoutPlaintext => generate_data_key_without_plaintext(GenerateDataKeyWithoutPlaintextRequest) -> GenerateDataKeyWithoutPlaintextResponse;
            GenerateRandom => generate_random(GenerateRandomRequest) -> GenerateRandomResponse;
            EnableKey => enable_key(EnableKeyRequest) -> EnableKeyResponse;
            DisableKey => disable_key(DisableKeyRequest) -> DisableKeyResponse;
            UpdateKeyDescription => update_key_description(UpdateKeyDescriptionRequest) -> UpdateKeyDescriptionResponse;
            CreateAlias => create_alias(CreateAliasRequest) -> CreateAliasResponse;
            UpdateAlias => update_alias(UpdateAliasRequest) -> UpdateAliasResponse;
            DeleteAlias => delete_alias(DeleteAliasRequest) -> DeleteAliasResponse;
            ListAliases => list_aliases(ListAliasesRequest) -> ListAliasesResponse;
            TagResource => tag_resource(TagResourceRequest) -> TagResourceResponse;
            UntagResource => untag_resource(UntagResourceRequest) -> UntagResourceResponse;
            ListResourceTags => list_resource_tags(ListResourceTagsRequest) -> ListResourceTagsResponse;
            PutKeyPolicy => put_key_policy(PutKeyPolicyRequest) -> PutKeyPolicyResponse;
            GetKeyPolicy => get_key_policy(GetKeyPolicyRequest) -> GetKeyPolicyResponse;
            ListKeyPolicies => list_key_policies(ListKeyPoliciesRequest) -> ListKeyPoliciesResponse;
            ScheduleKeyDeletion => schedule_key_deletion(ScheduleKeyDeletionRequest) -> ScheduleKeyDeletionResponse;
            CancelKeyDeletion => cancel_key_deletion(CancelKeyDeletionRequest) -> CancelKeyDeletionResponse;
            GenerateDataKeyPair => generate_data_key_pair(GenerateDataKeyPairRequest) -> GenerateDataKeyPairResponse;
            GenerateDataKeyPairWithoutPlaintext => generate_data_key_pair_without_plaintext(GenerateDataKeyPairWithoutPlaintextRequest) -> GenerateDataKeyPairWithoutPlaintextResponse;
            Sign => sign(SignRequest) -> SignResponse;
            Verify => verify(VerifyRequest) -> VerifyResponse;
            GetPublicKey => get_public_key(GetPublicKeyRequest) -> GetPublicKeyResponse;
            GenerateMac => generate_mac(GenerateMacRequest) -> GenerateMacResponse;
            VerifyMac => verify_mac(VerifyMacRequest) -> VerifyMacResponse;
            DeriveSharedSecret => derive_shared_secret(DeriveSharedSecretRequest) -> DeriveSharedSecretResponse;
            EnableKeyRotation => enable_key_rotation(EnableKeyRotationRequest) -> EnableKeyRotationResponse;
            DisableKeyRotation => disable_key_rotation(DisableKeyRotationRequest) -> DisableKeyRotationResponse;
            GetKeyRotationStatus => get_key_rotation_status(GetKeyRotationStatusRequest) -> GetKeyRotationStatusResponse;
            RotateKeyOnDemand => rotate_key_on_demand(RotateKeyOnDemandRequest) -> RotateKeyOnDemandResponse;
            ListKeyRotations => list_key_rotations(ListKeyRotationsRequest) -> ListKeyRotationsResponse;
            GetParametersForImport => get_parameters_for_import(GetParametersForImportRequest) -> GetParametersForImportResponse;
            ImportKeyMaterial => import_key_material(ImportKeyMaterialRequest) -> ImportKeyMaterialResponse;
            DeleteImportedKeyMaterial => delete_imported_key_material(DeleteImportedKeyMaterialRequest) -> DeleteImportedKeyMaterialResponse;
            CreateGrant => create_grant(CreateGrantRequest) -> CreateGrantResponse;
            ListGrants => list_grants(ListGrantsRequest) -> ListGrantsResponse;
            ListRetirableGrants => list_retirable_grants(ListRetirableGrantsRequest) -> ListGrantsResponse;
            RetireGrant => retire_grant(RetireGrantRequest) -> RetireGrantResponse;
            RevokeGrant => revoke_grant(RevokeGrantRequest) -> RevokeGrantResponse;
            ReplicateKey => replicate_key(ReplicateKeyRequest) -> ReplicateKeyResponse;
            UpdatePrimaryRegion => update_primary_region(UpdatePrimaryRegionRequest) -> UpdatePrimaryRegionResponse;
        }
    };
}

/// The lists that cannot be generated from the operation list (the proto service, the key-state
/// table of `kmsim-core`, which must not depend on this crate, and the compatibility document),
/// checked against it: adding an operation fails here until each of them has it.
#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use kmsim_core::key_state::Operation;

    use crate::aws::dispatch::OPERATIONS;

    /// The operations not bound to one existing key, so without a row in the key-state table.
    const KEY_LESS: &[(&str, &str)] = &[
        ("CreateKey", "makes the key"),
        ("ListKeys", "lists every key of the account and Region"),
        ("GenerateRandom", "uses no key"),
        (
            "ListRetirableGrants",
            "lists grants by retiring principal, across keys",
        ),
    ];

    fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
        names.into_iter().collect()
    }

    #[test]
    fn every_operation_is_in_the_key_state_table_or_listed_as_key_less() {
        let keyed = set(Operation::ALL.iter().map(|o| o.name()));
        let key_less = set(KEY_LESS.iter().map(|(name, _)| *name));
        for op in OPERATIONS {
            assert!(
                keyed.contains(op) != key_less.contains(op),
                "{op}: add it to kmsim_core::key_state::Operation (and its table) or, if no key \
                 is involved, to KEY_LESS here; not both"
            );
        }
        for op in keyed.iter().chain(&key_less) {
            assert!(OPERATIONS.contains(op), "{op} is not an operation served");
        }
    }

    /// The rpc names of `service KmsService` in `kms.proto`, in order.
    fn proto_rpcs(proto: &str) -> Vec<&str> {
        let start = proto
            .find("service KmsService {")
            .expect("kms.proto declares KmsService");
        let body = &proto[start..];
        let body = &body[..body.find("\n}").expect("the service block ends")];
        body.lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .map(|l| l.split('(').next().unwrap_or_default().trim())
            .collect()
    }

    #[test]
    fn the_proto_service_has_exactly_the_operations_in_the_same_order() {
        let proto = include_str!("../../../../proto/kmsim/kms/v1/kms.proto");
        assert_eq!(proto_rpcs(proto), OPERATIONS);
    }

    #[test]
    fn the_compatibility_table_has_every_operation() {
        let doc = include_str!("../../../../docs/COMPATIBILITY.md");
        let table = doc
            .split("| operation |")
            .nth(1)
            .expect("COMPATIBILITY.md has the operation × client table");
        let table = &table[..table.find("\n\n").unwrap_or(table.len())];
        // The first cell of each row, cut into words: "EnableKey / DisableKey" names both.
        let named: BTreeSet<&str> = table
            .lines()
            .filter_map(|row| row.strip_prefix("| ")?.split(" |").next())
            .flat_map(|cell| cell.split(|c: char| !c.is_ascii_alphanumeric()))
            .collect();
        let missing: Vec<&str> = OPERATIONS
            .iter()
            .copied()
            .filter(|op| !named.contains(op))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/COMPATIBILITY.md has no row for {missing:?} (spell each name in full)"
        );
    }
}
