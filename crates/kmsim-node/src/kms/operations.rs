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
