//! Region routing: the Region of a request is the third element of its SigV4 credential scope.
//! A request for this node's own Region is served here; one for another Region of the topology
//! is relayed as it came (method, path, every end-to-end header including `Host` and
//! `Authorization`, body, and the client's address) to a node of that Region over the relay
//! service (`kmsim.relay.v1`, [`super::relay`]) on the node's gRPC listener, so under mutual TLS
//! with this process's certificate (the gateway's or a node's). The node verifies the client's
//! signature itself: relaying needs no trust in the relaying process, apart from the client
//! address it reports for the audit records.
//!
//! Nodes of the destination Region are chosen round-robin per client connection: every request
//! of one client connection goes to the same node first, so a client that reuses its connection
//! (the SDKs, boto3 and the CLI do) reads its own writes, while many connections spread over
//! the Region. A node is skipped for the next one when the request never left this process: the
//! connection (TCP or the TLS handshake) could not be made, or the fault layer partitions or
//! drops the link (every relayed request first passes [`FaultTable::before_send`] for the link
//! to `REGION/ID`, like Raft messages). A node that failed is tried last for
//! [`SUSPECT_FOR`] (a node that went away, or froze with its connections open, costs one
//! request, not one per client connection). When a request may have reached a node and no
//! answer came (a reset connection, a timeout, a peer that stops answering HTTP/2 pings), the
//! outcome is unknown and the client gets `DependencyTimeoutException`, which AWS clients retry;
//! it is never sent to a second node. A relayed request carries [`FORWARDED_HEADER`] and is
//! never relayed again.
//!
//! One HTTP/2 connection per node carries every relayed request to it (multiplexed), so there
//! is no pool to size and no idle connection the node may close under a request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use tonic::transport::Channel;

use kmsim_core::KmsError;
use kmsim_proto::relay::v1::relay_service_client::RelayServiceClient;
use kmsim_proto::relay::v1::{Header, RelayRequest, RelayResponse};

use super::errors::{Body, ErrorCode, FrontError, MAX_BODY_BYTES};
use crate::config::Topology;
use crate::faults::FaultTable;
use crate::network::never_connected;
use crate::tls::Dialer;

/// Set on every relayed request (value: the relaying process); a request that carries it is
/// served locally or refused, never relayed again.
pub const FORWARDED_HEADER: &str = "x-kmsim-forwarded-by";

/// How long to wait for a connection (TCP) to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Upper bound of one relayed request (a write waits up to 10 s for a leader).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);

/// How often the relaying process pings each node's connection, and how long it waits for the
/// answer: a node that froze (SIGSTOP, a hung host) with its connection open is found out in
/// about two seconds, and the requests waiting on it end with an unknown outcome.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a node that failed a request is tried last.
pub const SUSPECT_FOR: Duration = Duration::from_secs(2);

/// The largest relayed request: the largest body and its headers.
pub const MAX_RELAY_REQUEST_BYTES: usize = MAX_BODY_BYTES + (64 << 10);

/// The largest relayed answer (KMS responses are a few KiB; a page of 1,000 keys ~150 KiB).
pub const MAX_RELAY_RESPONSE_BYTES: usize = 8 << 20;

/// Headers that describe one connection, not the request: never relayed.
pub const HOP_BY_HOP: &[&str] = &[
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

/// One node a request can be relayed to.
struct Target {
    /// `REGION/ID`, the fault table's name of the link.
    peer: String,
    /// The relay client on the node's gRPC listener (connects lazily, reconnects by itself).
    client: RelayServiceClient<Channel>,
    /// Whether the node failed lately.
    suspicion: Suspicion,
}

/// Whether a node failed lately: a node that went away, or froze with its connections open,
/// is tried last for [`SUSPECT_FOR`] after a failure, so it costs one request (or one
/// connection's handoff), not one per client connection.
#[derive(Debug, Default)]
pub struct Suspicion(std::sync::Mutex<Option<Instant>>);

impl Suspicion {
    /// True while the last failure is less than [`SUSPECT_FOR`] old.
    pub fn suspect(&self) -> bool {
        let until = self.0.lock().expect("invariant: lock not poisoned");
        until.is_some_and(|t| Instant::now() < t)
    }

    /// Records the outcome of the last try.
    pub fn mark(&self, failed: bool) {
        let mut until = self.0.lock().expect("invariant: lock not poisoned");
        *until = failed.then(|| Instant::now() + SUSPECT_FOR);
    }
}

/// The order in which to try `n` nodes for client connection number `connection`: that
/// connection's node first (`connection` modulo `n`), then the others in turn, those
/// `suspect` names last.
pub fn try_order(connection: usize, n: usize, suspect: impl Fn(usize) -> bool) -> Vec<usize> {
    let first = connection % n.max(1);
    let mut order: Vec<usize> = (0..n).map(|i| (first + i) % n).collect();
    order.sort_by_key(|&i| suspect(i));
    order
}

/// Decides where requests go and relays those for other Regions.
pub struct Router {
    /// This node's Region; `None` for the gateway, which relays everything.
    local_region: Option<String>,
    /// Every Region of the topology and its nodes.
    regions: BTreeMap<String, Vec<Target>>,
    /// Relayed requests pass the same fault layer as this process's other outgoing messages.
    faults: Arc<FaultTable>,
    /// The value of [`FORWARDED_HEADER`] this process sets (`REGION/ID` or `gateway`).
    me: HeaderValue,
}

impl Router {
    /// A router for the process `me` (`REGION/ID`, or `gateway` with no local Region), which
    /// dials nodes with `dialer`.
    pub fn new(
        topology: &Topology,
        local_region: Option<String>,
        me: &str,
        faults: Arc<FaultTable>,
        dialer: Dialer,
    ) -> Router {
        let regions = topology
            .regions
            .iter()
            .map(|r| {
                let targets = r
                    .nodes
                    .iter()
                    .filter_map(|n| {
                        let addr = n.advertise_addr();
                        match relay_client(&dialer, &addr) {
                            Ok(client) => Some(Target {
                                peer: format!("{}/{}", r.name, n.id),
                                client,
                                suspicion: Suspicion::default(),
                            }),
                            Err(e) => {
                                tracing::error!(node = n.id, region = %r.name, addr, error = %e, "bad node address: requests cannot be relayed to it");
                                None
                            }
                        }
                    })
                    .collect();
                (r.name.clone(), targets)
            })
            .collect();
        Router {
            local_region,
            regions,
            faults,
            me: HeaderValue::from_str(me).unwrap_or(HeaderValue::from_static("kmsim")),
        }
    }

    /// True when this process serves `region` itself (a node of it); requests for any other
    /// Region are relayed.
    pub fn serves(&self, region: &str) -> bool {
        self.local_region.as_deref() == Some(region)
    }

    /// True when `region` is a Region of the topology.
    pub fn knows(&self, region: &str) -> bool {
        self.regions.contains_key(region)
    }

    /// Where a request for `region` is served; `forwarded` tells whether it was relayed to us.
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

    /// Relays a request that arrived on client connection number `connection` from `remote` to
    /// a node of `region` and returns that node's response.
    pub async fn forward(
        &self,
        region: &str,
        connection: usize,
        parts: &Parts,
        body: Bytes,
        remote: Option<SocketAddr>,
    ) -> Result<Response<Body>, FrontError> {
        let targets = self.regions.get(region).ok_or_else(|| {
            KmsError::InvalidSignature("Credential should be scoped to a valid region. ".into())
        })?;
        let n = targets.len();
        if n == 0 {
            return Err(KmsError::DependencyTimeout(format!("{region} has no node")).into());
        }
        // This connection's node first, then the others in turn; nodes that failed lately last.
        let order: Vec<&Target> = try_order(connection, n, |i| targets[i].suspicion.suspect())
            .into_iter()
            .map(|i| &targets[i])
            .collect();
        let mut request = self.request(parts, body, remote);
        let mut last_failure = String::new();
        let last = order.len() - 1;
        for (i, target) in order.into_iter().enumerate() {
            let peer = target.peer.as_str();
            if let Err(e) = self.faults.before_send(peer).await {
                tracing::debug!(peer, error = %e, "relay skipped by the fault layer");
                last_failure = e.to_string();
                continue;
            }
            let mut client = target.client.clone();
            // A copy only when another node may still be tried (the headers and the body are
            // shared buffers, so it copies no header or body bytes either way).
            let this = if i == last {
                std::mem::take(&mut request)
            } else {
                request.clone()
            };
            let sent = tokio::time::timeout(FORWARD_TIMEOUT, client.forward(this)).await;
            match sent {
                Ok(Ok(resp)) => {
                    target.suspicion.mark(false);
                    return response(resp.into_inner());
                }
                Ok(Err(status)) if never_connected(&status) => {
                    tracing::debug!(peer, error = %status, "relay: cannot connect, trying the next node");
                    target.suspicion.mark(true);
                    last_failure = format!("{peer}: {}", status.message());
                }
                Ok(Err(status))
                    if status.code() == tonic::Code::PermissionDenied
                        || status.code() == tonic::Code::Unauthenticated =>
                {
                    // Refused by the node's admission: nothing ran there.
                    return Err(KmsError::Internal(format!(
                        "{peer} refused the relayed request: {}",
                        status.message()
                    ))
                    .into());
                }
                Ok(Err(status)) => {
                    // The request may have reached the node: do not send it again.
                    target.suspicion.mark(true);
                    return Err(KmsError::DependencyTimeout(format!(
                        "relaying to {peer} failed: {}",
                        status.message()
                    ))
                    .into());
                }
                Err(_) => {
                    target.suspicion.mark(true);
                    return Err(KmsError::DependencyTimeout(format!(
                        "{peer} did not answer within {FORWARD_TIMEOUT:?}"
                    ))
                    .into());
                }
            }
        }
        Err(KmsError::DependencyTimeout(format!(
            "no node of {region} could be reached (last: {last_failure})"
        ))
        .into())
    }

    /// The relayed request: the original's end-to-end headers, its body, the client's address
    /// and the loop guard.
    fn request(&self, parts: &Parts, body: Bytes, remote: Option<SocketAddr>) -> RelayRequest {
        let forwarded = HeaderName::from_static(FORWARDED_HEADER);
        let headers = headers_to_wire(&parts.headers, Some((&forwarded, &self.me)));
        RelayRequest {
            method: parts.method.as_str().to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string(),
            headers,
            body,
            source_ip: remote.map(|a| a.ip().to_string()).unwrap_or_default(),
        }
    }
}

/// The relay client of the node at `addr`: one lazily made HTTP/2 connection, pinged so that
/// a frozen node is noticed.
fn relay_client(
    dialer: &Dialer,
    addr: &str,
) -> Result<RelayServiceClient<Channel>, tonic::transport::Error> {
    let channel = dialer
        .endpoint(addr)?
        .connect_timeout(CONNECT_TIMEOUT)
        // No `.timeout(FORWARD_TIMEOUT)` here: `forward` bounds every call itself, and a second
        // timer per request (tonic's layer) only costs CPU.
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(false)
        .connect_lazy();
    Ok(RelayServiceClient::new(channel)
        .max_encoding_message_size(MAX_RELAY_REQUEST_BYTES)
        .max_decoding_message_size(MAX_RELAY_RESPONSE_BYTES))
}

/// The end-to-end headers of an HTTP message as relayed (hop-by-hop ones left out), with
/// `set` in place of any header of its name. Every name and value is a slice of one buffer: one
/// allocation for all of them, and a relayed message is cloned or dropped without touching each
/// header's memory.
pub fn headers_to_wire(
    headers: &HeaderMap,
    set: Option<(&HeaderName, &HeaderValue)>,
) -> Vec<Header> {
    let relayed = || {
        headers
            .iter()
            .filter(|(name, _)| {
                !HOP_BY_HOP.contains(&name.as_str()) && set.is_none_or(|(n, _)| n != *name)
            })
            .chain(set)
    };
    let (count, size) = relayed().fold((0, 0), |(n, size), (name, value)| {
        (n + 1, size + name.as_str().len() + value.len())
    });
    let mut buf = BytesMut::with_capacity(size);
    let mut spans = Vec::with_capacity(count);
    for (name, value) in relayed() {
        let start = buf.len();
        buf.extend_from_slice(name.as_str().as_bytes());
        let middle = buf.len();
        buf.extend_from_slice(value.as_bytes());
        spans.push((start, middle, buf.len()));
    }
    let buf = buf.freeze();
    spans
        .into_iter()
        .map(|(start, middle, end)| Header {
            name: buf.slice(start..middle),
            value: buf.slice(middle..end),
        })
        .collect()
}

/// Appends relayed headers (hop-by-hop ones left out) to `into`, the values without a copy (they
/// keep the received message's buffer); on an invalid name or value, says which.
pub fn headers_from_wire(headers: Vec<Header>, into: &mut HeaderMap) -> Result<(), String> {
    into.reserve(headers.len());
    for h in headers {
        let name =
            HeaderName::from_bytes(&h.name).map_err(|_| "bad relayed header name".to_string())?;
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(h.value)
            .map_err(|_| format!("bad value of relayed header {name}"))?;
        into.append(name, value);
    }
    Ok(())
}

/// The node's answer as an HTTP response of this process.
fn response(relayed: RelayResponse) -> Result<Response<Body>, FrontError> {
    let bad =
        |what: &str| FrontError::from(KmsError::Internal(format!("the relayed answer has {what}")));
    let status = u16::try_from(relayed.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| bad("an invalid status"))?;
    let code = (!status.is_success()).then(|| relayed_error_code(&relayed.body));
    let mut out = Response::new(Full::new(relayed.body));
    *out.status_mut() = status;
    if let Some(code) = code {
        out.extensions_mut().insert(ErrorCode(code));
    }
    headers_from_wire(relayed.headers, out.headers_mut()).map_err(|_| bad("an invalid header"))?;
    Ok(out)
}

/// The AWS error code of a relayed error answer (its body's `__type`, or an STS error's
/// `<Code>`), as one of the codes kmsim knows (`KMSInternalException` for anything else), so the metrics' label values stay
/// a known set.
fn relayed_error_code(body: &[u8]) -> &'static str {
    if let Some(code) = super::sts::error_code_of(body) {
        return code;
    }
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("__type")?.as_str().map(str::to_string))
        .unwrap_or_default();
    KmsError::from_wire(&code, String::new()).code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_error_keeps_its_code_and_an_unknown_one_is_internal() {
        let body = br#"{"__type":"NotFoundException","message":"no such key"}"#;
        assert_eq!(relayed_error_code(body), "NotFoundException");
        assert_eq!(
            relayed_error_code(br#"{"__type":"Made<Up>"}"#),
            "KMSInternalException"
        );
        assert_eq!(relayed_error_code(b"not json"), "KMSInternalException");
        let relayed = RelayResponse {
            status: 400,
            body: Bytes::from_static(body),
            ..Default::default()
        };
        assert_eq!(
            ErrorCode::of(&response(relayed).unwrap()),
            "NotFoundException"
        );
        let ok = RelayResponse {
            status: 200,
            body: Bytes::from_static(b"{}"),
            ..Default::default()
        };
        assert_eq!(ErrorCode::of(&response(ok).unwrap()), "ok");
    }

    /// A refused connection is recognised as "never sent" from the error's source chain; an
    /// `UNAVAILABLE` answered by a server (or made up) is not, whatever its metadata.
    #[tokio::test]
    async fn only_a_connection_that_could_not_be_made_counts_as_never_connected() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut client = relay_client(&Dialer::plain(), &addr).unwrap();
        let status = client
            .forward(RelayRequest::default())
            .await
            .expect_err("nothing listens there");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(never_connected(&status), "{status:?}");
        assert!(!never_connected(&tonic::Status::unavailable(
            "answered by a server"
        )));
        assert!(!never_connected(&tonic::Status::cancelled(
            "timeout expired"
        )));
    }

    #[test]
    fn an_invalid_relayed_answer_is_an_error_not_a_panic() {
        let bad_status = RelayResponse {
            status: 70_000,
            ..RelayResponse::default()
        };
        assert!(response(bad_status).is_err());
        let bad_header = RelayResponse {
            status: 200,
            headers: vec![Header {
                name: Bytes::from_static(b"bad name"),
                value: Bytes::from_static(b"v"),
            }],
            body: Bytes::new(),
        };
        assert!(response(bad_header).is_err());
    }
}
