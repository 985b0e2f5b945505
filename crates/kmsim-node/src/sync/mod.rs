//! The synchronizer between Regions (docs/ARCHITECTURE.md "Multi-Region keys"): the gRPC service every node
//! serves (`service`), the task on the Region's Raft leader that delivers what the replicated
//! state says must be delivered (`task`) through the sending side (`link`), the envelope both
//! use (`envelope`), the node's session keys (`session`) and the receiver's check of delivered
//! material against its commitments (`material_check`).
//!
//! What must reach another Region is always derived from the replicated state — acknowledged
//! (epoch, version) per replica, replicas being created, a hand-over in flight, queued notices —
//! so a leader change or a restart loses nothing: the next leader finds the same work. Every
//! message is applied idempotently by the receiver (only a newer (epoch, version) changes
//! anything), so redelivery is always safe.

pub mod envelope;
pub mod link;
pub mod material_check;
pub mod service;
pub mod session;
pub mod task;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kmsim_crypto::{TransportCertificate, TransportKeyPair};
use tonic::transport::Channel;

/// The most verified certificates kept (a topology has a few Regions; a flood of forged
/// certificates never enters the cache, which holds only verified ones).
const VERIFIED_CACHE_MAX: usize = 256;

/// This Region's identity towards other Regions, and what it needs to check theirs.
pub struct SyncIdentity {
    /// This Region's name.
    pub region: String,
    /// This Region's partition.
    pub partition: String,
    /// This Region's static transport key pair (P-384): signs this Region's requests and the
    /// session-key statements of its nodes.
    pub transport: TransportKeyPair,
    /// Its certificate from the partition's trust anchor, as sent with every message.
    pub certificate: Vec<u8>,
    /// The trust anchor public key (DER SPKI) of every partition of the topology.
    pub anchors: BTreeMap<String, Vec<u8>>,
    /// The partition of every Region of the topology.
    pub partitions: BTreeMap<String, String>,
    /// The transport certificate of every Region of the topology (public; from the topology).
    pub certificates: BTreeMap<String, Vec<u8>>,
    /// The gRPC addresses of every other Region's nodes, as `(node id, address)`.
    pub peers: BTreeMap<String, Vec<(u64, String)>>,
    /// How this node dials other Regions' nodes (its node certificate).
    pub dialer: crate::tls::Dialer,
    /// Open channels by address (one HTTP/2 connection per peer node, reused).
    pub channels: Mutex<HashMap<String, Channel>>,
    /// Certificates already verified, by (Region, exact bytes): a signature is checked once,
    /// not on every message. Only certificates that passed every check are kept.
    pub verified: Mutex<HashMap<(String, Vec<u8>), TransportCertificate>>,
}

impl SyncIdentity {
    /// The channel to a peer node's address, opened on first use.
    pub fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut map = self.channels.lock().expect("invariant: lock not poisoned");
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let c = crate::network::channel(&self.dialer, addr).map_err(|e| e.to_string())?;
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// The certified transport public key of `region`, to seal messages to.
    pub fn recipient_key(&self, region: &str) -> Result<Vec<u8>, String> {
        let bytes = self
            .certificates
            .get(region)
            .ok_or_else(|| format!("no transport certificate for {region}"))?;
        Ok(self.check_certificate(region, bytes)?.public_key_der)
    }

    /// Checks a certificate received from `source`: signed by the trust anchor of the
    /// partition the topology gives `source`, for `source`, in that partition.
    pub fn check_certificate(
        &self,
        source: &str,
        bytes: &[u8],
    ) -> Result<TransportCertificate, String> {
        let cache_key = (source.to_string(), bytes.to_vec());
        let mut verified = self.verified.lock().expect("invariant: lock not poisoned");
        if let Some(cert) = verified.get(&cache_key) {
            return Ok(cert.clone());
        }
        let cert = self.verify_certificate(source, bytes)?;
        if verified.len() >= VERIFIED_CACHE_MAX {
            verified.clear();
        }
        verified.insert(cache_key, cert.clone());
        Ok(cert)
    }

    fn verify_certificate(
        &self,
        source: &str,
        bytes: &[u8],
    ) -> Result<TransportCertificate, String> {
        let cert = TransportCertificate::from_bytes(bytes)
            .map_err(|e| format!("malformed certificate: {e}"))?;
        let partition = self
            .partitions
            .get(source)
            .ok_or_else(|| format!("{source} is not a Region of this topology"))?;
        if cert.region != source || &cert.partition != partition {
            return Err(format!(
                "certificate is for {}/{}, not for {partition}/{source}",
                cert.partition, cert.region
            ));
        }
        let anchor = self
            .anchors
            .get(partition)
            .ok_or_else(|| format!("no trust anchor for partition {partition}"))?;
        cert.verify(anchor).map_err(|_| {
            format!("certificate of {source} is not signed by the {partition} trust anchor")
        })?;
        Ok(cert)
    }
}
