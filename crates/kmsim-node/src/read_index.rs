//! Read indexes for reads that must not be stale, shared between concurrent callers.
//!
//! A read index costs a quorum round on the leader (and an RPC to it from a follower), so one
//! per read would cap management reads at a few thousand per second. Callers share rounds
//! instead, without giving up what a read index guarantees: a round answers only the callers
//! that arrived *before it started*, so its index covers every write acknowledged before each
//! of them arrived. At most one round runs at a time; callers that arrive while one runs wait
//! for the next, which starts as soon as the current one ends and serves all of them at once.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use kmsim_core::KmsError;

use crate::proposer::Proposer;

/// Shares read-index rounds between concurrent callers on one node.
pub struct ReadIndex {
    proposer: Arc<Proposer>,
    rounds: Mutex<Rounds>,
    /// The last round that ended and its index (or why it failed).
    ended: watch::Sender<Ended>,
}

/// Which rounds have started, and whether callers wait for one not started yet.
struct Rounds {
    started: u64,
    running: bool,
    wanted: bool,
}

#[derive(Clone)]
struct Ended {
    round: u64,
    index: Result<u64, KmsError>,
}

impl ReadIndex {
    /// Read indexes through `proposer` (which asks the leader).
    pub fn new(proposer: Arc<Proposer>) -> Arc<ReadIndex> {
        Arc::new(ReadIndex {
            proposer,
            rounds: Mutex::new(Rounds {
                started: 0,
                running: false,
                wanted: false,
            }),
            ended: watch::Sender::new(Ended {
                round: 0,
                index: Ok(0),
            }),
        })
    }

    /// Waits until this node has applied every write its Region acknowledged before the call.
    pub async fn barrier(self: &Arc<Self>) -> Result<(), KmsError> {
        let mut ended = self.ended.subscribe();
        let mine = {
            let mut r = self.rounds.lock().expect("invariant: lock not poisoned");
            if r.running {
                // The running round may have started before us: wait for the next one.
                r.wanted = true;
                r.started + 1
            } else {
                r.running = true;
                r.started += 1;
                self.clone().run_rounds();
                r.started
            }
        };
        let index = ended
            .wait_for(|e| e.round >= mine)
            .await
            .map_err(|_| KmsError::Internal("the read index task stopped".into()))?
            .index
            .clone()?;
        self.proposer.wait_applied(index).await
    }

    /// Runs rounds until no caller waits for another.
    fn run_rounds(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                let index = self.proposer.read_index(0).await;
                let mut r = self.rounds.lock().expect("invariant: lock not poisoned");
                self.ended.send_replace(Ended {
                    round: r.started,
                    index,
                });
                if !r.wanted {
                    r.running = false;
                    return;
                }
                r.wanted = false;
                r.started += 1;
            }
        });
    }
}
