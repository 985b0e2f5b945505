//! The sending side of the synchronizer: seals a message to another Region, tries that
//! Region's nodes in turn through the fault layer, and opens the authenticated answer. Used by
//! the synchronizer task (durable, retried work derived from the state) and by the requests
//! that must reach another Region before they answer (ReplicateKey creates the replica there,
//! UpdatePrimaryRegion delivers the promotion).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::sync::{SyncMessage, SyncReply};
use kmsim_proto::sync::v1::sync_service_client::SyncServiceClient;
use kmsim_proto::sync::v1::SyncEnvelope;

use super::envelope::{open, seal, Bundle};
use super::task::SyncSettings;
use super::SyncIdentity;
use crate::entropy::Entropy;
use crate::faults::FaultTable;

/// What a node needs to talk to other Regions.
pub struct SyncLink {
    /// This Region's identity and the other Regions' certificates and addresses.
    pub id: Arc<SyncIdentity>,
    /// The node's fault table: every delivery passes it for the destination node.
    pub faults: Arc<FaultTable>,
    /// Timing (retries, anti-entropy, RPC deadline).
    pub settings: SyncSettings,
    /// Where the next delivery starts in a Region's node list, so load and failures spread.
    cursor: AtomicUsize,
}

impl SyncLink {
    /// A link with this identity, fault table and timing.
    pub fn new(id: Arc<SyncIdentity>, faults: Arc<FaultTable>, settings: SyncSettings) -> Self {
        SyncLink {
            id,
            faults,
            settings,
            cursor: AtomicUsize::new(0),
        }
    }

    /// Seals `message` to `dest`, tries its nodes in turn (each through the fault layer, each
    /// RPC bounded by `settings.rpc_timeout`) and opens the authenticated answer. An error
    /// means no node gave an authentic answer: unreachable, partitioned, refused, or timed out.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        entropy: &Entropy,
        dest: &Region,
        key_id: &KeyId,
        stamp: u64,
        message: &SyncMessage,
        secret: &Bundle,
    ) -> Result<SyncReply, String> {
        let id = &self.id;
        let recipient = id.recipient_key(dest.as_str())?;
        let env: SyncEnvelope = seal(
            id,
            dest.as_str(),
            &recipient,
            key_id.as_str(),
            stamp,
            message,
            secret,
            entropy,
        )?;
        let nodes = id.peers.get(dest.as_str()).cloned().unwrap_or_default();
        if nodes.is_empty() {
            return Err(format!("no nodes known for {dest}"));
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..nodes.len() {
            let (node_id, addr) = &nodes[(start + i) % nodes.len()];
            let peer = format!("{dest}/{node_id}");
            if let Err(e) = self.faults.before_send(&peer).await {
                last = e.to_string();
                continue;
            }
            let ch = id.channel(addr)?;
            let mut client = SyncServiceClient::new(ch);
            let mut req = tonic::Request::new(env.clone());
            req.set_timeout(self.settings.rpc_timeout);
            match client.deliver(req).await {
                Ok(resp) => {
                    let answer = resp.into_inner();
                    // An answer counts only for the request it answers: from the Region asked,
                    // about the same key and stamp (all bound into the seal, so authentic once
                    // opened). A recorded answer about another key or version is refused.
                    if answer.source != dest.as_str()
                        || answer.key_id != key_id.as_str()
                        || answer.stamp != stamp
                    {
                        return Err(format!(
                            "{peer} answered for {} {} stamp {}, not for {key_id} stamp {stamp}",
                            answer.source, answer.key_id, answer.stamp
                        ));
                    }
                    let opened = open::<SyncReply>(id, &answer)?;
                    return Ok(opened.message);
                }
                Err(s) if s.code() == tonic::Code::PermissionDenied => {
                    return Err(format!("{peer} refused the message: {}", s.message()));
                }
                Err(s) => last = format!("{peer}: {}", s.message()),
            }
        }
        Err(last)
    }
}
