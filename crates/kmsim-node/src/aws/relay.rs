//! The server side of `kmsim.relay.v1.RelayService`: AWS JSON requests relayed by the gateway
//! or by a node of another Region ([`super::router`]), answered by this node's [`AwsFront`] as
//! if the client had sent them here. The node's gRPC listener admits only the gateway's and
//! nodes' certificates to this service; everything else about the request (the signature, the
//! operation, the body) is checked exactly as on the node's own AWS endpoint, so the relaying
//! process is trusted only for the client address it reports.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use tonic::{Request, Response, Status};

use kmsim_proto::relay::v1::relay_service_server::RelayService;
use kmsim_proto::relay::v1::{RelayRequest, RelayResponse};

use super::front::AwsFront;
use super::router::{headers_from_wire, headers_to_wire, FORWARDED_HEADER};

/// Serves relayed requests with a node's AWS front.
pub struct RelayServiceImpl {
    front: Arc<AwsFront>,
}

impl RelayServiceImpl {
    /// The relay service of the node whose AWS front is `front`.
    pub fn new(front: Arc<AwsFront>) -> RelayServiceImpl {
        RelayServiceImpl { front }
    }
}

/// The relayed request as an HTTP request of this node, marked as forwarded (never relayed
/// again), or why it cannot be one.
pub fn to_http(relayed: RelayRequest) -> Result<http::Request<Full<Bytes>>, Status> {
    let length = relayed.body.len();
    let mut req = http::Request::builder()
        .method(relayed.method.as_str())
        .uri(relayed.path.as_str())
        .body(Full::new(relayed.body))
        .map_err(|e| Status::invalid_argument(format!("bad relayed request line: {e}")))?;
    let headers = req.headers_mut();
    headers_from_wire(relayed.headers, headers).map_err(Status::invalid_argument)?;
    // Content-Length is hop-by-hop on the relay, but clients sign it (the Rust SDK does): it
    // is the length of the body received, as it was on the client's request.
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    if !headers.contains_key(FORWARDED_HEADER) {
        headers.insert(FORWARDED_HEADER, HeaderValue::from_static("relay"));
    }
    Ok(req)
}

#[tonic::async_trait]
impl RelayService for RelayServiceImpl {
    async fn forward(&self, req: Request<RelayRequest>) -> Result<Response<RelayResponse>, Status> {
        let relayed = req.into_inner();
        // The client's address as the relaying process saw it (port unknown).
        let remote = relayed
            .source_ip
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 0));
        let http_req = to_http(relayed)?;
        let resp = self.front.handle(http_req, remote, 0).await;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Status::internal(format!("answer body: {e}")))?
            .to_bytes();
        Ok(Response::new(RelayResponse {
            status: u32::from(parts.status.as_u16()),
            headers: headers_to_wire(&parts.headers, None),
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use kmsim_proto::relay::v1::Header;

    use super::*;

    /// The relayed request carries the body's own length (clients sign Content-Length), never
    /// a length the relaying process sent, and is marked as forwarded.
    #[test]
    fn the_request_gets_its_body_length_and_the_loop_guard() {
        let req = to_http(RelayRequest {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![Header {
                name: Bytes::from_static(b"content-length"),
                value: Bytes::from_static(b"999"),
            }],
            body: Bytes::from_static(b"{}"),
            source_ip: String::new(),
        })
        .unwrap();
        assert_eq!(req.headers()[http::header::CONTENT_LENGTH], "2");
        assert_eq!(
            req.headers()
                .get_all(http::header::CONTENT_LENGTH)
                .iter()
                .count(),
            1
        );
        assert!(req.headers().contains_key(FORWARDED_HEADER));
        assert!(to_http(RelayRequest {
            method: "BAD METHOD".into(),
            ..RelayRequest::default()
        })
        .is_err());
    }
}
