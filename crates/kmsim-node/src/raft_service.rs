//! The server side of `kmsim.raft.v1.RaftService`: Raft RPCs from peers and forwarded writes.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use kmsim_proto::raft::v1::raft_service_server::RaftService;
use kmsim_proto::raft::v1::{
    ProposeRequest, ProposeResponse, RaftPayload, ReadIndexRequest, ReadIndexResponse,
};
use kmsim_proto::status::status_from_error;
use kmsim_store::Raft;

use crate::proposer::Proposer;
use crate::wire;

/// The largest Raft message (log entries, a snapshot chunk) a node sends or accepts, in bytes:
/// the one place both the server (`node.rs`) and the client (`network.rs`) take it from.
pub const RAFT_MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Serves Raft RPCs for one node.
pub struct RaftServiceImpl {
    raft: Raft,
    proposer: Arc<Proposer>,
}

impl RaftServiceImpl {
    /// The service for this node's Raft.
    pub fn new(raft: Raft, proposer: Arc<Proposer>) -> RaftServiceImpl {
        RaftServiceImpl { raft, proposer }
    }
}

#[tonic::async_trait]
impl RaftService for RaftServiceImpl {
    async fn append_entries(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc = wire::decode(&req.into_inner().data)?;
        let result = self.raft.append_entries(rpc).await;
        Ok(Response::new(RaftPayload {
            data: wire::encode(&result),
        }))
    }

    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc = wire::decode(&req.into_inner().data)?;
        let result = self.raft.vote(rpc).await;
        Ok(Response::new(RaftPayload {
            data: wire::encode(&result),
        }))
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc = wire::decode(&req.into_inner().data)?;
        let result = self.raft.install_snapshot(rpc).await;
        Ok(Response::new(RaftPayload {
            data: wire::encode(&result),
        }))
    }

    async fn propose(
        &self,
        req: Request<ProposeRequest>,
    ) -> Result<Response<ProposeResponse>, Status> {
        let req = req.into_inner();
        match self.proposer.propose_bytes(req.command, req.hops).await {
            Ok((log_index, result)) => Ok(Response::new(ProposeResponse { result, log_index })),
            Err(e) => Err(status_from_error(&e)),
        }
    }

    async fn read_index(
        &self,
        req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        match self.proposer.read_index(req.into_inner().hops).await {
            Ok(log_index) => Ok(Response::new(ReadIndexResponse { log_index })),
            Err(e) => Err(status_from_error(&e)),
        }
    }
}
