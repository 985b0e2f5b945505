//! Forged histories for the checkers' tests: one good run, which every checker passes, and
//! helpers to spoil it.

use crate::check::{Input, Verdict};
use crate::history::{Call, KeyView, Micros, Observation, Op, Outcome, Phase, Record, Reply};
use crate::schedule::Schedule;
use crate::spec::Experiment;

pub const US: &str = "us-east-1";
pub const EU: &str = "eu-west-1";
pub const AP: &str = "ap-southeast-2";
pub const MRK: &str = "mrk-a";
pub const SINGLE: &str = "1234abcd";
pub const DOOMED: &str = "5678ef01";
pub const HEAL: Micros = 61_000_000;

/// Ids of the good history's operations.
pub mod id {
    pub const CREATE_MRK: u64 = 1;
    pub const REPLICATE_EU: u64 = 2;
    pub const REPLICATE_AP: u64 = 3;
    pub const CREATE_SINGLE: u64 = 4;
    pub const ENCRYPT_US: u64 = 6;
    pub const ENCRYPT_SINGLE: u64 = 7;
    pub const ALIAS_EU: u64 = 8;
    pub const ROTATE: u64 = 9;
    pub const PROMOTE_EU: u64 = 10;
    pub const DESCRIBE_EU: u64 = 11;
    pub const ENCRYPT_EU_IN_FAULT: u64 = 13;
    pub const ENCRYPT_EU_FAILED: u64 = 14;
    pub const SCHEDULE_DOOMED: u64 = 15;
    pub const CREATE_UNKNOWN: u64 = 16;
}

pub const EXPERIMENT: &str = r#"
version = 1
name = "forged"
[cluster]
regions = ["us-east-1", "eu-west-1", "ap-southeast-2"]
[workload]
duration = "60s"
rate = "100/s"
mix = { encrypt = 1 }
[[fault]]
action = "partition"
from = "eu-west-1"
to = "us-east-1"
at = "10s"
for = "20s"
[checks]
convergence = "15s"
[[checks.availability]]
region = "eu-west-1"
operations = ["Encrypt"]
min_success = 0.5
during = "faults"
"#;

pub fn arn(region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:111122223333:key/{key_id}")
}

pub fn ok(reply: Reply) -> Outcome {
    Outcome::Ok { reply }
}

pub fn ok_key(region: &str, key_id: &str) -> Outcome {
    ok(Reply {
        key: Some(arn(region, key_id)),
        ..Reply::default()
    })
}

pub fn failed() -> Outcome {
    Outcome::Failed {
        code: "KMSInternalException".into(),
        message: "forged".into(),
    }
}

pub fn unknown() -> Outcome {
    Outcome::Unknown {
        reason: "timed out".into(),
    }
}

pub fn view(state: &str, role: Option<&str>, primary: Option<&str>, replicas: &[&str]) -> KeyView {
    KeyView {
        state: state.into(),
        multi_region_type: role.map(str::to_string),
        primary_region: primary.map(str::to_string),
        replica_regions: replicas.iter().map(|r| r.to_string()).collect(),
        aliases: Vec::new(),
        rotations: None,
    }
}

/// A history under construction.
#[derive(Default)]
pub struct Forge {
    pub records: Vec<Record>,
    next: u64,
}

impl Forge {
    pub fn phase(&mut self, phase: Phase, at: Micros) {
        self.records.push(Record::Phase { phase, at });
    }

    pub fn op(
        &mut self,
        phase: Phase,
        region: &str,
        (start, end): (Micros, Micros),
        call: Call,
        outcome: Outcome,
    ) -> u64 {
        self.next += 1;
        self.records.push(Record::Op(Op {
            id: self.next,
            client: 0,
            phase,
            region: region.into(),
            node: None,
            due: start,
            start,
            end,
            call,
            outcome,
        }));
        self.next
    }

    pub fn key(&mut self, region: &str, key_id: &str, at: Micros, view: Option<KeyView>) {
        self.records.push(Record::Observation(Observation::Key {
            region: region.into(),
            key_id: key_id.into(),
            at,
            view,
        }));
    }

    pub fn decrypt(&mut self, region: &str, of: u64, plaintext: &str) {
        self.records.push(Record::Observation(Observation::Decrypt {
            region: region.into(),
            of,
            plaintext: Some(plaintext.into()),
            error: None,
        }));
    }
}

/// A run of three Regions: a multi-Region key made in us-east-1, replicated to the two
/// others, aliased, rotated and promoted to eu-west-1; a single-Region key in eu-west-1; one
/// in us-east-1 scheduled for deletion; encrypts (one unknown), one failed call in the fault
/// window, and the observations after the heal that all of this should give.
pub fn good() -> Vec<Record> {
    use Phase::{Heal, Observe, Setup, Workload};
    let mut f = Forge::default();
    let s = |x: f64| (x * 1e6) as Micros;
    f.phase(Setup, 0);
    let create = |multi_region| Call::CreateKey {
        multi_region,
        spec: "SYMMETRIC_DEFAULT".into(),
    };
    f.op(Setup, US, (100, 200), create(true), ok_key(US, MRK));
    for (to, t) in [(EU, 300), (AP, 500)] {
        let call = Call::ReplicateKey {
            key: arn(US, MRK),
            replica_region: to.into(),
        };
        f.op(Setup, US, (t, t + 100), call, ok_key(to, MRK));
    }
    f.op(Setup, EU, (700, 800), create(false), ok_key(EU, SINGLE));
    f.op(Setup, US, (900, 950), create(false), ok_key(US, DOOMED));
    f.phase(Workload, s(1.0));
    let encrypt = |region: &str, key: &str, p: &str| Call::Encrypt {
        key: arn(region, key),
        plaintext: p.into(),
    };
    let e = f.op(
        Workload,
        US,
        (s(2.0), s(2.1)),
        encrypt(US, MRK, "p-us"),
        ok_key(US, MRK),
    );
    assert_eq!(e, id::ENCRYPT_US);
    let single = encrypt(EU, SINGLE, "p-single");
    f.op(Workload, EU, (s(2.2), s(2.3)), single, ok_key(EU, SINGLE));
    let alias = Call::CreateAlias {
        alias: "alias/a".into(),
        key: arn(EU, MRK),
    };
    f.op(Workload, EU, (s(3.0), s(3.1)), alias, ok(Reply::default()));
    let rotate = Call::RotateKeyOnDemand { key: arn(US, MRK) };
    f.op(Workload, US, (s(4.0), s(4.1)), rotate, ok_key(US, MRK));
    let promote = Call::UpdatePrimaryRegion {
        key: arn(US, MRK),
        primary_region: EU.into(),
    };
    f.op(
        Workload,
        US,
        (s(5.0), s(5.5)),
        promote,
        ok(Reply::default()),
    );
    let describe = Call::DescribeKey { key: arn(EU, MRK) };
    let enabled = ok(Reply {
        key: Some(arn(EU, MRK)),
        state: Some("Enabled".into()),
        ..Reply::default()
    });
    f.op(Workload, EU, (s(6.0), s(6.1)), describe, enabled);
    f.op(
        Workload,
        AP,
        (s(12.0), s(14.0)),
        encrypt(AP, MRK, "p-ap"),
        unknown(),
    );
    let in_fault = f.op(
        Workload,
        EU,
        (s(15.0), s(15.1)),
        encrypt(EU, MRK, "p-eu"),
        ok_key(EU, MRK),
    );
    assert_eq!(in_fault, id::ENCRYPT_EU_IN_FAULT);
    f.op(Workload, EU, (s(16.0), s(16.1)), single_again(), failed());
    let schedule = Call::ScheduleKeyDeletion {
        key: arn(US, DOOMED),
        days: 7,
    };
    let pending = ok(Reply {
        key: Some(arn(US, DOOMED)),
        state: Some("PendingDeletion".into()),
        ..Reply::default()
    });
    f.op(Workload, US, (s(35.0), s(35.2)), schedule, pending);
    let last = f.op(Workload, EU, (s(36.0), s(46.0)), create(true), unknown());
    assert_eq!(last, id::CREATE_UNKNOWN);
    f.phase(Heal, HEAL);
    f.phase(Observe, s(62.0));
    let at = s(63.0);
    let replicas = [AP, US];
    for region in [US, EU, AP] {
        let role = if region == EU { "PRIMARY" } else { "REPLICA" };
        let mut v = view("Enabled", Some(role), Some(EU), &replicas);
        v.rotations = Some(1);
        if region == EU {
            v.aliases = vec!["alias/a".into()];
        }
        f.key(region, MRK, at, Some(v));
    }
    for region in [US, EU, AP] {
        let v = (region == EU).then(|| view("Enabled", None, None, &[]));
        f.key(region, SINGLE, at, v);
        let v = (region == US).then(|| view("PendingDeletion", None, None, &[]));
        f.key(region, DOOMED, at, v);
    }
    for region in [US, EU, AP] {
        f.decrypt(region, id::ENCRYPT_US, "p-us");
        f.decrypt(region, id::ENCRYPT_EU_IN_FAULT, "p-eu");
    }
    f.decrypt(EU, id::ENCRYPT_SINGLE, "p-single");
    f.records
}

fn single_again() -> Call {
    Call::Encrypt {
        key: arn(EU, SINGLE),
        plaintext: "p-again".into(),
    }
}

pub fn experiment() -> Experiment {
    Experiment::parse(EXPERIMENT, false).expect("the forged experiment is valid")
}

/// Runs `checker` on `records` with the forged experiment.
pub fn run(records: &[Record], checker: fn(&Input) -> Verdict) -> Verdict {
    let e = experiment();
    let schedule = Schedule::expand(&e, 1);
    checker(&Input {
        experiment: &e,
        schedule: &schedule,
        records,
    })
}

/// The operation `id` of `records`, to spoil.
pub fn op_mut(records: &mut [Record], id: u64) -> &mut Op {
    records
        .iter_mut()
        .find_map(|r| match r {
            Record::Op(op) if op.id == id => Some(op),
            _ => None,
        })
        .expect("the forged history has this op")
}

/// The view `region` gave of `key_id`, to spoil.
pub fn view_mut<'a>(
    records: &'a mut [Record],
    key_id: &str,
    region: &str,
) -> &'a mut Option<KeyView> {
    records
        .iter_mut()
        .find_map(|r| match r {
            Record::Observation(Observation::Key {
                region: r,
                key_id: k,
                view,
                ..
            }) if r == region && k == key_id => Some(view),
            _ => None,
        })
        .expect("the forged history has this observation")
}

#[test]
fn every_checker_passes_the_good_history() {
    let e = experiment();
    let schedule = Schedule::expand(&e, 1);
    let records = good();
    let verdicts = crate::check::run_all(&Input {
        experiment: &e,
        schedule: &schedule,
        records: &records,
    });
    assert_eq!(verdicts.len(), 6);
    for v in &verdicts {
        assert_eq!(v.status, crate::check::Status::Pass, "{v:?}");
        assert!(v.ops.is_empty(), "{v:?}");
    }
    assert!(crate::check::all_passed(&verdicts));
}
