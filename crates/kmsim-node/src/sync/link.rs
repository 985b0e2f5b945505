//! The sending side of the synchronizer: seals a message to another Region, tries that
//! Region's nodes in turn through the fault layer, and opens the authenticated answer. Used by
//! the synchronizer task (durable, retried work derived from the state) and by the requests
//! that must reach another Region before they answer (ReplicateKey creates the replica there,
//! UpdatePrimaryRegion delivers the promotion).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::sync::{SyncMessage, SyncReply};
use kmsim_crypto::{SessionKeyClaim, CHALLENGE_LEN};
use kmsim_proto::sync::v1::sync_service_client::SyncServiceClient;
use kmsim_proto::sync::v1::SessionKeyRequest;
use tonic::transport::Channel;

use super::envelope::{open_answer, seal, Bundle};
use super::task::SyncSettings;
use super::SyncIdentity;
use crate::entropy::Entropy;
use crate::faults::FaultTable;
use crate::metrics::DeliveryLabels;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// What a node needs to talk to other Regions.
pub struct SyncLink {
    /// This Region's identity and the other Regions' certificates and addresses.
    pub id: Arc<SyncIdentity>,
    /// The node's fault table: every delivery passes it for the destination node.
    pub faults: Arc<FaultTable>,
    /// Timing (retries, anti-entropy, RPC deadline, session key period).
    pub settings: SyncSettings,
    /// Where the next delivery starts in a Region's node list, so load and failures spread.
    cursor: AtomicUsize,
    /// The session public key of each peer node (`REGION/ID`), verified, and when it was
    /// fetched: used for half a rotation period, so it is always still held by the peer (which
    /// keeps a key for two periods after making it) when a request sealed to it arrives.
    sessions: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    /// `kmsim_sync_deliveries_total`: deliveries by destination and result.
    deliveries: Family<DeliveryLabels, Counter>,
    /// Whether the synchronizer task runs (set by [`SyncLink::task_started`]'s guard): a node
    /// whose task ended (a panic, a stop) is not ready (`GET /readyz`).
    task_running: AtomicBool,
    /// Paused by a chaos fault (admin `SetSyncPaused`): nothing is sent to or accepted from
    /// another Region; the work stays in the replicated state and is delivered on resume.
    paused: AtomicBool,
    /// The IAM version each other Region answered this node's synchronizer with (the home
    /// Region's leader sends the document to every Region behind it). Held in memory: a new
    /// leader starts empty and sends the document once more to every Region.
    pub iam_acked: Mutex<HashMap<String, u64>>,
}

/// Marks the synchronizer task of a [`SyncLink`] as running until it is dropped (also when the
/// task panics and unwinds).
pub struct TaskRunning(Arc<SyncLink>);

impl Drop for TaskRunning {
    fn drop(&mut self) {
        self.0.task_running.store(false, Ordering::Release);
    }
}

impl SyncLink {
    /// A link with this identity, fault table and timing, counting its deliveries in
    /// `deliveries`.
    pub fn new(
        id: Arc<SyncIdentity>,
        faults: Arc<FaultTable>,
        settings: SyncSettings,
        deliveries: Family<DeliveryLabels, Counter>,
    ) -> Self {
        SyncLink {
            id,
            faults,
            settings,
            cursor: AtomicUsize::new(0),
            sessions: Mutex::new(HashMap::new()),
            deliveries,
            task_running: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            iam_acked: Mutex::new(HashMap::new()),
        }
    }

    /// Called by the synchronizer task as it starts; it runs until the guard is dropped.
    pub fn task_started(self: &Arc<Self>) -> TaskRunning {
        self.task_running.store(true, Ordering::Release);
        TaskRunning(self.clone())
    }

    /// Whether the synchronizer task runs.
    pub fn task_running(&self) -> bool {
        self.task_running.load(Ordering::Acquire)
    }

    /// Pauses (`true`) or resumes this node's synchronization with other Regions.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }

    /// Whether this node's synchronization is paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    fn cached_session(&self, peer: &str) -> Option<Vec<u8>> {
        let map = self.sessions.lock().expect("invariant: lock not poisoned");
        map.get(peer)
            .filter(|(_, at)| at.elapsed() < self.settings.session_key_period / 2)
            .map(|(k, _)| k.clone())
    }

    fn forget_session(&self, peer: &str) {
        let mut map = self.sessions.lock().expect("invariant: lock not poisoned");
        map.remove(peer);
    }

    /// The session key of `dest`'s node `node_id`: from the cache, or fetched (through the fault
    /// layer) and verified.
    async fn session_key(
        &self,
        client: &mut SyncServiceClient<Channel>,
        dest: &Region,
        node_id: u64,
        peer: &str,
    ) -> Result<Vec<u8>, String> {
        if let Some(key) = self.cached_session(peer) {
            return Ok(key);
        }
        self.faults
            .before_send(peer)
            .await
            .map_err(|e| e.to_string())?;
        let key = fetch_session_key(
            &self.id,
            client,
            dest.as_str(),
            node_id,
            self.settings.rpc_timeout,
        )
        .await?;
        let mut map = self.sessions.lock().expect("invariant: lock not poisoned");
        if map.len() >= SESSION_CACHE_MAX {
            map.clear();
        }
        map.insert(peer.to_string(), (key.clone(), Instant::now()));
        Ok(key)
    }

    /// Seals `message` to `dest`, tries its nodes in turn (each through the fault layer, each
    /// RPC bounded by `settings.rpc_timeout`) and opens the authenticated answer. Each attempt
    /// is sealed afresh to the session key of the node it goes to; a node that no longer holds
    /// the cached key (restarted, or the key rotated out) is asked for its current one and the
    /// request sealed again, once. An error means no node gave an authentic answer:
    /// unreachable, partitioned, refused, or timed out. Counted in
    /// `kmsim_sync_deliveries_total` either way.
    pub async fn send(
        &self,
        entropy: &Entropy,
        dest: &Region,
        key_id: &KeyId,
        stamp: u64,
        message: &SyncMessage,
        secret: &Bundle,
    ) -> Result<SyncReply, String> {
        self.send_as(entropy, dest, key_id.as_str(), stamp, message, secret)
            .await
    }

    /// [`SyncLink::send`] of a message about something other than a key, whose envelope names
    /// `envelope_id` (`kmsim_core::sync::IAM_ENVELOPE_ID` for the IAM document).
    pub async fn send_as(
        &self,
        entropy: &Entropy,
        dest: &Region,
        envelope_id: &str,
        stamp: u64,
        message: &SyncMessage,
        secret: &Bundle,
    ) -> Result<SyncReply, String> {
        // Every way out of the block is one delivery, counted below.
        let sent: Result<SyncReply, String> = async {
            let id = &self.id;
            if self.paused() {
                return Err(format!(
                    "the synchronizer of {} is paused (injected fault)",
                    id.region
                ));
            }
            let nodes = id.peers.get(dest.as_str()).cloned().unwrap_or_default();
            if nodes.is_empty() {
                return Err(format!("no nodes known for {dest}"));
            }
            let start = self.cursor.fetch_add(1, Ordering::Relaxed);
            let mut last = String::new();
            'nodes: for i in 0..nodes.len() {
                let (node_id, addr) = &nodes[(start + i) % nodes.len()];
                let peer = format!("{dest}/{node_id}");
                if let Err(e) = self.faults.before_send(&peer).await {
                    last = e.to_string();
                    continue;
                }
                let mut client = SyncServiceClient::new(id.channel(addr)?);
                for fresh_key in [false, true] {
                    if fresh_key {
                        self.forget_session(&peer);
                    }
                    let session = match self.session_key(&mut client, dest, *node_id, &peer).await {
                        Ok(key) => key,
                        Err(e) => {
                            last = format!("{peer}: {e}");
                            continue 'nodes;
                        }
                    };
                    let (env, answer_key) = seal(
                        id,
                        dest.as_str(),
                        &session,
                        envelope_id,
                        stamp,
                        message,
                        secret,
                        entropy,
                    )?;
                    let mut req = tonic::Request::new(env.clone());
                    req.set_timeout(self.settings.rpc_timeout);
                    match client.deliver(req).await {
                        Ok(resp) => return open_answer(&env, &answer_key, &resp.into_inner()),
                        Err(s) if s.code() == tonic::Code::FailedPrecondition && !fresh_key => {
                            last = format!("{peer}: {}", s.message());
                        }
                        Err(s) if s.code() == tonic::Code::PermissionDenied => {
                            return Err(format!("{peer} refused the message: {}", s.message()));
                        }
                        Err(s) => {
                            last = format!("{peer}: {}", s.message());
                            continue 'nodes;
                        }
                    }
                }
            }
            Err(last)
        }
        .await;
        let result = if sent.is_ok() { "ok" } else { "failed" };
        self.deliveries
            .get_or_create(&DeliveryLabels {
                destination: dest.to_string(),
                result,
            })
            .inc();
        sent
    }
}

/// The most peer session keys a link keeps (a topology has a few dozen nodes).
const SESSION_CACHE_MAX: usize = 256;

/// Asks node `node_id` of `dest` for its current session key with a fresh challenge, and checks
/// the answer: for that Region and node, signed by the Region's certified transport key for this
/// challenge. Returns the session public key (SPKI DER).
pub async fn fetch_session_key(
    id: &SyncIdentity,
    client: &mut SyncServiceClient<Channel>,
    dest: &str,
    node_id: u64,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let challenge: [u8; CHALLENGE_LEN] = Entropy.bytes();
    let mut req = tonic::Request::new(SessionKeyRequest {
        challenge: challenge.to_vec(),
    });
    req.set_timeout(timeout);
    let resp = client
        .session_key(req)
        .await
        .map_err(|s| format!("session key: {}", s.message()))?
        .into_inner();
    if resp.region != dest || resp.node_id != node_id {
        return Err(format!(
            "asked {dest}/{node_id} for its session key, {}/{} answered",
            resp.region, resp.node_id
        ));
    }
    let region_key = id.recipient_key(dest)?;
    SessionKeyClaim {
        region: dest,
        node_id,
        public_key_der: &resp.public_key,
        challenge: &challenge,
    }
    .verify(&region_key, &resp.signature)
    .map_err(|e| format!("session key of {dest}/{node_id} refused: {e}"))?;
    Ok(resp.public_key)
}
