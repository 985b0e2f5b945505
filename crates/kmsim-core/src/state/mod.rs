//! The replicated state of one Region and its deterministic `apply`.
//!
//! Every change goes through a [`Command`]: the proposing node decides everything random or
//! time-dependent (key IDs, wrapped material, dates) and puts it into the command; applying a
//! command only reads the command and the current state, and re-checks every state-dependent
//! rule (the key may have changed since the proposer looked). Each applied command also
//! reports the records it changed ([`RecordChange`]) so the storage layer persists exactly
//! those.
//!
//! The state lives in its records: [`KmsState::open`] puts a state over the records a store
//! persisted ([`RecordSource`]), and every read goes to them (through a bounded cache of key
//! records), so memory does not grow with the number of keys. `records` holds that layer,
//! `index` the secondary records kept beside the keys so that the periodic work (due
//! deletions, rotations, expiries; multi-Region synchronization) reads only the keys it
//! concerns.
//!
//! Modules: [`command`] (the commands), `keys` (key lifecycle and aliases), [`material`]
//! (rotation and imported material), `grants`, `mrk` (multi-Region keys: replication,
//! synchronization, primary hand-over, notices), and the audit log.

mod command;
pub mod forwarded;
mod grants;
mod index;
mod keys;
pub mod material;
pub mod mrk;
mod records;
mod requests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mrk;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, DEFAULT_REGION_RETENTION};
use crate::error::KmsError;
use crate::ids::{AliasName, KeyId, KeyRef, Scope};
use crate::key::{KeyRecord, KeyState};
use crate::key_state::{check, Operation};
use crate::sync::Notice;

pub use command::{
    decode_command, decode_result, encode_command, encode_result, Command, CommandOutput,
    CommandResult, RecordChange,
};
pub use forwarded::{
    encode_log_entry, ForwardedCommand, ProposalError, RequestId, MAX_COMMAND_BYTES,
    MAX_ENTRY_BYTES, MAX_NESTING,
};
pub use records::{Record, RecordSource, DEFAULT_KEY_CACHE};
pub use requests::MAX_REMEMBERED_REQUESTS;

use records::{prefix_end, successor, Records};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The largest clock offset the Region applies: a hundred years (of 366 days), so that no
/// date computed from the clock overflows (`AdvanceClock` refuses larger steps first).
pub const MAX_CLOCK_OFFSET_MS: i64 = 100 * 366 * DAY_MS;
/// The most aliases one key may have (AWS's resource quota "Aliases per KMS key").
pub const MAX_ALIASES_PER_KEY: usize = 50;
/// The most customer managed keys one account may have in one Region (AWS's resource quota
/// "AWS KMS keys"; every key of a multi-Region set counts once, in its own Region).
pub const MAX_KEYS_PER_REGION: u64 = 100_000;

/// The Region's resource quotas: AWS's values unless the topology's `[quotas.resources]`
/// changes them. Every node of a Region reads the same topology, so apply, which checks them,
/// stays deterministic. (The key policy size, 32 KiB, is not adjustable in AWS and is not
/// here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceQuotas {
    /// Keys in the Region, in any key state ([`MAX_KEYS_PER_REGION`]).
    pub keys_per_region: u64,
    /// Aliases per key ([`MAX_ALIASES_PER_KEY`]).
    pub aliases_per_key: usize,
    /// Grants per key ([`crate::grant::MAX_GRANTS_PER_KEY`]).
    pub grants_per_key: usize,
}

impl Default for ResourceQuotas {
    fn default() -> Self {
        ResourceQuotas {
            keys_per_region: MAX_KEYS_PER_REGION,
            aliases_per_key: MAX_ALIASES_PER_KEY,
            grants_per_key: crate::grant::MAX_GRANTS_PER_KEY,
        }
    }
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
const GRANT_PREFIX: &[u8] = b"grant/";
const OUTBOX_PREFIX: &[u8] = b"outbox/";
const AUDIT_PREFIX: &[u8] = b"audit/";
const CLOCK_KEY: &[u8] = b"meta/clock";
const THROTTLES_KEY: &[u8] = b"meta/throttles";
/// The cluster's IAM at the newest version this Region holds (absent: version 0, the
/// topology's).
const IAM_KEY: &[u8] = b"meta/iam";
const COUNTERS_KEY: &[u8] = b"meta/counters";
/// How many keys the Region has in each key state.
const KEY_STATES_KEY: &[u8] = b"meta/key-states";
/// The layout version of the records (u32); absent before the indexes existed.
const SCHEMA_KEY: &[u8] = b"meta/schema";
/// The layout this version writes: 2 added `meta/key-states` and the `idx/` records.
const SCHEMA: u32 = 2;

/// Sequence counters of the outbox and the audit log (persisted, so positions are never
/// reused after entries are dropped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    next_notice: u64,
    next_audit: u64,
}

/// The replicated state of one Region.
#[derive(Debug)]
pub struct KmsState {
    scope: Scope,
    /// Keys, aliases, grants, notices to other Regions, audit events, indexes.
    records: Records,
    /// How many audit events the Region keeps (`[audit] region_retention_events`; the same on
    /// every node, since every node reads the same topology).
    audit_retention: usize,
    counters: Counters,
    /// Position of the oldest audit event held (events are dropped oldest first, so the held
    /// ones are `audit_first..counters.next_audit`).
    audit_first: u64,
    /// Keys by key state (states with none left out).
    key_states: BTreeMap<KeyState, u64>,
    clock_offset_ms: i64,
    /// The Region's run-time request quotas (`Command::SetThrottle`).
    throttles: Throttles,
    /// The cluster's IAM as this Region holds it (`Command::SetIam`; `None`: version 0).
    iam: Option<crate::iam::VersionedIam>,
    /// The resource quotas apply checks.
    quotas: ResourceQuotas,
    /// Recent forwarded writes by request ID, applied once each (bounded, held in memory).
    requests: requests::Requests,
    /// What authorization reads changed: see [`KmsState::authorization_version`].
    authz: AuthzVersions,
}

/// The run-time request quotas of a Region (`kmsim chaos throttle`), as Raft replicates them:
/// rates in requests per second by quota name, and one for every operation. The node's
/// `quotas` module enforces them over the topology's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttles {
    /// Rates set for one quota, by its name.
    pub by_quota: BTreeMap<String, f64>,
    /// A rate set for every operation.
    pub every_operation: Option<f64>,
}

impl Throttles {
    /// Sets (`Some`) or clears (`None`) the rate of `quota`, or of every operation (`None`);
    /// clearing with no name clears every rate. A rate must be a finite number, 0 or more.
    pub fn set(&mut self, quota: Option<&str>, rate: Option<f64>) -> Result<(), KmsError> {
        if let Some(r) = rate {
            if !r.is_finite() || r < 0.0 {
                return Err(KmsError::Validation(format!(
                    "the rate must be a number of requests per second, 0 or more (got {r})"
                )));
            }
        }
        match (quota, rate) {
            (Some(q), Some(r)) => {
                self.by_quota.insert(q.to_string(), r);
            }
            (Some(q), None) => {
                self.by_quota.remove(q);
            }
            (None, Some(r)) => self.every_operation = Some(r),
            (None, None) => *self = Throttles::default(),
        }
        Ok(())
    }
}

/// Versions of what authorization reads, so decisions can be cached (`kmsim-node`'s
/// `kms::authorize`): one for every key an applied command named (its record: policy, tags,
/// spec, multi-Region properties; its grants; the aliases it gains), and one for the Region
/// (commands that name no key, and alias changes, which also change the key an alias leaves).
/// Held in memory, never persisted: every value comes from one process-wide counter, so a
/// value is never given twice in a process, not even after the state is reopened (a snapshot
/// installed), when the Region's version changes and the keys' are forgotten.
#[derive(Debug)]
struct AuthzVersions {
    region: u64,
    keys: HashMap<KeyId, u64>,
}

impl AuthzVersions {
    fn next() -> u64 {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn new() -> AuthzVersions {
        AuthzVersions {
            region: AuthzVersions::next(),
            keys: HashMap::new(),
        }
    }

    /// Records that `cmd` was applied (whether or not it changed anything).
    fn applied(&mut self, cmd: &Command) {
        let mut inner = cmd;
        while let Command::Audited { cmd, .. } | Command::Deduplicated { cmd, .. } = inner {
            inner = cmd;
        }
        let alias = matches!(
            inner,
            Command::CreateAlias { .. } | Command::UpdateAlias { .. } | Command::DeleteAlias { .. }
        );
        match inner.key_id() {
            Some(id) if !alias => {
                self.keys.insert(id.clone(), AuthzVersions::next());
            }
            _ => self.region = AuthzVersions::next(),
        }
    }
}

impl KmsState {
    /// An empty Region whose records are held in memory (for tests and tools); a node opens
    /// its state over the store's records with [`open`](Self::open).
    pub fn new(scope: Scope) -> KmsState {
        KmsState {
            scope,
            records: Records::memory(DEFAULT_KEY_CACHE),
            audit_retention: DEFAULT_REGION_RETENTION,
            counters: Counters::default(),
            audit_first: 0,
            key_states: BTreeMap::new(),
            clock_offset_ms: 0,
            throttles: Throttles::default(),
            iam: None,
            quotas: ResourceQuotas::default(),
            requests: requests::Requests::default(),
            authz: AuthzVersions::new(),
        }
    }

    /// The version of what authorizing a request on key `id` reads from this state: the
    /// key's record, its grants, its aliases. It changes whenever one of them may have (and
    /// sometimes when none did); two reads that give the same version saw the same of all
    /// three. Read it under the same lock as the things it versions.
    pub fn authorization_version(&self, id: &KeyId) -> (u64, u64) {
        (
            self.authz.region,
            self.authz.keys.get(id).copied().unwrap_or(0),
        )
    }

    /// Sets the resource quotas apply checks (AWS's by default). Applies from the next
    /// command: keys, aliases and grants already held are kept even beyond a lower quota.
    pub fn with_resource_quotas(mut self, quotas: ResourceQuotas) -> KmsState {
        self.quotas = quotas;
        self
    }

    /// The resource quotas apply checks.
    pub fn resource_quotas(&self) -> ResourceQuotas {
        self.quotas
    }

    /// `LimitExceededException` when the Region holds as many keys as its quota allows, so
    /// one more (a new key, or a replica arriving from another Region) would exceed it. The
    /// message is the one AWS answered CreateKey with (recorded in a public CI log).
    pub fn key_room(&self) -> Result<(), KmsError> {
        let usage = self.key_count() as u64;
        if usage >= self.quotas.keys_per_region {
            return Err(KmsError::LimitExceeded(format!(
                "Key quota for this account in this region is {} but the current usage is {usage}.",
                self.quotas.keys_per_region
            )));
        }
        Ok(())
    }

    /// Sets how many audit events the Region keeps (at least 1). Applies from the next event
    /// recorded, which also drops any excess.
    pub fn with_audit_retention(mut self, events: usize) -> KmsState {
        self.audit_retention = events.max(1);
        self
    }

    /// Sets how many decoded key records the state caches (at least 1).
    pub fn with_key_cache(mut self, keys: usize) -> KmsState {
        self.records = Records::memory(keys);
        self
    }

    /// How many audit events retention has dropped from the Region's log so far (all events
    /// ever recorded minus those still held).
    pub fn audit_dropped(&self) -> u64 {
        self.audit_first
    }

    /// The Region, partition and account this state belongs to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The simulated clock's offset from the host clock, in ms.
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// The Region's run-time request quotas (`kmsim chaos throttle`).
    pub fn throttles(&self) -> &Throttles {
        &self.throttles
    }

    /// The cluster's IAM as this Region holds it (`None`: version 0, the topology's).
    pub fn iam(&self) -> Option<&crate::iam::VersionedIam> {
        self.iam.as_ref()
    }

    /// The version of the IAM this Region holds (0: the topology's).
    pub fn iam_version(&self) -> u64 {
        self.iam.as_ref().map_or(0, |i| i.version)
    }

    /// Puts the state over the records in `source`, dropping whatever it held: on start and
    /// after a snapshot install. Returns the records to write at once: the indexes and key
    /// count when the records come from a version that had none.
    pub fn open(&mut self, source: Arc<dyn RecordSource>) -> Result<Vec<RecordChange>, String> {
        self.records.open(source);
        self.authz = AuthzVersions::new();
        self.counters = self
            .records
            .get_as(COUNTERS_KEY, "counters")
            .unwrap_or_default();
        self.clock_offset_ms = self.records.get_as(CLOCK_KEY, "clock").unwrap_or(0);
        self.throttles = self
            .records
            .get_as(THROTTLES_KEY, "throttles")
            .unwrap_or_default();
        self.iam = self.records.get_as(IAM_KEY, "iam");
        self.requests.clear();
        self.records.for_each(
            requests::REQUEST_PREFIX,
            &prefix_end(requests::REQUEST_PREFIX),
            |k, v| {
                if let Some(rec) = self.records.decode(k, v, "request") {
                    self.requests.load(rec);
                }
                true
            },
        );
        self.audit_first = self.counters.next_audit;
        self.records
            .for_each(AUDIT_PREFIX, &prefix_end(AUDIT_PREFIX), |k, v| {
                if let Some(rec) = self.records.decode::<AuditRecord>(k, v, "audit") {
                    self.audit_first = rec.seq;
                }
                false
            });
        let schema: u32 = self.records.get_as(SCHEMA_KEY, "schema").unwrap_or(1);
        let mut changes = Vec::new();
        if schema < SCHEMA {
            self.build_indexes(&mut changes);
        } else {
            self.key_states = self
                .records
                .get_as(KEY_STATES_KEY, "key states")
                .unwrap_or_default();
        }
        match self.records.fault() {
            Some(fault) => Err(fault.to_string()),
            None => Ok(changes),
        }
    }

    /// Writes the key counts and the indexes of records from a layout before [`SCHEMA`] 2.
    fn build_indexes(&mut self, changes: &mut Vec<RecordChange>) {
        let mut keys = Vec::new();
        self.records
            .for_each(KEY_PREFIX, &prefix_end(KEY_PREFIX), |k, v| {
                keys.extend(self.records.decode::<KeyRecord>(k, v, "key"));
                true
            });
        let mut aliases = Vec::new();
        self.records
            .for_each(ALIAS_PREFIX, &prefix_end(ALIAS_PREFIX), |k, v| {
                aliases.extend(self.records.decode::<AliasRecord>(k, v, "alias"));
                true
            });
        self.key_states.clear();
        for key in &keys {
            *self.key_states.entry(key.regional.state).or_default() += 1;
            for entry in index::key_entries(key, &self.scope.region) {
                self.records.put(entry, Vec::new(), changes);
            }
        }
        for alias in &aliases {
            self.records
                .put(index::alias_entry(alias), Vec::new(), changes);
        }
        self.records
            .put_encoded(KEY_STATES_KEY.to_vec(), &self.key_states, changes);
        self.records
            .put_encoded(SCHEMA_KEY.to_vec(), &SCHEMA, changes);
    }

    /// The writes reported by every `apply` so far are persisted where the state reads.
    pub fn persisted(&mut self) {
        self.records.persisted();
    }

    /// The first storage failure (a record that could not be read or decoded) since the state
    /// was opened. Every answer computed since is to be discarded: a read that failed looked
    /// like an absent record.
    pub fn storage_fault(&self) -> Option<&str> {
        self.records.fault()
    }

    // ---- reads ----

    /// The key with this ID.
    pub fn key(&self, id: &KeyId) -> Option<Arc<KeyRecord>> {
        self.records.key(id, &key_record_key(id))
    }

    /// The alias with this name.
    pub fn alias(&self, name: &AliasName) -> Option<AliasRecord> {
        self.records.get_as(&alias_record_key(name), "alias")
    }

    /// The ARN of a key of this Region.
    pub fn arn(&self, id: &KeyId) -> String {
        self.scope.key_arn(id)
    }

    /// Resolves a parsed reference to a key of this Region, with AWS's "not found" messages.
    pub fn resolve(&self, r: &KeyRef) -> Result<Arc<KeyRecord>, KmsError> {
        match r {
            KeyRef::Key(id) => self.existing(id),
            KeyRef::Alias(name) => {
                let alias = self.alias(name).ok_or_else(|| self.alias_not_found(name))?;
                self.existing(&alias.target)
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

    fn existing(&self, id: &KeyId) -> Result<Arc<KeyRecord>, KmsError> {
        self.key(id).ok_or_else(|| self.key_not_found(id))
    }

    /// Decodes the records of `[from, to)` as `what`, in order, while `keep` says so.
    fn decode_range<T: serde::de::DeserializeOwned>(
        &self,
        from: &[u8],
        to: &[u8],
        what: &str,
        mut keep: impl FnMut(T) -> bool,
    ) {
        self.records.for_each(from, to, |k, v| {
            self.records.decode::<T>(k, v, what).is_none_or(&mut keep)
        });
    }

    /// Keys in key-ID order after `marker`, at most `limit`; the marker of the next page if any.
    pub fn list_keys(
        &self,
        after: Option<&KeyId>,
        limit: usize,
    ) -> (Vec<Arc<KeyRecord>>, Option<KeyId>) {
        let from = match after {
            Some(m) => successor(&key_record_key(m)),
            None => KEY_PREFIX.to_vec(),
        };
        let mut keys = Vec::new();
        self.decode_range(&from, &prefix_end(KEY_PREFIX), "key", |k: KeyRecord| {
            keys.push(Arc::new(k));
            keys.len() <= limit
        });
        page(keys.into_iter(), limit, |k| k.key_id.clone())
    }

    /// Aliases in name order after `after` (optionally only those of one key).
    pub fn list_aliases(
        &self,
        target: Option<&KeyId>,
        after: Option<&AliasName>,
        limit: usize,
    ) -> (Vec<AliasRecord>, Option<AliasName>) {
        let aliases = match target {
            Some(id) => self
                .aliases_of(id)
                .into_iter()
                .filter(|a| after.is_none_or(|m| &a.name > m))
                .take(limit.saturating_add(1))
                .collect(),
            None => {
                let from = match after {
                    Some(m) => successor(&alias_record_key(m)),
                    None => ALIAS_PREFIX.to_vec(),
                };
                let mut aliases = Vec::new();
                self.decode_range(&from, &prefix_end(ALIAS_PREFIX), "alias", |a| {
                    aliases.push(a);
                    aliases.len() <= limit
                });
                aliases
            }
        };
        page(aliases.into_iter(), limit, |a| a.name.clone())
    }

    /// The aliases pointing at a key, in name order.
    pub fn aliases_of(&self, id: &KeyId) -> Vec<AliasRecord> {
        index::aliases_of(&self.records, id)
            .iter()
            .filter_map(|name| self.records.get_as(&[ALIAS_PREFIX, name].concat(), "alias"))
            .collect()
    }

    /// The keys the index lists as due at or before `now_ms`, each loaded once.
    fn due_keys(&self, now_ms: i64) -> Vec<Arc<KeyRecord>> {
        index::due_until(&self.records, now_ms)
            .iter()
            .filter_map(|id| self.key(id))
            .collect()
    }

    /// Keys whose deletion date has passed at `now_ms`.
    pub fn expired_keys(&self, now_ms: i64) -> Vec<KeyId> {
        self.due_keys(now_ms)
            .into_iter()
            .filter(|k| k.regional.state == KeyState::PendingDeletion)
            .filter(|k| k.regional.deletion_ms.is_some_and(|d| d <= now_ms))
            .map(|k| k.key_id.clone())
            .collect()
    }

    /// Number of keys.
    pub fn key_count(&self) -> usize {
        let total: u64 = self.key_states.values().sum();
        usize::try_from(total).unwrap_or(usize::MAX)
    }

    /// Number of keys in each key state (states with no key left out).
    pub fn keys_by_state(&self) -> &BTreeMap<KeyState, u64> {
        &self.key_states
    }

    /// The keys the synchronizer may have work for: the multi-Region keys whose primary is in
    /// this Region, and the keys handing their primary over to another Region.
    pub fn sync_keys(&self) -> Vec<Arc<KeyRecord>> {
        index::sync_keys(&self.records)
            .iter()
            .filter_map(|id| self.key(id))
            .collect()
    }

    /// The notices waiting to be delivered, oldest first.
    pub fn outbox(&self) -> Vec<Notice> {
        let mut notices = Vec::new();
        self.decode_range(OUTBOX_PREFIX, &prefix_end(OUTBOX_PREFIX), "outbox", |n| {
            notices.push(n);
            true
        });
        notices
    }

    /// The notice at position `seq`, if still waiting.
    pub fn notice(&self, seq: u64) -> Option<Notice> {
        self.records
            .get_as(&seq_record_key(OUTBOX_PREFIX, seq), "outbox")
    }

    /// Audit events after position `after`, optionally of one key, at most `limit`.
    pub fn audit_events(
        &self,
        key_id: Option<&KeyId>,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<AuditRecord> {
        let from = match after {
            Some(a) => successor(&seq_record_key(AUDIT_PREFIX, a)),
            None => AUDIT_PREFIX.to_vec(),
        };
        let mut events = Vec::new();
        if limit == 0 {
            return events;
        }
        self.decode_range(
            &from,
            &prefix_end(AUDIT_PREFIX),
            "audit",
            |r: AuditRecord| {
                if key_id.is_none_or(|k| r.key_id.as_ref() == Some(k)) {
                    events.push(r);
                }
                events.len() < limit
            },
        );
        events
    }

    fn put_counters(&mut self, changes: &mut Vec<RecordChange>) {
        self.records
            .put_encoded(COUNTERS_KEY.to_vec(), &self.counters, changes);
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
        self.records
            .put_encoded(seq_record_key(AUDIT_PREFIX, seq), &rec, changes);
        while self.counters.next_audit - self.audit_first > self.audit_retention as u64 {
            self.records
                .delete(seq_record_key(AUDIT_PREFIX, self.audit_first), changes);
            self.audit_first += 1;
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
        self.records
            .put_encoded(seq_record_key(OUTBOX_PREFIX, seq), &notice, changes);
    }

    /// Drops a delivered notice.
    pub(crate) fn drop_notice(&mut self, seq: u64, changes: &mut Vec<RecordChange>) {
        if self.notice(seq).is_some() {
            self.records
                .delete(seq_record_key(OUTBOX_PREFIX, seq), changes);
        }
    }

    /// Points a queued notice at another Region.
    pub(crate) fn retarget_notice(
        &mut self,
        seq: u64,
        to: crate::ids::Region,
        changes: &mut Vec<RecordChange>,
    ) {
        if let Some(mut n) = self.notice(seq) {
            n.to = to;
            self.records
                .put_encoded(seq_record_key(OUTBOX_PREFIX, seq), &n, changes);
        }
    }

    // ---- writes ----

    /// Applies one command; returns its result and the records to persist.
    pub fn apply(&mut self, cmd: &Command) -> (CommandResult, Vec<RecordChange>) {
        let mut changes = Vec::new();
        let result = self.apply_inner(cmd, &mut changes);
        self.authz.applied(cmd);
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
                    self.records
                        .put_encoded(CLOCK_KEY.to_vec(), &self.clock_offset_ms, changes);
                }
                Ok(CommandOutput::ClockOffset(self.clock_offset_ms))
            }
            Command::SetThrottle { quota, rate } => {
                self.throttles.set(quota.as_deref(), *rate)?;
                self.records
                    .put_encoded(THROTTLES_KEY.to_vec(), &self.throttles, changes);
                Ok(CommandOutput::Done)
            }
            Command::SetIam {
                base,
                version,
                document,
            } => {
                if crate::iam::VersionedIam::set(&mut self.iam, *base, *version, document)? {
                    if let Some(held) = &self.iam {
                        self.records.put_encoded(IAM_KEY.to_vec(), held, changes);
                    }
                }
                Ok(CommandOutput::IamVersion(self.iam_version()))
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

    /// Stores a key record (new or changed), with its index entries and the key count.
    fn put_key(&mut self, key: KeyRecord, changes: &mut Vec<RecordChange>) -> CommandOutput {
        let before = self.key(&key.key_id);
        let out = CommandOutput::Key(Box::new(key.clone()));
        let key = Arc::new(key);
        self.reindex_key(before.as_deref(), Some(&key), changes);
        self.count_keys(before.as_deref(), Some(&key), changes);
        self.records
            .put_key(key_record_key(&key.key_id), key, changes);
        out
    }

    /// Deletes a key record, with its index entries, and counts it out; returns it.
    fn delete_key(
        &mut self,
        id: &KeyId,
        changes: &mut Vec<RecordChange>,
    ) -> Option<Arc<KeyRecord>> {
        let gone = self.key(id)?;
        self.reindex_key(Some(&gone), None, changes);
        self.count_keys(Some(&gone), None, changes);
        self.records.delete_key(id, key_record_key(id), changes);
        Some(gone)
    }

    /// Replaces the index entries of key record `before` with those of `after`.
    fn reindex_key(
        &mut self,
        before: Option<&KeyRecord>,
        after: Option<&KeyRecord>,
        changes: &mut Vec<RecordChange>,
    ) {
        let entries = |k: Option<&KeyRecord>| -> BTreeSet<Vec<u8>> {
            k.map(|k| index::key_entries(k, &self.scope.region))
                .unwrap_or_default()
        };
        let (old, new) = (entries(before), entries(after));
        for gone in old.difference(&new) {
            self.records.delete(gone.clone(), changes);
        }
        for added in new.difference(&old) {
            self.records.put(added.clone(), Vec::new(), changes);
        }
    }

    /// Moves the key counts from key record `before`'s state to `after`'s.
    fn count_keys(
        &mut self,
        before: Option<&KeyRecord>,
        after: Option<&KeyRecord>,
        changes: &mut Vec<RecordChange>,
    ) {
        let (from, to) = (
            before.map(|k| k.regional.state),
            after.map(|k| k.regional.state),
        );
        if from == to {
            return;
        }
        if let Some(state) = from {
            if let Some(n) = self.key_states.get_mut(&state) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.key_states.remove(&state);
                }
            }
        }
        if let Some(state) = to {
            *self.key_states.entry(state).or_default() += 1;
        }
        self.records
            .put_encoded(KEY_STATES_KEY.to_vec(), &self.key_states, changes);
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
        let mut key = KeyRecord::clone(&current);
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
    [grants_prefix(key_id).as_slice(), grant_id.as_bytes()].concat()
}

/// `grant/<key ID>/`: the prefix of one key's grants.
fn grants_prefix(key_id: &KeyId) -> Vec<u8> {
    [GRANT_PREFIX, key_id.as_str().as_bytes(), b"/"].concat()
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
