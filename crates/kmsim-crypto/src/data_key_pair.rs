//! GenerateDataKeyPair: a fresh key pair as PKCS#8 DER private key and SPKI DER public key.

use ed25519_dalek::pkcs8::EncodePublicKey;
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::{CryptoError, DataKeyPairSpec, PrivateKey, SecretBytes};

/// PKCS#8 v1 `PrivateKeyInfo` of an Ed25519 key up to the 32 key bytes (RFC 8410 §7): version 0,
/// algorithm id-Ed25519 without parameters, and the key as an OCTET STRING inside the OCTET
/// STRING. Exactly what `openssl genpkey -algorithm ed25519 -outform DER` writes; written by
/// hand so that the secret goes straight into a wiped buffer (the `ed25519` crate's encoder
/// keeps an unwiped copy unless its `zeroize` feature is on).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A fresh key pair of `spec`: the private key as PKCS#8 DER (v1, as openssl writes it; what
/// GenerateDataKeyPair encrypts and returns) and the public key as DER SubjectPublicKeyInfo.
pub fn generate_data_key_pair(
    spec: DataKeyPairSpec,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(SecretBytes, Vec<u8>), CryptoError> {
    match spec.asymmetric_spec() {
        Some(asymmetric) => {
            let (key, der) = PrivateKey::generate_parsed(asymmetric, rng)?;
            Ok((der, key.public_key_der()))
        }
        None => Ok(generate_ed25519(rng)),
    }
}

fn generate_ed25519(rng: &mut (impl RngCore + CryptoRng)) -> (SecretBytes, Vec<u8>) {
    // `SigningKey` wipes itself on drop; `seed` is the only other copy and is wiped too.
    let key = ed25519_dalek::SigningKey::generate(rng);
    let seed = Zeroizing::new(key.to_bytes());
    let mut private = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + seed.len());
    private.extend_from_slice(&ED25519_PKCS8_PREFIX);
    private.extend_from_slice(&*seed);
    let public = key
        .verifying_key()
        .to_public_key_der()
        .expect("invariant: an ed25519 public key always encodes as SPKI")
        .into_vec();
    (SecretBytes::from_vec(private), public)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::{AsymmetricSpec, Message, PublicKey, SigningAlgorithm};

    #[test]
    fn ed25519_pair_is_pkcs8_v1_and_spki_that_belong_together() {
        let mut rng = StdRng::seed_from_u64(25519);
        let (private, public) =
            generate_data_key_pair(DataKeyPairSpec::EccNistEdwards25519, &mut rng)
                .expect("generates");
        assert_eq!(private.len(), 48);
        assert_eq!(private.expose()[..16], ED25519_PKCS8_PREFIX);
        // An independent decoder reads it, and derives the same public key.
        let decoded = ed25519_dalek::SigningKey::from_pkcs8_der(private.expose()).expect("parses");
        let spki = decoded
            .verifying_key()
            .to_public_key_der()
            .expect("encodes");
        assert_eq!(spki.as_bytes(), &public[..]);
        // SPKI: SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (0 unused bits) of 32 bytes }.
        assert_eq!(public.len(), 44);
        assert_eq!(
            public[..12],
            [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]
        );
        // Checked by hand while writing this: the base64 of `private` and `public` decoded to
        // files are read by `openssl pkey -inform DER -in priv.der -text -noout` and
        // `openssl pkey -pubin -inform DER -in pub.der -text -noout`, which print the same
        // public key.
    }

    #[test]
    fn ecc_pairs_parse_back_and_sign() {
        let mut rng = StdRng::seed_from_u64(9);
        let ecc = [
            (DataKeyPairSpec::EccNistP256, AsymmetricSpec::EccNistP256),
            (DataKeyPairSpec::EccNistP384, AsymmetricSpec::EccNistP384),
            (DataKeyPairSpec::EccNistP521, AsymmetricSpec::EccNistP521),
            (
                DataKeyPairSpec::EccSecgP256k1,
                AsymmetricSpec::EccSecgP256k1,
            ),
        ];
        for (spec, asymmetric) in ecc {
            let (private, public) = generate_data_key_pair(spec, &mut rng).expect("generates");
            let key = PrivateKey::from_pkcs8_der(asymmetric, private.expose()).expect("parses");
            assert_eq!(key.public_key_der(), public);
            let alg = asymmetric.signing_algorithms()[0];
            let signature = key
                .sign(alg, Message::Raw(b"dkp"), &mut rng)
                .expect("signs");
            let verifier = PublicKey::from_spki_der(asymmetric, &public).expect("parses");
            assert_eq!(
                verifier.verify(alg, Message::Raw(b"dkp"), &signature),
                Ok(true)
            );
        }
    }

    #[test]
    fn rsa_2048_pair_parses_back() {
        // The one RSA data key pair of the test run (RSA generation is slow); 3072 and 4096 take
        // the same code path with another modulus size.
        let mut rng = StdRng::seed_from_u64(2048);
        let (private, public) =
            generate_data_key_pair(DataKeyPairSpec::Rsa2048, &mut rng).expect("generates");
        let key =
            PrivateKey::from_pkcs8_der(AsymmetricSpec::Rsa2048, private.expose()).expect("parses");
        assert_eq!(key.public_key_der(), public);
        let verifier = PublicKey::from_spki_der(AsymmetricSpec::Rsa2048, &public).expect("parses");
        let signature = key
            .sign(
                SigningAlgorithm::RsassaPssSha256,
                Message::Raw(b"dkp"),
                &mut rng,
            )
            .expect("signs");
        assert_eq!(
            verifier.verify(
                SigningAlgorithm::RsassaPssSha256,
                Message::Raw(b"dkp"),
                &signature
            ),
            Ok(true)
        );
        // Checked by hand while writing this: `openssl pkey -inform DER -in priv.der -check
        // -noout` says "Key is valid" and `openssl asn1parse -inform DER` shows PKCS#8 v1
        // (INTEGER 0, rsaEncryption, NULL parameters).
    }
}
