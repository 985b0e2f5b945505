//! `decrypt-everywhere`: every acknowledged ciphertext decrypts to its plaintext, and every
//! acknowledged signature and MAC verifies, in every Region that holds a related key.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{
    count, is_multi_region, is_pending_deletion, key_of, plural, Facts, Input, Status, Verdict,
};
use crate::history::{Call, Op, Outcome};

const NAME: &str = "decrypt-everywhere";

#[derive(Default)]
struct Trouble {
    missing: usize,
    errors: usize,
    wrong: usize,
}

/// What an acknowledged op made that other Regions must be able to use.
enum Made<'a> {
    /// A ciphertext of this plaintext digest (`None`: its plaintext cannot be told).
    Ciphertext(Option<&'a str>),
    /// A signature or a MAC.
    Signed,
}

/// The plaintext digest of the ciphertext each acknowledged Encrypt, GenerateDataKey and
/// ReEncrypt made: Encrypt's request, GenerateDataKey's reply, and for ReEncrypt that of the
/// ciphertext it re-encrypted (followed through chains of ReEncrypts).
fn plaintexts<'a>(ops: &[&'a Op]) -> HashMap<u64, Option<&'a str>> {
    let mut direct: HashMap<u64, Option<&'a str>> = HashMap::new();
    let mut sources: HashMap<u64, u64> = HashMap::new();
    for op in ops {
        let Outcome::Ok { reply } = &op.outcome else {
            continue;
        };
        match &op.call {
            Call::Encrypt { plaintext, .. } => {
                direct.insert(op.id, Some(plaintext.as_str()));
            }
            Call::GenerateDataKey { .. } => {
                direct.insert(op.id, reply.plaintext.as_deref());
            }
            Call::ReEncrypt { of, .. } => {
                sources.insert(op.id, *of);
            }
            _ => {}
        }
    }
    let mut out = direct.clone();
    for (id, first) in &sources {
        let mut of = *first;
        // A chain is at most as long as the ReEncrypts; a loop (a forged history) ends unknown.
        let mut found = None;
        for _ in 0..=sources.len() {
            if let Some(p) = direct.get(&of) {
                found = *p;
                break;
            }
            match sources.get(&of) {
                Some(next) => of = *next,
                None => break,
            }
        }
        out.insert(*id, found);
    }
    out
}

/// Checks that every acknowledged Encrypt, GenerateDataKey and ReEncrypt has, in each Region
/// that should decrypt its ciphertext, a Decrypt observation that gave back its plaintext's
/// digest; and that every acknowledged Sign and GenerateMac has, in each Region that should
/// verify it, a Verify observation without an error.
///
/// The Regions that should: the Region of the op's key, and for a multi-Region key also
/// every Region whose Key observation shows a related key; a Region whose key is pending
/// deletion is left out (it refuses by design). A missing observation, an error or a wrong
/// digest fails.
pub fn decrypt_everywhere(input: &Input) -> Verdict {
    let f = Facts::new(input.records);
    let expected_plaintext = plaintexts(&f.ops);
    let (mut ciphertexts, mut signed) = (0usize, 0usize);
    let (mut decrypts, mut verifies) = (0usize, 0usize);
    let mut unresolved = Vec::new();
    let mut regions = BTreeSet::new();
    let mut trouble: BTreeMap<&str, Trouble> = BTreeMap::new();
    let mut bad = Vec::new();
    for op in &f.ops {
        if !op.ok() {
            continue;
        }
        let made = match &op.call {
            Call::Encrypt { .. } | Call::GenerateDataKey { .. } | Call::ReEncrypt { .. } => {
                Made::Ciphertext(expected_plaintext.get(&op.id).copied().flatten())
            }
            Call::Sign { .. } | Call::GenerateMac { .. } => Made::Signed,
            _ => continue,
        };
        let key = key_of(op);
        let (Some((home, key_id)), false) = (key, matches!(made, Made::Ciphertext(None))) else {
            unresolved.push(op.id);
            continue;
        };
        match made {
            Made::Ciphertext(_) => ciphertexts += 1,
            Made::Signed => signed += 1,
        }
        let pending = |region: &str| {
            f.view(key_id, region)
                .is_some_and(|v| is_pending_deletion(&v.state))
        };
        let mut expected: BTreeSet<&str> = BTreeSet::new();
        if !pending(home) {
            expected.insert(home);
        }
        if is_multi_region(key_id) {
            for (region, obs) in f.observations(key_id) {
                if obs.view.is_some_and(|v| !is_pending_deletion(&v.state)) {
                    expected.insert(region);
                }
            }
        }
        for region in expected {
            regions.insert(region);
            let t = match made {
                Made::Ciphertext(plaintext) => {
                    decrypts += 1;
                    match f.decrypts.get(&(op.id, region)) {
                        None => &mut trouble.entry(region).or_default().missing,
                        Some(d) if d.error.is_some() => {
                            &mut trouble.entry(region).or_default().errors
                        }
                        Some(d) if d.plaintext != plaintext => {
                            &mut trouble.entry(region).or_default().wrong
                        }
                        Some(_) => continue,
                    }
                }
                Made::Signed => {
                    verifies += 1;
                    match f.verifies.get(&(op.id, region)) {
                        None => &mut trouble.entry(region).or_default().missing,
                        Some(Some(_)) => &mut trouble.entry(region).or_default().errors,
                        Some(None) => continue,
                    }
                }
            };
            *t += 1;
            bad.push(op.id);
        }
    }
    let checked = if signed == 0 {
        format!(
            "{}, {}: {}",
            plural(ciphertexts, "ciphertext"),
            plural(regions.len(), "Region"),
            plural(decrypts, "decrypt")
        )
    } else {
        format!(
            "{} and {}, {}: {} and {}",
            plural(ciphertexts, "ciphertext"),
            plural(signed, "signed message"),
            plural(regions.len(), "Region"),
            plural(decrypts, "decrypt"),
            plural(verifies, "verification")
        )
    };
    if bad.is_empty() && unresolved.is_empty() {
        return Verdict::new(
            NAME,
            Status::Pass,
            format!("{checked}, all correct"),
            Vec::new(),
        );
    }
    let mut parts: Vec<String> = trouble
        .iter()
        .map(|(region, t)| {
            let mut what = Vec::new();
            if t.errors > 0 {
                what.push(plural(t.errors, "error"));
            }
            if t.missing > 0 {
                what.push(format!("{} missing", count(t.missing)));
            }
            if t.wrong > 0 {
                what.push(plural(t.wrong, "wrong plaintext"));
            }
            format!("{region} {}", what.join(", "))
        })
        .collect();
    if !unresolved.is_empty() {
        parts.push(format!(
            "{} with no key ARN or no known plaintext",
            plural(unresolved.len(), "op")
        ));
    }
    bad.extend(unresolved);
    Verdict::new(
        NAME,
        Status::Fail,
        format!(
            "{checked}, {} wrong: {}",
            count(bad.len()),
            parts.join("; ")
        ),
        bad,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::forge::{self, id, AP, EU};
    use crate::history::{Observation, Record};

    #[test]
    fn the_good_history_decrypts_everywhere() {
        let v = forge::run(&forge::good(), decrypt_everywhere);
        assert_eq!(v.status, Status::Pass, "{v:?}");
        assert_eq!(
            v.summary,
            "3 ciphertexts, 3 Regions: 7 decrypts, all correct"
        );
    }

    #[test]
    fn an_error_in_a_replica_region_fails_and_names_it() {
        let mut records = forge::good();
        for r in &mut records {
            if let Record::Observation(Observation::Decrypt {
                region,
                of,
                plaintext,
                error,
            }) = r
            {
                if region == AP && *of == id::ENCRYPT_US {
                    *plaintext = None;
                    *error = Some("KMSInvalidStateException".into());
                }
            }
        }
        let v = forge::run(&records, decrypt_everywhere);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.ops, [id::ENCRYPT_US]);
        assert!(
            v.summary.contains("ap-southeast-2 1 error"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_missing_or_wrong_decrypt_fails() {
        let mut records = forge::good();
        records.retain(|r| {
            !matches!(r, Record::Observation(Observation::Decrypt { region, of, .. })
                if region == EU && *of == id::ENCRYPT_SINGLE)
        });
        for r in &mut records {
            if let Record::Observation(Observation::Decrypt {
                region,
                of,
                plaintext,
                ..
            }) = r
            {
                if region == EU && *of == id::ENCRYPT_EU_IN_FAULT {
                    *plaintext = Some("p-other".into());
                }
            }
        }
        let v = forge::run(&records, decrypt_everywhere);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.ops, [id::ENCRYPT_SINGLE, id::ENCRYPT_EU_IN_FAULT]);
        assert!(
            v.summary.contains("eu-west-1 1 missing, 1 wrong plaintext"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_region_pending_deletion_is_not_expected_to_decrypt() {
        let mut records = forge::good();
        if let Some(v) = forge::view_mut(&mut records, forge::MRK, AP) {
            v.state = "PendingDeletion".into();
        }
        records.retain(|r| {
            !matches!(r, Record::Observation(Observation::Decrypt { region, .. }) if region == AP)
        });
        let v = forge::run(&records, decrypt_everywhere);
        assert_eq!(v.status, Status::Pass, "{v:?}");
        assert!(v.summary.contains("5 decrypts"), "{}", v.summary);
    }
}
