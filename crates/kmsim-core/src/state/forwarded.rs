//! What one node may ask the Region's leader to commit, and how log entries are decoded.
//!
//! A follower forwards the writes its own API calls (and the synchronizer's receiving side)
//! make; the leader takes them only as a [`ForwardedCommand`]: decoded with a size and a
//! nesting bound, and refused when the command is one only the leader's own tasks propose
//! (the clock, deletions at the end of a waiting period, automatic rotation, expiry of
//! imported material, synchronizer bookkeeping). So even a peer that may reach the Raft
//! service (or a bug in one) cannot commit an arbitrary command, and no entry can be nested
//! deeply enough to overflow a stack when it is decoded or applied.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::Command;
use crate::key::RotationType;

/// The largest encoded command the Region accepts, proposed locally or forwarded. The
/// largest real commands (a key with a 32 KiB policy, 50 tags and an audit record repeating
/// its parameters; a synchronization with many material versions) stay far below it.
pub const MAX_COMMAND_BYTES: usize = 512 * 1024;

/// The largest log entry the Region decodes: a command of [`MAX_COMMAND_BYTES`] under the
/// `Deduplicated` header every forwardable write is committed with (its variant tag, a varint
/// of at most 5 bytes, and the 16-byte request ID), with room to spare. Bounding entries by
/// [`MAX_COMMAND_BYTES`] itself would let a command accepted within 21 bytes of the limit
/// commit and then fail to apply on every node.
pub const MAX_ENTRY_BYTES: usize = MAX_COMMAND_BYTES + 32;

/// How deep wrappers may nest: `Deduplicated { Audited { command } }` at most.
pub const MAX_NESTING: u32 = 2;

/// Why a proposal (or a log entry) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// Larger than its limit ([`MAX_COMMAND_BYTES`] for a command, [`MAX_ENTRY_BYTES`] for a
    /// log entry): the size, then the limit.
    #[error("command of {0} bytes is larger than the limit of {1} bytes")]
    TooLarge(usize, usize),
    /// Not a command.
    #[error("undecodable command: {0}")]
    Undecodable(String),
    /// Wrappers nested deeper than [`MAX_NESTING`] (refused before recursing further).
    #[error("undecodable command: commands nested more than {MAX_NESTING} deep")]
    TooDeep,
    /// A command only the leader's own tasks may propose.
    #[error("{0} may only be proposed by the leader's own tasks, not forwarded")]
    LeaderOnly(&'static str),
    /// A wrapper where none may be.
    #[error("{0}")]
    BadNesting(&'static str),
    /// The request ID is not 16 bytes.
    #[error("a forwarded proposal needs a request ID of 16 bytes, got {0}")]
    BadRequestId(usize),
}

/// The ID a forwarding node gives one write, so the leader applies it once however often the
/// forward is retried.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub [u8; 16]);

impl RequestId {
    /// The ID carried in a `ProposeRequest`.
    pub fn from_slice(bytes: &[u8]) -> Result<RequestId, ProposalError> {
        <[u8; 16]>::try_from(bytes)
            .map(RequestId)
            .map_err(|_| ProposalError::BadRequestId(bytes.len()))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({self})")
    }
}

thread_local! {
    /// How many wrappers the decoder of this thread is inside (postcard decodes synchronously,
    /// so a thread-local counter is exact).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Set when the decoder of this thread hit [`MAX_NESTING`] (postcard drops the text of a
    /// custom error, so the reason travels here).
    static TOO_DEEP: Cell<bool> = const { Cell::new(false) };
}

/// Leaves one wrapper level when dropped, on success and on error alike.
struct DepthGuard;

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Decodes the command inside a wrapper (`deserialize_with` of `Audited::cmd` and
/// `Deduplicated::cmd`): refused beyond [`MAX_NESTING`] levels, before recursing, so a hostile
/// encoding cannot exhaust the stack. The encoding is the plain `Box<Command>` one.
pub(crate) fn nested<'de, D: Deserializer<'de>>(d: D) -> Result<Box<Command>, D::Error> {
    let depth = DEPTH.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let _guard = DepthGuard;
    if depth > MAX_NESTING {
        TOO_DEEP.with(|t| t.set(true));
        return Err(D::Error::custom(format!(
            "commands nested more than {MAX_NESTING} deep"
        )));
    }
    Command::deserialize(d).map(Box::new)
}

/// Decodes a command of at most `limit` bytes within the nesting bound.
pub(crate) fn decode_bounded(bytes: &[u8], limit: usize) -> Result<Command, ProposalError> {
    if bytes.len() > limit {
        return Err(ProposalError::TooLarge(bytes.len(), limit));
    }
    TOO_DEEP.with(|t| t.set(false));
    postcard::from_bytes(bytes).map_err(|e| {
        if TOO_DEEP.with(|t| t.replace(false)) {
            ProposalError::TooDeep
        } else {
            ProposalError::Undecodable(e.to_string())
        }
    })
}

impl Command {
    /// The name of the command when only the leader's own tasks may propose it (never a
    /// forwarded write); `None` for what an API call or a received synchronization on any node
    /// makes. Exhaustive on purpose: a new command must be placed.
    pub fn leader_only(&self) -> Option<&'static str> {
        match self {
            // The API on any node.
            Command::CreateKey { .. }
            | Command::SetEnabled { .. }
            | Command::UpdateKeyDescription { .. }
            | Command::PutKeyPolicy { .. }
            | Command::TagResource { .. }
            | Command::UntagResource { .. }
            | Command::CreateAlias { .. }
            | Command::UpdateAlias { .. }
            | Command::DeleteAlias { .. }
            | Command::ScheduleKeyDeletion { .. }
            | Command::CancelKeyDeletion { .. }
            | Command::SetKeyRotation { .. }
            | Command::PromotePendingMaterial { .. }
            | Command::ImportKeyMaterial { .. }
            | Command::CreateGrant { .. }
            | Command::DeleteGrant { .. }
            | Command::ReplicateKey { .. }
            | Command::BeginHandover { .. }
            // UpdatePrimaryRegion records the promotion's answer on the node it runs on.
            | Command::EndHandover { .. }
            // The synchronizer's receiving side on any node (the envelope was opened there).
            | Command::ApplySync { .. }
            | Command::CreateReplica { .. }
            | Command::AbandonReplica { .. }
            | Command::ApplyNotice { .. }
            // The admin's SetThrottle on any node.
            | Command::SetThrottle { .. }
            // The admin's IAM changes and the synchronizer's receiving side, on any node.
            | Command::SetIam { .. } => None,
            Command::RotateKey { kind, .. } => match kind {
                RotationType::OnDemand => None,
                RotationType::Automatic => Some("RotateKey (automatic)"),
            },
            Command::DeleteImportedMaterial { expired_at_ms, .. } => {
                expired_at_ms.map(|_| "DeleteImportedMaterial (expiry)")
            }
            Command::Audited { cmd, .. } => cmd.leader_only(),
            Command::Deduplicated { .. } => Some("Deduplicated"),
            // The lifecycle task and the admin clock.
            Command::DeleteExpiredKey { .. } => Some("DeleteExpiredKey"),
            Command::SetClockOffset { .. } => Some("SetClockOffset"),
            // The synchronizer task's bookkeeping on the leader.
            Command::SyncAcked { .. } => Some("SyncAcked"),
            Command::ReplicaGone { .. } => Some("ReplicaGone"),
            Command::NoticeDone { .. } => Some("NoticeDone"),
            Command::NoticeRetarget { .. } => Some("NoticeRetarget"),
            Command::PromoteRotation { .. } => Some("PromoteRotation"),
        }
    }

    /// True for the commands that wrap another.
    pub(crate) fn is_wrapper(&self) -> bool {
        matches!(self, Command::Audited { .. } | Command::Deduplicated { .. })
    }
}

/// A command a node may forward to its leader: one an API call or a received synchronization
/// makes, with at most an `Audited` wrapper. Only [`ForwardedCommand::new`] and
/// [`ForwardedCommand::decode`] make one, and both check.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedCommand(Command);

impl ForwardedCommand {
    /// Checks that `cmd` may be forwarded.
    pub fn new(cmd: Command) -> Result<ForwardedCommand, ProposalError> {
        ForwardedCommand::check(&cmd)?;
        Ok(ForwardedCommand(cmd))
    }

    /// Decodes what a peer forwarded: at most [`MAX_COMMAND_BYTES`], nested at most
    /// [`MAX_NESTING`] deep, then checked as [`ForwardedCommand::new`] does.
    pub fn decode(bytes: &[u8]) -> Result<ForwardedCommand, ProposalError> {
        ForwardedCommand::new(decode_bounded(bytes, MAX_COMMAND_BYTES)?)
    }

    /// The bytes sent in `ProposeRequest::command` (a plain encoded [`Command`]).
    pub fn encode(&self) -> Vec<u8> {
        super::encode_command(&self.0)
    }

    /// The command.
    pub fn command(&self) -> &Command {
        &self.0
    }

    /// The log entry the leader commits for it: applied once per `request_id`.
    pub fn into_log_command(self, request_id: RequestId) -> Command {
        Command::Deduplicated {
            request_id,
            cmd: Box::new(self.0),
        }
    }

    /// Checks that `cmd` may be forwarded, as [`ForwardedCommand::new`] does, without taking it.
    pub fn check(cmd: &Command) -> Result<(), ProposalError> {
        if let Some(name) = cmd.leader_only() {
            return Err(ProposalError::LeaderOnly(name));
        }
        if let Command::Audited { cmd: inner, .. } = cmd {
            if inner.is_wrapper() {
                return Err(ProposalError::BadNesting(
                    "an audited command cannot wrap another wrapper",
                ));
            }
        }
        Ok(())
    }
}

/// The encoded log entry of a forwardable command under `request_id` (what
/// [`ForwardedCommand::into_log_command`] makes, encoded), built from the command's own encoding
/// (`encoded`, what [`ForwardedCommand::encode`] gives and a forward carries) without encoding
/// the command again: postcard writes a struct variant as its tag and then its fields one after
/// another, without lengths, so `Deduplicated { request_id, cmd }` is the tag, the 16 bytes of
/// the ID, then `encoded`.
pub fn encode_log_entry(encoded: &[u8], request_id: RequestId) -> Vec<u8> {
    let tag = deduplicated_tag();
    let mut entry = Vec::with_capacity(tag.len() + request_id.0.len() + encoded.len());
    entry.extend_from_slice(tag);
    entry.extend_from_slice(&request_id.0);
    entry.extend_from_slice(encoded);
    entry
}

/// The encoding of the `Deduplicated` variant's tag, taken once from the encoder itself (a
/// `Deduplicated` around a small command, less the ID and that command), so that a new variant
/// or a new encoder cannot leave it stale.
fn deduplicated_tag() -> &'static [u8] {
    static TAG: OnceLock<Vec<u8>> = OnceLock::new();
    TAG.get_or_init(|| {
        let inner = Command::SetClockOffset { offset_ms: 0 };
        let inner_len = super::encode_command(&inner).len();
        let request_id = RequestId([0; 16]);
        let whole = super::encode_command(&Command::Deduplicated {
            request_id,
            cmd: Box::new(inner),
        });
        whole[..whole.len() - inner_len - request_id.0.len()].to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ApiCall;
    use crate::ids::KeyId;

    fn call() -> ApiCall {
        ApiCall {
            event_name: "DisableKey".into(),
            time_ms: 1,
            request_id: "r".into(),
            principal_arn: "arn:aws:iam::111122223333:root".into(),
            access_key_id: None,
            source_ip: None,
            user_agent: None,
            request_parameters: "{}".into(),
            response_elements: None,
        }
    }

    fn key_id() -> KeyId {
        KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").expect("valid key id")
    }

    fn disable() -> Command {
        Command::SetEnabled {
            key_id: key_id(),
            enabled: false,
        }
    }

    fn audited(cmd: Command) -> Command {
        Command::Audited {
            call: call(),
            cmd: Box::new(cmd),
        }
    }

    /// `depth` wrappers around DisableKey, encoded by hand (postcard: the variant index as a
    /// varint, then the fields), so that no recursive encoder runs in the test either.
    fn nested_audited_bytes(depth: usize) -> Vec<u8> {
        let inner = crate::state::encode_command(&disable());
        let wrapper = crate::state::encode_command(&audited(disable()));
        // `Audited` = variant index, then the call, then the inner command.
        let prefix = &wrapper[..wrapper.len() - inner.len()];
        let mut out = Vec::with_capacity(prefix.len() * depth + inner.len());
        for _ in 0..depth {
            out.extend_from_slice(prefix);
        }
        out.extend_from_slice(&inner);
        out
    }

    #[test]
    fn api_commands_are_forwarded_and_round_trip() {
        for cmd in [disable(), audited(disable())] {
            let f = ForwardedCommand::new(cmd.clone()).expect("forwardable");
            let back = ForwardedCommand::decode(&f.encode()).expect("decodes");
            assert_eq!(back.command(), &cmd);
        }
    }

    /// The entry built from a forward's bytes is the entry the command encodes to, so the
    /// proposer encodes a write once for both.
    #[test]
    fn log_entries_built_from_forwarded_bytes_are_the_encoded_entries() {
        let big = Command::PutKeyPolicy {
            key_id: key_id(),
            policy: "x".repeat(300),
        };
        for cmd in [disable(), audited(disable()), big] {
            let f = ForwardedCommand::new(cmd).expect("forwardable");
            for id in [
                RequestId([0; 16]),
                RequestId([0xff; 16]),
                RequestId([7; 16]),
            ] {
                let entry = encode_log_entry(&f.encode(), id);
                let log = f.clone().into_log_command(id);
                assert_eq!(entry, crate::state::encode_command(&log));
                assert_eq!(crate::state::decode_command(&entry), Ok(log));
            }
        }
    }

    #[test]
    fn leader_only_commands_are_refused_bare_and_audited() {
        let internal = [
            Command::SetClockOffset { offset_ms: 1 },
            Command::DeleteExpiredKey {
                key_id: key_id(),
                now_ms: 1,
            },
            Command::NoticeDone { seq: 1 },
            Command::Deduplicated {
                request_id: RequestId([1; 16]),
                cmd: Box::new(disable()),
            },
        ];
        for cmd in internal {
            let bytes = crate::state::encode_command(&cmd);
            assert!(matches!(
                ForwardedCommand::decode(&bytes),
                Err(ProposalError::LeaderOnly(_))
            ));
            let wrapped = crate::state::encode_command(&audited(cmd));
            assert!(ForwardedCommand::decode(&wrapped).is_err());
        }
    }

    #[test]
    fn an_audited_wrapper_inside_another_is_refused() {
        let twice = audited(audited(disable()));
        assert!(matches!(
            ForwardedCommand::new(twice.clone()),
            Err(ProposalError::BadNesting(_))
        ));
        // Two levels still decode (the bound is the structure's, checked after decoding).
        assert_eq!(
            crate::state::decode_command(&crate::state::encode_command(&twice)),
            Ok(twice)
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing() {
        assert!(decode_bounded(&nested_audited_bytes(2), MAX_COMMAND_BYTES).is_ok());
        for depth in [3, 100, 200_000] {
            let bytes = nested_audited_bytes(depth);
            let bytes = &bytes[..bytes.len().min(MAX_COMMAND_BYTES)];
            let e = decode_bounded(bytes, MAX_COMMAND_BYTES).unwrap_err();
            if bytes.len() < MAX_COMMAND_BYTES {
                assert_eq!(e, ProposalError::TooDeep, "depth {depth}");
            }
            assert!(ForwardedCommand::decode(bytes).is_err());
        }
        // The counter is balanced after errors: a legal command decodes afterwards.
        assert!(decode_bounded(&nested_audited_bytes(2), MAX_COMMAND_BYTES).is_ok());
    }

    #[test]
    fn oversized_commands_are_refused_before_decoding() {
        let big = vec![0u8; MAX_COMMAND_BYTES + 1];
        assert_eq!(
            ForwardedCommand::decode(&big),
            Err(ProposalError::TooLarge(
                MAX_COMMAND_BYTES + 1,
                MAX_COMMAND_BYTES
            ))
        );
        let entry = vec![0u8; MAX_ENTRY_BYTES + 1];
        assert!(matches!(
            crate::state::decode_command(&entry),
            Err(crate::KmsError::Internal(m)) if m.contains("larger than the limit")
        ));
    }

    /// A command just under the limit is committed under its request ID, so the entry is a
    /// little larger than the command: it must still apply.
    #[test]
    fn a_command_at_the_limit_applies_under_its_request_id() {
        let key = key_id();
        let small = Command::PutKeyPolicy {
            key_id: key.clone(),
            policy: String::new(),
        };
        let overhead = crate::state::encode_command(&small).len();
        let cmd = Command::PutKeyPolicy {
            key_id: key,
            policy: "x".repeat(MAX_COMMAND_BYTES - overhead - 8),
        };
        let f = ForwardedCommand::new(cmd).expect("forwardable");
        let plain = f.encode();
        assert!(plain.len() <= MAX_COMMAND_BYTES);
        assert!(
            plain.len() > MAX_COMMAND_BYTES - 16,
            "{} bytes",
            plain.len()
        );
        let entry = encode_log_entry(&plain, RequestId([0xff; 16]));
        assert!(entry.len() > MAX_COMMAND_BYTES);
        assert_eq!(
            crate::state::decode_command(&entry),
            Ok(f.into_log_command(RequestId([0xff; 16])))
        );
    }

    #[test]
    fn request_ids_are_sixteen_bytes() {
        assert!(RequestId::from_slice(&[0; 16]).is_ok());
        assert_eq!(
            RequestId::from_slice(&[0; 3]),
            Err(ProposalError::BadRequestId(3))
        );
        assert_eq!(
            RequestId([0xab; 16]).to_string(),
            "ab".repeat(16),
            "hex in logs"
        );
    }

    proptest::proptest! {
        /// Any bytes decode to a forwardable command or an error, never a panic or overflow.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            let _ = ForwardedCommand::decode(&bytes);
        }
    }
}
