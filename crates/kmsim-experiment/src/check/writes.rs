//! `no-lost-writes`: no acknowledged management write is lost.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    clock_advance_after, is_pending_deletion, key_of, plural, Facts, Input, Status, Verdict,
};
use crate::history::{Call, Op, Outcome};

const NAME: &str = "no-lost-writes";

/// A day of simulated time, in ms.
const DAY_MS: i64 = 86_400_000;

/// Checks every acknowledged management write against the observations after the heal:
///
/// - CreateKey: the key exists in the Region it was created in;
/// - ReplicateKey: the replica exists in its Region;
/// - CreateAlias: the alias is in the key's alias list in the key's Region;
/// - ScheduleKeyDeletion: the key is `PendingDeletion` (or `PendingReplicaDeletion`), and a
///   primary `PendingDeletion` has no replicas left; or it is gone when a clock fault moved the
///   Region's clock ahead by at least its window after the call started;
/// - RotateKeyOnDemand: in each Region where a rotation of the key was acknowledged, the
///   rotations observed (when read) are at least the rotations acknowledged for the key;
/// - UpdatePrimaryRegion: every Region holding the key names as primary the target of an
///   acknowledged UpdatePrimaryRegion that no other acknowledged one follows in real time, or
///   of an unknown one (which may have taken effect last).
///
/// A key the Region was not asked about counts as lost, unless that Region's clock may have
/// deleted it (a ScheduleKeyDeletion there, then a clock fault moving the Region ahead by at
/// least its window). Unknown calls are never required.
pub fn no_lost_writes(input: &Input) -> Verdict {
    let f = Facts::new(input.records);
    let mut checked = 0usize;
    let mut lost: Vec<(u64, String)> = Vec::new();
    let mut rotations: BTreeMap<&str, (u32, BTreeSet<&str>, Vec<u64>)> = BTreeMap::new();
    let mut promotions: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    // Keys a Region's own clock may have deleted: scheduled there (acknowledged or unknown),
    // then the Region's clock moved ahead by a fault by at least the window. Not a primary
    // acknowledged PendingReplicaDeletion: it has no deletion date until its replicas are gone.
    let expired: BTreeSet<(&str, &str)> = f
        .ops
        .iter()
        .filter(|op| match &op.outcome {
            Outcome::Failed { .. } => false,
            Outcome::Ok { reply } => reply.state.as_deref() != Some("PendingReplicaDeletion"),
            Outcome::Unknown { .. } => true,
        })
        .filter_map(|op| match (&op.call, key_of(op)) {
            (Call::ScheduleKeyDeletion { days, .. }, Some((region, key_id)))
                if clock_advance_after(input, &f, region, op.start)
                    >= i64::from(*days) * DAY_MS =>
            {
                Some((key_id, region))
            }
            _ => None,
        })
        .collect();
    for op in &f.ops {
        if !op.operation().is_write() {
            continue;
        }
        let Some((region, key_id)) = key_of(op) else {
            if op.ok() {
                checked += 1;
                lost.push((op.id, "no key ARN".into()));
            }
            continue;
        };
        if let Call::UpdatePrimaryRegion { .. } = op.call {
            if !matches!(op.outcome, Outcome::Failed { .. }) {
                promotions.entry(key_id).or_default().push(op);
            }
        }
        if !op.ok() {
            continue;
        }
        checked += 1;
        // A view, or (as if held) a key its Region's clock may have deleted.
        let gone = |r: &str| expired.contains(&(key_id, r));
        let held = |r: &str| f.view(key_id, r);
        let problem = match &op.call {
            Call::CreateKey { .. } => (held(region).is_none() && !gone(region))
                .then(|| format!("key {key_id} lost in {region}")),
            Call::ReplicateKey { replica_region, .. } => (held(replica_region).is_none()
                && !gone(replica_region))
            .then(|| format!("replica {key_id} lost in {replica_region}")),
            Call::CreateAlias { alias, .. } => match held(region) {
                Some(v) if v.aliases.contains(alias) => None,
                None if gone(region) => None,
                _ => Some(format!("{alias} of {key_id} lost in {region}")),
            },
            Call::ScheduleKeyDeletion { .. } => match held(region) {
                // AWS's multi-Region rule: a primary waits in PendingReplicaDeletion until its
                // last replica is deleted.
                Some(v)
                    if v.state == "PendingDeletion"
                        && v.multi_region_type.as_deref() == Some("PRIMARY")
                        && !v.replica_regions.is_empty() =>
                {
                    Some(format!(
                        "primary {key_id} PendingDeletion in {region} while it has replicas ({})",
                        v.replica_regions.join(", ")
                    ))
                }
                Some(v) if is_pending_deletion(&v.state) => None,
                Some(v) => Some(format!(
                    "deletion of {key_id} lost in {region} ({})",
                    v.state
                )),
                // Deleted by the Region's clock, moved ahead past the window by a fault.
                None if gone(region) => None,
                None => Some(format!(
                    "key {key_id} gone from {region} before its window ended"
                )),
            },
            Call::RotateKeyOnDemand { .. } => {
                let r = rotations.entry(key_id).or_default();
                r.0 += 1;
                r.1.insert(region);
                r.2.push(op.id);
                None
            }
            _ => None,
        };
        if let Some(p) = problem {
            lost.push((op.id, p));
        }
    }
    for (key_id, (acked, regions, ids)) in &rotations {
        for region in regions {
            match f.view(key_id, region) {
                Some(v) if v.rotations.is_none_or(|n| n >= *acked) => {}
                Some(v) => {
                    let seen = v.rotations.unwrap_or_default();
                    let p = format!("{key_id} shows {seen} of {acked} rotations in {region}");
                    lost.extend(ids.iter().map(|id| (*id, p.clone())));
                }
                None => {
                    let p = format!("key {key_id} gone from {region}");
                    lost.extend(ids.iter().map(|id| (*id, p.clone())));
                }
            }
        }
    }
    for (key_id, ops) in &promotions {
        let acked: Vec<&&Op> = ops.iter().filter(|o| o.ok()).collect();
        // The acknowledged ones no other acknowledged one follows, and every unknown one.
        let last: Vec<&&Op> = ops
            .iter()
            .filter(|o| !o.ok() || !acked.iter().any(|b| b.start > o.end))
            .collect();
        if acked.is_empty() {
            continue;
        }
        let allowed: BTreeSet<&str> = last
            .iter()
            .filter_map(|o| match &o.call {
                Call::UpdatePrimaryRegion { primary_region, .. } => Some(primary_region.as_str()),
                _ => None,
            })
            .collect();
        let blame: Vec<u64> = last.iter().filter(|o| o.ok()).map(|o| o.id).collect();
        let mut holders = 0;
        for (region, obs) in f.observations(key_id) {
            let Some(v) = obs.view else { continue };
            holders += 1;
            let p = v.primary_region.as_deref().unwrap_or("none");
            if !allowed.contains(p) {
                let want: Vec<&str> = allowed.iter().copied().collect();
                let what = format!(
                    "{region} says the primary of {key_id} is {p}, not {}",
                    want.join(" or ")
                );
                lost.extend(blame.iter().map(|id| (*id, what.clone())));
            }
        }
        if holders == 0 {
            lost.extend(
                blame
                    .iter()
                    .map(|id| (*id, format!("key {key_id} gone everywhere"))),
            );
        }
    }
    let writes = plural(checked, "acknowledged write");
    if lost.is_empty() {
        return Verdict::new(
            NAME,
            Status::Pass,
            format!("{writes}, none lost"),
            Vec::new(),
        );
    }
    let ids: BTreeSet<u64> = lost.iter().map(|(id, _)| *id).collect();
    let mut what: Vec<&str> = lost.iter().map(|(_, w)| w.as_str()).collect();
    what.dedup();
    let more = if what.len() > 3 {
        format!(" (and {} more)", what.len() - 3)
    } else {
        String::new()
    };
    what.truncate(3);
    Verdict::new(
        NAME,
        Status::Fail,
        format!("{writes}, {} lost: {}{more}", ids.len(), what.join("; ")),
        ids.into_iter().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::forge::{self, id, AP, DOOMED, EU, MRK, SINGLE, US};
    use crate::history::{Phase, Record, Reply};

    #[test]
    fn the_good_history_loses_nothing() {
        let v = forge::run(&forge::good(), no_lost_writes);
        assert_eq!(v.status, Status::Pass, "{v:?}");
        assert_eq!(v.summary, "9 acknowledged writes, none lost");
    }

    #[test]
    fn a_lost_alias_fails() {
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, MRK, EU) {
            v.aliases.clear();
        }
        let v = forge::run(&records, no_lost_writes);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.ops, [id::ALIAS_EU]);
        assert!(
            v.summary.contains("alias/a of mrk-a lost in eu-west-1"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn lost_keys_replicas_deletions_and_rotations_fail() {
        let mut records = forge::good();
        *forge::view_mut(&mut records, SINGLE, EU) = None;
        *forge::view_mut(&mut records, MRK, AP) = None;
        if let Some(v) = forge::view_mut(&mut records, DOOMED, US) {
            v.state = "Enabled".into();
        }
        if let Some(v) = forge::view_mut(&mut records, MRK, US) {
            v.rotations = Some(0);
        }
        let v = forge::run(&records, no_lost_writes);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(
            v.ops,
            [
                id::REPLICATE_AP,
                id::CREATE_SINGLE,
                id::ROTATE,
                id::SCHEDULE_DOOMED
            ]
        );
    }

    /// `no_lost_writes` on `records`, with the forged experiment plus one clock fault.
    fn with_clock_fault(records: &[Record], fault: &str) -> Verdict {
        let text = format!("{}\n[[fault]]\n{fault}", forge::EXPERIMENT);
        let e = crate::spec::Experiment::parse(&text, false).expect("valid");
        let schedule = crate::schedule::Schedule::expand(&e, 1);
        no_lost_writes(&Input {
            experiment: &e,
            schedule: &schedule,
            records,
        })
    }

    #[test]
    fn a_key_gone_before_its_window_fails_unless_its_regions_clock_moved_past_it_after() {
        let mut records = forge::good();
        *forge::view_mut(&mut records, DOOMED, US) = None;
        let v = forge::run(&records, no_lost_writes);
        assert_eq!(v.status, Status::Fail);
        // Its CreateKey (in the setup) and its ScheduleKeyDeletion.
        assert_eq!(v.ops.len(), 2, "{v:?}");
        assert_eq!(v.ops[1], id::SCHEDULE_DOOMED);
        assert!(
            v.summary.contains("before its window ended"),
            "{}",
            v.summary
        );
        // us-east-1's clock jumped 8 days after the call (the schedule starts at 1 s + 40 s;
        // the call was made at 35 s): deleted by its clock.
        let jump = "action = \"clock-jump\"\nregion = \"us-east-1\"\nby = \"8d\"\nat = \"40s\"";
        assert_eq!(with_clock_fault(&records, jump).status, Status::Pass);
        // Nor when the jump began less than 2 s before the call (a jump's end edge, recorded
        // once it is applied, lies after the call's start in a history the runner wrote; here
        // without fault events the schedule places it, so only the slack applies).
        assert_eq!(
            with_clock_fault(&records, &jump.replace("40s", "33s")).status,
            Status::Pass
        );
        // Not when the jump came before the call, was too short, or moved another Region.
        for fault in [
            jump.replace("40s", "20s"),
            jump.replace("8d", "6d"),
            jump.replace("us-east-1", "eu-west-1"),
        ] {
            let v = with_clock_fault(&records, &fault);
            assert_eq!(v.status, Status::Fail, "{fault}");
        }
        // A skew counts by its largest value: 5 days and 1 day per second for 3 s.
        let skew = "action = \"clock-skew\"\nregion = \"us-east-1\"\nby = \"5d\"\ndrift = \"1d/s\"\nat = \"40s\"\nfor = \"3s\"";
        assert_eq!(with_clock_fault(&records, skew).status, Status::Pass);
        let short = skew.replace("for = \"3s\"", "for = \"1s\"");
        assert_eq!(with_clock_fault(&records, &short).status, Status::Fail);
    }

    #[test]
    fn a_primary_pending_deletion_with_replicas_fails() {
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, DOOMED, US) {
            v.multi_region_type = Some("PRIMARY".into());
            v.replica_regions = vec![EU.into()];
        }
        let v = forge::run(&records, no_lost_writes);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary
                .contains("PendingDeletion in us-east-1 while it has replicas"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_lost_promotion_fails_unless_an_unknown_one_may_have_undone_it() {
        let mut records = forge::good();
        for region in [US, EU, AP] {
            if let Some(v) = forge::view_mut(&mut records, MRK, region) {
                v.primary_region = Some(US.into());
            }
        }
        let v = forge::run(&records, no_lost_writes);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.ops, [id::PROMOTE_EU]);
        // An unknown promotion back to us-east-1, made after, may explain it.
        let mut f = forge::Forge::default();
        let back = crate::history::Call::UpdatePrimaryRegion {
            key: forge::arn(EU, MRK),
            primary_region: US.into(),
        };
        f.op(
            Phase::Workload,
            EU,
            (7_000_000, 8_000_000),
            back,
            forge::unknown(),
        );
        let Some(crate::history::Record::Op(mut op)) = f.records.pop() else {
            panic!("forged an op")
        };
        op.id = 100;
        records.push(crate::history::Record::Op(op.clone()));
        assert_eq!(forge::run(&records, no_lost_writes).status, Status::Pass);
        // Acknowledged, it explains it too.
        op.outcome = forge::ok(Reply::default());
        let last = records.len() - 1;
        records[last] = crate::history::Record::Op(op);
        assert_eq!(forge::run(&records, no_lost_writes).status, Status::Pass);
    }
}
