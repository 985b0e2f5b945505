//! `kmsim.kms.v1.KmsService`: the gRPC face of [`KmsApi`]. No operation logic lives here.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use kmsim_proto::kms::v1 as pb;
use kmsim_proto::kms::v1::kms_service_server::KmsService;
use kmsim_proto::status::status_from_error;

use crate::kms::KmsApi;

/// Serves the KMS API over gRPC.
pub struct KmsServiceImpl {
    api: Arc<KmsApi>,
}

impl KmsServiceImpl {
    /// The service over this node's KMS operations.
    pub fn new(api: Arc<KmsApi>) -> KmsServiceImpl {
        KmsServiceImpl { api }
    }
}

macro_rules! delegate {
    ($($method:ident($req:ident) -> $resp:ident;)*) => {
        #[tonic::async_trait]
        impl KmsService for KmsServiceImpl {
            $(
                async fn $method(&self, req: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    self.api.$method(req.into_inner()).await.map(Response::new).map_err(|e| status_from_error(&e))
                }
            )*
        }
    };
}

delegate! {
    create_key(CreateKeyRequest) -> CreateKeyResponse;
    describe_key(DescribeKeyRequest) -> DescribeKeyResponse;
    list_keys(ListKeysRequest) -> ListKeysResponse;
    encrypt(EncryptRequest) -> EncryptResponse;
    decrypt(DecryptRequest) -> DecryptResponse;
    re_encrypt(ReEncryptRequest) -> ReEncryptResponse;
    generate_data_key(GenerateDataKeyRequest) -> GenerateDataKeyResponse;
    generate_data_key_without_plaintext(GenerateDataKeyWithoutPlaintextRequest) -> GenerateDataKeyWithoutPlaintextResponse;
    generate_random(GenerateRandomRequest) -> GenerateRandomResponse;
    enable_key(EnableKeyRequest) -> EnableKeyResponse;
    disable_key(DisableKeyRequest) -> DisableKeyResponse;
    update_key_description(UpdateKeyDescriptionRequest) -> UpdateKeyDescriptionResponse;
    create_alias(CreateAliasRequest) -> CreateAliasResponse;
    update_alias(UpdateAliasRequest) -> UpdateAliasResponse;
    delete_alias(DeleteAliasRequest) -> DeleteAliasResponse;
    list_aliases(ListAliasesRequest) -> ListAliasesResponse;
    tag_resource(TagResourceRequest) -> TagResourceResponse;
    untag_resource(UntagResourceRequest) -> UntagResourceResponse;
    list_resource_tags(ListResourceTagsRequest) -> ListResourceTagsResponse;
    put_key_policy(PutKeyPolicyRequest) -> PutKeyPolicyResponse;
    get_key_policy(GetKeyPolicyRequest) -> GetKeyPolicyResponse;
    list_key_policies(ListKeyPoliciesRequest) -> ListKeyPoliciesResponse;
    schedule_key_deletion(ScheduleKeyDeletionRequest) -> ScheduleKeyDeletionResponse;
    cancel_key_deletion(CancelKeyDeletionRequest) -> CancelKeyDeletionResponse;
}
