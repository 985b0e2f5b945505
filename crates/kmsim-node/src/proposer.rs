//! Proposing commands: on the leader through `Raft::client_write`, on a follower by forwarding
//! to the leader's `kmsim.raft.v1.RaftService/Propose` (at most [`HOP_LIMIT`] hops), so a client
//! may send a write to any node of the Region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tonic::transport::Channel;

use kmsim_core::state::{decode_result, encode_command, Command, CommandResult};
use kmsim_core::KmsError;
use kmsim_proto::raft::v1::raft_service_client::RaftServiceClient;
use kmsim_proto::raft::v1::ProposeRequest;
use kmsim_proto::status::error_from_status;
use kmsim_store::{Raft, RaftRequest};

use crate::faults::FaultTable;
use crate::network::channel;

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
}

impl Proposer {
    /// A proposer over this node's Raft.
    pub fn new(raft: Raft, region: String, faults: Arc<FaultTable>) -> Proposer {
        Proposer {
            raft,
            region,
            faults,
            leaders: Mutex::new(HashMap::new()),
        }
    }

    /// Proposes a command and waits until it is committed and applied; returns its result.
    pub async fn propose(&self, cmd: &Command) -> CommandResult {
        let (log_index, bytes) = self.propose_bytes(encode_command(cmd), 0).await?;
        // A forwarded write is applied on the leader first. Wait until this node has applied it
        // too, so the caller reads its own write from this node.
        let waited = self
            .raft
            .wait(Some(PROPOSE_DEADLINE))
            .applied_index_at_least(Some(log_index), "read-your-writes after a forwarded write")
            .await;
        if let Err(e) = waited {
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
        let deadline = Instant::now() + PROPOSE_DEADLINE;
        let mut backoff = Duration::from_millis(20);
        loop {
            match self
                .raft
                .client_write(RaftRequest {
                    payload: payload.clone(),
                })
                .await
            {
                Ok(resp) => return Ok((resp.log_id.index, resp.data.payload)),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    if let Some(node) = f.leader_node {
                        if hops >= HOP_LIMIT {
                            return Err(KmsError::Internal(format!(
                                "write forwarded {hops} times without reaching the leader"
                            )));
                        }
                        let peer = format!("{}/{}", self.region, f.leader_id.unwrap_or_default());
                        match self
                            .forward(&peer, &node.addr, payload.clone(), hops + 1)
                            .await
                        {
                            Ok(r) => return Ok(r),
                            // The leader could not be reached: nothing was proposed, try again.
                            Err(ForwardError::Unreachable(e)) => {
                                tracing::debug!(peer = %node.addr, error = %e, "leader unreachable, retrying");
                            }
                            Err(ForwardError::Failed(e)) => return Err(e),
                        }
                    }
                }
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                    return Err(KmsError::Internal(format!(
                        "membership change refused: {e}"
                    )));
                }
                Err(RaftError::Fatal(e)) => {
                    return Err(KmsError::Internal(format!("raft stopped: {e}")));
                }
            }
            if Instant::now() + backoff > deadline {
                return Err(KmsError::DependencyTimeout(
                    "the Region has no reachable Raft leader".into(),
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(300));
        }
    }

    async fn forward(
        &self,
        peer: &str,
        addr: &str,
        command: Vec<u8>,
        hops: u32,
    ) -> Result<(u64, Vec<u8>), ForwardError> {
        self.faults
            .before_send(peer)
            .await
            .map_err(|e| ForwardError::Unreachable(e.to_string()))?;
        let client = {
            let mut map = self.leaders.lock().expect("invariant: lock not poisoned");
            match map.get(addr) {
                Some(c) => c.clone(),
                None => {
                    let ch = channel(addr).map_err(|e| ForwardError::Unreachable(e.to_string()))?;
                    let c = RaftServiceClient::new(ch);
                    map.insert(addr.to_string(), c.clone());
                    c
                }
            }
        };
        let mut client = client;
        match client.propose(ProposeRequest { command, hops }).await {
            Ok(r) => {
                let r = r.into_inner();
                Ok((r.log_index, r.result))
            }
            // Connection refused or reset before the request was taken: safe to retry.
            Err(s) if s.code() == tonic::Code::Unavailable && s.metadata().is_empty() => {
                Err(ForwardError::Unreachable(s.message().to_string()))
            }
            Err(s) => Err(ForwardError::Failed(error_from_status(&s))),
        }
    }
}

enum ForwardError {
    /// Nothing reached the leader.
    Unreachable(String),
    /// The leader answered with an error (or the outcome is unknown).
    Failed(KmsError),
}
