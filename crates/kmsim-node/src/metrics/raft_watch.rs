//! The task that keeps a node's Raft gauges in step with openraft's metrics channel, and counts
//! the leader changes it sees.

use openraft::ServerState;
use tokio::sync::watch;

use kmsim_store::Raft;

use super::{RaftMetrics, RaftView};

/// What `m` says, as [`RaftMetrics::observe`] reads it.
pub fn view_of(m: &openraft::RaftMetrics<u64, openraft::BasicNode>) -> RaftView {
    RaftView {
        leader: m.current_leader,
        is_leader: m.state == ServerState::Leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied_index: m.last_applied.map(|l| l.index),
    }
}

/// Follows `raft`'s metrics into `metrics` until `stop` turns true (or Raft stops). A change
/// the channel skips (two in a row between two wake-ups) is not seen; each one it shows is.
pub async fn follow(raft: Raft, metrics: RaftMetrics, mut stop: watch::Receiver<bool>) {
    let mut channel = raft.metrics();
    let mut before = RaftView::default();
    loop {
        let now = view_of(&channel.borrow_and_update());
        metrics.observe(&before, &now);
        before = now;
        tokio::select! {
            changed = channel.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
