//! What one Region tells another about a multi-Region key, and what it answers. These are the
//! payloads of `kmsim.sync.v1` (postcard-encoded); the node authenticates and transport-wraps
//! them (`kmsim-node/src/sync`), and the receiving Region applies them through its own Raft
//! (`Command::ApplySync` and friends).

use serde::{Deserialize, Serialize};

use crate::ids::{KeyId, Region};
use crate::key::{ReplicaSpec, SharedProps};

/// A message from one Region to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// The primary's shared properties of a key (material descriptors included; the material
    /// itself travels transport-wrapped beside the message). `create` when the destination
    /// has to create its replica; `promote` when the destination becomes the primary.
    Key {
        /// The key.
        key_id: KeyId,
        /// The shared properties as the sender holds them (boxed: they are large).
        shared: Box<SharedProps>,
        /// The Regional properties of a replica to create.
        create: Option<ReplicaSpec>,
        /// UpdatePrimaryRegion: the destination takes over as primary at `shared.mrk.epoch`.
        promote: bool,
        /// Where and when the change this message carries was committed, when the sending
        /// leader knows it (it was the leader then): for the receiver's lag metric and trace.
        origin: Option<ChangeOrigin>,
    },
    /// ReplicateKey, during the request: the destination checks that it can hold the replica
    /// (the key ID is free there, or already a replica of this primary being created; the
    /// policy and tags are valid) and commits it in state `Creating`, with these shared
    /// properties (the set as it will be, the destination listed) and its Regional
    /// properties. No material: that follows with an ordinary synchronization.
    CreateReplica {
        /// The key.
        key_id: KeyId,
        /// The set's shared properties with the destination among the replicas, at the stamp
        /// the primary held before its own commit (so any later synchronization is newer).
        shared: Box<SharedProps>,
        /// The replica's Regional properties.
        spec: ReplicaSpec,
    },
    /// ReplicateKey failed in the primary's Region after the destination had created the
    /// replica: the destination removes it if it is still `Creating` for this primary.
    AbandonReplica {
        /// The key.
        key_id: KeyId,
    },
    /// UpdatePrimaryRegion, before the hand-over begins: the destination judges the caller's
    /// request against its own related key (that key's policy and grants, which only its
    /// Region holds) and answers [`SyncReply::Authorized`] or [`SyncReply::Refused`].
    Authorize {
        /// The key.
        key_id: KeyId,
        /// The operation (`UpdatePrimaryRegion`; nothing else is asked).
        operation: String,
        /// The caller's principal ARN, as the sending Region authenticated it.
        principal_arn: String,
        /// The caller's address (`aws:SourceIp`).
        source_ip: Option<String>,
        /// Whether the caller used the gRPC face (else AWS JSON), for `aws:SecureTransport`.
        grpc: bool,
        /// The request's members, AWS JSON text.
        request: String,
    },
    /// A replica Region's notice to the primary Region.
    Notice {
        /// The key.
        key_id: KeyId,
        /// The replica's Region.
        from: Region,
        /// What happened.
        kind: NoticeKind,
    },
    /// The cluster's IAM at `version`, sent by the IAM home Region's synchronizer to every
    /// other Region (again at the anti-entropy pace). The receiver takes it only from the home
    /// Region and only when newer than what it holds, and answers [`SyncReply::Applied`] with
    /// epoch 0 and the version it holds. Travels in an envelope naming [`IAM_ENVELOPE_ID`].
    /// Added last so that older messages decode as before.
    Iam {
        /// The version.
        version: u64,
        /// The whole document (access keys' secrets sealed under the cluster's STS key).
        document: Box<crate::iam::IamDocument>,
    },
}

/// What the envelope of a [`SyncMessage::Iam`] names in place of a key ID.
pub const IAM_ENVELOPE_ID: &str = "iam";

/// The commit of a change on the primary's Region, as a [`SyncMessage::Key`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOrigin {
    /// The W3C `traceparent` of the request that made the change (none for the leader's own
    /// tasks, such as automatic rotation).
    pub traceparent: Option<String>,
    /// When the sending Region's leader committed it: host wall-clock time in ms since the Unix
    /// epoch (not the Region's simulated clock, whose offset an experiment may skew).
    pub committed_unix_ms: u64,
}

/// What a replica Region reports to its primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    /// The replica was deleted at the end of its waiting period.
    ReplicaDeleted,
    /// The replica imported this material (an EXTERNAL key's replicas import their own).
    MaterialImported {
        /// Its KeyMaterialId.
        material_id: String,
    },
    /// The replica has been `Creating` for a while: does the primary list it? The primary
    /// answers [`SyncReply::Noted`] when it does, [`SyncReply::UnknownKey`] when it does not
    /// (the ReplicateKey that created it never committed there), and the replica Region then
    /// takes the record back. Asked, not queued: the replica's synchronizer sends it while the
    /// record stays `Creating`.
    ReplicaCreating,
}

/// The receiver's answer to a [`SyncMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncReply {
    /// Applied, or already held: the (epoch, version) of the key the receiver now holds.
    Applied {
        /// Primary epoch.
        epoch: u64,
        /// Shared-property version.
        version: u64,
    },
    /// The receiver holds no such key and was not asked to create it (it was deleted there).
    UnknownKey,
    /// The destination refused to become primary.
    PromotionRefused {
        /// Why.
        reason: String,
    },
    /// A notice reached a Region that is not the key's primary; the primary it knows of.
    NotPrimary {
        /// The primary as the receiver knows it.
        primary: Option<Region>,
    },
    /// The notice was taken (applied or already known).
    Noted,
    /// `CreateReplica`: the replica is committed in state `Creating` (now or by an earlier
    /// request of the same primary).
    ReplicaCreating {
        /// Its creation date in the destination Region, ms.
        creation_ms: i64,
    },
    /// `Authorize`: the destination's key allows the request.
    Authorized,
    /// The destination refused the request with this AWS error (code and message), which the
    /// sender passes on to its caller.
    Refused {
        /// The AWS error code (`__type`).
        code: String,
        /// The AWS message.
        message: String,
    },
}

/// One queued notice of this Region to a key's primary Region (the outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Position in the outbox.
    pub seq: u64,
    /// The Region it goes to (the primary as this Region knows it).
    pub to: Region,
    /// The key.
    pub key_id: KeyId,
    /// What to say.
    pub kind: NoticeKind,
}

/// Encodes a sync payload.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("invariant: in-memory messages always encode")
}

/// Decodes a sync payload; `None` for anything malformed.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    postcard::from_bytes(bytes).ok()
}
