//! Who made a request and through which face of the API: what the audit log records and what
//! authorization will evaluate. Built by the gRPC service or the AWS JSON front, passed to every
//! [`super::KmsApi`] operation.

/// The face of the API a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `kmsim.kms.v1` over gRPC (the simulator's own clients: `kmsim kms`, `kmsim bench`).
    Grpc,
    /// AWS JSON 1.1 over HTTP, authenticated with SigV4.
    AwsJson,
}

/// The caller of one KMS request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// `x-amzn-RequestId` of the request (a UUID).
    pub request_id: String,
    /// The authenticated principal, e.g. `arn:aws:iam::111122223333:root`.
    pub principal_arn: String,
    /// The access key the request was signed with (AWS JSON only).
    pub access_key_id: Option<String>,
    /// The caller's address, when known.
    pub source_ip: Option<String>,
    /// The caller's `User-Agent`, when known.
    pub user_agent: Option<String>,
    /// Where the request came in.
    pub interface: Interface,
}

impl RequestContext {
    /// A request on the gRPC face, made by `principal_arn`: the principal the topology maps
    /// the caller's client certificate to (`crate::tls::admit`), or the account's root on a
    /// cluster without `[tls]`.
    pub fn grpc(
        request_id: String,
        principal_arn: String,
        source_ip: Option<String>,
    ) -> RequestContext {
        RequestContext {
            request_id,
            principal_arn,
            access_key_id: None,
            source_ip,
            user_agent: None,
            interface: Interface::Grpc,
        }
    }

    /// A request on the AWS JSON face, made by the principal whose access key signed it (SigV4
    /// verified by the front).
    pub fn aws_json(
        request_id: String,
        principal_arn: String,
        access_key_id: String,
        source_ip: Option<String>,
        user_agent: Option<String>,
    ) -> RequestContext {
        RequestContext {
            request_id,
            principal_arn,
            access_key_id: Some(access_key_id),
            source_ip,
            user_agent,
            interface: Interface::AwsJson,
        }
    }
}
