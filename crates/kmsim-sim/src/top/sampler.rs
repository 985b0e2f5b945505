//! Asking a running cluster: one round asks every node for its admin `Status`, its
//! `GetLinkFaults` and its `GET /metrics`, and the gateway for its `GET /metrics`, all at once,
//! each with a deadline, and returns what came back as a [`ClusterSample`]. Whatever does not
//! answer in time is `None` there; a round never fails.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tonic::transport::Channel;

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{GetLinkFaultsRequest, StatusRequest};

use super::sample::{ClusterSample, GatewaySample, LinkFault, NodeSample, NodeStatus};
use crate::aws_client::{AwsJsonClient, Signer};
use crate::cluster::{ClusterDir, ClusterError};
use crate::scrape::scrape;

/// The nodes and the gateway of one cluster, with the clients to ask them (kept between
/// rounds: a TLS handshake per node per second would cost more than the questions).
pub struct Sampler {
    /// Every node of the topology, in its order.
    nodes: Vec<Target>,
    /// The gateway's `/metrics` client: `None` without a gateway in the topology.
    gateway: Option<AwsJsonClient>,
    /// The origin of [`ClusterSample::at`].
    started: Instant,
    /// How long one question may take.
    timeout: Duration,
}

/// One node and its clients.
#[derive(Clone)]
struct Target {
    /// Its Region.
    region: String,
    /// Its id.
    id: u64,
    /// Its admin service (a lazily connecting channel, reconnected after a failure).
    admin: AdminServiceClient<Channel>,
    /// Its AWS endpoint, when it serves one.
    metrics: Option<AwsJsonClient>,
}

impl Sampler {
    /// The sampler of the cluster in `dir`; every question gets `timeout`. Must be called inside
    /// a tokio runtime (the channels connect lazily on it).
    pub fn new(dir: &ClusterDir, timeout: Duration) -> Result<Sampler, ClusterError> {
        let topology = dir.topology()?;
        let dialer = dir.operator_dialer()?;
        let scheme = topology.aws_scheme();
        let ca = match topology.tls.as_ref() {
            Some(t) if scheme == "https" => Some(
                t.read_ca()
                    .map_err(|e| ClusterError::Invalid(format!("CA certificate: {e}")))?,
            ),
            _ => None,
        };
        // `/metrics` needs no signature; a client needs a signer all the same.
        let metrics_client = |addr: &str| {
            AwsJsonClient::with_ca(
                &format!("{scheme}://{addr}"),
                Signer::new("kmsim-top", "kmsim-top", "us-east-1"),
                ca.as_deref(),
            )
            .map_err(|e| ClusterError::Invalid(format!("{addr}: {e}")))
        };
        let mut nodes = Vec::new();
        for (name, entry) in dir.nodes()? {
            let addr = entry.advertise_addr();
            let channel = dialer
                .endpoint(&addr)
                .map_err(|e| ClusterError::Invalid(format!("{name} at {addr}: {e}")))?
                .connect_timeout(timeout)
                .timeout(timeout)
                .connect_lazy();
            nodes.push(Target {
                region: name.region,
                id: name.id,
                admin: AdminServiceClient::new(channel),
                metrics: entry
                    .aws_advertise_addr()
                    .map(|a| metrics_client(&a))
                    .transpose()?,
            });
        }
        let gateway = topology
            .endpoint
            .map(|e| metrics_client(&reachable(e.listen).to_string()))
            .transpose()?;
        Ok(Sampler {
            nodes,
            gateway,
            started: Instant::now(),
            timeout,
        })
    }

    /// One round: asks everyone at once and waits for every answer or deadline.
    pub async fn take(&self) -> ClusterSample {
        let at = self.started.elapsed();
        let mut asked = JoinSet::new();
        for (i, target) in self.nodes.iter().enumerate() {
            let (target, timeout) = (target.clone(), self.timeout);
            asked.spawn(async move { (i, ask_node(target, timeout).await) });
        }
        let gateway = match &self.gateway {
            Some(client) => Some(GatewaySample {
                metrics: tokio::time::timeout(self.timeout, scrape(client))
                    .await
                    .ok()
                    .and_then(Result::ok),
            }),
            None => None,
        };
        let mut nodes: Vec<Option<NodeSample>> = vec![None; self.nodes.len()];
        while let Some(done) = asked.join_next().await {
            if let Ok((i, sample)) = done {
                nodes[i] = Some(sample);
            }
        }
        ClusterSample {
            at,
            // A task that panicked (it does not) would leave its node as not answering.
            nodes: nodes
                .into_iter()
                .zip(&self.nodes)
                .map(|(s, t)| {
                    s.unwrap_or_else(|| NodeSample {
                        region: t.region.clone(),
                        id: t.id,
                        ..NodeSample::default()
                    })
                })
                .collect(),
            gateway,
        }
    }
}

/// Where to reach a listening address: a wildcard one on the loopback address.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// A node's three answers, asked at once.
async fn ask_node(t: Target, timeout: Duration) -> NodeSample {
    let status = async {
        let mut admin = t.admin.clone();
        let answer = tokio::time::timeout(timeout, admin.status(StatusRequest {}));
        let s = answer.await.ok()?.ok()?.into_inner();
        Some(NodeStatus {
            role: s.role,
            term: s.term,
            leader_id: s.leader_id,
            applied: s.last_applied_index,
        })
    };
    let faults = async {
        let mut admin = t.admin.clone();
        let answer = admin.get_link_faults(GetLinkFaultsRequest {});
        let links = tokio::time::timeout(timeout, answer)
            .await
            .ok()?
            .ok()?
            .into_inner()
            .links;
        Some(
            links
                .into_iter()
                .map(|l| {
                    let p = l.profile.unwrap_or_default();
                    LinkFault {
                        peer: l.peer,
                        delay_ms: p.delay_ms,
                        jitter_ms: p.jitter_ms,
                        loss: p.loss,
                        partitioned: p.partitioned,
                    }
                })
                .collect(),
        )
    };
    let metrics = async {
        let client = t.metrics.as_ref()?;
        tokio::time::timeout(timeout, scrape(client))
            .await
            .ok()?
            .ok()
    };
    let (status, faults, metrics) = tokio::join!(status, faults, metrics);
    NodeSample {
        region: t.region.clone(),
        id: t.id,
        status,
        metrics,
        faults,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(reachable(a("0.0.0.0:4599")), a("127.0.0.1:4599"));
        assert_eq!(reachable(a("[::]:4599")), a("[::1]:4599"));
        assert_eq!(reachable(a("127.0.0.2:4599")), a("127.0.0.2:4599"));
    }
}
