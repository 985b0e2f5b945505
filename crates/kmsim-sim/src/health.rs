//! Asking nodes how they are: the admin `Status` RPC with a short deadline, and the plain
//! HTTP probes (`GET /healthz`, `/readyz`) of the AWS endpoints.

use std::time::{Duration, Instant};

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{StatusRequest, StatusResponse};

use kmsim_node::tls::Dialer;

use crate::cluster::{ClusterDir, ClusterError};

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
    let deadline = Instant::now() + timeout;
    let mut nodes = dir.nodes()?;
    let dialer = dir.operator_dialer()?;
    if let Some(region) = only {
        nodes.retain(|(n, _)| n.region == region);
    }
    loop {
        let mut all = Vec::new();
        for (_, entry) in &nodes {
            if let Some(s) =
                node_status(&dialer, &entry.advertise_addr(), Duration::from_millis(500)).await
            {
                all.push(s);
            }
        }
        let regions: std::collections::BTreeSet<&str> =
            nodes.iter().map(|(n, _)| n.region.as_str()).collect();
        let healthy = all.len() == nodes.len()
            && regions.iter().all(|r| {
                let in_region: Vec<&StatusResponse> =
                    all.iter().filter(|s| s.region == *r).collect();
                let leader = in_region
                    .iter()
                    .find(|s| s.role == "leader")
                    .map(|s| s.node_id);
                leader.is_some() && in_region.iter().all(|s| s.leader_id == leader)
            });
        if healthy {
            return Ok(all);
        }
        if Instant::now() > deadline {
            return Err(ClusterError::Invalid(format!(
                "the cluster did not become healthy within {timeout:?} ({} of {} nodes answer); see the logs in {}",
                all.len(),
                nodes.len(),
                dir.root().join("logs").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
