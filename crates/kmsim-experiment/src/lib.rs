//! kmsim experiments (`kmsim experiment run`, `docs/EXPERIMENTS.md`): what a run is, apart
//! from any cluster.
//!
//! - [`spec`]: the experiment file, read and validated;
//! - [`links`]: link presets (`aws-like`, from published inter-Region round-trip times);
//! - [`schedule`]: the fault schedule, expanded with the run's seed;
//! - [`history`]: the recorded history (`history.jsonl`);
//! - [`check`]: the checkers, which read only the history;
//! - [`report`]: `results.json` and `report.html`.
//!
//! The runner that drives a cluster (processes or containers) lives in `kmsim-sim`; nothing
//! here knows which runtime a history came from.

pub mod check;
pub mod history;
pub mod links;
pub mod report;
pub mod schedule;
pub mod spec;
pub mod units;

pub use spec::{Experiment, SpecError};
