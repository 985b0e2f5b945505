//! Raft RPCs over gRPC (`kmsim.raft.v1`): the client side that openraft drives.
//!
//! Every call has a deadline (openraft's `RPCOption::hard_ttl`, capped by the channel's own
//! timeout). Failures are told apart because openraft treats them differently:
//!
//! - A peer whose connection cannot be made (refused, or the TCP/TLS connect failed: a
//!   [`tonic::transport`] connect error in the error's source chain; or a link the fault layer
//!   partitions) is `Unreachable`: openraft then waits out [`GrpcNetwork`]'s backoff, short
//!   ([`UNREACHABLE_BACKOFF_MIN`] doubling to [`UNREACHABLE_BACKOFF_MAX`]) so that a peer that
//!   comes back is heard from at once, instead of openraft's default constant 500 ms.
//! - Anything else (a timeout, a reset, an error status) is a `NetworkError`, which openraft
//!   retries at the next heartbeat with no backoff: a slow or frozen peer keeps receiving
//!   heartbeats, so it learns of a new leader the moment it runs again (a frozen leader that
//!   resumes steps down at once instead of disturbing the Region).
//! - An error returned by the peer's Raft is a `RemoteError`.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{StatusRequest, StatusResponse};
use kmsim_proto::raft::v1::raft_service_client::RaftServiceClient;
use kmsim_proto::raft::v1::RaftPayload;
use kmsim_store::{NodeId, TypeConfig};

use crate::faults::FaultTable;
use crate::tls::Dialer;
use crate::wire;

/// How long to wait for a TCP connection to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Upper bound of any single Raft RPC.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before openraft sends again to a peer that could not be connected to.
pub const UNREACHABLE_BACKOFF_MIN: Duration = Duration::from_millis(25);
/// Longest such wait (the delay doubles from [`UNREACHABLE_BACKOFF_MIN`] up to this): a
/// restarted peer is caught up within this much of answering again.
pub const UNREACHABLE_BACKOFF_MAX: Duration = Duration::from_millis(400);

/// The largest message of `kmsim.raft.v1` either way: 24 MiB. An AppendEntries carries at most
/// [`MAX_PAYLOAD_ENTRIES`] entries of at most `MAX_COMMAND_BYTES` (512 KiB) each (8 MiB) and a
/// snapshot chunk is [`SNAPSHOT_CHUNK_BYTES`]; the rest is headroom for their framing.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 24 << 20;
/// The most log entries openraft puts in one AppendEntries (its default is 300). Batched
/// entries hold up to 64 KiB of commands (`proposer.rs`), so an AppendEntries is about 1 MiB:
/// small enough to be sent, written and answered within openraft's per-request deadline of
/// one heartbeat interval, even on a loaded machine, so a follower that is behind catches up.
pub const MAX_PAYLOAD_ENTRIES: u64 = 16;
/// The size of the chunks a snapshot is sent in (openraft's default).
pub const SNAPSHOT_CHUNK_BYTES: u64 = 3 << 20;

/// A lazily connecting gRPC channel to `addr` with the node's timeouts, dialed as `dialer`
/// says (TLS with the node's certificate, or plaintext). Keep it: a channel holds one
/// connection and reconnects by itself, so the TLS handshake is paid once per peer.
pub fn channel(dialer: &Dialer, addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(dialer
        .endpoint(addr)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(RPC_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .connect_lazy())
}

/// A peer's admin `Status`, or `None` when it cannot be reached or does not answer within
/// `timeout` (a new channel: a probe must not wait behind a channel that is reconnecting).
pub async fn peer_status(dialer: &Dialer, addr: &str, timeout: Duration) -> Option<StatusResponse> {
    let ch = channel(dialer, addr).ok()?;
    let mut client = AdminServiceClient::new(ch);
    match tokio::time::timeout(timeout, client.status(StatusRequest {})).await {
        Ok(Ok(r)) => Some(r.into_inner()),
        _ => None,
    }
}

/// Creates one [`GrpcNetwork`] per peer of this node's Region.
#[derive(Clone)]
pub struct GrpcNetworkFactory {
    /// This node's id, for the logs.
    node_id: NodeId,
    /// The Region, to name peers as `REGION/ID` in the fault table.
    region: String,
    /// This node's outgoing fault profiles.
    faults: Arc<FaultTable>,
    /// How to dial peers.
    dialer: Dialer,
}

impl GrpcNetworkFactory {
    /// A factory for the peers of node `node_id` of `region`, whose messages pass through
    /// `faults`, dialed with `dialer`.
    pub fn new(
        node_id: NodeId,
        region: String,
        faults: Arc<FaultTable>,
        dialer: Dialer,
    ) -> GrpcNetworkFactory {
        GrpcNetworkFactory {
            node_id,
            region,
            faults,
            dialer,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetworkFactory {
    type Network = GrpcNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> GrpcNetwork {
        GrpcNetwork {
            node_id: self.node_id,
            target,
            peer: format!("{}/{target}", self.region),
            addr: node.addr.clone(),
            client: None,
            faults: self.faults.clone(),
            dialer: self.dialer.clone(),
        }
    }
}

/// The connection to one peer.
pub struct GrpcNetwork {
    /// This node's id, for the logs.
    node_id: NodeId,
    target: NodeId,
    /// The peer as `REGION/ID` (its key in the fault table).
    peer: String,
    addr: String,
    /// This node's outgoing fault profiles.
    faults: Arc<FaultTable>,
    /// Built on first use; a bad address is reported per call rather than at construction.
    client: Option<RaftServiceClient<Channel>>,
    /// How to dial the peer.
    dialer: Dialer,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

/// True when a call failed because no connection to the peer could be made (refused, or the
/// TCP or TLS connect failed or timed out): the request never left this node. Told from the
/// error's source chain, not from its code: a server may answer `UNAVAILABLE` itself.
pub fn never_connected(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// How openraft is to treat a failed call: `Unreachable` (it backs off) only when the peer
/// could not be connected to; any other failure is a `NetworkError` (retried at the next
/// heartbeat), so that a slow peer is not left without heartbeats.
fn classify<E: std::error::Error>(status: &tonic::Status) -> RPCError<NodeId, BasicNode, E> {
    if never_connected(status) {
        RPCError::Unreachable(Unreachable::new(status))
    } else {
        RPCError::Network(NetworkError::new(status))
    }
}

impl GrpcNetwork {
    fn client(&mut self) -> Result<RaftServiceClient<Channel>, tonic::transport::Error> {
        if self.client.is_none() {
            let ch = channel(&self.dialer, &self.addr)?;
            self.client = Some(
                RaftServiceClient::new(ch)
                    .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES),
            );
        }
        Ok(self.client.clone().expect("invariant: client was just set"))
    }

    /// Sends one request and decodes the peer's `Result<Resp, E>`.
    async fn call<Req, Resp, E, F, Fut>(
        &mut self,
        req: &Req,
        option: &RPCOption,
        send: F,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>, RaftPayload) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<RaftPayload>, tonic::Status>>,
    {
        // An injected fault looks like an unreachable peer: openraft backs off and retries.
        self.faults
            .before_send(&self.peer)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let client = self
            .client()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let payload = RaftPayload {
            data: wire::encode(req),
        };
        let ttl = option.hard_ttl().min(RPC_TIMEOUT);
        let reply = match tokio::time::timeout(ttl, send(client, payload)).await {
            // A slow (or frozen) peer: keep sending at the heartbeat's pace.
            Err(_) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("raft rpc to {} timed out", self.addr),
                );
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
            Ok(Err(status)) => {
                let e = classify(&status);
                if matches!(e, RPCError::Unreachable(_)) {
                    tracing::debug!(node_id = self.node_id, peer = %self.peer, error = %status, "raft peer refuses connections");
                }
                return Err(e);
            }
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let result: Result<Resp, E> = postcard::from_bytes(&reply.data)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for GrpcNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.call(&rpc, &option, |mut c, p| async move {
            c.append_entries(p).await
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(&rpc, &option, |mut c, p| async move {
            c.install_snapshot(p).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(&rpc, &option, |mut c, p| async move { c.vote(p).await })
            .await
    }

    /// After an `Unreachable`: [`UNREACHABLE_BACKOFF_MIN`] doubling up to
    /// [`UNREACHABLE_BACKOFF_MAX`] (openraft drops it at the first call that succeeds).
    fn backoff(&self) -> Backoff {
        Backoff::new(unreachable_delays())
    }
}

/// The delays openraft waits before sending again to a peer that refuses connections.
fn unreachable_delays() -> impl Iterator<Item = Duration> + Send + 'static {
    std::iter::successors(Some(UNREACHABLE_BACKOFF_MIN), |d| {
        Some((*d * 2).min(UNREACHABLE_BACKOFF_MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Err = RPCError<NodeId, BasicNode, RaftError<NodeId>>;

    /// A refused connection is `Unreachable` (openraft backs off briefly); an `UNAVAILABLE`
    /// a server answered, a cancelled call or a deadline are network errors (openraft keeps
    /// heartbeating the peer).
    #[tokio::test]
    async fn only_a_refused_connection_makes_a_peer_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut client = RaftServiceClient::new(channel(&Dialer::plain(), &addr).unwrap());
        let status = client
            .vote(RaftPayload::default())
            .await
            .expect_err("nothing listens there");
        assert!(never_connected(&status), "{status:?}");
        assert!(matches!(
            classify::<RaftError<NodeId>>(&status),
            Err::Unreachable(_)
        ));

        for status in [
            tonic::Status::unavailable("answered by a server"),
            tonic::Status::cancelled("timeout expired"),
            tonic::Status::deadline_exceeded("deadline"),
            tonic::Status::internal("h2 protocol error: connection reset"),
        ] {
            assert!(!never_connected(&status), "{status:?}");
            assert!(
                matches!(classify::<RaftError<NodeId>>(&status), Err::Network(_)),
                "{status:?}"
            );
        }
    }

    /// A call that outlives its deadline (a frozen peer accepts the connection and never
    /// answers) is a network error, not `Unreachable`.
    #[tokio::test]
    async fn a_peer_that_never_answers_is_a_network_error() {
        // Accepts connections (the kernel does) but never speaks: like a SIGSTOPped process.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut net = GrpcNetwork {
            node_id: 1,
            target: 2,
            peer: "us-east-1/2".into(),
            addr,
            faults: Arc::new(FaultTable::new(0)),
            client: None,
            dialer: Dialer::plain(),
        };
        let req = VoteRequest::new(openraft::Vote::new(1, 1), None);
        let r = net
            .vote(req, RPCOption::new(Duration::from_millis(200)))
            .await;
        assert!(matches!(r, Err(Err::Network(_))), "{r:?}");
        drop(listener);
    }

    #[test]
    fn the_unreachable_backoff_doubles_from_25_ms_to_400_ms() {
        let d: Vec<u64> = unreachable_delays()
            .take(7)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(d, [25, 50, 100, 200, 400, 400, 400]);
    }
}
