//! Where and when this Region's leader committed the latest change of each multi-Region
//! primary key it holds: the origin a synchronization to the replicas reports
//! ([`kmsim_core::sync::ChangeOrigin`]), so the replica's Region can measure the lag from the
//! commit here to its own apply (`kmsim_sync_lag_seconds`) and log the change's trace.
//!
//! Kept in memory on the node that committed the change, bounded; a node that becomes leader
//! later, or restarts, does not know the origin of changes committed before, and sends them
//! without one (the receiver then observes no lag for them).

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use lru::LruCache;

use kmsim_core::ids::KeyId;
use kmsim_core::state::{decode_result, CommandOutput};
use kmsim_core::sync::ChangeOrigin;

/// How many keys' latest changes are remembered.
const CAPACITY: usize = 16_384;

/// The origins of the latest committed changes of primary keys, by key.
pub struct CommitOrigins {
    region: String,
    latest: Mutex<LruCache<KeyId, ((u64, u64), ChangeOrigin)>>,
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

    /// Notes a write this node committed as leader, from its encoded result: a primary
    /// multi-Region key of this Region at a new (epoch, version) is remembered with the
    /// current trace and the time now.
    pub fn committed(&self, result: &[u8]) {
        let Ok(CommandOutput::Key(key)) = decode_result(result) else {
            return;
        };
        let Some(m) = &key.shared.mrk else {
            return;
        };
        if m.primary.as_str() != self.region {
            return;
        }
        let mut latest = self.latest.lock().expect("invariant: lock not poisoned");
        // A write that left the stamp as it was (e.g. a Regional property) keeps the origin of
        // the change that made that stamp.
        if latest
            .peek(&key.key_id)
            .is_some_and(|(s, _)| *s == m.stamp())
        {
            return;
        }
        let origin = ChangeOrigin {
            traceparent: crate::trace::current().map(|t| t.child().header()),
            committed_unix_ms: unix_ms_now(),
        };
        latest.put(key.key_id.clone(), (m.stamp(), origin));
    }

    /// The origin of the change that made `key_id`'s shared properties `stamp`, if this node
    /// committed it.
    pub fn get(&self, key_id: &KeyId, stamp: (u64, u64)) -> Option<ChangeOrigin> {
        let mut latest = self.latest.lock().expect("invariant: lock not poisoned");
        match latest.get(key_id) {
            Some((s, origin)) if *s == stamp => Some(origin.clone()),
            _ => None,
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
