//! The deletion task: on the Region's leader, proposes the deletion of every key whose waiting
//! period has ended on the simulated clock. Followers run it too but stay idle.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tokio::sync::watch;

use kmsim_core::state::Command;

use crate::kms::KmsApi;

/// How often the task looks for expired keys.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// Runs until `shutdown` flips to true.
pub async fn run(api: Arc<KmsApi>, raft: kmsim_store::Raft, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if raft.metrics().borrow().state != ServerState::Leader {
            continue;
        }
        let now_ms = api.clock.now_ms();
        for key_id in api.read(|s| s.expired_keys(now_ms)) {
            tracing::info!(key_id = %key_id, "deleting key at the end of its waiting period");
            let cmd = Command::DeleteExpiredKey {
                key_id: key_id.clone(),
                now_ms,
            };
            match api.proposer.propose(&cmd).await {
                Ok(_) => api.materials.forget(&key_id),
                Err(e) => {
                    tracing::warn!(key_id = %key_id, error = %e, "key deletion not committed, will retry")
                }
            }
        }
    }
}
