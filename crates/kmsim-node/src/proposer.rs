//! Proposing commands: on the leader through `Raft::client_write`, on a follower by forwarding
//! to the leader's `kmsim.raft.v1.RaftService/Propose` (at most [`HOP_LIMIT`] hops), so a client
//! may send a write to any node of the Region.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tonic::transport::Channel;
use tonic::Status;

use kmsim_core::state::{decode_result, encode_command, Command, CommandResult};
use kmsim_core::KmsError;
use kmsim_proto::raft::v1::raft_service_client::RaftServiceClient;
use kmsim_proto::raft::v1::{ProposeRequest, ReadIndexRequest};
use kmsim_proto::status::error_from_status;
use kmsim_store::{Raft, RaftRequest};

use crate::backoff::Backoff;
use crate::faults::FaultTable;
use crate::network::channel;
use crate::tls::Dialer;

/// The most times a write may be forwarded before it is refused (guards against loops while
/// leadership moves).
pub const HOP_LIMIT: u32 = 3;
/// How long a write may wait for a leader before the caller gets `DependencyTimeoutException`.
pub const PROPOSE_DEADLINE: Duration = Duration::from_secs(10);

/// Proposes commands to the Region's Raft group from any node.
pub struct Proposer {
    raft: Raft,
    /// The Region, to name the leader as `REGION/ID` in the fault table.
    region: String,
    /// Forwarded writes pass through the same fault layer as Raft messages.
    faults: Arc<FaultTable>,
    /// Forwarding clients by leader address, built on first use.
    leaders: Mutex<HashMap<String, RaftServiceClient<Channel>>>,
    /// How to dial the leader.
    dialer: Dialer,
}

impl Proposer {
    /// A proposer over this node's Raft, forwarding to the leader through `dialer`.
    pub fn new(raft: Raft, region: String, faults: Arc<FaultTable>, dialer: Dialer) -> Proposer {
        Proposer {
            raft,
            region,
            faults,
            leaders: Mutex::new(HashMap::new()),
            dialer,
        }
    }

    /// Proposes a command and waits until it is committed and applied; returns its result.
    pub async fn propose(&self, cmd: &Command) -> CommandResult {
        let (log_index, bytes) = self.propose_bytes(encode_command(cmd), 0).await?;
        // A forwarded write is applied on the leader first. Wait until this node has applied it
        // too, so the caller reads its own write from this node.
        if let Err(e) = self.wait_applied(log_index).await {
            tracing::warn!(log_index, error = %e, "write committed but not yet applied on this node");
        }
        decode_result(&bytes)
    }

    /// Proposes an encoded command that has already been forwarded `hops` times; returns the
    /// log index it was committed at and its encoded result.
    pub async fn propose_bytes(
        &self,
        payload: Vec<u8>,
        hops: u32,
    ) -> Result<(u64, Vec<u8>), KmsError> {
        let command = &payload;
        self.at_leader(
            hops,
            || async {
                match self
                    .raft
                    .client_write(RaftRequest {
                        payload: payload.clone(),
                    })
                    .await
                {
                    Ok(resp) => Attempt::Done((resp.log_id.index, resp.data.payload)),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                        Attempt::Forward(f.leader_id, f.leader_node.map(|n| n.addr))
                    }
                    Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                        Attempt::Fail(KmsError::Internal(format!(
                            "membership change refused: {e}"
                        )))
                    }
                    Err(RaftError::Fatal(e)) => {
                        Attempt::Fail(KmsError::Internal(format!("raft stopped: {e}")))
                    }
                }
            },
            |mut client: RaftServiceClient<Channel>, hops| async move {
                let r = client
                    .propose(ProposeRequest {
                        command: command.clone(),
                        hops,
                    })
                    .await?
                    .into_inner();
                Ok((r.log_index, r.result))
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
    /// capped, jittered backoff while no leader is reachable, for at most [`PROPOSE_DEADLINE`].
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
        let deadline = Instant::now() + PROPOSE_DEADLINE;
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(300));
        loop {
            match local().await {
                Attempt::Done(t) => return Ok(t),
                Attempt::Fail(e) => return Err(e),
                Attempt::Forward(leader_id, Some(addr)) => {
                    if hops >= HOP_LIMIT {
                        return Err(KmsError::Internal(format!(
                            "request forwarded {hops} times without reaching the leader"
                        )));
                    }
                    let peer = format!("{}/{}", self.region, leader_id.unwrap_or_default());
                    match self.forward(&peer, &addr, hops + 1, &remote).await {
                        Ok(t) => return Ok(t),
                        // The leader could not be reached: nothing was done there, try again.
                        Err(ForwardError::Unreachable(e)) => {
                            tracing::debug!(peer = %addr, error = %e, "leader unreachable, retrying");
                        }
                        Err(ForwardError::Failed(e)) => return Err(e),
                    }
                }
                Attempt::Forward(_, None) => {}
            }
            let wait = backoff.delay();
            if Instant::now() + wait > deadline {
                return Err(KmsError::DependencyTimeout(
                    "the Region has no reachable Raft leader".into(),
                ));
            }
            tokio::time::sleep(wait).await;
        }
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
            // Connection refused or reset before the request was taken: safe to retry.
            Err(s) if s.code() == tonic::Code::Unavailable && s.metadata().is_empty() => {
                Err(ForwardError::Unreachable(s.message().to_string()))
            }
            Err(s) => Err(ForwardError::Failed(error_from_status(&s))),
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
    /// Nothing reached the leader.
    Unreachable(String),
    /// The leader answered with an error (or the outcome is unknown).
    Failed(KmsError),
}
