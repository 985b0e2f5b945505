use std::sync::LazyLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::test_vectors as tv;
use crate::test_vectors::b64;

const AAD: TransportAad<'static> = TransportAad {
    key_id: "mrk-1234abcd12ab34cd56ef1234567890ab",
    source: "us-east-1",
    destination: "eu-west-1",
    version: 3,
    context: b"\x08\x01\x12\x04sync",
};

/// Source, destination and a third Region's key pairs.
static PAIRS: LazyLock<[TransportKeyPair; 3]> = LazyLock::new(|| {
    let mut rng = StdRng::seed_from_u64(384);
    [
        TransportKeyPair::generate(&mut rng),
        TransportKeyPair::generate(&mut rng),
        TransportKeyPair::generate(&mut rng),
    ]
});

fn seal(secret: &[u8], aad: &TransportAad<'_>, rng: &mut StdRng) -> Vec<u8> {
    let [source, destination, _] = &*PAIRS;
    seal_transport(source, &destination.public_key_der(), aad, secret, rng).expect("seals")
}

fn open(sealed: &[u8], aad: &TransportAad<'_>) -> Result<SecretBytes, CryptoError> {
    let [source, destination, _] = &*PAIRS;
    open_transport(destination, &source.public_key_der(), aad, sealed)
}

#[test]
fn round_trip_and_layout() {
    let mut rng = StdRng::seed_from_u64(1);
    for secret in [&[][..], &[0x42; 32][..], &[7u8; 4096][..]] {
        let sealed = seal(secret, &AAD, &mut rng);
        assert_eq!(sealed.len(), 1 + 32 + 12 + secret.len() + 16);
        assert_eq!(sealed[0], 0x01);
        assert_eq!(open(&sealed, &AAD).expect("opens").expose(), secret);
    }
    let a = seal(&[1; 32], &AAD, &mut rng);
    let b = seal(&[1; 32], &AAD, &mut rng);
    assert_ne!(a[1..45], b[1..45], "fresh salt and nonce every time");
}

#[test]
fn other_keys_do_not_open() {
    let mut rng = StdRng::seed_from_u64(2);
    let [source, destination, third] = &*PAIRS;
    let sealed = seal(b"material", &AAD, &mut rng);
    let failed = Err(CryptoError::TransportOpenFailed);
    // Another recipient, and the right recipient believing another sender.
    assert_eq!(
        open_transport(third, &source.public_key_der(), &AAD, &sealed).map(|_| ()),
        failed
    );
    assert_eq!(
        open_transport(destination, &third.public_key_der(), &AAD, &sealed).map(|_| ()),
        failed
    );
    // The sender cannot open its own message as if it had been sent the other way.
    let reversed = TransportAad {
        source: AAD.destination,
        destination: AAD.source,
        ..AAD
    };
    assert_eq!(
        open_transport(source, &destination.public_key_der(), &reversed, &sealed).map(|_| ()),
        failed
    );
    // Keys that are no P-384 SPKI are refused before any decryption.
    assert_eq!(
        open_transport(destination, &b64(tv::P256_SPKI), &AAD, &sealed).map(|_| ()),
        Err(CryptoError::KeySpecMismatch {
            expected: "ECC_NIST_P384",
            found: "ECC_NIST_P256".to_string()
        })
    );
    assert_eq!(
        seal_transport(source, b"junk", &AAD, b"m", &mut rng).map(|_| ()),
        Err(CryptoError::InvalidPublicKey)
    );
}

#[test]
fn every_changed_aad_field_fails() {
    let mut rng = StdRng::seed_from_u64(3);
    let sealed = seal(b"material", &AAD, &mut rng);
    let others = [
        TransportAad {
            key_id: "mrk-1234abcd12ab34cd56ef1234567890ac",
            ..AAD
        },
        TransportAad {
            source: "us-east-2",
            ..AAD
        },
        TransportAad {
            destination: "eu-west-2",
            ..AAD
        },
        TransportAad { version: 4, ..AAD },
        TransportAad {
            context: b"\x08\x01\x12\x04synd",
            ..AAD
        },
        TransportAad {
            context: b"",
            ..AAD
        },
        // Bytes moved across a field boundary.
        TransportAad {
            source: "us-east-1e",
            destination: "u-west-1",
            ..AAD
        },
    ];
    for other in others {
        assert_eq!(
            open(&sealed, &other).map(|_| ()),
            Err(CryptoError::TransportOpenFailed),
            "{other:?}"
        );
    }
}

#[test]
fn every_byte_flip_and_truncation_fails() {
    let mut rng = StdRng::seed_from_u64(4);
    let sealed = seal(&[9; 16], &AAD, &mut rng);
    for i in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x01;
        assert_eq!(
            open(&tampered, &AAD).map(|_| ()),
            Err(CryptoError::TransportOpenFailed),
            "byte {i}"
        );
    }
    for len in [0, 1, 44, 45, 60, sealed.len() - 1] {
        assert_eq!(
            open(&sealed[..len], &AAD).map(|_| ()),
            Err(CryptoError::TransportOpenFailed)
        );
    }
    let mut extended = sealed.clone();
    extended.push(0);
    assert!(open(&extended, &AAD).is_err());
}

#[test]
fn a_blob_sealed_by_cryptography_opens() {
    let recipient =
        TransportKeyPair::from_pkcs8_der(&b64(tv::TRANSPORT_RECIPIENT_PKCS8)).expect("parses");
    let aad = TransportAad {
        key_id: "mrk-1234abcd12ab34cd56ef1234567890ab",
        source: "us-east-1",
        destination: "eu-west-1",
        version: 7,
        context: b"ctx",
    };
    let sealed = b64(tv::TRANSPORT_SEALED);
    let sender = b64(tv::TRANSPORT_SENDER_SPKI);
    let opened = open_transport(&recipient, &sender, &aad, &sealed).expect("opens");
    assert_eq!(opened.expose(), b"material sealed by python");
    // And the other way: our seals were opened by the same few lines of Python while writing
    // this (ECDH, HKDF-SHA-384 with the salt and info, AESGCM with the encoded associated data).
    let other = TransportAad { version: 8, ..aad };
    assert!(open_transport(&recipient, &sender, &other, &sealed).is_err());
}

#[test]
fn known_encodings() {
    let aad = TransportAad {
        key_id: "k",
        source: "s",
        destination: "dd",
        version: 0x0102_0304_0506_0708,
        context: b"c",
    };
    let mut expected = b"kmsim/transport/v1".to_vec();
    expected.extend_from_slice(&[0, 1, b'k', 0, 1, b's', 0, 2, b'd', b'd']);
    expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, b'c']);
    assert_eq!(aad.encode(), expected);
    let mut info = b"kmsim/transport/v1".to_vec();
    info.extend_from_slice(&[0, 1, b's', 0, 2, b'd', b'd']);
    assert_eq!(aad.kdf_info(), info);
}

#[test]
fn key_pair_formats() {
    let [pair, ..] = &*PAIRS;
    let der = pair.to_pkcs8_der();
    let back = TransportKeyPair::from_pkcs8_der(der.expose()).expect("parses");
    assert_eq!(back.public_key_der(), pair.public_key_der());
    assert_eq!(
        TransportKeyPair::from_pkcs8_der(&b64(tv::P256_PKCS8)).map(|_| ()),
        Err(CryptoError::KeySpecMismatch {
            expected: "ECC_NIST_P384",
            found: "ECC_NIST_P256".to_string()
        })
    );
    assert_eq!(
        TransportKeyPair::from_pkcs8_der(b"").map(|_| ()),
        Err(CryptoError::InvalidPrivateKey)
    );
    // An openssl P-384 key is a transport key too, and its SPKI is openssl's.
    let openssl = TransportKeyPair::from_pkcs8_der(&b64(tv::P384_PKCS8)).expect("parses");
    assert_eq!(openssl.public_key_der(), b64(tv::P384_SPKI));
    assert_eq!(format!("{pair:?}"), "TransportKeyPair(<redacted>)");
}

fn aad_strategy() -> impl Strategy<Value = (String, String, String, u64, Vec<u8>)> {
    (
        "[a-z0-9-]{0,12}",
        "[a-z0-9-]{0,10}",
        "[a-z0-9-]{0,10}",
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..24),
    )
}

proptest! {
    // Each case does several P-384 ECDH operations; 32 cases keep the suite fast while the
    // exhaustive flip test above covers every position of one message.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn seal_open_round_trip_and_single_changes_fail(
        secret in proptest::collection::vec(any::<u8>(), 0..96),
        (key_id, source, destination, version, context) in aad_strategy(),
        flip_at in any::<prop::sample::Index>(),
        flip_bits in 1u8..=255,
        field in 0usize..5,
        seed in any::<u64>(),
    ) {
        let aad = TransportAad {
            key_id: &key_id,
            source: &source,
            destination: &destination,
            version,
            context: &context,
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let sealed = seal(&secret, &aad, &mut rng);
        let opened = open(&sealed, &aad).expect("opens");
        prop_assert_eq!(opened.expose(), &secret[..]);

        let mut tampered = sealed.clone();
        tampered[flip_at.index(sealed.len())] ^= flip_bits;
        prop_assert_eq!(open(&tampered, &aad).map(|_| ()), Err(CryptoError::TransportOpenFailed));

        let longer_id = format!("{key_id}x");
        let longer_source = format!("{source}x");
        let longer_destination = format!("{destination}x");
        let longer_context = [&context[..], b"x"].concat();
        let changed = match field {
            0 => TransportAad { key_id: &longer_id, ..aad },
            1 => TransportAad { source: &longer_source, ..aad },
            2 => TransportAad { destination: &longer_destination, ..aad },
            3 => TransportAad { version: version.wrapping_add(1), ..aad },
            _ => TransportAad { context: &longer_context, ..aad },
        };
        prop_assert_eq!(open(&sealed, &changed).map(|_| ()), Err(CryptoError::TransportOpenFailed));
    }

    #[test]
    fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        prop_assert!(open(&bytes, &AAD).is_err());
    }
}
