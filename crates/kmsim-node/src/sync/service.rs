//! `kmsim.sync.v1.SyncService` on every node: opens what another Region sent, re-wraps the
//! material under this Region's domain key, applies the message through this Region's Raft
//! (any node may receive it; the proposer forwards to the leader) and answers with what this
//! Region now holds, sealed back to the sender.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::key::RegionalMaterial;
use kmsim_core::state::{Command, CommandOutput};
use kmsim_core::sync::{SyncMessage, SyncReply};
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

    /// The answer to a synchronization this Region has already applied (the resend of
    /// anti-entropy), read from the state without a Raft write. `None` when it must go
    /// through Raft. The state machine answers such a message the same way (stale or
    /// repeated: "what this Region holds"); a lagging node only ever under-reports.
    fn already_holds(
        &self,
        source: &str,
        key_id: &KeyId,
        shared: &kmsim_core::key::SharedProps,
        promote: bool,
    ) -> Option<SyncReply> {
        let m = shared.mrk.as_ref()?;
        if promote || m.primary.as_str() != source {
            return None;
        }
        let local = self.api.read(|s| s.key(key_id))?;
        let held = local.shared.mrk.as_ref()?.stamp();
        (m.stamp() <= held).then_some(SyncReply::Applied {
            epoch: held.0,
            version: held.1,
        })
    }

    async fn apply(
        &self,
        source: &str,
        message: SyncMessage,
        secret: Bundle,
    ) -> Result<SyncReply, Status> {
        let region = |r: &str| Region::parse(r).map_err(|_| Status::invalid_argument("bad Region"));
        let cmd = match message {
            SyncMessage::Key {
                key_id,
                shared,
                create,
                promote,
            } => {
                if let Some(reply) = self.already_holds(source, &key_id, &shared, promote) {
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
                    source: region(source)?,
                    shared: *shared,
                    materials,
                    create,
                    promote,
                    now_ms: self.api.clock.now_ms(),
                }
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
            Ok(CommandOutput::Sync(reply)) => Ok(reply),
            Ok(other) => Err(Status::internal(format!("unexpected output {other:?}"))),
            Err(e) => Err(kmsim_proto::status_from_error(&e)),
        }
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
            SyncMessage::Key { key_id, .. } | SyncMessage::Notice { key_id, .. } => {
                key_id.as_str() == env.key_id
            }
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
