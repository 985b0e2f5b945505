//! `kmsim.sync.v1.SyncService` on every node: hands out this node's session key (signed by the
//! Region for the caller's challenge), opens what another Region sealed to it, checks delivered
//! material against its commitments, re-wraps it under this Region's domain key, applies the
//! message through this Region's Raft (any node may receive it; the proposer forwards to the
//! leader) and answers with what this Region now holds, authenticated for that one request.
//! The IAM document is taken from the IAM home Region only, and only when newer
//! (`crate::iam`).

use crate::kms::internal;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tonic::{Request, Response, Status};

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::key::RegionalMaterial;
use kmsim_core::policy::validate_policy;
use kmsim_core::state::{Command, CommandOutput};
use kmsim_core::sync::{SyncMessage, SyncReply, IAM_ENVELOPE_ID};
use kmsim_core::tags::validate_tags;
use kmsim_core::KmsError;
use kmsim_crypto::{SessionKeyClaim, CHALLENGE_LEN};
use kmsim_proto::sync::v1::sync_service_server::SyncService;
use kmsim_proto::sync::v1::{SessionKeyRequest, SessionKeyResponse, SyncEnvelope};

use super::envelope::{answer, open, Bundle};
use super::material_check::check_materials;
use super::session::SessionKeys;
use super::SyncIdentity;
use crate::commit_origins::unix_ms_now;
use crate::kms::KmsApi;
use crate::metrics::{LagLabels, SyncLag};
use crate::trace::{self, TraceContext};

/// Receives synchronizations and notices from other Regions.
pub struct SyncServiceImpl {
    api: Arc<KmsApi>,
    id: Arc<SyncIdentity>,
    sessions: Arc<SessionKeys>,
    /// `kmsim_sync_lag_seconds`: observed for every change applied here whose commit time the
    /// message carries.
    lag: SyncLag,
}

impl SyncServiceImpl {
    /// The service of this node, opening requests with these session keys.
    pub fn new(
        api: Arc<KmsApi>,
        id: Arc<SyncIdentity>,
        sessions: Arc<SessionKeys>,
        lag: SyncLag,
    ) -> SyncServiceImpl {
        SyncServiceImpl {
            api,
            id,
            sessions,
            lag,
        }
    }

    /// Applies a message in the trace of the change it carries (a new trace when it has
    /// none), and observes the lag of a change it applied.
    async fn apply_traced(
        &self,
        source: &str,
        message: SyncMessage,
        secret: Bundle,
    ) -> Result<SyncReply, Status> {
        let origin = match &message {
            SyncMessage::Key { origin, .. } => origin.clone(),
            _ => None,
        };
        let trace = TraceContext::from_header(
            origin
                .as_ref()
                .and_then(|o| o.traceparent.as_deref())
                .map(str::as_bytes),
        );
        let detail = format!("from {source}");
        let applied = AtomicBool::new(false);
        let reply = trace::scope(
            trace,
            "sync-apply",
            &detail,
            self.apply(source, message, secret, &applied),
        )
        .await?;
        if let Some(o) = origin.filter(|_| applied.load(Ordering::Relaxed)) {
            let lag_ms = unix_ms_now().saturating_sub(o.committed_unix_ms);
            self.lag
                .get_or_create(&LagLabels {
                    source: source.to_string(),
                    destination: self.id.region.clone(),
                })
                .observe(lag_ms as f64 / 1000.0);
        }
        Ok(reply)
    }

    /// Applies a message; `applied` is set when it changed this Region's state through Raft.
    async fn apply(
        &self,
        source: &str,
        message: SyncMessage,
        secret: Bundle,
        applied: &AtomicBool,
    ) -> Result<SyncReply, Status> {
        let region = |r: &str| Region::parse(r).map_err(|_| Status::invalid_argument("bad Region"));
        let creating = matches!(message, SyncMessage::CreateReplica { .. });
        let cmd = match message {
            SyncMessage::Key {
                key_id,
                shared,
                create,
                promote,
                origin: _,
            } => {
                // Material is checked against the commitments of the set before anything is
                // stored: even a certified Region cannot plant other material for a version.
                let held = self.api.read(|s| s.key(&key_id)).map_err(internal)?;
                if let Err(why) =
                    check_materials(&key_id, held.as_ref().map(|k| &k.shared), &shared, &secret)
                {
                    tracing::warn!(peer = %source, key_id = %key_id, why, "refused key material that does not match its commitment");
                    return Err(Status::permission_denied(why));
                }
                // A resend this Region already holds (anti-entropy) is answered from the
                // applied state, as the state machine would answer it, without a Raft write.
                let source = region(source)?;
                let held = self
                    .api
                    .read(|s| s.already_holds(&key_id, &source, &shared, promote))
                    .map_err(internal)?;
                if let Some(reply) = held {
                    return Ok(reply);
                }
                // Material arrives transport-wrapped and is stored wrapped under this Region's
                // domain key; the plaintext lives only in memory, here.
                let mut materials = BTreeMap::new();
                for (version, raw) in &secret.0 {
                    materials.insert(
                        *version,
                        RegionalMaterial {
                            wrapped: self.api.materials.wrap(
                                &key_id,
                                *version,
                                raw,
                                &self.api.entropy,
                            ),
                            import: None,
                        },
                    );
                }
                Command::ApplySync {
                    key_id,
                    source,
                    shared: *shared,
                    materials,
                    create,
                    promote,
                    now_ms: self.api.clock.now_ms(),
                }
            }
            SyncMessage::CreateReplica {
                key_id,
                shared,
                spec,
            } => {
                // The dry run: everything this Region can check before committing anything.
                // AWS counts a ReplicateKey as two CreateKey calls in the replica's Region
                // (one of them this dry run), charged to its quota here.
                let source = region(source)?;
                let checked = self
                    .api
                    .quotas
                    .admit_on_behalf("CreateKey", 2)
                    .and_then(|()| validate_policy(&spec.policy))
                    .and_then(|()| validate_tags(&spec.tags, "tags"))
                    .and_then(|()| self.api.read(|s| s.replica_slot(&key_id, &source))?);
                match checked {
                    Err(e) => return Ok(refused(&e)),
                    Ok(Some(creation_ms)) => return Ok(SyncReply::ReplicaCreating { creation_ms }),
                    Ok(None) => {}
                }
                Command::CreateReplica {
                    key_id,
                    source,
                    shared,
                    spec,
                    now_ms: self.api.clock.now_ms(),
                }
            }
            SyncMessage::AbandonReplica { key_id } => Command::AbandonReplica {
                key_id,
                source: region(source)?,
                now_ms: self.api.clock.now_ms(),
            },
            SyncMessage::Authorize {
                key_id,
                operation,
                principal_arn,
                source_ip,
                grpc,
                request,
            } => {
                if operation != "UpdatePrimaryRegion" {
                    return Err(Status::permission_denied(
                        "only UpdatePrimaryRegion is authorized across Regions",
                    ));
                }
                let mut body: serde_json::Value = serde_json::from_str(&request)
                    .map_err(|_| Status::invalid_argument("bad request members"))?;
                // Judged on this Region's key, whatever the sender named.
                body["KeyId"] = serde_json::Value::String(key_id.to_string());
                let ctx = crate::kms::RequestContext {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    principal_arn,
                    access_key_id: None,
                    source_ip,
                    user_agent: None,
                    interface: if grpc {
                        crate::kms::Interface::Grpc
                    } else {
                        crate::kms::Interface::AwsJson
                    },
                };
                // AWS counts an UpdatePrimaryRegion once in each of its two Regions: this is
                // the new primary's.
                if let Err(e) = self.api.quotas.admit(&operation, &ctx.principal_arn, &()) {
                    return Ok(refused(&e));
                }
                // Read-your-writes for a policy just changed here.
                self.api
                    .reads
                    .barrier()
                    .await
                    .map_err(|e| kmsim_proto::status_from_error(&e))?;
                return Ok(match self.api.authorize(&operation, &ctx, &body) {
                    Ok(()) => SyncReply::Authorized,
                    Err(e) => refused(&e),
                });
            }
            SyncMessage::Iam { version, document } => {
                return self.apply_iam(source, version, document, applied).await;
            }
            SyncMessage::Notice { key_id, from, kind } => {
                if from.as_str() != source {
                    return Err(Status::permission_denied(
                        "a Region may only report for itself",
                    ));
                }
                Command::ApplyNotice {
                    key_id,
                    from,
                    kind,
                    now_ms: self.api.clock.now_ms(),
                }
            }
        };
        match self.api.proposer.propose(&cmd).await {
            Ok(CommandOutput::Sync(reply)) => {
                applied.store(true, Ordering::Relaxed);
                Ok(reply)
            }
            Ok(other) => Err(Status::internal(format!("unexpected output {other:?}"))),
            // A definite refusal of a replica request is part of the authenticated answer,
            // passed on to the ReplicateKey caller; anything else may be retried.
            Err(e) if creating && !e.is_retryable() => Ok(refused(&e)),
            Err(e) => Err(kmsim_proto::status_from_error(&e)),
        }
    }
}

impl SyncServiceImpl {
    /// Takes the IAM document at `version` from `source`, which must be the IAM home Region,
    /// when it is newer than what this Region holds (through this Region's Raft); answers the
    /// version held.
    async fn apply_iam(
        &self,
        source: &str,
        version: u64,
        document: Box<kmsim_core::iam::IamDocument>,
        applied: &AtomicBool,
    ) -> Result<SyncReply, Status> {
        let home = self.api.iam.home_region();
        if source != home {
            tracing::warn!(peer = %source, home, "refused IAM from a Region that is not the IAM home Region");
            return Err(Status::permission_denied(format!(
                "IAM comes from the IAM home Region {home} only"
            )));
        }
        let held = self.api.read(|s| s.iam_version()).map_err(internal)?;
        if version <= held {
            return Ok(SyncReply::Applied {
                epoch: 0,
                version: held,
            });
        }
        let cmd = Command::SetIam {
            base: None,
            version,
            document,
        };
        match self.api.proposer.propose(&cmd).await {
            Ok(CommandOutput::IamVersion(version)) => {
                applied.store(true, Ordering::Relaxed);
                Ok(SyncReply::Applied { epoch: 0, version })
            }
            Ok(other) => Err(Status::internal(format!("unexpected output {other:?}"))),
            Err(e) => Err(kmsim_proto::status_from_error(&e)),
        }
    }
}

/// A definite API error as an answer to the sender.
fn refused(e: &KmsError) -> SyncReply {
    SyncReply::Refused {
        code: e.code().to_string(),
        message: e.message().to_string(),
    }
}

#[tonic::async_trait]
impl SyncService for SyncServiceImpl {
    async fn deliver(&self, req: Request<SyncEnvelope>) -> Result<Response<SyncEnvelope>, Status> {
        if self.api.sync.as_ref().is_some_and(|l| l.paused()) {
            return Err(Status::unavailable(format!(
                "the synchronizer of {} is paused (injected fault)",
                self.id.region
            )));
        }
        let env = req.into_inner();
        let opened = open::<SyncMessage>(&self.id, &self.sessions, &env).map_err(|refusal| {
            tracing::warn!(peer = %env.source, key_id = %env.key_id, why = ?refusal, "refused a synchronization message");
            refusal.status()
        })?;
        let key_matches = match &opened.message {
            SyncMessage::Key { key_id, .. }
            | SyncMessage::CreateReplica { key_id, .. }
            | SyncMessage::AbandonReplica { key_id }
            | SyncMessage::Authorize { key_id, .. }
            | SyncMessage::Notice { key_id, .. } => {
                key_id.as_str() == env.key_id && KeyId::parse(&env.key_id).is_some()
            }
            SyncMessage::Iam { .. } => env.key_id == IAM_ENVELOPE_ID,
        };
        if !key_matches {
            return Err(Status::permission_denied(
                "message and envelope name different keys",
            ));
        }
        let reply = self
            .apply_traced(&env.source, opened.message, opened.secret)
            .await?;
        Ok(Response::new(answer(&env, &reply, &opened.answer_key)))
    }

    async fn session_key(
        &self,
        req: Request<SessionKeyRequest>,
    ) -> Result<Response<SessionKeyResponse>, Status> {
        let challenge = req.into_inner().challenge;
        if challenge.len() != CHALLENGE_LEN {
            return Err(Status::invalid_argument(format!(
                "the challenge must be {CHALLENGE_LEN} bytes"
            )));
        }
        let public_key = self.sessions.current_public();
        let signature = SessionKeyClaim {
            region: &self.id.region,
            node_id: self.sessions.node_id,
            public_key_der: &public_key,
            challenge: &challenge,
        }
        .sign(&self.id.transport, &mut self.api.entropy.rng());
        Ok(Response::new(SessionKeyResponse {
            region: self.id.region.clone(),
            node_id: self.sessions.node_id,
            public_key,
            signature,
        }))
    }
}
