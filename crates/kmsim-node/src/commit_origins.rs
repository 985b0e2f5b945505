//! Where and when this Region's leader proposed the latest change of each multi-Region
//! primary key it holds: the origin a synchronization to the replicas reports
//! ([`kmsim_core::sync::ChangeOrigin`]), so the replica's Region can measure the lag from the
//! commit here to its own apply (`kmsim_sync_lag_seconds`) and log the change's trace.
//!
//! The time is the host's wall clock when the leader proposed the write (a commit takes
//! milliseconds more). Kept in memory on the node that committed the change, bounded; a node
//! that becomes leader later, or restarts, does not know the origin of changes committed before,
//! and sends them without one (the receiver then observes no lag for them).

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use lru::LruCache;

use kmsim_core::ids::KeyId;
use kmsim_core::state::{decode_result, CommandOutput};
use kmsim_core::sync::ChangeOrigin;

/// How many keys' latest changes are remembered.
const CAPACITY: usize = 16_384;

/// What is known of one key's latest change.
#[derive(Default)]
struct Latest {
    /// The change that made the (epoch, version) the key has, when this node committed it.
    settled: Option<((u64, u64), ChangeOrigin)>,
    /// A write this node is committing now: its stamp is not known until it is applied, and
    /// the synchronizer (woken by the apply) may deliver the change before the proposer hears
    /// the result, so a delivery of a stamp newer than the settled one takes this origin.
    pending: Option<ChangeOrigin>,
}

/// The origins of the latest changes of primary keys this node committed as leader, by key.
pub struct CommitOrigins {
    region: String,
    latest: Mutex<LruCache<KeyId, Latest>>,
}

impl CommitOrigins {
    /// Origins of the primary keys of `region`.
    pub fn new(region: &str) -> CommitOrigins {
        CommitOrigins {
            region: region.to_string(),
            latest: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).expect("invariant: capacity is not zero"),
            )),
        }
    }

    /// A write about `key_id` is being committed by this node now, in the current trace.
    /// Only multi-Region keys (`mrk-…`) are remembered: no other key is ever synchronized, and
    /// writes of single-Region keys must neither pay for a result decode nor evict the origins
    /// of multi-Region keys from the cache.
    pub fn proposing(&self, key_id: &KeyId) {
        if !key_id.is_multi_region() {
            return;
        }
        let origin = ChangeOrigin {
            traceparent: crate::trace::current().map(|t| t.header()),
            committed_unix_ms: unix_ms_now(),
        };
        let mut latest = self.latest.lock().expect("invariant: lock not poisoned");
        latest
            .get_or_insert_mut(key_id.clone(), Latest::default)
            .pending = Some(origin);
    }

    /// The write about `key_id` ended: `result` is its encoded result when it was committed.
    /// A primary multi-Region key of this Region at a new (epoch, version) settles with the
    /// write's origin; a write that left the stamp as it was keeps the earlier origin.
    pub fn ended(&self, key_id: &KeyId, result: Option<&[u8]>) {
        if !key_id.is_multi_region() {
            return;
        }
        let mut latest = self.latest.lock().expect("invariant: lock not poisoned");
        let Some(entry) = latest.get_mut(key_id) else {
            return;
        };
        let Some(origin) = entry.pending.take() else {
            return;
        };
        let Some(Ok(CommandOutput::Key(key))) = result.map(decode_result) else {
            return;
        };
        let Some(m) = key
            .shared
            .mrk
            .as_ref()
            .filter(|m| m.primary.as_str() == self.region)
        else {
            return;
        };
        if entry.settled.as_ref().is_none_or(|(s, _)| *s != m.stamp()) {
            entry.settled = Some((m.stamp(), origin));
        }
    }

    /// The origin of the change that made `key_id`'s shared properties `stamp`, if this node
    /// committed it (or is committing a change of the key now).
    pub fn get(&self, key_id: &KeyId, stamp: (u64, u64)) -> Option<ChangeOrigin> {
        let mut latest = self.latest.lock().expect("invariant: lock not poisoned");
        let entry = latest.get(key_id)?;
        match &entry.settled {
            Some((s, origin)) if *s == stamp => Some(origin.clone()),
            _ => entry.pending.clone(),
        }
    }
}

/// Host wall-clock time, ms since the Unix epoch.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
