//! [`StoreObserver`]: how long the state machine's work takes, told to whoever measures it
//! (the node's metrics), without this crate depending on a metrics library.

use std::time::Duration;

/// What a snapshot's time was spent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Built from this member's own state (openraft asked for it).
    Build,
    /// Received from the leader and installed.
    Install,
}

/// Told about the state machine's work as it is done. Called on the apply path, under the
/// application's lock: an implementation must be quick and must not block.
pub trait StoreObserver: Send + Sync + 'static {
    /// One call of the state machine's apply: `entries` committed entries applied and their
    /// records written in one engine batch, in `took`.
    fn applied(&self, entries: usize, took: Duration);

    /// A snapshot built or installed (whether it succeeded or not) in `took`.
    fn snapshot(&self, kind: SnapshotKind, took: Duration);
}
