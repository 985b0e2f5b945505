//! `kmsim.kms.v1.KmsService`: the gRPC face of [`KmsApi`]. No operation logic lives here; the
//! rpcs are generated from the one operation list, [`crate::for_each_kms_operation`].

use std::sync::Arc;

use tonic::{Request, Response, Status};

use kmsim_proto::kms::v1 as pb;
use kmsim_proto::kms::v1::kms_service_server::KmsService;
use kmsim_proto::status::status_from_error;

use crate::kms::{KmsApi, RequestContext};

/// Serves the KMS API over gRPC.
pub struct KmsServiceImpl {
    api: Arc<KmsApi>,
}

impl KmsServiceImpl {
    /// The service over this node's KMS operations.
    pub fn new(api: Arc<KmsApi>) -> KmsServiceImpl {
        KmsServiceImpl { api }
    }

    fn context<T>(&self, req: &Request<T>) -> RequestContext {
        RequestContext::grpc(
            uuid::Uuid::new_v4().to_string(),
            &self.api.scope,
            req.remote_addr().map(|a| a.ip().to_string()),
        )
    }
}

macro_rules! grpc_service {
    ($($name:ident => $method:ident($req:ident) -> $resp:ident;)*) => {
        #[tonic::async_trait]
        impl KmsService for KmsServiceImpl {
            $(
                async fn $method(&self, req: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    let ctx = self.context(&req);
                    let api = &self.api;
                    api.consistent(stringify!($name), &ctx, req.into_inner(), |r| api.$method(&ctx, r))
                        .await
                        .map(Response::new)
                        .map_err(|e| status_from_error(&e))
                }
            )*
        }
    };
}

crate::for_each_kms_operation!(grpc_service);
