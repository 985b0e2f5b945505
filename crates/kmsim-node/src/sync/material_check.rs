//! The receiver's check of delivered key material against the set's commitments
//! (docs/ARCHITECTURE.md, "The envelope"), done before anything is proposed.
//!
//! Every material version's KeyMaterialId is a commitment to it (`material_commitment`: SHA-256
//! over the key ID and the material), made where the material was created and carried in the
//! shared properties. A Region stores delivered material only if it matches the descriptor of
//! its version, and only if that descriptor is the one this Region already holds for the
//! version (a version's material never changes; the state machine enforces the same rule at
//! apply, against the state it commits to). So a certified Region, even one speaking as the
//! primary, cannot plant other material under an existing version.

use kmsim_core::ids::KeyId;
use kmsim_core::key::{Origin, SharedProps};
use kmsim_crypto::material_commitment;

use super::envelope::Bundle;

/// Checks delivered `bundle` against the `offered` shared properties and the ones this Region
/// `held` before. The error says what did not match (no material in it).
pub fn check_materials(
    key_id: &KeyId,
    held: Option<&SharedProps>,
    offered: &SharedProps,
    bundle: &Bundle,
) -> Result<(), String> {
    if offered.origin == Origin::External && !bundle.0.is_empty() {
        return Err(format!(
            "material of {key_id}, an EXTERNAL key, never travels between Regions"
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (version, raw) in &bundle.0 {
        if !seen.insert(*version) {
            return Err(format!("material version {version} of {key_id} sent twice"));
        }
        let info = offered.material(*version).ok_or_else(|| {
            format!("material version {version} of {key_id} is not described by the set")
        })?;
        if material_commitment(key_id.as_str(), raw) != info.key_material_id {
            return Err(format!(
                "material version {version} of {key_id} does not match its commitment {}",
                info.key_material_id
            ));
        }
    }
    // Imported material of a deleted pending version may come back under the same version
    // number with another id (the set describes it anew); generated material never does.
    if offered.origin != Origin::External {
        if let Some(held) = held {
            for info in &offered.materials {
                if let Some(mine) = held.material(info.version) {
                    if mine.key_material_id != info.key_material_id {
                        return Err(format!(
                            "material version {} of {key_id} is {} here, and cannot become {}",
                            info.version, mine.key_material_id, info.key_material_id
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kmsim_core::key::{KeySpec, KeyUsage, MaterialInfo, RotationConfig};

    use super::*;

    fn key_id() -> KeyId {
        KeyId::parse("mrk-1234abcd12ab34cd56ef1234567890ab").expect("valid")
    }

    fn props(origin: Origin, materials: &[(u32, &[u8])]) -> SharedProps {
        SharedProps {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin,
            mrk: None,
            materials: materials
                .iter()
                .map(|(version, raw)| MaterialInfo {
                    version: *version,
                    key_material_id: material_commitment(key_id().as_str(), raw),
                    created_ms: 0,
                    rotation: None,
                })
                .collect(),
            current_version: Some(0),
            public_key: None,
            rotation: RotationConfig::default(),
        }
    }

    fn bundle(materials: &[(u32, &[u8])]) -> Bundle {
        Bundle(materials.iter().map(|(v, m)| (*v, m.to_vec())).collect())
    }

    #[test]
    fn matching_material_is_taken() {
        let held = props(Origin::AwsKms, &[(0, b"zero")]);
        let offered = props(Origin::AwsKms, &[(0, b"zero"), (1, b"one")]);
        let ok = |held, b: &Bundle| check_materials(&key_id(), held, &offered, b);
        assert_eq!(
            ok(Some(&held), &bundle(&[(0, b"zero"), (1, b"one")])),
            Ok(())
        );
        assert_eq!(ok(None, &bundle(&[(1, b"one")])), Ok(()));
        assert_eq!(ok(Some(&held), &bundle(&[])), Ok(()));
    }

    #[test]
    fn other_material_is_refused() {
        let key = key_id();
        let held = props(Origin::AwsKms, &[(0, b"zero")]);
        let offered = props(Origin::AwsKms, &[(0, b"zero"), (1, b"one")]);
        // Other material under a genuine descriptor.
        let e = check_materials(&key, Some(&held), &offered, &bundle(&[(0, b"planted")]));
        assert!(e.is_err_and(|e| e.contains("does not match its commitment")));
        let e = check_materials(&key, None, &offered, &bundle(&[(1, b"planted")]));
        assert!(e.is_err_and(|e| e.contains("does not match its commitment")));
        // Other material with a descriptor to match it, for a version this Region holds.
        let planted = props(Origin::AwsKms, &[(0, b"planted")]);
        let e = check_materials(&key, Some(&held), &planted, &bundle(&[(0, b"planted")]));
        assert!(e.is_err_and(|e| e.contains("cannot become")));
        // Even without material: a held version's descriptor never changes.
        let e = check_materials(&key, Some(&held), &planted, &bundle(&[]));
        assert!(e.is_err_and(|e| e.contains("cannot become")));
        // Material for a version the set does not describe, or twice.
        let e = check_materials(&key, Some(&held), &offered, &bundle(&[(7, b"x")]));
        assert!(e.is_err_and(|e| e.contains("not described")));
        let e = check_materials(&key, None, &offered, &bundle(&[(0, b"zero"), (0, b"zero")]));
        assert!(e.is_err_and(|e| e.contains("sent twice")));
        // Material of another key (the commitment binds the key ID).
        let other = KeyId::parse("mrk-1234abcd12ab34cd56ef1234567890ac").expect("valid");
        assert!(check_materials(&other, None, &offered, &bundle(&[(0, b"zero")])).is_err());
    }

    #[test]
    fn external_keys_take_no_material_and_may_describe_a_version_anew() {
        let key = key_id();
        let held = props(Origin::External, &[(0, b"zero"), (1, b"deleted pending")]);
        let offered = props(Origin::External, &[(0, b"zero"), (1, b"imported anew")]);
        assert_eq!(
            check_materials(&key, Some(&held), &offered, &bundle(&[])),
            Ok(())
        );
        let e = check_materials(&key, Some(&held), &offered, &bundle(&[(0, b"zero")]));
        assert!(e.is_err_and(|e| e.contains("never travels")));
    }
}
