//! The checkers on a forged primary hand-over under a partition, with the workload's other
//! operations: an UpdatePrimaryRegion with no answer while us-east-1 is cut off from
//! eu-west-1, its repeat refused once the hand-over completed, the old primary `Updating`
//! meanwhile, a rotation at the new primary, and signatures, data keys and re-encryptions
//! checked in every Region holding a related key.

use crate::check::forge::{self, arn, failed, ok, ok_key, unknown, view, Forge, AP, EU, US};
use crate::check::{run_all, Input, Status, Verdict};
use crate::history::{Call, Micros, Observation, Outcome, Phase, Record, Reply};
use crate::schedule::Schedule;

const MRK: &str = "mrk-h";
const SIG: &str = "mrk-sig";
const SINGLE: &str = "single-eu";

/// The ids of the operations the tests spoil.
struct Ids {
    promote: u64,
    sign: u64,
    re_encrypt: u64,
    data_key: u64,
    rotate_eu: u64,
}

fn s(x: f64) -> Micros {
    (x * 1e6) as Micros
}

fn refused(code: &str, message: &str) -> Outcome {
    Outcome::Failed {
        code: code.into(),
        message: message.into(),
    }
}

fn history() -> (Vec<Record>, Ids) {
    use Phase::{Heal, Observe, Setup, Workload};
    let mut f = Forge::default();
    f.phase(Setup, 0);
    let create = |spec: &str| Call::CreateKey {
        multi_region: true,
        spec: spec.into(),
    };
    f.op(
        Setup,
        US,
        (100, 200),
        create("SYMMETRIC_DEFAULT"),
        ok_key(US, MRK),
    );
    f.op(
        Setup,
        US,
        (210, 300),
        create("ECC_NIST_P256"),
        ok_key(US, SIG),
    );
    for (key, to, t) in [(MRK, EU, 400), (MRK, AP, 500), (SIG, EU, 600)] {
        let call = Call::ReplicateKey {
            key: arn(US, key),
            replica_region: to.into(),
        };
        f.op(Setup, US, (t, t + 50), call, ok_key(to, key));
    }
    let single = Call::CreateKey {
        multi_region: false,
        spec: "SYMMETRIC_DEFAULT".into(),
    };
    f.op(Setup, EU, (700, 800), single, ok_key(EU, SINGLE));
    f.phase(Workload, s(1.0));
    let encrypt = |region: &str, p: &str| Call::Encrypt {
        key: arn(region, MRK),
        plaintext: p.into(),
    };
    let e1 = f.op(
        Workload,
        US,
        (s(2.0), s(2.1)),
        encrypt(US, "p1"),
        ok_key(US, MRK),
    );
    let signature = ok(Reply {
        key: Some(arn(US, SIG)),
        signature: Some("c2ln".into()),
        ..Reply::default()
    });
    let sign = Call::Sign {
        key: arn(US, SIG),
        message: "m1".into(),
    };
    let sign = f.op(Workload, US, (s(3.0), s(3.1)), sign, signature);
    let gdk = ok(Reply {
        key: Some(arn(EU, MRK)),
        ciphertext: Some("Z2Rr".into()),
        plaintext: Some("p-gdk".into()),
        ..Reply::default()
    });
    let data_key = Call::GenerateDataKey { key: arn(EU, MRK) };
    let data_key = f.op(Workload, EU, (s(4.0), s(4.1)), data_key, gdk);
    // The partition (forged experiment: eu-west-1 | us-east-1 from 11 s to 31 s).
    let promote = Call::UpdatePrimaryRegion {
        key: arn(US, MRK),
        primary_region: EU.into(),
    };
    let first = f.op(Workload, US, (s(12.0), s(14.0)), promote.clone(), unknown());
    let describe = Call::DescribeKey { key: arn(US, MRK) };
    let updating = ok(Reply {
        key: Some(arn(US, MRK)),
        state: Some("Updating".into()),
        ..Reply::default()
    });
    f.op(Workload, US, (s(13.0), s(13.1)), describe, updating);
    let e2 = f.op(
        Workload,
        US,
        (s(13.5), s(13.6)),
        encrypt(US, "p2"),
        ok_key(US, MRK),
    );
    let e3 = f.op(
        Workload,
        EU,
        (s(15.0), s(15.1)),
        encrypt(EU, "p3"),
        ok_key(EU, MRK),
    );
    let rotate = |region: &str| Call::RotateKeyOnDemand {
        key: arn(region, MRK),
    };
    let is_updating = refused(
        "KMSInvalidStateException",
        "arn:aws:kms:us-east-1:111122223333:key/mrk-h is updating.",
    );
    f.op(Workload, US, (s(16.0), s(16.1)), rotate(US), is_updating);
    let not_primary = refused(
        "UnsupportedOperationException",
        "arn:aws:kms:us-east-1:111122223333:key/mrk-h is not a multi-region primary key.",
    );
    f.op(Workload, US, (s(33.0), s(33.2)), promote, not_primary);
    let rotate_eu = f.op(
        Workload,
        EU,
        (s(34.0), s(34.1)),
        rotate(EU),
        ok_key(EU, MRK),
    );
    let re_encrypt = Call::ReEncrypt {
        key: arn(EU, SINGLE),
        of: e1,
    };
    let reencrypted = ok(Reply {
        key: Some(arn(EU, SINGLE)),
        ciphertext: Some("cmU=".into()),
        ..Reply::default()
    });
    let re_encrypt = f.op(Workload, EU, (s(35.0), s(35.1)), re_encrypt, reencrypted);
    f.op(
        Workload,
        EU,
        (s(36.0), s(36.1)),
        encrypt(EU, "p4"),
        failed(),
    );
    f.phase(Heal, forge::HEAL);
    f.phase(Observe, s(62.0));
    let at = s(63.0);
    for region in [US, EU, AP] {
        let role = if region == EU { "PRIMARY" } else { "REPLICA" };
        let mut v = view("Enabled", Some(role), Some(EU), &[AP, US]);
        v.rotations = Some(1);
        f.key(region, MRK, at, Some(v));
        let role = if region == US { "PRIMARY" } else { "REPLICA" };
        let v = (region != AP).then(|| view("Enabled", Some(role), Some(US), &[EU]));
        f.key(region, SIG, at, v);
        let v = (region == EU).then(|| view("Enabled", None, None, &[]));
        f.key(region, SINGLE, at, v);
    }
    for region in [US, EU, AP] {
        for (of, p) in [(e1, "p1"), (e2, "p2"), (e3, "p3"), (data_key, "p-gdk")] {
            f.decrypt(region, of, p);
        }
    }
    f.decrypt(EU, re_encrypt, "p1");
    for region in [US, EU] {
        f.records.push(Record::Observation(Observation::Verify {
            region: region.into(),
            of: sign,
            error: None,
        }));
    }
    let ids = Ids {
        promote: first,
        sign,
        re_encrypt,
        data_key,
        rotate_eu,
    };
    (f.records, ids)
}

fn verdicts(records: &[Record]) -> Vec<Verdict> {
    let e = forge::experiment();
    let schedule = Schedule::expand(&e, 1);
    run_all(&Input {
        experiment: &e,
        schedule: &schedule,
        records,
    })
}

fn status(v: &[Verdict], checker: &str) -> Verdict {
    v.iter()
        .find(|x| x.checker == checker)
        .cloned()
        .expect("every checker runs")
}

#[test]
fn a_hand_over_under_a_partition_passes_every_checker() {
    let (records, _) = history();
    let v = verdicts(&records);
    for x in &v {
        assert_eq!(x.status, Status::Pass, "{x:?}");
    }
    assert_eq!(
        status(&v, "decrypt-everywhere").summary,
        "5 ciphertexts and 1 signed message, 3 Regions: 13 decrypts and 2 verifications, all correct"
    );
    assert!(
        status(&v, "linearizable-keys")
            .summary
            .starts_with("3 keys, "),
        "{v:?}"
    );
}

#[test]
fn two_primaries_at_once_still_fail() {
    // After the hand-over the old primary still acts as one: a rotation acknowledged in
    // us-east-1 after eu-west-1's, and us-east-1 still saying PRIMARY after the heal.
    let (mut records, ids) = history();
    let mut f = Forge::default();
    let rotate = Call::RotateKeyOnDemand { key: arn(US, MRK) };
    f.op(
        Phase::Workload,
        US,
        (s(40.0), s(40.1)),
        rotate,
        ok_key(US, MRK),
    );
    let mut late = f.records.remove(0);
    if let Record::Op(op) = &mut late {
        op.id = 1000;
    }
    let heal = records
        .iter()
        .position(|r| {
            matches!(
                r,
                Record::Phase {
                    phase: Phase::Heal,
                    ..
                }
            )
        })
        .expect("a heal");
    records.insert(heal, late);
    if let Some(v) = forge::view_mut(&mut records, MRK, US) {
        v.multi_region_type = Some("PRIMARY".into());
    }
    let v = verdicts(&records);
    let primary = status(&v, "single-primary");
    assert_eq!(primary.status, Status::Fail, "{primary:?}");
    assert!(
        primary
            .summary
            .contains("mrk-h PRIMARY in eu-west-1 and us-east-1"),
        "{}",
        primary.summary
    );
    let linear = status(&v, "linearizable-keys");
    assert_eq!(linear.status, Status::Fail, "{linear:?}");
    assert!(linear.summary.contains("mrk-h"), "{}", linear.summary);
    assert!(
        linear.ops.contains(&1000) || linear.ops.contains(&ids.rotate_eu),
        "{linear:?}"
    );

    // Without the unanswered hand-over the rotation in eu-west-1 could not have happened.
    let (mut records, ids) = history();
    records.retain(|r| !matches!(r, Record::Op(op) if op.id == ids.promote));
    let linear = status(&verdicts(&records), "linearizable-keys");
    assert_eq!(linear.status, Status::Fail, "{linear:?}");
}

#[test]
fn a_signature_or_a_re_encryption_that_does_not_hold_elsewhere_fails() {
    let (mut records, ids) = history();
    for r in &mut records {
        match r {
            Record::Observation(Observation::Verify { region, of, error })
                if region == EU && *of == ids.sign =>
            {
                *error = Some("KMSInvalidSignatureException".into());
            }
            Record::Observation(Observation::Decrypt { of, plaintext, .. })
                if *of == ids.re_encrypt =>
            {
                *plaintext = Some("p2".into());
            }
            _ => {}
        }
    }
    records.retain(|r| {
        !matches!(r, Record::Observation(Observation::Decrypt { region, of, .. })
            if region == AP && *of == ids.data_key)
    });
    let v = status(&verdicts(&records), "decrypt-everywhere");
    assert_eq!(v.status, Status::Fail);
    assert_eq!(v.ops, [ids.sign, ids.data_key, ids.re_encrypt]);
    assert!(
        v.summary
            .contains("ap-southeast-2 1 missing; eu-west-1 1 error, 1 wrong plaintext"),
        "{}",
        v.summary
    );
}
