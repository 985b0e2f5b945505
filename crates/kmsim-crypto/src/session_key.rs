//! A receiving node's short-lived P-384 session key, and the statement by which its Region
//! vouches for it (docs/ARCHITECTURE.md, "The envelope").
//!
//! A node keeps its session key pairs in memory only and wipes each one after its rotation
//! period and grace window: a request sealed to it cannot be opened afterwards by anyone, even
//! with every static key of both Regions (forward secrecy). A sender learns a node's current
//! session public key by sending a fresh random challenge; the node answers with the key and
//! its Region's static-key signature over ([`SessionKeyClaim`]) Region, node, key and
//! challenge, so a recorded statement is never taken for a fresh one.

use std::fmt;

use elliptic_curve::ecdh::diffie_hellman;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha384};

use crate::encoding::prefixed_fields_u16;
use crate::transport::{p384_point, p384_spki, verify_signature};
use crate::{CryptoError, SecretBytes, TransportKeyPair};

/// Length of a session key ID (a truncated hash of its public key).
pub const SESSION_KEY_ID_LEN: usize = 16;
/// Domain separation of session key IDs.
const ID_LABEL: &[u8] = b"kmsim/sync/v2/session-key-id";
/// Domain separation of the Region's signature over a session key.
const CLAIM_LABEL: &[u8] = b"kmsim/sync/v2/session-key";

/// One session key pair of a receiving node. Never serialized; the private scalar is wiped when
/// the pair is dropped (`p384::SecretKey` zeroizes itself). Redacted `Debug`.
pub struct SessionKeyPair {
    secret: p384::SecretKey,
    public_der: Vec<u8>,
    id: [u8; SESSION_KEY_ID_LEN],
}

impl SessionKeyPair {
    /// A fresh session key pair.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> SessionKeyPair {
        Self::new(p384::SecretKey::random(rng))
    }

    fn new(secret: p384::SecretKey) -> SessionKeyPair {
        let public_der = p384_spki(&secret.public_key());
        let id = Self::id_of(&public_der);
        SessionKeyPair {
            secret,
            public_der,
            id,
        }
    }

    /// A session key pair from PKCS#8 DER: only for test vectors made by other tools.
    #[cfg(test)]
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<SessionKeyPair, CryptoError> {
        crate::transport::p384_from_der(der).map(Self::new)
    }

    /// The public key, DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Its ID: the first 16 bytes of SHA-384(`b"kmsim/sync/v2/session-key-id"` ‖ SPKI).
    pub fn id(&self) -> [u8; SESSION_KEY_ID_LEN] {
        self.id
    }

    /// The ID of a session public key (SPKI DER), as [`SessionKeyPair::id`] computes it.
    pub fn id_of(public_der: &[u8]) -> [u8; SESSION_KEY_ID_LEN] {
        let digest = Sha384::new()
            .chain_update(ID_LABEL)
            .chain_update(public_der)
            .finalize();
        let mut id = [0u8; SESSION_KEY_ID_LEN];
        id.copy_from_slice(&digest[..SESSION_KEY_ID_LEN]);
        id
    }

    /// The raw ECDH secret (x-coordinate) with a peer's ephemeral key.
    pub(crate) fn agree(&self, peer: &p384::PublicKey) -> SecretBytes {
        SecretBytes::from_slice(
            diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine()).raw_secret_bytes(),
        )
    }
}

impl fmt::Debug for SessionKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeyPair(<redacted>)")
    }
}

/// "`public_key_der` is the current session key of node `node_id` of `region`", said for the
/// requester's `challenge`. The Region's static transport key signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionKeyClaim<'a> {
    /// The Region of the node.
    pub region: &'a str,
    /// The node's ID in its Region.
    pub node_id: u64,
    /// The session public key, SPKI DER (P-384).
    pub public_key_der: &'a [u8],
    /// The requester's random challenge.
    pub challenge: &'a [u8],
}

impl SessionKeyClaim<'_> {
    /// `b"kmsim/sync/v2/session-key"` ‖ u16 len + region ‖ u16 len + node ID (u64 BE) ‖ u16 len
    /// + public key ‖ u16 len + challenge.
    fn signed_bytes(&self) -> Vec<u8> {
        prefixed_fields_u16(
            CLAIM_LABEL,
            &[
                self.region.as_bytes(),
                &self.node_id.to_be_bytes(),
                self.public_key_der,
                self.challenge,
            ],
        )
    }

    /// The Region's signature (ECDSA P-384 / SHA-384, DER) over the claim.
    pub fn sign(
        &self,
        region_key: &TransportKeyPair,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Vec<u8> {
        region_key.sign(&self.signed_bytes(), rng)
    }

    /// Checks the claim's signature under the Region's certified static key, and that the key
    /// claimed is a P-384 public key. Anything else is [`CryptoError::InvalidCertificate`] (a
    /// static key that is no P-384 SPKI: [`CryptoError::InvalidPublicKey`] /
    /// [`CryptoError::KeySpecMismatch`]).
    pub fn verify(&self, region_public_der: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        verify_signature(
            region_public_der,
            &self.signed_bytes(),
            signature,
            CryptoError::InvalidCertificate {
                reason: "session key signature does not verify",
            },
        )?;
        p384_point(self.public_key_der)
            .map(|_| ())
            .map_err(|_| CryptoError::InvalidCertificate {
                reason: "session key is no p-384 public key",
            })
    }
}
