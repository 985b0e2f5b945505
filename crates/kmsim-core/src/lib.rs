//! Domain types and rules of kmsim, with no I/O: identifiers and ARNs, key specs, usages and
//! states, the key-state × operation table, key policies and tags checks, the replicated
//! [`Command`](state::Command) and its deterministic apply, and [`KmsError`] with the AWS codes.
//!
//! Modules: [`ids`], [`iam`] (the replicated IAM document), [`key`], [`key_state`], [`grant`], [`policy`], [`tags`], [`state`], [`sync`] (messages between
//! Regions), [`error`].
//! This crate must not depend on any other kmsim crate, on tokio, or on storage.

pub mod audit;
pub mod error;
pub mod grant;
pub mod iam;
pub mod ids;
pub mod key;
pub mod key_state;
pub mod policy;
pub mod state;
pub mod sync;
pub mod tags;

pub use error::KmsError;
