//! The server side of `kmsim.raft.v1.RaftService`: Raft RPCs from peers and forwarded writes.

use std::collections::BTreeSet;
use std::sync::Arc;

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};

use tonic::{Request, Response, Status};

use kmsim_core::state::{ForwardedCommand, ProposalError, RequestId};
use kmsim_proto::raft::v1::raft_service_server::RaftService;
use kmsim_proto::raft::v1::{
    ProposeRequest, ProposeResponse, RaftPayload, ReadIndexRequest, ReadIndexResponse,
};
use kmsim_proto::status::status_from_error;
use kmsim_store::types::Vote;
use kmsim_store::{Raft, SnapshotChunks, TypeConfig};

use crate::leader_watch::LeaderContact;
use crate::proposer::Proposer;
use crate::rejoin::ElectionGuard;
use crate::tls::admit::CallerIdentity;
use crate::tls::Identity;
use crate::wire;

/// Serves Raft RPCs for one node.
pub struct RaftServiceImpl {
    raft: Raft,
    proposer: Arc<Proposer>,
    /// Whether this member may vote after losing its data.
    election_guard: Arc<ElectionGuard>,
    /// When this member last accepted an AppendEntries (for `leader_watch`).
    contact: Arc<LeaderContact>,
    /// The Region's node ids from the topology: with the members of the current Raft
    /// configuration, the only ids a Raft RPC may claim to come from.
    topology_members: BTreeSet<u64>,
    /// The snapshot being received, to bound its chunks; locked across the install call so
    /// chunks are checked and recorded in the order openraft takes them.
    snapshot: tokio::sync::Mutex<SnapshotChunks>,
}

impl RaftServiceImpl {
    /// The service for this node's Raft in a Region whose topology names `topology_members`.
    pub fn new(
        raft: Raft,
        proposer: Arc<Proposer>,
        election_guard: Arc<ElectionGuard>,
        contact: Arc<LeaderContact>,
        topology_members: BTreeSet<u64>,
    ) -> RaftServiceImpl {
        RaftServiceImpl {
            raft,
            proposer,
            election_guard,
            contact,
            topology_members,
            snapshot: tokio::sync::Mutex::new(SnapshotChunks::default()),
        }
    }

    /// Refuses an RPC whose vote names a node that is not a member of this Region (in the
    /// topology or the current Raft configuration), or, over mutual TLS, a node other than the
    /// one whose certificate sent it: a made-up leader or candidate id cannot depose the real
    /// leader, and one member cannot speak for another (the vote of AppendEntries and
    /// InstallSnapshot names the leader that sends them, a VoteRequest's the candidate).
    fn check_sender(
        &self,
        vote: &Vote,
        caller: Option<&CallerIdentity>,
        rpc: &str,
    ) -> Result<(), Status> {
        let Some(id) = vote.leader_id().voted_for() else {
            return Ok(());
        };
        let member = self.topology_members.contains(&id)
            || self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&id)
                .is_some();
        if !member {
            tracing::warn!(
                peer = id,
                rpc,
                "refused a raft rpc from a node outside the Region"
            );
            return Err(Status::permission_denied(format!(
                "{rpc} from node {id}, which is not a member of this Region"
            )));
        }
        match caller {
            Some(CallerIdentity(who)) if !matches!(who, Identity::Node { id: sender, .. } if *sender == id) =>
            {
                tracing::warn!(peer = id, caller = %who, rpc, "refused a raft rpc speaking for another node");
                Err(Status::permission_denied(format!(
                    "{rpc} speaks for node {id}, but {who} sent it"
                )))
            }
            _ => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl RaftService for RaftServiceImpl {
    async fn append_entries(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let caller = req.extensions().get::<CallerIdentity>().cloned();
        let rpc: AppendEntriesRequest<TypeConfig> = wire::decode(&req.into_inner().data)?;
        self.check_sender(&rpc.vote, caller.as_ref(), "AppendEntries")?;
        let leader_commit = rpc.leader_commit.map(|c| c.index);
        let leader = rpc.vote.leader_id().voted_for();
        let result = self.raft.append_entries(rpc).await;
        // Only from a leader this member accepts (not one of an older term).
        if matches!(
            result,
            Ok(AppendEntriesResponse::Success
                | AppendEntriesResponse::PartialSuccess(_)
                | AppendEntriesResponse::Conflict)
        ) {
            self.election_guard.saw_leader_commit(leader_commit);
            if let Some(leader) = leader {
                self.contact.heard(leader);
            }
        }
        Ok(Response::new(RaftPayload {
            data: wire::encode(&result),
        }))
    }

    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let caller = req.extensions().get::<CallerIdentity>().cloned();
        let rpc: VoteRequest<u64> = wire::decode(&req.into_inner().data)?;
        self.check_sender(&rpc.vote, caller.as_ref(), "Vote")?;
        let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
        if let Err(why) = self.election_guard.may_vote(applied) {
            tracing::info!(candidate = ?rpc.vote.leader_id().voted_for(), %why, "vote withheld");
            return Err(Status::unavailable(format!(
                "vote withheld: this member {why}"
            )));
        }
        let result = self.raft.vote(rpc).await;
        Ok(Response::new(RaftPayload {
            data: wire::encode(&result),
        }))
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let caller = req.extensions().get::<CallerIdentity>().cloned();
        let rpc: InstallSnapshotRequest<TypeConfig> = wire::decode(&req.into_inner().data)?;
        self.check_sender(&rpc.vote, caller.as_ref(), "InstallSnapshot")?;
        let (id, offset, len, done) = (
            rpc.meta.snapshot_id.clone(),
            rpc.offset,
            rpc.data.len(),
            rpc.done,
        );
        let mut chunks = self.snapshot.lock().await;
        chunks.check(&id, offset, len).map_err(|e| {
            tracing::warn!(error = %e, "refused a snapshot chunk");
            Status::invalid_argument(e.to_string())
        })?;
        let result = self.raft.install_snapshot(rpc).await;
        if result.is_ok() {
            chunks.accepted(&id, offset, len, done);
        }
        drop(chunks);
        Ok(Response::new(RaftPayload {
            data: wire::encode(&result),
        }))
    }

    async fn propose(
        &self,
        req: Request<ProposeRequest>,
    ) -> Result<Response<ProposeResponse>, Status> {
        let trace = crate::trace::extract(req.metadata());
        let req = req.into_inner();
        let request_id = RequestId::from_slice(&req.request_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cmd = ForwardedCommand::decode(&req.command).map_err(|e| match e {
            ProposalError::LeaderOnly(_) | ProposalError::BadNesting(_) => {
                tracing::warn!(error = %e, "refused a forwarded proposal");
                Status::permission_denied(e.to_string())
            }
            _ => Status::invalid_argument(e.to_string()),
        })?;
        let write = self.proposer.propose_forwarded(cmd, request_id, req.hops);
        let detail = format!("request {request_id}, hop {}", req.hops);
        match crate::trace::scope(trace, "forwarded-write", &detail, write).await {
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
