//! RSA signature and OAEP paddings, shared by KMS keys and import wrapping keys.
//!
//! `rsa` 0.9 has RUSTSEC-2023-0071 (the Marvin timing side channel in private-key operations);
//! accepted for a simulator, see the README.

use rand::{CryptoRng, RngCore};
use rsa::{Oaep, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

use crate::hash::HashAlg;
use crate::key_der::rsa_bits;
use crate::{CryptoError, RsaEncryptionAlgorithm, SecretBytes, SigningAlgorithm};

/// The two RSA signature paddings; `rsa` takes each as its own type.
enum Scheme {
    Pss(Pss),
    Pkcs1(Pkcs1v15Sign),
}

/// The padding of an RSA signing algorithm, `None` for ECDSA. PSS uses a salt as long as the hash
/// and MGF1 with the same hash, as AWS does. The `blinded` PSS variant of `rsa` still makes
/// standard signatures; it only blinds the private-key operation with the caller's `rng`.
fn scheme(alg: SigningAlgorithm) -> Option<Scheme> {
    use SigningAlgorithm as S;
    Some(match alg {
        S::RsassaPssSha256 => Scheme::Pss(Pss::new_blinded::<Sha256>()),
        S::RsassaPssSha384 => Scheme::Pss(Pss::new_blinded::<Sha384>()),
        S::RsassaPssSha512 => Scheme::Pss(Pss::new_blinded::<Sha512>()),
        S::RsassaPkcs1V15Sha256 => Scheme::Pkcs1(Pkcs1v15Sign::new::<Sha256>()),
        S::RsassaPkcs1V15Sha384 => Scheme::Pkcs1(Pkcs1v15Sign::new::<Sha384>()),
        S::RsassaPkcs1V15Sha512 => Scheme::Pkcs1(Pkcs1v15Sign::new::<Sha512>()),
        S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512 => return None,
    })
}

/// Signs the `digest` (already checked to be the algorithm's digest length). The caller has
/// checked that `alg` is an RSA algorithm.
pub(crate) fn sign(
    key: &RsaPrivateKey,
    alg: SigningAlgorithm,
    digest: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, CryptoError> {
    let failed = |_| CryptoError::PrimitiveFailed {
        operation: "rsa signing",
    };
    match scheme(alg) {
        Some(Scheme::Pss(pss)) => key.sign_with_rng(rng, pss, digest).map_err(failed),
        // With an rng, `rsa` blinds the PKCS#1 v1.5 private-key operation too.
        Some(Scheme::Pkcs1(pkcs1)) => key.sign_with_rng(rng, pkcs1, digest).map_err(failed),
        None => Err(CryptoError::PrimitiveFailed {
            operation: "rsa signing",
        }),
    }
}

/// Whether `signature` is a valid signature of `digest`; any malformed signature is simply not.
pub(crate) fn verify(
    key: &RsaPublicKey,
    alg: SigningAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> bool {
    // RSA signatures are exactly as long as the modulus; `rsa` would reject others as well, this
    // just makes the rule visible.
    if signature.len() != rsa_bits(key).div_ceil(8) {
        return false;
    }
    match scheme(alg) {
        Some(Scheme::Pss(pss)) => key.verify(pss, digest, signature).is_ok(),
        Some(Scheme::Pkcs1(pkcs1)) => key.verify(pkcs1, digest, signature).is_ok(),
        None => false,
    }
}

/// OAEP with MGF1 of the same hash and an empty label, as AWS and `openssl pkeyutl` with
/// `rsa_oaep_md` = `rsa_mgf1_md` use it.
fn oaep(hash: HashAlg) -> Oaep {
    match hash {
        HashAlg::Sha1 => Oaep::new::<Sha1>(),
        HashAlg::Sha224 => Oaep::new::<sha2::Sha224>(),
        HashAlg::Sha256 => Oaep::new::<Sha256>(),
        HashAlg::Sha384 => Oaep::new::<Sha384>(),
        HashAlg::Sha512 => Oaep::new::<Sha512>(),
    }
}

/// RSA-OAEP decryption. Every failure, including a ciphertext of the wrong length, is the same
/// [`CryptoError::InvalidCiphertext`], so that no padding oracle is exposed through the error.
///
/// Not blinded: the KMS Decrypt signature has no rng (see the README on RUSTSEC-2023-0071).
pub(crate) fn oaep_decrypt(
    key: &RsaPrivateKey,
    hash: HashAlg,
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if ciphertext.len() != rsa_bits(key).div_ceil(8) {
        return Err(CryptoError::InvalidCiphertext);
    }
    key.decrypt(oaep(hash), ciphertext)
        .map(SecretBytes::from_vec)
        .map_err(|_| CryptoError::InvalidCiphertext)
}

/// RSA-OAEP encryption; a plaintext over [`RsaEncryptionAlgorithm::max_plaintext_len`] is refused
/// with [`CryptoError::RsaPlaintextTooLarge`].
pub(crate) fn oaep_encrypt(
    key: &RsaPublicKey,
    alg: RsaEncryptionAlgorithm,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, CryptoError> {
    let max = alg.max_plaintext_len(rsa_bits(key));
    if plaintext.len() > max {
        return Err(CryptoError::RsaPlaintextTooLarge {
            algorithm: alg.wire_name(),
            max,
            actual: plaintext.len(),
        });
    }
    key.encrypt(rng, oaep(alg.hash()), plaintext)
        .map_err(|_| CryptoError::PrimitiveFailed {
            operation: "rsa encryption",
        })
}
