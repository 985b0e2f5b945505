//! Applying the multi-Region commands: ReplicateKey, synchronizations received from other
//! Regions and their acknowledgements, notices of replica Regions, the gated promotion of a
//! rotation, and the primary hand-over. Also the audit wrapper.
//!
//! The rules that keep a key set correct are all here: a Region applies a synchronization only
//! when its (epoch, version) is newer than what it holds; only the primary changes shared
//! properties and it bumps the version each time; a hand-over first fences the old primary
//! (epoch + 1, the new primary named, state `Updating`) and only then is the new primary told,
//! and a Region that refused a promotion never accepts one at or below that epoch.

use crate::audit::{api_record, ApiCall};
use crate::error::KmsError;
use crate::ids::{KeyId, Region};
use crate::key::{
    Handover, KeyRecord, KeyState, MultiRegion, Origin, Promoted, RegionalProps, ReplicaSpec,
    Rotation, RotationType, SharedProps,
};
use crate::key_state::Operation;
use crate::sync::{NoticeKind, SyncReply};

use super::{Command, CommandOutput, CommandResult, KmsState, RecordChange, DAY_MS};

impl Command {
    /// The key a command is about, if any (for audit records).
    pub fn key_id(&self) -> Option<&KeyId> {
        match self {
            Command::CreateKey { key } => Some(&key.key_id),
            Command::SetEnabled { key_id, .. }
            | Command::UpdateKeyDescription { key_id, .. }
            | Command::PutKeyPolicy { key_id, .. }
            | Command::TagResource { key_id, .. }
            | Command::UntagResource { key_id, .. }
            | Command::ScheduleKeyDeletion { key_id, .. }
            | Command::CancelKeyDeletion { key_id }
            | Command::DeleteExpiredKey { key_id, .. }
            | Command::SetKeyRotation { key_id, .. }
            | Command::RotateKey { key_id, .. }
            | Command::PromotePendingMaterial { key_id, .. }
            | Command::ImportKeyMaterial { key_id, .. }
            | Command::DeleteImportedMaterial { key_id, .. }
            | Command::DeleteGrant { key_id, .. }
            | Command::ReplicateKey { key_id, .. }
            | Command::ApplySync { key_id, .. }
            | Command::CreateReplica { key_id, .. }
            | Command::AbandonReplica { key_id, .. }
            | Command::SyncAcked { key_id, .. }
            | Command::ReplicaGone { key_id, .. }
            | Command::ApplyNotice { key_id, .. }
            | Command::PromoteRotation { key_id, .. }
            | Command::BeginHandover { key_id, .. }
            | Command::EndHandover { key_id, .. } => Some(key_id),
            Command::CreateGrant { grant } => Some(&grant.key_id),
            Command::Audited { cmd, .. } | Command::Deduplicated { cmd, .. } => cmd.key_id(),
            Command::CreateAlias { target, .. } | Command::UpdateAlias { target, .. } => {
                Some(target)
            }
            Command::DeleteAlias { .. }
            | Command::SetClockOffset { .. }
            | Command::SetThrottle { .. }
            | Command::SetIam { .. }
            | Command::NoticeDone { .. }
            | Command::NoticeRetarget { .. } => None,
        }
    }
}

/// Refuses a shared-property change anywhere but on the primary of a multi-Region key.
pub(crate) fn primary_only(k: &KeyRecord, region: &Region, arn: &str) -> Result<(), KmsError> {
    match &k.shared.mrk {
        Some(m) if m.primary != *region => Err(KmsError::UnsupportedOperation(format!(
            "{arn} is not a multi-region primary key."
        ))),
        _ => Ok(()),
    }
}

/// Records a shared-property change of a multi-Region primary: the version goes up, so every
/// replica applies it.
pub(crate) fn bump(k: &mut KeyRecord) {
    if let Some(m) = k.shared.mrk.as_mut() {
        m.version += 1;
    }
}

/// True when `k` is the primary of a set that still has replicas.
pub(crate) fn has_replicas(k: &KeyRecord) -> bool {
    k.shared
        .mrk
        .as_ref()
        .is_some_and(|m| !m.replicas.is_empty())
}

fn mrk_of<'a>(k: &'a KeyRecord, arn: &str) -> Result<&'a MultiRegion, KmsError> {
    k.shared
        .mrk
        .as_ref()
        .ok_or_else(|| KmsError::UnsupportedOperation(format!("{arn} is not a multi-Region key.")))
}

/// CloudTrail's `responseElements` of ScheduleKeyDeletion (`keyId` as an ARN, `keyState`,
/// `deletionDate` when the key is PendingDeletion, `pendingWindowInDays`) and of
/// CancelKeyDeletion (`keyId`), from the key as the command left it.
fn deletion_response(event_name: &str, arn: &str, k: &KeyRecord) -> Option<String> {
    let mut out = String::from("{\"keyId\":");
    crate::audit::push_json_str(&mut out, arn);
    match event_name {
        "CancelKeyDeletion" => {}
        "ScheduleKeyDeletion" => {
            out.push_str(",\"keyState\":");
            crate::audit::push_json_str(&mut out, k.regional.state.as_str());
            if let Some(ms) = k
                .regional
                .deletion_ms
                .filter(|_| k.regional.state == KeyState::PendingDeletion)
            {
                out.push_str(",\"deletionDate\":");
                crate::audit::push_json_str(&mut out, &crate::audit::cloudtrail_date(ms));
            }
            if let Some(days) = k.regional.pending_window_days {
                out.push_str(&format!(",\"pendingWindowInDays\":{days}"));
            }
        }
        _ => return None,
    }
    out.push('}');
    Some(out)
}

impl KmsState {
    pub(super) fn audited(
        &mut self,
        call: &ApiCall,
        cmd: &Command,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        if cmd.is_wrapper() {
            return Err(KmsError::Internal(
                "an audited command cannot wrap another wrapper".into(),
            ));
        }
        let out = self.apply_inner(cmd, changes)?;
        let key_arn = cmd.key_id().map(|k| self.scope.key_arn(k));
        let scope = self.scope.clone();
        // The responses that depend on the state the command left (a deletion's date and
        // state) are built here, from the applied key; the proposing node supplies the others.
        let with_response;
        let call = match (&call.response_elements, &out, key_arn.as_deref()) {
            (None, CommandOutput::Key(k), Some(arn)) => {
                with_response = ApiCall {
                    response_elements: deletion_response(&call.event_name, arn, k),
                    ..call.clone()
                };
                &with_response
            }
            _ => call,
        };
        self.record_event(
            call.time_ms,
            &call.event_name,
            cmd.key_id(),
            |seq| api_record(&scope, seq, call, key_arn.as_deref()),
            changes,
        );
        Ok(out)
    }

    pub(super) fn apply_mrk(
        &mut self,
        cmd: &Command,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        match cmd {
            Command::ReplicateKey {
                key_id,
                replica,
                spec,
            } => self.replicate_key(key_id, replica, spec, changes),
            Command::ApplySync {
                key_id,
                source,
                shared,
                materials,
                create,
                promote,
                now_ms,
            } => self.apply_sync(
                key_id,
                source,
                shared,
                materials,
                create.as_ref(),
                *promote,
                *now_ms,
                changes,
            ),
            Command::CreateReplica {
                key_id,
                source,
                shared,
                spec,
                now_ms,
            } => self.create_replica(key_id, source, shared, spec, *now_ms, changes),
            Command::AbandonReplica {
                key_id,
                source,
                now_ms,
            } => self.abandon_replica(key_id, source, *now_ms, changes),
            Command::SyncAcked {
                key_id,
                region,
                stamp,
            } => self.sync_acked(key_id, region, *stamp, changes),
            Command::ReplicaGone {
                key_id,
                region,
                now_ms,
            } => self.replica_gone(key_id, region, *now_ms, changes),
            Command::ApplyNotice {
                key_id,
                from,
                kind,
                now_ms,
            } => self.apply_notice(key_id, from, kind, *now_ms, changes),
            Command::NoticeDone { seq } => {
                self.drop_notice(*seq, changes);
                Ok(CommandOutput::Done)
            }
            Command::NoticeRetarget { seq, to } => {
                self.retarget_notice(*seq, to.clone(), changes);
                Ok(CommandOutput::Done)
            }
            Command::PromoteRotation {
                key_id,
                version,
                now_ms,
            } => self.promote_rotation(key_id, *version, *now_ms, changes),
            Command::BeginHandover { key_id, to } => self.begin_handover(key_id, to, changes),
            Command::EndHandover {
                key_id,
                epoch,
                promoted,
            } => self.end_handover(key_id, *epoch, *promoted, changes),
            other => Err(KmsError::Internal(format!(
                "command {other:?} has no multi-Region handler"
            ))),
        }
    }

    fn replicate_key(
        &mut self,
        key_id: &KeyId,
        replica: &Region,
        spec: &ReplicaSpec,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let shared = self.replication_plan(key_id, replica)?;
        self.update_key(key_id, Operation::ReplicateKey, changes, |k| {
            k.shared.mrk = shared.mrk;
            bump(k);
            k.regional
                .sync
                .creating
                .insert(replica.clone(), spec.clone());
            Ok(())
        })
    }

    /// What ReplicateKey of `key_id` into `replica` would make of the set, checked as apply
    /// checks it (the state table, a multi-Region primary in this Region, `replica` not in the
    /// set yet): the shared properties with `replica` among the replicas, still at the current
    /// stamp. The node taking ReplicateKey sends them to the replica Region before the primary
    /// commits; apply checks the same again.
    pub fn replication_plan(
        &self,
        key_id: &KeyId,
        replica: &Region,
    ) -> Result<SharedProps, KmsError> {
        let arn = self.scope.key_arn(key_id);
        let k = self.existing(key_id)?;
        crate::key_state::check(
            Operation::ReplicateKey,
            k.regional.state,
            k.shared.origin,
            &arn,
        )?;
        let m = mrk_of(&k, &arn)?;
        if m.primary != self.scope.region {
            return Err(KmsError::UnsupportedOperation(format!(
                "{arn} is not a multi-region primary key."
            )));
        }
        if m.regions().any(|r| r == replica) {
            return Err(KmsError::AlreadyExists(format!(
                "Unable to replicate key {key_id} to {replica}: a related multi-Region key already exists there."
            )));
        }
        let mut shared = k.shared.clone();
        let m = shared.mrk.as_mut().expect("invariant: checked above");
        m.replicas.push(replica.clone());
        m.replicas.sort();
        Ok(shared)
    }

    /// The replica Region's `CreateKey` service event for a new replica.
    fn record_replica_created(
        &mut self,
        key_id: &KeyId,
        primary: &Region,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) {
        let arn = self.scope.key_arn(key_id);
        let details = serde_json::json!({"replicaOf": self.scope.key_arn_in(primary, key_id)});
        self.record_service_event(now_ms, "CreateKey", key_id, &arn, details, changes);
    }

    /// ReplicateKey reached this Region during the request: the replica is committed in state
    /// `Creating`, with the set's shared properties and the request's Regional ones, and no
    /// material (the synchronizer brings it; its first synchronization ends `Creating`). A
    /// replica already `Creating` for the same primary (a retried ReplicateKey) is the answer
    /// again; any other key under that ID is `AlreadyExistsException`.
    fn create_replica(
        &mut self,
        key_id: &KeyId,
        source: &Region,
        shared: &SharedProps,
        spec: &ReplicaSpec,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let here = self.scope.region.clone();
        let Some(m) = shared.mrk.as_ref() else {
            return Err(KmsError::Validation(format!(
                "replica request for {key_id} from {source} carries no multi-Region set"
            )));
        };
        if m.primary != *source || !m.replicas.contains(&here) {
            return Err(KmsError::Validation(format!(
                "replica request for {key_id} from {source} does not name {source} as primary and {here} as a replica"
            )));
        }
        if let Some(creation_ms) = self.replica_slot(key_id, source)? {
            return Ok(CommandOutput::Sync(SyncReply::ReplicaCreating {
                creation_ms,
            }));
        }
        let key = KeyRecord {
            key_id: key_id.clone(),
            shared: shared.clone(),
            regional: RegionalProps {
                creation_ms: now_ms,
                description: spec.description.clone(),
                state: KeyState::Creating,
                deletion_ms: None,
                pending_window_days: None,
                policy: spec.policy.clone(),
                tags: spec.tags.clone(),
                materials: Default::default(),
                sync: Default::default(),
            },
        };
        self.put_key(key, changes);
        self.record_replica_created(key_id, source, now_ms, changes);
        Ok(CommandOutput::Sync(SyncReply::ReplicaCreating {
            creation_ms: now_ms,
        }))
    }

    /// Whether this Region can take a replica of `key_id` from `primary`: `None` when the key
    /// ID is free here, the creation date of a replica already `Creating` for that primary (a
    /// retried ReplicateKey), else `AlreadyExistsException`. The receiving node checks it
    /// before proposing (the dry run) and apply checks it again.
    pub fn replica_slot(&self, key_id: &KeyId, primary: &Region) -> Result<Option<i64>, KmsError> {
        let Some(existing) = self.key(key_id) else {
            // A new replica is a new key of this Region: it counts toward this Region's quota.
            self.key_room()?;
            return Ok(None);
        };
        let same_primary = existing
            .shared
            .mrk
            .as_ref()
            .is_some_and(|held| held.primary == *primary);
        if existing.regional.state == KeyState::Creating && same_primary {
            return Ok(Some(existing.regional.creation_ms));
        }
        Err(KmsError::AlreadyExists(format!(
            "Unable to replicate key {key_id} to {}: a related multi-Region key already exists there.",
            self.scope.region
        )))
    }

    /// ReplicateKey did not complete in the primary's Region: the replica it created here
    /// goes, if it is still `Creating` for that primary (anything else is left alone).
    fn abandon_replica(
        &mut self,
        key_id: &KeyId,
        source: &Region,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let abandoned = self.key(key_id).is_some_and(|k| {
            k.regional.state == KeyState::Creating
                && k.shared.mrk.as_ref().is_some_and(|m| m.primary == *source)
        });
        if abandoned {
            let details = serde_json::json!({
                "reason": "ReplicateKey did not complete in the primary Region",
                "primaryRegion": source.as_str(),
            });
            self.remove_key(key_id, now_ms, Some(details), changes);
        }
        Ok(CommandOutput::Sync(SyncReply::Noted))
    }

    /// The answer to an ordinary synchronization from the primary it names whose stamp is not
    /// newer than the one this Region holds (a resend, a replay, a stale message): what this
    /// Region holds, with nothing to change. `None` when applying it may change something.
    /// `apply_sync` answers such messages with this, and a node may answer them from its
    /// applied state without a Raft write (a lagging node only ever under-reports).
    pub fn already_holds(
        &self,
        key_id: &KeyId,
        source: &Region,
        shared: &SharedProps,
        promote: bool,
    ) -> Option<SyncReply> {
        let m = shared.mrk.as_ref()?;
        if promote || m.primary != *source {
            return None;
        }
        let held = self.key(key_id)?.shared.mrk.as_ref()?.stamp();
        (m.stamp() <= held).then_some(SyncReply::Applied {
            epoch: held.0,
            version: held.1,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_sync(
        &mut self,
        key_id: &KeyId,
        source: &Region,
        shared: &SharedProps,
        materials: &std::collections::BTreeMap<u32, crate::key::RegionalMaterial>,
        create: Option<&ReplicaSpec>,
        promote: bool,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let here = self.scope.region.clone();
        let Some(m) = shared.mrk.clone() else {
            return Err(KmsError::Validation(format!(
                "synchronization of {key_id} from {source} carries no multi-Region set"
            )));
        };
        let reply = |epoch, version| Ok(CommandOutput::Sync(SyncReply::Applied { epoch, version }));
        // Only the primary speaks for a set: an ordinary synchronization (or a new replica)
        // must come from the Region it names as primary; a promotion from the primary this
        // Region knows (checked below).
        if !promote && m.primary != *source {
            return Err(KmsError::Validation(format!(
                "synchronization of {key_id} from {source}, which is not its primary ({})",
                m.primary
            )));
        }
        if let Some(held) = self.already_holds(key_id, source, shared, promote) {
            // Stale or repeated: nothing to do, say what this Region holds.
            return Ok(CommandOutput::Sync(held));
        }
        let Some(existing) = self.key(key_id) else {
            // A new replica: created with the Regional properties of the ReplicateKey request.
            let Some(spec) = create.filter(|_| !promote && m.replicas.contains(&here)) else {
                return Ok(CommandOutput::Sync(SyncReply::UnknownKey));
            };
            self.key_room()?;
            let state = if shared.origin == Origin::External {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            };
            let key = KeyRecord {
                key_id: key_id.clone(),
                shared: shared.clone(),
                regional: RegionalProps {
                    creation_ms: now_ms,
                    description: spec.description.clone(),
                    state,
                    deletion_ms: None,
                    pending_window_days: None,
                    policy: spec.policy.clone(),
                    tags: spec.tags.clone(),
                    materials: if shared.origin == Origin::External {
                        Default::default()
                    } else {
                        materials.clone()
                    },
                    sync: Default::default(),
                },
            };
            self.put_key(key, changes);
            self.record_replica_created(key_id, &m.primary, now_ms, changes);
            return reply(m.epoch, m.version);
        };
        let Some(local) = existing.shared.mrk.clone() else {
            return Err(KmsError::Validation(format!(
                "{key_id} is not a multi-Region key in {here}"
            )));
        };
        if let Some(v) = changed_material(&existing.shared, shared) {
            // A version's material never changes (its KeyMaterialId commits to it); the
            // receiving node checked the delivered material against this same rule, and this
            // repeats it against the state being committed to.
            return Err(KmsError::Validation(format!(
                "synchronization of {key_id} from {source} describes material version {v} unlike this Region holds it; the material of a version never changes"
            )));
        }
        let mut key = KeyRecord::clone(&existing);
        if promote {
            if local.primary == here && local.epoch >= m.epoch {
                // The same promotion again: already primary.
                return reply(local.epoch, local.version);
            }
            if local.primary != *source {
                return Ok(CommandOutput::Sync(SyncReply::PromotionRefused {
                    reason: format!(
                        "{source} is not the primary of {key_id} here ({} is)",
                        local.primary
                    ),
                }));
            }
            if m.epoch <= key.regional.sync.promote_fence || m.epoch <= local.epoch {
                return Ok(CommandOutput::Sync(SyncReply::PromotionRefused {
                    reason: format!("epoch {} is not newer than this Region's", m.epoch),
                }));
            }
            if key.regional.state != KeyState::Enabled {
                key.regional.sync.promote_fence = m.epoch;
                let reason = format!(
                    "{} is {}; only an Enabled replica can become the primary",
                    self.scope.key_arn(key_id),
                    key.regional.state
                );
                self.put_key(key, changes);
                return Ok(CommandOutput::Sync(SyncReply::PromotionRefused { reason }));
            }
            merge_shared(&mut key, shared, materials);
            let mr = key.shared.mrk.as_mut().expect("invariant: set by merge");
            mr.primary = here.clone();
            set_replicas(mr, &here, source);
            // A version of its own, newer than the old primary's, so that the old primary and
            // every other replica apply the new primary's first synchronization.
            mr.version += 1;
            let stamp = mr.stamp();
            // `Updating` here too until the old primary acknowledges the new epoch.
            key.regional.sync = crate::key::SyncBook {
                promoted: Some(Promoted {
                    from: source.clone(),
                    epoch: stamp.0,
                    previous_state: key.regional.state,
                }),
                ..Default::default()
            };
            key.regional.state = KeyState::Updating;
            self.put_key(key, changes);
            let arn = self.scope.key_arn(key_id);
            let details = serde_json::json!({"keyId": arn, "primaryRegion": self.scope.region.as_str(), "invokedBy": "kms.amazonaws.com"});
            self.record_service_event(
                now_ms,
                "UpdatePrimaryRegion",
                key_id,
                &arn,
                details,
                changes,
            );
            return reply(stamp.0, stamp.1);
        }
        if m.primary != local.primary && m.epoch <= local.epoch {
            // A new primary comes only with a hand-over, which always raises the epoch.
            return Err(KmsError::Validation(format!(
                "synchronization of {key_id} names {} as primary at epoch {}, but {} is the primary at that epoch here",
                m.primary, m.epoch, local.primary
            )));
        }
        if let Some(h) = key.regional.sync.handover.clone() {
            if m.epoch >= h.epoch {
                // The new primary speaks: the hand-over is over here.
                key.regional.state = h.previous_state;
                key.regional.sync.handover = None;
            }
        }
        if m.primary != here {
            key.regional.sync.acked.clear();
            key.regional.sync.creating.clear();
        }
        merge_shared(&mut key, shared, materials);
        if key.regional.state == KeyState::Creating {
            // The first synchronization of a replica created during ReplicateKey: it now
            // holds the set's material (an EXTERNAL key goes on to `PendingImport` below).
            key.regional.state = KeyState::Enabled;
        }
        if key.shared.origin == Origin::External
            && key.regional.state == KeyState::Enabled
            && !key.has_all_current_material()
        {
            key.regional.state = KeyState::PendingImport;
        }
        self.put_key(key, changes);
        let primary_arn = self.scope.key_arn_in(&m.primary, key_id);
        let details =
            serde_json::json!({"epoch": m.epoch, "version": m.version, "source": source.as_str()});
        self.record_service_event(
            now_ms,
            "SynchronizeMultiRegionKey",
            key_id,
            &primary_arn,
            details,
            changes,
        );
        reply(m.epoch, m.version)
    }

    fn sync_acked(
        &mut self,
        key_id: &KeyId,
        region: &Region,
        stamp: (u64, u64),
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let Some(existing) = self.key(key_id) else {
            return Ok(CommandOutput::Done);
        };
        let is_primary = existing
            .shared
            .mrk
            .as_ref()
            .is_some_and(|m| m.primary == self.scope.region && m.replicas.contains(region));
        let known = existing.regional.sync.acked.get(region).copied();
        if !is_primary || known.is_some_and(|k| k >= stamp) {
            return Ok(CommandOutput::Done);
        }
        let mut key = KeyRecord::clone(&existing);
        key.regional.sync.acked.insert(region.clone(), stamp);
        key.regional.sync.creating.remove(region);
        end_promotion(&mut key, region, stamp.0);
        Ok(self.put_key(key, changes))
    }

    fn replica_gone(
        &mut self,
        key_id: &KeyId,
        region: &Region,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let Some(existing) = self.key(key_id) else {
            return Ok(CommandOutput::Done);
        };
        let member = existing
            .shared
            .mrk
            .as_ref()
            .is_some_and(|m| m.primary == self.scope.region && m.replicas.contains(region));
        if !member {
            return Ok(CommandOutput::Done);
        }
        let mut key = KeyRecord::clone(&existing);
        if let Some(m) = key.shared.mrk.as_mut() {
            m.replicas.retain(|r| r != region);
            m.version += 1;
        }
        end_promotion(&mut key, region, u64::MAX);
        let book = &mut key.regional.sync;
        book.acked.remove(region);
        book.creating.remove(region);
        book.replica_imports.remove(region);
        if key.regional.state == KeyState::PendingReplicaDeletion && !has_replicas(&key) {
            // The last replica is gone: the primary's own waiting period starts now.
            let window = key.regional.pending_window_days.unwrap_or(30);
            key.regional.state = KeyState::PendingDeletion;
            key.regional.deletion_ms = Some(now_ms + i64::from(window) * DAY_MS);
        }
        Ok(self.put_key(key, changes))
    }

    fn apply_notice(
        &mut self,
        key_id: &KeyId,
        from: &Region,
        kind: &NoticeKind,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let Some(existing) = self.key(key_id) else {
            // The key is gone here too: nothing to update (and a replica being created for it
            // has no set to join).
            return Ok(CommandOutput::Sync(match kind {
                NoticeKind::ReplicaCreating => SyncReply::UnknownKey,
                _ => SyncReply::Noted,
            }));
        };
        let primary = existing.shared.mrk.as_ref().map(|m| m.primary.clone());
        if primary.as_ref() != Some(&self.scope.region) {
            return Ok(CommandOutput::Sync(SyncReply::NotPrimary { primary }));
        }
        match kind {
            NoticeKind::ReplicaCreating => {
                let listed = existing
                    .shared
                    .mrk
                    .as_ref()
                    .is_some_and(|m| m.replicas.contains(from));
                return Ok(CommandOutput::Sync(if listed {
                    SyncReply::Noted
                } else {
                    SyncReply::UnknownKey
                }));
            }
            NoticeKind::ReplicaDeleted => {
                self.replica_gone(key_id, from, now_ms, changes)?;
            }
            NoticeKind::MaterialImported { material_id } => {
                let mut key = KeyRecord::clone(&existing);
                let set = key
                    .regional
                    .sync
                    .replica_imports
                    .entry(from.clone())
                    .or_default();
                if set.insert(material_id.clone()) {
                    self.put_key(key, changes);
                }
            }
        }
        Ok(CommandOutput::Sync(SyncReply::Noted))
    }

    fn promote_rotation(
        &mut self,
        key_id: &KeyId,
        version: u32,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let due = self
            .key(key_id)
            .is_some_and(|k| rotation_ready(&k, &self.scope.region) == Some(version));
        if !due {
            return Ok(CommandOutput::Done);
        }
        let mut key = KeyRecord::clone(&*self.existing(key_id)?);
        let kind = if key.shared.rotation.on_demand_started_ms.take().is_some() {
            RotationType::OnDemand
        } else {
            RotationType::Automatic
        };
        for m in &mut key.shared.materials {
            if m.version == version {
                m.rotation = Some(Rotation {
                    date_ms: now_ms,
                    kind,
                });
            }
        }
        key.shared.current_version = Some(version);
        bump(&mut key);
        Ok(self.put_key(key, changes))
    }

    fn begin_handover(
        &mut self,
        key_id: &KeyId,
        to: &Region,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let arn = self.scope.key_arn(key_id);
        let here = self.scope.region.clone();
        self.update_key(key_id, Operation::UpdatePrimaryRegion, changes, |k| {
            let m = mrk_of(k, &arn)?;
            if m.primary != here {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{arn} is not a multi-region primary key."
                )));
            }
            if *to == here {
                return Err(KmsError::Validation(format!(
                    "{arn} is already the primary key; PrimaryRegion must be the Region of one of its replicas."
                )));
            }
            if !m.replicas.contains(to) {
                return Err(KmsError::NotFound(format!(
                    "{arn} has no replica in {to}: replicate it there before making it the primary."
                )));
            }
            if k.regional.sync.creating.contains_key(to) {
                return Err(KmsError::InvalidState(format!(
                    "The replica of {arn} in {to} is still being created."
                )));
            }
            let m = k.shared.mrk.as_mut().expect("invariant: checked above");
            m.primary = to.clone();
            set_replicas(m, to, &here);
            m.epoch += 1;
            let epoch = m.epoch;
            // A primary still `Updating` from its own promotion (the old primary has not
            // acknowledged the new epoch yet) hands over from the state it had before that
            // promotion: no acknowledgement would end the promotion's wait once it is a
            // replica again, so the hand-over's end restores that state instead.
            let previous_state = match k.regional.sync.promoted.take() {
                Some(p) => p.previous_state,
                None => k.regional.state,
            };
            k.regional.sync.handover = Some(Handover {
                to: to.clone(),
                epoch,
                previous_state,
            });
            k.regional.sync.acked.clear();
            k.regional.state = KeyState::Updating;
            Ok(())
        })
    }

    fn end_handover(
        &mut self,
        key_id: &KeyId,
        epoch: u64,
        promoted: bool,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let Some(existing) = self.key(key_id) else {
            return Ok(CommandOutput::Done);
        };
        let Some(h) = existing
            .regional
            .sync
            .handover
            .clone()
            .filter(|h| h.epoch == epoch)
        else {
            return Ok(CommandOutput::Done);
        };
        let mut key = KeyRecord::clone(&existing);
        key.regional.state = h.previous_state;
        key.regional.sync.handover = None;
        if !promoted {
            // Refused: this Region is the primary again, with an epoch newer than the refused
            // one, so nothing said at that epoch can win.
            if let Some(m) = key.shared.mrk.as_mut() {
                set_replicas(m, &self.scope.region, &h.to);
                m.primary = self.scope.region.clone();
                m.epoch = epoch + 1;
                m.version += 1;
            }
        }
        Ok(self.put_key(key, changes))
    }
}

/// The pending version of an AWS_KMS primary that every replica now holds (its rotation may
/// complete), if any.
pub fn rotation_ready(k: &KeyRecord, region: &Region) -> Option<u32> {
    let m = k.shared.mrk.as_ref()?;
    if m.primary != *region || k.shared.origin != Origin::AwsKms {
        return None;
    }
    let pending = k.shared.pending_material()?.version;
    let stamp = m.stamp();
    let all = m
        .replicas
        .iter()
        .all(|r| k.regional.sync.acked.get(r).is_some_and(|a| *a >= stamp));
    all.then_some(pending)
}

/// Ends a new primary's `Updating` once the old primary (`region`) has acknowledged an epoch at
/// least the promoted one (or is gone: `u64::MAX`).
fn end_promotion(key: &mut KeyRecord, region: &Region, epoch: u64) {
    if let Some(p) = key.regional.sync.promoted.clone() {
        if p.from == *region && epoch >= p.epoch {
            key.regional.state = p.previous_state;
            key.regional.sync.promoted = None;
        }
    }
}

/// The replica list once `primary` is the primary and `demoted` a replica.
fn set_replicas(m: &mut MultiRegion, primary: &Region, demoted: &Region) {
    m.replicas.retain(|r| r != primary);
    if !m.replicas.contains(demoted) {
        m.replicas.push(demoted.clone());
    }
    m.replicas.sort();
}

/// Takes the sender's shared properties and adds the material versions this Region lacks.
/// The first material version of generated (not imported) material whose KeyMaterialId
/// `offered` gives otherwise than `held`.
fn changed_material(held: &SharedProps, offered: &SharedProps) -> Option<u32> {
    if offered.origin == Origin::External {
        return None;
    }
    offered
        .materials
        .iter()
        .find(|m| {
            held.material(m.version)
                .is_some_and(|h| h.key_material_id != m.key_material_id)
        })
        .map(|m| m.version)
}

pub(crate) fn merge_shared(
    key: &mut KeyRecord,
    shared: &SharedProps,
    materials: &std::collections::BTreeMap<u32, crate::key::RegionalMaterial>,
) {
    // Imported material of a version the set now describes anew (pending material deleted on
    // the primary, then other material imported under the same version number) is not this
    // version's any more: drop this Region's copy (the replica imports the new one itself).
    let renamed: Vec<u32> = shared
        .materials
        .iter()
        .filter(|m| {
            key.shared
                .material(m.version)
                .is_some_and(|h| h.key_material_id != m.key_material_id)
        })
        .map(|m| m.version)
        .collect();
    for v in renamed {
        key.regional.materials.remove(&v);
    }
    key.shared = shared.clone();
    if shared.origin != Origin::External {
        for (v, m) in materials {
            key.regional
                .materials
                .entry(*v)
                .or_insert_with(|| m.clone());
        }
    }
    // Material versions the set no longer has (deleted pending imports) go here too.
    let known: std::collections::BTreeSet<u32> =
        key.shared.materials.iter().map(|m| m.version).collect();
    key.regional.materials.retain(|v, _| known.contains(v));
}
