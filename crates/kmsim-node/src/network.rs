//! Raft RPCs over gRPC (`kmsim.raft.v1`): the client side that openraft drives.
//!
//! Every call has a deadline (openraft's `RPCOption::hard_ttl`, capped by the channel's own
//! timeout). A transport failure is reported as `Unreachable`, so openraft backs off before it
//! tries that peer again; an error returned by the peer's Raft is a `RemoteError`.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

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

/// The largest message of `kmsim.raft.v1` either way: 24 MiB. An AppendEntries carries at most
/// [`MAX_PAYLOAD_ENTRIES`] entries of at most `MAX_COMMAND_BYTES` (512 KiB) each (20 MiB) and a
/// snapshot chunk is [`SNAPSHOT_CHUNK_BYTES`]; the rest is headroom for their framing.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 24 << 20;
/// The most log entries openraft puts in one AppendEntries (its default is 300, which with
/// large commands would not fit [`MAX_RAFT_MESSAGE_BYTES`]).
pub const MAX_PAYLOAD_ENTRIES: u64 = 40;
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

/// Creates one [`GrpcNetwork`] per peer of this node's Region.
#[derive(Clone)]
pub struct GrpcNetworkFactory {
    /// The Region, to name peers as `REGION/ID` in the fault table.
    region: String,
    /// This node's outgoing fault profiles.
    faults: Arc<FaultTable>,
    /// How to dial peers.
    dialer: Dialer,
}

impl GrpcNetworkFactory {
    /// A factory for peers of `region` whose messages pass through `faults`, dialed with
    /// `dialer`.
    pub fn new(region: String, faults: Arc<FaultTable>, dialer: Dialer) -> GrpcNetworkFactory {
        GrpcNetworkFactory {
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
            Err(_) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("raft rpc to {} timed out", self.addr),
                );
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Ok(Err(status)) => return Err(RPCError::Unreachable(Unreachable::new(&status))),
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
}
