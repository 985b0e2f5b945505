//! The replicated state of one Region and its deterministic `apply`.
//!
//! Every change goes through a [`Command`]: the proposing node decides everything random or
//! time-dependent (key IDs, wrapped material, dates) and puts it into the command; applying a
//! command only reads the command and the current state, and re-checks every state-dependent
//! rule (the key may have changed since the proposer looked). Each applied command also
//! reports the records it changed ([`RecordChange`]) so the storage layer persists exactly
//! those.
//!
//! Modules: [`command`] (the commands), `keys` (key lifecycle and aliases), [`material`]
//! (rotation and imported material), `grants`, `mrk` (multi-Region keys: replication,
//! synchronization, primary hand-over, notices), and the audit log.

mod command;
pub mod forwarded;
mod grants;
mod keys;
pub mod material;
pub mod mrk;
mod requests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mrk;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, DEFAULT_REGION_RETENTION};
use crate::error::KmsError;
use crate::grant::GrantRecord;
use crate::ids::{AliasName, KeyId, KeyRef, Scope};
use crate::key::{KeyRecord, KeyState};
use crate::key_state::{check, Operation};
use crate::sync::Notice;

use command::encode;
pub use command::{
    decode_command, decode_result, encode_command, encode_result, Command, CommandOutput,
    CommandResult, RecordChange,
};
pub use forwarded::{ForwardedCommand, ProposalError, RequestId, MAX_COMMAND_BYTES, MAX_NESTING};
pub use requests::MAX_REMEMBERED_REQUESTS;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The largest clock offset the Region applies: a hundred years (of 366 days), so that no
/// date computed from the clock overflows (`AdvanceClock` refuses larger steps first).
pub const MAX_CLOCK_OFFSET_MS: i64 = 100 * 366 * DAY_MS;
/// The most aliases one key may have.
pub const MAX_ALIASES_PER_KEY: usize = 50;

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
const GRANT_PREFIX: &[u8] = b"grant/";
const OUTBOX_PREFIX: &[u8] = b"outbox/";
const AUDIT_PREFIX: &[u8] = b"audit/";
const CLOCK_KEY: &[u8] = b"meta/clock";
const COUNTERS_KEY: &[u8] = b"meta/counters";

/// Sequence counters of the outbox and the audit log (persisted, so positions are never
/// reused after entries are dropped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    next_notice: u64,
    next_audit: u64,
}

/// The replicated state of one Region.
#[derive(Debug, Clone)]
pub struct KmsState {
    scope: Scope,
    keys: BTreeMap<KeyId, Arc<KeyRecord>>,
    aliases: BTreeMap<AliasName, AliasRecord>,
    /// Grants by (key, grant ID), so the grants of one key are one range.
    grants: BTreeMap<(KeyId, String), GrantRecord>,
    /// Notices to other Regions, not yet delivered.
    outbox: BTreeMap<u64, Notice>,
    /// The Region's management audit events, oldest first, at most `audit_retention`.
    audit: BTreeMap<u64, AuditRecord>,
    /// How many audit events the Region keeps (`[audit] region_retention_events`; the same on
    /// every node, since every node reads the same topology).
    audit_retention: usize,
    counters: Counters,
    clock_offset_ms: i64,
    /// Recent forwarded writes by request ID, applied once each.
    requests: requests::Requests,
}

impl KmsState {
    /// An empty Region.
    pub fn new(scope: Scope) -> KmsState {
        KmsState {
            scope,
            keys: BTreeMap::new(),
            aliases: BTreeMap::new(),
            grants: BTreeMap::new(),
            outbox: BTreeMap::new(),
            audit: BTreeMap::new(),
            audit_retention: DEFAULT_REGION_RETENTION,
            counters: Counters::default(),
            clock_offset_ms: 0,
            requests: requests::Requests::default(),
        }
    }

    /// Sets how many audit events the Region keeps (at least 1). Applies from the next event
    /// recorded, which also drops any excess.
    pub fn with_audit_retention(mut self, events: usize) -> KmsState {
        self.audit_retention = events.max(1);
        self
    }

    /// How many audit events retention has dropped from the Region's log so far (all events
    /// ever recorded minus those still held).
    pub fn audit_dropped(&self) -> u64 {
        self.counters.next_audit - self.audit.len() as u64
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
        self.grants.clear();
        self.outbox.clear();
        self.audit.clear();
        self.counters = Counters::default();
        self.clock_offset_ms = 0;
        self.requests.clear();
        for (k, v) in records {
            if k.starts_with(KEY_PREFIX) {
                let rec: KeyRecord =
                    postcard::from_bytes(&v).map_err(|e| format!("key record: {e}"))?;
                self.keys.insert(rec.key_id.clone(), Arc::new(rec));
            } else if k.starts_with(ALIAS_PREFIX) {
                let rec: AliasRecord =
                    postcard::from_bytes(&v).map_err(|e| format!("alias record: {e}"))?;
                self.aliases.insert(rec.name.clone(), rec);
            } else if k.starts_with(GRANT_PREFIX) {
                let rec: GrantRecord =
                    postcard::from_bytes(&v).map_err(|e| format!("grant record: {e}"))?;
                self.grants
                    .insert((rec.key_id.clone(), rec.grant_id.clone()), rec);
            } else if k.starts_with(OUTBOX_PREFIX) {
                let rec: Notice =
                    postcard::from_bytes(&v).map_err(|e| format!("outbox record: {e}"))?;
                self.outbox.insert(rec.seq, rec);
            } else if k.starts_with(AUDIT_PREFIX) {
                let rec: AuditRecord =
                    postcard::from_bytes(&v).map_err(|e| format!("audit record: {e}"))?;
                self.audit.insert(rec.seq, rec);
            } else if k.starts_with(requests::REQUEST_PREFIX) {
                let rec: requests::Remembered =
                    postcard::from_bytes(&v).map_err(|e| format!("request record: {e}"))?;
                self.requests.load(rec);
            } else if k == COUNTERS_KEY {
                self.counters = postcard::from_bytes(&v).map_err(|e| format!("counters: {e}"))?;
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
                let alias = self
                    .aliases
                    .get(name)
                    .ok_or_else(|| self.alias_not_found(name))?;
                self.key(&alias.target)
                    .ok_or_else(|| self.key_not_found(&alias.target))
            }
        }
    }

    fn key_not_found(&self, id: &KeyId) -> KmsError {
        KmsError::NotFound(format!("Key '{}' does not exist", self.scope.key_arn(id)))
    }

    fn alias_not_found(&self, name: &AliasName) -> KmsError {
        KmsError::NotFound(format!(
            "Alias {} is not found.",
            self.scope.alias_arn(name)
        ))
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
        let lower = match after {
            Some(m) => Bound::Excluded(m),
            None => Bound::Unbounded,
        };
        let iter = self
            .keys
            .range::<KeyId, _>((lower, Bound::Unbounded))
            .map(|(_, v)| v.clone());
        page(iter, limit, |k| k.key_id.clone())
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

    /// Every key (for the synchronizer's scan).
    pub fn keys(&self) -> impl Iterator<Item = &Arc<KeyRecord>> {
        self.keys.values()
    }

    /// The notices waiting to be delivered, oldest first.
    pub fn outbox(&self) -> impl Iterator<Item = &Notice> {
        self.outbox.values()
    }

    /// Audit events after position `after`, optionally of one key, at most `limit`.
    pub fn audit_events(
        &self,
        key_id: Option<&KeyId>,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<AuditRecord> {
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        self.audit
            .range((lower, Bound::Unbounded))
            .map(|(_, r)| r)
            .filter(|r| key_id.is_none_or(|k| r.key_id.as_ref() == Some(k)))
            .take(limit)
            .cloned()
            .collect()
    }

    fn put_counters(&self, changes: &mut Vec<RecordChange>) {
        changes.push(RecordChange::Put {
            key: COUNTERS_KEY.to_vec(),
            value: encode(&self.counters),
        });
    }

    /// Records a service event (`AwsServiceEvent`) about `key_id`, whose resource is `key_arn`
    /// (this Region's key ARN, or the primary's for a synchronization).
    pub(crate) fn record_service_event(
        &mut self,
        time_ms: i64,
        event_name: &str,
        key_id: &KeyId,
        key_arn: &str,
        details: serde_json::Value,
        changes: &mut Vec<RecordChange>,
    ) {
        let scope = self.scope.clone();
        self.record_event(
            time_ms,
            event_name,
            Some(key_id),
            |seq| {
                crate::audit::service_record(
                    &scope,
                    seq,
                    time_ms,
                    event_name,
                    Some(key_arn),
                    Some(details),
                )
            },
            changes,
        );
    }

    /// Appends an audit event built by `build` from its position, dropping the oldest beyond
    /// the retention.
    pub(crate) fn record_event(
        &mut self,
        time_ms: i64,
        event_name: &str,
        key_id: Option<&KeyId>,
        build: impl FnOnce(u64) -> String,
        changes: &mut Vec<RecordChange>,
    ) {
        let seq = self.counters.next_audit;
        self.counters.next_audit += 1;
        self.put_counters(changes);
        let rec = AuditRecord {
            seq,
            time_ms,
            event_name: event_name.to_string(),
            key_id: key_id.cloned(),
            json: build(seq),
        };
        changes.push(RecordChange::Put {
            key: seq_record_key(AUDIT_PREFIX, seq),
            value: encode(&rec),
        });
        self.audit.insert(seq, rec);
        while self.audit.len() > self.audit_retention {
            if let Some((old, _)) = self.audit.pop_first() {
                changes.push(RecordChange::Delete {
                    key: seq_record_key(AUDIT_PREFIX, old),
                });
            }
        }
    }

    /// Queues a notice to another Region.
    pub(crate) fn queue_notice(
        &mut self,
        to: crate::ids::Region,
        key_id: &KeyId,
        kind: crate::sync::NoticeKind,
        changes: &mut Vec<RecordChange>,
    ) {
        let seq = self.counters.next_notice;
        self.counters.next_notice += 1;
        self.put_counters(changes);
        let notice = Notice {
            seq,
            to,
            key_id: key_id.clone(),
            kind,
        };
        changes.push(RecordChange::Put {
            key: seq_record_key(OUTBOX_PREFIX, seq),
            value: encode(&notice),
        });
        self.outbox.insert(seq, notice);
    }

    /// Drops a delivered notice.
    pub(crate) fn drop_notice(&mut self, seq: u64, changes: &mut Vec<RecordChange>) {
        if self.outbox.remove(&seq).is_some() {
            changes.push(RecordChange::Delete {
                key: seq_record_key(OUTBOX_PREFIX, seq),
            });
        }
    }

    /// Points a queued notice at another Region.
    pub(crate) fn retarget_notice(
        &mut self,
        seq: u64,
        to: crate::ids::Region,
        changes: &mut Vec<RecordChange>,
    ) {
        if let Some(n) = self.outbox.get_mut(&seq) {
            n.to = to;
            changes.push(RecordChange::Put {
                key: seq_record_key(OUTBOX_PREFIX, seq),
                value: encode(&*n),
            });
        }
    }

    // ---- writes ----

    /// Applies one command; returns its result and the records to persist.
    pub fn apply(&mut self, cmd: &Command) -> (CommandResult, Vec<RecordChange>) {
        let mut changes = Vec::new();
        let result = self.apply_inner(cmd, &mut changes);
        (result, changes)
    }

    fn apply_inner(&mut self, cmd: &Command, changes: &mut Vec<RecordChange>) -> CommandResult {
        match cmd {
            Command::CreateKey { key } => self.create_key(key, changes),
            Command::SetEnabled { key_id, enabled } => self.set_enabled(key_id, *enabled, changes),
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
            Command::TagResource { key_id, tags } => self.tag_resource(key_id, tags, changes),
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
            } => self.schedule_key_deletion(key_id, *window_days, *now_ms, changes),
            Command::CancelKeyDeletion { key_id } => self.cancel_key_deletion(key_id, changes),
            Command::DeleteExpiredKey { key_id, now_ms } => {
                self.delete_expired_key(key_id, *now_ms, changes)
            }
            Command::CreateAlias {
                name,
                target,
                now_ms,
            } => self.create_alias(name, target, *now_ms, changes),
            Command::UpdateAlias {
                name,
                target,
                now_ms,
            } => self.update_alias(name, target, *now_ms, changes),
            Command::DeleteAlias { name } => self.delete_alias(name, changes),
            Command::SetClockOffset { offset_ms } if *offset_ms > MAX_CLOCK_OFFSET_MS => {
                Err(KmsError::Validation(format!(
                    "the clock offset may not exceed {MAX_CLOCK_OFFSET_MS} ms"
                )))
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
            Command::SetKeyRotation {
                key_id,
                enabled,
                period_days,
                now_ms,
            } => self.set_key_rotation(key_id, *enabled, *period_days, *now_ms, changes),
            Command::RotateKey {
                key_id,
                kind,
                info,
                material,
                now_ms,
            } => self.rotate_key(key_id, *kind, info, material, *now_ms, changes),
            Command::PromotePendingMaterial { key_id, now_ms } => {
                self.promote_pending_material(key_id, *now_ms, changes)
            }
            Command::ImportKeyMaterial {
                key_id,
                import_type,
                requested_material_id,
                commitment,
                version,
                public_key,
                material,
                now_ms,
            } => self.import_key_material(
                key_id,
                material::ImportRequest {
                    import_type: *import_type,
                    requested_material_id: requested_material_id.as_deref(),
                    commitment,
                    version: *version,
                    public_key: public_key.as_deref(),
                    material,
                    now_ms: *now_ms,
                },
                changes,
            ),
            Command::DeleteImportedMaterial {
                key_id,
                material_id,
                expired_at_ms,
            } => self.delete_imported_material(
                key_id,
                material_id.as_deref(),
                *expired_at_ms,
                changes,
            ),
            Command::CreateGrant { grant } => self.create_grant(grant, changes),
            Command::DeleteGrant { key_id, grant_id } => {
                self.delete_grant(key_id, grant_id, changes)
            }
            Command::Audited { call, cmd } => self.audited(call, cmd, changes),
            Command::Deduplicated { request_id, cmd } => {
                self.deduplicated(request_id, cmd, changes)
            }
            other => self.apply_mrk(other, changes),
        }
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
}

fn key_record_key(id: &KeyId) -> Vec<u8> {
    [KEY_PREFIX, id.as_str().as_bytes()].concat()
}

fn alias_record_key(name: &AliasName) -> Vec<u8> {
    [ALIAS_PREFIX, name.as_str().as_bytes()].concat()
}

/// `<prefix><seq>` with the sequence number zero-padded, so records sort by position.
fn seq_record_key(prefix: &[u8], seq: u64) -> Vec<u8> {
    [prefix, format!("{seq:020}").as_bytes()].concat()
}

fn grant_record_key(key_id: &KeyId, grant_id: &str) -> Vec<u8> {
    [
        GRANT_PREFIX,
        key_id.as_str().as_bytes(),
        b"/",
        grant_id.as_bytes(),
    ]
    .concat()
}

/// At most `limit` items of `iter`, and the marker of the next page when there are more.
pub(crate) fn page<T, M>(
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
