//! The bridge between the generic replicated state machine host (`kmsim-store`) and the
//! Region's KMS state (`kmsim-core`): decodes commands, applies them, reports the records to
//! persist, keeps the simulated clock, the run-time quotas and IAM in step with the applied
//! state, and evicts from this node's material cache every key an applied command takes
//! material away from.

use std::collections::BTreeMap;
use std::sync::Arc;

use kmsim_core::ids::Scope;
use kmsim_core::key::RegionalMaterial;
use kmsim_core::state::{
    decode_command, encode_result, KmsState, Record, RecordChange, RecordSource,
};
use kmsim_store::{AppRecords, AppWrite, Application, Applied};

use crate::config::Topology;

use crate::clock::SimClock;
use crate::iam::Iam;
use crate::material::MaterialCache;
use crate::quotas::Quotas;

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
    /// This node's request quotas: the Region's run-time rates go there when applied.
    quotas: Arc<Quotas>,
    /// The IAM this node's requests are authorized and authenticated with: the version the
    /// state holds goes there when applied.
    iam: Arc<Iam>,
}

impl KmsApp {
    /// A Region state for `scope` (empty until the store opens it over its records),
    /// driving `clock`, sized by `topology` (audit retention, key cache), which evicts
    /// deleted material from `materials`, puts the Region's run-time rates in `quotas` and
    /// its IAM version in `iam`.
    pub fn new(
        scope: Scope,
        clock: SimClock,
        topology: &Topology,
        materials: Arc<MaterialCache>,
        quotas: Arc<Quotas>,
        iam: Arc<Iam>,
    ) -> KmsApp {
        KmsApp {
            state: KmsState::new(scope)
                .with_audit_retention(topology.audit.region_retention_events)
                .with_key_cache(topology.caches.key_records)
                .with_resource_quotas(topology.quotas.resources.to_state()),
            clock,
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            last_command_index: 0,
            materials,
            quotas,
            iam,
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
    fn open(&mut self, records: AppRecords) -> Result<Vec<AppWrite>, String> {
        // A whole new state (an installed snapshot) may lack material the cache holds.
        self.materials.clear();
        let upgrade = self.state.open(Arc::new(StoreRecords(records)))?;
        self.clock.set_offset_ms(self.state.clock_offset_ms());
        self.quotas.apply_throttles(self.state.throttles());
        self.iam.install(self.state.iam());
        Ok(upgrade.into_iter().map(app_write).collect())
    }

    fn persisted(&mut self) {
        self.state.persisted();
    }

    fn apply(&mut self, log_index: u64, payload: &[u8]) -> Result<Applied, String> {
        self.last_command_index = log_index;
        let (result, changes) = match decode_command(payload) {
            Ok(cmd) => {
                // The key the command is about (`Command::key_id`, exhaustive): its material
                // before and after tells whether this node's cache must let go of it.
                let touched = cmd.key_id();
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
        if let Some(fault) = self.state.storage_fault() {
            return Err(format!("the Region state could not be read: {fault}"));
        }
        self.clock.set_offset_ms(self.state.clock_offset_ms());
        self.quotas.apply_throttles(self.state.throttles());
        self.iam.install(self.state.iam());
        self.wake.notify_one();
        Ok(Applied {
            response: encode_result(&result),
            writes: changes.into_iter().map(app_write).collect(),
        })
    }
}

fn app_write(change: RecordChange) -> AppWrite {
    match change {
        RecordChange::Put { key, value } => AppWrite::Put { key, value },
        RecordChange::Delete { key } => AppWrite::Delete { key },
    }
}

/// The store's application records, as the Region state reads them.
struct StoreRecords(AppRecords);

impl RecordSource for StoreRecords {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(|e| e.to_string())
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Record>, String> {
        self.0.scan(from, to, limit).map_err(|e| e.to_string())
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
