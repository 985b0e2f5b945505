//! `decrypt-everywhere`: every acknowledged ciphertext decrypts to its plaintext in every
//! Region that holds a related key.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    count, is_multi_region, is_pending_deletion, key_of, plural, Facts, Input, Status, Verdict,
};
use crate::history::Call;

const NAME: &str = "decrypt-everywhere";

#[derive(Default)]
struct Trouble {
    missing: usize,
    errors: usize,
    wrong: usize,
}

/// Checks that every acknowledged Encrypt has, in each Region that should decrypt it, a
/// Decrypt observation that gave back its plaintext's digest.
///
/// The Regions that should decrypt it: the Region of the Encrypt's key, and for a multi-Region
/// key also every Region whose Key observation shows a related key; a Region whose key is
/// pending deletion is left out (it refuses to decrypt by design). A missing observation, an
/// error or a wrong digest fails.
pub fn decrypt_everywhere(input: &Input) -> Verdict {
    let f = Facts::new(input.records);
    let mut ciphertexts = 0usize;
    let mut decrypts = 0usize;
    let mut unresolved = Vec::new();
    let mut regions = BTreeSet::new();
    let mut trouble: BTreeMap<&str, Trouble> = BTreeMap::new();
    let mut bad = Vec::new();
    for op in &f.ops {
        let Call::Encrypt { plaintext, .. } = &op.call else {
            continue;
        };
        if !op.ok() {
            continue;
        }
        let Some((home, key_id)) = key_of(op) else {
            unresolved.push(op.id);
            continue;
        };
        ciphertexts += 1;
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
            decrypts += 1;
            regions.insert(region);
            let t = match f.decrypts.get(&(op.id, region)) {
                None => &mut trouble.entry(region).or_default().missing,
                Some(d) if d.error.is_some() => &mut trouble.entry(region).or_default().errors,
                Some(d) if d.plaintext != Some(plaintext.as_str()) => {
                    &mut trouble.entry(region).or_default().wrong
                }
                Some(_) => continue,
            };
            *t += 1;
            bad.push(op.id);
        }
    }
    let checked = format!(
        "{}, {}: {}",
        plural(ciphertexts, "ciphertext"),
        plural(regions.len(), "Region"),
        plural(decrypts, "decrypt")
    );
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
            "{} with no key ARN",
            plural(unresolved.len(), "Encrypt")
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
