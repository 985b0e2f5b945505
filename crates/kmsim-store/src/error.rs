//! [`StoreError`]: failures of the engine, the codec or the stored data itself.

use openraft::AnyError;
use openraft::ErrorSubject;
use openraft::ErrorVerb;
use openraft::StorageIOError;

use crate::types::NodeId;
use crate::types::StorageError;

/// A storage failure. Every one of them is fatal to the Raft member that sees it: openraft
/// shuts the member down when a storage method returns an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key-value engine failed (I/O error, corruption detected by the engine, …).
    #[error("storage engine failed: {source}")]
    Engine {
        /// The engine's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A value could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// Which kind of value (`log entry`, `vote`, …).
        what: &'static str,
        /// The codec's error.
        #[source]
        source: postcard::Error,
    },

    /// A stored value could not be decoded: the data is corrupt or was written by another format.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// Which kind of value (`log entry`, `vote`, …).
        what: &'static str,
        /// The codec's error.
        #[source]
        source: postcard::Error,
    },

    /// Stored data violates an invariant of this crate.
    #[error("corrupt store: {reason}")]
    Corrupt {
        /// What is wrong.
        reason: String,
    },

    /// Reading or writing a snapshot's data failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error (it wraps the store's own error where the store failed).
        #[source]
        source: std::io::Error,
    },

    /// A blocking task of the store (a snapshot build) panicked or was cancelled.
    #[error("{what} failed: {source}")]
    Task {
        /// Which task.
        what: &'static str,
        /// Why it ended.
        #[source]
        source: tokio::task::JoinError,
    },

    /// A thread panicked while holding a lock on the application or the in-memory engine, so the
    /// state behind it may be half-updated.
    #[error("lock poisoned: {what}")]
    Poisoned {
        /// Which lock.
        what: &'static str,
    },
}

impl StoreError {
    /// Wraps an engine error (used by engine implementations such as `RocksKvEngine`).
    pub fn engine(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Engine {
            source: Box::new(source),
        }
    }

    /// Builds a [`StoreError::Corrupt`].
    pub fn corrupt(reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            reason: reason.into(),
        }
    }

    /// Converts into openraft's storage error, naming what was being done to which subject.
    pub fn into_storage_error(
        self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
    ) -> StorageError {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}
