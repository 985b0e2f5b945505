//! `kmsim.admin.v1.AdminService`: node status, the Region's simulated clock, snapshots, and
//! (only with test hooks enabled) a view of plaintext key material for leak tests.

use crate::kms::internal;
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tonic::{Request, Response, Status};

use kmsim_core::ids::KeyId;
use kmsim_core::state::{Command, CommandOutput};
use kmsim_proto::admin::v1 as pb;
use kmsim_proto::admin::v1::admin_service_server::AdminService;
use kmsim_proto::status::status_from_error;
use kmsim_store::Raft;

use crate::clock::{advanced_offset, ClockSkew};
use crate::faults::{FaultTable, LinkProfile};
use crate::inject::{Effect, Rule};
use crate::kms::{KmsApi, ShownKey};

/// Serves the admin API of one node.
pub struct AdminServiceImpl {
    raft: Raft,
    api: Arc<KmsApi>,
    node_id: u64,
    advertise: String,
    test_hooks: bool,
    faults: Arc<FaultTable>,
}

impl AdminServiceImpl {
    /// The admin service of this node.
    pub fn new(
        raft: Raft,
        api: Arc<KmsApi>,
        node_id: u64,
        advertise: String,
        test_hooks: bool,
        faults: Arc<FaultTable>,
    ) -> Self {
        AdminServiceImpl {
            raft,
            api,
            node_id,
            advertise,
            test_hooks,
            faults,
        }
    }
}

/// The most key IDs one `ReadKeyViews` call may ask for.
pub const MAX_KEY_VIEWS: usize = 1000;

/// A key as its Region shows it, in the admin API's shape.
fn key_view(k: ShownKey) -> pb::KeyView {
    let md = k.metadata;
    let mrc = md.multi_region_configuration.unwrap_or_default();
    let mut replica_regions: Vec<String> = mrc
        .replica_keys
        .into_iter()
        .filter_map(|r| r.region)
        .collect();
    replica_regions.sort();
    pb::KeyView {
        key_id: md.key_id.unwrap_or_default(),
        key_state: md.key_state.unwrap_or_default(),
        multi_region_key_type: mrc.multi_region_key_type,
        primary_region: mrc.primary_key.and_then(|p| p.region),
        replica_regions,
        aliases: k.aliases,
        rotations: k.rotations.map(|n| n as u32),
    }
}

/// The role name printed by `kmsim status`.
pub fn role_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

#[tonic::async_trait]
impl AdminService for AdminServiceImpl {
    async fn change_iam(
        &self,
        req: Request<pb::ChangeIamRequest>,
    ) -> Result<Response<pb::ChangeIamResponse>, Status> {
        let change =
            crate::iam_admin::change_from_request(req.into_inner()).map_err(|e| e.status())?;
        let changed = crate::iam_admin::change(&self.api, &change)
            .await
            .map_err(|e| e.status())?;
        let (access_key_id, secret_access_key) = changed
            .access_key
            .map(|(id, secret)| (id, secret.expose().to_string()))
            .unwrap_or_default();
        Ok(Response::new(pb::ChangeIamResponse {
            version: changed.version,
            access_key_id,
            secret_access_key,
        }))
    }

    async fn get_iam(
        &self,
        _req: Request<pb::GetIamRequest>,
    ) -> Result<Response<pb::GetIamResponse>, Status> {
        self.api
            .reads
            .barrier()
            .await
            .map_err(|e| status_from_error(&e))?;
        let (version, document) = self
            .api
            .read(|s| match s.iam() {
                Some(h) => (h.version, h.document.clone()),
                None => (0, self.api.iam.topology_document().clone()),
            })
            .map_err(|e| status_from_error(&e))?;
        Ok(Response::new(pb::GetIamResponse {
            region: self.api.scope.region.to_string(),
            version,
            home_region: self.api.iam.home_region().to_string(),
            document_json: crate::iam_admin::document_json(&document).to_string(),
        }))
    }

    async fn read_key_views(
        &self,
        req: Request<pb::ReadKeyViewsRequest>,
    ) -> Result<Response<pb::ReadKeyViewsResponse>, Status> {
        let asked = req.into_inner().key_ids;
        if asked.len() > MAX_KEY_VIEWS {
            return Err(Status::invalid_argument(format!(
                "{} key IDs asked: at most {MAX_KEY_VIEWS} a call",
                asked.len()
            )));
        }
        let ids = asked
            .iter()
            .map(|k| {
                KeyId::parse(k)
                    .ok_or_else(|| Status::invalid_argument(format!("{k:?} is not a key ID")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shown = self
            .api
            .shown_keys(&ids)
            .await
            .map_err(|e| status_from_error(&e))?;
        Ok(Response::new(pb::ReadKeyViewsResponse {
            keys: shown.into_iter().map(key_view).collect(),
        }))
    }

    async fn set_throttle(
        &self,
        req: Request<pb::SetThrottleRequest>,
    ) -> Result<Response<pb::SetThrottleResponse>, Status> {
        let req = req.into_inner();
        let quota = Some(req.quota.as_str()).filter(|q| !q.is_empty());
        crate::quotas::check_quota_name(quota).map_err(Status::invalid_argument)?;
        // A Region setting, replicated: every node (a restarted one too) applies it to its
        // share (`KmsApp` hands the applied state to the quotas); this node has when the
        // proposal returns.
        self.api
            .proposer
            .propose(&Command::SetThrottle {
                quota: quota.map(str::to_string),
                rate: req.rate,
            })
            .await
            .map_err(|e| status_from_error(&e))?;
        tracing::info!(quota = quota.unwrap_or("every operation"), rate = ?req.rate, "request quota set");
        let (rates, share) = self.api.quotas.in_force();
        Ok(Response::new(pb::SetThrottleResponse {
            quotas: rates
                .into_iter()
                .map(|(quota, rate)| pb::QuotaInForce {
                    quota: quota.to_string(),
                    rate,
                })
                .collect(),
            share,
        }))
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let m = self.raft.metrics().borrow().clone();
        let key_count = self.api.read(|s| s.key_count()).map_err(internal)? as u64;
        Ok(Response::new(pb::StatusResponse {
            region: self.api.scope.region.to_string(),
            node_id: self.node_id,
            pid: std::process::id(),
            role: role_name(m.state).to_string(),
            term: m.current_term,
            leader_id: m.current_leader,
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters: m.membership_config.membership().voter_ids().collect(),
            kms_address: self.advertise.clone(),
            clock_now: self.api.clock.now_secs(),
            clock_offset_ms: self.api.clock.offset_ms(),
            key_count,
            material_cache_keys: self.api.materials.len() as u64,
            material_cache_capacity: self.api.materials.capacity() as u64,
            clock_skew_ms: self.api.clock.skew_ms(),
            sync_paused: self.api.sync.as_ref().is_some_and(|l| l.paused()),
        }))
    }

    async fn advance_clock(
        &self,
        req: Request<pb::AdvanceClockRequest>,
    ) -> Result<Response<pb::AdvanceClockResponse>, Status> {
        let millis = req.into_inner().millis;
        let offset_ms = advanced_offset(self.api.clock.offset_ms(), millis)
            .map_err(Status::invalid_argument)?;
        // The clock is a command only the leader proposes (a forwarded proposal of it is
        // refused): a follower names the leader instead.
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            let leader = m.current_leader.and_then(|id| {
                m.membership_config
                    .membership()
                    .get_node(&id)
                    .map(|n| format!("node {id} at {}", n.addr))
            });
            return Err(Status::failed_precondition(format!(
                "AdvanceClock goes to the Region's leader ({})",
                leader.as_deref().unwrap_or("not known yet, retry")
            )));
        }
        let out = self
            .api
            .proposer
            .propose(&Command::SetClockOffset { offset_ms })
            .await
            .map_err(|e| status_from_error(&e))?;
        let offset = match out {
            CommandOutput::ClockOffset(o) => o,
            _ => offset_ms,
        };
        Ok(Response::new(pb::AdvanceClockResponse {
            clock_now: self.api.clock.now_secs(),
            clock_offset_ms: offset,
        }))
    }

    async fn trigger_snapshot(
        &self,
        _req: Request<pb::TriggerSnapshotRequest>,
    ) -> Result<Response<pb::TriggerSnapshotResponse>, Status> {
        let applied = self.raft.metrics().borrow().last_applied;
        let fatal = |e: openraft::error::Fatal<u64>| Status::internal(e.to_string());
        self.raft.trigger().snapshot().await.map_err(fatal)?;
        let m = self
            .raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.snapshot >= applied, "snapshot covers the applied log")
            .await
            .map_err(|e| Status::deadline_exceeded(e.to_string()))?;
        let snapshot_index = m.snapshot.map(|l| l.index);
        if let Some(i) = snapshot_index {
            self.raft.trigger().purge_log(i).await.map_err(fatal)?;
        }
        Ok(Response::new(pb::TriggerSnapshotResponse {
            snapshot_index,
            purged_index: snapshot_index,
        }))
    }

    async fn debug_key_material(
        &self,
        req: Request<pb::DebugKeyMaterialRequest>,
    ) -> Result<Response<pb::DebugKeyMaterialResponse>, Status> {
        if !self.test_hooks {
            return Err(Status::permission_denied(
                "test hooks are disabled on this node",
            ));
        }
        let id = KeyId::parse(&req.into_inner().key_id)
            .ok_or_else(|| Status::invalid_argument("invalid key id"))?;
        let key = self
            .api
            .read(|s| s.key(&id))
            .map_err(internal)?
            .ok_or_else(|| Status::not_found("no such key"))?;
        let mut material = Vec::new();
        for version in key.regional.materials.keys() {
            let plain = self
                .api
                .materials
                .unwrap_raw(&key, *version)
                .map_err(|e| status_from_error(&e))?;
            material.push(plain.expose().to_vec());
        }
        Ok(Response::new(pb::DebugKeyMaterialResponse { material }))
    }

    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let req = req.into_inner();
        let limit = req.limit.unwrap_or(1000).clamp(1, 10_000) as usize;
        let filter = crate::call_log::CallFilter {
            after: req.after,
            since_ms: req.since_ms,
            until_ms: req.until_ms,
            event_name: req.event_name.clone(),
            key_id: req.key_id.clone(),
        };
        if req.node_calls {
            let log = self
                .api
                .calls
                .as_ref()
                .ok_or_else(|| Status::unavailable("this node keeps no call log"))?;
            let events = log
                .list(filter, limit)
                .await
                .map_err(|e| Status::internal(format!("call log: {e}")))?
                .into_iter()
                .map(|e| pb::AuditEvent {
                    seq: e.seq,
                    time_ms: e.time_ms,
                    event_name: e.event_name,
                    key_id: e.key_id,
                    record: e.json,
                })
                .collect();
            return Ok(Response::new(pb::ListAuditEventsResponse {
                events,
                lost_calls: log.lost(),
                dropped_events: log.dropped(),
            }));
        }
        let key = if req.key_id.is_empty() {
            None
        } else {
            Some(
                KeyId::parse(&req.key_id)
                    .ok_or_else(|| Status::invalid_argument("invalid key id"))?,
            )
        };
        // The Region log is small (in the replicated state): filter page by page (the key is
        // selected by `audit_events`).
        let filter = crate::call_log::CallFilter {
            key_id: String::new(),
            ..filter
        };
        let mut events = Vec::new();
        let mut after = req.after;
        loop {
            let page = self
                .api
                .read(|s| s.audit_events(key.as_ref(), after, limit))
                .map_err(internal)?;
            let done = page.len() < limit;
            after = page.last().map(|e| e.seq).or(after);
            events.extend(
                page.into_iter()
                    .filter(|e| filter.matches(e.time_ms, &e.event_name, ""))
                    .map(|e| pb::AuditEvent {
                        seq: e.seq,
                        time_ms: e.time_ms,
                        event_name: e.event_name,
                        key_id: e.key_id.map(|k| k.to_string()).unwrap_or_default(),
                        record: e.json,
                    }),
            );
            if done || events.len() >= limit {
                break;
            }
        }
        events.truncate(limit);
        Ok(Response::new(pb::ListAuditEventsResponse {
            events,
            lost_calls: 0,
            dropped_events: self.api.read(|s| s.audit_dropped()).map_err(internal)?,
        }))
    }

    async fn set_link_faults(
        &self,
        req: Request<pb::SetLinkFaultsRequest>,
    ) -> Result<Response<pb::SetLinkFaultsResponse>, Status> {
        let req = req.into_inner();
        let p = req.profile.unwrap_or_default();
        if !(0.0..=1.0).contains(&p.loss) {
            return Err(Status::invalid_argument("loss must be between 0 and 1"));
        }
        if !req.peer.contains('/') {
            return Err(Status::invalid_argument("peer must be REGION/ID"));
        }
        let profile = LinkProfile {
            delay: Duration::from_millis(p.delay_ms),
            jitter: Duration::from_millis(p.jitter_ms),
            loss: p.loss,
            partitioned: p.partitioned,
        };
        tracing::info!(peer = %req.peer, ?profile, "link fault profile set");
        self.faults.set(&req.peer, profile);
        Ok(Response::new(pb::SetLinkFaultsResponse {}))
    }

    async fn clear_link_faults(
        &self,
        _req: Request<pb::ClearLinkFaultsRequest>,
    ) -> Result<Response<pb::ClearLinkFaultsResponse>, Status> {
        tracing::info!("all link faults cleared");
        self.faults.clear();
        Ok(Response::new(pb::ClearLinkFaultsResponse {}))
    }

    async fn get_link_faults(
        &self,
        _req: Request<pb::GetLinkFaultsRequest>,
    ) -> Result<Response<pb::GetLinkFaultsResponse>, Status> {
        let links = self
            .faults
            .list()
            .into_iter()
            .map(|(peer, p)| pb::LinkFault {
                peer,
                profile: Some(pb::LinkProfile {
                    delay_ms: p.delay.as_millis() as u64,
                    jitter_ms: p.jitter.as_millis() as u64,
                    loss: p.loss,
                    partitioned: p.partitioned,
                }),
            })
            .collect();
        Ok(Response::new(pb::GetLinkFaultsResponse { links }))
    }

    async fn simulate_authorization(
        &self,
        req: Request<pb::SimulateAuthorizationRequest>,
    ) -> Result<Response<pb::SimulateAuthorizationResponse>, Status> {
        crate::iam_simulate::simulate(&self.api, req.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| status_from_error(&e))
    }

    async fn set_clock_skew(
        &self,
        req: Request<pb::SetClockSkewRequest>,
    ) -> Result<Response<pb::SetClockSkewResponse>, Status> {
        let req = req.into_inner();
        let skew =
            ClockSkew::new(req.skew_ms, req.drift_ms_per_s).map_err(Status::invalid_argument)?;
        tracing::info!(
            skew_ms = req.skew_ms,
            drift_ms_per_s = req.drift_ms_per_s,
            "clock skew set"
        );
        self.api.clock.set_skew(skew);
        Ok(Response::new(pb::SetClockSkewResponse {
            clock_now: self.api.clock.now_secs(),
            clock_skew_ms: self.api.clock.skew_ms(),
        }))
    }

    async fn set_sync_paused(
        &self,
        req: Request<pb::SetSyncPausedRequest>,
    ) -> Result<Response<pb::SetSyncPausedResponse>, Status> {
        let paused = req.into_inner().paused;
        let link = self.api.sync.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "this node runs no synchronizer (its Region has no transport key)",
            )
        })?;
        tracing::info!(paused, "synchronizer pause set");
        link.set_paused(paused);
        if !paused {
            // Deliver what waited at once.
            self.api
                .app
                .read()
                .expect("invariant: lock not poisoned")
                .wake()
                .notify_one();
        }
        Ok(Response::new(pb::SetSyncPausedResponse {}))
    }

    async fn set_api_fault(
        &self,
        req: Request<pb::SetApiFaultRequest>,
    ) -> Result<Response<pb::SetApiFaultResponse>, Status> {
        let f = req.into_inner().fault.unwrap_or_default();
        let rule = api_fault_rule(&f).map_err(Status::invalid_argument)?;
        tracing::info!(?rule, "API fault set");
        self.api
            .injected
            .set(rule)
            .map_err(Status::invalid_argument)?;
        Ok(Response::new(pb::SetApiFaultResponse {}))
    }

    async fn clear_api_faults(
        &self,
        _req: Request<pb::ClearApiFaultsRequest>,
    ) -> Result<Response<pb::ClearApiFaultsResponse>, Status> {
        tracing::info!("all API faults cleared");
        self.api.injected.clear();
        Ok(Response::new(pb::ClearApiFaultsResponse {}))
    }

    async fn get_api_faults(
        &self,
        _req: Request<pb::GetApiFaultsRequest>,
    ) -> Result<Response<pb::GetApiFaultsResponse>, Status> {
        let faults = self
            .api
            .injected
            .list()
            .into_iter()
            .map(|r| {
                let (error, delay_ms) = match r.effect {
                    Effect::Throttling => ("ThrottlingException".to_string(), 0),
                    Effect::Internal => ("KMSInternalException".to_string(), 0),
                    Effect::Delay(d) => (String::new(), d.as_millis() as u64),
                };
                pb::ApiFault {
                    operation: r.operation.unwrap_or_default(),
                    error,
                    delay_ms,
                    percent: r.percent,
                }
            })
            .collect();
        Ok(Response::new(pb::GetApiFaultsResponse { faults }))
    }
}

/// An API fault rule from its admin form, or why it is refused.
fn api_fault_rule(f: &pb::ApiFault) -> Result<Rule, String> {
    let operation = match f.operation.as_str() {
        "" => None,
        op if crate::aws::dispatch::OPERATIONS.contains(&op) => Some(op.to_string()),
        other => {
            return Err(format!(
                "operation '{other}' is not a KMS operation (e.g. Encrypt, CreateKey)"
            ))
        }
    };
    let effect = match (f.error.as_str(), f.delay_ms) {
        ("ThrottlingException", 0) => Effect::Throttling,
        ("KMSInternalException", 0) => Effect::Internal,
        ("", d) if d > 0 => Effect::Delay(Duration::from_millis(d)),
        ("", _) => return Err("give an error or a delay_ms above 0".into()),
        (e, 0) => {
            return Err(format!(
                "error '{e}' cannot be injected; use ThrottlingException or KMSInternalException"
            ))
        }
        _ => return Err("give an error or a delay, not both".into()),
    };
    if f.delay_ms > 60_000 {
        return Err(format!(
            "delay_ms must be at most 60000, got {}",
            f.delay_ms
        ));
    }
    Ok(Rule {
        operation,
        effect,
        percent: f.percent,
    })
}
