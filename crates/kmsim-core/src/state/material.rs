//! Applying rotation and imported-material commands.

use crate::error::KmsError;
use crate::ids::KeyId;
use crate::key::{
    ImportType, KeyRecord, KeySpec, KeyState, MaterialInfo, Origin, RegionalMaterial, Rotation,
    RotationType, MAX_ON_DEMAND_ROTATIONS,
};
use crate::key_state::Operation;

use super::mrk::{bump, has_replicas, primary_only};
use super::{index, CommandOutput, CommandResult, KmsState, RecordChange, DAY_MS};

/// RotateKeyOnDemand is refused this close before a scheduled automatic rotation.
pub const ROTATION_CONFLICT_WINDOW_MS: i64 = 20 * 60 * 1000;

/// AWS's text for imported material that is not the key's material.
pub const INCORRECT_KEY_MATERIAL: &str = "The key material in the request is, expired, invalid, or is not the same key material that was previously imported into this KMS key.";

impl KmsState {
    /// Keys whose automatic rotation is due at `now_ms`, with the version the rotation adds.
    pub fn due_rotations(&self, now_ms: i64) -> Vec<(KeyId, u32)> {
        self.due_keys(now_ms)
            .into_iter()
            .filter(|k| automatic_rotation_due(k, now_ms))
            .filter(|k| index::rotates_here(k, &self.scope.region))
            .map(|k| (k.key_id.clone(), k.shared.next_version()))
            .collect()
    }

    /// Imported material whose `ValidTo` has passed at `now_ms`: (key, KeyMaterialId).
    pub fn expired_imports(&self, now_ms: i64) -> Vec<(KeyId, String)> {
        let mut out = Vec::new();
        for k in self.due_keys(now_ms) {
            for (version, m) in &k.regional.materials {
                let expired = m
                    .import
                    .as_ref()
                    .and_then(|i| i.valid_to_ms)
                    .is_some_and(|t| t <= now_ms);
                if let (true, Some(info)) = (expired, k.shared.material(*version)) {
                    out.push((k.key_id.clone(), info.key_material_id.clone()));
                }
            }
        }
        out
    }

    pub(super) fn set_key_rotation(
        &mut self,
        key_id: &KeyId,
        enabled: bool,
        period_days: Option<u32>,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let op = if enabled {
            Operation::EnableKeyRotation
        } else {
            Operation::DisableKeyRotation
        };
        let arn = self.scope.key_arn(key_id);
        let region = self.scope.region.clone();
        self.update_key(key_id, op, changes, |k| {
            primary_only(k, &region, &arn)?;
            bump(k);
            if k.shared.key_spec != KeySpec::SymmetricDefault {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{arn} key spec is {} which is not valid for this operation: only symmetric encryption keys rotate.",
                    k.shared.key_spec
                )));
            }
            let r = &mut k.shared.rotation;
            if enabled {
                let was_enabled = r.enabled;
                r.period_days = period_days.unwrap_or(if was_enabled {
                    r.period_days
                } else {
                    crate::key::DEFAULT_ROTATION_PERIOD_DAYS
                });
                let base = match (was_enabled, r.base_ms) {
                    (true, Some(b)) => b,
                    _ => now_ms,
                };
                r.enabled = true;
                r.base_ms = Some(base);
                // A shorter period may already have passed: rotate at once then.
                r.next_rotation_ms = Some((base + i64::from(r.period_days) * DAY_MS).max(now_ms));
            } else {
                r.enabled = false;
                r.base_ms = None;
                r.next_rotation_ms = None;
            }
            Ok(())
        })
    }

    pub(super) fn rotate_key(
        &mut self,
        key_id: &KeyId,
        kind: RotationType,
        info: &MaterialInfo,
        material: &RegionalMaterial,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        if kind == RotationType::Automatic {
            // Proposed by the lifecycle task from a possibly stale view: apply only if still due.
            let due = self.key(key_id).is_some_and(|k| {
                automatic_rotation_due(&k, now_ms) && k.shared.next_version() == info.version
            });
            if !due {
                return Ok(CommandOutput::Done);
            }
            let mut key = KeyRecord::clone(&*self.existing(key_id)?);
            add_version(&mut key, info, material, kind, now_ms);
            let r = &mut key.shared.rotation;
            r.base_ms = Some(now_ms);
            r.next_rotation_ms = Some(now_ms + i64::from(r.period_days) * DAY_MS);
            let arn = self.scope.key_arn(key_id);
            let details = serde_json::json!({"keyId": arn});
            self.record_service_event(now_ms, "RotateKey", key_id, &arn, details, changes);
            return Ok(self.put_key(key, changes));
        }
        let arn = self.scope.key_arn(key_id);
        let region = self.scope.region.clone();
        self.update_key(key_id, Operation::RotateKeyOnDemand, changes, |k| {
            primary_only(k, &region, &arn)?;
            check_on_demand(k, &arn, now_ms)?;
            if k.shared.origin != Origin::AwsKms {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{arn} origin is {} which is not valid for this operation.",
                    k.shared.origin
                )));
            }
            if k.shared.next_version() != info.version {
                return Err(KmsError::Conflict(format!(
                    "Another rotation of {arn} was committed first; try again."
                )));
            }
            if has_replicas(k) {
                k.shared.rotation.on_demand_started_ms = Some(now_ms);
            }
            add_version(k, info, material, kind, now_ms);
            k.shared.rotation.on_demand_count += 1;
            Ok(())
        })
    }

    pub(super) fn promote_pending_material(
        &mut self,
        key_id: &KeyId,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let arn = self.scope.key_arn(key_id);
        let region = self.scope.region.clone();
        self.update_key(key_id, Operation::RotateKeyOnDemand, changes, |k| {
            primary_only(k, &region, &arn)?;
            check_on_demand(k, &arn, now_ms)?;
            let no_pending = || {
                KmsError::InvalidState(format!(
                    "No available key material pending rotation for the key: {arn}."
                ))
            };
            let pending = k.shared.pending_material().ok_or_else(no_pending)?.version;
            if !k.regional.materials.contains_key(&pending) {
                return Err(no_pending());
            }
            let id = k.shared.material(pending).map(|m| m.key_material_id.clone()).unwrap_or_default();
            let missing = missing_imports(k, &id);
            if !missing.is_empty() {
                return Err(KmsError::InvalidState(format!(
                    "Key material {id} of {arn} is pending multi-Region import: import it into the replicas in {} first.",
                    missing.join(", ")
                )));
            }
            bump(k);
            for m in &mut k.shared.materials {
                if m.version == pending {
                    m.rotation = Some(Rotation {
                        date_ms: now_ms,
                        kind: RotationType::OnDemand,
                    });
                }
            }
            k.shared.current_version = Some(pending);
            k.shared.rotation.on_demand_count += 1;
            Ok(())
        })
    }

    pub(super) fn import_key_material(
        &mut self,
        key_id: &KeyId,
        req: ImportRequest<'_>,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let arn = self.scope.key_arn(key_id);
        let region = self.scope.region.clone();
        let mut notify: Option<(crate::ids::Region, String)> = None;
        let out = self.update_key(key_id, Operation::ImportKeyMaterial, changes, |k| {
            let version = import_version(k, &arn, &ImportRequestView::from(&req))?;
            let adds_version = version == k.shared.next_version();
            if adds_version {
                // New material is a shared-property change: the primary's alone.
                primary_only(k, &region, &arn)?;
                bump(k);
            }
            if let Some(m) = k.shared.mrk.as_ref().filter(|m| m.primary != region) {
                notify = Some((m.primary.clone(), req.commitment.to_string()));
            }
            if version != req.version {
                return Err(KmsError::Conflict(format!(
                    "The key material of {arn} changed while this import was in flight; try again."
                )));
            }
            if version == k.shared.next_version() {
                k.shared.materials.push(MaterialInfo {
                    version,
                    key_material_id: req.commitment.to_string(),
                    created_ms: req.now_ms,
                    rotation: None,
                });
                if k.shared.current_version.is_none() {
                    k.shared.current_version = Some(version);
                }
            }
            if k.shared.public_key.is_none() {
                k.shared.public_key = req.public_key.map(<[u8]>::to_vec);
            }
            k.regional.materials.insert(version, req.material.clone());
            if k.regional.state == KeyState::PendingImport && k.has_all_current_material() {
                k.regional.state = KeyState::Enabled;
            }
            Ok(())
        })?;
        if let Some((primary, material_id)) = notify {
            // A replica tells its primary which material it holds (the primary's rotation to
            // new imported material waits for every replica).
            self.queue_notice(
                primary,
                key_id,
                crate::sync::NoticeKind::MaterialImported { material_id },
                changes,
            );
        }
        Ok(out)
    }

    pub(super) fn delete_imported_material(
        &mut self,
        key_id: &KeyId,
        material_id: Option<&str>,
        expired_at_ms: Option<i64>,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let arn = self.scope.key_arn(key_id);
        if let Some(at) = expired_at_ms {
            // An expiry proposed from a possibly stale view: only if still due.
            let due = self.key(key_id).is_some_and(|k| {
                k.shared
                    .materials
                    .iter()
                    .filter(|m| material_id.is_none_or(|id| id == m.key_material_id))
                    .filter_map(|m| k.regional.materials.get(&m.version))
                    .filter_map(|r| r.import.as_ref().and_then(|i| i.valid_to_ms))
                    .any(|t| t <= at)
            });
            if !due {
                return Ok(CommandOutput::Done);
            }
            let mut key = KeyRecord::clone(&*self.existing(key_id)?);
            remove_material(&mut key, &self.scope.region, &arn, material_id)?;
            return Ok(self.put_key(key, changes));
        }
        let region = self.scope.region.clone();
        self.update_key(key_id, Operation::DeleteImportedKeyMaterial, changes, |k| {
            remove_material(k, &region, &arn, material_id)
        })
    }
}

pub(super) fn automatic_rotation_due(k: &KeyRecord, now_ms: i64) -> bool {
    let r = &k.shared.rotation;
    r.enabled
        && k.regional.state == KeyState::Enabled
        && k.shared.key_spec == KeySpec::SymmetricDefault
        && k.shared.origin == Origin::AwsKms
        && k.shared.pending_material().is_none()
        && r.next_rotation_ms.is_some_and(|t| t <= now_ms)
}

/// The rules RotateKeyOnDemand adds to the key-state table.
fn check_on_demand(k: &KeyRecord, arn: &str, now_ms: i64) -> Result<(), KmsError> {
    if k.shared.key_spec != KeySpec::SymmetricDefault {
        // AWS answers asymmetric and HMAC keys with an empty message.
        return Err(KmsError::UnsupportedOperation(String::new()));
    }
    let r = &k.shared.rotation;
    if r.on_demand_count >= MAX_ON_DEMAND_ROTATIONS {
        return Err(KmsError::LimitExceeded(format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}"
        )));
    }
    if r.enabled
        && r.next_rotation_ms
            .is_some_and(|t| t - now_ms <= ROTATION_CONFLICT_WINDOW_MS)
    {
        return Err(KmsError::Conflict(format!(
            "An automatic rotation of {arn} is in progress or scheduled within the next 20 minutes; try again later."
        )));
    }
    if k.shared.origin == Origin::AwsKms && k.shared.pending_material().is_some() {
        return Err(KmsError::Conflict(format!(
            "An on-demand rotation of {arn} is already in progress."
        )));
    }
    Ok(())
}

/// Adds generated material as a new version. With replicas it is pending: the primary keeps
/// encrypting under the previous material until every replica holds the new one (the
/// synchronizer then proposes `PromoteRotation`), so no ciphertext reaches a Region that
/// cannot decrypt it.
fn add_version(
    k: &mut KeyRecord,
    info: &MaterialInfo,
    material: &RegionalMaterial,
    kind: RotationType,
    now_ms: i64,
) {
    let mut info = info.clone();
    k.regional.materials.insert(info.version, material.clone());
    if !has_replicas(k) {
        info.rotation = Some(Rotation {
            date_ms: now_ms,
            kind,
        });
        k.shared.current_version = Some(info.version);
    }
    k.shared.materials.push(info);
    bump(k);
}

/// The replica Regions of an EXTERNAL primary that have not imported material `id`.
pub fn missing_imports(k: &KeyRecord, id: &str) -> Vec<String> {
    let Some(m) = k.shared.mrk.as_ref() else {
        return Vec::new();
    };
    m.replicas
        .iter()
        .filter(|r| {
            !k.regional
                .sync
                .replica_imports
                .get(*r)
                .is_some_and(|s| s.contains(id))
        })
        .map(|r| r.to_string())
        .collect()
}

/// What ImportKeyMaterial asks for, as decided by the proposer.
pub(super) struct ImportRequest<'a> {
    pub import_type: Option<ImportType>,
    pub requested_material_id: Option<&'a str>,
    pub commitment: &'a str,
    pub version: u32,
    pub public_key: Option<&'a [u8]>,
    pub material: &'a RegionalMaterial,
    pub now_ms: i64,
}

/// The version an import lands in, with every rule of ImportType. A new version is the key's
/// next version.
pub fn import_version(
    k: &KeyRecord,
    arn: &str,
    req: &ImportRequestView<'_>,
) -> Result<u32, KmsError> {
    let import_type = req.import_type.unwrap_or(if k.shared.materials.is_empty() {
        ImportType::NewKeyMaterial
    } else {
        ImportType::ExistingKeyMaterial
    });
    match import_type {
        ImportType::NewKeyMaterial => new_material_version(k, arn, req.commitment),
        ImportType::ExistingKeyMaterial => {
            existing_material_version(k, arn, req.requested_material_id, req.commitment)
        }
    }
}

/// The parts of an import request [`import_version`] reads (the proposer has them before it
/// wraps the material).
pub struct ImportRequestView<'a> {
    /// `ImportType` as requested.
    pub import_type: Option<ImportType>,
    /// `KeyMaterialId` as requested.
    pub requested_material_id: Option<&'a str>,
    /// The commitment to the material.
    pub commitment: &'a str,
}

impl<'a> From<&ImportRequest<'a>> for ImportRequestView<'a> {
    fn from(r: &ImportRequest<'a>) -> Self {
        ImportRequestView {
            import_type: r.import_type,
            requested_material_id: r.requested_material_id,
            commitment: r.commitment,
        }
    }
}

/// ImportType NEW_KEY_MATERIAL: the key's first material, or (symmetric keys) a new version
/// pending rotation.
fn new_material_version(k: &KeyRecord, arn: &str, commitment: &str) -> Result<u32, KmsError> {
    if let Some(existing) = k
        .shared
        .materials
        .iter()
        .find(|m| m.key_material_id == commitment)
    {
        return Err(KmsError::IncorrectKeyMaterial(format!(
            "Key material {} was already imported into {arn}; re-import it with ImportType EXISTING_KEY_MATERIAL.",
            existing.key_material_id
        )));
    }
    if !k.shared.materials.is_empty() {
        if k.shared.key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::Validation(format!(
                "ImportType NEW_KEY_MATERIAL is valid only for symmetric encryption keys; {arn} is {}.",
                k.shared.key_spec
            )));
        }
        if let Some(p) = k.shared.pending_material() {
            return Err(KmsError::InvalidState(format!(
                "New key material (id: {commitment}) cannot be imported into KMS key {}, because another key material (id: {}) is pending rotation.",
                k.key_id, p.key_material_id
            )));
        }
    }
    Ok(k.shared.next_version())
}

/// ImportType EXISTING_KEY_MATERIAL: the version this material belongs to.
fn existing_material_version(
    k: &KeyRecord,
    arn: &str,
    requested: Option<&str>,
    commitment: &str,
) -> Result<u32, KmsError> {
    if k.shared.materials.is_empty() {
        return Err(KmsError::Validation(format!(
            "ImportType EXISTING_KEY_MATERIAL needs key material that was imported into {arn} before."
        )));
    }
    let target = match requested {
        Some(id) => k
            .shared
            .materials
            .iter()
            .find(|m| m.key_material_id == id)
            .ok_or_else(|| {
                KmsError::NotFound(format!("Key material {id} does not exist for {arn}."))
            })?,
        None => k
            .shared
            .materials
            .iter()
            .find(|m| m.key_material_id == commitment)
            .ok_or_else(|| KmsError::IncorrectKeyMaterial(INCORRECT_KEY_MATERIAL.into()))?,
    };
    if target.key_material_id != commitment {
        return Err(KmsError::IncorrectKeyMaterial(
            INCORRECT_KEY_MATERIAL.into(),
        ));
    }
    Ok(target.version)
}

/// Removes this Region's copy of one material version (`None`: the current one). Material
/// pending rotation disappears entirely; removing needed material leaves the key pending import.
fn remove_material(
    k: &mut KeyRecord,
    region: &crate::ids::Region,
    arn: &str,
    material_id: Option<&str>,
) -> Result<(), KmsError> {
    let version = match material_id {
        Some(id) => k
            .shared
            .materials
            .iter()
            .find(|m| m.key_material_id == id)
            .map(|m| m.version)
            .ok_or_else(|| {
                KmsError::NotFound(format!("Key material {id} does not exist for {arn}."))
            })?,
        None => match k.shared.current_version {
            Some(v) => v,
            // Nothing imported yet: no effect, as AWS does in PendingImport.
            None => return Ok(()),
        },
    };
    k.regional.materials.remove(&version);
    let pending = k.shared.current_version.is_some_and(|c| version > c);
    let replica = k.shared.mrk.as_ref().is_some_and(|m| m.primary != *region);
    if pending {
        // Deleting pending material on a primary deletes it from the set; on a replica it
        // affects only this Regional key (the shared view stays the primary's).
        if !replica {
            k.shared.materials.retain(|m| m.version != version);
            bump(k);
        }
    } else if !matches!(
        k.regional.state,
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
    ) {
        k.regional.state = KeyState::PendingImport;
    }
    Ok(())
}
