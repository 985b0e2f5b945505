//! Joining the Region at start-up, and the vote a member must not cast after losing its data.
//!
//! A member whose store is empty is either new (the Region is being created) or one that lost
//! its data (a wiped or replaced disk). Raft's safety rests on two things such a member no
//! longer has: the vote it cast in the current term (without it, it could vote twice and two
//! leaders could win one term) and the entries it acknowledged (a leader counted them towards
//! a quorum; if this member now votes for a candidate that lacks them, committed entries are
//! lost). So a member that starts empty in a Region that already has a leader abstains from
//! elections until it has caught up: it learns the leader's commit index from the first
//! AppendEntries it receives and votes again once it has applied that far. Every entry it ever
//! acknowledged was at or below that index, so from then on its log holds them again.
//!
//! Left open: a member that starts empty while no peer knows a leader (the Region is in an
//! election, or every peer restarted too) cannot tell loss from creation and votes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use openraft::BasicNode;
use tokio::sync::watch;

use kmsim_store::Raft;

use crate::config::RegionConfig;
use crate::network::peer_status;
use crate::tls::Dialer;

/// How long a peer has to answer `Status` while joining.
const STATUS_TIMEOUT: Duration = Duration::from_millis(800);

/// Whether this member may vote, as far as its own history goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The store was not empty at start-up, or the Region was new: vote as Raft says.
    Voting,
    /// The store was empty at start-up; the peers have not yet said whether the Region exists.
    Deciding,
    /// The store was empty in a Region that has a leader: no vote until the applied index
    /// reaches `target`, the leader's commit index when it first reached this member (unknown
    /// until then).
    Abstaining { target: Option<u64> },
}

/// The election guard of one member, consulted by the Raft service before every vote.
#[derive(Debug)]
pub struct ElectionGuard {
    phase: Mutex<Phase>,
}

impl ElectionGuard {
    /// The guard of a member whose store was `empty` at start-up.
    pub fn new(empty: bool) -> ElectionGuard {
        ElectionGuard {
            phase: Mutex::new(if empty {
                Phase::Deciding
            } else {
                Phase::Voting
            }),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // The phase is a plain value, always whole: a panic elsewhere cannot leave it half set.
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records what the peers said about an empty member's Region: whether one of them knows a
    /// leader (the Region exists and this member lost its data).
    fn decided(&self, region_has_leader: bool) {
        let mut phase = self.phase();
        if *phase == Phase::Deciding {
            *phase = if region_has_leader {
                tracing::warn!(
                    "started with an empty store in a Region that has a leader: this member \
                     lost its data, and abstains from elections until it has caught up"
                );
                Phase::Abstaining { target: None }
            } else {
                Phase::Voting
            };
        }
    }

    /// Told the leader's commit index of every AppendEntries this member accepts. A member
    /// still deciding needs the peers no more: a leader reached it, so the Region exists, and
    /// it abstains until it has applied up to that leader's commit index (at once, in a Region
    /// being created). Without this, an empty member whose peers were slow to answer `Status`
    /// withheld its vote for as long, even with its log caught up.
    pub fn saw_leader_commit(&self, leader_commit: Option<u64>) {
        let mut phase = self.phase();
        if let Phase::Abstaining { target: None } | Phase::Deciding = *phase {
            let target = leader_commit.unwrap_or(0);
            tracing::info!(
                target,
                "abstaining from elections until applied up to the leader's commit index"
            );
            *phase = Phase::Abstaining {
                target: Some(target),
            };
        }
    }

    /// Whether this member, having applied up to `applied`, may answer a vote request; the
    /// reason when it may not.
    pub fn may_vote(&self, applied: Option<u64>) -> Result<(), String> {
        let mut phase = self.phase();
        match *phase {
            Phase::Voting => Ok(()),
            Phase::Deciding => Err(
                "started with an empty store and has not yet learned whether its Region exists"
                    .into(),
            ),
            Phase::Abstaining {
                target: Some(target),
            } if applied.is_some_and(|a| a >= target) => {
                tracing::info!(target, "caught up after losing its data: voting again");
                *phase = Phase::Voting;
                Ok(())
            }
            Phase::Abstaining { target } => Err(format!(
                "lost its data and abstains from elections until it has caught up (applied {}, \
                 target {})",
                applied.map_or_else(|| "nothing".to_string(), |a| a.to_string()),
                target.map_or_else(|| "not yet known".to_string(), |t| t.to_string())
            )),
        }
    }
}

/// Joins the Region at start-up, when this member's store is empty (`raft` not initialized):
/// asks the peers until a majority of the Region (this member included) answers, then
/// - if a peer knows a leader, the Region exists and this member lost its data: it abstains
///   (see [`ElectionGuard`]) and waits to be caught up;
/// - if a peer has a log, the Region is being created by another member: it votes and waits;
/// - otherwise, on the member with the lowest id, it initializes the Region's Raft group with
///   the topology's members.
///
/// A member that restarts (or lost its data) thus never re-initializes a Region that exists.
pub async fn join(
    raft: Raft,
    guard: std::sync::Arc<ElectionGuard>,
    me: u64,
    region: RegionConfig,
    dialer: Dialer,
    mut stop: watch::Receiver<bool>,
) {
    match raft.is_initialized().await {
        Ok(false) => {}
        Ok(true) | Err(_) => return guard.decided(false),
    }
    let initializer = region.nodes.iter().map(|n| n.id).min() == Some(me);
    loop {
        let mut answered = 1; // this member
        let mut has_log = false;
        let mut has_leader = false;
        for n in region.nodes.iter().filter(|n| n.id != me) {
            if let Some(st) = peer_status(&dialer, &n.advertise_addr(), STATUS_TIMEOUT).await {
                answered += 1;
                has_log |= st.last_log_index.is_some() || st.term > 0;
                has_leader |= st.leader_id.is_some();
            }
        }
        if answered * 2 > region.nodes.len() {
            guard.decided(has_leader);
            if has_log {
                tracing::info!(region = %region.name, "region already initialized by its members; waiting to be caught up");
            } else if initializer {
                initialize(&raft, &region).await;
            }
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn initialize(raft: &Raft, region: &RegionConfig) {
    let members: BTreeMap<u64, BasicNode> = region
        .nodes
        .iter()
        .map(|n| {
            (
                n.id,
                BasicNode {
                    addr: n.advertise_addr(),
                },
            )
        })
        .collect();
    match raft.initialize(members).await {
        Ok(()) => tracing::info!(region = %region.name, "initialized the region's raft group"),
        Err(e) => tracing::info!(region = %region.name, error = %e, "initialize skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_with_data_votes() {
        assert!(ElectionGuard::new(false).may_vote(None).is_ok());
    }

    #[test]
    fn an_empty_member_waits_for_the_peers_and_votes_in_a_new_region() {
        let g = ElectionGuard::new(true);
        assert!(g.may_vote(None).is_err());
        g.decided(false);
        assert!(g.may_vote(None).is_ok());
    }

    #[test]
    fn an_empty_member_of_a_led_region_votes_only_once_caught_up_to_the_first_commit_seen() {
        let g = ElectionGuard::new(true);
        g.decided(true);
        // Applied entries before any leader contact prove nothing.
        assert!(g.may_vote(Some(1_000)).is_err());
        g.saw_leader_commit(Some(80));
        // A later, higher commit index does not move the target.
        g.saw_leader_commit(Some(95));
        assert!(g.may_vote(Some(79)).is_err());
        assert!(g.may_vote(None).is_err());
        assert!(g.may_vote(Some(80)).is_ok());
        // Once voting, it stays voting.
        assert!(g.may_vote(None).is_ok());
    }

    #[test]
    fn a_leader_reaching_a_deciding_member_decides_for_it() {
        let g = ElectionGuard::new(true);
        g.saw_leader_commit(Some(7));
        assert!(g.may_vote(Some(6)).is_err());
        // The peers' answer, later, changes nothing.
        g.decided(false);
        assert!(g.may_vote(Some(6)).is_err());
        assert!(g.may_vote(Some(7)).is_ok());
    }

    #[test]
    fn a_decision_is_taken_once() {
        let g = ElectionGuard::new(true);
        g.decided(true);
        g.decided(false);
        assert!(g.may_vote(Some(5)).is_err());
    }
}
