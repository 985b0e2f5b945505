//! Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
//! RotateKeyOnDemand, ListKeyRotations. Rotations are Raft commands; the new material is
//! generated and wrapped here, on the proposing node.

use kmsim_core::ids::RefForms;
use kmsim_core::key::{
    ImportState, IncludeKeyMaterial, KeyMaterialState, KeyRecord, KeySpec, KeyState, MaterialInfo,
    Origin, RegionalMaterial, RotationType,
};
use kmsim_core::key_state::{check, Operation};
use kmsim_core::state::Command;
use kmsim_core::KmsError;
use kmsim_crypto::{material_commitment, KeyMaterial};
use kmsim_proto::kms::v1 as pb;

use super::convert::secs;
use super::validate::{limit, range, required};
use super::{KmsApi, RequestContext};

impl KmsApi {
    fn symmetric_rotation_key(&self, key: &KeyRecord, op: Operation) -> Result<(), KmsError> {
        if key.shared.key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} key spec is {} which is not valid for {}: only symmetric encryption keys rotate.",
                self.arn(key),
                key.shared.key_spec,
                op.name()
            )));
        }
        Ok(())
    }

    /// Whether ListKeyRotations lists `key`'s rotations: the key's state and origin allow the
    /// operation and it is a symmetric encryption key; else the refusal.
    pub(super) fn rotations_listable(&self, key: &KeyRecord) -> Result<(), KmsError> {
        check(
            Operation::ListKeyRotations,
            key.regional.state,
            key.shared.origin,
            &self.arn(key),
        )?;
        self.symmetric_rotation_key(key, Operation::ListKeyRotations)
    }

    /// EnableKeyRotation.
    pub async fn enable_key_rotation(
        &self,
        ctx: &RequestContext,
        req: pb::EnableKeyRotationRequest,
    ) -> Result<pb::EnableKeyRotationResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let period = match req.rotation_period_in_days {
            Some(p) => {
                range(i64::from(p), "rotationPeriodInDays", 90, 2560)?;
                Some(p as u32)
            }
            None => None,
        };
        let params =
            serde_json::json!({"keyId": key.key_id.as_str(), "rotationPeriodInDays": period});
        self.propose_done(self.audited(
            ctx,
            "EnableKeyRotation",
            params,
            Command::SetKeyRotation {
                key_id: key.key_id.clone(),
                enabled: true,
                period_days: period,
                now_ms: self.clock.now_ms(),
            },
        ))
        .await?;
        Ok(pb::EnableKeyRotationResponse {})
    }

    /// DisableKeyRotation.
    pub async fn disable_key_rotation(
        &self,
        ctx: &RequestContext,
        req: pb::DisableKeyRotationRequest,
    ) -> Result<pb::DisableKeyRotationResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let params = serde_json::json!({"keyId": key.key_id.as_str()});
        self.propose_done(self.audited(
            ctx,
            "DisableKeyRotation",
            params,
            Command::SetKeyRotation {
                key_id: key.key_id.clone(),
                enabled: false,
                period_days: None,
                now_ms: self.clock.now_ms(),
            },
        ))
        .await?;
        Ok(pb::DisableKeyRotationResponse {})
    }

    /// GetKeyRotationStatus. While the key is pending deletion the status reads false; the
    /// setting itself is kept and shows again after CancelKeyDeletion.
    pub async fn get_key_rotation_status(
        &self,
        _ctx: &RequestContext,
        req: pb::GetKeyRotationStatusRequest,
    ) -> Result<pb::GetKeyRotationStatusResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let arn = self.arn(&key);
        check(
            Operation::GetKeyRotationStatus,
            key.regional.state,
            key.shared.origin,
            &arn,
        )?;
        self.symmetric_rotation_key(&key, Operation::GetKeyRotationStatus)?;
        let r = &key.shared.rotation;
        let pending_deletion = matches!(
            key.regional.state,
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
        );
        let enabled = r.enabled && !pending_deletion;
        Ok(pb::GetKeyRotationStatusResponse {
            key_rotation_enabled: Some(enabled),
            key_id: Some(arn),
            rotation_period_in_days: enabled.then_some(r.period_days as i32),
            next_rotation_date: r.next_rotation_ms.filter(|_| enabled).map(secs),
            on_demand_rotation_start_date: r.on_demand_started_ms.map(secs),
        })
    }

    /// RotateKeyOnDemand: new generated material for an AWS_KMS key; for an EXTERNAL key the
    /// imported material pending rotation becomes current.
    pub async fn rotate_key_on_demand(
        &self,
        ctx: &RequestContext,
        req: pb::RotateKeyOnDemandRequest,
    ) -> Result<pb::RotateKeyOnDemandResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let now_ms = self.clock.now_ms();
        let params = serde_json::json!({"keyId": key.key_id.as_str()});
        // CloudTrail's responseElements: the answer's KeyId.
        let response = serde_json::json!({"keyId": key.key_id.as_str()}).to_string();
        if key.shared.origin == Origin::External {
            self.propose_done(self.audited_with_response(
                ctx,
                "RotateKeyOnDemand",
                params,
                Some(response),
                Command::PromotePendingMaterial {
                    key_id: key.key_id.clone(),
                    now_ms,
                },
            ))
            .await?;
        } else {
            self.propose_new_version(&key.key_id, |k| {
                let (info, material) = self.new_symmetric_version(k, now_ms);
                Ok(self.audited_with_response(
                    ctx,
                    "RotateKeyOnDemand",
                    params.clone(),
                    Some(response.clone()),
                    Command::RotateKey {
                        key_id: k.key_id.clone(),
                        kind: RotationType::OnDemand,
                        info,
                        material,
                        now_ms,
                    },
                ))
            })
            .await?;
        }
        Ok(pb::RotateKeyOnDemandResponse {
            key_id: Some(key.key_id.to_string()),
        })
    }

    /// Fresh AES-256 material for the next version of `key`, wrapped under the domain key.
    pub fn new_symmetric_version(
        &self,
        key: &KeyRecord,
        now_ms: i64,
    ) -> (MaterialInfo, RegionalMaterial) {
        let version = key.shared.next_version();
        let material = KeyMaterial::generate(&mut self.entropy.rng());
        let wrapped = self
            .materials
            .wrap(&key.key_id, version, material.expose(), &self.entropy);
        (
            MaterialInfo {
                version,
                // The commitment every replica checks the delivered material against.
                key_material_id: material_commitment(key.key_id.as_str(), material.expose()),
                created_ms: now_ms,
                rotation: None,
            },
            RegionalMaterial {
                wrapped,
                import: None,
            },
        )
    }

    /// `KeyMaterialState` of one version as this Region reports it: on the primary of an
    /// imported multi-Region key, material pending rotation that a replica has not imported
    /// yet is `PENDING_MULTI_REGION_IMPORT_AND_ROTATION`.
    fn material_state(&self, key: &KeyRecord, m: &MaterialInfo) -> KeyMaterialState {
        let state = key.shared.material_state(m.version);
        let primary = key
            .shared
            .mrk
            .as_ref()
            .is_some_and(|x| x.primary == self.scope.region);
        if state == KeyMaterialState::PendingRotation
            && primary
            && key.shared.origin == Origin::External
            && !kmsim_core::state::material::missing_imports(key, &m.key_material_id).is_empty()
        {
            KeyMaterialState::PendingMultiRegionImportAndRotation
        } else {
            state
        }
    }

    /// ListKeyRotations.
    pub async fn list_key_rotations(
        &self,
        _ctx: &RequestContext,
        req: pb::ListKeyRotationsRequest,
    ) -> Result<pb::ListKeyRotationsResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        self.rotations_listable(&key)?;
        let include = match req.include_key_material.as_deref() {
            Some(i) => IncludeKeyMaterial::parse(i)?,
            None => IncludeKeyMaterial::RotationsOnly,
        };
        let limit = limit(req.limit, 100, 1000)?;
        let after = match req.marker.as_deref() {
            None => None,
            Some(m) => Some(
                m.parse::<u32>()
                    .map_err(|_| KmsError::InvalidMarker("Invalid marker".into()))?,
            ),
        };
        let external = key.shared.origin == Origin::External;
        let entries: Vec<&MaterialInfo> = key
            .shared
            .materials
            .iter()
            .filter(|m| include == IncludeKeyMaterial::AllKeyMaterial || m.rotation.is_some())
            .filter(|m| after.is_none_or(|a| m.version > a))
            .collect();
        let truncated = entries.len() > limit;
        let page = &entries[..entries.len().min(limit)];
        Ok(pb::ListKeyRotationsResponse {
            rotations: page
                .iter()
                .map(|m| {
                    let regional = key.regional.materials.get(&m.version);
                    let import = regional.and_then(|r| r.import.as_ref());
                    pb::RotationsListEntry {
                        key_id: Some(key.key_id.to_string()),
                        key_material_id: Some(m.key_material_id.clone()),
                        key_material_description: import.and_then(|i| i.description.clone()),
                        import_state: external.then(|| {
                            if regional.is_some() {
                                ImportState::Imported
                            } else {
                                ImportState::PendingImport
                            }
                            .as_str()
                            .to_string()
                        }),
                        key_material_state: Some(self.material_state(&key, m).as_str().to_string()),
                        expiration_model: import.map(|i| i.expiration_model.as_str().to_string()),
                        valid_to: import.and_then(|i| i.valid_to_ms).map(secs),
                        rotation_date: m.rotation.map(|r| secs(r.date_ms)),
                        rotation_type: m.rotation.map(|r| r.kind.as_str().to_string()),
                    }
                })
                .collect(),
            next_marker: if truncated {
                page.last().map(|m| m.version.to_string())
            } else {
                None
            },
            truncated: Some(truncated),
        })
    }
}
