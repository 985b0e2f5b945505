//! The lifecycle task: on the Region's leader, it proposes what the simulated clock makes due —
//! the deletion of keys whose waiting period has ended, automatic rotations, and the expiry of
//! imported key material at its `ValidTo`. Followers run it too but stay idle. Every command it
//! proposes is re-checked when applied (a no-op unless still due), so a stale view, a retry or
//! a second leader's proposal is harmless.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tokio::sync::watch;

use kmsim_core::key::RotationType;
use kmsim_core::state::Command;

use crate::kms::KmsApi;

/// How often the task looks for due work.
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
        // A state that cannot be read has no due work (the failure is logged where it happens).
        for key_id in api.read(|s| s.expired_keys(now_ms)).unwrap_or_default() {
            tracing::info!(key_id = %key_id, "deleting key at the end of its waiting period");
            let cmd = Command::DeleteExpiredKey { key_id, now_ms };
            // Every node evicts the key's material when it applies the deletion (`app.rs`).
            propose(&api, &cmd, "key deletion").await;
        }
        for (key_id, _) in api.read(|s| s.due_rotations(now_ms)).unwrap_or_default() {
            let Ok(Some(key)) = api.read(|s| s.key(&key_id)) else {
                continue;
            };
            tracing::info!(key_id = %key_id, "rotating key material (automatic rotation)");
            let (info, material) = api.new_symmetric_version(&key, now_ms);
            let cmd = Command::RotateKey {
                key_id,
                kind: RotationType::Automatic,
                info,
                material,
                now_ms,
            };
            propose(&api, &cmd, "automatic rotation").await;
        }
        for (key_id, material_id) in api.read(|s| s.expired_imports(now_ms)).unwrap_or_default() {
            tracing::info!(key_id = %key_id, "imported key material expired");
            let cmd = Command::DeleteImportedMaterial {
                key_id,
                material_id: Some(material_id),
                expired_at_ms: Some(now_ms),
            };
            propose(&api, &cmd, "material expiry").await;
        }
    }
}

/// Proposes one command; true when it was committed.
async fn propose(api: &KmsApi, cmd: &Command, what: &str) -> bool {
    match api.proposer.propose(cmd).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, what, "not committed, will retry");
            false
        }
    }
}
