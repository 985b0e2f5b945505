//! This node's session keys (docs/ARCHITECTURE.md, "The envelope"): the short-lived P-384 key
//! pairs requests to this node are sealed to, and the record of which requests each has opened.
//!
//! Only in memory. The current pair is replaced every `period`; the replaced one stays for one
//! more period (the grace window, for requests sealed just before the rotation) and is then
//! dropped, which wipes it. So a request can be opened only by this node and only within at most
//! two periods after its session key was made; after that nobody can open it, with any key.
//!
//! The replay check lives here for the same reason: each pair remembers the challenge of every
//! request it opened and refuses a second request with the same challenge. A replay after the
//! pair is gone fails to open at all, so the seen-set needs to live exactly as long as the pair
//! — in this node's memory. A restart loses both together; a leader change does not matter,
//! because the node that opens a request is the node its session key belongs to, not the
//! leader.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kmsim_crypto::{
    open_request, request_session_id, OpenedRequest, SessionKeyPair, TransportAad, CHALLENGE_LEN,
    SESSION_KEY_ID_LEN,
};
use tokio::sync::watch;

use crate::entropy::Entropy;

/// Requests one session pair opens at most. Beyond it the pair is retired at once (a sender
/// fetches the next and retries), so the seen-set stays bounded (~48 MB at worst).
const SEEN_MAX: usize = 1 << 20;

/// Why a request was not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRefusal {
    /// The request names a session key this node does not hold (rotated out, made before a
    /// restart, or another node's): the sender should fetch the current one and seal again.
    Unknown,
    /// A request with this challenge was opened before.
    Replayed,
    /// The seal or the signature does not open.
    Failed,
}

/// One pair and the challenges it has opened.
struct Slot {
    /// Shared with requests being opened; wiped when the last holder drops it.
    pair: Arc<SessionKeyPair>,
    born: Instant,
    seen: HashSet<[u8; CHALLENGE_LEN]>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            pair: Arc::new(SessionKeyPair::generate(&mut Entropy.rng())),
            born: Instant::now(),
            seen: HashSet::new(),
        }
    }
}

struct Ring {
    current: Slot,
    previous: Option<Slot>,
}

/// The node's session key ring.
pub struct SessionKeys {
    /// This node's ID (named in every signed statement).
    pub node_id: u64,
    /// How long a pair is current; it is kept one more period after that.
    pub period: Duration,
    ring: Mutex<Ring>,
}

impl SessionKeys {
    /// A ring with a fresh current pair.
    pub fn new(node_id: u64, period: Duration) -> SessionKeys {
        SessionKeys {
            node_id,
            period,
            ring: Mutex::new(Ring {
                current: Slot::new(),
                previous: None,
            }),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Rotates when the current pair has been current for a period, and drops a previous pair
    /// older than two. Called by [`SessionKeys::run`] and before every use.
    pub fn rotate_if_due(&self) {
        let mut ring = self.ring();
        let now = Instant::now();
        if now.duration_since(ring.current.born) >= self.period {
            rotate(&mut ring);
        }
        if ring
            .previous
            .as_ref()
            .is_some_and(|p| now.duration_since(p.born) >= self.period * 2)
        {
            ring.previous = None;
        }
    }

    /// The current session public key (SPKI DER).
    pub fn current_public(&self) -> Vec<u8> {
        self.rotate_if_due();
        self.ring().current.pair.public_key_der().to_vec()
    }

    /// Opens a request sealed to one of this node's session keys and records its challenge.
    /// The cryptography runs outside the lock, so requests are opened in parallel.
    pub fn open(
        &self,
        sender_public: &[u8],
        aad: &TransportAad<'_>,
        sealed: &[u8],
    ) -> Result<OpenedRequest, SessionRefusal> {
        self.rotate_if_due();
        let id = request_session_id(sealed).ok_or(SessionRefusal::Failed)?;
        let pair = self
            .with_slot(&id, |slot| slot.pair.clone())
            .ok_or(SessionRefusal::Unknown)?;
        let opened =
            open_request(&pair, sender_public, aad, sealed).map_err(|_| SessionRefusal::Failed)?;
        drop(pair);
        // The pair may have been retired meanwhile: then the request counts as sealed to a key
        // this node no longer holds.
        let fresh = self
            .with_slot(&id, |slot| {
                (slot.seen.len() < SEEN_MAX).then(|| slot.seen.insert(opened.challenge))
            })
            .ok_or(SessionRefusal::Unknown)?;
        match fresh {
            Some(true) => Ok(opened),
            Some(false) => Err(SessionRefusal::Replayed),
            None => {
                // Full: retire it now; the sender fetches the next pair and seals again.
                let mut ring = self.ring();
                rotate(&mut ring);
                ring.previous = None;
                Err(SessionRefusal::Unknown)
            }
        }
    }

    /// Runs `f` on the held slot whose pair has this ID, if any.
    fn with_slot<T>(
        &self,
        id: &[u8; SESSION_KEY_ID_LEN],
        f: impl FnOnce(&mut Slot) -> T,
    ) -> Option<T> {
        let mut ring = self.ring();
        let Ring { current, previous } = &mut *ring;
        if current.pair.id() == *id {
            return Some(f(current));
        }
        previous.as_mut().filter(|p| p.pair.id() == *id).map(f)
    }

    /// Rotates on time even when no request comes, so a pair never outlives two periods by
    /// more than a tick. Runs until `shutdown` flips.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let tick = (self.period / 8).clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => self.rotate_if_due(),
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The current pair becomes the previous one (the old previous is dropped: wiped).
fn rotate(ring: &mut Ring) {
    let old = std::mem::replace(&mut ring.current, Slot::new());
    ring.previous = Some(old);
}

#[cfg(test)]
mod tests {
    use kmsim_crypto::{seal_request, TransportKeyPair};

    use super::*;

    const AAD: TransportAad<'static> = TransportAad {
        key_id: "mrk-1234abcd12ab34cd56ef1234567890ab",
        source: "us-east-1",
        destination: "eu-west-1",
        version: 0,
        context: b"notice",
    };

    #[test]
    fn opens_once_then_refuses_the_replay_and_forgets_after_two_rotations() {
        let sender = TransportKeyPair::generate(&mut Entropy.rng());
        let keys = SessionKeys::new(1, Duration::from_secs(3600));
        let seal = |public: &[u8]| {
            seal_request(&sender, public, &AAD, b"", &mut Entropy.rng())
                .expect("seals")
                .0
        };
        let public = sender.public_key_der();
        let first = seal(&keys.current_public());
        assert!(keys.open(&public, &AAD, &first).is_ok());
        assert_eq!(
            keys.open(&public, &AAD, &first).map(|_| ()),
            Err(SessionRefusal::Replayed)
        );
        // A retry is a new seal with a new challenge: taken.
        let retry = seal(&keys.current_public());
        assert!(keys.open(&public, &AAD, &retry).is_ok());
        // Sealed before a rotation: still opens in the grace window (once).
        let late = seal(&keys.current_public());
        rotate(&mut keys.ring());
        assert!(keys.open(&public, &AAD, &late).is_ok());
        assert_eq!(
            keys.open(&public, &AAD, &late).map(|_| ()),
            Err(SessionRefusal::Replayed)
        );
        // After the second rotation the pair is gone: the replay of any request to it does
        // not open at all.
        rotate(&mut keys.ring());
        for old in [&first, &late] {
            assert_eq!(
                keys.open(&public, &AAD, old).map(|_| ()),
                Err(SessionRefusal::Unknown)
            );
        }
        // Junk and a wrong sender are refused.
        assert_eq!(
            keys.open(&public, &AAD, b"junk").map(|_| ()),
            Err(SessionRefusal::Failed)
        );
        let other = TransportKeyPair::generate(&mut Entropy.rng()).public_key_der();
        let fresh = seal(&keys.current_public());
        assert_eq!(
            keys.open(&other, &AAD, &fresh).map(|_| ()),
            Err(SessionRefusal::Failed)
        );
    }

    #[test]
    fn rotates_on_time() {
        // A period of zero: every use finds the current pair due.
        let keys = SessionKeys::new(1, Duration::ZERO);
        let first = keys.current_public();
        assert_ne!(keys.current_public(), first);
        // And a previous pair older than two periods is dropped.
        keys.rotate_if_due();
        assert!(keys.ring().previous.is_none());
        let long = SessionKeys::new(1, Duration::from_secs(3600));
        let kept = long.current_public();
        long.rotate_if_due();
        assert_eq!(long.current_public(), kept);
    }
}
