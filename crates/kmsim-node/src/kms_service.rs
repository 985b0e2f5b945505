//! `kmsim.kms.v1.KmsService`: the gRPC face of [`KmsApi`]. No operation logic lives here; the
//! rpcs are generated from the one operation list, [`crate::for_each_kms_operation`].
//!
//! Every answer, success or error, carries the request's id in the `x-amzn-requestid` metadata
//! entry: the UUID the audit log records for it, as the AWS JSON face sends it in the
//! `x-amzn-RequestId` header.

use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use kmsim_proto::kms::v1 as pb;
use kmsim_proto::kms::v1::kms_service_server::KmsService;
use kmsim_proto::status::status_from_error;

use crate::aws::errors::REQUEST_ID_HEADER;
use crate::kms::{KmsApi, RequestContext};
use crate::tls::admit::CallerPrincipal;

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
        // The admission layer put the caller's principal here (its client certificate); a
        // cluster without `[tls]` has no admission and acts as the account's root.
        let principal = match req.extensions().get::<CallerPrincipal>() {
            Some(p) => p.0.clone(),
            None => format!(
                "arn:{}:iam::{}:root",
                self.api.scope.partition, self.api.scope.account
            ),
        };
        RequestContext::grpc(
            uuid::Uuid::new_v4().to_string(),
            principal,
            req.remote_addr().map(|a| a.ip().to_string()),
        )
    }
}

/// Adds the request id to an answer's metadata (a UUID is always a valid metadata value).
fn with_request_id<T>(
    result: Result<Response<T>, Status>,
    request_id: &str,
) -> Result<Response<T>, Status> {
    let Ok(id) = MetadataValue::try_from(request_id) else {
        return result;
    };
    match result {
        Ok(mut r) => {
            r.metadata_mut().insert(REQUEST_ID_HEADER, id);
            Ok(r)
        }
        Err(mut s) => {
            s.metadata_mut().insert(REQUEST_ID_HEADER, id);
            Err(s)
        }
    }
}

macro_rules! grpc_service {
    ($($name:ident => $method:ident($req:ident) -> $resp:ident;)*) => {
        #[tonic::async_trait]
        impl KmsService for KmsServiceImpl {
            $(
                async fn $method(&self, req: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    let ctx = self.context(&req);
                    let trace = crate::trace::extract(req.metadata());
                    let api = &self.api;
                    let call = api
                        .consistent(stringify!($name), &ctx, req.into_inner(), |r| api.$method(&ctx, r));
                    let result = crate::trace::scope(trace, "grpc", stringify!($name), call)
                        .await
                        .map(Response::new)
                        .map_err(|e| status_from_error(&e));
                    with_request_id(result, &ctx.request_id)
                }
            )*
        }
    };
}

crate::for_each_kms_operation!(grpc_service);
