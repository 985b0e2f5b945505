//! The bridge between the generic replicated state machine host (`kmsim-store`) and the
//! Region's KMS state (`kmsim-core`): decodes commands, applies them, reports the records to
//! persist, and keeps the simulated clock in step with the applied state.

use kmsim_core::ids::Scope;
use kmsim_core::state::{decode_command, encode_result, KmsState, RecordChange};
use kmsim_store::{AppWrite, Application, Applied};

use crate::clock::SimClock;

/// The application state of one node: the Region's KMS state plus the clock it drives.
pub struct KmsApp {
    state: KmsState,
    clock: SimClock,
    /// Woken after every applied command: the synchronizer looks for new work at once
    /// instead of at its next pass.
    wake: std::sync::Arc<tokio::sync::Notify>,
    /// Index of the last applied log entry that carried a command (for status output).
    last_command_index: u64,
}

impl KmsApp {
    /// An empty Region state for `scope`, driving `clock`, whose audit log keeps
    /// `audit_retention` events.
    pub fn new(scope: Scope, clock: SimClock, audit_retention: usize) -> KmsApp {
        KmsApp {
            state: KmsState::new(scope).with_audit_retention(audit_retention),
            clock,
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            last_command_index: 0,
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
            Ok(cmd) => self.state.apply(&cmd),
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
        self.state.load(records)?;
        self.clock.set_offset_ms(self.state.clock_offset_ms());
        Ok(())
    }
}
