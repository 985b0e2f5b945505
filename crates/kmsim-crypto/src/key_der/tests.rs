use std::sync::LazyLock;

use pkcs8::der::Encode;
use proptest::prelude::*;

use crate::test_vectors as tv;
use crate::test_vectors::{b64, openssl_key, openssl_keys};
use crate::SigningAlgorithm as Alg;
use crate::{AsymmetricSpec as Spec, CryptoError, Message, PrivateKey, PublicKey};

#[test]
fn openssl_traditional_forms_are_accepted() {
    let p256 = PrivateKey::from_pkcs8_der(Spec::EccNistP256, &b64(tv::P256_SEC1)).expect("SEC1");
    assert_eq!(p256.public_key_der(), b64(tv::P256_SPKI));
    let rsa = PrivateKey::from_pkcs8_der(Spec::Rsa2048, &b64(tv::RSA_2048_PKCS1)).expect("PKCS#1");
    assert_eq!(rsa.public_key_der(), b64(tv::RSA_2048_SPKI));
    // A bare SEC1 key is checked against the spec like any other.
    assert_eq!(
        PrivateKey::from_pkcs8_der(Spec::EccSecgP256k1, &b64(tv::P256_SEC1)).map(|_| ()),
        Err(CryptoError::KeySpecMismatch {
            expected: "ECC_SECG_P256K1",
            found: "ECC_NIST_P256".to_string()
        })
    );
}

/// PKCS#8 around a SEC1 key that repeats the curve inside (as Java writes it), naming `inner`.
fn pkcs8_with_inner_curve(der: &[u8], inner: pkcs8::ObjectIdentifier) -> Vec<u8> {
    let info = pkcs8::PrivateKeyInfo::try_from(der).expect("PKCS#8");
    let mut sec1 = sec1::EcPrivateKey::try_from(info.private_key).expect("SEC1");
    sec1.parameters = Some(sec1::EcParameters::NamedCurve(inner));
    let sec1 = sec1.to_der().expect("encodes");
    pkcs8::PrivateKeyInfo::new(info.algorithm, &sec1)
        .to_der()
        .expect("encodes")
}

#[test]
fn inner_sec1_curve_must_agree_with_the_outer_one() {
    use elliptic_curve::pkcs8::AssociatedOid;
    let der = b64(tv::P384_PKCS8);
    let same = pkcs8_with_inner_curve(&der, p384::NistP384::OID);
    let key = PrivateKey::from_pkcs8_der(Spec::EccNistP384, &same).expect("parses");
    assert_eq!(key.public_key_der(), b64(tv::P384_SPKI));
    let contradicting = pkcs8_with_inner_curve(&der, p256::NistP256::OID);
    assert_eq!(
        PrivateKey::from_pkcs8_der(Spec::EccNistP384, &contradicting).map(|_| ()),
        Err(CryptoError::InvalidPrivateKey)
    );
}

#[test]
fn keys_of_another_spec_are_a_mismatch_not_garbage() {
    for (actual, der, spki) in &openssl_keys() {
        for expected in Spec::ALL.iter().filter(|s| *s != actual) {
            let mismatch = Err(CryptoError::KeySpecMismatch {
                expected: expected.wire_name(),
                found: actual.wire_name().to_string(),
            });
            assert_eq!(
                PrivateKey::from_pkcs8_der(*expected, der).map(|_| ()),
                mismatch
            );
            assert_eq!(
                PublicKey::from_spki_der(*expected, spki).map(|_| ()),
                mismatch
            );
        }
    }
    assert_eq!(
        PrivateKey::from_pkcs8_der(Spec::EccNistP256, &b64(tv::ED25519_PKCS8)).map(|_| ()),
        Err(CryptoError::KeySpecMismatch {
            expected: "ECC_NIST_P256",
            found: "ECC_NIST_EDWARDS25519".to_string()
        })
    );
}

#[test]
fn garbage_and_damaged_keys_are_invalid() {
    let der = b64(tv::P256_PKCS8);
    let spki = b64(tv::P256_SPKI);
    for bytes in [&[][..], &[0u8; 40][..], &der[..der.len() - 1], b"not a key"] {
        assert_eq!(
            PrivateKey::from_pkcs8_der(Spec::EccNistP256, bytes).map(|_| ()),
            Err(CryptoError::InvalidPrivateKey)
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(PrivateKey::from_pkcs8_der(Spec::EccNistP256, &trailing).is_err());
    // The embedded public key must belong to the secret.
    let mut wrong_public = der.clone();
    let last = wrong_public.len() - 1;
    wrong_public[last] ^= 1;
    assert_eq!(
        PrivateKey::from_pkcs8_der(Spec::EccNistP256, &wrong_public).map(|_| ()),
        Err(CryptoError::InvalidPrivateKey)
    );
    // A point off the curve, a truncated SPKI, nothing at all.
    let mut off_curve = spki.clone();
    let last = off_curve.len() - 1;
    off_curve[last] ^= 1;
    for bytes in [&off_curve[..], &spki[..spki.len() - 1], &[][..]] {
        assert_eq!(
            PublicKey::from_spki_der(Spec::EccNistP256, bytes).map(|_| ()),
            Err(CryptoError::InvalidPublicKey)
        );
    }
}

/// The DER the damage test starts from: the small keys (RSA-2048 PKCS#8 and PKCS#1, every EC
/// form, every SPKI kind, Ed25519).
static DAMAGE_SOURCES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    [
        tv::RSA_2048_PKCS8,
        tv::RSA_2048_PKCS1,
        tv::RSA_2048_SPKI,
        tv::P256_PKCS8,
        tv::P256_SEC1,
        tv::P256_SPKI,
        tv::P521_PKCS8,
        tv::K256_SPKI,
        tv::ED25519_PKCS8,
    ]
    .into_iter()
    .map(b64)
    .collect()
});

/// Valid DER of every key type above, with one byte changed or cut off.
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    (
        0..DAMAGE_SOURCES.len(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(which, at, byte, truncate)| {
            let mut der = DAMAGE_SOURCES[which].clone();
            let i = at.index(der.len());
            if truncate {
                der.truncate(i);
            } else {
                der[i] ^= byte.max(1);
            }
            der
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn from_pkcs8_der_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        spec in prop::sample::select(Spec::ALL),
    ) {
        prop_assert!(PrivateKey::from_pkcs8_der(spec, &bytes).is_err());
    }

    #[test]
    fn from_spki_der_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        spec in prop::sample::select(Spec::ALL),
    ) {
        prop_assert!(PublicKey::from_spki_der(spec, &bytes).is_err());
    }

    #[test]
    fn damaged_keys_never_panic(der in damaged(), spec in prop::sample::select(Spec::ALL)) {
        let _ = PrivateKey::from_pkcs8_der(spec, &der);
        let _ = PublicKey::from_spki_der(spec, &der);
    }

    #[test]
    fn verify_never_panics_on_arbitrary_signatures(
        signature in proptest::collection::vec(any::<u8>(), 0..140),
        which in 0usize..4,
    ) {
        let (spec, alg) = [
            (Spec::EccNistP256, Alg::EcdsaSha256),
            (Spec::EccNistP521, Alg::EcdsaSha512),
            (Spec::EccSecgP256k1, Alg::EcdsaSha256),
            (Spec::Rsa2048, Alg::RsassaPssSha256),
        ][which];
        let public = openssl_key(spec).public_key();
        prop_assert_eq!(public.verify(alg, Message::Raw(b"m"), &signature), Ok(false));
    }
}
