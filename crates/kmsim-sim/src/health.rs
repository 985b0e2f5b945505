//! Asking nodes how they are: the admin `Status` RPC with a short deadline, and the plain
//! HTTP probes (`GET /healthz`, `/readyz`) of the AWS endpoints.

use std::time::{Duration, Instant};

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{StatusRequest, StatusResponse};

use kmsim_node::config::NodeEntry;
use kmsim_node::tls::Dialer;

use crate::cluster::{ClusterDir, ClusterError, NodeName};

/// The status of one node, or `None` if it does not answer within `timeout`.
pub async fn node_status(dialer: &Dialer, addr: &str, timeout: Duration) -> Option<StatusResponse> {
    let endpoint = dialer
        .endpoint(addr)
        .ok()?
        .connect_timeout(timeout)
        .timeout(timeout);
    let fut = async {
        let ch = endpoint.connect().await.ok()?;
        AdminServiceClient::new(ch)
            .status(StatusRequest {})
            .await
            .ok()
            .map(|r| r.into_inner())
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

/// Waits until every Region has one leader that all its answering nodes agree on and every
/// node answers. Returns the statuses.
pub async fn wait_healthy(
    dir: &ClusterDir,
    timeout: Duration,
) -> Result<Vec<StatusResponse>, ClusterError> {
    wait_healthy_regions(dir, None, timeout).await
}

/// [`wait_healthy`] for the nodes of one Region only (`None`: every Region).
pub async fn wait_healthy_regions(
    dir: &ClusterDir,
    only: Option<&str>,
    timeout: Duration,
) -> Result<Vec<StatusResponse>, ClusterError> {
    let mut nodes = dir.nodes()?;
    let dialer = dir.operator_dialer()?;
    if let Some(region) = only {
        nodes.retain(|(n, _)| n.region == region);
    }
    let dialer = &dialer;
    let status = |(_, entry): &(NodeName, NodeEntry)| {
        let addr = entry.advertise_addr();
        async move { node_status(dialer, &addr, Duration::from_millis(500)).await }
    };
    let wanted = Health {
        nodes: nodes.len(),
        caught_up: false,
    };
    wait_until(wanted, &nodes, status, timeout, Duration::from_millis(100))
        .await
        .map_err(|why| {
            ClusterError::Invalid(format!(
                "the cluster did not become healthy within {timeout:?} ({why}); see the logs in {}",
                dir.root().join("logs").display()
            ))
        })
}

/// What healthy means for a set of nodes: how many there are, and whether each must also
/// have applied everything its leader had applied.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    /// How many nodes must answer.
    pub nodes: usize,
    /// Every node must have applied up to its leader's applied index (a restarted node has
    /// caught up), not only follow it.
    pub caught_up: bool,
}

impl Health {
    /// Judges the statuses that answered: `Ok` when all `nodes` answered and in every Region
    /// one leader is followed by all its nodes (and, with `caught_up`, they have applied what
    /// it had); else what is missing.
    pub fn judge(&self, statuses: &[StatusResponse]) -> Result<(), String> {
        if statuses.len() < self.nodes {
            return Err(format!("{} of {} nodes answer", statuses.len(), self.nodes));
        }
        let regions: std::collections::BTreeSet<&str> =
            statuses.iter().map(|s| s.region.as_str()).collect();
        for region in regions {
            let members: Vec<&StatusResponse> =
                statuses.iter().filter(|s| s.region == region).collect();
            let Some(leader) = members.iter().find(|s| s.role == "leader") else {
                return Err(format!("no node of {region} leads"));
            };
            if !members.iter().all(|s| s.leader_id == Some(leader.node_id)) {
                return Err(format!("not every node of {region} follows its leader"));
            }
            if self.caught_up
                && !members
                    .iter()
                    .all(|s| s.last_applied_index >= leader.last_applied_index)
            {
                return Err(format!(
                    "not every node of {region} has caught up with its leader"
                ));
            }
        }
        Ok(())
    }
}

/// Polls the statuses of `nodes` (each asked in turn through `status`, which gives `None` for
/// a node that does not answer; every `interval`) until they are healthy as `wanted` says, and
/// returns them; after `timeout`, what was still missing.
pub async fn wait_until<'a, N, F, Fut>(
    wanted: Health,
    nodes: &'a [N],
    status: F,
    timeout: Duration,
    interval: Duration,
) -> Result<Vec<StatusResponse>, String>
where
    F: Fn(&'a N) -> Fut,
    Fut: std::future::Future<Output = Option<StatusResponse>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = Vec::with_capacity(nodes.len());
        for n in nodes {
            all.extend(status(n).await);
        }
        let why = match wanted.judge(&all) {
            Ok(()) => return Ok(all),
            Err(why) => why,
        };
        if Instant::now() > deadline {
            return Err(why);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Waits until something accepts TCP connections on `addr` (the gateway, which has no admin
/// API), up to `timeout`.
pub async fn wait_listening(addr: std::net::SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let attempt = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        );
        if let Ok(Ok(_)) = attempt.await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Asks an HTTP(S) `url` (`/healthz`, `/readyz` of a node or the gateway) with `GET` and
/// returns the status and the body, or why no answer came within `timeout`. HTTPS trusts only
/// the CA certificate(s) in `ca_pem` (the cluster's CA).
pub async fn http_get(
    url: &str,
    ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(timeout));
    connector.enforce_http(false);
    let tls = kmsim_node::tls::https_client_config(ca_pem.unwrap_or_default())
        .map_err(|e| format!("CA certificate: {e}"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client: Client<_, http_body_util::Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let call = async {
        let resp = client.get(uri).await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = http_body_util::Limited::new(resp.into_body(), 64 << 10)
            .collect()
            .await
            .map_err(|e| format!("{url}: reading the answer: {e}"))?
            .to_bytes();
        Ok((
            status,
            String::from_utf8_lossy(&body).trim_end().to_string(),
        ))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(region: &str, id: u64, leader: Option<u64>, applied: u64) -> StatusResponse {
        StatusResponse {
            region: region.into(),
            node_id: id,
            role: if leader == Some(id) {
                "leader"
            } else {
                "follower"
            }
            .into(),
            leader_id: leader,
            last_applied_index: Some(applied),
            ..Default::default()
        }
    }

    #[test]
    fn healthy_needs_every_node_and_one_followed_leader_per_region() {
        let three = Health {
            nodes: 3,
            caught_up: false,
        };
        let a = node("a", 1, Some(1), 10);
        let b = node("a", 2, Some(1), 10);
        let c = node("b", 1, Some(1), 4);
        assert!(three.judge(&[a.clone(), b.clone(), c.clone()]).is_ok());
        let missing = three.judge(&[a.clone(), b.clone()]).unwrap_err();
        assert_eq!(missing, "2 of 3 nodes answer");
        let split = node("a", 2, Some(2), 10);
        assert!(three
            .judge(&[a.clone(), split, c.clone()])
            .unwrap_err()
            .contains("follows its leader"));
        let leaderless = node("b", 1, None, 4);
        assert_eq!(
            three.judge(&[a, b, leaderless]).unwrap_err(),
            "no node of b leads"
        );
    }

    #[test]
    fn caught_up_also_needs_every_follower_at_its_leaders_applied_index() {
        let leader = node("a", 1, Some(1), 10);
        let behind = node("a", 2, Some(1), 9);
        let statuses = [leader, behind];
        let following = Health {
            nodes: 2,
            caught_up: false,
        };
        assert!(following.judge(&statuses).is_ok());
        let caught_up = Health {
            caught_up: true,
            ..following
        };
        assert!(caught_up
            .judge(&statuses)
            .unwrap_err()
            .contains("caught up"));
    }
}
