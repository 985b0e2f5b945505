//! The KMS operations of one node, written once over the `kmsim.kms.v1` message shapes: the
//! gRPC service calls them directly, and the AWS JSON front maps onto the same messages.
//!
//! Management operations become Raft [`Command`]s (built completely here, on the proposing
//! node: IDs, wrapped material and dates included). Cryptographic operations read this node's
//! applied state and the unwrapped-material cache; they never touch Raft.

mod authorize;
mod context;
mod convert;
mod crypto_ops;
mod grant_ops;
mod import_ops;
mod management;
mod mrk_ops;
pub mod operations;
mod rotation_ops;
mod signing_ops;
pub mod specs;
mod tokens;
pub mod trail;
pub mod validate;

use std::sync::{Arc, RwLock};

use kmsim_core::ids::{KeyRef, RefForms, Scope};
use kmsim_core::key::KeyRecord;
use kmsim_core::state::{Command, CommandOutput, KmsState};
use kmsim_core::KmsError;
use kmsim_proto::kms::v1 as pb;

use crate::app::KmsApp;
use crate::clock::SimClock;
use crate::entropy::Entropy;
use crate::material::MaterialCache;
use crate::proposer::Proposer;

pub use authorize::{PolicyCache, SecureTransport, Simulated};
pub use context::{Interface, RequestContext};
pub use convert::key_metadata;
pub use management::ShownKey;

/// Everything a KMS operation needs on one node.
pub struct KmsApi {
    /// Partition, Region and account of this node's Region.
    pub scope: Scope,
    /// The applied state (shared with the Raft state machine).
    pub app: Arc<RwLock<KmsApp>>,
    /// Proposes commands to the Region's Raft group.
    pub proposer: Arc<Proposer>,
    /// Read indexes (shared between concurrent reads) for reads that must not be stale.
    pub reads: Arc<crate::read_index::ReadIndex>,
    /// Unwrapped material, by key and version.
    pub materials: Arc<MaterialCache>,
    /// The simulated clock.
    pub clock: SimClock,
    /// Randomness.
    pub entropy: Entropy,
    /// Injected API errors and delays (`kmsim chaos inject`), checked before every operation.
    pub injected: Arc<crate::inject::ApiFaults>,
    /// The partition of every Region of the topology (ReplicateKey refuses other partitions).
    pub regions: std::collections::BTreeMap<String, String>,
    /// The Regions of the topology that run no synchronizer (no transport key): no
    /// multi-Region key can be replicated to or from them, or handed over to them.
    pub unsynchronized: std::collections::BTreeSet<String>,
    /// The link to other Regions' synchronizer services, when this Region has a transport
    /// key: ReplicateKey and UpdatePrimaryRegion reach the other Region before they answer.
    pub sync: Option<Arc<crate::sync::link::SyncLink>>,
    /// This node's call log (every call the Region's replicated log does not record).
    pub calls: Option<Arc<crate::call_log::CallLog>>,
    /// The topology's principals and their identity policies (the same in every Region).
    pub iam: Arc<crate::iam::Iam>,
    /// Key policies parsed for evaluation, by text.
    pub policies: PolicyCache,
    /// Whether each face is reached over TLS (`aws:SecureTransport`).
    pub secure_transport: SecureTransport,
    /// The Region's request quotas, as this node enforces its share of them.
    pub quotas: Arc<crate::quotas::Quotas>,
}

/// The operations whose successful calls the Region's replicated log records (through
/// [`KmsApi::audited`]); every other call, and every failed one, goes to the node's call log.
const REGION_AUDITED: &[&str] = &[
    "CreateKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "ImportKeyMaterial",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "RotateKeyOnDemand",
    "ReplicateKey",
    "UpdatePrimaryRegion",
];

/// The cryptographic operations (CloudTrail `readOnly: true`, no `responseElements`).
const CRYPTO_OPS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateRandom",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];

/// CloudTrail's `responseElements` of a successful call that the node's call log records:
/// CreateGrant's `grantId` (never its grant token); every other such call has none.
fn response_elements(resp: &dyn std::any::Any) -> Option<String> {
    let grant = resp.downcast_ref::<pb::CreateGrantResponse>()?;
    let mut out = String::from("{\"grantId\":");
    kmsim_core::audit::push_json_str(&mut out, grant.grant_id.as_deref()?);
    out.push('}');
    Some(out)
}

/// The operations that change another Region during the request (see [`KmsApi::consistent`]).
const MULTI_REGION_OPERATIONS: [&str; 2] = ["ReplicateKey", "UpdatePrimaryRegion"];

/// A failed read of the Region state (see [`KmsApi::read`]) as a gRPC status, for the admin
/// and synchronization services.
pub fn internal(e: KmsError) -> tonic::Status {
    tonic::Status::internal(e.to_string())
}

/// Whether an operation (AWS name) is a management read: DescribeKey, List*, Get*.
pub fn is_management_read(op: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|prefix| op.starts_with(prefix))
}

impl KmsApi {
    /// Runs `f` on the applied state. The state is on disk: when a record could not be read
    /// (an I/O error or a corrupt record) the answer is discarded and the call fails with
    /// `KMSInternalException`, never answered as if the record were absent.
    pub fn read<T>(&self, f: impl FnOnce(&KmsState) -> T) -> Result<T, KmsError> {
        let app = self.app.read().expect("invariant: lock not poisoned");
        let answer = f(app.state());
        match app.state().storage_fault() {
            None => Ok(answer),
            Some(fault) => {
                tracing::error!(%fault, "the Region state could not be read");
                Err(KmsError::Internal(
                    "The node could not read its key store.".into(),
                ))
            }
        }
    }

    /// Runs one operation of either face (`op` is its AWS name) so that no node answers from
    /// a state older than what its Region has acknowledged to the caller:
    /// - management reads (`Describe*`, `List*`, `Get*`) and the multi-Region operations first
    ///   wait for the Region's read index (a Raft read index from the leader, then this node's
    ///   apply), so they see every write acknowledged before they started, whichever node took
    ///   that write;
    /// - any other operation that is refused because of the key's state as this node knows it
    ///   (`NotFoundException`, `DisabledException`, `KMSInvalidStateException`), or refused by
    ///   authorization (`AccessDeniedException`: a policy or grant this node has not applied
    ///   yet), is confirmed the same way and run once more before the answer goes out, so a lagging follower never
    ///   denies a key, or a state change, its Region has acknowledged. Cryptographic operations
    ///   that succeed stay local reads with no extra round trip.
    ///
    /// A refused run of those operations changes nothing (every refusal happens before a
    /// proposal, or in apply, which leaves the state as it was), so the second run is safe for
    /// writes too. ReplicateKey and UpdatePrimaryRegion may be refused after they changed
    /// another Region (a hand-over begun, a replica created and taken back): they are never
    /// run twice, which is why they take the read index first.
    ///
    /// Every call is then recorded (see [`KmsApi::record_call`]).
    pub async fn consistent<Req, Resp, F, Fut>(
        &self,
        op: &str,
        ctx: &RequestContext,
        req: Req,
        call: F,
    ) -> Result<Resp, KmsError>
    where
        Req: Clone + serde::Serialize + 'static,
        Resp: 'static,
        F: Fn(Req) -> Fut,
        Fut: std::future::Future<Output = Result<Resp, KmsError>>,
    {
        // The Region's request quotas, before any work (throttled calls are not recorded).
        self.quotas.admit(op, &ctx.principal_arn, &req)?;
        // Built before the call consumes the request: only the members CloudTrail records.
        let params = self.calls.as_ref().map(|_| trail::request_parameters(&req));
        // Authorization first, on the state the operation then reads; a refusal changes
        // nothing and is recorded like any failed call.
        let authorized = |r: Req| {
            let allowed = self.authorize(op, ctx, &r);
            // A future does nothing until polled: a refused operation never starts.
            let run = call(r);
            async move {
                allowed?;
                run.await
            }
        };
        // Injected faults first: an injected error runs nothing, so it commits nothing.
        let out = match self.injected.before(op).await {
            Err(e) => Err(e),
            Ok(()) => self.consistent_run(op, req, authorized).await,
        };
        if let Some(params) = params {
            self.record_call(op, ctx, params, &out).await;
        }
        out
    }

    /// Queues the CloudTrail record of one answered call in this node's call log, unless the
    /// Region's replicated log already recorded it (a successful [`REGION_AUDITED`] call).
    /// The key comes from the request's `KeyId` (or, for Decrypt and ReEncrypt without one,
    /// from the response); the writer stores the call's facts, and the whole record is built
    /// when it is read.
    async fn record_call<Resp: 'static>(
        &self,
        op: &str,
        ctx: &RequestContext,
        params: String,
        out: &Result<Resp, KmsError>,
    ) {
        let Some(log) = &self.calls else { return };
        if out.is_ok() && REGION_AUDITED.contains(&op) {
            return;
        }
        #[derive(serde::Deserialize)]
        struct Named {
            #[serde(rename = "keyId")]
            key_id: Option<String>,
        }
        let named = serde_json::from_str::<Named>(&params)
            .ok()
            .and_then(|n| n.key_id);
        // (A block: the `dyn Any` view must not live across the await below.)
        let (named, response) = {
            let resp = out.as_ref().ok().map(|r| r as &dyn std::any::Any);
            let named = named.or_else(|| {
                let resp = resp?;
                match op {
                    "Decrypt" => resp.downcast_ref::<pb::DecryptResponse>()?.key_id.clone(),
                    "ReEncrypt" => resp
                        .downcast_ref::<pb::ReEncryptResponse>()?
                        .source_key_id
                        .clone(),
                    _ => None,
                }
            });
            (named, resp.and_then(response_elements))
        };
        let key = named.and_then(|k| self.resolve(&k, RefForms::KeyOrAlias).ok());
        let mut call = self.api_call(ctx, op, params);
        call.response_elements = response;
        log.record(crate::call_log::PendingCall {
            call,
            key_id: key.as_ref().map(|k| k.key_id.to_string()),
            key_arn: key.as_ref().map(|k| self.arn(k)),
            read_only: is_management_read(op) || CRYPTO_OPS.contains(&op),
            error: out.as_ref().err().map(|e| kmsim_core::audit::CallError {
                code: e.code().to_string(),
                message: e.message().to_string(),
            }),
        })
        .await;
    }

    /// Records a call that the AWS front refused before it reached an operation (its body is
    /// not the operation's input, its `X-Amz-Target` names no operation, its `Content-Type`
    /// is wrong), made by an authenticated caller: `op` is the operation the target named (or
    /// the target as sent), `requestParameters` is `null`.
    pub async fn record_refused(&self, ctx: &RequestContext, op: &str, error: &KmsError) {
        let Some(log) = &self.calls else { return };
        log.record(crate::call_log::PendingCall {
            call: self.api_call(ctx, op, String::new()),
            key_id: None,
            key_arn: None,
            read_only: is_management_read(op) || CRYPTO_OPS.contains(&op),
            error: Some(kmsim_core::audit::CallError {
                code: error.code().to_string(),
                message: error.message().to_string(),
            }),
        })
        .await;
    }

    async fn consistent_run<Req, Resp, F, Fut>(
        &self,
        op: &str,
        req: Req,
        call: F,
    ) -> Result<Resp, KmsError>
    where
        Req: Clone,
        F: Fn(Req) -> Fut,
        Fut: std::future::Future<Output = Result<Resp, KmsError>>,
    {
        let confirmed_first = is_management_read(op) || MULTI_REGION_OPERATIONS.contains(&op);
        if confirmed_first {
            self.reads.barrier().await?;
            return call(req).await;
        }
        match call(req.clone()).await {
            Err(
                KmsError::NotFound(_)
                | KmsError::Disabled(_)
                | KmsError::InvalidState(_)
                | KmsError::AccessDenied(_),
            ) => {
                self.reads.barrier().await?;
                call(req).await
            }
            other => other,
        }
    }

    /// Resolves a `KeyId` member to a key of this Region.
    pub fn resolve(&self, key_id: &str, forms: RefForms) -> Result<Arc<KeyRecord>, KmsError> {
        let r = KeyRef::parse(key_id, &self.scope, forms)?;
        self.read(|s| s.resolve(&r))?
    }

    /// Proposes a command and returns the key it produced.
    async fn propose_key(&self, cmd: Command) -> Result<KeyRecord, KmsError> {
        match self.proposer.propose(&cmd).await? {
            CommandOutput::Key(k) => Ok(*k),
            other => Err(KmsError::Internal(format!(
                "unexpected command output {other:?}"
            ))),
        }
    }

    /// Proposes a command that adds a material version to `key_id`, built by `build` from this
    /// node's view of the key. The version number is bound into the wrapped material, so a
    /// node that has not applied the key's latest version yet builds a stale command, which
    /// the state machine refuses with a conflict; by then (the proposer waits for its write to
    /// be applied here) this node has caught up, so the command is rebuilt and proposed again.
    async fn propose_new_version(
        &self,
        key_id: &kmsim_core::ids::KeyId,
        build: impl Fn(&KeyRecord) -> Result<Command, KmsError>,
    ) -> Result<CommandOutput, KmsError> {
        let mut attempts = 0;
        loop {
            let key = self.read(|s| s.key(key_id))?.ok_or_else(|| {
                KmsError::NotFound(format!(
                    "Key '{}' does not exist",
                    self.scope.key_arn(key_id)
                ))
            })?;
            let seen = key.shared.next_version();
            match self.proposer.propose(&build(&key)?).await {
                Err(KmsError::Conflict(m)) if attempts < 3 => {
                    let now = self
                        .read(|s| s.key(key_id))?
                        .map(|k| k.shared.next_version());
                    if now == Some(seen) {
                        return Err(KmsError::Conflict(m));
                    }
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    /// Wraps `cmd` so that, once it succeeds, the call is recorded in the Region's audit log
    /// (CloudTrail shape; `params` are the lowerCamelCase request parameters, no secrets).
    pub fn audited(
        &self,
        ctx: &RequestContext,
        event_name: &str,
        params: serde_json::Value,
        cmd: Command,
    ) -> Command {
        self.audited_with_response(ctx, event_name, params, None, cmd)
    }

    /// [`KmsApi::audited`] with CloudTrail's `responseElements` (JSON text), for the calls
    /// whose records carry them and whose answer is known before the command is proposed
    /// (CreateKey, ReplicateKey, RotateKeyOnDemand). ScheduleKeyDeletion's and
    /// CancelKeyDeletion's are built where the command is applied, from the key it left.
    pub fn audited_with_response(
        &self,
        ctx: &RequestContext,
        event_name: &str,
        params: serde_json::Value,
        response_elements: Option<String>,
        cmd: Command,
    ) -> Command {
        let mut call = self.api_call(ctx, event_name, params.to_string());
        call.response_elements = response_elements;
        Command::Audited {
            call,
            cmd: Box::new(cmd),
        }
    }

    /// The audit view of a call as this node takes it: the caller from `ctx`, the node's time,
    /// the request parameters (JSON text, already without secrets; empty for `null`). One
    /// builder for the Region log's records and the node call log's.
    fn api_call(
        &self,
        ctx: &RequestContext,
        event_name: &str,
        params: String,
    ) -> kmsim_core::audit::ApiCall {
        kmsim_core::audit::ApiCall {
            event_name: event_name.to_string(),
            time_ms: self.clock.now_ms(),
            request_id: ctx.request_id.clone(),
            principal_arn: ctx.principal_arn.clone(),
            access_key_id: ctx.access_key_id.clone(),
            source_ip: ctx.source_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            request_parameters: params,
            response_elements: None,
        }
    }

    /// Proposes a command whose output is not needed.
    async fn propose_done(&self, cmd: Command) -> Result<(), KmsError> {
        self.proposer.propose(&cmd).await.map(|_| ())
    }

    /// The ARN of a key in this Region.
    fn arn(&self, k: &KeyRecord) -> String {
        self.scope.key_arn(&k.key_id)
    }
}
