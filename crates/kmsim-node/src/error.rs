//! Why a node could not start, or stopped with an error (its own module so that the parts
//! `node.rs` wires together can report start-up errors without depending on `node.rs`).

use crate::key_files::KeyFileError;

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The topology does not name this node, or is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// A key file (domain or transport key) could not be read.
    #[error("{0}")]
    KeyFile(#[from] KeyFileError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(String),
    /// Raft failed fatally.
    #[error("raft: {0}")]
    Raft(String),
    /// The listener could not be bound or the server failed.
    #[error("server: {0}")]
    Server(String),
}
