//! The checkers: each reads the run's history (and the experiment and its schedule) and gives
//! a [`Verdict`]. They never talk to a cluster, so a history can be checked again later
//! (`kmsim experiment check DIR`) and every checker can be tested on a forged history.

use serde::{Deserialize, Serialize};

use crate::history::Record;
use crate::schedule::Schedule;
use crate::spec::Experiment;

/// What a checker reads.
pub struct Input<'a> {
    /// The experiment as run.
    pub experiment: &'a Experiment,
    /// Its fault schedule.
    pub schedule: &'a Schedule,
    /// Every record of `history.jsonl`, in file order.
    pub records: &'a [Record],
}

/// A checker's conclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The property holds on this history.
    Pass,
    /// The property is violated; `ops` shows where.
    Fail,
    /// The checker could not decide (e.g. out of its time budget); not a failure.
    Unknown,
}

/// One checker's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The checker's name (`decrypt-everywhere`).
    pub checker: String,
    /// Its conclusion.
    pub status: Status,
    /// One line: what was checked and what was found.
    pub summary: String,
    /// The operations involved in a failure (ids into the history), at most 20.
    #[serde(default)]
    pub ops: Vec<u64>,
}
