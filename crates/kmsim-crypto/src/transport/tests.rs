use std::sync::LazyLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::session_key::SessionKeyClaim;
use crate::test_vectors as tv;
use crate::test_vectors::b64;

const AAD: TransportAad<'static> = TransportAad {
    key_id: "mrk-1234abcd12ab34cd56ef1234567890ab",
    source: "us-east-1",
    destination: "eu-west-1",
    version: 3,
    context: b"\x08\x01\x12\x04sync",
};

/// The static keys of the source, the destination and a third Region.
static STATIC: LazyLock<[TransportKeyPair; 3]> = LazyLock::new(|| {
    let mut rng = StdRng::seed_from_u64(384);
    [
        TransportKeyPair::generate(&mut rng),
        TransportKeyPair::generate(&mut rng),
        TransportKeyPair::generate(&mut rng),
    ]
});

/// The destination node's current session key.
static SESSION: LazyLock<SessionKeyPair> =
    LazyLock::new(|| SessionKeyPair::generate(&mut StdRng::seed_from_u64(385)));

fn seal(secret: &[u8], aad: &TransportAad<'_>, rng: &mut StdRng) -> (Vec<u8>, AnswerKey) {
    let [source, ..] = &*STATIC;
    seal_request(source, SESSION.public_key_der(), aad, secret, rng).expect("seals")
}

fn open(sealed: &[u8], aad: &TransportAad<'_>) -> Result<OpenedRequest, CryptoError> {
    let [source, ..] = &*STATIC;
    open_request(&SESSION, &source.public_key_der(), aad, sealed)
}

/// The answer to an opened request, with the answering Region as source.
fn answer_aad(context: &'static [u8]) -> TransportAad<'static> {
    TransportAad {
        source: AAD.destination,
        destination: AAD.source,
        context,
        ..AAD
    }
}

#[test]
fn round_trip_layout_and_answer() {
    let mut rng = StdRng::seed_from_u64(1);
    for secret in [&[][..], &[0x42; 32][..], &[7u8; 4096][..]] {
        let (sealed, sender_answer_key) = seal(secret, &AAD, &mut rng);
        assert_eq!(sealed[0], 0x02);
        assert_eq!(request_session_id(&sealed), Some(SESSION.id()));
        let opened = open(&sealed, &AAD).expect("opens");
        assert_eq!(opened.secret.expose(), secret);
        assert_eq!(&sealed[3 + 120..3 + 120 + 32], &opened.challenge[..]);
        // Both sides derived the same answer key.
        let answer = answer_aad(b"applied");
        let tag = opened.answer_key.seal_answer(&answer);
        assert_eq!(tag.len(), 1 + 48);
        assert_eq!(sender_answer_key.open_answer(&answer, &tag), Ok(()));
    }
    let (a, _) = seal(&[1; 32], &AAD, &mut rng);
    let (b, _) = seal(&[1; 32], &AAD, &mut rng);
    assert_ne!(
        a[..3 + 120 + 32],
        b[..3 + 120 + 32],
        "fresh ephemeral key and challenge"
    );
    assert_eq!(
        format!("{:?}", open(&a, &AAD).expect("opens")),
        "OpenedRequest(<redacted>)"
    );
}

#[test]
fn other_keys_do_not_open() {
    let mut rng = StdRng::seed_from_u64(2);
    let [source, destination, third] = &*STATIC;
    let (sealed, _) = seal(b"material", &AAD, &mut rng);
    let failed = Err(CryptoError::TransportOpenFailed);
    // Another session key (another node, or the next one of the same node).
    let other = SessionKeyPair::generate(&mut rng);
    assert_eq!(
        open_request(&other, &source.public_key_der(), &AAD, &sealed).map(|_| ()),
        failed
    );
    // The right session key believing another sender: the signature names the real one.
    for wrong in [destination, third] {
        assert_eq!(
            open_request(&SESSION, &wrong.public_key_der(), &AAD, &sealed).map(|_| ()),
            failed
        );
    }
    // Keys that are no P-384 SPKI are refused before any decryption.
    assert_eq!(
        open_request(&SESSION, &b64(tv::P256_SPKI), &AAD, &sealed).map(|_| ()),
        Err(CryptoError::KeySpecMismatch {
            expected: "ECC_NIST_P384",
            found: "ECC_NIST_P256".to_string()
        })
    );
    assert_eq!(
        seal_request(source, b"junk", &AAD, b"m", &mut rng).map(|_| ()),
        Err(CryptoError::InvalidPublicKey)
    );
}

#[test]
fn a_request_sealed_to_a_rotated_out_session_key_cannot_be_opened() {
    let mut rng = StdRng::seed_from_u64(5);
    let [source, ..] = &*STATIC;
    let old = SessionKeyPair::generate(&mut rng);
    let (sealed, _) =
        seal_request(source, old.public_key_der(), &AAD, b"material", &mut rng).expect("seals");
    assert!(open_request(&old, &source.public_key_der(), &AAD, &sealed).is_ok());
    // Rotation: the node drops (and so wipes) the old pair and makes a new one. What remains —
    // both Regions' static keys, the new session key, the recorded request — opens nothing.
    drop(old);
    let new = SessionKeyPair::generate(&mut rng);
    assert_eq!(
        request_session_id(&sealed).map(|id| id == new.id()),
        Some(false)
    );
    assert_eq!(
        open_request(&new, &source.public_key_der(), &AAD, &sealed).map(|_| ()),
        Err(CryptoError::TransportOpenFailed)
    );
    // Nor does the session ID alone help: a pair claiming the old ID but holding another
    // scalar fails the seal (the transcript binds the whole session public key).
    let mut tampered = sealed.clone();
    let at = 3 + 120 + 32;
    tampered[at..at + SESSION_KEY_ID_LEN].copy_from_slice(&new.id());
    assert!(open_request(&new, &source.public_key_der(), &AAD, &tampered).is_err());
}

#[test]
fn a_holder_of_the_recipients_keys_cannot_impersonate_the_sender() {
    // Key-compromise impersonation: the attacker holds the recipient Region's static key, the
    // recipient node's session key pair and the sender's (public) certificate, and tries to
    // make a request the recipient takes as the sender's.
    let mut rng = StdRng::seed_from_u64(6);
    let [source, destination, _] = &*STATIC;
    let sender_public = source.public_key_der();
    let failed = Err(CryptoError::TransportOpenFailed);
    // 1. Seal it with the key it holds, naming the sender as source: the sender's signature is
    //    missing, so it fails, although the attacker can compute every ECDH secret involved.
    let (forged, _) = seal_request(
        destination,
        SESSION.public_key_der(),
        &AAD,
        b"planted",
        &mut rng,
    )
    .expect("seals");
    assert_eq!(
        open_request(&SESSION, &sender_public, &AAD, &forged).map(|_| ()),
        failed
    );
    // 2. Take a genuine request and change its message or its secret, re-encrypting the secret
    //    under the keys it can derive with the session private key: the signature covers the
    //    transcript and the ciphertext, so both fail.
    let (genuine, _) = seal(b"material", &AAD, &mut rng);
    let other_message = TransportAad {
        context: b"planted message",
        ..AAD
    };
    assert_eq!(open(&genuine, &other_message).map(|_| ()), failed);
    let parsed = SealedRequest::parse(&genuine).expect("parses");
    let ephemeral = p384_point(parsed.ephemeral_public).expect("point");
    let z = SESSION.agree(&ephemeral);
    let transcript = AAD.transcript(
        SESSION.public_key_der(),
        parsed.ephemeral_public,
        parsed.challenge,
    );
    let hash = Sha384::digest(&transcript);
    let (request_key, _) = derive_keys(z.expose(), parsed.challenge, &hash);
    let nonce: [u8; NONCE_LEN] = parsed.nonce.try_into().expect("12 bytes");
    let mut ciphertext = Vec::new();
    seal_appending(
        &request_key,
        &nonce,
        &transcript,
        b"planted",
        &mut ciphertext,
    )
    .expect("seals");
    let rebuilt = SealedRequest {
        ciphertext: &ciphertext,
        ..SealedRequest::parse(&genuine).expect("parses")
    };
    assert_eq!(open(&rebuilt.to_bytes(), &AAD).map(|_| ()), failed);
    // ...while the same construction with the genuine ciphertext is the genuine request, so
    // the attack above failed only because of the signature.
    assert_eq!(
        open(&parsed.to_bytes(), &AAD)
            .expect("opens")
            .secret
            .expose(),
        b"material"
    );
    // 3. Re-sign a genuine ciphertext as another certified Region (the attacker's own) and name
    //    that Region as source: the keys derive from a transcript naming the real source.
    let as_other = TransportAad {
        source: "eu-west-1",
        ..AAD
    };
    let signed = SealedRequest::signed_bytes(
        &Sha384::digest(as_other.transcript(
            SESSION.public_key_der(),
            parsed.ephemeral_public,
            parsed.challenge,
        )),
        parsed.nonce,
        parsed.ciphertext,
    );
    let signature = destination.sign(&signed, &mut rng);
    let resigned = SealedRequest {
        signature: &signature,
        ..SealedRequest::parse(&genuine).expect("parses")
    };
    assert_eq!(
        open_request(
            &SESSION,
            &destination.public_key_der(),
            &as_other,
            &resigned.to_bytes()
        )
        .map(|_| ()),
        failed
    );
}

#[test]
fn an_answer_counts_only_for_the_request_it_answers() {
    let mut rng = StdRng::seed_from_u64(7);
    let (first, first_key) = seal(b"", &AAD, &mut rng);
    let (second, second_key) = seal(b"", &AAD, &mut rng);
    let answer = answer_aad(b"applied");
    let recorded = open(&first, &AAD)
        .expect("opens")
        .answer_key
        .seal_answer(&answer);
    assert_eq!(first_key.open_answer(&answer, &recorded), Ok(()));
    // The same answer, replayed to the next request with the same key, stamp and message.
    assert_eq!(
        second_key.open_answer(&answer, &recorded),
        Err(CryptoError::TransportOpenFailed)
    );
    let fresh = open(&second, &AAD)
        .expect("opens")
        .answer_key
        .seal_answer(&answer);
    assert_eq!(second_key.open_answer(&answer, &fresh), Ok(()));
    // Any other field, byte or length fails.
    let others = [
        answer_aad(b"refused"),
        TransportAad {
            version: 4,
            ..answer
        },
        TransportAad {
            key_id: "mrk-1234abcd12ab34cd56ef1234567890ac",
            ..answer
        },
        TransportAad {
            source: AAD.source,
            destination: AAD.destination,
            ..answer
        },
    ];
    for other in others {
        assert!(
            first_key.open_answer(&other, &recorded).is_err(),
            "{other:?}"
        );
    }
    for i in 0..recorded.len() {
        let mut t = recorded.clone();
        t[i] ^= 1;
        assert!(first_key.open_answer(&answer, &t).is_err(), "byte {i}");
    }
    assert!(first_key.open_answer(&answer, &recorded[..48]).is_err());
    assert!(first_key
        .open_answer(&answer, &[recorded.clone(), vec![0]].concat())
        .is_err());
    assert_eq!(format!("{first_key:?}"), "AnswerKey(<redacted>)");
}

#[test]
fn every_changed_aad_field_fails() {
    let mut rng = StdRng::seed_from_u64(3);
    let (sealed, _) = seal(b"material", &AAD, &mut rng);
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
    let (sealed, _) = seal(&[9; 16], &AAD, &mut rng);
    for i in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x01;
        assert!(open(&tampered, &AAD).is_err(), "byte {i}");
    }
    for len in 0..sealed.len() {
        assert!(open(&sealed[..len], &AAD).is_err(), "length {len}");
    }
    let mut extended = sealed.clone();
    extended.push(0);
    assert!(open(&extended, &AAD).is_err());
}

#[test]
fn session_key_claims_verify_only_as_signed() {
    let mut rng = StdRng::seed_from_u64(8);
    let [_, destination, third] = &*STATIC;
    let challenge = [5u8; CHALLENGE_LEN];
    let claim = SessionKeyClaim {
        region: "eu-west-1",
        node_id: 2,
        public_key_der: SESSION.public_key_der(),
        challenge: &challenge,
    };
    let signature = claim.sign(destination, &mut rng);
    let region_key = destination.public_key_der();
    assert_eq!(claim.verify(&region_key, &signature), Ok(()));
    let bad = Err(CryptoError::InvalidCertificate {
        reason: "session key signature does not verify",
    });
    let other_key = SessionKeyPair::generate(&mut rng);
    let other_challenge = [6u8; CHALLENGE_LEN];
    let changed = [
        SessionKeyClaim {
            region: "eu-west-2",
            ..claim
        },
        SessionKeyClaim {
            node_id: 3,
            ..claim
        },
        SessionKeyClaim {
            public_key_der: other_key.public_key_der(),
            ..claim
        },
        // A recorded statement answers another challenge only if signed for it.
        SessionKeyClaim {
            challenge: &other_challenge,
            ..claim
        },
    ];
    for other in changed {
        assert_eq!(other.verify(&region_key, &signature), bad, "{other:?}");
    }
    assert_eq!(claim.verify(&third.public_key_der(), &signature), bad);
    assert_eq!(claim.verify(&region_key, b"junk"), bad);
    let not_p384 = SessionKeyClaim {
        public_key_der: &b64(tv::P256_SPKI),
        ..claim
    };
    let signed = not_p384.sign(destination, &mut rng);
    assert_eq!(
        not_p384.verify(&region_key, &signed),
        Err(CryptoError::InvalidCertificate {
            reason: "session key is no p-384 public key"
        })
    );
    assert_eq!(format!("{:?}", &*SESSION), "SessionKeyPair(<redacted>)");
}

#[test]
fn a_request_sealed_by_cryptography_opens() {
    // Made with Python `cryptography` alone from the description in the README (the script is
    // next to the constants in test_vectors.rs).
    let session = SessionKeyPair::from_pkcs8_der(&b64(tv::SYNC_SESSION_PKCS8)).expect("parses");
    let sender = b64(tv::SYNC_SENDER_SPKI);
    let aad = TransportAad {
        key_id: "mrk-1234abcd12ab34cd56ef1234567890ab",
        source: "us-east-1",
        destination: "eu-west-1",
        version: 7,
        context: b"ctx",
    };
    let sealed = b64(tv::SYNC_REQUEST);
    let opened = open_request(&session, &sender, &aad, &sealed).expect("opens");
    assert_eq!(opened.secret.expose(), b"material sealed by python");
    assert_eq!(
        opened.answer_key.seal_answer(&TransportAad {
            source: "eu-west-1",
            destination: "us-east-1",
            context: b"answer",
            ..aad
        }),
        b64(tv::SYNC_ANSWER)
    );
    let other = TransportAad { version: 8, ..aad };
    assert!(open_request(&session, &sender, &other, &sealed).is_err());
}

#[test]
fn key_pair_formats() {
    let [pair, ..] = &*STATIC;
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
    // Each case does several P-384 operations (key generation, ECDH, sign, verify); 24 cases keep
    // the suite fast while the exhaustive flip test above covers every position of one message.
    #![proptest_config(ProptestConfig::with_cases(24))]

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
        let (sealed, answer_key) = seal(&secret, &aad, &mut rng);
        let opened = open(&sealed, &aad).expect("opens");
        prop_assert_eq!(opened.secret.expose(), &secret[..]);
        let answer = opened.answer_key.seal_answer(&aad);
        prop_assert!(answer_key.open_answer(&aad, &answer).is_ok());

        let mut tampered = sealed.clone();
        tampered[flip_at.index(sealed.len())] ^= flip_bits;
        prop_assert!(open(&tampered, &aad).is_err());

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
        prop_assert!(answer_key.open_answer(&changed, &answer).is_err());
    }

    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(open(&bytes, &AAD).is_err());
        let _ = request_session_id(&bytes);
    }
}
