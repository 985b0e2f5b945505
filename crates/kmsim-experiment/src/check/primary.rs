//! `single-primary`: never two PRIMARY keys of one multi-Region set.

use std::collections::BTreeSet;

use super::{key_of, plural, Facts, Input, Status, Verdict};

const NAME: &str = "single-primary";

/// Checks, from the Key observations after the heal, that for every multi-Region key at most
/// one Region says PRIMARY, that every Region holding the key names the same primary Region,
/// and that this Region holds the key and says PRIMARY.
///
/// Limits: the history holds neither the Regions' epochs nor their audit records, and a
/// workload DescribeKey records only the key state, not its role; so the workload itself is
/// judged by `linearizable-keys`, whose model requires every acknowledged ReplicateKey,
/// RotateKeyOnDemand and UpdatePrimaryRegion to have been made in the one primary Region of
/// its moment. On a failure the ops listed are the acknowledged writes of the key that name
/// a primary (CreateKey, UpdatePrimaryRegion).
pub fn single_primary(input: &Input) -> Verdict {
    let f = Facts::new(input.records);
    let mut sets = 0usize;
    let mut problems: Vec<(String, String)> = Vec::new();
    for (key_id, held) in f.held_sets() {
        sets += 1;
        let primaries: Vec<&str> = held
            .iter()
            .filter(|(_, v)| v.multi_region_type.as_deref() == Some("PRIMARY"))
            .map(|(r, _)| *r)
            .collect();
        let named: BTreeSet<&str> = held
            .iter()
            .map(|(_, v)| v.primary_region.as_deref().unwrap_or("none"))
            .collect();
        let problem = if primaries.len() > 1 {
            Some(format!("{} PRIMARY in {}", key_id, primaries.join(" and ")))
        } else if named.len() > 1 {
            let named: Vec<&str> = named.into_iter().collect();
            Some(format!(
                "{key_id}: Regions name {} as primary",
                named.join(", ")
            ))
        } else {
            let p = named.into_iter().next().unwrap_or("none");
            match held.iter().find(|(r, _)| *r == p) {
                Some((_, v)) if v.multi_region_type.as_deref() == Some("PRIMARY") => None,
                Some(_) => Some(format!("{key_id}: primary {p} says it is not PRIMARY")),
                None => Some(format!("{key_id}: primary {p} does not hold the key")),
            }
        };
        if let Some(p) = problem {
            problems.push((key_id.to_string(), p));
        }
    }
    let checked = format!("{} after the heal", plural(sets, "multi-Region key set"));
    if problems.is_empty() {
        return Verdict::new(
            NAME,
            Status::Pass,
            format!("{checked}: one primary each, every Region agrees"),
            Vec::new(),
        );
    }
    let keys: BTreeSet<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    let ops = f
        .ops
        .iter()
        .filter(|op| op.ok() && op.operation().is_write())
        .filter(|op| {
            matches!(
                op.call,
                crate::history::Call::CreateKey { .. }
                    | crate::history::Call::UpdatePrimaryRegion { .. }
            )
        })
        .filter(|op| key_of(op).is_some_and(|(_, k)| keys.contains(k)))
        .map(|op| op.id)
        .collect();
    let what: Vec<&str> = problems.iter().take(3).map(|(_, p)| p.as_str()).collect();
    Verdict::new(
        NAME,
        Status::Fail,
        format!("{checked}: {} wrong: {}", problems.len(), what.join("; ")),
        ops,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::forge::{self, id, AP, EU, MRK, US};

    #[test]
    fn the_good_history_has_one_primary() {
        let v = forge::run(&forge::good(), single_primary);
        assert_eq!(v.status, Status::Pass, "{v:?}");
        assert_eq!(
            v.summary,
            "1 multi-Region key set after the heal: one primary each, every Region agrees"
        );
    }

    #[test]
    fn two_regions_saying_primary_fail() {
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, MRK, US) {
            v.multi_region_type = Some("PRIMARY".into());
        }
        let v = forge::run(&records, single_primary);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary
                .contains("mrk-a PRIMARY in eu-west-1 and us-east-1"),
            "{}",
            v.summary
        );
        assert_eq!(v.ops, [id::CREATE_MRK, id::PROMOTE_EU]);
    }

    #[test]
    fn regions_disagreeing_on_the_primary_fail() {
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, MRK, AP) {
            v.primary_region = Some(US.into());
        }
        let v = forge::run(&records, single_primary);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary.contains("eu-west-1, us-east-1 as primary"),
            "{}",
            v.summary
        );
        // A primary that says REPLICA fails too.
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, MRK, EU) {
            v.multi_region_type = Some("REPLICA".into());
        }
        let v = forge::run(&records, single_primary);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary.contains("says it is not PRIMARY"),
            "{}",
            v.summary
        );
    }
}
