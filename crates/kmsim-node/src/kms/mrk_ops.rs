//! Multi-Region keys: ReplicateKey and UpdatePrimaryRegion. Both are answered as soon as this
//! Region has committed its half; the synchronizer delivers the rest to the other Region
//! (`crate::sync`), which is why ReplicateKey reports the replica as `Creating`.

use kmsim_core::ids::{KeyRef, RefForms, Region};
use kmsim_core::key::{KeyRecord, KeyState, RegionalProps, ReplicaSpec};
use kmsim_core::policy::{default_key_policy, validate_policy};
use kmsim_core::state::Command;
use kmsim_core::tags::validate_tags;
use kmsim_core::KmsError;
use kmsim_proto::kms::v1 as pb;

use super::convert::key_metadata;
use super::validate::{required, str_len};
use super::{KmsApi, RequestContext};

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
        let primary = self
            .propose_key(self.audited(
                ctx,
                "ReplicateKey",
                params,
                Command::ReplicateKey {
                    key_id: key.key_id.clone(),
                    replica: replica.clone(),
                    spec,
                },
            ))
            .await?;
        // The replica as its Region will show it: the set's shared properties, the request's
        // Regional ones, state Creating until that Region has committed it.
        let replica_key = KeyRecord {
            key_id: primary.key_id.clone(),
            shared: primary.shared.clone(),
            regional: RegionalProps {
                creation_ms: self.clock.now_ms(),
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
        Ok(pb::ReplicateKeyResponse {
            replica_key_metadata: Some(key_metadata(&replica_scope, &replica_key)),
            replica_policy: Some(policy),
            replica_tags: tags.iter().map(super::management::pb_tag).collect(),
        })
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
            KeyRef::Key(id) => self.read(|s| s.resolve(&KeyRef::Key(id)))?,
            KeyRef::Alias(_) => {
                return Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")))
            }
        };
        let arn = self.arn(&key);
        let to_name = required(req.primary_region, "primaryRegion")?;
        let to = self.peer_region(&to_name, "primaryRegion", &arn)?;
        let params = serde_json::json!({"keyId": key_id, "primaryRegion": to.as_str()});
        self.propose_done(self.audited(
            ctx,
            "UpdatePrimaryRegion",
            params,
            Command::BeginHandover {
                key_id: key.key_id.clone(),
                to,
            },
        ))
        .await?;
        Ok(pb::UpdatePrimaryRegionResponse {})
    }
}
