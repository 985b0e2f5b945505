//! Proposing commands: on the leader through `Raft::client_write`, on a follower by forwarding
//! to the leader's `kmsim.raft.v1.RaftService/Propose` (at most [`HOP_LIMIT`] hops), so a client
//! may send a write to any node of the Region.
//!
//! Failover: a forwarded write follows this node's Raft view of the leader. When that view
//! changes while the write is on its way (the leader died or froze and the Region elected
//! another), the forward is abandoned and sent again to the new leader at once, under the same
//! request ID, which the Region applies once however often it is sent. A try on this node while
//! it leads carries that request ID too, so a write tried here, then forwarded (or forwarded,
//! then tried here once this node leads) is applied once. A leader whose
//! connection is refused is asked again as soon as the view changes (or after a short,
//! capped backoff), never after a fixed timeout.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::Status;

use kmsim_core::ids::KeyId;
use kmsim_core::state::{
    decode_result, encode_command, encode_log_entry, Command, CommandResult, ForwardedCommand,
    RequestId, MAX_COMMAND_BYTES,
};
use kmsim_core::KmsError;
use kmsim_proto::raft::v1::raft_service_client::RaftServiceClient;
use kmsim_proto::raft::v1::{ProposeRequest, ReadIndexRequest};
use kmsim_proto::status::error_from_status;
use kmsim_store::{BatchError, BatchLimits, Batcher, Raft};

use crate::backoff::Backoff;
use crate::commit_origins::CommitOrigins;
use crate::entropy::Entropy;
use crate::faults::FaultTable;
use crate::network::{channel, never_connected};
use crate::tls::Dialer;
use crate::trace;

/// The most times a write may be forwarded before it is refused (guards against loops while
/// leadership moves).
pub const HOP_LIMIT: u32 = 3;
/// How long a write may wait for a leader before the caller gets `DependencyTimeoutException`.
pub const PROPOSE_DEADLINE: Duration = Duration::from_secs(10);
/// How long the leader waits for one `client_write` to be committed and applied. Shorter than
/// the forwarding RPC's timeout (`network::RPC_TIMEOUT`), so a forwarding node hears the
/// leader's answer rather than a transport timeout.
pub const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(4);

/// How the leader batches writes into log entries: up to 256 commands and 64 KiB of them (a
/// larger command goes alone, within [`MAX_COMMAND_BYTES`]); 4 entries being committed at once.
///
/// The byte bound keeps AppendEntries small: openraft 0.9 gives one AppendEntries a heartbeat
/// interval (100 ms by default) to be sent, written and answered, and sends the same range
/// again after a timeout. With entries of up to 508 KiB, a follower 40 entries behind was sent
/// 20 MiB at a time, which a loaded machine cannot move in 100 ms: it timed out on every
/// attempt and never caught up (seen with a million keys: a wiped node that stayed empty).
const BATCH_LIMITS: BatchLimits = BatchLimits {
    max_commands: 256,
    max_bytes: 64 << 10,
    in_flight: 4,
};

/// Proposes commands to the Region's Raft group from any node.
pub struct Proposer {
    raft: Raft,
    /// Writes on this node while it leads go through here, many to an entry.
    batcher: Batcher,
    /// The Region, to name the leader as `REGION/ID` in the fault table.
    region: String,
    /// Forwarded writes pass through the same fault layer as Raft messages.
    faults: Arc<FaultTable>,
    /// Forwarding clients by leader address, built on first use.
    leaders: Mutex<HashMap<String, RaftServiceClient<Channel>>>,
    /// Draws the request IDs of forwarded writes.
    entropy: Entropy,
    /// How to dial the leader.
    dialer: Dialer,
    /// `kmsim_raft_proposals_failed_total`: proposals of this node that were not committed.
    failed: Counter,
    /// The origins of the changes to primary keys this node committed as leader.
    origins: CommitOrigins,
}

impl Proposer {
    /// A proposer over this node's Raft, forwarding to the leader through `dialer`, counting
    /// the proposals that fail in `failed`.
    pub fn new(
        raft: Raft,
        region: String,
        faults: Arc<FaultTable>,
        dialer: Dialer,
        failed: Counter,
    ) -> Proposer {
        Proposer {
            batcher: Batcher::spawn(raft.clone(), BATCH_LIMITS),
            raft,
            faults,
            leaders: Mutex::new(HashMap::new()),
            entropy: Entropy,
            dialer,
            failed,
            origins: CommitOrigins::new(&region),
            region,
        }
    }

    /// The origins of the changes to primary keys this node committed as leader (what the
    /// synchronizer reports with them).
    pub fn origins(&self) -> &CommitOrigins {
        &self.origins
    }

    /// This node's Raft (its metrics say who leads and what is applied).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Proposes a command and waits until it is committed and applied on this node; returns
    /// its result. An outcome this node cannot learn in time (no answer from the leader, not
    /// yet applied here) is `DependencyTimeoutException`, which AWS clients retry — never a
    /// success. A command only the leader's own tasks propose is never forwarded: when this
    /// node is not the leader (any more) it fails, and the new leader's task proposes it.
    ///
    /// The command is encoded once; a command over [`MAX_COMMAND_BYTES`] encoded (without the
    /// request ID a forwardable one is committed under) is refused before anything is sent.
    pub async fn propose(&self, cmd: &Command) -> CommandResult {
        let payload = Payload::new(cmd, || RequestId(self.entropy.bytes()));
        if payload.command_len() > MAX_COMMAND_BYTES {
            return Err(KmsError::Validation(format!(
                "the request is too large to commit: {} bytes, the limit is {MAX_COMMAND_BYTES}",
                payload.command_len()
            )));
        }
        let (log_index, bytes) = self
            .write(payload, cmd.key_id(), 0)
            .await
            .inspect_err(|_| {
                self.failed.inc();
            })?;
        // A forwarded write is applied on the leader first. Wait until this node has applied it
        // too, so the caller reads its own write from this node; if it cannot, the caller
        // hears that the outcome is not known here.
        self.wait_applied(log_index).await?;
        decode_result(&bytes)
    }

    /// Commits a write another node forwarded (already `hops` times) under its request ID;
    /// returns the log index it was committed at and its encoded result (the first result,
    /// for a retry of a request ID the Region has applied).
    pub async fn propose_forwarded(
        &self,
        cmd: ForwardedCommand,
        request_id: RequestId,
        hops: u32,
    ) -> Result<(u64, Vec<u8>), KmsError> {
        let payload = Payload::forwardable(cmd.encode(), request_id);
        self.write(payload, cmd.command().key_id(), hops).await
    }

    /// Appends `payload` on the leader, here (within [`CLIENT_WRITE_TIMEOUT`]) or, when it is
    /// forwardable, by forwarding it.
    async fn write(
        &self,
        payload: Payload,
        key_id: Option<&KeyId>,
        hops: u32,
    ) -> Result<(u64, Vec<u8>), KmsError> {
        let Payload { entry, forward } = payload;
        let forwardable = forward.is_some();
        let forward = forward.map(|(cmd, id)| (cmd, id.0.to_vec()));
        self.at_leader(
            hops,
            || async {
                if let Some(k) = key_id {
                    self.origins.proposing(k);
                }
                let write = self.batcher.write(entry.clone());
                let written = tokio::time::timeout(CLIENT_WRITE_TIMEOUT, write).await;
                if let Some(k) = key_id {
                    let result = match &written {
                        Ok(Ok(w)) => Some(w.response.as_slice()),
                        _ => None,
                    };
                    self.origins.ended(k, result);
                }
                match written {
                    Err(_) => Attempt::Fail(KmsError::DependencyTimeout(format!(
                        "the write was not committed within {} s; its outcome is unknown",
                        CLIENT_WRITE_TIMEOUT.as_secs()
                    ))),
                    Ok(Ok(written)) => {
                        trace::step("committed", &format!("log index {}", written.index));
                        Attempt::Done((written.index, written.response))
                    }
                    Ok(Err(BatchError::Raft(e))) => match *e {
                        RaftError::APIError(ClientWriteError::ForwardToLeader(_))
                            if !forwardable =>
                        {
                            Attempt::Fail(KmsError::Internal(
                                "this node is no longer the Region's leader; the new leader's own task proposes it".into(),
                            ))
                        }
                        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                            Attempt::Forward(f.leader_id, f.leader_node.map(|n| n.addr))
                        }
                        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                            Attempt::Fail(KmsError::Internal(format!(
                                "membership change refused: {e}"
                            )))
                        }
                        RaftError::Fatal(e) => {
                            Attempt::Fail(KmsError::Internal(format!("raft stopped: {e}")))
                        }
                    },
                    Ok(Err(e)) => Attempt::Fail(KmsError::Internal(e.to_string())),
                }
            },
            |mut client: RaftServiceClient<Channel>, hops| {
                let forward = forward.clone();
                async move {
                    let (command, request_id) =
                        forward.expect("invariant: only forwardable writes reach a remote");
                    let mut req = tonic::Request::new(ProposeRequest {
                        command,
                        hops,
                        request_id,
                    });
                    trace::inject(req.metadata_mut());
                    let r = client.propose(req).await?.into_inner();
                    Ok((r.log_index, r.result))
                }
            },
        )
        .await
    }

    /// The read index of the Region as the leader gives it (asked on its behalf at most
    /// [`HOP_LIMIT`] times): the log index a node must have applied to see every write the
    /// Region acknowledged before this call. The leader confirms its leadership with a quorum
    /// first, so a deposed leader never answers.
    pub async fn read_index(&self, hops: u32) -> Result<u64, KmsError> {
        self.at_leader(
            hops,
            || async {
                match self.raft.get_read_log_id().await {
                    Ok((read, _applied)) => Attempt::Done(read.map(|l| l.index).unwrap_or(0)),
                    Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                        Attempt::Forward(f.leader_id, f.leader_node.map(|n| n.addr))
                    }
                    // Leadership not confirmed by a quorum (yet): ask again.
                    Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                        Attempt::Forward(None, None)
                    }
                    Err(RaftError::Fatal(e)) => {
                        Attempt::Fail(KmsError::Internal(format!("raft stopped: {e}")))
                    }
                }
            },
            |mut client: RaftServiceClient<Channel>, hops| async move {
                Ok(client
                    .read_index(ReadIndexRequest { hops })
                    .await?
                    .into_inner()
                    .log_index)
            },
        )
        .await
    }

    /// Waits until this node has applied `index` (at most [`PROPOSE_DEADLINE`]).
    pub async fn wait_applied(&self, index: u64) -> Result<(), KmsError> {
        self.raft
            .wait(Some(PROPOSE_DEADLINE))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|e| {
                KmsError::DependencyTimeout(format!(
                    "this node has not caught up with its Region: {e}"
                ))
            })
    }

    /// Runs `local` on this node until it is done, fails, or names another leader; a named
    /// leader is asked through `remote` (one hop more, through the fault layer). Retries with
    /// capped, jittered backoff while no leader is reachable, for at most [`PROPOSE_DEADLINE`];
    /// a change of this node's view of the leader cuts a wait short, and abandons a forward in
    /// flight to the old leader (it is sent again, `remote` carrying the same request).
    async fn at_leader<T, L, LF, R, RF>(
        &self,
        hops: u32,
        local: L,
        remote: R,
    ) -> Result<T, KmsError>
    where
        L: Fn() -> LF,
        LF: Future<Output = Attempt<T>>,
        R: Fn(RaftServiceClient<Channel>, u32) -> RF,
        RF: Future<Output = Result<T, Status>>,
    {
        let start = Instant::now();
        let deadline = start + PROPOSE_DEADLINE;
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(300));
        let mut unknown: Option<KmsError> = None;
        let mut view = self.raft.server_metrics();
        let mut tries = 0u32;
        // Where a failover's time goes: logged when a request needed more than one try.
        let done = |tries: u32, how: &str| {
            if tries > 1 {
                tracing::info!(
                    tries,
                    how,
                    after_ms = start.elapsed().as_millis() as u64,
                    "request done after retries"
                );
            }
        };
        loop {
            tries += 1;
            // The leader as this node sees it before this try: a later change means the try
            // went (or is going) to a node that is no longer the leader.
            let seen = view.borrow_and_update().current_leader;
            match local().await {
                Attempt::Done(t) => {
                    done(tries, "here");
                    return Ok(t);
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Forward(leader_id, Some(addr)) => {
                    if hops >= HOP_LIMIT {
                        return Err(KmsError::Internal(format!(
                            "request forwarded {hops} times without reaching the leader"
                        )));
                    }
                    let peer = format!("{}/{}", self.region, leader_id.unwrap_or_default());
                    let sent = tokio::select! {
                        r = self.forward(&peer, &addr, hops + 1, &remote) => r,
                        () = leader_changed(&mut view, seen) => Err(ForwardError::LeaderChanged),
                    };
                    match sent {
                        Ok(t) => {
                            done(tries, "forwarded");
                            return Ok(t);
                        }
                        // The leader could not be reached: nothing was done there, try again.
                        Err(ForwardError::Unreachable(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "leader unreachable, retrying");
                        }
                        // Another node leads now (or none): ask it at once. The old leader may
                        // or may not have the request; the same request ID is sent again.
                        Err(ForwardError::LeaderChanged) => {
                            let now = view.borrow().current_leader;
                            tracing::info!(
                                peer = %addr,
                                from = ?seen,
                                to = ?now,
                                after_ms = start.elapsed().as_millis() as u64,
                                "leader changed while forwarding, re-targeting"
                            );
                            unknown = Some(KmsError::DependencyTimeout(
                                "the leader changed while the request was forwarded to it".into(),
                            ));
                            if Instant::now() > deadline {
                                break;
                            }
                            continue;
                        }
                        // The leader may or may not have done it: ask again (a write carries
                        // its request ID, so the Region applies it once), until the deadline.
                        Err(ForwardError::Unknown(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "outcome unknown, retrying");
                            unknown = Some(e);
                        }
                        Err(ForwardError::Failed(e)) => return Err(e),
                    }
                }
                Attempt::Forward(_, None) => {}
            }
            let wait = backoff.delay();
            if Instant::now() + wait > deadline {
                break;
            }
            // A new leader is tried as soon as this node learns of it.
            if tokio::time::timeout(wait, leader_changed(&mut view, seen))
                .await
                .is_ok()
            {
                tracing::debug!(
                    from = ?seen,
                    to = ?view.borrow().current_leader,
                    after_ms = start.elapsed().as_millis() as u64,
                    "leader changed, retrying at once"
                );
            }
        }
        Err(match unknown {
            Some(e) => KmsError::DependencyTimeout(format!(
                "the Region's leader did not confirm the request in time; its outcome is unknown: {}",
                e.message()
            )),
            None => KmsError::DependencyTimeout("the Region has no reachable Raft leader".into()),
        })
    }

    async fn forward<T, R, RF>(
        &self,
        peer: &str,
        addr: &str,
        hops: u32,
        remote: &R,
    ) -> Result<T, ForwardError>
    where
        R: Fn(RaftServiceClient<Channel>, u32) -> RF,
        RF: Future<Output = Result<T, Status>>,
    {
        self.faults
            .before_send(peer)
            .await
            .map_err(|e| ForwardError::Unreachable(e.to_string()))?;
        let client = {
            let mut map = self.leaders.lock().expect("invariant: lock not poisoned");
            match map.get(addr) {
                Some(c) => c.clone(),
                None => {
                    let ch = channel(&self.dialer, addr)
                        .map_err(|e| ForwardError::Unreachable(e.to_string()))?;
                    let c = RaftServiceClient::new(ch);
                    map.insert(addr.to_string(), c.clone());
                    c
                }
            }
        };
        match remote(client, hops).await {
            Ok(t) => Ok(t),
            // No connection could be made: nothing reached the leader.
            Err(s) if never_connected(&s) => {
                Err(ForwardError::Unreachable(s.message().to_string()))
            }
            // Reset before the request was taken, or after: retried (under the same request ID
            // for a write), as an unknown outcome would be.
            Err(s) if s.code() == tonic::Code::Unavailable && s.metadata().is_empty() => {
                Err(ForwardError::Unreachable(s.message().to_string()))
            }
            Err(s) => match error_from_status(&s) {
                e @ KmsError::DependencyTimeout(_) => Err(ForwardError::Unknown(e)),
                e => Err(ForwardError::Failed(e)),
            },
        }
    }
}

/// A write encoded once: the log entry this node proposes while it leads and, when the write may
/// be forwarded, the command as encoded and the request ID it is forwarded under. The entry of a
/// forwardable write is the command under that request ID (`Deduplicated`), built from the
/// forwarded bytes (`encode_log_entry`); the entry of any other (a command only the leader's own
/// tasks propose) is the command as encoded.
///
/// A write is tried here and at the leader, as leadership moves, until one try is known to be
/// done. Every try must carry the same request ID, so the Region applies the write once: a try
/// here that ended without a result (this node stopped leading while committing it) may still be
/// committed by the next leader, and a forward whose answer was lost may have been committed
/// when this node, leading now, tries it here. A plain entry was applied a second time in both
/// cases: a ReplicateKey answered `AlreadyExistsException` by its own first try, a CreateKey
/// making two keys.
struct Payload {
    /// What this node proposes while it leads.
    entry: Vec<u8>,
    /// What it forwards to the leader: the encoded command and its request ID (`None`: not
    /// forwardable).
    forward: Option<(Vec<u8>, RequestId)>,
}

impl Payload {
    /// `cmd` encoded, under a request ID from `request_id` when it is forwardable (drawn only
    /// then).
    fn new(cmd: &Command, request_id: impl FnOnce() -> RequestId) -> Payload {
        let encoded = encode_command(cmd);
        match ForwardedCommand::check(cmd) {
            Ok(()) => Payload::forwardable(encoded, request_id()),
            Err(_) => Payload {
                entry: encoded,
                forward: None,
            },
        }
    }

    /// A forwardable command, `encoded` as [`ForwardedCommand::encode`] does, under `request_id`.
    fn forwardable(encoded: Vec<u8>, request_id: RequestId) -> Payload {
        Payload {
            entry: encode_log_entry(&encoded, request_id),
            forward: Some((encoded, request_id)),
        }
    }

    /// The size of the encoded command, without the request ID: what [`MAX_COMMAND_BYTES`]
    /// bounds.
    fn command_len(&self) -> usize {
        match &self.forward {
            Some((encoded, _)) => encoded.len(),
            None => self.entry.len(),
        }
    }
}

/// What one try on this node came to.
enum Attempt<T> {
    /// Done here.
    Done(T),
    /// Not the leader: the leader's id and address when known (else try again later).
    Forward(Option<u64>, Option<String>),
    /// A definite error.
    Fail(KmsError),
}

enum ForwardError {
    /// Nothing reached the leader (or it went away before answering).
    Unreachable(String),
    /// This node's view of the leader changed while the request was on its way.
    LeaderChanged,
    /// The request may or may not have been done (a timeout on the way or at the leader).
    Unknown(KmsError),
    /// The leader answered with a definite error.
    Failed(KmsError),
}

/// Resolves once this node's view of the Region's leader differs from `seen` (at once if it
/// already does); never if the Raft core has stopped (the caller's deadline ends the wait).
async fn leader_changed(
    view: &mut watch::Receiver<openraft::metrics::RaftServerMetrics<u64, openraft::BasicNode>>,
    seen: Option<u64>,
) {
    if view.wait_for(|m| m.current_leader != seen).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsim_core::ids::{AccountId, Partition, Region, Scope};
    use kmsim_core::state::{decode_command, KmsState};

    fn state() -> KmsState {
        KmsState::new(Scope {
            partition: Partition::parse("aws").expect("partition"),
            region: Region::parse("us-east-1").expect("region"),
            account: AccountId::parse("111122223333").expect("account"),
        })
    }

    /// A write this node tried while it led, then forwarded to the next leader (its first try
    /// may have been committed after all): the Region applies it once and answers the first
    /// result, as it does for a forward sent twice.
    #[test]
    fn a_write_tried_here_then_forwarded_is_applied_once() {
        let cmd = Command::SetThrottle {
            quota: Some("Encrypt".into()),
            rate: Some(5.0),
        };
        let id = RequestId([7; 16]);
        let payload = Payload::new(&cmd, || id);
        let here = decode_command(&payload.entry).expect("the entry decodes");
        // What the leader commits for the forward (`propose_forwarded`).
        let (sent, sent_id) = payload.forward.as_ref().expect("forwardable");
        let there = ForwardedCommand::decode(sent)
            .expect("the forward decodes")
            .into_log_command(*sent_id);
        assert_eq!(here, there, "one request ID on every try");
        assert_eq!(payload.command_len(), encode_command(&cmd).len());

        let mut s = state();
        let (first, changed) = s.apply(&here);
        assert!(first.is_ok() && !changed.is_empty());
        let (again, changed) = s.apply(&there);
        assert_eq!(again, first);
        assert!(changed.is_empty(), "the forwarded try applied again");

        // A plain entry (a write no peer could take, e.g. a leader-only command) is its own.
        let leader_only = Command::SetClockOffset { offset_ms: 5 };
        let plain = Payload::new(&leader_only, || unreachable!("no request ID drawn"));
        assert_eq!(plain.entry, encode_command(&leader_only));
        assert!(plain.forward.is_none());
        assert_eq!(plain.command_len(), plain.entry.len());
    }
}
