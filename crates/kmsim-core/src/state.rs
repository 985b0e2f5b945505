//! The replicated state of one Region and its deterministic `apply`.
//!
//! Every change goes through [`Command`]: the proposing node decides everything random or
//! time-dependent (key IDs, wrapped material, dates) and puts it into the command; applying a
//! command only reads the command and the current state. Each applied command also reports the
//! records it changed ([`RecordChange`]) so the storage layer can persist exactly those.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::KmsError;
use crate::ids::{AliasName, KeyId, KeyRef, Scope};
use crate::key::{KeyRecord, KeyState, Tag};
use crate::key_state::{check, Operation};
use crate::tags::merge_tags;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The most aliases one key may have.
pub const MAX_ALIASES_PER_KEY: usize = 50;

/// A change to the Region's replicated state, decided completely by the proposing node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Adds a new key (material already generated and wrapped under the domain key).
    CreateKey {
        /// The complete new key.
        key: KeyRecord,
    },
    /// EnableKey / DisableKey.
    SetEnabled {
        /// The key.
        key_id: KeyId,
        /// The new value.
        enabled: bool,
    },
    /// UpdateKeyDescription.
    UpdateKeyDescription {
        /// The key.
        key_id: KeyId,
        /// The new description.
        description: String,
    },
    /// PutKeyPolicy (already validated).
    PutKeyPolicy {
        /// The key.
        key_id: KeyId,
        /// The new policy document.
        policy: String,
    },
    /// TagResource (already validated).
    TagResource {
        /// The key.
        key_id: KeyId,
        /// Tags to add or overwrite.
        tags: Vec<Tag>,
    },
    /// UntagResource.
    UntagResource {
        /// The key.
        key_id: KeyId,
        /// Tag keys to remove; unknown ones are ignored.
        tag_keys: Vec<String>,
    },
    /// CreateAlias.
    CreateAlias {
        /// The alias.
        name: AliasName,
        /// Its target.
        target: KeyId,
        /// Creation time (simulated clock) in ms.
        now_ms: i64,
    },
    /// UpdateAlias.
    UpdateAlias {
        /// The alias.
        name: AliasName,
        /// The new target.
        target: KeyId,
        /// Update time in ms.
        now_ms: i64,
    },
    /// DeleteAlias.
    DeleteAlias {
        /// The alias.
        name: AliasName,
    },
    /// ScheduleKeyDeletion.
    ScheduleKeyDeletion {
        /// The key.
        key_id: KeyId,
        /// The waiting period (7..=30).
        window_days: u32,
        /// When the request was made, in ms.
        now_ms: i64,
    },
    /// CancelKeyDeletion.
    CancelKeyDeletion {
        /// The key.
        key_id: KeyId,
    },
    /// Deletes a key whose waiting period has ended, with its aliases. Proposed by the leader's
    /// deletion task; a no-op unless the key is still pending deletion and due at `now_ms`.
    DeleteExpiredKey {
        /// The key.
        key_id: KeyId,
        /// The time the task observed, in ms.
        now_ms: i64,
    },
    /// Moves the Region's simulated clock: its offset from the host clock never decreases.
    SetClockOffset {
        /// Offset from the host's clock, in ms.
        offset_ms: i64,
    },
}

/// What an applied command returns to its proposer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandOutput {
    /// The key as it is after the command.
    Key(Box<KeyRecord>),
    /// Nothing to report.
    Done,
    /// The clock offset now in force.
    ClockOffset(i64),
}

/// The result of applying one command.
pub type CommandResult = Result<CommandOutput, KmsError>;

/// A record to persist after applying a command (keys are in the application's keyspace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// Store `value` under `key`.
    Put {
        /// Record key.
        key: Vec<u8>,
        /// Encoded record.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// Record key.
        key: Vec<u8>,
    },
}

/// One alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// `AliasName`
    pub name: AliasName,
    /// `TargetKeyId`
    pub target: KeyId,
    /// `CreationDate` in ms.
    pub creation_ms: i64,
    /// `LastUpdatedDate` in ms.
    pub last_updated_ms: i64,
}

const KEY_PREFIX: &[u8] = b"key/";
const ALIAS_PREFIX: &[u8] = b"alias/";
const CLOCK_KEY: &[u8] = b"meta/clock";

/// The replicated state of one Region.
#[derive(Debug, Clone)]
pub struct KmsState {
    scope: Scope,
    keys: BTreeMap<KeyId, Arc<KeyRecord>>,
    aliases: BTreeMap<AliasName, AliasRecord>,
    clock_offset_ms: i64,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("invariant: in-memory records always encode")
}

impl KmsState {
    /// An empty Region.
    pub fn new(scope: Scope) -> KmsState {
        KmsState {
            scope,
            keys: BTreeMap::new(),
            aliases: BTreeMap::new(),
            clock_offset_ms: 0,
        }
    }

    /// The Region, partition and account this state belongs to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The simulated clock's offset from the host clock, in ms.
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// Replaces the state with persisted records. Records that do not decode are reported.
    pub fn load(&mut self, records: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        self.keys.clear();
        self.aliases.clear();
        self.clock_offset_ms = 0;
        for (k, v) in records {
            if k.starts_with(KEY_PREFIX) {
                let rec: KeyRecord =
                    postcard::from_bytes(&v).map_err(|e| format!("key record: {e}"))?;
                self.keys.insert(rec.key_id.clone(), Arc::new(rec));
            } else if k.starts_with(ALIAS_PREFIX) {
                let rec: AliasRecord =
                    postcard::from_bytes(&v).map_err(|e| format!("alias record: {e}"))?;
                self.aliases.insert(rec.name.clone(), rec);
            } else if k == CLOCK_KEY {
                self.clock_offset_ms =
                    postcard::from_bytes(&v).map_err(|e| format!("clock: {e}"))?;
            } else {
                return Err(format!(
                    "unknown record key {}",
                    String::from_utf8_lossy(&k)
                ));
            }
        }
        Ok(())
    }

    // ---- reads ----

    /// The key with this ID.
    pub fn key(&self, id: &KeyId) -> Option<Arc<KeyRecord>> {
        self.keys.get(id).cloned()
    }

    /// The ARN of a key of this Region.
    pub fn arn(&self, id: &KeyId) -> String {
        self.scope.key_arn(id)
    }

    /// Resolves a parsed reference to a key of this Region, with AWS's "not found" messages.
    pub fn resolve(&self, r: &KeyRef) -> Result<Arc<KeyRecord>, KmsError> {
        match r {
            KeyRef::Key(id) => self.key(id).ok_or_else(|| self.key_not_found(id)),
            KeyRef::Alias(name) => {
                let alias = self.aliases.get(name).ok_or_else(|| {
                    KmsError::NotFound(format!(
                        "Alias {} is not found.",
                        self.scope.alias_arn(name)
                    ))
                })?;
                self.key(&alias.target)
                    .ok_or_else(|| self.key_not_found(&alias.target))
            }
        }
    }

    fn key_not_found(&self, id: &KeyId) -> KmsError {
        KmsError::NotFound(format!("Key '{}' does not exist", self.scope.key_arn(id)))
    }

    fn existing(&self, id: &KeyId) -> Result<&Arc<KeyRecord>, KmsError> {
        self.keys.get(id).ok_or_else(|| self.key_not_found(id))
    }

    /// Keys in key-ID order after `marker`, at most `limit`; the marker of the next page if any.
    pub fn list_keys(
        &self,
        after: Option<&KeyId>,
        limit: usize,
    ) -> (Vec<Arc<KeyRecord>>, Option<KeyId>) {
        let iter: Box<dyn Iterator<Item = &Arc<KeyRecord>>> = match after {
            Some(m) => Box::new(
                self.keys
                    .range::<KeyId, _>((std::ops::Bound::Excluded(m), std::ops::Bound::Unbounded))
                    .map(|(_, v)| v),
            ),
            None => Box::new(self.keys.values()),
        };
        page(iter.cloned(), limit, |k| k.key_id.clone())
    }

    /// Aliases in name order after `after` (optionally only those of one key).
    pub fn list_aliases(
        &self,
        target: Option<&KeyId>,
        after: Option<&AliasName>,
        limit: usize,
    ) -> (Vec<AliasRecord>, Option<AliasName>) {
        let iter = self
            .aliases
            .values()
            .filter(|a| after.is_none_or(|m| &a.name > m))
            .filter(|a| target.is_none_or(|t| &a.target == t))
            .cloned();
        page(iter, limit, |a| a.name.clone())
    }

    /// The aliases pointing at a key.
    pub fn aliases_of(&self, id: &KeyId) -> Vec<&AliasRecord> {
        self.aliases.values().filter(|a| &a.target == id).collect()
    }

    /// Keys whose deletion date has passed at `now_ms`.
    pub fn expired_keys(&self, now_ms: i64) -> Vec<KeyId> {
        self.keys
            .values()
            .filter(|k| k.regional.state == KeyState::PendingDeletion)
            .filter(|k| k.regional.deletion_ms.is_some_and(|d| d <= now_ms))
            .map(|k| k.key_id.clone())
            .collect()
    }

    /// Number of keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    // ---- writes ----

    /// Applies one command; returns its result and the records to persist.
    pub fn apply(&mut self, cmd: &Command) -> (CommandResult, Vec<RecordChange>) {
        let mut changes = Vec::new();
        let result = self.apply_inner(cmd, &mut changes);
        (result, changes)
    }

    fn put_key(&mut self, key: KeyRecord, changes: &mut Vec<RecordChange>) -> CommandOutput {
        changes.push(RecordChange::Put {
            key: key_record_key(&key.key_id),
            value: encode(&key),
        });
        let out = CommandOutput::Key(Box::new(key.clone()));
        self.keys.insert(key.key_id.clone(), Arc::new(key));
        out
    }

    fn put_alias(&mut self, alias: AliasRecord, changes: &mut Vec<RecordChange>) {
        changes.push(RecordChange::Put {
            key: alias_record_key(&alias.name),
            value: encode(&alias),
        });
        self.aliases.insert(alias.name.clone(), alias);
    }

    /// Runs `f` on a copy of the key after checking the state table; stores the result.
    fn update_key(
        &mut self,
        id: &KeyId,
        op: Operation,
        changes: &mut Vec<RecordChange>,
        f: impl FnOnce(&mut KeyRecord) -> Result<(), KmsError>,
    ) -> CommandResult {
        let current = self.existing(id)?;
        check(
            op,
            current.regional.state,
            current.shared.origin,
            &self.scope.key_arn(id),
        )?;
        let mut key = KeyRecord::clone(current);
        f(&mut key)?;
        Ok(self.put_key(key, changes))
    }

    fn apply_inner(&mut self, cmd: &Command, changes: &mut Vec<RecordChange>) -> CommandResult {
        match cmd {
            Command::CreateKey { key } => {
                if let Some(existing) = self.keys.get(&key.key_id) {
                    // The same command applied again (a retried forward): same answer, no change.
                    if existing.as_ref() == key {
                        return Ok(CommandOutput::Key(Box::new(key.clone())));
                    }
                    return Err(KmsError::AlreadyExists(format!(
                        "{} already exists",
                        self.scope.key_arn(&key.key_id)
                    )));
                }
                Ok(self.put_key(key.clone(), changes))
            }
            Command::SetEnabled { key_id, enabled } => {
                let op = if *enabled {
                    Operation::EnableKey
                } else {
                    Operation::DisableKey
                };
                self.update_key(key_id, op, changes, |k| {
                    k.regional.state = if *enabled {
                        KeyState::Enabled
                    } else {
                        KeyState::Disabled
                    };
                    Ok(())
                })
            }
            Command::UpdateKeyDescription {
                key_id,
                description,
            } => self.update_key(key_id, Operation::UpdateKeyDescription, changes, |k| {
                k.regional.description = description.clone();
                Ok(())
            }),
            Command::PutKeyPolicy { key_id, policy } => {
                self.update_key(key_id, Operation::PutKeyPolicy, changes, |k| {
                    k.regional.policy = policy.clone();
                    Ok(())
                })
            }
            Command::TagResource { key_id, tags } => {
                self.update_key(key_id, Operation::TagResource, changes, |k| {
                    k.regional.tags = merge_tags(&k.regional.tags, tags)?;
                    Ok(())
                })
            }
            Command::UntagResource { key_id, tag_keys } => {
                self.update_key(key_id, Operation::UntagResource, changes, |k| {
                    k.regional.tags.retain(|t| !tag_keys.contains(&t.key));
                    Ok(())
                })
            }
            Command::ScheduleKeyDeletion {
                key_id,
                window_days,
                now_ms,
            } => self.update_key(key_id, Operation::ScheduleKeyDeletion, changes, |k| {
                k.regional.state = KeyState::PendingDeletion;
                k.regional.deletion_ms = Some(now_ms + i64::from(*window_days) * DAY_MS);
                k.regional.pending_window_days = Some(*window_days);
                Ok(())
            }),
            Command::CancelKeyDeletion { key_id } => {
                self.update_key(key_id, Operation::CancelKeyDeletion, changes, |k| {
                    k.regional.state = KeyState::Disabled;
                    k.regional.deletion_ms = None;
                    k.regional.pending_window_days = None;
                    Ok(())
                })
            }
            Command::DeleteExpiredKey { key_id, now_ms } => {
                let due = self.keys.get(key_id).is_some_and(|k| {
                    k.regional.state == KeyState::PendingDeletion
                        && k.regional.deletion_ms.is_some_and(|d| d <= *now_ms)
                });
                if !due {
                    return Ok(CommandOutput::Done);
                }
                self.keys.remove(key_id);
                changes.push(RecordChange::Delete {
                    key: key_record_key(key_id),
                });
                let gone: Vec<AliasName> = self
                    .aliases_of(key_id)
                    .into_iter()
                    .map(|a| a.name.clone())
                    .collect();
                for name in gone {
                    self.aliases.remove(&name);
                    changes.push(RecordChange::Delete {
                        key: alias_record_key(&name),
                    });
                }
                Ok(CommandOutput::Done)
            }
            Command::CreateAlias {
                name,
                target,
                now_ms,
            } => {
                if self.aliases.contains_key(name) {
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
                if self.aliases_of(target).len() >= MAX_ALIASES_PER_KEY {
                    return Err(KmsError::LimitExceeded(format!(
                        "The key {} already has {MAX_ALIASES_PER_KEY} aliases",
                        self.scope.key_arn(target)
                    )));
                }
                let alias = AliasRecord {
                    name: name.clone(),
                    target: target.clone(),
                    creation_ms: *now_ms,
                    last_updated_ms: *now_ms,
                };
                self.put_alias(alias, changes);
                Ok(CommandOutput::Done)
            }
            Command::UpdateAlias {
                name,
                target,
                now_ms,
            } => {
                let alias = self.aliases.get(name).cloned().ok_or_else(|| {
                    KmsError::NotFound(format!(
                        "Alias {} is not found.",
                        self.scope.alias_arn(name)
                    ))
                })?;
                let new_key = self.existing(target)?;
                check(
                    Operation::UpdateAliasTarget,
                    new_key.regional.state,
                    new_key.shared.origin,
                    &self.scope.key_arn(target),
                )?;
                if let Some(old) = self.keys.get(&alias.target) {
                    if old.shared.key_usage != new_key.shared.key_usage
                        || old.shared.key_spec.allowed_usages()
                            != new_key.shared.key_spec.allowed_usages()
                    {
                        return Err(KmsError::Validation(format!(
                            "{} and {} are not the same type of key or do not have the same key usage",
                            self.scope.key_arn(&alias.target),
                            self.scope.key_arn(target)
                        )));
                    }
                }
                if self.aliases_of(target).len() >= MAX_ALIASES_PER_KEY {
                    return Err(KmsError::LimitExceeded(format!(
                        "The key {} already has {MAX_ALIASES_PER_KEY} aliases",
                        self.scope.key_arn(target)
                    )));
                }
                let updated = AliasRecord {
                    target: target.clone(),
                    last_updated_ms: *now_ms,
                    ..alias
                };
                self.put_alias(updated, changes);
                Ok(CommandOutput::Done)
            }
            Command::DeleteAlias { name } => {
                if self.aliases.remove(name).is_none() {
                    return Err(KmsError::NotFound(format!(
                        "Alias {} is not found.",
                        self.scope.alias_arn(name)
                    )));
                }
                changes.push(RecordChange::Delete {
                    key: alias_record_key(name),
                });
                Ok(CommandOutput::Done)
            }
            Command::SetClockOffset { offset_ms } => {
                if *offset_ms > self.clock_offset_ms {
                    self.clock_offset_ms = *offset_ms;
                    changes.push(RecordChange::Put {
                        key: CLOCK_KEY.to_vec(),
                        value: encode(&self.clock_offset_ms),
                    });
                }
                Ok(CommandOutput::ClockOffset(self.clock_offset_ms))
            }
        }
    }
}

fn key_record_key(id: &KeyId) -> Vec<u8> {
    [KEY_PREFIX, id.as_str().as_bytes()].concat()
}

fn alias_record_key(name: &AliasName) -> Vec<u8> {
    [ALIAS_PREFIX, name.as_str().as_bytes()].concat()
}

fn page<T, M>(
    iter: impl Iterator<Item = T>,
    limit: usize,
    marker: impl Fn(&T) -> M,
) -> (Vec<T>, Option<M>) {
    let mut items: Vec<T> = iter.take(limit.saturating_add(1)).collect();
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(&marker);
        (items, next)
    } else {
        (items, None)
    }
}

/// Encodes a command for the Raft log.
pub fn encode_command(cmd: &Command) -> Vec<u8> {
    encode(cmd)
}

/// Decodes a command from the Raft log.
pub fn decode_command(bytes: &[u8]) -> Result<Command, KmsError> {
    postcard::from_bytes(bytes).map_err(|e| KmsError::Internal(format!("undecodable command: {e}")))
}

/// Encodes a command result for the proposer.
pub fn encode_result(r: &CommandResult) -> Vec<u8> {
    encode(r)
}

/// Decodes a command result.
pub fn decode_result(bytes: &[u8]) -> CommandResult {
    postcard::from_bytes(bytes)
        .unwrap_or_else(|e| Err(KmsError::Internal(format!("undecodable result: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, Partition, Region};
    use crate::key::{KeySpec, KeyUsage, MaterialVersion, Origin, RegionalProps, SharedProps};
    use proptest::prelude::*;

    fn scope() -> Scope {
        Scope {
            partition: Partition::parse("aws").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
        }
    }

    fn key(n: u8) -> KeyRecord {
        KeyRecord {
            key_id: KeyId::single_region_from_bytes([n; 16]),
            shared: SharedProps {
                key_spec: KeySpec::SymmetricDefault,
                key_usage: KeyUsage::EncryptDecrypt,
                origin: Origin::AwsKms,
                multi_region: false,
                materials: vec![MaterialVersion {
                    version: 0,
                    key_material_id: "ab".repeat(32),
                    wrapped: vec![n; 61],
                    created_ms: 1,
                }],
                current_version: 0,
            },
            regional: RegionalProps {
                creation_ms: 1,
                description: String::new(),
                state: KeyState::Enabled,
                deletion_ms: None,
                pending_window_days: None,
                policy: "{}".into(),
                tags: vec![],
            },
        }
    }

    /// Applies `cmd` to `s` and checks the persisted changes rebuild exactly the same state.
    fn apply_and_check(
        s: &mut KmsState,
        store: &mut BTreeMap<Vec<u8>, Vec<u8>>,
        cmd: &Command,
    ) -> CommandResult {
        let (r, changes) = s.apply(cmd);
        for c in changes {
            match c {
                RecordChange::Put { key, value } => {
                    store.insert(key, value);
                }
                RecordChange::Delete { key } => {
                    store.remove(&key);
                }
            }
        }
        let mut reloaded = KmsState::new(scope());
        reloaded
            .load(store.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap();
        assert_eq!(reloaded.keys, s.keys);
        assert_eq!(reloaded.aliases, s.aliases);
        assert_eq!(reloaded.clock_offset_ms, s.clock_offset_ms);
        r
    }

    #[test]
    fn deletion_lifecycle() {
        let mut s = KmsState::new(scope());
        let mut store = BTreeMap::new();
        let k = key(1);
        let id = k.key_id.clone();
        apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k.clone() }).unwrap();
        // Replaying the identical command is harmless; a different key with the same id is not.
        apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k.clone() }).unwrap();
        let mut other = k.clone();
        other.regional.description = "x".into();
        assert_eq!(
            apply_and_check(&mut s, &mut store, &Command::CreateKey { key: other })
                .unwrap_err()
                .code(),
            "AlreadyExistsException"
        );

        let alias = AliasName::parse("alias/a").unwrap();
        apply_and_check(
            &mut s,
            &mut store,
            &Command::CreateAlias {
                name: alias.clone(),
                target: id.clone(),
                now_ms: 5,
            },
        )
        .unwrap();
        apply_and_check(
            &mut s,
            &mut store,
            &Command::ScheduleKeyDeletion {
                key_id: id.clone(),
                window_days: 7,
                now_ms: 10,
            },
        )
        .unwrap();
        assert_eq!(s.expired_keys(10 + 7 * DAY_MS - 1), vec![]);
        assert_eq!(s.expired_keys(10 + 7 * DAY_MS), vec![id.clone()]);
        // Too early: nothing happens.
        apply_and_check(
            &mut s,
            &mut store,
            &Command::DeleteExpiredKey {
                key_id: id.clone(),
                now_ms: 11,
            },
        )
        .unwrap();
        assert!(s.key(&id).is_some());
        apply_and_check(
            &mut s,
            &mut store,
            &Command::DeleteExpiredKey {
                key_id: id.clone(),
                now_ms: 10 + 7 * DAY_MS,
            },
        )
        .unwrap();
        assert!(s.key(&id).is_none());
        assert!(s.aliases.is_empty());
        assert!(store.is_empty());
    }

    #[test]
    fn cancel_gives_disabled_and_clock_never_goes_back() {
        let mut s = KmsState::new(scope());
        let mut store = BTreeMap::new();
        let k = key(2);
        let id = k.key_id.clone();
        apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
        let e = apply_and_check(
            &mut s,
            &mut store,
            &Command::CancelKeyDeletion { key_id: id.clone() },
        )
        .unwrap_err();
        assert_eq!(e.code(), "KMSInvalidStateException");
        apply_and_check(
            &mut s,
            &mut store,
            &Command::ScheduleKeyDeletion {
                key_id: id.clone(),
                window_days: 30,
                now_ms: 0,
            },
        )
        .unwrap();
        match apply_and_check(
            &mut s,
            &mut store,
            &Command::CancelKeyDeletion { key_id: id.clone() },
        )
        .unwrap()
        {
            CommandOutput::Key(k) => {
                assert_eq!(k.regional.state, KeyState::Disabled);
                assert_eq!(k.regional.deletion_ms, None);
            }
            other => panic!("{other:?}"),
        }
        apply_and_check(
            &mut s,
            &mut store,
            &Command::SetClockOffset { offset_ms: 100 },
        )
        .unwrap();
        apply_and_check(
            &mut s,
            &mut store,
            &Command::SetClockOffset { offset_ms: 50 },
        )
        .unwrap();
        assert_eq!(s.clock_offset_ms(), 100);
    }

    fn arb_command(ids: Vec<KeyId>) -> impl Strategy<Value = Command> {
        let id = proptest::sample::select(ids);
        let alias = prop_oneof![Just("alias/a"), Just("alias/b")]
            .prop_map(|a| AliasName::parse(a).unwrap());
        prop_oneof![
            (0u8..3).prop_map(|n| Command::CreateKey { key: key(n) }),
            (id.clone(), any::<bool>())
                .prop_map(|(key_id, enabled)| Command::SetEnabled { key_id, enabled }),
            (id.clone(), 7u32..=30, 0i64..1000).prop_map(|(key_id, window_days, now_ms)| {
                Command::ScheduleKeyDeletion {
                    key_id,
                    window_days,
                    now_ms,
                }
            }),
            id.clone()
                .prop_map(|key_id| Command::CancelKeyDeletion { key_id }),
            (id.clone(), 0i64..(40 * DAY_MS))
                .prop_map(|(key_id, now_ms)| Command::DeleteExpiredKey { key_id, now_ms }),
            (alias.clone(), id.clone()).prop_map(|(name, target)| Command::CreateAlias {
                name,
                target,
                now_ms: 1
            }),
            (alias.clone(), id.clone()).prop_map(|(name, target)| Command::UpdateAlias {
                name,
                target,
                now_ms: 2
            }),
            alias.prop_map(|name| Command::DeleteAlias { name }),
            (id.clone(), proptest::collection::vec("[a-c]", 0..3)).prop_map(|(key_id, ks)| {
                Command::TagResource {
                    key_id,
                    tags: ks
                        .into_iter()
                        .map(|k| Tag {
                            key: k,
                            value: "v".into(),
                        })
                        .collect(),
                }
            }),
            (0i64..100).prop_map(|offset_ms| Command::SetClockOffset { offset_ms }),
        ]
    }

    proptest! {
        /// Any sequence of commands: applying is deterministic (two replicas agree), the
        /// persisted changes always rebuild the in-memory state, and invariants hold.
        #[test]
        fn replicas_applying_the_same_log_agree(cmds in proptest::collection::vec(arb_command((0u8..3).map(|n| key(n).key_id).collect()), 0..40)) {
            let mut a = KmsState::new(scope());
            let mut b = KmsState::new(scope());
            let mut store = BTreeMap::new();
            for cmd in &cmds {
                let ra = apply_and_check(&mut a, &mut store, cmd);
                let (rb, _) = b.apply(cmd);
                prop_assert_eq!(ra, rb);
                // Every alias points at an existing key; deletion dates exist exactly when pending.
                for al in a.aliases.values() {
                    prop_assert!(a.keys.contains_key(&al.target));
                }
                for k in a.keys.values() {
                    prop_assert_eq!(k.regional.deletion_ms.is_some(), k.regional.state == KeyState::PendingDeletion);
                }
            }
            prop_assert_eq!(a.keys, b.keys);
        }
    }
}
