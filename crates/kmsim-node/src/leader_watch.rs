//! A follower's watch on its leader: an election called as soon as the leader is shown to be
//! gone, instead of when openraft's election timer happens to fire.
//!
//! openraft 0.9 starts an election on a follower once it has heard nothing from its leader for
//! the leader lease (`election_timeout_max_ms`) plus an election timeout drawn once per process
//! from `[min, max)`, checked on a tick of 1.5 heartbeats. Two followers that drew close
//! timeouts collide again on every retry, and the tick adds up to 150 ms; a failover took up to
//! 2.5 s. It has no pre-vote either, so an election called too early (a leader slow, not gone)
//! deposes a healthy leader.
//!
//! So each follower here watches the time since it last accepted an AppendEntries (the Raft
//! service tells it, [`LeaderContact`]). When that passes the lease plus a small margin, and a
//! stagger by its rank among the followers (so two followers do not stand at once), it asks the
//! leader's admin `Status` with a short deadline: the probe is the pre-vote. Only if the leader
//! does not answer (connection refused: killed; no answer in time: frozen or cut off) does it
//! call an election at once. A leader that answers is left alone, and openraft's own timer
//! remains the fallback for every case the watch does not decide (a leader that answers the
//! probe but cannot reach this follower).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;

use kmsim_store::Raft;

use crate::config::{RaftTiming, RegionConfig};
use crate::faults::FaultTable;
use crate::network::peer_status;
use crate::tls::Dialer;

/// How often the watch looks at the time since the leader was heard.
const POLL: Duration = Duration::from_millis(10);
/// Added to the lease before a follower calls an election, so the other voters' leases (their
/// last AppendEntries arrived a little after this one's) have run out when the request comes.
const MARGIN: Duration = Duration::from_millis(30);
/// Between the followers' turns, by rank: more than a probe refused and a vote round trip.
const STAGGER: Duration = Duration::from_millis(60);
/// Elections one silence of the leader may call (a refused vote calls the next one); after
/// that openraft's own timer goes on.
const MAX_CALLS: u32 = 3;

/// When this member last accepted an AppendEntries, and from which leader.
#[derive(Debug, Default)]
pub struct LeaderContact {
    last: Mutex<Option<(u64, Instant)>>,
}

impl LeaderContact {
    /// Records an AppendEntries from `leader` that this member accepted.
    pub fn heard(&self, leader: u64) {
        *self.lock() = Some((leader, Instant::now()));
    }

    fn last(&self) -> Option<(u64, Instant)> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, Instant)>> {
        // A plain value, always whole.
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How long after the leader's last AppendEntries the follower `me` probes it, given the
/// Region's members and the silent `leader`: the lease, the margin and `me`'s rank among the
/// other members.
fn due_after(timing: &RaftTiming, members: &[u64], me: u64, leader: u64) -> Duration {
    let rank = members
        .iter()
        .filter(|id| **id != leader && **id < me)
        .count() as u32;
    Duration::from_millis(timing.election_timeout_max_ms) + MARGIN + STAGGER * rank
}

/// What one member's watch works with.
pub struct LeaderWatch {
    /// This member's Raft.
    pub raft: Raft,
    /// Told by the Raft service of every AppendEntries accepted.
    pub contact: Arc<LeaderContact>,
    /// This member's id.
    pub me: u64,
    /// Its Region (members and their addresses).
    pub region: RegionConfig,
    /// The Region's Raft timings.
    pub timing: RaftTiming,
    /// How this member dials its peers.
    pub dialer: Dialer,
    /// The injected link faults, which the probe crosses like Raft's messages.
    pub faults: Arc<FaultTable>,
}

/// Watches the leader from this member until `stop`; see the module docs.
pub async fn run(this: LeaderWatch, mut stop: watch::Receiver<bool>) {
    let LeaderWatch {
        raft,
        contact,
        me,
        region,
        timing,
        dialer,
        faults,
    } = this;
    let members: Vec<u64> = region.nodes.iter().map(|n| n.id).collect();
    if members.len() < 2 {
        return;
    }
    let probe_timeout = Duration::from_millis(timing.heartbeat_ms * 2);
    // The silence (the last contact) the calls below were made for, and how many.
    let mut episode: Option<Instant> = None;
    let mut calls = 0u32;
    let mut next_call = Instant::now();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some((leader, heard)) = contact.last() else {
            continue;
        };
        let state = raft.metrics().borrow().state;
        if leader == me || !matches!(state, ServerState::Follower | ServerState::Candidate) {
            continue;
        }
        let silent = heard.elapsed();
        if silent < due_after(&timing, &members, me, leader) {
            continue;
        }
        if episode != Some(heard) {
            episode = Some(heard);
            calls = 0;
            next_call = Instant::now();
        }
        if calls >= MAX_CALLS || Instant::now() < next_call {
            continue;
        }
        let Some(addr) = region.node(leader).map(|n| n.advertise_addr()) else {
            continue;
        };
        // The probe crosses the same injected link faults as Raft's messages.
        let link = format!("{}/{leader}", region.name);
        let probe = async {
            faults.before_send(&link).await.is_ok()
                && peer_status(&dialer, &addr, probe_timeout).await.is_some()
        };
        // A delayed link counts against the same deadline as a slow answer.
        let answered = tokio::time::timeout(probe_timeout, probe)
            .await
            .unwrap_or(false);
        if answered {
            // The leader answers: slow or cut off from this member only; not for this watch.
            next_call = Instant::now() + probe_timeout;
            continue;
        }
        calls += 1;
        next_call = Instant::now() + Duration::from_millis(timing.election_timeout_min_ms);
        tracing::info!(
            leader,
            silent_ms = silent.as_millis() as u64,
            call = calls,
            "leader silent and not answering: calling an election"
        );
        if let Err(e) = raft.trigger().elect().await {
            tracing::warn!(error = %e, "could not call an election");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_take_turns_by_rank_after_the_lease() {
        let timing = RaftTiming::default();
        let lease = Duration::from_millis(timing.election_timeout_max_ms);
        let members = [1, 2, 3];
        // Leader 1: node 2 goes first, node 3 one stagger later.
        assert_eq!(due_after(&timing, &members, 2, 1), lease + MARGIN);
        assert_eq!(due_after(&timing, &members, 3, 1), lease + MARGIN + STAGGER);
        // Leader 2: node 1 first, node 3 next.
        assert_eq!(due_after(&timing, &members, 1, 2), lease + MARGIN);
        assert_eq!(due_after(&timing, &members, 3, 2), lease + MARGIN + STAGGER);
    }

    #[test]
    fn contact_is_the_latest_heard() {
        let c = LeaderContact::default();
        assert!(c.last().is_none());
        c.heard(1);
        let (id, first) = c.last().unwrap();
        assert_eq!(id, 1);
        c.heard(2);
        let (id, second) = c.last().unwrap();
        assert_eq!(id, 2);
        assert!(second >= first);
    }
}
