//! Recognising DER keys before decoding them for a spec, so that a well-formed key of another
//! spec ([`CryptoError::KeySpecMismatch`]) is told apart from bytes that are no key at all.
//!
//! Private keys are read as PKCS#8 (with the SEC1 `ECPrivateKey` inside with or without its
//! optional curve parameters and public key, as openssl, Python `cryptography` and Java write it),
//! and, because `openssl genpkey -outform DER` and `openssl pkey -outform DER` write the
//! traditional forms, also as a bare SEC1 `ECPrivateKey` naming its curve or a PKCS#1
//! `RSAPrivateKey`. Public keys are read as SubjectPublicKeyInfo only.

use elliptic_curve::pkcs8::AssociatedOid;
use elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint, ValidatePublicKey};
use elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytesSize, SecretKey};
use pkcs8::der::Decode;
use pkcs8::{ObjectIdentifier, PrivateKeyInfo};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sec1::EcPrivateKey;
use spki::{DecodePublicKey, SubjectPublicKeyInfoRef};

use crate::{AsymmetricSpec, CryptoError};

/// A private key whose type is known but which is not yet decoded for a curve.
pub(crate) enum PrivateDer<'a> {
    /// RSA keys decode without knowing the spec; the spec is then a question of the modulus size.
    /// Boxed: an RSA key with its CRT values is several times larger than the other variants.
    Rsa(Box<RsaPrivateKey>),
    /// An EC key on `curve`; `sec1` is the DER `ECPrivateKey`.
    Ec {
        curve: ObjectIdentifier,
        sec1: &'a [u8],
    },
    /// A well-formed key of a type kmsim has no spec for (e.g. Ed25519); the name says which.
    Other(String),
}

impl PrivateDer<'_> {
    /// Reads `der` in any accepted form. Garbage gives [`CryptoError::InvalidPrivateKey`].
    pub(crate) fn parse(der: &[u8]) -> Result<PrivateDer<'_>, CryptoError> {
        fn invalid<E>(_: E) -> CryptoError {
            CryptoError::InvalidPrivateKey
        }
        if let Ok(info) = PrivateKeyInfo::try_from(der) {
            let oid = info.algorithm.oid;
            return if oid == rsa::pkcs1::ALGORITHM_OID {
                RsaPrivateKey::try_from(info)
                    .map(|key| PrivateDer::Rsa(Box::new(key)))
                    .map_err(invalid)
            } else if oid == elliptic_curve::ALGORITHM_OID {
                let curve = info.algorithm.parameters_oid().map_err(invalid)?;
                Ok(PrivateDer::Ec {
                    curve,
                    sec1: info.private_key,
                })
            } else {
                Ok(PrivateDer::Other(algorithm_name(oid)))
            };
        }
        if let Ok(sec1) = EcPrivateKey::from_der(der) {
            // Without the curve a bare SEC1 key is ambiguous (P-256 and secp256k1 keys are both 32
            // bytes), so it must name it.
            let curve = sec1
                .parameters
                .and_then(|p| p.named_curve())
                .ok_or(CryptoError::InvalidPrivateKey)?;
            return Ok(PrivateDer::Ec { curve, sec1: der });
        }
        RsaPrivateKey::from_pkcs1_der(der)
            .map(|key| PrivateDer::Rsa(Box::new(key)))
            .map_err(invalid)
    }

    /// Fails with [`CryptoError::KeySpecMismatch`] unless the key is of `spec`.
    pub(crate) fn check_spec(&self, spec: AsymmetricSpec) -> Result<(), CryptoError> {
        let found = match self {
            Self::Rsa(key) => rsa_spec_name(&**key),
            Self::Ec { curve, .. } => curve_name(*curve),
            Self::Other(name) => name.clone(),
        };
        if found == spec.wire_name() {
            Ok(())
        } else {
            Err(CryptoError::KeySpecMismatch {
                expected: spec.wire_name(),
                found,
            })
        }
    }
}

/// Decodes the SEC1 `ECPrivateKey` of a key already known to be on `C`. The optional curve
/// parameters inside must name `C` as well, and the optional public key must belong to the secret
/// (checked by `elliptic-curve`); a key that contradicts itself is invalid, not of another spec.
pub(crate) fn ec_secret_key<C>(sec1: &[u8]) -> Result<SecretKey<C>, CryptoError>
where
    C: AssociatedOid + elliptic_curve::Curve + ValidatePublicKey,
    FieldBytesSize<C>: ModulusSize,
{
    let parsed = EcPrivateKey::from_der(sec1).map_err(|_| CryptoError::InvalidPrivateKey)?;
    if let Some(params) = parsed.parameters {
        if params.named_curve() != Some(C::OID) {
            return Err(CryptoError::InvalidPrivateKey);
        }
    }
    SecretKey::try_from(parsed).map_err(|_| CryptoError::InvalidPrivateKey)
}

/// A public key whose type is known but which is not yet decoded for a curve.
pub(crate) enum PublicDer {
    Rsa(RsaPublicKey),
    Ec,
}

impl PublicDer {
    /// Reads a DER SubjectPublicKeyInfo and checks that it holds a key of `spec`.
    pub(crate) fn parse_for(spec: AsymmetricSpec, der: &[u8]) -> Result<Self, CryptoError> {
        let spki =
            SubjectPublicKeyInfoRef::try_from(der).map_err(|_| CryptoError::InvalidPublicKey)?;
        let oid = spki.algorithm.oid;
        let (decoded, found) = if oid == rsa::pkcs1::ALGORITHM_OID {
            let key = RsaPublicKey::try_from(spki).map_err(|_| CryptoError::InvalidPublicKey)?;
            let found = rsa_spec_name(&key);
            (Self::Rsa(key), found)
        } else if oid == elliptic_curve::ALGORITHM_OID {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|_| CryptoError::InvalidPublicKey)?;
            (Self::Ec, curve_name(curve))
        } else {
            return Err(CryptoError::KeySpecMismatch {
                expected: spec.wire_name(),
                found: algorithm_name(oid),
            });
        };
        if found == spec.wire_name() {
            Ok(decoded)
        } else {
            Err(CryptoError::KeySpecMismatch {
                expected: spec.wire_name(),
                found,
            })
        }
    }
}

/// Decodes an EC SubjectPublicKeyInfo already known to be on `C`; a point not on the curve (or
/// the identity) is invalid.
pub(crate) fn ec_public_key<C>(der: &[u8]) -> Result<elliptic_curve::PublicKey<C>, CryptoError>
where
    C: AssociatedOid + CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    elliptic_curve::PublicKey::from_public_key_der(der).map_err(|_| CryptoError::InvalidPublicKey)
}

/// The modulus size of an RSA key in bits (the spec is a function of it).
pub(crate) fn rsa_bits(key: &impl PublicKeyParts) -> usize {
    key.n().bits()
}

/// `RSA_<bits>`, which is the wire name of the spec when the size is one KMS offers.
fn rsa_spec_name(key: &impl PublicKeyParts) -> String {
    format!("RSA_{}", rsa_bits(key))
}

/// The spec wire name of a curve OID, or the OID for curves kmsim does not offer.
fn curve_name(oid: ObjectIdentifier) -> String {
    let spec = if oid == p256::NistP256::OID {
        AsymmetricSpec::EccNistP256
    } else if oid == p384::NistP384::OID {
        AsymmetricSpec::EccNistP384
    } else if oid == p521::NistP521::OID {
        AsymmetricSpec::EccNistP521
    } else if oid == k256::Secp256k1::OID {
        AsymmetricSpec::EccSecgP256k1
    } else {
        return format!("EC curve {oid}");
    };
    spec.wire_name().to_string()
}

/// A readable name of a key algorithm OID other than RSA and EC.
fn algorithm_name(oid: ObjectIdentifier) -> String {
    if oid == ed25519_dalek::pkcs8::ALGORITHM_OID {
        "ECC_NIST_EDWARDS25519".to_string()
    } else {
        format!("key algorithm {oid}")
    }
}

#[cfg(test)]
mod tests;
