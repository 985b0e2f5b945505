//! `kmsim experiment run`: runs an experiment ([`kmsim_experiment`]) on a cluster.
//!
//! - [`runtime`]: the interface to the cluster and nothing else, with [`ProcessRuntime`]
//!   (local processes) and [`DockerRuntime`] (containers, operated from the host);
//! - [`calls`]: the workload's calls and the keys and ciphertexts its clients share;
//! - [`live`]: what the run is doing now, for a progress display;
//! - [`runner`]: the phases of a run (setup, workload with faults and probes, heal and settle,
//!   observation) and the history it writes (through `sink`: a buffer a writer thread drains).

pub mod calls;
mod clients;
mod docker_runtime;
mod faults;
pub mod live;
mod observe;
mod retries;
pub mod runner;
pub mod runtime;
mod sink;

pub use docker_runtime::DockerRuntime;
pub use runner::{run, RunOptions, RunOutcome};
pub use runtime::{ProcessRuntime, Runtime};
