//! Region routing: the Region of a request is the third element of its SigV4 credential scope.
//! A request for this node's own Region is served here; one for another Region of the topology
//! is forwarded as it came (method, path, every header including `Host` and `Authorization`,
//! body) to a node of that Region, which verifies the signature itself, so forwarding needs no
//! trust between nodes.
//!
//! Nodes of the destination Region are chosen round-robin per client connection: every request
//! of one client connection goes to the same node first, so a client that reuses its connection
//! (the SDKs, boto3 and the CLI do) reads its own writes, while many connections spread over
//! the Region. A node that cannot be connected to (or whose link the fault layer partitions or
//! drops) is skipped for the next one. A forwarded
//! request carries [`FORWARDED_HEADER`] and is never forwarded again. Every forwarded request
//! first passes [`FaultTable::before_send`] for the link to `REGION/ID`, like Raft messages.
//!
//! Keep-alive on this side: pooled connections to nodes stay idle for less than a node keeps an
//! idle connection open, and a node's `Connection: close` ends only the pooled connection it came
//! on (hyper does not pool it again); it is not relayed, as the client's own connection is still
//! good (its request was read whole before forwarding).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use kmsim_core::KmsError;

use super::errors::{Body, FrontError};
use super::server::HEADER_READ_TIMEOUT;
use crate::config::Topology;
use crate::faults::FaultTable;

/// Set on every forwarded request (value: the forwarding process); a request that carries it is
/// served locally or refused, never forwarded again.
pub const FORWARDED_HEADER: &str = "x-kmsim-forwarded-by";

/// How long to wait for a TCP connection to a node of another Region.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Upper bound of one forwarded request (a write waits up to 10 s for a leader).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a pooled connection (to another node, or of kmsim's own AWS JSON client) may stay
/// idle. Well below the destination's default [`HEADER_READ_TIMEOUT`], after which it closes an
/// idle connection: a pooled connection is never one the node is closing as a request goes into
/// it (the router uses a third of a shorter configured header read timeout instead).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const _: () = assert!(POOL_IDLE_TIMEOUT.as_secs() * 2 <= HEADER_READ_TIMEOUT.as_secs());

/// The largest response body relayed back (KMS responses are a few KiB).
const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Headers that describe one connection, not the request: never relayed.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
];

/// Where a request is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// By this node.
    Local,
    /// By a node of this other Region.
    Forward(String),
}

/// The AWS endpoints of one Region's nodes.
struct RegionTargets {
    /// `(peer name REGION/ID, host:port)` of every node with an AWS endpoint.
    nodes: Vec<(String, String)>,
}

/// Decides where requests go and forwards those for other Regions.
pub struct Router {
    /// This node's Region; `None` for the gateway, which forwards everything.
    local_region: Option<String>,
    /// Every Region of the topology and its nodes' AWS endpoints.
    regions: BTreeMap<String, RegionTargets>,
    /// Forwarded requests pass the same fault layer as this process's other outgoing messages.
    faults: Arc<FaultTable>,
    /// Keep-alive connections to other nodes, pooled per address (HTTPS trusting the cluster
    /// CA when the topology serves the AWS endpoints over HTTPS).
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `http` or `https`: the scheme of the nodes' AWS endpoints.
    scheme: &'static str,
    /// The value of [`FORWARDED_HEADER`] this process sets (`REGION/ID` or `gateway`).
    me: HeaderValue,
}

impl Router {
    /// A router for the process `me` (`REGION/ID`, or `gateway` with no local Region).
    pub fn new(
        topology: &Topology,
        local_region: Option<String>,
        me: &str,
        faults: Arc<FaultTable>,
    ) -> Router {
        let regions = topology
            .regions
            .iter()
            .map(|r| {
                let nodes = r
                    .nodes
                    .iter()
                    .filter_map(|n| {
                        n.aws_advertise_addr()
                            .map(|a| (format!("{}/{}", r.name, n.id), a))
                    })
                    .collect();
                (r.name.clone(), RegionTargets { nodes })
            })
            .collect();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.enforce_http(false);
        // Trust only the cluster CA (no system roots). A CA file that cannot be read leaves no
        // root at all: every forward then fails its handshake, with the reason in the log.
        let ca = match topology.tls.as_ref().filter(|t| t.aws_https) {
            Some(t) => t.read_ca().unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the cluster CA: forwarding over HTTPS will fail");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let tls = crate::tls::https_client_config(&ca).unwrap_or_else(|e| {
            tracing::error!(error = %e, "bad cluster CA: forwarding over HTTPS will fail");
            crate::tls::https_client_config(&[]).expect("invariant: no roots is a valid config")
        });
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        // The nodes close a connection idle for their header read timeout: pooled connections
        // must be let go well before.
        let header_timeout = Duration::from_millis(topology.limits.header_read_timeout_ms);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT.min(header_timeout / 3))
            .pool_max_idle_per_host(256)
            .build(connector);
        Router {
            local_region,
            regions,
            faults,
            client,
            scheme: topology.aws_scheme(),
            me: HeaderValue::from_str(me).unwrap_or(HeaderValue::from_static("kmsim")),
        }
    }

    /// True when `region` is a Region of the topology.
    pub fn knows(&self, region: &str) -> bool {
        self.regions.contains_key(region)
    }

    /// Where a request for `region` is served; `forwarded` tells whether it was forwarded to us.
    pub fn route(&self, region: &str, forwarded: bool) -> Result<Route, KmsError> {
        if self.local_region.as_deref() == Some(region) {
            return Ok(Route::Local);
        }
        if forwarded {
            return Err(KmsError::Internal(format!(
                "a request for {region} was forwarded to a process that does not serve it; the topology files differ"
            )));
        }
        Ok(Route::Forward(region.to_string()))
    }

    /// Forwards a request that arrived on client connection number `connection` to a node of
    /// `region` and returns that node's response.
    pub async fn forward(
        &self,
        region: &str,
        connection: usize,
        parts: &Parts,
        body: Bytes,
    ) -> Result<Response<Body>, FrontError> {
        let targets = self.regions.get(region).ok_or_else(|| {
            KmsError::InvalidSignature("Credential should be scoped to a valid region. ".into())
        })?;
        let n = targets.nodes.len();
        if n == 0 {
            return Err(KmsError::DependencyTimeout(format!(
                "no node of {region} serves the AWS endpoint (no aws_listen in the topology)"
            ))
            .into());
        }
        let first = connection % n;
        let mut last_failure = String::new();
        for i in 0..n {
            let (peer, addr) = &targets.nodes[(first + i) % n];
            if let Err(e) = self.faults.before_send(peer).await {
                tracing::debug!(peer, error = %e, "aws forward skipped by the fault layer");
                last_failure = e.to_string();
                continue;
            }
            let req = self.build(parts, addr, body.clone())?;
            match tokio::time::timeout(FORWARD_TIMEOUT, self.client.request(req)).await {
                Ok(Ok(resp)) => return relay(resp).await,
                Ok(Err(e)) if e.is_connect() => {
                    tracing::debug!(peer, error = %e, "aws forward: cannot connect, trying the next node");
                    last_failure = format!("{peer}: {e}");
                }
                Ok(Err(e)) => {
                    // The request may have reached the node: do not send it again.
                    return Err(KmsError::DependencyTimeout(format!(
                        "forwarding to {peer} failed: {e}"
                    ))
                    .into());
                }
                Err(_) => {
                    return Err(KmsError::DependencyTimeout(format!(
                        "{peer} did not answer within {FORWARD_TIMEOUT:?}"
                    ))
                    .into())
                }
            }
        }
        Err(KmsError::DependencyTimeout(format!(
            "no node of {region} could be reached (last: {last_failure})"
        ))
        .into())
    }

    /// The forwarded request: the original with its URI pointed at `addr` and the loop guard.
    fn build(
        &self,
        parts: &Parts,
        addr: &str,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, FrontError> {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri: Uri = format!("{}://{addr}{path}", self.scheme)
            .parse()
            .map_err(|e| KmsError::Internal(format!("bad forwarding address {addr}: {e}")))?;
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
        headers.insert(FORWARDED_HEADER, self.me.clone());
        Ok(req)
    }
}

/// The destination's response, read whole (bounded) and relayed with its status and headers.
async fn relay(resp: Response<hyper::body::Incoming>) -> Result<Response<Body>, FrontError> {
    let (parts, body) = resp.into_parts();
    let bytes = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| KmsError::DependencyTimeout(format!("reading the forwarded response: {e}")))?
        .to_bytes();
    let mut out = Response::new(Full::new(bytes));
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(out)
}
