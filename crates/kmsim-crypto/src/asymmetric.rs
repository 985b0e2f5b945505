//! The private key of an asymmetric KMS key: generation, PKCS#8, Sign, RSA Decrypt and ECDH.

use std::fmt;

use ecdsa::signature::hazmat::RandomizedPrehashSigner;
use elliptic_curve::ecdh::diffie_hellman;
use elliptic_curve::pkcs8::EncodePrivateKey;
use p521::NistP521;
use rand::{CryptoRng, RngCore};
use rsa::RsaPrivateKey;

use crate::key_der::{ec_secret_key, PrivateDer};
use crate::public_key::{PublicInner, PublicKey};
use crate::{
    rsa_padding, AsymmetricSpec, CryptoError, Message, RsaEncryptionAlgorithm, SecretBytes,
    SigningAlgorithm,
};

/// A parsed asymmetric private key of one [`AsymmetricSpec`], ready to sign, decrypt or agree.
///
/// Parsing (an RSA key's CRT values, an EC key's public point) is done once, so callers can cache
/// a `PrivateKey` per key version; it is `Send + Sync`. The key material is wiped on drop by the
/// underlying crates, and `Debug` shows only the spec.
pub struct PrivateKey {
    spec: AsymmetricSpec,
    inner: Inner,
}

/// One variant per key type.
enum Inner {
    // Boxed: an RSA key with its precomputed CRT values is several times larger than an EC key.
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    /// `p521` 0.13 has no RFC 6979 (SHA-512 is shorter than the field), so its signing key draws
    /// each ECDSA nonce from the caller's rng alone; the other curves mix the rng into RFC 6979.
    P521(p521::ecdsa::SigningKey),
    K256(k256::ecdsa::SigningKey),
}

impl PrivateKey {
    /// Generates a key of `spec` and returns its PKCS#8 DER (what is domain-wrapped and stored).
    /// RSA keys use the public exponent 65537; RSA-4096 generation takes seconds.
    pub fn generate(
        spec: AsymmetricSpec,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<SecretBytes, CryptoError> {
        Self::generate_parsed(spec, rng).map(|(_, der)| der)
    }

    /// [`PrivateKey::generate`], also returning the parsed key, so that a caller needing both does
    /// not parse what it just generated.
    pub fn generate_parsed(
        spec: AsymmetricSpec,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(PrivateKey, SecretBytes), CryptoError> {
        let inner = match spec {
            AsymmetricSpec::Rsa2048 | AsymmetricSpec::Rsa3072 | AsymmetricSpec::Rsa4096 => {
                let bits = spec
                    .rsa_bits()
                    .expect("invariant: every RSA spec has a modulus size");
                let key =
                    RsaPrivateKey::new(rng, bits).map_err(|_| CryptoError::PrimitiveFailed {
                        operation: "rsa key generation",
                    })?;
                Inner::Rsa(Box::new(key))
            }
            AsymmetricSpec::EccNistP256 => Inner::P256(p256::ecdsa::SigningKey::random(rng)),
            AsymmetricSpec::EccNistP384 => Inner::P384(p384::ecdsa::SigningKey::random(rng)),
            AsymmetricSpec::EccNistP521 => Inner::P521(p521::ecdsa::SigningKey::random(rng)),
            AsymmetricSpec::EccSecgP256k1 => Inner::K256(k256::ecdsa::SigningKey::random(rng)),
        };
        let key = PrivateKey { spec, inner };
        let der = key.to_pkcs8_der();
        Ok((key, der))
    }

    /// Parses a private key of `spec`: PKCS#8 DER (EC keys with the SEC1 `ECPrivateKey` inside,
    /// with or without its optional parameters and public key), or the bare SEC1 / PKCS#1 DER that
    /// `openssl genpkey -outform DER` writes.
    ///
    /// A well-formed key of another spec (a P-256 key for ECC_NIST_P384, an RSA-3072 key for
    /// RSA_2048, an Ed25519 key) gives [`CryptoError::KeySpecMismatch`]; bytes that are no key,
    /// or a key that contradicts itself, give [`CryptoError::InvalidPrivateKey`]. Never panics.
    pub fn from_pkcs8_der(spec: AsymmetricSpec, der: &[u8]) -> Result<PrivateKey, CryptoError> {
        let parsed = PrivateDer::parse(der)?;
        parsed.check_spec(spec)?;
        let inner = match (parsed, spec) {
            (PrivateDer::Rsa(key), _) => Inner::Rsa(key),
            (PrivateDer::Ec { sec1, .. }, AsymmetricSpec::EccNistP256) => {
                Inner::P256(ec_secret_key::<p256::NistP256>(sec1)?.into())
            }
            (PrivateDer::Ec { sec1, .. }, AsymmetricSpec::EccNistP384) => {
                Inner::P384(ec_secret_key::<p384::NistP384>(sec1)?.into())
            }
            (PrivateDer::Ec { sec1, .. }, AsymmetricSpec::EccNistP521) => {
                let key = ecdsa::SigningKey::from(ec_secret_key::<NistP521>(sec1)?);
                Inner::P521(key.into())
            }
            (PrivateDer::Ec { sec1, .. }, AsymmetricSpec::EccSecgP256k1) => {
                Inner::K256(ec_secret_key::<k256::Secp256k1>(sec1)?.into())
            }
            // check_spec let only keys of `spec` through.
            _ => return Err(CryptoError::InvalidPrivateKey),
        };
        Ok(PrivateKey { spec, inner })
    }

    /// The key as PKCS#8 v1 DER, in the form [`PrivateKey::generate`] writes (EC keys: SEC1
    /// inside with the public key, without repeating the curve). Use it to store imported keys
    /// in one canonical form.
    pub fn to_pkcs8_der(&self) -> SecretBytes {
        let document = match &self.inner {
            Inner::Rsa(key) => key.to_pkcs8_der(),
            Inner::P256(key) => p256::SecretKey::from(key.as_nonzero_scalar()).to_pkcs8_der(),
            Inner::P384(key) => p384::SecretKey::from(key.as_nonzero_scalar()).to_pkcs8_der(),
            Inner::P521(key) => p521::SecretKey::from(key.as_nonzero_scalar()).to_pkcs8_der(),
            Inner::K256(key) => k256::SecretKey::from(key.as_nonzero_scalar()).to_pkcs8_der(),
        }
        .expect("invariant: a parsed key always encodes as PKCS#8");
        // `SecretDocument` wipes its own buffer on drop.
        SecretBytes::from_slice(document.as_bytes())
    }

    /// The spec the key was generated or parsed for.
    pub fn spec(&self) -> AsymmetricSpec {
        self.spec
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let inner = match &self.inner {
            Inner::Rsa(key) => PublicInner::Rsa(key.to_public_key()),
            Inner::P256(key) => PublicInner::P256(*key.verifying_key()),
            Inner::P384(key) => PublicInner::P384(*key.verifying_key()),
            Inner::P521(key) => PublicInner::P521(p521::ecdsa::VerifyingKey::from(key)),
            Inner::K256(key) => PublicInner::K256(*key.verifying_key()),
        };
        PublicKey::from_parts(self.spec, inner)
    }

    /// The public key as DER SubjectPublicKeyInfo, byte for byte what `openssl pkey -pubout
    /// -outform DER` prints (RSA with NULL parameters, EC points uncompressed): GetPublicKey.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_key().to_spki_der()
    }

    /// Signs `msg` with `alg`. `Raw` messages are hashed with the algorithm's hash; a `Digest` is
    /// used as the prehash and must be [`SigningAlgorithm::digest_len`] bytes
    /// ([`CryptoError::InvalidDigestLength`] otherwise). RSA-PSS uses a salt as long as the hash
    /// and MGF1 with the same hash; ECDSA signatures are DER-encoded (secp256k1 with low S).
    /// An algorithm the spec does not allow gives [`CryptoError::AlgorithmNotForKey`].
    pub fn sign(
        &self,
        alg: SigningAlgorithm,
        msg: Message<'_>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, CryptoError> {
        self.spec.check_signing_algorithm(alg)?;
        let digest = msg.prehash(alg)?;
        match &self.inner {
            Inner::Rsa(key) => rsa_padding::sign(key, alg, &digest, rng),
            Inner::P256(key) => ecdsa_sign(key, &digest, rng, |sig: p256::ecdsa::Signature| {
                sig.to_der().as_bytes().to_vec()
            }),
            Inner::P384(key) => ecdsa_sign(key, &digest, rng, |sig: p384::ecdsa::Signature| {
                sig.to_der().as_bytes().to_vec()
            }),
            Inner::P521(key) => ecdsa_sign(key, &digest, rng, |sig: p521::ecdsa::Signature| {
                sig.to_der().as_bytes().to_vec()
            }),
            Inner::K256(key) => ecdsa_sign(key, &digest, rng, |sig: k256::ecdsa::Signature| {
                sig.to_der().as_bytes().to_vec()
            }),
        }
    }

    /// RSA-OAEP decryption (MGF1 with the same hash, empty label) for Decrypt with an RSA key.
    /// Any failure is [`CryptoError::InvalidCiphertext`]; an ECC key gives
    /// [`CryptoError::AlgorithmNotForKey`].
    pub fn rsa_decrypt(
        &self,
        alg: RsaEncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        match &self.inner {
            Inner::Rsa(key) => rsa_padding::oaep_decrypt(key, alg.hash(), ciphertext),
            _ => Err(CryptoError::AlgorithmNotForKey {
                algorithm: alg.wire_name(),
                spec: self.spec.wire_name(),
            }),
        }
    }

    /// Raw ECDH (the x-coordinate of the shared point, as AWS DeriveSharedSecret returns it) with
    /// the peer's DER SubjectPublicKeyInfo, for P-256, P-384 and P-521 keys. A peer key on another
    /// curve gives [`CryptoError::KeySpecMismatch`]; an RSA or secp256k1 key gives
    /// [`CryptoError::AlgorithmNotForKey`].
    pub fn derive_shared_secret(&self, peer_spki_der: &[u8]) -> Result<SecretBytes, CryptoError> {
        if !self.spec.supports_key_agreement() {
            return Err(CryptoError::AlgorithmNotForKey {
                algorithm: "ECDH",
                spec: self.spec.wire_name(),
            });
        }
        let peer = PublicKey::from_spki_der(self.spec, peer_spki_der)?;
        // `SharedSecret` wipes itself on drop; only the copy in `SecretBytes` survives.
        let secret = match (&self.inner, peer.inner()) {
            (Inner::P256(key), PublicInner::P256(peer)) => SecretBytes::from_slice(
                diffie_hellman(key.as_nonzero_scalar(), peer.as_affine()).raw_secret_bytes(),
            ),
            (Inner::P384(key), PublicInner::P384(peer)) => SecretBytes::from_slice(
                diffie_hellman(key.as_nonzero_scalar(), peer.as_affine()).raw_secret_bytes(),
            ),
            (Inner::P521(key), PublicInner::P521(peer)) => SecretBytes::from_slice(
                diffie_hellman(key.as_nonzero_scalar(), peer.as_affine()).raw_secret_bytes(),
            ),
            // from_spki_der decoded the peer for our own spec, so the curves always agree.
            _ => return Err(CryptoError::InvalidPublicKey),
        };
        Ok(secret)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("spec", &self.spec)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// ECDSA over a prehash with the caller's rng, then `to_der` (the X9.62 / RFC 3279 DER that AWS
/// returns; the curve crates sign to the fixed-size form).
fn ecdsa_sign<S>(
    key: &impl RandomizedPrehashSigner<S>,
    digest: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
    to_der: fn(S) -> Vec<u8>,
) -> Result<Vec<u8>, CryptoError> {
    key.sign_prehash_with_rng(rng, digest)
        .map(to_der)
        .map_err(|_| CryptoError::PrimitiveFailed {
            operation: "ecdsa signing",
        })
}

#[cfg(test)]
mod tests;
