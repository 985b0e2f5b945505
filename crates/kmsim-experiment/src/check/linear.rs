//! `linearizable-keys`: each key's management history is linearizable, checked with a
//! Wing–Gong–Lowe search bounded by a step budget per key.
//!
//! ## The model
//!
//! Each key (a multi-Region set counts as one key, its `mrk-` ID being the same everywhere)
//! is one object whose state is
//!
//! - `primary`: the Region of its primary key (a single-Region key's own Region);
//! - `holders`: the Regions holding a key of the set (the primary and its replicas);
//! - `pending`: the Regions whose key is pending deletion.
//!
//! Every acknowledged call on the key is an operation that must find the object in a state
//! that lets it succeed (conditions AWS documents, so necessary ones), and changes it so:
//!
//! | call, made in Region `R` | requires | effect |
//! |---|---|---|
//! | CreateKey | no key yet | `primary = R`, `holders = {R}` |
//! | ReplicateKey to `T` | `primary = R`, `R ∉ pending`, `T ∉ holders` | `holders += T` |
//! | UpdatePrimaryRegion to `T` | `primary = R ≠ T`, `T ∈ holders`, `R, T ∉ pending` | `primary = T` |
//! | RotateKeyOnDemand | `primary = R`, `R ∉ pending` | none |
//! | ScheduleKeyDeletion | `R ∈ holders`, `R ∉ pending` | `pending += R` |
//! | DescribeKey (a read) | `R ∈ holders`; its state is a deletion state iff `R ∈ pending` | none |
//! | the observations after the heal (a read after every call) | the Regions observed hold the key iff in `holders`, are pending deletion iff in `pending`, and name `primary` when they all name one; a key pending deletion in a Region whose clock a fault moved ahead by 7 days or more may be gone | none |
//!
//! So a history where two Regions acted as primary at once (say a rotation acknowledged in
//! the old primary's Region after a promotion was acknowledged) is not linearizable.
//! Failed calls took no effect and are left out (their errors are not read: a timeout inside
//! the cluster and a refusal look alike). An unknown call may take effect at any moment after
//! its start, or never. A key whose CreateKey was not acknowledged is not checked (its
//! initial state is unknown). Aliases are not modelled: they are per Region and only added.
//!
//! ## The search
//!
//! A depth-first search over configurations (the set of operations linearized, the state),
//! memoised so each configuration is explored once: from a configuration, any operation not
//! yet linearized that no other pending operation precedes in real time (ended before it
//! started) may come next if the model allows it. The history is linearizable when a
//! configuration has linearized every acknowledged operation. Each configuration explored
//! costs one step; past the budget the key's answer is unknown.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    clock_advance_after, is_pending_deletion, key_of, plural, Facts, Input, Status, Verdict,
};
use crate::history::{Call, Micros, Op, Outcome};

const NAME: &str = "linearizable-keys";

/// Configurations explored per key before giving up (`Status::Unknown`).
pub const DEFAULT_STEP_BUDGET: u64 = 100_000;

const NONE: u8 = u8::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct State {
    primary: u8,
    holders: u32,
    pending: u32,
}

#[derive(Clone, Copy, Debug)]
enum Act {
    Create {
        at: u8,
    },
    Replicate {
        at: u8,
        to: u8,
    },
    Promote {
        at: u8,
        to: u8,
    },
    Rotate {
        at: u8,
    },
    Schedule {
        at: u8,
    },
    Describe {
        at: u8,
        pending: Option<bool>,
    },
    Final {
        primary: Option<u8>,
        known: u32,
        holders: u32,
        pending: u32,
        /// Regions whose clock a fault moved ahead by at least AWS's shortest window (7
        /// days): a key pending deletion there may have been deleted by that clock.
        expirable: u32,
    },
}

fn bit(r: u8) -> u32 {
    1u32 << r
}

impl State {
    const EMPTY: State = State {
        primary: NONE,
        holders: 0,
        pending: 0,
    };

    /// The state after `a`, or `None` when `a` could not have succeeded in this state.
    fn apply(self, a: Act) -> Option<State> {
        let has = |set: u32, r: u8| set & bit(r) != 0;
        let ok = |c: bool| c.then_some(self);
        match a {
            Act::Create { at } => (self.primary == NONE && self.holders == 0).then_some(State {
                primary: at,
                holders: bit(at),
                pending: 0,
            }),
            Act::Replicate { at, to } => (self.primary == at
                && !has(self.pending, at)
                && !has(self.holders, to))
            .then_some(State {
                holders: self.holders | bit(to),
                ..self
            }),
            Act::Promote { at, to } => (self.primary == at
                && at != to
                && has(self.holders, to)
                && !has(self.pending, at)
                && !has(self.pending, to))
            .then_some(State {
                primary: to,
                ..self
            }),
            Act::Rotate { at } => ok(self.primary == at && !has(self.pending, at)),
            Act::Schedule { at } => {
                (has(self.holders, at) && !has(self.pending, at)).then_some(State {
                    pending: self.pending | bit(at),
                    ..self
                })
            }
            Act::Describe { at, pending } => {
                ok(has(self.holders, at) && pending.is_none_or(|p| p == has(self.pending, at)))
            }
            Act::Final {
                primary,
                known,
                holders,
                pending,
                expirable,
            } => {
                let gone = self.pending & expirable & known & !holders;
                ok((self.holders & !gone) & known == holders
                    && (self.pending & !gone) & known == pending
                    && primary.is_none_or(|p| p == self.primary))
            }
        }
    }
}

/// One operation of a key's history.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: u64,
    start: Micros,
    /// `Micros::MAX` for an unknown call.
    end: Micros,
    definite: bool,
    act: Act,
}

enum Search {
    Linearizable,
    Not(Vec<u64>),
    OutOfBudget,
}

/// Wing–Gong–Lowe over `entries` (sorted by start), memoised on (linearized set, state).
fn search(entries: &[Entry], budget: u64) -> Search {
    let n = entries.len();
    let words = n.div_ceil(64);
    let mut required = vec![0u64; words];
    for (i, e) in entries.iter().enumerate() {
        if e.definite {
            required[i / 64] |= 1 << (i % 64);
        }
    }
    let done = |set: &[u64], i: usize| set[i / 64] & (1 << (i % 64)) != 0;
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack = vec![(vec![0u64; words], State::EMPTY)];
    seen.insert(stack[0].clone());
    let mut steps = 0u64;
    let (mut deepest, mut deepest_set) = (0u32, vec![0u64; words]);
    while let Some((set, state)) = stack.pop() {
        steps += 1;
        if steps > budget {
            return Search::OutOfBudget;
        }
        if set.iter().zip(&required).all(|(s, r)| s & r == *r) {
            return Search::Linearizable;
        }
        let depth: u32 = set.iter().map(|w| w.count_ones()).sum();
        if depth >= deepest {
            (deepest, deepest_set) = (depth, set.clone());
        }
        // Entries are sorted by start and end no earlier than they start, so the scans stop
        // at the first entry starting after the earliest pending end.
        let lo = (0..n).find(|i| !done(&set, *i)).unwrap_or(n);
        let mut min_end = Micros::MAX;
        for (i, e) in entries.iter().enumerate().skip(lo) {
            if e.start > min_end {
                break;
            }
            if !done(&set, i) {
                min_end = min_end.min(e.end);
            }
        }
        for i in lo..n {
            let e = &entries[i];
            if e.start > min_end {
                break;
            }
            if done(&set, i) {
                continue;
            }
            if let Some(next) = state.apply(e.act) {
                let mut s = set.clone();
                s[i / 64] |= 1 << (i % 64);
                let c = (s, next);
                if !seen.contains(&c) {
                    seen.insert(c.clone());
                    stack.push(c);
                }
            }
        }
    }
    // Blame the acknowledged operations that could come next where the search got furthest.
    let min_end = (0..n)
        .filter(|i| !done(&deepest_set, *i))
        .map(|i| entries[i].end)
        .min()
        .unwrap_or(Micros::MAX);
    let blame: Vec<u64> = (0..n)
        .filter(|i| !done(&deepest_set, *i) && entries[*i].definite)
        .filter(|i| entries[*i].start <= min_end && entries[*i].id != FINAL_ID)
        .map(|i| entries[i].id)
        .collect();
    if !blame.is_empty() {
        return Search::Not(blame);
    }
    // Only the observations after the heal are left: blame the last acknowledged writes.
    let writes: Vec<u64> = entries
        .iter()
        .filter(|e| e.definite && e.id != FINAL_ID && !matches!(e.act, Act::Describe { .. }))
        .map(|e| e.id)
        .collect();
    Search::Not(writes[writes.len().saturating_sub(super::MAX_OPS)..].to_vec())
}

/// The id given to the final observation (not an operation).
const FINAL_ID: u64 = u64::MAX;

/// The Regions, numbered: the cluster's, then any other a call names.
struct Regions<'a>(HashMap<&'a str, u8>);

impl<'a> Regions<'a> {
    fn index(&mut self, r: &'a str) -> Option<u8> {
        let n = self.0.len();
        match self.0.get(r) {
            Some(i) => Some(*i),
            None if n < 32 => {
                self.0.insert(r, n as u8);
                Some(n as u8)
            }
            None => None,
        }
    }
}

fn act<'a>(op: &'a Op, at: &'a str, regions: &mut Regions<'a>) -> Option<Option<Act>> {
    let r = regions.index(at)?;
    Some(match &op.call {
        Call::CreateKey { .. } => Some(Act::Create { at: r }),
        Call::ReplicateKey { replica_region, .. } => Some(Act::Replicate {
            at: r,
            to: regions.index(replica_region)?,
        }),
        Call::UpdatePrimaryRegion { primary_region, .. } => Some(Act::Promote {
            at: r,
            to: regions.index(primary_region)?,
        }),
        Call::RotateKeyOnDemand { .. } => Some(Act::Rotate { at: r }),
        Call::ScheduleKeyDeletion { .. } => Some(Act::Schedule { at: r }),
        Call::DescribeKey { .. } => match &op.outcome {
            Outcome::Ok { reply } => Some(Act::Describe {
                at: r,
                pending: reply.state.as_deref().map(is_pending_deletion),
            }),
            _ => None,
        },
        _ => None,
    })
}

/// [`linearizable_keys_with_budget`] with [`DEFAULT_STEP_BUDGET`].
pub fn linearizable_keys(input: &Input) -> Verdict {
    linearizable_keys_with_budget(input, DEFAULT_STEP_BUDGET)
}

/// Checks that each key's management history is linearizable against the model of this
/// module's documentation, exploring at most `budget` configurations per key. Fails when a
/// key's history is not; `Unknown` when none fails but a key ran out of budget.
pub fn linearizable_keys_with_budget(input: &Input, budget: u64) -> Verdict {
    let f = Facts::new(input.records);
    let mut regions = Regions(HashMap::new());
    for r in &input.experiment.cluster.regions {
        regions.index(r);
    }
    let mut histories: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
    let mut created: HashSet<&str> = HashSet::new();
    let mut untyped = 0usize;
    for op in &f.ops {
        if matches!(op.outcome, Outcome::Failed { .. }) {
            continue;
        }
        let Some((at, key_id)) = key_of(op) else {
            continue;
        };
        let Some(a) = act(op, at, &mut regions) else {
            untyped += 1;
            continue;
        };
        let Some(a) = a else { continue };
        if matches!(a, Act::Create { .. }) && op.ok() {
            created.insert(key_id);
        }
        histories.entry(key_id).or_default().push(Entry {
            id: op.id,
            start: op.start,
            end: if op.ok() { op.end } else { Micros::MAX },
            definite: op.ok(),
            act: a,
        });
    }
    histories.retain(|k, _| created.contains(k));
    let mut expirable = 0u32;
    for r in &input.experiment.cluster.regions {
        if clock_advance_after(input, &f, r, 0) >= 7 * 86_400_000 {
            if let Some(i) = regions.index(r) {
                expirable |= bit(i);
            }
        }
    }
    let (mut ops, mut out_of_budget, mut not) = (0usize, Vec::new(), Vec::new());
    let mut blame = Vec::new();
    for (key_id, entries) in &mut histories {
        // The observations after the heal: a read after everything.
        let (mut known, mut holders, mut pending) = (0u32, 0u32, 0u32);
        let mut named: Vec<Option<&str>> = Vec::new();
        for (region, obs) in f.observations(key_id) {
            let Some(r) = regions.index(region) else {
                continue;
            };
            known |= bit(r);
            if let Some(v) = obs.view {
                holders |= bit(r);
                if is_pending_deletion(&v.state) {
                    pending |= bit(r);
                }
                named.push(v.primary_region.as_deref());
            }
        }
        named.dedup();
        let primary = match named.as_slice() {
            [Some(p)] => regions.index(p),
            _ => None,
        };
        if known != 0 {
            entries.push(Entry {
                id: FINAL_ID,
                start: Micros::MAX - 1,
                end: Micros::MAX - 1,
                definite: true,
                act: Act::Final {
                    primary,
                    known,
                    holders,
                    pending,
                    expirable,
                },
            });
        }
        entries.sort_by_key(|e| (e.start, e.id));
        ops += entries.iter().filter(|e| e.id != FINAL_ID).count();
        match search(entries, budget) {
            Search::Linearizable => {}
            Search::OutOfBudget => out_of_budget.push(*key_id),
            Search::Not(ids) => {
                not.push(*key_id);
                blame.extend(ids);
            }
        }
    }
    let mut checked = format!(
        "{}, {} (model: primary, holders, deletion)",
        plural(histories.len(), "key"),
        plural(ops, "management op")
    );
    if untyped > 0 {
        checked.push_str(&format!(
            ", {} naming over 32 Regions skipped",
            plural(untyped, "op")
        ));
    }
    if !not.is_empty() {
        let first: Vec<&str> = not.iter().take(3).copied().collect();
        return Verdict::new(
            NAME,
            Status::Fail,
            format!(
                "{checked}: {} not linearizable: {}",
                plural(not.len(), "key"),
                first.join(", ")
            ),
            blame,
        );
    }
    if !out_of_budget.is_empty() {
        return Verdict::new(
            NAME,
            Status::Unknown,
            format!(
                "{checked}: {} out of the budget of {budget} steps ({})",
                plural(out_of_budget.len(), "key"),
                out_of_budget
                    .iter()
                    .take(3)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Vec::new(),
        );
    }
    Verdict::new(
        NAME,
        Status::Pass,
        format!("{checked}: all linearizable"),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests;
