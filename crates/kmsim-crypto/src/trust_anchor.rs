//! The partition trust anchor and the certificates it gives Region transport keys, so that a
//! Region cannot be impersonated by a node holding some other key.

use std::fmt;

use ecdsa::signature::RandomizedSigner;
use p384::ecdsa::{DerSignature, SigningKey};
use rand::{CryptoRng, RngCore};

use crate::encoding::{prefixed_fields_u16, Reader};
use crate::transport::{p384_from_der, p384_pkcs8, p384_point, p384_spki, verify_signature};
use crate::{AsymmetricSpec, CryptoError, PublicKey, SecretBytes};

/// First byte of a serialized certificate, so that a future format can be told apart.
const CERT_FORMAT_V1: u8 = 0x01;
/// Domain separation: the anchor's signatures over certificates can never be taken for
/// signatures over anything else.
const CERT_LABEL: &[u8] = b"kmsim/transport-cert/v1";

/// The partition's P-384 ECDSA signing key, created by the launcher; every Region trusts its
/// public key and nothing else. Redacted `Debug`.
pub struct TrustAnchor {
    key: SigningKey,
}

impl TrustAnchor {
    /// A fresh anchor.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> TrustAnchor {
        Self {
            key: SigningKey::random(rng),
        }
    }

    /// The private key as PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> SecretBytes {
        p384_pkcs8(&p384::SecretKey::from(self.key.as_nonzero_scalar()))
    }

    /// Parses what [`TrustAnchor::to_pkcs8_der`] wrote; a key on another curve is
    /// [`CryptoError::KeySpecMismatch`], garbage [`CryptoError::InvalidPrivateKey`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<TrustAnchor, CryptoError> {
        p384_from_der(der).map(|secret| Self {
            key: SigningKey::from(secret),
        })
    }

    /// The public key as DER SubjectPublicKeyInfo, which every Region is configured with.
    pub fn public_key_der(&self) -> Vec<u8> {
        p384_spki(&p384::PublicKey::from(self.key.verifying_key()))
    }

    /// Certifies that `public_key_der` is the transport key of `region` in `partition`:
    /// ECDSA P-384 / SHA-384 (DER) over the encoding in [`TransportCertificate::signed_bytes`].
    /// The key is not checked here; [`TransportCertificate::verify`] rejects a certificate for
    /// anything but a P-384 key.
    pub fn certify(
        &self,
        partition: &str,
        region: &str,
        public_key_der: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> TransportCertificate {
        let mut certificate = TransportCertificate {
            partition: partition.to_string(),
            region: region.to_string(),
            public_key_der: public_key_der.to_vec(),
            signature: Vec::new(),
        };
        let signature: DerSignature = self
            .key
            .try_sign_with_rng(rng, &certificate.signed_bytes())
            .expect("invariant: ecdsa p-384 signing only fails with probability 2^-384");
        certificate.signature = signature.as_bytes().to_vec();
        certificate
    }
}

impl fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrustAnchor(<redacted>)")
    }
}

/// The anchor's statement "`public_key_der` is the transport key of `region` in `partition`".
/// Public data; the fields are plain so that callers can compare them with what they expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportCertificate {
    /// The partition, e.g. `aws`.
    pub partition: String,
    /// The Region the key belongs to, e.g. `eu-west-1`.
    pub region: String,
    /// The Region's transport public key, DER SubjectPublicKeyInfo (P-384).
    pub public_key_der: Vec<u8>,
    /// ECDSA P-384 / SHA-384 signature of the anchor, DER.
    pub signature: Vec<u8>,
}

impl TransportCertificate {
    /// What the anchor signs: `b"kmsim/transport-cert/v1"` ‖ u16 len + partition ‖ u16 len +
    /// region ‖ u16 len + public key DER.
    pub fn signed_bytes(&self) -> Vec<u8> {
        prefixed_fields_u16(
            CERT_LABEL,
            &[
                self.partition.as_bytes(),
                self.region.as_bytes(),
                &self.public_key_der,
            ],
        )
    }

    /// Checks the anchor's signature and that the certified key is a valid P-384 SPKI. It does
    /// not check that partition and region are the expected ones: the caller compares the fields.
    /// An anchor key that is no P-384 SPKI gives [`CryptoError::InvalidPublicKey`] /
    /// [`CryptoError::KeySpecMismatch`]; everything else [`CryptoError::InvalidCertificate`].
    pub fn verify(&self, anchor_public_der: &[u8]) -> Result<(), CryptoError> {
        // The anchor's own key first: a misconfigured anchor is reported as such.
        p384_point(anchor_public_der)?;
        PublicKey::from_spki_der(AsymmetricSpec::EccNistP384, &self.public_key_der).map_err(
            |_| CryptoError::InvalidCertificate {
                reason: "certified key is no p-384 public key",
            },
        )?;
        verify_signature(
            anchor_public_der,
            &self.signed_bytes(),
            &self.signature,
            CryptoError::InvalidCertificate {
                reason: "signature does not verify",
            },
        )
    }

    /// Serialized form, format version 1: `[0]=0x01`, then u16 len + partition, u16 len +
    /// region, u16 len + public key DER, u16 len + signature DER, and nothing after.
    pub fn to_bytes(&self) -> Vec<u8> {
        prefixed_fields_u16(
            &[CERT_FORMAT_V1],
            &[
                self.partition.as_bytes(),
                self.region.as_bytes(),
                &self.public_key_der,
                &self.signature,
            ],
        )
    }

    /// Parses [`TransportCertificate::to_bytes`]. Any other input (unknown version, truncation,
    /// trailing bytes, non-UTF-8 names, a non-canonical length) gives
    /// [`CryptoError::InvalidCertificate`]; never panics. Parsing does not verify: call
    /// [`TransportCertificate::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<TransportCertificate, CryptoError> {
        let malformed = CryptoError::InvalidCertificate {
            reason: "malformed certificate",
        };
        let mut reader = Reader::new(bytes);
        let parsed = (|| {
            if reader.u8()? != CERT_FORMAT_V1 {
                return None;
            }
            let partition = std::str::from_utf8(reader.field_u16()?).ok()?.to_string();
            let region = std::str::from_utf8(reader.field_u16()?).ok()?.to_string();
            let public_key_der = reader.field_u16()?.to_vec();
            let signature = reader.field_u16()?.to_vec();
            reader.is_empty().then_some(TransportCertificate {
                partition,
                region,
                public_key_der,
                signature,
            })
        })();
        parsed.ok_or(malformed)
    }
}

#[cfg(test)]
mod tests;
