//! `kmsim.sync.v1.SyncService` on every node: opens what another Region sent, re-wraps the
//! material under this Region's domain key, applies the message through this Region's Raft
//! (any node may receive it; the proposer forwards to the leader) and answers with what this
//! Region now holds, sealed back to the sender.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::key::RegionalMaterial;
use kmsim_core::policy::validate_policy;
use kmsim_core::state::{Command, CommandOutput};
use kmsim_core::sync::{SyncMessage, SyncReply};
use kmsim_core::tags::validate_tags;
use kmsim_core::KmsError;
use kmsim_proto::sync::v1::sync_service_server::SyncService;
use kmsim_proto::sync::v1::SyncEnvelope;

use super::envelope::{open, seal, Bundle};
use super::SyncIdentity;
use crate::kms::KmsApi;

/// Receives synchronizations and notices from other Regions.
pub struct SyncServiceImpl {
    api: Arc<KmsApi>,
    id: Arc<SyncIdentity>,
}

impl SyncServiceImpl {
    /// The service of this node.
    pub fn new(api: Arc<KmsApi>, id: Arc<SyncIdentity>) -> SyncServiceImpl {
        SyncServiceImpl { api, id }
    }

    async fn apply(
        &self,
        source: &str,
        message: SyncMessage,
        secret: Bundle,
    ) -> Result<SyncReply, Status> {
        let region = |r: &str| Region::parse(r).map_err(|_| Status::invalid_argument("bad Region"));
        let creating = matches!(message, SyncMessage::CreateReplica { .. });
        let cmd = match message {
            SyncMessage::Key {
                key_id,
                shared,
                create,
                promote,
            } => {
                // A resend this Region already holds (anti-entropy) is answered from the
                // applied state, as the state machine would answer it, without a Raft write.
                let source = region(source)?;
                let held = self
                    .api
                    .read(|s| s.already_holds(&key_id, &source, &shared, promote));
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
                let source = region(source)?;
                let checked = validate_policy(&spec.policy)
                    .and_then(|()| validate_tags(&spec.tags, "tags"))
                    .and_then(|()| self.api.read(|s| s.replica_slot(&key_id, &source)));
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
            Ok(CommandOutput::Sync(reply)) => Ok(reply),
            Ok(other) => Err(Status::internal(format!("unexpected output {other:?}"))),
            // A definite refusal of a replica request is part of the authenticated answer,
            // passed on to the ReplicateKey caller; anything else may be retried.
            Err(e) if creating && !e.is_retryable() => Ok(refused(&e)),
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
        let env = req.into_inner();
        let opened = open::<SyncMessage>(&self.id, &env).map_err(|why| {
            tracing::warn!(peer = %env.source, key_id = %env.key_id, why, "refused a synchronization message");
            Status::permission_denied(why)
        })?;
        let key_matches = match &opened.message {
            SyncMessage::Key { key_id, .. }
            | SyncMessage::CreateReplica { key_id, .. }
            | SyncMessage::AbandonReplica { key_id }
            | SyncMessage::Notice { key_id, .. } => key_id.as_str() == env.key_id,
        };
        if !key_matches || KeyId::parse(&env.key_id).is_none() {
            return Err(Status::permission_denied(
                "message and envelope name different keys",
            ));
        }
        let reply = self
            .apply(&env.source, opened.message, opened.secret)
            .await?;
        let answer = seal(
            &self.id,
            &env.source,
            &opened.sender_public,
            &env.key_id,
            env.stamp,
            &reply,
            &Bundle::default(),
            &self.api.entropy,
        )
        .map_err(Status::internal)?;
        Ok(Response::new(answer))
    }
}
