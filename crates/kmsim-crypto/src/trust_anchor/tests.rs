use std::sync::LazyLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::test_vectors as tv;
use crate::test_vectors::b64;
use crate::TransportKeyPair;

static ANCHOR: LazyLock<TrustAnchor> =
    LazyLock::new(|| TrustAnchor::generate(&mut StdRng::seed_from_u64(1)));
static REGION_KEY: LazyLock<TransportKeyPair> =
    LazyLock::new(|| TransportKeyPair::generate(&mut StdRng::seed_from_u64(2)));

fn certificate() -> TransportCertificate {
    ANCHOR.certify(
        "aws",
        "eu-west-1",
        &REGION_KEY.public_key_der(),
        &mut StdRng::seed_from_u64(3),
    )
}

#[test]
fn certify_and_verify() {
    let certificate = certificate();
    assert_eq!(certificate.partition, "aws");
    assert_eq!(certificate.region, "eu-west-1");
    assert_eq!(certificate.public_key_der, REGION_KEY.public_key_der());
    assert_eq!(certificate.signature[0], 0x30, "DER signature");
    assert_eq!(certificate.verify(&ANCHOR.public_key_der()), Ok(()));
    // Checked by hand while writing this: `signed_bytes()` and `signature` written to files pass
    // `openssl dgst -sha384 -verify anchor.der -keyform DER -signature sig.der signed.bin`.
}

#[test]
fn any_change_or_another_anchor_fails() {
    let certificate = certificate();
    let anchor = ANCHOR.public_key_der();
    let bad_signature = Err(CryptoError::InvalidCertificate {
        reason: "signature does not verify",
    });
    let other_key = TransportKeyPair::generate(&mut StdRng::seed_from_u64(9)).public_key_der();
    let changes: [fn(&mut TransportCertificate, &[u8]); 5] = [
        |c, _| c.partition = "aws-cn".to_string(),
        |c, _| c.region = "eu-west-2".to_string(),
        |c, other| c.public_key_der = other.to_vec(),
        |c, _| {
            let last = c.signature.len() - 1;
            c.signature[last] ^= 1;
        },
        // Moving bytes between fields changes the signed encoding.
        |c, _| {
            c.partition = "awse".to_string();
            c.region = "u-west-1".to_string();
        },
    ];
    for change in changes {
        let mut changed = certificate.clone();
        change(&mut changed, &other_key);
        assert_eq!(changed.verify(&anchor), bad_signature, "{changed:?}");
    }
    let other_anchor = TrustAnchor::generate(&mut StdRng::seed_from_u64(10));
    assert_eq!(
        certificate.verify(&other_anchor.public_key_der()),
        bad_signature
    );
    assert_eq!(
        certificate.verify(&b64(tv::P256_SPKI)),
        Err(CryptoError::KeySpecMismatch {
            expected: "ECC_NIST_P384",
            found: "ECC_NIST_P256".to_string()
        })
    );
    let mut garbage_signature = certificate.clone();
    garbage_signature.signature = vec![1, 2, 3];
    assert_eq!(garbage_signature.verify(&anchor), bad_signature);
}

#[test]
fn a_certificate_for_anything_but_a_p384_key_is_refused() {
    let mut rng = StdRng::seed_from_u64(4);
    for key in [b64(tv::P256_SPKI), b"junk".to_vec(), Vec::new()] {
        let certificate = ANCHOR.certify("aws", "us-east-1", &key, &mut rng);
        assert_eq!(
            certificate.verify(&ANCHOR.public_key_der()),
            Err(CryptoError::InvalidCertificate {
                reason: "certified key is no p-384 public key"
            })
        );
    }
}

#[test]
fn bytes_format_and_round_trip() {
    let certificate = certificate();
    let bytes = certificate.to_bytes();
    assert_eq!(bytes[0], 0x01);
    assert_eq!(&bytes[1..6], &[0, 3, b'a', b'w', b's']);
    assert_eq!(&bytes[6..17], b"\x00\x09eu-west-1");
    assert_eq!(
        TransportCertificate::from_bytes(&bytes),
        Ok(certificate.clone())
    );
    let malformed = Err(CryptoError::InvalidCertificate {
        reason: "malformed certificate",
    });
    let mut version_2 = bytes.clone();
    version_2[0] = 0x02;
    let mut trailing = bytes.clone();
    trailing.push(0);
    let mut not_utf8 = bytes.clone();
    not_utf8[3] = 0xff;
    for bad in [
        &[][..],
        &version_2,
        &trailing,
        &not_utf8,
        &bytes[..bytes.len() - 1],
    ] {
        assert_eq!(TransportCertificate::from_bytes(bad), malformed);
    }
}

#[test]
fn signed_bytes_are_the_documented_encoding() {
    let certificate = TransportCertificate {
        partition: "p".to_string(),
        region: "r1".to_string(),
        public_key_der: vec![0xaa],
        signature: vec![0xbb],
    };
    let mut expected = b"kmsim/transport-cert/v1".to_vec();
    expected.extend_from_slice(&[0, 1, b'p', 0, 2, b'r', b'1', 0, 1, 0xaa]);
    assert_eq!(certificate.signed_bytes(), expected);
}

#[test]
fn anchor_formats() {
    let der = ANCHOR.to_pkcs8_der();
    let back = TrustAnchor::from_pkcs8_der(der.expose()).expect("parses");
    assert_eq!(back.public_key_der(), ANCHOR.public_key_der());
    // A certificate made by the reloaded anchor verifies under the original public key.
    let certificate = back.certify(
        "aws",
        "ap-south-1",
        &REGION_KEY.public_key_der(),
        &mut StdRng::seed_from_u64(5),
    );
    assert_eq!(certificate.verify(&ANCHOR.public_key_der()), Ok(()));
    assert_eq!(
        TrustAnchor::from_pkcs8_der(&b64(tv::P521_PKCS8)).map(|_| ()),
        Err(CryptoError::KeySpecMismatch {
            expected: "ECC_NIST_P384",
            found: "ECC_NIST_P521".to_string()
        })
    );
    assert_eq!(format!("{:?}", *ANCHOR), "TrustAnchor(<redacted>)");
}

proptest! {
    #[test]
    fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        if let Ok(parsed) = TransportCertificate::from_bytes(&bytes) {
            // Whatever parses is canonical: it serializes back to the same bytes.
            prop_assert_eq!(parsed.to_bytes(), bytes);
        }
    }

    #[test]
    fn to_bytes_round_trips(
        partition in ".{0,12}",
        region in ".{0,16}",
        public_key_der in proptest::collection::vec(any::<u8>(), 0..130),
        signature in proptest::collection::vec(any::<u8>(), 0..110),
    ) {
        let certificate = TransportCertificate { partition, region, public_key_der, signature };
        prop_assert_eq!(TransportCertificate::from_bytes(&certificate.to_bytes()), Ok(certificate));
    }

    #[test]
    fn damaged_certificates_never_panic(at in any::<prop::sample::Index>(), bits in 1u8..=255) {
        let mut bytes = certificate().to_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= bits;
        if let Ok(parsed) = TransportCertificate::from_bytes(&bytes) {
            prop_assert!(parsed.verify(&ANCHOR.public_key_der()).is_err());
        }
    }
}
