//! The HTTP/1.1 server of the AWS JSON front: an accept loop and one task per connection
//! (keep-alive: a connection serves request after request), stopped gracefully by the
//! process's stop signal: no new connections, in-flight requests finish, idle connections close.
//!
//! Limits (the topology's `[limits]`): a cap on connections served at once, hyper's header
//! read timeout (which also closes a keep-alive connection idle between requests), the body read
//! timeout (in [`AwsFront::handle`]) and an idle timeout on the socket itself: a connection on
//! which no byte moves either way for that long is dropped, whatever it is doing.
//!
//! A keep-alive client must be able to trust a connection the server has not announced it will
//! close: every answer after which hyper closes the connection carries `Connection: close`
//! (one sent with the request body unread, see [`AwsFront::handle`], and every answer given
//! after the stop signal), and the only other close is of a connection idle for
//! the header read timeout ([`HEADER_READ_TIMEOUT`] by default), which kmsim's own client's pool
//! ([`POOL_IDLE_TIMEOUT`]) never keeps that long.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::activity::{Activity, ActivityIo};
use super::front::AwsFront;
use super::handoff::{Handoff, Offer};

/// The default of `header_read_timeout_ms` in the topology's `[limits]`: how long a client may
/// take to send a request's headers (also bounds idle keep-alive waits for the next request's
/// first bytes, so a stuck client cannot hold a task forever).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client of an AWS endpoint (kmsim's own AWS JSON client) may keep a pooled
/// connection idle: well below the endpoint's default [`HEADER_READ_TIMEOUT`], after which it
/// closes an idle connection, so a pooled connection is never one the endpoint is closing as a
/// request goes into it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const _: () = assert!(POOL_IDLE_TIMEOUT.as_secs() * 2 <= HEADER_READ_TIMEOUT.as_secs());

/// How long in-flight requests may run on after the stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where a server's connections come from and where they may go, besides its TCP listener.
#[derive(Default)]
pub struct ServeOptions {
    /// Serve HTTPS: the handshake runs in the connection's own task, bounded by
    /// [`crate::tls::HANDSHAKE_TIMEOUT`], so a slow client never holds the accept loop.
    pub tls: Option<TlsAcceptor>,
    /// The gateway's connection handoff: each new connection is first offered to a node of its
    /// Region ([`super::handoff`]); only one no node took is served here.
    pub hand_to: Option<Arc<Handoff>>,
    /// A node's connections handed to it by the gateway, served like accepted ones.
    pub handed: Option<mpsc::Receiver<TcpStream>>,
}

/// Serves `front` on `listener` until `stop` turns true (or its sender is dropped).
pub async fn serve(listener: TcpListener, front: Arc<AwsFront>, stop: watch::Receiver<bool>) {
    serve_with(Some(listener), front, stop, ServeOptions::default()).await
}

/// [`serve`], with the [`ServeOptions`]; with no listener, only handed connections are served.
///
/// At most `max_connections` of the front's limits are served at once: at the cap the loop stops
/// accepting, so further connections wait in the kernel's listen backlog (their requests are
/// answered, late, once a served connection closes) rather than being accepted and dropped.
pub async fn serve_with(
    listener: Option<TcpListener>,
    front: Arc<AwsFront>,
    mut stop: watch::Receiver<bool>,
    options: ServeOptions,
) {
    let ServeOptions {
        tls,
        hand_to,
        mut handed,
    } = options;
    let permits = Arc::new(Semaphore::new(front.limits().max_connections));
    let mut conns = JoinSet::new();
    // Numbers client connections; the router sends one connection's requests to one node.
    let mut connection = 0usize;
    loop {
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => {
                permit.expect("invariant: the connection semaphore is never closed")
            }
            changed = stop.changed() => { if changed.is_err() { break } continue }
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let next = tokio::select! {
            accepted = accept(listener.as_ref()) => accepted,
            Some(stream) = recv(handed.as_mut()) => {
                match stream.peer_addr() {
                    Ok(remote) => Ok((stream, remote, Origin::Handed)),
                    Err(_) => continue,
                }
            }
            changed = stop.changed() => { if changed.is_err() { break } continue }
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        match next {
            Ok((stream, remote, origin)) => {
                connection = connection.wrapping_add(1);
                // Small responses must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let (front, stop) = (front.clone(), stop.clone());
                let (tls, hand_to) = (tls.clone(), hand_to.clone());
                conns.spawn(async move {
                    if let (Some(h), Origin::Accepted) = (hand_to, origin) {
                        let wait = Duration::from_millis(front.limits().header_read_timeout_ms);
                        let offer = h.offer(&stream, connection, wait).await;
                        front.metrics().count_handoff(offer.label());
                        if offer == Offer::Handed {
                            // The node holds the connection now; this closes only our copy.
                            drop(permit);
                            return;
                        }
                    }
                    // Activity is counted on the socket, below TLS: a handshake that stalls is
                    // idle too.
                    let (io, activity) = ActivityIo::new(stream);
                    match tls {
                        None => serve_connection(io, activity, remote, connection, front, stop).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                                Ok(Ok(tls)) => {
                                    serve_connection(tls, activity, remote, connection, front, stop).await
                                }
                                Ok(Err(e)) => tracing::debug!(error = %e, peer = %remote, "aws endpoint: TLS handshake failed"),
                                Err(_) => tracing::debug!(peer = %remote, "aws endpoint: TLS handshake timed out"),
                            }
                        }
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "aws endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("aws endpoint: connections still open after the grace period; closing them");
        conns.abort_all();
    }
}

/// How a connection reached this process.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Accepted on its listener.
    Accepted,
    /// Handed by the gateway.
    Handed,
}

/// The next connection on `listener`; never ready without one.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, SocketAddr, Origin)> {
    match listener {
        Some(l) => l.accept().await.map(|(s, a)| (s, a, Origin::Accepted)),
        None => std::future::pending().await,
    }
}

/// The next handed connection; never ready without a source (`None` once it is closed).
async fn recv(handed: Option<&mut mpsc::Receiver<TcpStream>>) -> Option<TcpStream> {
    match handed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Serves one connection until the client closes it, the stop signal arrives, or no byte has
/// moved on it for the idle timeout.
async fn serve_connection<IO>(
    io: IO,
    activity: Arc<Activity>,
    remote: SocketAddr,
    number: usize,
    front: Arc<AwsFront>,
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = front.limits().clone();
    let stopping = stop.clone();
    let service = service_fn(move |req| {
        let front = front.clone();
        let stopping = stopping.clone();
        async move {
            let mut resp = front.handle(req, Some(remote), number).await;
            // After the stop signal hyper closes the connection once this answer is written
            // (graceful shutdown): say so, or the client would send its next request into it.
            if *stopping.borrow() {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, peer = %remote, "aws connection ended with an error");
            }
            return;
        }
        _ = activity.idle_for(idle) => {
            tracing::debug!(peer = %remote, "aws connection closed: idle");
            return;
        }
        _ = stop.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(idle, conn).await;
}
