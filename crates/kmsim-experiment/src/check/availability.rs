//! `availability`: each Region's share of successful calls, against the experiment's rules.

use std::collections::BTreeMap;

use super::{count, occurrence_windows, Facts, Input, Status, Verdict};
use crate::history::{Micros, Phase};
use crate::spec::During;

const NAME: &str = "availability";

/// The windows (absolute, in the history's clock) during which a fault was active, merged
/// ([`occurrence_windows`]).
fn windows(input: &Input, f: &Facts) -> Option<Vec<(Micros, Micros)>> {
    let mut w: Vec<(Micros, Micros)> = occurrence_windows(input, f)?
        .into_iter()
        .map(|(_, s, e)| (s, e))
        .collect();
    w.sort_unstable();
    let mut merged: Vec<(Micros, Micros)> = Vec::new();
    for (s, e) in w {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Some(merged)
}

#[derive(Default, Clone, Copy)]
struct Rate {
    ok: usize,
    all: usize,
}

impl Rate {
    fn add(&mut self, ok: bool) {
        self.all += 1;
        self.ok += usize::from(ok);
    }

    fn share(self) -> Option<f64> {
        (self.all > 0).then(|| self.ok as f64 / self.all as f64)
    }

    fn show(self) -> String {
        match self.share() {
            Some(s) => format!("{:.1}% of {}", s * 100.0, count(self.all)),
            None => "no calls".into(),
        }
    }
}

/// Checks every `checks.availability` rule: the share of the rule's Region's workload calls
/// (of its operations, all when none are named) that were acknowledged, while a fault was
/// active (`faults`, a call counting by when it was due) or over the whole workload
/// (`always`), is at least `min_success`. Unknown and failed calls both count as not served.
/// A rule with no calls to count makes the verdict `Unknown` (unless another rule fails).
///
/// The summary also gives, for every Region, its success rate inside and outside the fault
/// windows, rules or not.
pub fn availability(input: &Input) -> Verdict {
    let f = Facts::new(input.records);
    let windows = windows(input, &f);
    let in_fault = |t: Micros| {
        windows
            .as_ref()
            .is_some_and(|w| w.iter().any(|(s, e)| *s <= t && t < *e))
    };
    let workload: Vec<_> = f
        .ops
        .iter()
        .filter(|o| o.phase == Phase::Workload)
        .collect();
    let mut regions: BTreeMap<&str, (Rate, Rate)> = BTreeMap::new();
    for r in &input.experiment.cluster.regions {
        regions.entry(r.as_str()).or_default();
    }
    for op in &workload {
        let r = regions.entry(op.region.as_str()).or_default();
        if in_fault(op.due) {
            r.0.add(op.ok());
        } else {
            r.1.add(op.ok());
        }
    }
    let mut failed = Vec::new();
    let mut undecided = 0usize;
    let mut met = 0usize;
    let mut notes = Vec::new();
    for rule in &input.experiment.checks.availability {
        if rule.during == During::Faults && windows.is_none() {
            undecided += 1;
            notes.push(format!("{}: no workload phase recorded", rule.region));
            continue;
        }
        let mut rate = Rate::default();
        let mut missed = Vec::new();
        for op in &workload {
            let counted = op.region == rule.region
                && (rule.operations.is_empty() || rule.operations.contains(&op.operation()))
                && (rule.during == During::Always || in_fault(op.due));
            if counted {
                rate.add(op.ok());
                if !op.ok() {
                    missed.push(op.id);
                }
            }
        }
        let ops = if rule.operations.is_empty() {
            "all calls".to_string()
        } else {
            let names: Vec<&str> = rule.operations.iter().map(|o| o.name()).collect();
            names.join("+")
        };
        let during = match rule.during {
            During::Faults => "during faults",
            During::Always => "always",
        };
        let line = format!(
            "{} {ops} {during}: {} (min {:.1}%)",
            rule.region,
            rate.show(),
            rule.min_success * 100.0
        );
        match rate.share() {
            None => undecided += 1,
            Some(s) if s + 1e-12 < rule.min_success => {
                failed.extend(missed);
                notes.push(format!("{line} MISSED"));
                continue;
            }
            Some(_) => met += 1,
        }
        notes.push(line);
    }
    let rules = input.experiment.checks.availability.len();
    let per_region: Vec<String> = regions
        .iter()
        .map(|(r, (i, o))| format!("{r} {} in faults, {} outside", i.show(), o.show()))
        .collect();
    let status = if notes.iter().any(|n| n.ends_with("MISSED")) {
        Status::Fail
    } else if undecided > 0 {
        Status::Unknown
    } else {
        Status::Pass
    };
    let mut summary = format!("{met} of {rules} rules met");
    if !notes.is_empty() {
        summary.push_str(&format!(" ({})", notes.join("; ")));
    }
    summary.push_str(&format!("; {}", per_region.join("; ")));
    Verdict::new(NAME, status, summary, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::forge::{self, id};
    use crate::history::{Edge, FaultEvent, Record};

    #[test]
    fn the_good_history_meets_its_rule() {
        let v = forge::run(&forge::good(), availability);
        assert_eq!(v.status, Status::Pass, "{v:?}");
        assert!(
            v.summary.starts_with(
                "1 of 1 rules met (eu-west-1 Encrypt during faults: 50.0% of 2 (min 50.0%)); "
            ),
            "{}",
            v.summary
        );
        assert!(
            v.summary
                .contains("ap-southeast-2 0.0% of 1 in faults, no calls outside")
                && v.summary
                    .contains("eu-west-1 50.0% of 2 in faults, 75.0% of 4 outside"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_region_failing_in_the_fault_window_fails() {
        let mut records = forge::good();
        forge::op_mut(&mut records, id::ENCRYPT_EU_IN_FAULT).outcome = forge::unknown();
        let v = forge::run(&records, availability);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.ops, [id::ENCRYPT_EU_IN_FAULT, id::ENCRYPT_EU_FAILED]);
        assert!(
            v.summary.contains("0.0% of 2 (min 50.0%) MISSED"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn recorded_fault_events_replace_the_schedule() {
        // The fault really started at 15.5 s: the two calls at 15 and 16 s now split.
        let mut records = forge::good();
        for (edge, at) in [(Edge::Start, 15_500_000), (Edge::End, 31_000_000)] {
            records.push(Record::Fault(FaultEvent {
                occurrence: 0,
                edge,
                at,
                what: "partition".into(),
                error: None,
            }));
        }
        let v = forge::run(&records, availability);
        assert_eq!(v.status, Status::Fail, "{v:?}");
        assert_eq!(v.ops, [id::ENCRYPT_EU_FAILED]);
        // A rule with nothing to count is undecided.
        records.retain(|r| !matches!(r, Record::Op(op) if op.id == id::ENCRYPT_EU_FAILED));
        let v = forge::run(&records, availability);
        assert_eq!(v.status, Status::Unknown, "{v:?}");
    }
}
