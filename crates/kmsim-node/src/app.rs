//! The bridge between the generic replicated state machine host (`kmsim-store`) and the
//! Region's KMS state (`kmsim-core`): decodes commands, applies them, reports the records to
//! persist, keeps the simulated clock in step with the applied state, and evicts from this
//! node's material cache every key an applied command takes material away from.

use std::collections::BTreeMap;
use std::sync::Arc;

use kmsim_core::ids::{KeyId, Scope};
use kmsim_core::key::RegionalMaterial;
use kmsim_core::state::{decode_command, encode_result, Command, KmsState, RecordChange};
use kmsim_store::{AppWrite, Application, Applied};

use crate::clock::SimClock;
use crate::material::MaterialCache;

/// The application state of one node: the Region's KMS state plus the clock it drives.
pub struct KmsApp {
    state: KmsState,
    clock: SimClock,
    /// Woken after every applied command: the synchronizer looks for new work at once
    /// instead of at its next pass.
    wake: std::sync::Arc<tokio::sync::Notify>,
    /// Index of the last applied log entry that carried a command (for status output).
    last_command_index: u64,
    /// This node's unwrapped material: evicted here, on every node, when applied commands
    /// delete material, whichever node proposed them.
    materials: Arc<MaterialCache>,
}

impl KmsApp {
    /// An empty Region state for `scope`, driving `clock`, whose audit log keeps
    /// `audit_retention` events, and which evicts deleted material from `materials`.
    pub fn new(
        scope: Scope,
        clock: SimClock,
        audit_retention: usize,
        materials: Arc<MaterialCache>,
    ) -> KmsApp {
        KmsApp {
            state: KmsState::new(scope).with_audit_retention(audit_retention),
            clock,
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            last_command_index: 0,
            materials,
        }
    }

    /// The notification every applied command triggers.
    pub fn wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// The KMS state, for reads.
    pub fn state(&self) -> &KmsState {
        &self.state
    }

    /// Index of the last applied command.
    pub fn last_command_index(&self) -> u64 {
        self.last_command_index
    }
}

impl Application for KmsApp {
    fn apply(&mut self, log_index: u64, payload: &[u8]) -> Applied {
        self.last_command_index = log_index;
        let (result, changes) = match decode_command(payload) {
            Ok(cmd) => {
                let touched = touched_key(&cmd);
                let before = touched.and_then(|id| self.state.key(id));
                let applied = self.state.apply(&cmd);
                if let (Some(id), Some(before)) = (touched, before) {
                    let after = self.state.key(id);
                    if material_lost(
                        &before.regional.materials,
                        after.as_ref().map(|k| &k.regional.materials),
                    ) {
                        self.materials.forget(id);
                    }
                }
                applied
            }
            Err(e) => (Err(e), Vec::new()),
        };
        self.clock.set_offset_ms(self.state.clock_offset_ms());
        self.wake.notify_one();
        let writes = changes
            .into_iter()
            .map(|c| match c {
                RecordChange::Put { key, value } => AppWrite::Put { key, value },
                RecordChange::Delete { key } => AppWrite::Delete { key },
            })
            .collect();
        Applied {
            response: encode_result(&result),
            writes,
        }
    }

    fn load(&mut self, records: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        // A whole new state (an installed snapshot) may lack material the cache holds.
        self.materials.clear();
        self.state.load(records)?;
        self.clock.set_offset_ms(self.state.clock_offset_ms());
        Ok(())
    }
}

/// The one key whose material a command may change, if any (inside `Audited` and
/// `Deduplicated` wrappers). Exhaustive on purpose: a new command must say whether it touches
/// a key's material.
fn touched_key(cmd: &Command) -> Option<&KeyId> {
    match cmd {
        Command::Audited { cmd, .. } | Command::Deduplicated { cmd, .. } => touched_key(cmd),
        Command::SetEnabled { key_id, .. }
        | Command::UpdateKeyDescription { key_id, .. }
        | Command::PutKeyPolicy { key_id, .. }
        | Command::TagResource { key_id, .. }
        | Command::UntagResource { key_id, .. }
        | Command::ScheduleKeyDeletion { key_id, .. }
        | Command::CancelKeyDeletion { key_id, .. }
        | Command::DeleteExpiredKey { key_id, .. }
        | Command::SetKeyRotation { key_id, .. }
        | Command::RotateKey { key_id, .. }
        | Command::PromotePendingMaterial { key_id, .. }
        | Command::ImportKeyMaterial { key_id, .. }
        | Command::DeleteImportedMaterial { key_id, .. }
        | Command::ReplicateKey { key_id, .. }
        | Command::ApplySync { key_id, .. }
        | Command::CreateReplica { key_id, .. }
        | Command::AbandonReplica { key_id, .. }
        | Command::SyncAcked { key_id, .. }
        | Command::ReplicaGone { key_id, .. }
        | Command::ApplyNotice { key_id, .. }
        | Command::PromoteRotation { key_id, .. }
        | Command::BeginHandover { key_id, .. }
        | Command::EndHandover { key_id, .. } => Some(key_id),
        // A new key has nothing cached; the others change no key's material.
        Command::CreateKey { .. }
        | Command::CreateAlias { .. }
        | Command::UpdateAlias { .. }
        | Command::DeleteAlias { .. }
        | Command::SetClockOffset { .. }
        | Command::CreateGrant { .. }
        | Command::DeleteGrant { .. }
        | Command::NoticeDone { .. }
        | Command::NoticeRetarget { .. } => None,
    }
}

/// True when a key's material versions lost some: the key is gone (`after` is `None`), or a
/// version it had is gone or holds other material (a version added leaves what is cached valid).
fn material_lost(
    before: &BTreeMap<u32, RegionalMaterial>,
    after: Option<&BTreeMap<u32, RegionalMaterial>>,
) -> bool {
    let Some(after) = after else {
        return true;
    };
    before.iter().any(|(v, m)| after.get(v) != Some(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(of: &[(u32, u8)]) -> BTreeMap<u32, RegionalMaterial> {
        of.iter()
            .map(|(v, b)| {
                let m = RegionalMaterial {
                    wrapped: vec![*b; 61],
                    import: None,
                };
                (*v, m)
            })
            .collect()
    }

    #[test]
    fn material_is_lost_when_the_key_or_a_version_goes_or_changes_not_when_one_is_added() {
        let one = versions(&[(1, 7)]);
        assert!(material_lost(&one, None), "key deleted");
        assert!(material_lost(&one, Some(&versions(&[]))), "version deleted");
        assert!(
            material_lost(&one, Some(&versions(&[(1, 8)]))),
            "version replaced"
        );
        assert!(!material_lost(&one, Some(&one)), "unchanged");
        assert!(
            !material_lost(&one, Some(&versions(&[(1, 7), (2, 9)]))),
            "a rotation adds a version"
        );
    }
}
