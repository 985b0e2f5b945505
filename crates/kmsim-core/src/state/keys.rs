//! Applying the key lifecycle and alias commands.

use std::sync::Arc;

use crate::error::KmsError;
use crate::ids::{AliasName, KeyId};
use crate::key::{KeyRecord, KeyState, Tag};
use crate::key_state::{check, Operation};
use crate::tags::merge_tags;

use crate::sync::NoticeKind;

use super::mrk::has_replicas;
use super::{
    alias_record_key, grant_record_key, index, AliasRecord, CommandOutput, CommandResult, KmsState,
    RecordChange, DAY_MS,
};

impl KmsState {
    pub(super) fn create_key(
        &mut self,
        key: &KeyRecord,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        if let Some(existing) = self.key(&key.key_id) {
            // The same command applied again (a retried forward): same answer, no change.
            if existing.as_ref() == key {
                return Ok(CommandOutput::Key(Box::new(key.clone())));
            }
            return Err(KmsError::AlreadyExists(format!(
                "{} already exists",
                self.scope.key_arn(&key.key_id)
            )));
        }
        self.key_room()?;
        Ok(self.put_key(key.clone(), changes))
    }

    pub(super) fn set_enabled(
        &mut self,
        key_id: &KeyId,
        enabled: bool,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let op = if enabled {
            Operation::EnableKey
        } else {
            Operation::DisableKey
        };
        self.update_key(key_id, op, changes, |k| {
            k.regional.state = if enabled {
                material_state(k, KeyState::Enabled)
            } else {
                KeyState::Disabled
            };
            Ok(())
        })
    }

    pub(super) fn tag_resource(
        &mut self,
        key_id: &KeyId,
        tags: &[Tag],
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        self.update_key(key_id, Operation::TagResource, changes, |k| {
            k.regional.tags = merge_tags(&k.regional.tags, tags)?;
            Ok(())
        })
    }

    pub(super) fn schedule_key_deletion(
        &mut self,
        key_id: &KeyId,
        window_days: u32,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let region = self.scope.region.clone();
        self.update_key(key_id, Operation::ScheduleKeyDeletion, changes, |k| {
            if has_replicas(k) && k.shared.mrk.as_ref().is_some_and(|m| m.primary == region) {
                // A primary waits for its last replica to be deleted; its own window starts then.
                k.regional.state = KeyState::PendingReplicaDeletion;
                k.regional.deletion_ms = None;
            } else {
                k.regional.state = KeyState::PendingDeletion;
                k.regional.deletion_ms = Some(now_ms + i64::from(window_days) * DAY_MS);
            }
            k.regional.pending_window_days = Some(window_days);
            Ok(())
        })
    }

    pub(super) fn cancel_key_deletion(
        &mut self,
        key_id: &KeyId,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        self.update_key(key_id, Operation::CancelKeyDeletion, changes, |k| {
            k.regional.state = material_state(k, KeyState::Disabled);
            k.regional.deletion_ms = None;
            k.regional.pending_window_days = None;
            Ok(())
        })
    }

    pub(super) fn delete_expired_key(
        &mut self,
        key_id: &KeyId,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let due = self.key(key_id).is_some_and(|k| {
            k.regional.state == KeyState::PendingDeletion
                && k.regional.deletion_ms.is_some_and(|d| d <= now_ms)
        });
        if !due {
            return Ok(CommandOutput::Done);
        }
        let gone = self.remove_key(key_id, now_ms, None, changes);
        if let Some(m) = gone
            .and_then(|k| k.shared.mrk.clone())
            .filter(|m| m.primary != self.scope.region)
        {
            // A replica's deletion is reported to its primary, which takes it off the set.
            self.queue_notice(
                m.primary.clone(),
                key_id,
                NoticeKind::ReplicaDeleted,
                changes,
            );
        }
        Ok(CommandOutput::Done)
    }

    /// Removes a key with its aliases and grants and records a `DeleteKey` service event
    /// (the members of `details`, an object, join its `serviceEventDetails`). Returns the
    /// removed key.
    pub(super) fn remove_key(
        &mut self,
        key_id: &KeyId,
        now_ms: i64,
        details: Option<serde_json::Value>,
        changes: &mut Vec<RecordChange>,
    ) -> Option<Arc<KeyRecord>> {
        let gone = self.delete_key(key_id, changes)?;
        let arn = self.scope.key_arn(key_id);
        let mut d = serde_json::json!({"keyId": arn});
        if let Some(serde_json::Value::Object(extra)) = details {
            d.as_object_mut()
                .expect("invariant: built as an object")
                .extend(extra);
        }
        self.record_service_event(now_ms, "DeleteKey", key_id, &arn, d, changes);
        // A deleted key takes its aliases and grants with it.
        for alias in self.aliases_of(key_id) {
            self.delete_alias_record(&alias, changes);
        }
        for grant in self.grants_of(key_id) {
            self.records
                .delete(grant_record_key(&grant.key_id, &grant.grant_id), changes);
        }
        Some(gone)
    }

    /// Stores an alias (new or retargeted) with its index entry.
    fn put_alias(&mut self, alias: AliasRecord, changes: &mut Vec<RecordChange>) {
        if let Some(before) = self.alias(&alias.name) {
            self.records.delete(index::alias_entry(&before), changes);
        }
        self.records
            .put(index::alias_entry(&alias), Vec::new(), changes);
        self.records
            .put_encoded(alias_record_key(&alias.name), &alias, changes);
    }

    /// Deletes an alias with its index entry.
    fn delete_alias_record(&mut self, alias: &AliasRecord, changes: &mut Vec<RecordChange>) {
        self.records.delete(index::alias_entry(alias), changes);
        self.records.delete(alias_record_key(&alias.name), changes);
    }

    fn alias_room(&self, target: &KeyId) -> Result<(), KmsError> {
        let quota = self.quotas.aliases_per_key;
        if self.aliases_of(target).len() >= quota {
            return Err(KmsError::LimitExceeded(format!(
                "The key {} already has {quota} aliases",
                self.scope.key_arn(target)
            )));
        }
        Ok(())
    }

    pub(super) fn create_alias(
        &mut self,
        name: &AliasName,
        target: &KeyId,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        if self.alias(name).is_some() {
            return Err(KmsError::AlreadyExists(format!(
                "An alias with the name {} already exists",
                self.scope.alias_arn(name)
            )));
        }
        let key = self.existing(target)?;
        check(
            Operation::CreateAlias,
            key.regional.state,
            key.shared.origin,
            &self.scope.key_arn(target),
        )?;
        self.alias_room(target)?;
        let alias = AliasRecord {
            name: name.clone(),
            target: target.clone(),
            creation_ms: now_ms,
            last_updated_ms: now_ms,
        };
        self.put_alias(alias, changes);
        Ok(CommandOutput::Done)
    }

    pub(super) fn update_alias(
        &mut self,
        name: &AliasName,
        target: &KeyId,
        now_ms: i64,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let alias = self.alias(name).ok_or_else(|| self.alias_not_found(name))?;
        let new_key = self.existing(target)?;
        check(
            Operation::UpdateAliasTarget,
            new_key.regional.state,
            new_key.shared.origin,
            &self.scope.key_arn(target),
        )?;
        if let Some(old) = self.key(&alias.target) {
            // The new target must be the same type of key with the same usage.
            if old.shared.key_usage != new_key.shared.key_usage
                || old.shared.key_spec.alias_type() != new_key.shared.key_spec.alias_type()
            {
                return Err(KmsError::Validation(format!(
                    "{} and {} are not the same type of key or do not have the same key usage",
                    self.scope.key_arn(&alias.target),
                    self.scope.key_arn(target)
                )));
            }
        }
        if alias.target != *target {
            self.alias_room(target)?;
        }
        let updated = AliasRecord {
            target: target.clone(),
            last_updated_ms: now_ms,
            ..alias
        };
        self.put_alias(updated, changes);
        Ok(CommandOutput::Done)
    }

    pub(super) fn delete_alias(
        &mut self,
        name: &AliasName,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let alias = self.alias(name).ok_or_else(|| self.alias_not_found(name))?;
        self.delete_alias_record(&alias, changes);
        Ok(CommandOutput::Done)
    }
}

/// `wanted`, unless the key is EXTERNAL and lacks material this Region needs: then it can only
/// be `PendingImport` (its material was deleted or expired meanwhile).
fn material_state(k: &KeyRecord, wanted: KeyState) -> KeyState {
    if k.shared.origin == crate::key::Origin::External && !k.has_all_current_material() {
        KeyState::PendingImport
    } else {
        wanted
    }
}
