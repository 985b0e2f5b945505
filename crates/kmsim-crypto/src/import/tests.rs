use std::sync::LazyLock;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;

use super::*;
use crate::test_vectors as tv;
use crate::test_vectors::b64;
use crate::{AsymmetricSpec, PrivateKey, PublicKey, RsaEncryptionAlgorithm};
use ImportWrappingAlgorithm as Wrap;

/// The openssl RSA-4096 key the import vectors were made for.
static WRAPPING_4096: LazyLock<ImportWrappingKey> = LazyLock::new(|| {
    ImportWrappingKey::from_pkcs8_der(&b64(tv::RSA_4096_PKCS8)).expect("openssl key parses")
});

/// A generated RSA-2048 wrapping key (the only wrapping key generation of the test run).
static WRAPPING_2048: LazyLock<ImportWrappingKey> = LazyLock::new(|| {
    ImportWrappingKey::generate(2048, &mut StdRng::seed_from_u64(3)).expect("generates")
});

/// What a client does for RSA_AES_KEY_WRAP_*: OAEP of a fresh AES-256 key, then RFC 5649 wrap.
fn client_key_wrap(
    public_der: &[u8],
    hash: RsaEncryptionAlgorithm,
    material: &[u8],
    rng: &mut StdRng,
) -> Vec<u8> {
    let public = RsaPublicKey::from_public_key_der(public_der).expect("spki");
    let bits = rsa_bits(&public);
    let spec = match bits {
        2048 => AsymmetricSpec::Rsa2048,
        3072 => AsymmetricSpec::Rsa3072,
        _ => AsymmetricSpec::Rsa4096,
    };
    let public = PublicKey::from_spki_der(spec, public_der).expect("spki");
    let mut aes = [0u8; 32];
    rng.fill_bytes(&mut aes);
    let mut out = public.rsa_encrypt(hash, &aes, rng).expect("encrypts");
    let wrapped = KekAes256::new(&aes.into())
        .wrap_with_padding_vec(material)
        .expect("wraps");
    out.extend_from_slice(&wrapped);
    out
}

#[test]
fn openssl_import_blobs_unwrap() {
    let key = &*WRAPPING_4096;
    assert_eq!(key.bits(), 4096);
    assert_eq!(key.public_key_der(), b64(tv::RSA_4096_SPKI));
    let asymmetric = b64(tv::IMPORT_MATERIAL);
    let symmetric = b64(tv::IMPORT_SYMMETRIC_MATERIAL);
    let cases = [
        (
            Wrap::RsaAesKeyWrapSha256,
            tv::IMPORT_RSA_AES_KEY_WRAP_SHA256,
            &asymmetric,
        ),
        (
            Wrap::RsaAesKeyWrapSha1,
            tv::IMPORT_RSA_AES_KEY_WRAP_SHA1,
            &asymmetric,
        ),
        (
            Wrap::RsaesOaepSha256,
            tv::IMPORT_RSAES_OAEP_SHA256,
            &symmetric,
        ),
        (Wrap::RsaesOaepSha1, tv::IMPORT_RSAES_OAEP_SHA1, &symmetric),
    ];
    for (alg, blob, material) in cases {
        let opened = key.unwrap_import(alg, &b64(blob)).expect("unwraps");
        assert_eq!(opened.expose(), &material[..], "{alg}");
    }
    // The unwrapped key material is a usable P-256 key.
    let imported = PrivateKey::from_pkcs8_der(AsymmetricSpec::EccNistP256, &asymmetric);
    assert!(imported.is_ok());
}

#[test]
fn every_failure_is_the_same_invalid_ciphertext() {
    let key = &*WRAPPING_4096;
    let blob = b64(tv::IMPORT_RSA_AES_KEY_WRAP_SHA256);
    let mut in_rsa_part = blob.clone();
    in_rsa_part[10] ^= 1;
    let mut in_wrap = blob.clone();
    let last = in_wrap.len() - 1;
    in_wrap[last] ^= 1;
    let not_semiblocks = [&blob[..], &[0u8; 3][..]].concat();
    let cases: [(Wrap, &[u8]); 9] = [
        (Wrap::RsaAesKeyWrapSha1, &blob),
        (Wrap::RsaesOaepSha256, &blob),
        (Wrap::RsaAesKeyWrapSha256, &in_rsa_part),
        (Wrap::RsaAesKeyWrapSha256, &in_wrap),
        (Wrap::RsaAesKeyWrapSha256, &blob[..512]),
        (Wrap::RsaAesKeyWrapSha256, &blob[..512 + 8]),
        (Wrap::RsaAesKeyWrapSha256, &blob[..blob.len() - 8]),
        (Wrap::RsaAesKeyWrapSha256, &not_semiblocks),
        (Wrap::RsaesOaepSha256, &[]),
    ];
    for (alg, bytes) in cases {
        assert_eq!(
            key.unwrap_import(alg, bytes).map(|_| ()),
            Err(CryptoError::InvalidCiphertext),
            "{alg} {} bytes",
            bytes.len()
        );
    }
    // Under another wrapping key nothing opens either.
    assert_eq!(
        WRAPPING_2048
            .unwrap_import(Wrap::RsaAesKeyWrapSha256, &blob)
            .map(|_| ()),
        Err(CryptoError::InvalidCiphertext)
    );
}

#[test]
fn an_ephemeral_key_that_is_not_aes_256_is_refused() {
    let key = &*WRAPPING_2048;
    let public =
        PublicKey::from_spki_der(AsymmetricSpec::Rsa2048, &key.public_key_der()).expect("spki");
    let mut rng = StdRng::seed_from_u64(16);
    let aes128 = [7u8; 16];
    let mut blob = public
        .rsa_encrypt(RsaEncryptionAlgorithm::OaepSha256, &aes128, &mut rng)
        .expect("encrypts");
    let wrapped = aes_kw::KekAes128::new(&aes128.into())
        .wrap_with_padding_vec(&[1u8; 32])
        .expect("wraps");
    blob.extend_from_slice(&wrapped);
    assert_eq!(
        key.unwrap_import(Wrap::RsaAesKeyWrapSha256, &blob)
            .map(|_| ()),
        Err(CryptoError::InvalidCiphertext)
    );
}

#[test]
fn client_wrapped_material_of_every_length_round_trips() {
    let key = &*WRAPPING_2048;
    let public_der = key.public_key_der();
    let mut rng = StdRng::seed_from_u64(5649);
    for len in [1, 7, 8, 9, 28, 32, 64, 128, 1217] {
        let material: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        for (alg, hash) in [
            (Wrap::RsaAesKeyWrapSha1, RsaEncryptionAlgorithm::OaepSha1),
            (
                Wrap::RsaAesKeyWrapSha256,
                RsaEncryptionAlgorithm::OaepSha256,
            ),
        ] {
            let blob = client_key_wrap(&public_der, hash, &material, &mut rng);
            let opened = key.unwrap_import(alg, &blob).expect("unwraps");
            assert_eq!(opened.expose(), &material[..], "{alg} {len}");
        }
    }
}

#[test]
fn wrapping_key_formats_round_trip_and_sizes_are_checked() {
    let key = &*WRAPPING_2048;
    assert_eq!(key.bits(), 2048);
    let der = key.to_pkcs8_der();
    let back = ImportWrappingKey::from_pkcs8_der(der.expose()).expect("parses");
    assert_eq!(back.public_key_der(), key.public_key_der());
    assert_eq!(
        ImportWrappingKey::from_pkcs8_der(&b64(tv::RSA_2048_PKCS1)).map(|k| k.public_key_der()),
        Ok(b64(tv::RSA_2048_SPKI))
    );
    assert_eq!(
        ImportWrappingKey::from_pkcs8_der(&b64(tv::P256_PKCS8)).map(|_| ()),
        Err(CryptoError::InvalidPrivateKey)
    );
    assert_eq!(
        ImportWrappingKey::from_pkcs8_der(b"junk").map(|_| ()),
        Err(CryptoError::InvalidPrivateKey)
    );
    let mut rng = StdRng::seed_from_u64(1);
    for bits in [0, 1024, 2047, 8192] {
        assert_eq!(
            ImportWrappingKey::generate(bits, &mut rng).map(|_| ()),
            Err(CryptoError::UnsupportedKeySize { bits })
        );
    }
    let debug = format!("{key:?}");
    assert!(
        debug.contains("2048") && debug.contains("<redacted>"),
        "{debug}"
    );
}

#[test]
fn material_commitment_is_the_documented_hash() {
    let id = material_commitment("mrk-1234abcd12ab34cd56ef1234567890ab", &[0x11; 32]);
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    // Independent computation, as Python would do it:
    // sha256(b"kmsim/key-material-id/v1" + len(key_id).to_bytes(2, "big") + key_id + material).
    let key_id = b"mrk-1234abcd12ab34cd56ef1234567890ab";
    let mut input = b"kmsim/key-material-id/v1".to_vec();
    input.extend_from_slice(&(key_id.len() as u16).to_be_bytes());
    input.extend_from_slice(key_id);
    input.extend_from_slice(&[0x11; 32]);
    let expected: String = Sha256::digest(&input)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(id, expected);
    // Fixed value, computed with Python's hashlib while writing this.
    assert_eq!(
        material_commitment("k", b"material"),
        "0c656aff5a47a54919baa84c6a0affeb2e3951645010656313cebd66360e0963"
    );
}

#[test]
fn material_commitment_separates_keys_materials_and_boundaries() {
    let ids = [
        material_commitment("ab", b"c"),
        material_commitment("a", b"bc"),
        material_commitment("abc", b""),
        material_commitment("ab", b"d"),
        material_commitment("ba", b"c"),
    ];
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(material_commitment("ab", b"c"), ids[0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn unwrap_import_never_panics(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            // Exactly one modulus (OAEP) or a modulus plus whole semiblocks (key wrap), so the
            // inputs reach the RSA and RFC 5649 code and not only the length checks.
            proptest::collection::vec(any::<u8>(), 256..=256),
            (1usize..6).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), 256 + 8 * n)),
        ],
        alg in prop::sample::select(Wrap::ALL),
    ) {
        prop_assert_eq!(
            WRAPPING_2048.unwrap_import(alg, &bytes).map(|_| ()),
            Err(CryptoError::InvalidCiphertext)
        );
    }
}
