//! `kmsim top`: a live view of a cluster, every Region and node, refreshed from the nodes' admin
//! `Status` and `GetLinkFaults` and from the `GET /metrics` of every node and of the gateway
//! (docs/OBSERVABILITY.md, "`kmsim top`").
//!
//! Three layers, so that everything but the asking is tested without a cluster:
//! - [`sampler`]: the I/O. One round asks every node and the gateway at once, each with a
//!   deadline, and returns a [`ClusterSample`] (plain data, [`sample`]).
//! - [`model`]: a [`Model`] from the two latest samples: roles, terms, applied indexes, request
//!   and error rates and p99 latencies over the interval between them ([`histogram`] turns
//!   counter and bucket increases into rates and quantiles), the synchronizer's backlog and lag
//!   per Region pair, the injected faults ([`faults`] groups them).
//! - [`render`](mod@render): draws a model with ratatui widgets into any frame: the terminal of
//!   `kmsim top`, a test backend, or the plain text of `kmsim top --once`.
//!
//! The binary owns the terminal (raw mode, alternate screen, keys); this module never touches it.

pub mod faults;
pub mod histogram;
pub mod model;
pub mod render;
pub mod sample;
pub mod sampler;

pub use model::Model;
pub use render::{render, render_text};
pub use sample::ClusterSample;
pub use sampler::Sampler;
