//! Connection handoff (`[endpoint] handoff = true`): the gateway gives a client's TCP
//! connection to a node of the Region its first request is signed for, and that node serves the
//! connection from then on, as if it had accepted it itself. The gateway reads nothing: it
//! peeks at the first request's head (the bytes stay in the socket for the node to read), takes
//! the Region from the SigV4 credential scope, and passes the socket's descriptor over a Unix
//! socket in the node's data directory (`SCM_RIGHTS`). Every later request of that connection
//! costs the gateway nothing, which relaying cannot offer: a relayed request crosses two more
//! sockets and two more processes (docs/PERFORMANCE.md, "A lighter gateway").
//!
//! This is what a layer-4 load balancer does after its first look at a connection, and it
//! brings a layer-4 balancer's behaviour under faults with it:
//! - A node that is down refuses the Unix connection, and the next node of the Region is asked
//!   at once; a node that does not take the descriptor within [`TAKE_TIMEOUT`] (frozen,
//!   overloaded) is passed over too. When no node takes it, the gateway serves the connection
//!   itself by relaying, as without handoff.
//! - Once handed, the connection is the node's: if that node is killed, the client sees its
//!   connection close (AWS clients retry on a new one, which the gateway hands to a live
//!   node); if it freezes, the client waits on it until its own timeout, where a relaying
//!   gateway would answer `DependencyTimeoutException` after about two seconds.
//! - The gateway's fault table no longer sees the connection's requests.
//! - A later request of the connection signed for another Region is relayed by the node, as
//!   a node relays any such request on its own endpoint.
//!
//! So handoff is for throughput and latency studies; fault experiments keep the default relay.
//! It needs the nodes on the gateway's host (the gateway finds each node's socket at
//! [`socket_path`] of its data directory; a node elsewhere is skipped) and plain HTTP (a TLS
//! session lives in the process that made the handshake; the topology check refuses the pair).
//!
//! The exchange on the Unix socket makes ownership explicit, so that one connection is never
//! read by two processes: the gateway sends one byte with the descriptor; the node answers
//! [`TOOK`]; the gateway answers [`GO`] and closes its copy; only then does the node serve it.
//! A node that never reads [`GO`] (the gateway gave up, or went away) drops its copy. The node
//! accepts descriptors only from a process of its own user (`SO_PEERCRED` against the
//! socket file's owner), and what it accepts is only what its own AWS endpoint already accepts
//! from anyone: an HTTP connection whose requests it authenticates itself.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

use super::router::{try_order, Suspicion};
use super::sigv4;
use crate::config::Topology;

/// The socket's file name in a node's data directory.
pub const SOCKET_NAME: &str = "aws-handoff.sock";

/// How long the gateway waits for a node to take a descriptor before passing it over (a node
/// that cannot schedule two small tasks in a second is taken for frozen).
pub const TAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a node waits for the gateway's [`GO`] (or any step of the exchange) before
/// dropping its copy; longer than [`TAKE_TIMEOUT`], so a gateway that decided to hand a
/// connection is never outwaited by the node.
const NODE_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a first request's head the gateway looks at (AWS clients send a KMS request's
/// head, a few hundred bytes, in their first segment).
const PEEK_BYTES: usize = 16 << 10;

/// The byte sent with the descriptor.
const HAND: u8 = b'H';
/// The node's answer: it holds the descriptor.
const TOOK: u8 = b'T';
/// The gateway's answer: the connection is the node's.
const GO: u8 = b'G';

/// Where the node with data directory `data_dir` listens for handed connections.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// The Region a request head is signed for: the third element of the SigV4 credential scope
/// in `Authorization`. `None` when `head` is not a whole request head (more is to come, or it
/// is not HTTP) or carries no parsable `Authorization`: such a connection is not handed.
pub fn signed_region(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let value = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let auth = value("authorization")?;
    let has_date = value("x-amz-date").is_some();
    sigv4::parse_authorization(Some(auth), has_date)
        .ok()
        .map(|a| a.region.to_string())
}

/// The gateway's side: each Region's nodes' handoff sockets.
pub struct Handoff {
    regions: BTreeMap<String, Vec<Socket>>,
}

/// One node's handoff socket.
struct Socket {
    path: PathBuf,
    /// A node that did not take a connection in time is asked last for a while.
    suspicion: Suspicion,
}

impl Socket {
    fn new(path: PathBuf) -> Socket {
        Socket {
            path,
            suspicion: Suspicion::default(),
        }
    }
}

/// What became of a connection offered to the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// A node took it; the caller must drop its stream (closing only its copy).
    Handed,
    /// Its first request names no Region of the topology, or came incomplete or not at all
    /// within the wait: the caller serves it.
    Unrouted,
    /// No node of its Region took it: the caller serves it (by relaying).
    NotTaken,
}

impl Offer {
    /// Its value of `result` in `kmsim_gateway_connections_total`.
    pub fn label(self) -> &'static str {
        match self {
            Offer::Handed => "handed",
            Offer::Unrouted => "unrouted",
            Offer::NotTaken => "not_taken",
        }
    }
}

impl Handoff {
    /// The gateway's handoff, or `None` when the topology does not ask for it.
    pub fn new(topology: &Topology) -> Option<Handoff> {
        if !topology.endpoint.as_ref().is_some_and(|e| e.handoff) {
            return None;
        }
        let regions = topology
            .regions
            .iter()
            .map(|r| {
                let sockets = r
                    .nodes
                    .iter()
                    .map(|n| Socket::new(socket_path(&n.data_dir)))
                    .collect();
                (r.name.clone(), sockets)
            })
            .collect();
        Some(Handoff { regions })
    }

    /// Offers client connection number `connection` to a node of the Region its first request
    /// is signed for, waiting at most `wait` for that request's head. Nodes are asked in the
    /// relay's order ([`try_order`]: connections spread over the Region, and a node that
    /// lately did not take one is asked last); one that refuses the Unix connection (down)
    /// costs nothing, one that does not answer costs [`TAKE_TIMEOUT`].
    pub async fn offer(&self, stream: &TcpStream, connection: usize, wait: Duration) -> Offer {
        let mut head = vec![0u8; PEEK_BYTES];
        let n = match tokio::time::timeout(wait, stream.peek(&mut head)).await {
            Ok(Ok(n)) => n,
            _ => return Offer::Unrouted,
        };
        let Some(sockets) = signed_region(&head[..n]).and_then(|r| self.regions.get(&r)) else {
            return Offer::Unrouted;
        };
        for i in try_order(connection, sockets.len(), |i| {
            sockets[i].suspicion.suspect()
        }) {
            let socket = &sockets[i];
            match hand(&socket.path, stream.as_fd()).await {
                Ok(()) => {
                    socket.suspicion.mark(false);
                    return Offer::Handed;
                }
                Err(e) => {
                    // A refused connection is a node that is down: no wait next time either.
                    let timed_out = e.kind() == io::ErrorKind::TimedOut;
                    socket.suspicion.mark(timed_out);
                    tracing::debug!(socket = %socket.path.display(), error = %e, "handoff: node did not take the connection");
                }
            }
        }
        Offer::NotTaken
    }
}

/// The gateway's half of the exchange: `fd` to the node listening on `path`.
async fn hand(path: &Path, fd: BorrowedFd<'_>) -> io::Result<()> {
    tokio::time::timeout(TAKE_TIMEOUT, async {
        let mut unix = UnixStream::connect(path).await?;
        send_fd(&unix, fd).await?;
        let mut took = [0u8; 1];
        unix.read_exact(&mut took).await?;
        if took[0] != TOOK {
            return Err(io::Error::other("unexpected answer"));
        }
        unix.write_all(&[GO]).await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))?
}

async fn send_fd(unix: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    loop {
        unix.writable().await?;
        let sent = unix.try_io(Interest::WRITABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(io::Error::other("no room for the descriptor"));
            }
            sendmsg(
                unix,
                &[IoSlice::new(&[HAND])],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from)
        });
        match sent {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The byte and the descriptor the gateway sent, owned (a message with more than one
/// descriptor is refused, and every descriptor it carried closed).
async fn receive_fd(unix: &UnixStream) -> io::Result<OwnedFd> {
    loop {
        unix.readable().await?;
        let got = unix.try_io(Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let msg = recvmsg(
                unix,
                &mut [IoSliceMut::new(&mut byte)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )
            .map_err(io::Error::from)?;
            let mut fds = Vec::new();
            for m in control.drain() {
                if let RecvAncillaryMessage::ScmRights(received) = m {
                    fds.extend(received);
                }
            }
            let whole = !msg.flags.contains(ReturnFlags::CTRUNC);
            Ok((msg.bytes, byte[0], fds, whole))
        });
        match got {
            Ok((0, ..)) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok((_, HAND, mut fds, true)) if fds.len() == 1 => return Ok(fds.remove(0)),
            Ok(_) => return Err(io::Error::other("not one descriptor with the handoff byte")),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The node's side: binds the handoff socket in `data_dir` (a stale socket left by a killed
/// process is replaced), owner-only.
pub fn bind(data_dir: &Path) -> io::Result<(UnixListener, PathBuf)> {
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

/// Receives handed connections on `listener` (bound at `path`) and passes each, once the
/// exchange is done, to `to`, until `stop` turns true; removes the socket file then.
pub async fn receive(
    listener: UnixListener,
    path: PathBuf,
    to: mpsc::Sender<TcpStream>,
    mut stop: watch::Receiver<bool>,
) {
    let owner = match std::fs::metadata(&path) {
        Ok(m) => m.uid(),
        Err(e) => {
            tracing::error!(socket = %path.display(), error = %e, "handoff socket vanished; no connections will be handed here");
            return;
        }
    };
    loop {
        let unix = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((unix, _)) => unix,
                Err(e) => {
                    tracing::warn!(error = %e, "handoff: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() { break }
                continue
            }
        };
        match unix.peer_cred() {
            Ok(c) if c.uid() == owner => {}
            other => {
                tracing::warn!(peer = ?other.map(|c| (c.uid(), c.pid())).ok(), "handoff: refused a process of another user");
                continue;
            }
        }
        let to = to.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(NODE_STEP_TIMEOUT, take(unix)).await {
                Ok(Ok(stream)) => {
                    let _ = to.send(stream).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "handoff: connection not taken"),
                Err(_) => tracing::debug!("handoff: the gateway did not finish the exchange"),
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

/// The node's half of the exchange on one Unix connection.
async fn take(mut unix: UnixStream) -> io::Result<TcpStream> {
    let fd = receive_fd(&unix).await?;
    let stream = std::net::TcpStream::from(fd);
    // Only a connected TCP socket is served; anything else is closed here.
    stream.peer_addr()?;
    stream.set_nonblocking(true)?;
    unix.write_all(&[TOOK]).await?;
    let mut go = [0u8; 1];
    unix.read_exact(&mut go).await?;
    if go[0] != GO {
        return Err(io::Error::other("the gateway did not hand the connection"));
    }
    TcpStream::from_std(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIGNED: &str = "POST / HTTP/1.1\r\nhost: 127.0.0.1:4599\r\nx-amz-date: 20261207T120000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=test/20261207/eu-west-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\ncontent-length: 2\r\n\r\n{}";

    #[test]
    fn the_region_is_the_scope_of_a_whole_signed_head() {
        assert_eq!(
            signed_region(SIGNED.as_bytes()).as_deref(),
            Some("eu-west-1")
        );
        // The head is cut short: more is to come, so no decision.
        let cut = SIGNED.find("content-length").unwrap();
        assert_eq!(signed_region(&SIGNED.as_bytes()[..cut]), None);
        // Unsigned (a health probe) and not HTTP.
        assert_eq!(
            signed_region(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"),
            None
        );
        assert_eq!(
            signed_region(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            None
        );
    }

    proptest! {
        #[test]
        fn any_bytes_give_an_answer_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = signed_region(&bytes);
        }

        #[test]
        fn a_head_with_any_tail_names_its_region(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut head = SIGNED.as_bytes().to_vec();
            head.extend(tail);
            let region = signed_region(&head);
            prop_assert_eq!(region.as_deref(), Some("eu-west-1"));
        }
    }

    /// A node's side listening in a new directory: the directory, the socket's path, the
    /// connections it is handed, and its stop signal (kept alive by the caller).
    fn node_listening() -> (
        tempfile::TempDir,
        PathBuf,
        mpsc::Receiver<TcpStream>,
        watch::Sender<bool>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (unix, path) = bind(dir.path()).unwrap();
        let (tx, rx) = mpsc::channel(1);
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(receive(unix, path.clone(), tx, stop));
        (dir, path, rx, stop_tx)
    }

    /// A descriptor goes over the socket with the exchange, and the node ends up serving the
    /// same connection the client made (its bytes, unread by the gateway, reach the node).
    #[tokio::test]
    async fn a_handed_connection_is_the_clients_own() {
        let (dir, path, mut rx, _stop) = node_listening();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(tcp.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = tcp.accept().await.unwrap();
        client.write_all(SIGNED.as_bytes()).await.unwrap();
        let topology_like = Handoff {
            regions: [(
                "eu-west-1".to_string(),
                vec![
                    Socket::new(dir.path().join("absent.sock")),
                    Socket::new(path),
                ],
            )]
            .into_iter()
            .collect(),
        };
        // Connection 0 asks the absent node first: refused, so the next one takes it.
        let offer = topology_like
            .offer(&accepted, 0, Duration::from_secs(5))
            .await;
        assert_eq!(offer, Offer::Handed);
        drop(accepted);
        let mut served = rx.recv().await.unwrap();
        let mut got = vec![0u8; SIGNED.len()];
        served.read_exact(&mut got).await.unwrap();
        assert_eq!(got, SIGNED.as_bytes());
        served.write_all(b"answer").await.unwrap();
        let mut answer = [0u8; 6];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");

        // A Region with no node listening: not taken, and the gateway still holds the stream.
        let mut client2 = TcpStream::connect(tcp.local_addr().unwrap()).await.unwrap();
        let (accepted2, _) = tcp.accept().await.unwrap();
        client2.write_all(SIGNED.as_bytes()).await.unwrap();
        let none = Handoff {
            regions: [(
                "eu-west-1".to_string(),
                vec![Socket::new(dir.path().join("absent.sock"))],
            )]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            none.offer(&accepted2, 0, Duration::from_secs(5)).await,
            Offer::NotTaken
        );
        // An unsigned first request is served where it arrived.
        let mut client3 = TcpStream::connect(tcp.local_addr().unwrap()).await.unwrap();
        let (accepted3, _) = tcp.accept().await.unwrap();
        client3
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            topology_like
                .offer(&accepted3, 0, Duration::from_secs(5))
                .await,
            Offer::Unrouted
        );
    }

    /// A node that takes the descriptor but whose exchange the gateway abandons (here: a
    /// gateway that goes away before `GO`) drops its copy and serves nothing.
    #[tokio::test]
    async fn without_go_the_node_drops_the_connection() {
        let (_dir, path, mut rx, _stop) = node_listening();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(tcp.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = tcp.accept().await.unwrap();
        let mut gateway = UnixStream::connect(&path).await.unwrap();
        send_fd(&gateway, accepted.as_fd()).await.unwrap();
        let mut took = [0u8; 1];
        gateway.read_exact(&mut took).await.unwrap();
        assert_eq!(took[0], TOOK);
        drop(gateway);
        // The node saw the exchange end without GO: nothing of it can reach the server. A
        // later, complete exchange does.
        let mut gateway = UnixStream::connect(&path).await.unwrap();
        send_fd(&gateway, accepted.as_fd()).await.unwrap();
        gateway.read_exact(&mut took).await.unwrap();
        gateway.write_all(&[GO]).await.unwrap();
        let served = rx.recv().await.unwrap();
        assert_eq!(served.peer_addr().unwrap(), accepted.peer_addr().unwrap());
        assert!(
            rx.try_recv().is_err(),
            "the abandoned exchange served a connection"
        );
    }
}
