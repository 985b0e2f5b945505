//! The HTTP/1.1 server of the AWS JSON front: an accept loop and one task per connection
//! (keep-alive: a connection serves request after request), stopped gracefully by the
//! process's stop signal: no new connections, in-flight requests finish, idle connections close.
//!
//! A keep-alive client must be able to trust a connection the server has not announced it will
//! close: every answer after which hyper closes the connection carries `Connection: close`
//! (one sent with the request body unread, see [`AwsFront::handle`], and every answer given
//! after the stop signal), and the only other close is of a connection idle for
//! [`HEADER_READ_TIMEOUT`], which the forwarding client's pool never keeps that long.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::front::AwsFront;

/// How long a client may take to send a request's headers (also bounds idle keep-alive waits
/// for the next request's first bytes, so a stuck client cannot hold a task forever).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight requests may run on after the stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `front` on `listener` until `stop` turns true (or its sender is dropped).
pub async fn serve(listener: TcpListener, front: Arc<AwsFront>, stop: watch::Receiver<bool>) {
    serve_with(listener, front, stop, None).await
}

/// [`serve`], over HTTPS when `tls` is given (the handshake runs in the connection's own task,
/// bounded by [`crate::tls::HANDSHAKE_TIMEOUT`], so a slow client never holds the accept loop).
pub async fn serve_with(
    listener: TcpListener,
    front: Arc<AwsFront>,
    mut stop: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
) {
    let mut conns = JoinSet::new();
    // Numbers client connections; the router sends one connection's requests to one node.
    let mut connection = 0usize;
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    connection = connection.wrapping_add(1);
                    // Small responses must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    let (front, stop) = (front.clone(), stop.clone());
                    match &tls {
                        None => {
                            conns.spawn(serve_connection(stream, remote, connection, front, stop));
                        }
                        Some(acceptor) => {
                            let accept = acceptor.accept(stream);
                            conns.spawn(async move {
                                match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, accept).await {
                                    Ok(Ok(tls)) => {
                                        serve_connection(tls, remote, connection, front, stop).await
                                    }
                                    Ok(Err(e)) => tracing::debug!(error = %e, peer = %remote, "aws endpoint: TLS handshake failed"),
                                    Err(_) => tracing::debug!(peer = %remote, "aws endpoint: TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "aws endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = stop.changed() => if changed.is_err() { break },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
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

/// Serves one connection until the client closes it or the stop signal arrives.
async fn serve_connection<IO>(
    stream: IO,
    remote: SocketAddr,
    number: usize,
    front: Arc<AwsFront>,
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
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
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, peer = %remote, "aws connection ended with an error");
            }
            return;
        }
        _ = stop.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
