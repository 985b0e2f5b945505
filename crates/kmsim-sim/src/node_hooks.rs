//! The node hooks a chaos fault sets on a whole Region through each node's admin API: the
//! Region's clock jumped (AdvanceClock, on its leader) or skewed (SetClockSkew, on every node),
//! its synchronizer paused (SetSyncPaused, every node), API errors and delays injected
//! (SetApiFault, every node). Used by `kmsim chaos` and the experiments' process runtime.

use std::time::Duration;

use kmsim_node::tls::Dialer;
use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{
    AdvanceClockRequest, ApiFault, ClearApiFaultsRequest, SetApiFaultRequest, SetClockSkewRequest,
    SetSyncPausedRequest,
};
use tonic::transport::Channel;

use crate::cluster::NodeName;

/// Deadline of one admin call.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// The admin client of the node at `addr`; with TLS, its certificate is verified for
/// `server_name` when given (a container reached at its address), else for `addr`'s host.
pub async fn admin_client(
    dialer: &Dialer,
    addr: &str,
    server_name: Option<&str>,
) -> Result<AdminServiceClient<Channel>, String> {
    let ep = match server_name {
        Some(name) => dialer.endpoint_to(addr, name),
        None => dialer.endpoint(addr),
    };
    let ep = ep
        .map_err(|e| e.to_string())?
        .connect_timeout(ADMIN_TIMEOUT)
        .timeout(ADMIN_TIMEOUT);
    let ch = ep
        .connect()
        .await
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    Ok(AdminServiceClient::new(ch))
}

/// The nodes of a cluster (name, admin address) and how to dial them.
pub struct RegionHooks<'a> {
    /// The operator's dialer.
    pub dialer: &'a Dialer,
    /// Every node of the cluster with its admin address.
    pub nodes: &'a [(NodeName, String)],
    /// The name each node's certificate carries, when its address is not that name (a
    /// container reached from the host); `None`: the address's host.
    pub server_name: Option<&'a (dyn Fn(&NodeName) -> String + Send + Sync)>,
}

/// What a Region-wide setting did on each node: `Ok` or why not.
pub type PerNode = Vec<(NodeName, Result<(), String>)>;

/// Fails with the nodes a setting could not reach, naming each.
pub fn all_set(what: &str, results: &PerNode) -> Result<(), String> {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{what} not set on {}", failed.join("; ")))
    }
}

impl<'a> RegionHooks<'a> {
    /// The hooks of `nodes`, each node's certificate verified for its address's host.
    pub fn new(dialer: &'a Dialer, nodes: &'a [(NodeName, String)]) -> RegionHooks<'a> {
        RegionHooks {
            dialer,
            nodes,
            server_name: None,
        }
    }

    /// The same hooks, each node's certificate verified for the name `name` gives it (a
    /// container reached at its address).
    pub fn verified_as(
        self,
        name: &'a (dyn Fn(&NodeName) -> String + Send + Sync),
    ) -> RegionHooks<'a> {
        RegionHooks {
            server_name: Some(name),
            ..self
        }
    }

    fn name_of(&self, n: &NodeName) -> Option<String> {
        self.server_name.map(|f| f(n))
    }

    fn of(&self, region: Option<&str>) -> Result<Vec<&(NodeName, String)>, String> {
        let picked: Vec<_> = self
            .nodes
            .iter()
            .filter(|(n, _)| region.is_none_or(|r| n.region == r))
            .collect();
        match (picked.is_empty(), region) {
            (true, Some(r)) => Err(format!("'{r}' is not a Region of the cluster")),
            _ => Ok(picked),
        }
    }

    /// Moves `region`'s replicated clock forward by `millis` (AdvanceClock on its leader:
    /// each node is asked in turn until the leader takes it). Returns the leader and the
    /// Region's offset after the jump.
    pub async fn jump_clock(&self, region: &str, millis: i64) -> Result<(NodeName, i64), String> {
        let mut last = String::from("no node answered");
        for (n, addr) in self.of(Some(region))? {
            let mut c = match admin_client(self.dialer, addr, self.name_of(n).as_deref()).await {
                Ok(c) => c,
                Err(e) => {
                    last = format!("{n}: {e}");
                    continue;
                }
            };
            match c.advance_clock(AdvanceClockRequest { millis }).await {
                Ok(r) => return Ok((n.clone(), r.into_inner().clock_offset_ms)),
                Err(s) if s.code() == tonic::Code::InvalidArgument => {
                    return Err(s.message().to_string())
                }
                Err(s) => last = format!("{n}: {}", s.message()),
            }
        }
        Err(format!("cannot move the clock of {region}: {last}"))
    }

    /// Runs `set` on the admin API of every node of `region` (of the cluster when `None`). A
    /// node that refuses the setting as invalid (`INVALID_ARGUMENT`) fails the whole call at
    /// once with its reason; any other failure is that node's.
    async fn each<F, Fut, T>(&self, region: Option<&str>, set: F) -> Result<PerNode, String>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let mut out = Vec::new();
        for (n, addr) in self.of(region)? {
            let r = match admin_client(self.dialer, addr, self.name_of(n).as_deref()).await {
                Ok(c) => match set(c).await {
                    Err(s) if s.code() == tonic::Code::InvalidArgument => {
                        return Err(s.message().to_string())
                    }
                    r => r.map(|_| ()).map_err(|s| s.message().to_string()),
                },
                Err(e) => Err(e),
            };
            out.push((n.clone(), r));
        }
        Ok(out)
    }

    /// Sets the same clock skew on every node of `region` (0, 0 takes it back).
    pub async fn skew_clock(
        &self,
        region: &str,
        skew_ms: i64,
        drift_ms_per_s: i64,
    ) -> Result<PerNode, String> {
        self.each(Some(region), |mut c| async move {
            c.set_clock_skew(SetClockSkewRequest {
                skew_ms,
                drift_ms_per_s,
            })
            .await
        })
        .await
    }

    /// Pauses or resumes the synchronizer of every node of `region`.
    pub async fn pause_sync(&self, region: &str, paused: bool) -> Result<PerNode, String> {
        self.each(Some(region), |mut c| async move {
            c.set_sync_paused(SetSyncPausedRequest { paused }).await
        })
        .await
    }

    /// Sets an API fault rule on every node of `region` (every node of the cluster when
    /// `None`). A rule the node refuses fails at once with its reason.
    pub async fn inject(&self, region: Option<&str>, fault: &ApiFault) -> Result<PerNode, String> {
        self.each(region, |mut c| async move {
            c.set_api_fault(SetApiFaultRequest {
                fault: Some(fault.clone()),
            })
            .await
        })
        .await
    }

    /// Removes every API fault rule of every node of `region` (of the cluster when `None`).
    pub async fn clear_injected(&self, region: Option<&str>) -> Result<PerNode, String> {
        self.each(region, |mut c| async move {
            c.clear_api_faults(ClearApiFaultsRequest {}).await
        })
        .await
    }
}
