//! The fault layer: every outgoing node-to-node message (Raft RPCs, forwarded writes, the
//! synchronizer's messages to other Regions, AWS JSON requests forwarded to another Region)
//! passes through [`FaultTable::before_send`], which applies the current profile of the link to that
//! peer: added delay, jitter, loss, or a full partition. Profiles change at run time through
//! the admin API (`kmsim chaos …`). Random choices (jitter, loss) come from a generator seeded
//! per node, so a run can be repeated.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How one outgoing link misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkProfile {
    /// Fixed delay before each message is sent.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per message.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a message is dropped.
    pub loss: f64,
    /// Nothing reaches the peer.
    pub partitioned: bool,
}

impl LinkProfile {
    /// True when the profile changes nothing.
    pub fn is_healthy(&self) -> bool {
        *self == LinkProfile::default()
    }
}

/// Why a message did not leave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The link is partitioned.
    #[error("link to {0} is partitioned (injected fault)")]
    Partitioned(String),
    /// The message was dropped by the loss setting.
    #[error("message to {0} dropped (injected loss)")]
    Dropped(String),
}

/// The fault profiles of one node's outgoing links, keyed by peer (`REGION/ID`).
pub struct FaultTable {
    links: RwLock<BTreeMap<String, LinkProfile>>,
    rng: Mutex<StdRng>,
}

impl FaultTable {
    /// An empty table (every link healthy) whose random choices come from `seed`.
    pub fn new(seed: u64) -> FaultTable {
        FaultTable {
            links: RwLock::new(BTreeMap::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// Sets (or, with a healthy profile, removes) the profile of the link to `peer`.
    pub fn set(&self, peer: &str, profile: LinkProfile) {
        let mut links = self.links.write().expect("invariant: lock not poisoned");
        if profile.is_healthy() {
            links.remove(peer);
        } else {
            links.insert(peer.to_string(), profile);
        }
    }

    /// Heals every link.
    pub fn clear(&self) {
        self.links
            .write()
            .expect("invariant: lock not poisoned")
            .clear();
    }

    /// Every faulty link, ordered by peer.
    pub fn list(&self) -> Vec<(String, LinkProfile)> {
        self.links
            .read()
            .expect("invariant: lock not poisoned")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Applies the link's profile to one message about to be sent to `peer`: waits out the
    /// delay, or refuses the message if the link is partitioned or the message is lost.
    pub async fn before_send(&self, peer: &str) -> Result<(), FaultError> {
        let profile = match self
            .links
            .read()
            .expect("invariant: lock not poisoned")
            .get(peer)
        {
            None => return Ok(()),
            Some(p) => *p,
        };
        if profile.partitioned {
            return Err(FaultError::Partitioned(peer.to_string()));
        }
        let (lost, extra) = {
            let mut rng = self.rng.lock().expect("invariant: lock not poisoned");
            let lost = profile.loss > 0.0 && rng.gen_bool(profile.loss.clamp(0.0, 1.0));
            let extra = if profile.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(rng.gen_range(0..=profile.jitter.as_micros() as u64))
            };
            (lost, extra)
        };
        if lost {
            return Err(FaultError::Dropped(peer.to_string()));
        }
        let wait = profile.delay + extra;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn profiles_partition_drop_and_delay() {
        let t = FaultTable::new(7);
        assert_eq!(t.before_send("us-east-1/2").await, Ok(()));
        t.set(
            "us-east-1/2",
            LinkProfile {
                partitioned: true,
                ..Default::default()
            },
        );
        assert!(matches!(
            t.before_send("us-east-1/2").await,
            Err(FaultError::Partitioned(_))
        ));
        assert_eq!(t.before_send("us-east-1/3").await, Ok(()));
        t.set(
            "us-east-1/2",
            LinkProfile {
                loss: 1.0,
                ..Default::default()
            },
        );
        assert!(matches!(
            t.before_send("us-east-1/2").await,
            Err(FaultError::Dropped(_))
        ));
        t.set(
            "us-east-1/2",
            LinkProfile {
                delay: Duration::from_millis(30),
                ..Default::default()
            },
        );
        let start = tokio::time::Instant::now();
        t.before_send("us-east-1/2").await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(t.list().len(), 1);
        t.set("us-east-1/2", LinkProfile::default());
        assert!(t.list().is_empty());
    }

    #[tokio::test]
    async fn loss_follows_the_seed() {
        let draws = |seed| async move {
            let t = FaultTable::new(seed);
            t.set(
                "p",
                LinkProfile {
                    loss: 0.5,
                    ..Default::default()
                },
            );
            let mut v = Vec::new();
            for _ in 0..64 {
                v.push(t.before_send("p").await.is_ok());
            }
            v
        };
        let a = draws(1).await;
        assert_eq!(a, draws(1).await);
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }
}
