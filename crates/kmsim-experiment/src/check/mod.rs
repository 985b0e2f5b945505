//! The checkers: each reads the run's history (and the experiment and its schedule) and gives
//! a [`Verdict`]. They never talk to a cluster, so a history can be checked again later
//! (`kmsim experiment check DIR`) and every checker can be tested on a forged history.
//!
//! [`run_all`] runs them in a fixed order:
//!
//! - [`decrypt_everywhere`]: every acknowledged ciphertext decrypts to its plaintext in every
//!   Region that holds a related key;
//! - [`no_lost_writes`]: no acknowledged management write is lost;
//! - [`single_primary`]: never two PRIMARY keys of one multi-Region set;
//! - [`convergence`]: shared properties agree in every Region within the stated bound;
//! - [`linearizable_keys`]: each key's management history is linearizable (bounded search);
//! - [`availability`]: each Region's success rates against the experiment's rules.
//!
//! `Outcome::Unknown` calls are never counted as lost nor as done; `Failed` calls did not
//! happen. `docs/EXPERIMENTS.md` (section "Checkers") describes each checker and its limits.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::history::{Call, Edge, KeyView, Micros, Observation, Op, Outcome, Phase, Record};
use crate::schedule::Schedule;
use crate::spec::Experiment;

mod availability;
mod convergence;
mod decrypt;
mod linear;
mod primary;
mod writes;

#[cfg(test)]
mod forge;
#[cfg(test)]
mod handover;

pub use availability::availability;
pub use convergence::{convergence, disagreement};
pub use decrypt::decrypt_everywhere;
pub use linear::{linearizable_keys, linearizable_keys_with_budget, DEFAULT_STEP_BUDGET};
pub use primary::single_primary;
pub use writes::no_lost_writes;

/// The most operation ids a verdict lists.
pub const MAX_OPS: usize = 20;

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

impl Verdict {
    /// A verdict; `ops` is sorted, deduplicated and cut to [`MAX_OPS`].
    pub fn new(
        checker: &str,
        status: Status,
        summary: impl Into<String>,
        mut ops: Vec<u64>,
    ) -> Verdict {
        ops.sort_unstable();
        ops.dedup();
        ops.truncate(MAX_OPS);
        Verdict {
            checker: checker.to_string(),
            status,
            summary: summary.into(),
            ops,
        }
    }
}

/// Runs every checker, in the order of the module's documentation.
pub fn run_all(input: &Input) -> Vec<Verdict> {
    vec![
        decrypt_everywhere(input),
        no_lost_writes(input),
        single_primary(input),
        convergence(input),
        linearizable_keys(input),
        availability(input),
    ]
}

/// Whether no verdict failed (`Unknown` is not a failure): a run whose checkers did not all
/// pass this exits non-zero.
pub fn all_passed(verdicts: &[Verdict]) -> bool {
    verdicts.iter().all(|v| v.status != Status::Fail)
}

/// The Region and key ID of a key ARN (`arn:aws:kms:<region>:<account>:key/<key_id>`), or
/// `None` when `arn` is not a key ARN.
pub fn parse_key_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    let key_id = resource.strip_prefix("key/")?;
    if arn_ != "arn" || service != "kms" || region.is_empty() || key_id.is_empty() {
        return None;
    }
    Some((region, key_id))
}

/// Whether a key ID names a multi-Region key.
pub fn is_multi_region(key_id: &str) -> bool {
    key_id.starts_with("mrk-")
}

/// Whether a key state is one of the deletion states.
pub fn is_pending_deletion(state: &str) -> bool {
    state == "PendingDeletion" || state == "PendingReplicaDeletion"
}

/// The Region and key ID an operation acted on: for CreateKey the key of its reply, for
/// Encrypt the reply's key when given, else the key of the request. A key named by a bare key
/// ID is taken to be in the Region called.
pub fn key_of(op: &Op) -> Option<(&str, &str)> {
    let reply_key = match &op.outcome {
        Outcome::Ok { reply } => reply.key.as_deref(),
        _ => None,
    };
    let named = match &op.call {
        Call::CreateKey { .. } => reply_key?,
        Call::Encrypt { key, .. } => reply_key.unwrap_or(key),
        Call::Decrypt { key, .. }
        | Call::GenerateDataKey { key }
        | Call::Sign { key, .. }
        | Call::GenerateMac { key, .. }
        | Call::ReEncrypt { key, .. }
        | Call::ReplicateKey { key, .. }
        | Call::RotateKeyOnDemand { key }
        | Call::CreateAlias { key, .. }
        | Call::UpdatePrimaryRegion { key, .. }
        | Call::ScheduleKeyDeletion { key, .. }
        | Call::DescribeKey { key } => key,
    };
    match parse_key_arn(named) {
        Some(rk) => Some(rk),
        None if !named.is_empty() && !named.starts_with("alias/") => {
            Some((op.region.as_str(), named))
        }
        None => None,
    }
}

/// A Region's last answer about a key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyObs<'a> {
    pub at: Micros,
    pub view: Option<&'a KeyView>,
}

/// Each fault occurrence that took effect, with its window (absolute, in the history's
/// clock): from the recorded fault events when there are any (a fault that failed to apply is
/// left out, one never ended lasts to the heal), else from the schedule, placed at the
/// workload's start. `None` when neither can be placed.
pub(crate) fn occurrence_windows(input: &Input, f: &Facts) -> Option<Vec<(usize, Micros, Micros)>> {
    let heal = f.phases.get(&Phase::Heal).copied().unwrap_or(Micros::MAX);
    let mut starts: HashMap<usize, Micros> = HashMap::new();
    let mut w: Vec<(usize, Micros, Micros)> = Vec::new();
    let mut recorded = false;
    for r in input.records {
        let Record::Fault(e) = r else { continue };
        recorded = true;
        if e.error.is_some() {
            continue;
        }
        match e.edge {
            Edge::Start => {
                starts.insert(e.occurrence, e.at);
            }
            Edge::End => {
                if let Some(s) = starts.remove(&e.occurrence) {
                    w.push((e.occurrence, s, e.at));
                }
            }
        }
    }
    if recorded {
        w.extend(starts.into_iter().map(|(i, s)| (i, s, heal)));
    } else {
        let base = f.phases.get(&Phase::Workload).copied()?;
        let us = |d: std::time::Duration| base.saturating_add(d.as_micros() as Micros);
        let duration = input.schedule.duration;
        w = input
            .schedule
            .occurrences
            .iter()
            .enumerate()
            .map(|(i, o)| (i, us(o.start), us(o.end.unwrap_or(duration))))
            .collect();
    }
    w.sort_unstable_by_key(|(i, s, _)| (*s, *i));
    Some(w)
}

/// How long after its start edge a Region-wide node hook (a clock skew) may take effect: the
/// runner sets it node by node through the admin API.
const APPLY_SLACK: Micros = 2_000_000;

/// How far the faults moved `region`'s clock ahead after `since` (history clock), in ms, at
/// most: a clock jump that started then by its amount, a skew that started then by its
/// largest value, a skew already active then by what its drift added afterwards. A key
/// scheduled for deletion at `since` with a window shorter than this may be gone from the
/// Region when it is observed: its clock, not a fault of the system, deleted it.
pub(crate) fn clock_advance_after(input: &Input, f: &Facts, region: &str, since: Micros) -> i64 {
    let Some(windows) = occurrence_windows(input, f) else {
        return 0;
    };
    let span = |a: Micros, b: Micros| std::time::Duration::from_micros(b.saturating_sub(a));
    windows
        .into_iter()
        .filter_map(|(i, s, e)| {
            let act = &input.schedule.occurrences.get(i)?.act;
            // A fault never ended lasts to the observation: count its drift to the heal only.
            let e = e.min(f.phases.get(&Phase::Heal).copied().unwrap_or(e));
            // When the fault took effect is known only within bounds: after its start edge (when
            // the runner began applying it), before a jump's end edge (recorded once applied),
            // and, for a skew, within APPLY_SLACK of its start (the time to reach every node).
            let may_follow = s >= since
                || (act.is_instant() && e >= since)
                || since.saturating_sub(s) < APPLY_SLACK;
            Some(if may_follow {
                act.clock_advance_ms(region, span(s, e))
            } else if e > since {
                act.clock_advance_ms(region, span(s, e))
                    - act.clock_advance_ms(region, span(s, since))
            } else {
                0
            })
        })
        .sum()
}

/// A Region's last Decrypt observation of a ciphertext.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DecryptObs<'a> {
    pub plaintext: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// The history, indexed once for the checkers. When a Region was observed more than once
/// about the same thing, the last record in file order counts.
pub(crate) struct Facts<'a> {
    pub ops: Vec<&'a Op>,
    pub phases: HashMap<Phase, Micros>,
    /// (key ID, Region) → the last observation.
    pub keys: BTreeMap<(&'a str, &'a str), KeyObs<'a>>,
    /// (Encrypt op id, Region) → the last observation.
    pub decrypts: HashMap<(u64, &'a str), DecryptObs<'a>>,
    /// (Sign or GenerateMac op id, Region) → the last observation's error (`None`: verified).
    pub verifies: HashMap<(u64, &'a str), Option<&'a str>>,
}

impl<'a> Facts<'a> {
    pub fn new(records: &'a [Record]) -> Facts<'a> {
        let mut f = Facts {
            ops: Vec::new(),
            phases: HashMap::new(),
            keys: BTreeMap::new(),
            decrypts: HashMap::new(),
            verifies: HashMap::new(),
        };
        for r in records {
            match r {
                Record::Phase { phase, at } => {
                    f.phases.entry(*phase).or_insert(*at);
                }
                Record::Op(op) => f.ops.push(op),
                Record::Observation(Observation::Key {
                    region,
                    key_id,
                    at,
                    view,
                }) => {
                    let obs = KeyObs {
                        at: *at,
                        view: view.as_ref(),
                    };
                    f.keys.insert((key_id.as_str(), region.as_str()), obs);
                }
                Record::Observation(Observation::Decrypt {
                    region,
                    of,
                    plaintext,
                    error,
                }) => {
                    let obs = DecryptObs {
                        plaintext: plaintext.as_deref(),
                        error: error.as_deref(),
                    };
                    f.decrypts.insert((*of, region.as_str()), obs);
                }
                Record::Observation(Observation::Verify { region, of, error }) => {
                    f.verifies.insert((*of, region.as_str()), error.as_deref());
                }
                Record::Fault(_) | Record::Breach { .. } => {}
            }
        }
        f
    }

    /// What `region` last said about `key_id`, if it was asked.
    pub fn key(&self, key_id: &str, region: &str) -> Option<KeyObs<'a>> {
        self.keys.get(&(key_id, region)).copied()
    }

    /// The view of `key_id` in `region`, when the Region was asked and holds it.
    pub fn view(&self, key_id: &str, region: &str) -> Option<&'a KeyView> {
        self.key(key_id, region).and_then(|o| o.view)
    }

    /// Every observation of `key_id`, by Region.
    pub fn observations(
        &self,
        key_id: &'a str,
    ) -> impl Iterator<Item = (&'a str, KeyObs<'a>)> + '_ {
        self.keys
            .range((key_id, "")..)
            .take_while(move |((k, _), _)| *k == key_id)
            .map(|((_, r), o)| (*r, *o))
    }

    /// Every observed key ID, once.
    /// Every multi-Region key that some Region holds in its last observation, with the Regions
    /// holding it and what each shows (the per-set view the primary and convergence checkers
    /// judge).
    pub fn held_sets(&self) -> Vec<(&'a str, Vec<(&'a str, &'a KeyView)>)> {
        self.key_ids()
            .into_iter()
            .filter(|k| is_multi_region(k))
            .filter_map(|k| {
                let held: Vec<(&'a str, &'a KeyView)> = self
                    .observations(k)
                    .filter_map(|(r, o)| o.view.map(|v| (r, v)))
                    .collect();
                (!held.is_empty()).then_some((k, held))
            })
            .collect()
    }

    pub fn key_ids(&self) -> Vec<&'a str> {
        let mut ids: Vec<&'a str> = self.keys.keys().map(|(k, _)| *k).collect();
        ids.dedup();
        ids
    }
}

/// `1204` → `1,204`.
pub(crate) fn count(n: usize) -> String {
    let s = n.to_string();
    let first = match s.len() % 3 {
        0 => 3.min(s.len()),
        r => r,
    };
    let mut out = s[..first].to_string();
    let mut i = first;
    while i < s.len() {
        out.push(',');
        out.push_str(&s[i..i + 3]);
        i += 3;
    }
    out
}

/// `n` followed by `word`, with an `s` unless `n` is 1 (`1 key`, `3 keys`).
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{} {word}s", count(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_arns_give_their_region_and_key_id() {
        assert_eq!(
            parse_key_arn("arn:aws:kms:eu-west-1:111122223333:key/mrk-1"),
            Some(("eu-west-1", "mrk-1"))
        );
        assert_eq!(
            parse_key_arn("arn:aws-cn:kms:cn-north-1:1:key/abc"),
            Some(("cn-north-1", "abc"))
        );
        assert_eq!(parse_key_arn("arn:aws:kms:eu-west-1:1:alias/x"), None);
        assert_eq!(parse_key_arn("arn:aws:s3:eu-west-1:1:key/x"), None);
        assert_eq!(parse_key_arn("mrk-1"), None);
        assert_eq!(parse_key_arn("arn:aws:kms::1:key/x"), None);
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1204), "1,204");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(plural(1, "key"), "1 key");
        assert_eq!(plural(2000, "key"), "2,000 keys");
    }

    #[test]
    fn verdicts_list_at_most_twenty_sorted_ops() {
        let v = Verdict::new("x", Status::Fail, "s", (0..50).rev().chain(0..5).collect());
        assert_eq!(v.ops, (0..20).collect::<Vec<u64>>());
    }
}
