//! Multi-Region keys: ReplicateKey and UpdatePrimaryRegion. Both reach the other Region during
//! the request, through the synchronizer's authenticated link (`crate::sync::link`):
//! ReplicateKey has the replica Region commit the replica in state `Creating` before the
//! primary's Region commits it into the set; UpdatePrimaryRegion delivers the promotion before
//! it answers. Key material still travels only through the synchronizer task, which is why the
//! replica stays `Creating` until its first synchronization.

use std::sync::Arc;
use std::time::Duration;

use kmsim_core::ids::{KeyId, KeyRef, RefForms, Region};
use kmsim_core::key::{KeyRecord, KeyState, RegionalProps, ReplicaSpec};
use kmsim_core::policy::{default_key_policy, validate_policy};
use kmsim_core::state::Command;
use kmsim_core::sync::{SyncMessage, SyncReply};
use kmsim_core::tags::validate_tags;
use kmsim_core::KmsError;
use kmsim_proto::kms::v1 as pb;

use super::convert::key_metadata;
use super::validate::{required, str_len};
use super::{KmsApi, RequestContext};
use crate::backoff::Backoff;
use crate::sync::envelope::{pack, Bundle};
use crate::sync::link::SyncLink;
use crate::sync::task::deliver_key;

impl KmsApi {
    /// A Region of the topology, in this Region's partition, for ReplicateKey/UpdatePrimaryRegion.
    fn peer_region(&self, name: &str, member: &str, arn: &str) -> Result<Region, KmsError> {
        let region = Region::parse_member(name, member)?;
        let partition = self.regions.get(region.as_str()).ok_or_else(|| {
            KmsError::UnsupportedOperation(format!(
                "Region {region} is not part of this kmsim topology."
            ))
        })?;
        if partition != self.scope.partition.as_str() {
            return Err(KmsError::UnsupportedOperation(format!(
                "{arn} cannot be replicated to {region}: it is in partition {partition}, and related multi-Region keys must all be in partition {}.",
                self.scope.partition
            )));
        }
        self.scope.partition.check_multi_region_keys(&region)?;
        for r in [self.scope.region.as_str(), region.as_str()] {
            if self.unsynchronized.contains(r) {
                return Err(KmsError::UnsupportedOperation(format!(
                    "Region {r} has no transport key in this kmsim topology (transport_key_file and transport_certificate), so multi-Region keys cannot be exchanged with it."
                )));
            }
        }
        Ok(region)
    }

    /// ReplicateKey.
    pub async fn replicate_key(
        &self,
        ctx: &RequestContext,
        req: pb::ReplicateKeyRequest,
    ) -> Result<pb::ReplicateKeyResponse, KmsError> {
        let key_id = required(req.key_id, "keyId")?;
        let key = self.resolve(&key_id, RefForms::KeyOnly)?;
        let arn = self.arn(&key);
        let replica_name = required(req.replica_region, "replicaRegion")?;
        let replica = self.peer_region(&replica_name, "replicaRegion", &arn)?;
        let description = req.description.unwrap_or_default();
        str_len(&description, "description", 0, 8192)?;
        let replica_scope = kmsim_core::ids::Scope {
            region: replica.clone(),
            ..self.scope.clone()
        };
        let policy = match req.policy {
            Some(p) => {
                validate_policy(&p)?;
                // Judged as the replica Region would: its ARN, `aws:RequestedRegion` there.
                self.check_new_key_policy(
                    ctx,
                    "ReplicateKey",
                    &p,
                    &replica_scope.key_arn(&key.key_id),
                    &replica,
                    req.bypass_policy_lockout_safety_check.unwrap_or(false),
                )?;
                p
            }
            None => default_key_policy(&replica_scope),
        };
        let tags = super::management::tags_from(req.tags)?;
        validate_tags(&tags, "tags")?;
        if tags.len() > kmsim_core::tags::MAX_TAGS {
            return Err(KmsError::Tag("Too many tags".into()));
        }
        let spec = ReplicaSpec {
            description: description.clone(),
            policy: policy.clone(),
            tags: tags.clone(),
        };
        let params = serde_json::json!({
            "keyId": key_id,
            "replicaRegion": replica.as_str(),
            "description": description,
            "bypassPolicyLockoutSafetyCheck": req.bypass_policy_lockout_safety_check.unwrap_or(false),
        });
        // The replica Region first: it checks the request (the dry run) and commits the
        // replica in state Creating, so DescribeKey there finds it as soon as we answer.
        let link = self.sync_link(&replica)?;
        let shared = self.read(|s| s.replication_plan(&key.key_id, &replica))??;
        let message = SyncMessage::CreateReplica {
            key_id: key.key_id.clone(),
            shared: Box::new(shared.clone()),
            spec: spec.clone(),
        };
        let stamp = shared.mrk.as_ref().map(|m| pack(m.stamp())).unwrap_or(0);
        let answer = link
            .send(
                &self.entropy,
                &replica,
                &key.key_id,
                stamp,
                &message,
                &Bundle::default(),
            )
            .await;
        let creation_ms = match answer {
            Ok(SyncReply::ReplicaCreating { creation_ms }) => creation_ms,
            Ok(SyncReply::Refused { code, message }) => {
                return Err(KmsError::from_wire(&code, message))
            }
            Ok(other) => {
                return Err(KmsError::Internal(format!(
                    "{replica} answered a replica request with {other:?}"
                )))
            }
            Err(why) => {
                // Not reached, or the answer was lost: if the replica Region did commit, take
                // it back, in the background.
                self.abandon_replica(link, &key.key_id, &replica);
                return Err(KmsError::DependencyTimeout(format!(
                    "ReplicateKey could not reach {replica} ({why}); nothing was replicated, the request can be retried."
                )));
            }
        };
        // The replica as its Region holds it: the set's shared properties (as planned, and
        // as the primary's Region commits them), the request's Regional ones, state Creating
        // until the synchronizer has delivered its material. It is the answer, and CloudTrail's
        // responseElements.
        let replica_key = KeyRecord {
            key_id: key.key_id.clone(),
            shared,
            regional: RegionalProps {
                creation_ms,
                description,
                state: KeyState::Creating,
                deletion_ms: None,
                pending_window_days: None,
                policy: policy.clone(),
                tags: tags.clone(),
                materials: Default::default(),
                sync: Default::default(),
            },
        };
        let replica_metadata = key_metadata(&replica_scope, &replica_key);
        let response = super::trail::key_metadata_elements(
            "replicaKeyMetadata",
            &replica_metadata,
            &[("replicaPolicy", policy.clone().into())],
        );
        let committed = self
            .propose_key(self.audited_with_response(
                ctx,
                "ReplicateKey",
                params,
                Some(response),
                Command::ReplicateKey {
                    key_id: key.key_id.clone(),
                    replica: replica.clone(),
                    spec,
                },
            ))
            .await;
        if let Err(e) = committed {
            // A definite refusal here (the key changed since the plan) leaves the replica
            // Region's Creating record without a set: take it back, unless the set lists
            // the Region after all (a concurrent ReplicateKey of the same replica won).
            // After an unknown outcome the record stays: the write may yet commit, and a
            // retried ReplicateKey finds the record and completes.
            let listed = self.read(|s| {
                s.key(&key.key_id)
                    .and_then(|k| k.shared.mrk.clone())
                    .is_some_and(|m| m.replicas.contains(&replica))
            })?;
            if !listed && !e.is_retryable() {
                self.abandon_replica(link, &key.key_id, &replica);
            }
            return Err(e);
        }
        Ok(pb::ReplicateKeyResponse {
            replica_key_metadata: Some(replica_metadata),
            replica_policy: Some(policy),
            replica_tags: tags.iter().map(super::management::pb_tag).collect(),
        })
    }

    /// The link to other Regions (every Region that `peer_region` admits has one).
    fn sync_link(&self, region: &Region) -> Result<Arc<SyncLink>, KmsError> {
        self.sync.clone().ok_or_else(|| {
            KmsError::UnsupportedOperation(format!(
                "Region {} has no transport key in this kmsim topology, so multi-Region keys cannot be exchanged with {region}.",
                self.scope.region
            ))
        })
    }

    /// Asks `replica`'s Region, in the background, to remove the replica of `key_id` that a
    /// failed ReplicateKey created there (it does so only while the replica is still
    /// `Creating` for this primary). A few tries with jittered backoff; what still fails is
    /// logged (the record then stays `Creating` until a retried ReplicateKey completes it).
    fn abandon_replica(&self, link: Arc<SyncLink>, key_id: &KeyId, replica: &Region) {
        let (key_id, replica, entropy) = (key_id.clone(), replica.clone(), self.entropy.clone());
        tokio::spawn(async move {
            let message = SyncMessage::AbandonReplica {
                key_id: key_id.clone(),
            };
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
            let mut last = String::new();
            for _ in 0..ABANDON_TRIES {
                match link
                    .send(&entropy, &replica, &key_id, 0, &message, &Bundle::default())
                    .await
                {
                    Ok(_) => return,
                    Err(why) => last = why,
                }
                tokio::time::sleep(backoff.delay()).await;
            }
            tracing::warn!(key_id = %key_id, peer = %replica, why = last, "could not take back a replica of a failed ReplicateKey");
        });
    }

    /// UpdatePrimaryRegion: this Region's key is demoted and fenced at once (state Updating);
    /// the synchronizer then promotes the replica in `PrimaryRegion`, and both return to their
    /// previous state when it has answered.
    pub async fn update_primary_region(
        &self,
        ctx: &RequestContext,
        req: pb::UpdatePrimaryRegionRequest,
    ) -> Result<pb::UpdatePrimaryRegionResponse, KmsError> {
        let key_id = required(req.key_id, "keyId")?;
        let key = match KeyRef::parse(&key_id, &self.scope, RefForms::KeyOnly)? {
            KeyRef::Key(id) => self.read(|s| s.resolve(&KeyRef::Key(id)))??,
            KeyRef::Alias(_) => {
                return Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")))
            }
        };
        let arn = self.arn(&key);
        let to_name = required(req.primary_region, "primaryRegion")?;
        let to = self.peer_region(&to_name, "primaryRegion", &arn)?;
        let link = self.sync_link(&to)?;
        // A retry of a hand-over already under way to the same Region only waits for it.
        let handing_over = key
            .regional
            .sync
            .handover
            .as_ref()
            .is_some_and(|h| h.to == to);
        if !handing_over {
            self.authorize_in(ctx, &link, &key.key_id, &to).await?;
            let params = serde_json::json!({"keyId": key_id, "primaryRegion": to.as_str()});
            self.propose_done(self.audited(
                ctx,
                "UpdatePrimaryRegion",
                params,
                Command::BeginHandover {
                    key_id: key.key_id.clone(),
                    to: to.clone(),
                },
            ))
            .await?;
        }
        // Deliver the promotion now, so that once this call answers, DescribeKey in either
        // Region shows the new primary (the synchronizer would otherwise deliver it shortly
        // after; it still retries if this attempt fails).
        let answer = deliver_key(self, &link, &key.key_id, &to, true)
            .await
            .map_err(|why| {
                KmsError::Internal(format!(
                    "The primary Region of {arn} is moving to {to}, which could not be reached yet ({why}). The change completes when {to} is reachable; until then both keys are Updating. Retry the request to wait for it."
                ))
            })?;
        match answer {
            // The replica refused (e.g. it is not Enabled): this Region took the primary role
            // back (`EndHandover`), and the caller hears why.
            Some(SyncReply::PromotionRefused { reason }) => Err(KmsError::InvalidState(format!(
                "The primary Region of {arn} was not changed: {reason}."
            ))),
            Some(SyncReply::UnknownKey) => Err(KmsError::InvalidState(format!(
                "The primary Region of {arn} was not changed: {to} no longer holds the key."
            ))),
            _ => Ok(pb::UpdatePrimaryRegionResponse {}),
        }
    }
}

impl KmsApi {
    /// UpdatePrimaryRegion needs `kms:UpdatePrimaryRegion` on the replica being promoted too,
    /// judged by that key's own policy and grants, which only its Region holds: that Region is
    /// asked before anything changes, and its refusal is the caller's `AccessDeniedException`.
    /// When that Region cannot be reached the check is skipped and the hand-over begins as
    /// before (it then waits for that Region): a known limit, in docs/ARCHITECTURE.md,
    /// "Authorization".
    async fn authorize_in(
        &self,
        ctx: &RequestContext,
        link: &SyncLink,
        key_id: &KeyId,
        to: &Region,
    ) -> Result<(), KmsError> {
        let message = SyncMessage::Authorize {
            key_id: key_id.clone(),
            operation: "UpdatePrimaryRegion".into(),
            principal_arn: ctx.principal_arn.clone(),
            source_ip: ctx.source_ip.clone(),
            grpc: ctx.interface == super::Interface::Grpc,
            request: serde_json::json!({"KeyId": key_id.as_str(), "PrimaryRegion": to.as_str()})
                .to_string(),
        };
        match link
            .send(&self.entropy, to, key_id, 0, &message, &Bundle::default())
            .await
        {
            Ok(SyncReply::Authorized) => Ok(()),
            Ok(SyncReply::Refused { code, message }) => Err(KmsError::from_wire(&code, message)),
            Ok(other) => Err(KmsError::Internal(format!(
                "{to} answered an authorization request with {other:?}"
            ))),
            Err(why) => {
                tracing::warn!(key_id = %key_id, peer = %to, why, "could not ask the replica Region to authorize UpdatePrimaryRegion; going on without its check");
                Ok(())
            }
        }
    }
}

/// How many times a failed ReplicateKey asks the replica Region to take its replica back.
const ABANDON_TRIES: usize = 5;
