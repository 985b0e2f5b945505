//! [`Application`]: the deterministic state machine the store hosts.

/// What applying one command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Returned to the proposer as `RaftResponse::payload`.
    pub response: Vec<u8>,
    /// Records to persist, in the application's own keyspace; written in the same atomic
    /// batch as the new applied log id.
    pub writes: Vec<AppWrite>,
}

/// One change to the application's persisted records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppWrite {
    /// Sets record `key` to `value`.
    Put {
        /// Key in the application's keyspace.
        key: Vec<u8>,
        /// The record.
        value: Vec<u8>,
    },
    /// Removes record `key`.
    Delete {
        /// Key in the application's keyspace.
        key: Vec<u8>,
    },
}

/// A deterministic state machine whose state is a set of records.
///
/// The in-memory state must always equal what [`load`](Self::load) would build from the
/// records the store persisted: `apply` updates memory and reports the matching record writes.
pub trait Application: Send + Sync + 'static {
    /// Applies one committed command. Must be deterministic: no clock, no randomness.
    fn apply(&mut self, log_index: u64, payload: &[u8]) -> Applied;

    /// Replaces the whole in-memory state with these persisted records (ascending key order): on start and after a snapshot install.
    ///
    /// A record the application cannot read is an error (the data dir is corrupt or from an
    /// incompatible version); the store reports it as a storage failure instead of serving a
    /// partial state.
    fn load(&mut self, records: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), String>;
}
