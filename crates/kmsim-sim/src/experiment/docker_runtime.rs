//! [`Runtime`] for a cluster in containers (`kmsim up --runtime docker`), driven from the
//! host: the nodes' lifecycle through the Docker CLI (`docker kill` and `docker start` on the
//! node's volume, `docker pause` and `unpause` for the gray failure), the AWS endpoint the
//! gateway publishes on `127.0.0.1`, and each node's admin API at its container's address on
//! the inter-Region network (not internal, so the host has a route to it), with TLS verifying
//! the certificate for the container's name, which is what the certificate carries.
//!
//! The application-level fault layer (link profiles, partitions) works here as on processes;
//! its faults are the nodes' own. A node cut off at the network level (`kmsim chaos cut`) has
//! no inter-Region address, so its admin API is out of reach until it is reconnected.

use std::time::Duration;

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::ApiFault;
use tonic::transport::Channel;

use super::runtime::Runtime;
use crate::aws_client::{signed_client, AwsJsonClient};
use crate::cluster::{ClusterDir, NodeName, CONTAINER_AWS_PORT};
use crate::container::faults::{ContainerAction, ContainerCluster};
use crate::node_hooks::{admin_client, all_set, RegionHooks};

/// How long a container started again may take to be ready.
const RESTART_WAIT: Duration = Duration::from_secs(60);
/// How long killed containers may take to stop running.
const KILL_WAIT: Duration = Duration::from_secs(20);

/// A cluster whose nodes run in containers, operated from the host.
pub struct DockerRuntime {
    cluster: ContainerCluster,
    topology: kmsim_node::config::Topology,
    dialer: kmsim_node::tls::Dialer,
    gateway: String,
    /// Each node's container name, which its certificate carries.
    container_of: Box<dyn Fn(&NodeName) -> String + Send + Sync>,
}

impl DockerRuntime {
    /// The cluster in containers whose compose project is in `dir`.
    pub fn open(dir: &ClusterDir) -> Result<DockerRuntime, String> {
        let topology = dir.topology().map_err(|e| e.to_string())?;
        let cluster = ContainerCluster::open(dir.root(), &topology)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "{} holds no cluster in containers (no docker-compose.yml)",
                    dir.root().display()
                )
            })?;
        let gateway = cluster.gateway_url().map_err(|e| e.to_string())?;
        let dialer = dir.operator_dialer().map_err(|e| e.to_string())?;
        let c = cluster.clone();
        Ok(DockerRuntime {
            container_of: Box::new(move |n| c.container(n)),
            cluster,
            topology,
            dialer,
            gateway,
        })
    }

    /// Runs a blocking Docker CLI step off the async threads.
    async fn docker<T: Send + 'static>(
        &self,
        f: impl FnOnce(ContainerCluster) -> Result<T, crate::container::ContainerError> + Send + 'static,
    ) -> Result<T, String> {
        let c = self.cluster.clone();
        tokio::task::spawn_blocking(move || f(c))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

impl DockerRuntime {
    /// The nodes of `region` with their addresses now (those that have one).
    async fn addresses(&self, region: &str) -> Vec<(NodeName, String)> {
        let mut out = Vec::new();
        for n in self.nodes().into_iter().filter(|n| n.region == region) {
            let m = n.clone();
            if let Ok(addr) = self.docker(move |c| c.grpc_address(&m)).await {
                out.push((n, addr));
            }
        }
        out
    }

    /// The Region-wide node hooks over `nodes`, verifying each node as its container.
    fn hooks<'a>(&'a self, nodes: &'a [(NodeName, String)]) -> RegionHooks<'a> {
        RegionHooks::new(&self.dialer, nodes).verified_as(self.container_of.as_ref())
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn nodes(&self) -> Vec<NodeName> {
        self.topology
            .regions
            .iter()
            .flat_map(|r| {
                r.nodes.iter().map(|n| NodeName {
                    region: r.name.clone(),
                    id: n.id,
                })
            })
            .collect()
    }

    fn client(&self, region: &str) -> Result<AwsJsonClient, String> {
        signed_client(&self.topology, &self.gateway, region)
    }

    async fn admin(&self, node: &NodeName) -> Result<AdminServiceClient<Channel>, String> {
        let n = node.clone();
        let addr = self.docker(move |c| c.grpc_address(&n)).await?;
        admin_client(&self.dialer, &addr, Some(&self.cluster.container(node)))
            .await
            .map_err(|e| format!("{node}: {e}"))
    }

    async fn jump_clock(&self, region: &str, by_ms: i64) -> Result<(), String> {
        let nodes = self.addresses(region).await;
        self.hooks(&nodes)
            .jump_clock(region, by_ms)
            .await
            .map(|_| ())
    }

    async fn skew_clock(
        &self,
        region: &str,
        skew_ms: i64,
        drift_ms_per_s: i64,
    ) -> Result<(), String> {
        let nodes = self.addresses(region).await;
        let r = self
            .hooks(&nodes)
            .skew_clock(region, skew_ms, drift_ms_per_s)
            .await?;
        all_set("clock skew", &r)
    }

    async fn pause_sync(&self, region: &str, paused: bool) -> Result<(), String> {
        let nodes = self.addresses(region).await;
        let r = self.hooks(&nodes).pause_sync(region, paused).await?;
        all_set("synchronizer pause", &r)
    }

    async fn inject(&self, region: &str, fault: &ApiFault) -> Result<(), String> {
        let nodes = self.addresses(region).await;
        let r = self.hooks(&nodes).inject(Some(region), fault).await?;
        all_set("API fault", &r)
    }

    async fn kill(&self, nodes: &[NodeName]) -> Result<(), String> {
        let nodes = nodes.to_vec();
        self.docker(move |c| c.kill_and_wait(&nodes, KILL_WAIT))
            .await
    }

    async fn restart(&self, nodes: &[NodeName]) -> Result<(), String> {
        let nodes = nodes.to_vec();
        self.docker(move |c| c.start_and_wait(&nodes, RESTART_WAIT))
            .await
    }

    async fn pause(&self, node: &NodeName) -> Result<(), String> {
        let n = node.clone();
        self.docker(move |c| c.act(ContainerAction::Pause, &n))
            .await
    }

    async fn resume(&self, node: &NodeName) -> Result<(), String> {
        let n = node.clone();
        self.docker(move |c| c.act(ContainerAction::Resume, &n))
            .await
    }

    async fn sync_lag(&self) -> Vec<(String, String, Vec<u64>)> {
        // `/metrics` is on each node's AWS port, at the same address as its admin API. Over
        // HTTPS the certificate names the container, not the address: no scrape then.
        if self.topology.aws_scheme() != "http" {
            return Vec::new();
        }
        let mut scrapes = Vec::new();
        for n in self.nodes() {
            let m = n.clone();
            let Ok(addr) = self.docker(move |c| c.grpc_address(&m)).await else {
                continue;
            };
            let Some((ip, _)) = addr.rsplit_once(':') else {
                continue;
            };
            let url = format!("http://{ip}:{CONTAINER_AWS_PORT}");
            let signer = crate::aws_client::Signer::new("kmsim", "kmsim", &n.region);
            let Ok(client) = AwsJsonClient::with_ca(&url, signer, None) else {
                continue;
            };
            if let Ok(s) = crate::scrape::scrape(&client).await {
                scrapes.push(s);
            }
        }
        crate::scrape::sync_lag_samples(&scrapes)
    }
}
