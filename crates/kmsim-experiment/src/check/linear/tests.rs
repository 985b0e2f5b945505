use proptest::prelude::*;

use super::*;
use crate::check::forge::{self, arn, id, Forge, EU, MRK, US};
use crate::history::{KeyView, Phase, Record, Reply};

#[test]
fn the_good_history_is_linearizable() {
    let v = forge::run(&forge::good(), linearizable_keys);
    assert_eq!(v.status, Status::Pass, "{v:?}");
    assert_eq!(
        v.summary,
        "3 keys, 9 management ops (model: primary, holders, deletion): all linearizable"
    );
}

fn rotate_at(records: &mut Vec<Record>, region: &str, (start, end): (Micros, Micros)) -> u64 {
    let mut f = Forge::default();
    let call = Call::RotateKeyOnDemand {
        key: arn(region, MRK),
    };
    f.op(
        Phase::Workload,
        region,
        (start, end),
        call,
        forge::ok_key(region, MRK),
    );
    let Some(Record::Op(mut op)) = f.records.pop() else {
        panic!("forged an op")
    };
    op.id = 1000 + records.len() as u64;
    let id = op.id;
    records.push(Record::Op(op));
    id
}

#[test]
fn a_rotation_by_the_old_primary_after_a_promotion_is_not_linearizable() {
    // us-east-1 was primary until the promotion ended at 5.5 s: a rotation it acknowledged
    // from 7 s on means two Regions acted as primary.
    let mut records = forge::good();
    let late = rotate_at(&mut records, US, (7_000_000, 7_100_000));
    let v = forge::run(&records, linearizable_keys);
    assert_eq!(v.status, Status::Fail, "{v:?}");
    assert!(
        v.summary.ends_with("1 key not linearizable: mrk-a"),
        "{}",
        v.summary
    );
    assert!(v.ops.contains(&late), "{v:?}");
    // Overlapping the promotion, it may have come first.
    let mut records = forge::good();
    rotate_at(&mut records, US, (5_400_000, 7_100_000));
    assert_eq!(forge::run(&records, linearizable_keys).status, Status::Pass);
    // By the new primary, after it, it is fine as well.
    let mut records = forge::good();
    rotate_at(&mut records, EU, (7_000_000, 7_100_000));
    assert_eq!(forge::run(&records, linearizable_keys).status, Status::Pass);
}

#[test]
fn a_second_deletion_or_a_read_of_an_unwritten_state_is_not_linearizable() {
    let mut records = forge::good();
    let mut again = forge::op_mut(&mut records, id::SCHEDULE_DOOMED).clone();
    again.id = 500;
    again.start += 1_000_000;
    again.end += 1_000_000;
    records.push(Record::Op(again));
    let v = forge::run(&records, linearizable_keys);
    assert_eq!(v.status, Status::Fail, "{v:?}");
    assert!(v.ops.contains(&500), "{v:?}");
    // A DescribeKey seeing a deletion nobody asked for.
    let mut records = forge::good();
    let op = forge::op_mut(&mut records, id::DESCRIBE_EU);
    op.outcome = forge::ok(Reply {
        state: Some("PendingDeletion".into()),
        ..Reply::default()
    });
    let v = forge::run(&records, linearizable_keys);
    assert_eq!(v.status, Status::Fail, "{v:?}");
    assert_eq!(v.ops, [id::DESCRIBE_EU]);
}

#[test]
fn an_unknown_call_may_or_may_not_have_happened() {
    // The promotion unknown: the observed primary eu-west-1 needs it to have happened.
    let mut records = forge::good();
    forge::op_mut(&mut records, id::PROMOTE_EU).outcome = forge::unknown();
    assert_eq!(forge::run(&records, linearizable_keys).status, Status::Pass);
    // And if the Regions say us-east-1 is still primary, that it did not.
    for region in [US, EU, forge::AP] {
        if let Some(v) = forge::view_mut(&mut records, MRK, region) {
            v.primary_region = Some(US.into());
        }
    }
    assert_eq!(forge::run(&records, linearizable_keys).status, Status::Pass);
    // Acknowledged, it must have.
    forge::op_mut(&mut records, id::PROMOTE_EU).outcome = forge::ok(Reply::default());
    let v = forge::run(&records, linearizable_keys);
    assert_eq!(v.status, Status::Fail, "{v:?}");
    // Only the observations are left to place: the key's acknowledged writes are blamed.
    assert_eq!(
        v.ops,
        [
            id::CREATE_MRK,
            id::REPLICATE_EU,
            id::REPLICATE_AP,
            id::ROTATE,
            id::PROMOTE_EU
        ]
    );
}

#[test]
fn out_of_budget_is_unknown_not_a_failure() {
    let e = forge::experiment();
    let schedule = crate::schedule::Schedule::expand(&e, 1);
    let records = forge::good();
    let input = Input {
        experiment: &e,
        schedule: &schedule,
        records: &records,
    };
    let v = linearizable_keys_with_budget(&input, 2);
    assert_eq!(v.status, Status::Unknown, "{v:?}");
    assert!(
        v.summary
            .contains("3 keys out of the budget of 2 steps (1234abcd, 5678ef01, mrk-a)"),
        "{}",
        v.summary
    );
}

const REGIONS: [&str; 3] = [US, EU, forge::AP];

/// A history made from a sequential run of the model on one multi-Region key, with every
/// call's interval drawn around its moment, so overlapping its neighbours: some calls
/// unknown (taking effect or not), refused ones recorded as failed, and the observations the
/// final state gives.
fn sequential(steps: &[(u8, u8, u8, u8, u16, u16)]) -> Vec<Record> {
    let mut f = Forge::default();
    let create = Call::CreateKey {
        multi_region: true,
        spec: "SYMMETRIC_DEFAULT".into(),
    };
    f.op(Phase::Setup, US, (0, 1), create, forge::ok_key(US, MRK));
    let mut state = State::EMPTY
        .apply(Act::Create { at: 0 })
        .expect("a first create succeeds");
    for (i, &(kind, at, to, fate, before, after)) in steps.iter().enumerate() {
        let t = 100_000 + 10_000 * i as Micros;
        let (at, to) = (at % 3, to % 3);
        let (r, key) = (REGIONS[at as usize], arn(REGIONS[at as usize], MRK));
        let (call, act) = match kind % 5 {
            0 => (
                Call::ReplicateKey {
                    key,
                    replica_region: REGIONS[to as usize].into(),
                },
                Act::Replicate { at, to },
            ),
            1 => (
                Call::UpdatePrimaryRegion {
                    key,
                    primary_region: REGIONS[to as usize].into(),
                },
                Act::Promote { at, to },
            ),
            2 => (Call::RotateKeyOnDemand { key }, Act::Rotate { at }),
            3 if fate % 7 == 0 => (
                Call::ScheduleKeyDeletion { key, days: 7 },
                Act::Schedule { at },
            ),
            _ => (
                Call::DescribeKey { key },
                Act::Describe { at, pending: None },
            ),
        };
        let span = (t - Micros::from(before), t + Micros::from(after));
        let next = state.apply(act);
        let outcome = match (next, fate % 4) {
            (_, 0) => forge::unknown(),
            (Some(s), 1) => {
                state = s;
                forge::unknown()
            }
            (Some(s), _) => {
                state = s;
                let pending = state.pending & bit(at) != 0;
                forge::ok(Reply {
                    state: Some(
                        if pending {
                            "PendingDeletion"
                        } else {
                            "Enabled"
                        }
                        .into(),
                    ),
                    ..Reply::default()
                })
            }
            (None, _) => forge::failed(),
        };
        f.op(Phase::Workload, r, span, call, outcome);
    }
    let primary = REGIONS[state.primary as usize];
    for (i, region) in REGIONS.iter().enumerate() {
        let view = (state.holders & bit(i as u8) != 0).then(|| KeyView {
            state: if state.pending & bit(i as u8) != 0 {
                "PendingDeletion".into()
            } else {
                "Enabled".into()
            },
            multi_region_type: Some(
                if *region == primary {
                    "PRIMARY"
                } else {
                    "REPLICA"
                }
                .into(),
            ),
            primary_region: Some(primary.into()),
            ..KeyView::default()
        });
        f.key(region, MRK, 10_000_000, view);
    }
    f.records
}

fn steps() -> impl Strategy<Value = Vec<(u8, u8, u8, u8, u16, u16)>> {
    proptest::collection::vec(
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            0u16..40_000,
            0u16..40_000,
        ),
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn histories_of_a_sequential_run_are_linearizable(steps in steps()) {
        let records = sequential(&steps);
        let v = forge::run(&records, linearizable_keys);
        prop_assert_eq!(v.status, Status::Pass, "{:?}", v);
    }

    #[test]
    fn a_read_of_a_never_written_primary_is_not_linearizable(steps in steps()) {
        let mut records = sequential(&steps);
        for r in &mut records {
            if let Record::Observation(crate::history::Observation::Key { view: Some(v), .. }) = r {
                v.primary_region = Some("sa-east-1".into());
            }
        }
        let v = forge::run(&records, linearizable_keys);
        prop_assert_eq!(v.status, Status::Fail, "{:?}", v);
    }
}

#[test]
fn a_long_history_is_decided_within_the_budget() {
    // 3,000 calls (those the model refuses recorded as failed), each overlapping its
    // neighbours on either side.
    let steps: Vec<_> = (0..3000u32)
        .map(|i| {
            let x = i.wrapping_mul(2_654_435_761);
            let b = |s: u32| (x >> s) as u8;
            (
                b(0),
                b(8),
                b(16),
                b(24),
                25_000 + (i % 7) as u16 * 2000,
                25_000,
            )
        })
        .collect();
    let records = sequential(&steps);
    let v = forge::run(&records, linearizable_keys);
    assert_eq!(v.status, Status::Pass, "{v:?}");
    let kept = records
        .iter()
        .filter(|r| match r {
            // Refused calls took no effect; an unknown read says nothing.
            Record::Op(op) => match op.call {
                Call::DescribeKey { .. } => op.ok(),
                _ => !matches!(op.outcome, Outcome::Failed { .. }),
            },
            _ => false,
        })
        .count();
    assert!(kept > 500, "most calls are kept: {kept}");
    let head = format!("1 key, {} management ops", crate::check::count(kept));
    assert!(v.summary.starts_with(&head), "{}", v.summary);
}

#[test]
fn a_key_pending_deletion_may_be_gone_only_where_a_fault_moved_the_clock_a_week_ahead() {
    let mut records = forge::good();
    *forge::view_mut(&mut records, forge::DOOMED, US) = None;
    assert_eq!(forge::run(&records, linearizable_keys).status, Status::Fail);
    let check = |fault: &str| {
        let text = format!("{}\n[[fault]]\n{fault}", forge::EXPERIMENT);
        let e = crate::spec::Experiment::parse(&text, false).expect("valid");
        let schedule = crate::schedule::Schedule::expand(&e, 1);
        linearizable_keys(&Input {
            experiment: &e,
            schedule: &schedule,
            records: &records,
        })
        .status
    };
    let jump = "action = \"clock-jump\"\nregion = \"us-east-1\"\nby = \"8d\"\nat = \"40s\"";
    assert_eq!(check(jump), Status::Pass);
    assert_eq!(check(&jump.replace("8d", "6d")), Status::Fail);
    assert_eq!(check(&jump.replace("us-east-1", "eu-west-1")), Status::Fail);
}
