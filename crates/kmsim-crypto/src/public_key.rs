//! The public key of an asymmetric KMS key (or of a peer): SPKI, Verify and RSA Encrypt.

use std::fmt;

use ecdsa::signature::hazmat::PrehashVerifier;
use elliptic_curve::pkcs8::EncodePublicKey;
use p521::NistP521;
use rand::{CryptoRng, RngCore};
use rsa::RsaPublicKey;

use crate::key_der::{ec_public_key, rsa_bits, PublicDer};
use crate::{
    rsa_padding, AsymmetricSpec, CryptoError, Message, RsaEncryptionAlgorithm, SigningAlgorithm,
};

/// A parsed public key of one [`AsymmetricSpec`]: what Verify and Encrypt need, what
/// GetPublicKey returns, and what a client may verify with offline.
#[derive(Clone)]
pub struct PublicKey {
    spec: AsymmetricSpec,
    inner: PublicInner,
}

/// One variant per key type, as in the private key.
#[derive(Clone)]
pub(crate) enum PublicInner {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    K256(k256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo of `spec`. A well-formed key of another spec gives
    /// [`CryptoError::KeySpecMismatch`], anything else that is not a valid key of `spec` (a
    /// point off the curve, trailing bytes) [`CryptoError::InvalidPublicKey`]. Never panics.
    pub fn from_spki_der(spec: AsymmetricSpec, der: &[u8]) -> Result<PublicKey, CryptoError> {
        let inner = match (PublicDer::parse_for(spec, der)?, spec) {
            (PublicDer::Rsa(key), _) => PublicInner::Rsa(key),
            (PublicDer::Ec, AsymmetricSpec::EccNistP256) => {
                PublicInner::P256(ec_public_key::<p256::NistP256>(der)?.into())
            }
            (PublicDer::Ec, AsymmetricSpec::EccNistP384) => {
                PublicInner::P384(ec_public_key::<p384::NistP384>(der)?.into())
            }
            (PublicDer::Ec, AsymmetricSpec::EccNistP521) => {
                let key = ecdsa::VerifyingKey::from(ec_public_key::<NistP521>(der)?);
                PublicInner::P521(key.into())
            }
            (PublicDer::Ec, AsymmetricSpec::EccSecgP256k1) => {
                PublicInner::K256(ec_public_key::<k256::Secp256k1>(der)?.into())
            }
            // parse_for let only keys of `spec` through.
            _ => return Err(CryptoError::InvalidPublicKey),
        };
        Ok(PublicKey { spec, inner })
    }

    pub(crate) fn from_parts(spec: AsymmetricSpec, inner: PublicInner) -> Self {
        Self { spec, inner }
    }

    pub(crate) fn inner(&self) -> &PublicInner {
        &self.inner
    }

    /// The spec the key was parsed for.
    pub fn spec(&self) -> AsymmetricSpec {
        self.spec
    }

    /// DER SubjectPublicKeyInfo, as `openssl pkey -pubout -outform DER` writes it (RSA with NULL
    /// parameters, EC points uncompressed).
    pub fn to_spki_der(&self) -> Vec<u8> {
        match &self.inner {
            PublicInner::Rsa(key) => key.to_public_key_der(),
            PublicInner::P256(key) => p256::PublicKey::from(key).to_public_key_der(),
            PublicInner::P384(key) => p384::PublicKey::from(key).to_public_key_der(),
            // `p521`'s verifying key wrapper has no conversion; its point is never the identity.
            PublicInner::P521(key) => p521::PublicKey::from_affine(*key.as_affine())
                .map_err(|_| spki::Error::KeyMalformed)
                .and_then(|key| key.to_public_key_der()),
            PublicInner::K256(key) => k256::PublicKey::from(key).to_public_key_der(),
        }
        .expect("invariant: a parsed public key always encodes as SPKI")
        .into_vec()
    }

    /// Whether `signature` is valid for `msg` under `alg`. A wrong signature, including one that
    /// is not even DER (ECDSA) or of the wrong length (RSA), is `Ok(false)`; misuse is an error:
    /// a `Digest` of the wrong length ([`CryptoError::InvalidDigestLength`]) or an algorithm the
    /// spec does not allow ([`CryptoError::AlgorithmNotForKey`]).
    ///
    /// secp256k1 signatures with a high S are accepted after normalising S (openssl and most
    /// libraries do not normalise; the signature is equally valid), although our own are low-S.
    pub fn verify(
        &self,
        alg: SigningAlgorithm,
        msg: Message<'_>,
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        self.spec.check_signing_algorithm(alg)?;
        let digest = msg.prehash(alg)?;
        Ok(match &self.inner {
            PublicInner::Rsa(key) => rsa_padding::verify(key, alg, &digest, signature),
            PublicInner::P256(key) => ecdsa_verify(
                key,
                &digest,
                p256::ecdsa::Signature::from_der(signature).ok(),
            ),
            PublicInner::P384(key) => ecdsa_verify(
                key,
                &digest,
                p384::ecdsa::Signature::from_der(signature).ok(),
            ),
            PublicInner::P521(key) => ecdsa_verify(
                key,
                &digest,
                p521::ecdsa::Signature::from_der(signature).ok(),
            ),
            PublicInner::K256(key) => {
                // `k256` rejects high-S signatures outright (a Bitcoin rule, not an ECDSA one).
                let parsed = k256::ecdsa::Signature::from_der(signature)
                    .ok()
                    .map(|sig| sig.normalize_s().unwrap_or(sig));
                ecdsa_verify(key, &digest, parsed)
            }
        })
    }

    /// RSA-OAEP encryption (MGF1 with the same hash, empty label), for Encrypt with an RSA key and
    /// for clients. A plaintext over [`RsaEncryptionAlgorithm::max_plaintext_len`] gives
    /// [`CryptoError::RsaPlaintextTooLarge`]; an ECC key [`CryptoError::AlgorithmNotForKey`].
    pub fn rsa_encrypt(
        &self,
        alg: RsaEncryptionAlgorithm,
        plaintext: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.inner {
            PublicInner::Rsa(key) => rsa_padding::oaep_encrypt(key, alg, plaintext, rng),
            _ => Err(CryptoError::AlgorithmNotForKey {
                algorithm: alg.wire_name(),
                spec: self.spec.wire_name(),
            }),
        }
    }
}

impl fmt::Debug for PublicKey {
    // The key is public, but a 4096-bit modulus would flood a log line; the spec identifies it
    // well enough for debugging.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = match &self.inner {
            PublicInner::Rsa(key) => Some(rsa_bits(key)),
            _ => None,
        };
        f.debug_struct("PublicKey")
            .field("spec", &self.spec)
            .field("rsa_bits", &bits)
            .finish_non_exhaustive()
    }
}

/// Whether a parsed signature (if it parsed at all) verifies over `digest`.
fn ecdsa_verify<S>(key: &impl PrehashVerifier<S>, digest: &[u8], signature: Option<S>) -> bool {
    signature.is_some_and(|sig| key.verify_prehash(digest, &sig).is_ok())
}
