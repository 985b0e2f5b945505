//! The AWS-compatible endpoint: the KMS API as AWS JSON 1.1 over HTTP/1.1, authenticated with
//! SigV4, on every node and in the gateway (`kmsim gateway`, the single endpoint for every
//! Region).
//!
//! The plain `GET /healthz` and `GET /readyz` ([`probes`]) are answered before any of this.
//! A request flows [`server`] (accept loop, keep-alive connections, graceful stop) →
//! [`front`] (envelope, body bound, SigV4 scope) → [`router`] (served here, or relayed as-is
//! over mutual TLS to a node of the Region its credential scope names, whose [`relay`] service
//! hands it to its own front) → [`sigv4`] (signature, clock, session
//! token, against [`credentials`] and role sessions' [`session_token`]s) → [`sts`] for the
//! SigV4 service `sts` (AssumeRole, GetCallerIdentity), else [`dispatch`] (generated from the one operation list: JSON
//! ↔ `kmsim.kms.v1` messages ↔ [`crate::kms::KmsApi`]) → [`errors`] (the AWS error body and
//! the headers of every response). No operation logic lives here.

pub mod activity;
pub mod amz_date;
pub mod credentials;
pub mod dispatch;
pub mod errors;
pub mod front;
pub mod handoff;
pub mod probes;
pub mod relay;
pub mod router;
pub mod server;
pub mod session_token;
pub mod sigv4;
pub mod sts;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use front::AwsFront;
pub use server::{serve, serve_with, ServeOptions};

use crate::config::Topology;
use crate::error::NodeError;
use crate::faults::FaultTable;

/// The name the gateway uses for itself (fault table seed, forwarding loop guard).
pub const GATEWAY_NAME: &str = "gateway";

/// Runs the gateway: the AWS endpoint with no local Region, forwarding every request to a node
/// of the Region it is signed for, until `shutdown` resolves. It listens on `listen`, or on the
/// topology's `[endpoint] listen`.
pub async fn run_gateway(
    topology: Topology,
    listen: Option<SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let addr = listen
        .or(topology.endpoint.as_ref().map(|e| e.listen))
        .ok_or_else(|| {
            NodeError::Config("the topology has no [endpoint] section with a listen address".into())
        })?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Server(format!("cannot bind {addr}: {e}")))?;
    tracing::info!(addr = %addr, "gateway listening (AWS JSON 1.1 for every Region)");
    let faults = Arc::new(FaultTable::new(topology.fault_seed ^ 0x6761_7465_7761_7900));
    // The gateway relays over mutual TLS with its own certificate (plaintext without `[tls]`).
    let dialer = crate::tls::Dialer::gateway(topology.tls.as_ref())
        .map_err(|e| NodeError::Config(format!("tls: {e}")))?;
    let metrics = Arc::new(crate::metrics::NodeMetrics::gateway());
    let front = Arc::new(AwsFront::new(
        &topology,
        None,
        GATEWAY_NAME,
        faults,
        dialer,
        metrics,
    )?);
    let tls = match topology.tls.as_ref().filter(|t| t.aws_https) {
        Some(t) => Some(
            t.read_pair(&t.gateway_files())
                .and_then(|c| crate::tls::https_acceptor(&c))
                .map_err(|e| NodeError::Config(format!("tls: {e}")))?,
        ),
        None => None,
    };
    // Handoff gives connections to nodes; it needs plain HTTP (the topology check says so).
    let hand_to = handoff::Handoff::new(&topology).map(Arc::new);
    if hand_to.is_some() {
        tracing::info!(
            "connection handoff on: each client connection goes to a node of its Region"
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = ServeOptions {
        tls,
        hand_to,
        handed: None,
    };
    let server = tokio::spawn(server::serve_with(Some(listener), front, stop_rx, options));
    shutdown.await;
    let _ = stop_tx.send(true);
    server
        .await
        .map_err(|e| NodeError::Server(format!("gateway task failed: {e}")))
}
