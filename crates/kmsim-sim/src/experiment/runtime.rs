//! The runtime interface: everything an experiment does to a cluster, and nothing else. The
//! runner, its workload and its observations go through a [`Runtime`] only, so the same
//! experiment runs on local processes ([`ProcessRuntime`]), on containers
//! ([`super::DockerRuntime`]), and later on a simulated runtime, by implementing this trait.
//! A runtime provides the lifecycle of its nodes (kill, restart, pause, resume), the AWS
//! endpoint, and where its nodes' admin API is reached; what goes through the admin API
//! (status, leader, link faults) is written once, here, on top of [`Runtime::admin`].

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use kmsim_node::admin_service::MAX_KEY_VIEWS;
use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{
    ApiFault, ClearLinkFaultsRequest, KeyView, LinkProfile, ReadKeyViewsRequest,
    SetLinkFaultsRequest, StatusRequest, StatusResponse,
};
use nix::sys::signal::Signal;
use tonic::transport::Channel;

use crate::aws_client::AwsJsonClient;
use crate::cluster::{ClusterDir, NodeName};
use crate::node_hooks::{admin_client, all_set, RegionHooks};
use crate::process::{kill_nodes, restart_nodes, signal_running, KILL_WAIT};

/// A link setting: messages from `from` to `to` get `profile`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkSetting {
    /// The sending node.
    pub from: NodeName,
    /// The receiving node.
    pub to: NodeName,
    /// What happens to its messages (all zero: healthy).
    pub profile: LinkProfile,
}

/// What an experiment can do to a cluster.
pub trait Runtime: Send + Sync {
    /// `processes`, `docker`, …: recorded in the results.
    fn name(&self) -> &'static str;

    /// Every node, by Region.
    fn nodes(&self) -> Vec<NodeName>;

    /// A client of the cluster's AWS endpoint, signing for `region`.
    fn client(&self, region: &str) -> Result<AwsJsonClient, String>;

    /// A client of `node`'s admin API, connected (each call bounded by a few seconds).
    fn admin(
        &self,
        node: &NodeName,
    ) -> impl Future<Output = Result<AdminServiceClient<Channel>, String>> + Send;

    /// `node`'s admin `Status`, or `None` when it does not answer within `timeout`.
    fn status(
        &self,
        node: &NodeName,
        timeout: Duration,
    ) -> impl Future<Output = Option<StatusResponse>> + Send {
        async move {
            tokio::time::timeout(timeout, async {
                let mut c = self.admin(node).await.ok()?;
                c.status(StatusRequest {})
                    .await
                    .ok()
                    .map(|r| r.into_inner())
            })
            .await
            .ok()
            .flatten()
        }
    }

    /// The node that leads `region` now: one that says it leads, else the leader the first
    /// answering node names (`None` when none answers or knows one).
    fn leader(&self, region: &str) -> impl Future<Output = Option<NodeName>> + Send {
        async move {
            let mut seen: Option<u64> = None;
            for n in self.nodes().into_iter().filter(|n| n.region == region) {
                let Some(s) = self.status(&n, Duration::from_millis(500)).await else {
                    continue;
                };
                if s.role == "leader" {
                    return Some(n);
                }
                if seen.is_none() {
                    seen = s.leader_id;
                }
            }
            seen.map(|id| NodeName {
                region: region.to_string(),
                id,
            })
        }
    }

    /// What `region` shows of the keys `key_ids` (IDs, not ARNs): the admin `ReadKeyViews`,
    /// answered after the Region's read index, so it holds every write the Region
    /// acknowledged; a key the Region does not hold is left out. Asked of the Region's nodes
    /// in turn until one answers, [`MAX_KEY_VIEWS`] (the node's limit) keys a call; `Err` when none does.
    fn key_views(
        &self,
        region: &str,
        key_ids: &[String],
    ) -> impl Future<Output = Result<Vec<KeyView>, String>> + Send {
        async move {
            let mut failed = format!("{region} has no node");
            for n in self.nodes().into_iter().filter(|n| n.region == region) {
                let read = async {
                    let mut c = self.admin(&n).await?;
                    let mut views = Vec::with_capacity(key_ids.len());
                    for ids in key_ids.chunks(MAX_KEY_VIEWS) {
                        let answer = c
                            .read_key_views(ReadKeyViewsRequest {
                                key_ids: ids.to_vec(),
                            })
                            .await
                            .map_err(|e| format!("{n}: {}", e.message()))?;
                        views.extend(answer.into_inner().keys);
                    }
                    Ok::<_, String>(views)
                };
                match read.await {
                    Ok(views) => return Ok(views),
                    Err(e) => failed = e,
                }
            }
            Err(failed)
        }
    }

    /// Kills these nodes (SIGKILL, `docker kill`; peers see refused connections) and waits
    /// until they are gone.
    fn kill(&self, nodes: &[NodeName]) -> impl Future<Output = Result<(), String>> + Send;

    /// Starts these nodes again and waits until each answers.
    fn restart(&self, nodes: &[NodeName]) -> impl Future<Output = Result<(), String>> + Send;

    /// Freezes a node (SIGSTOP, `docker pause`): its connections stay open and nothing answers.
    fn pause(&self, node: &NodeName) -> impl Future<Output = Result<(), String>> + Send;

    /// Thaws a paused node.
    fn resume(&self, node: &NodeName) -> impl Future<Output = Result<(), String>> + Send;

    /// Applies link settings (the nodes' application-level fault layer).
    fn set_links(
        &self,
        settings: &[LinkSetting],
    ) -> impl Future<Output = Result<(), String>> + Send {
        async move {
            for s in settings {
                let mut c = self.admin(&s.from).await?;
                c.set_link_faults(SetLinkFaultsRequest {
                    peer: s.to.to_string(),
                    profile: Some(s.profile),
                })
                .await
                .map_err(|e| format!("set the link {} -> {}: {}", s.from, s.to, e.message()))?;
            }
            Ok(())
        }
    }

    /// Removes every link fault of every node that answers.
    fn clear_links(&self) -> impl Future<Output = Result<(), String>> + Send {
        async move {
            let mut failed = Vec::new();
            for n in self.nodes() {
                let cleared = match self.admin(&n).await {
                    Ok(mut c) => c.clear_link_faults(ClearLinkFaultsRequest {}).await.is_ok(),
                    Err(_) => false,
                };
                if !cleared {
                    failed.push(n.to_string());
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!("could not heal {}", failed.join(", ")))
            }
        }
    }

    /// Moves `region`'s replicated clock forward by `by_ms` for good (it never goes back).
    fn jump_clock(
        &self,
        region: &str,
        by_ms: i64,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Skews the clock of every node of `region` (node-local, not replicated); `0, 0` takes
    /// the skew back.
    fn skew_clock(
        &self,
        region: &str,
        skew_ms: i64,
        drift_ms_per_s: i64,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Pauses (`true`) or resumes `region`'s synchronizer on every one of its nodes.
    fn pause_sync(
        &self,
        region: &str,
        paused: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Sets an API fault rule on every node of `region` (a rule of 0 % removes the rule of
    /// its operation and kind).
    fn inject(
        &self,
        region: &str,
        fault: &ApiFault,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// The synchronizer's lag per Region pair (source, destination, samples in µs) as the
    /// nodes measured it since they started (`kmsim_sync_lag_seconds`); empty when unknown.
    fn sync_lag(&self) -> impl Future<Output = Vec<(String, String, Vec<u64>)>> + Send;
}

/// A cluster of local processes started by `kmsim up` (PID files in its data directory).
pub struct ProcessRuntime {
    dir: ClusterDir,
    /// The `kmsim` binary that starts nodes again.
    exe: PathBuf,
    nodes: Vec<(NodeName, String)>,
    dialer: kmsim_node::tls::Dialer,
}

/// How long a restarted node may take to answer.
const RESTART_WAIT: Duration = Duration::from_secs(40);

impl ProcessRuntime {
    /// The cluster in `dir`, whose nodes `exe` (a `kmsim` binary) restarts.
    pub fn open(dir: ClusterDir, exe: PathBuf) -> Result<ProcessRuntime, String> {
        let nodes = dir
            .nodes()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(n, e)| (n, e.advertise_addr()))
            .collect();
        let dialer = dir.operator_dialer().map_err(|e| e.to_string())?;
        Ok(ProcessRuntime {
            dir,
            exe,
            nodes,
            dialer,
        })
    }

    fn addr(&self, n: &NodeName) -> Result<String, String> {
        self.nodes
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| format!("{n} is not in the topology"))
    }

    fn hooks(&self) -> RegionHooks<'_> {
        RegionHooks::new(&self.dialer, &self.nodes)
    }

    fn signal(&self, node: &NodeName, sig: Signal) -> Result<(), String> {
        signal_running(&self.dir, node, sig).map(|_| ())
    }
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn nodes(&self) -> Vec<NodeName> {
        self.nodes.iter().map(|(n, _)| n.clone()).collect()
    }

    fn client(&self, region: &str) -> Result<AwsJsonClient, String> {
        crate::aws_client::gateway_client(&self.dir, region)
    }

    async fn admin(&self, node: &NodeName) -> Result<AdminServiceClient<Channel>, String> {
        let addr = self.addr(node)?;
        admin_client(&self.dialer, &addr, None)
            .await
            .map_err(|e| format!("{node}: {e}"))
    }

    async fn kill(&self, nodes: &[NodeName]) -> Result<(), String> {
        let dir = self.dir.clone();
        let nodes = nodes.to_vec();
        tokio::task::spawn_blocking(move || kill_nodes(&dir, &nodes, KILL_WAIT))
            .await
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn restart(&self, nodes: &[NodeName]) -> Result<(), String> {
        restart_nodes(&self.exe, &self.dir, nodes, RESTART_WAIT)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn pause(&self, node: &NodeName) -> Result<(), String> {
        self.signal(node, Signal::SIGSTOP)
    }

    async fn resume(&self, node: &NodeName) -> Result<(), String> {
        self.signal(node, Signal::SIGCONT)
    }

    async fn jump_clock(&self, region: &str, by_ms: i64) -> Result<(), String> {
        self.hooks().jump_clock(region, by_ms).await.map(|_| ())
    }

    async fn skew_clock(
        &self,
        region: &str,
        skew_ms: i64,
        drift_ms_per_s: i64,
    ) -> Result<(), String> {
        let r = self
            .hooks()
            .skew_clock(region, skew_ms, drift_ms_per_s)
            .await?;
        all_set("clock skew", &r)
    }

    async fn pause_sync(&self, region: &str, paused: bool) -> Result<(), String> {
        let r = self.hooks().pause_sync(region, paused).await?;
        all_set("synchronizer pause", &r)
    }

    async fn inject(&self, region: &str, fault: &ApiFault) -> Result<(), String> {
        let r = self.hooks().inject(Some(region), fault).await?;
        all_set("API fault", &r)
    }

    async fn sync_lag(&self) -> Vec<(String, String, Vec<u64>)> {
        let Ok(clients) = crate::scrape::node_metrics_clients(&self.dir) else {
            return Vec::new();
        };
        let mut scrapes = Vec::new();
        for (_, c) in &clients {
            if let Ok(s) = crate::scrape::scrape(c).await {
                scrapes.push(s);
            }
        }
        crate::scrape::sync_lag_samples(&scrapes)
    }
}
