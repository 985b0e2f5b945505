//! The replicated commands of one Region and what applying them returns.
//!
//! A command is decided completely by the node that proposes it: key IDs, new material
//! (already wrapped under the domain key), grant IDs and every date travel inside it, so that
//! applying a command only reads the command and the current state.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::audit::ApiCall;
use crate::error::KmsError;
use crate::grant::GrantRecord;
use crate::ids::{AliasName, KeyId, Region};
use crate::key::{
    ImportType, KeyRecord, MaterialInfo, RegionalMaterial, ReplicaSpec, RotationType, SharedProps,
    Tag,
};
use crate::sync::{NoticeKind, SyncReply};

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
    /// Deletes a key whose waiting period has ended, with its aliases and grants. Proposed by
    /// the leader's lifecycle task; a no-op unless the key is still pending deletion and due at
    /// `now_ms`.
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
    /// EnableKeyRotation / DisableKeyRotation.
    SetKeyRotation {
        /// The key.
        key_id: KeyId,
        /// Enable (true) or disable.
        enabled: bool,
        /// `RotationPeriodInDays` given to EnableKeyRotation (already range-checked).
        period_days: Option<u32>,
        /// When the request was made, in ms.
        now_ms: i64,
    },
    /// A rotation to new, generated material: automatic (proposed by the leader's lifecycle
    /// task, a no-op unless still due) or on demand (RotateKeyOnDemand on an AWS_KMS key).
    RotateKey {
        /// The key.
        key_id: KeyId,
        /// Automatic or on demand.
        kind: RotationType,
        /// The new version (its number must be the key's next version, else the command is
        /// stale and changes nothing).
        info: MaterialInfo,
        /// The new material, wrapped under the domain key.
        material: RegionalMaterial,
        /// When the rotation was requested, in ms.
        now_ms: i64,
    },
    /// RotateKeyOnDemand on an EXTERNAL key: the imported material pending rotation becomes
    /// current.
    PromotePendingMaterial {
        /// The key.
        key_id: KeyId,
        /// When the request was made, in ms.
        now_ms: i64,
    },
    /// ImportKeyMaterial (material already unwrapped from the import wrapping, checked, and
    /// wrapped under the domain key).
    ImportKeyMaterial {
        /// The key.
        key_id: KeyId,
        /// `ImportType` as requested (`None`: NEW for a first import, else EXISTING).
        import_type: Option<ImportType>,
        /// `KeyMaterialId` as requested (only with EXISTING_KEY_MATERIAL).
        requested_material_id: Option<String>,
        /// The commitment to the imported material (its KeyMaterialId).
        commitment: String,
        /// The version the proposer wrapped the material for (the wrap binds it); if the key
        /// changed meanwhile and the material would land in another version, the command fails
        /// with a conflict instead.
        version: u32,
        /// The public key of imported asymmetric material (DER SubjectPublicKeyInfo).
        public_key: Option<Vec<u8>>,
        /// The material and the terms of its import.
        material: RegionalMaterial,
        /// When the request was made, in ms.
        now_ms: i64,
    },
    /// DeleteImportedKeyMaterial, or the expiry of imported material at its `ValidTo`
    /// (`expired_at_ms`: proposed by the lifecycle task, a no-op unless still due).
    DeleteImportedMaterial {
        /// The key.
        key_id: KeyId,
        /// `KeyMaterialId` to delete (`None`: the current material).
        material_id: Option<String>,
        /// Set when this is an expiry: the time the task observed.
        expired_at_ms: Option<i64>,
    },
    /// CreateGrant (grant ID and date decided by the proposer).
    CreateGrant {
        /// The new grant.
        grant: GrantRecord,
    },
    /// RetireGrant / RevokeGrant.
    DeleteGrant {
        /// The grant's key.
        key_id: KeyId,
        /// The grant.
        grant_id: String,
    },
    /// A management API call to record in the Region's audit log once `cmd` succeeds.
    Audited {
        /// The call, as the proposing node saw it.
        call: ApiCall,
        /// The command the call made (never itself a wrapper: decoding bounds the nesting,
        /// apply refuses a wrapper inside).
        #[serde(deserialize_with = "super::forwarded::nested")]
        cmd: Box<Command>,
    },
    /// ReplicateKey, on the primary's Region: the replica joins the set (state `Creating`
    /// until its Region has created it) and the synchronizer starts delivering it.
    ReplicateKey {
        /// The primary key.
        key_id: KeyId,
        /// The replica's Region.
        replica: Region,
        /// Its Regional properties, from the request.
        spec: ReplicaSpec,
    },
    /// A synchronization received from another Region (authenticated, material unwrapped
    /// from the transport wrap and wrapped under this Region's domain key). Applied only when
    /// its (epoch, version) is newer than what this Region holds.
    ApplySync {
        /// The key.
        key_id: KeyId,
        /// The sending Region.
        source: Region,
        /// The sender's shared properties.
        shared: SharedProps,
        /// The material versions, wrapped under this Region's domain key.
        materials: BTreeMap<u32, RegionalMaterial>,
        /// Create the replica with these Regional properties if it does not exist.
        create: Option<ReplicaSpec>,
        /// This Region becomes the primary.
        promote: bool,
        /// When the receiving node took the message, ms.
        now_ms: i64,
    },
    /// ReplicateKey reached this replica Region during the request: the replica is created
    /// in state `Creating` (or found so, for a retry of the same primary).
    CreateReplica {
        /// The key.
        key_id: KeyId,
        /// The primary's Region (the sender).
        source: Region,
        /// The set's shared properties as the primary sent them.
        shared: Box<SharedProps>,
        /// The replica's Regional properties.
        spec: ReplicaSpec,
        /// When the receiving node took the request, ms (the replica's creation date).
        now_ms: i64,
    },
    /// ReplicateKey failed in the primary's Region: remove the replica if it is still
    /// `Creating` for that primary.
    AbandonReplica {
        /// The key.
        key_id: KeyId,
        /// The primary's Region (the sender).
        source: Region,
        /// When, ms.
        now_ms: i64,
    },
    /// The primary's record that a replica Region acknowledged (epoch, version).
    SyncAcked {
        /// The key.
        key_id: KeyId,
        /// The replica's Region.
        region: Region,
        /// What it acknowledged.
        stamp: (u64, u64),
    },
    /// A replica Region that no longer holds the key (deleted there) leaves the set.
    ReplicaGone {
        /// The key.
        key_id: KeyId,
        /// The Region.
        region: Region,
        /// When the primary learned it, ms (a primary pending replica deletion starts its
        /// window then).
        now_ms: i64,
    },
    /// A notice of a replica Region, received by the primary Region.
    ApplyNotice {
        /// The key.
        key_id: KeyId,
        /// The replica's Region.
        from: Region,
        /// What it says.
        kind: NoticeKind,
        /// When it was received, ms.
        now_ms: i64,
    },
    /// A queued notice was delivered (or is moot): drop it from the outbox.
    NoticeDone {
        /// Its outbox position.
        seq: u64,
    },
    /// A queued notice reached a Region that is no longer primary: send it to `to` instead.
    NoticeRetarget {
        /// Its outbox position.
        seq: u64,
        /// The primary as the receiver knows it.
        to: Region,
    },
    /// Every replica holds the material pending rotation: it becomes current.
    PromoteRotation {
        /// The key.
        key_id: KeyId,
        /// The pending version.
        version: u32,
        /// When, ms.
        now_ms: i64,
    },
    /// UpdatePrimaryRegion on the old primary: demote and fence it (state `Updating`, the new
    /// primary named, epoch + 1) before the new primary is told.
    BeginHandover {
        /// The key.
        key_id: KeyId,
        /// The Region to promote.
        to: Region,
    },
    /// The hand-over's answer came back: the old primary leaves `Updating`; if the promotion
    /// was refused it becomes primary again, with a newer epoch than the refused one.
    EndHandover {
        /// The key.
        key_id: KeyId,
        /// The epoch of the hand-over this answers.
        epoch: u64,
        /// Whether the destination took over.
        promoted: bool,
    },
    /// A write a follower forwarded to the leader, with the ID the follower gave it: applied
    /// once; a retried forward with the same ID answers the first result
    /// ([`super::forwarded`]). Added last so that every older log entry decodes as before.
    Deduplicated {
        /// The ID the forwarding node chose (random, 128 bits).
        request_id: super::forwarded::RequestId,
        /// The forwarded command (an `Audited` one at most; never another `Deduplicated`).
        #[serde(deserialize_with = "super::forwarded::nested")]
        cmd: Box<Command>,
    },
    /// Sets (`rate: Some`, requests per second, 0 or more) or clears (`None`) a run-time
    /// request quota of the Region (`kmsim chaos throttle`): the quota named (an operation or
    /// a shared quota; the proposer checks the name), or with no name every operation's;
    /// clearing with no name clears every run-time rate. Replicated so that a restarted node
    /// enforces it too. Added last so that every older log entry decodes as before.
    SetThrottle {
        /// The quota, `None` for every operation.
        quota: Option<String>,
        /// The rate, `None` to clear.
        rate: Option<f64>,
    },
    /// A new version of the cluster's IAM ([`crate::iam`]): written in the IAM home Region on
    /// `base` (compare-and-set: `ConflictException` unless `base` is the version held and
    /// `version` is `base + 1`), or received from the home Region (`base: None`: taken only
    /// when newer than what this Region holds). Answers the version held after it. Added last
    /// so that every older log entry decodes as before.
    SetIam {
        /// The version this write was built on; `None` for a version from the home Region.
        base: Option<u64>,
        /// The new version.
        version: u64,
        /// The whole document (access keys' secrets sealed).
        document: Box<crate::iam::IamDocument>,
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
    /// The grant ID CreateGrant settled on (an existing one for an idempotent retry by name).
    Grant(String),
    /// The answer to another Region's synchronization or notice.
    Sync(SyncReply),
    /// The IAM version the Region holds after a `SetIam`.
    IamVersion(u64),
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

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("invariant: in-memory records always encode")
}

/// Encodes a command for the Raft log.
pub fn encode_command(cmd: &Command) -> Vec<u8> {
    encode(cmd)
}

/// Decodes a command from the Raft log: at most [`MAX_COMMAND_BYTES`](super::MAX_COMMAND_BYTES),
/// wrappers nested at most [`MAX_NESTING`](super::MAX_NESTING) deep (a hostile entry is an
/// error result, never a stack overflow).
pub fn decode_command(bytes: &[u8]) -> Result<Command, KmsError> {
    super::forwarded::decode_bounded(bytes, super::forwarded::MAX_ENTRY_BYTES)
        .map_err(|e| KmsError::Internal(format!("undecodable command: {e}")))
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
