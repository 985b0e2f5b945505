//! `convergence`: the shared properties of every multi-Region key agree in every Region
//! within `checks.convergence` of the heal.

use std::collections::BTreeSet;

use super::{key_of, plural, Facts, Input, Status, Verdict};
use crate::history::{KeyView, Phase};

const NAME: &str = "convergence";

/// The shared properties a Region shows: primary Region, the set's Regions (primary and
/// replicas) and, when read, the rotations.
fn shared(v: &KeyView) -> (Option<&str>, BTreeSet<&str>) {
    let mut members: BTreeSet<&str> = v.replica_regions.iter().map(String::as_str).collect();
    if let Some(p) = v.primary_region.as_deref() {
        members.insert(p);
    }
    (v.primary_region.as_deref(), members)
}

/// Why the Regions holding a multi-Region key do not agree on it, or `None` when they do: the
/// same primary Region, the same replica Regions and (where read) the same number of
/// rotations; none left `Updating` or `Creating` (a hand-over or replication that never
/// ended: the key would refuse management calls for good); and the Regions holding it exactly
/// the primary and its replicas. `held` is every Region holding it with what that Region shows
/// (Regions without the key left out). The runner reads a key again until this is `None`, so
/// it waits for exactly what this checker requires.
pub fn disagreement(key_id: &str, held: &[(&str, &KeyView)]) -> Option<String> {
    let (first_region, first_view) = held.first()?;
    let first = shared(first_view);
    if let Some((r, _)) = held.iter().find(|(_, v)| shared(v) != first) {
        return Some(format!(
            "{key_id}: {first_region} and {r} disagree on primary or replicas"
        ));
    }
    let rotations: BTreeSet<u32> = held.iter().filter_map(|(_, v)| v.rotations).collect();
    if rotations.len() > 1 {
        let r: Vec<String> = rotations.iter().map(u32::to_string).collect();
        return Some(format!(
            "{key_id}: Regions show {} rotations",
            r.join(" or ")
        ));
    }
    if let Some((r, v)) = held
        .iter()
        .find(|(_, v)| v.state == "Updating" || v.state == "Creating")
    {
        return Some(format!("{key_id}: {r} still {}", v.state));
    }
    let holders: BTreeSet<&str> = held.iter().map(|(r, _)| *r).collect();
    if holders != first.1 {
        let h: Vec<&str> = holders.iter().copied().collect();
        let m: Vec<&str> = first.1.iter().copied().collect();
        return Some(format!(
            "{key_id}: held in {} but the set is {}",
            h.join(", "),
            m.join(", ")
        ));
    }
    None
}

/// Checks, for each multi-Region key, that the Regions holding it agree ([`disagreement`]) and
/// that every observation of it was read within `checks.convergence` of the Heal phase's start.
/// An observation's `at` is when the runner finished reading it: the runner reads every key's
/// shared properties in all its Regions at once, before anything else, and again every 200 ms
/// until they agree, so `at` is an upper bound of when the Regions agreed, late by at most one
/// round of reads.
///
/// Single-Region keys share nothing and are not counted. Without a Heal phase record the bound
/// is not checked and a history that otherwise agrees is `Unknown`.
pub fn convergence(input: &Input) -> Verdict {
    let f = Facts::new(input.records);
    let bound = input.experiment.checks.convergence;
    let heal = f.phases.get(&Phase::Heal).copied();
    let mut keys = 0usize;
    let mut slowest = 0u64;
    let mut problems: Vec<(String, String)> = Vec::new();
    for (key_id, held) in f.held_sets() {
        keys += 1;
        let mut problem = disagreement(key_id, &held);
        if let Some(heal) = heal {
            let late = f
                .observations(key_id)
                .map(|(_, o)| o.at.saturating_sub(heal))
                .max()
                .unwrap_or(0);
            slowest = slowest.max(late);
            if problem.is_none() && u128::from(late) > bound.as_micros() {
                problem = Some(format!(
                    "{key_id}: agreed {:.1} s after the heal, over {:.1} s",
                    late as f64 / 1e6,
                    bound.as_secs_f64()
                ));
            }
        }
        if let Some(p) = problem {
            problems.push((key_id.to_string(), p));
        }
    }
    let checked = format!("{} in every Region", plural(keys, "multi-Region key"));
    if problems.is_empty() {
        return match heal {
            Some(_) => Verdict::new(
                NAME,
                Status::Pass,
                format!(
                    "{checked}: agreed within {:.1} s of the heal (bound {:.1} s)",
                    slowest as f64 / 1e6,
                    bound.as_secs_f64()
                ),
                Vec::new(),
            ),
            None => Verdict::new(
                NAME,
                Status::Unknown,
                format!("{checked}: agreed, but no heal phase was recorded to time it"),
                Vec::new(),
            ),
        };
    }
    let bad: BTreeSet<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    let ops = f
        .ops
        .iter()
        .filter(|op| op.ok() && op.operation().is_write())
        .filter(|op| key_of(op).is_some_and(|(_, k)| bad.contains(k)))
        .map(|op| op.id)
        .collect();
    let what: Vec<&str> = problems.iter().take(3).map(|(_, p)| p.as_str()).collect();
    Verdict::new(
        NAME,
        Status::Fail,
        format!(
            "{checked}: {} not converged: {}",
            problems.len(),
            what.join("; ")
        ),
        ops,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::forge::{self, id, AP, EU, HEAL, MRK};
    use crate::history::{Observation, Record};

    #[test]
    fn the_good_history_converges() {
        let v = forge::run(&forge::good(), convergence);
        assert_eq!(v.status, Status::Pass, "{v:?}");
        assert_eq!(
            v.summary,
            "1 multi-Region key in every Region: agreed within 2.0 s of the heal (bound 15.0 s)"
        );
    }

    #[test]
    fn a_replica_with_another_replica_list_fails() {
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, MRK, AP) {
            v.replica_regions = vec![AP.into()];
        }
        let v = forge::run(&records, convergence);
        assert_eq!(v.status, Status::Fail);
        assert!(v.summary.contains("disagree"), "{}", v.summary);
        assert!(v.ops.contains(&id::REPLICATE_AP), "{v:?}");
    }

    #[test]
    fn lagging_rotations_membership_or_a_late_agreement_fail() {
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, MRK, AP) {
            v.rotations = Some(0);
        }
        let v = forge::run(&records, convergence);
        assert_eq!(v.status, Status::Fail);
        assert!(v.summary.contains("0 or 1 rotations"), "{}", v.summary);

        let mut records = forge::good();
        *forge::view_mut(&mut records, MRK, AP) = None;
        let v = forge::run(&records, convergence);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary
                .contains("held in eu-west-1, us-east-1 but the set is"),
            "{}",
            v.summary
        );

        let mut records = forge::good();
        for r in &mut records {
            if let Record::Observation(Observation::Key { region, at, .. }) = r {
                if region == EU {
                    *at = HEAL + 16_000_000;
                }
            }
        }
        let v = forge::run(&records, convergence);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary
                .contains("agreed 16.0 s after the heal, over 15.0 s"),
            "{}",
            v.summary
        );
    }

    fn view(state: &str, primary: &str, replicas: &[&str], rotations: Option<u32>) -> KeyView {
        KeyView {
            state: state.into(),
            multi_region_type: None,
            primary_region: Some(primary.into()),
            replica_regions: replicas.iter().map(|r| r.to_string()).collect(),
            aliases: Vec::new(),
            rotations,
        }
    }

    /// The rule the runner reads again until it holds: a replica still being created, a
    /// Region that does not hold the key yet, or a rotation not yet everywhere is no agreement.
    #[test]
    fn the_runner_waits_for_what_the_checker_requires() {
        let us = view("Enabled", forge::US, &[EU], Some(1));
        let eu = view("Enabled", forge::US, &[EU], Some(1));
        assert_eq!(disagreement(MRK, &[]), None);
        assert_eq!(disagreement(MRK, &[(forge::US, &us), (EU, &eu)]), None);

        let creating = view("Creating", forge::US, &[EU], Some(1));
        assert_eq!(
            disagreement(MRK, &[(forge::US, &us), (EU, &creating)]).as_deref(),
            Some("mrk-a: eu-west-1 still Creating")
        );
        // The primary lists a replica its Region does not show yet.
        assert_eq!(
            disagreement(MRK, &[(forge::US, &us)]).as_deref(),
            Some("mrk-a: held in us-east-1 but the set is eu-west-1, us-east-1")
        );
        let behind = view("Enabled", forge::US, &[EU], Some(0));
        assert_eq!(
            disagreement(MRK, &[(forge::US, &us), (EU, &behind)]).as_deref(),
            Some("mrk-a: Regions show 0 or 1 rotations")
        );
        let moved = view("Enabled", EU, &[forge::US], Some(1));
        assert!(disagreement(MRK, &[(forge::US, &us), (EU, &moved)])
            .is_some_and(|d| d.contains("disagree on primary")));
    }

    /// Agreement read late in one Region only is late: the key's date is its latest read.
    #[test]
    fn one_region_read_after_the_bound_makes_the_key_late() {
        let mut records = forge::good();
        for r in &mut records {
            if let Record::Observation(Observation::Key {
                region, key_id, at, ..
            }) = r
            {
                if region == AP && key_id == MRK {
                    *at = HEAL + 15_000_001;
                }
            }
        }
        let v = forge::run(&records, convergence);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary.contains("mrk-a: agreed 15.0 s after the heal"),
            "{}",
            v.summary
        );
        assert!(v.ops.contains(&id::CREATE_MRK), "{v:?}");
    }

    #[test]
    fn a_key_left_updating_fails_even_when_the_regions_agree() {
        // As the primary-handover-partition experiment found: a replica left `Updating` by a
        // hand-over that never ended there.
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, MRK, forge::US) {
            v.state = "Updating".into();
        }
        let v = forge::run(&records, convergence);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary.contains("mrk-a: us-east-1 still Updating"),
            "{}",
            v.summary
        );
        assert!(v.ops.contains(&id::PROMOTE_EU), "{v:?}");
    }
}
