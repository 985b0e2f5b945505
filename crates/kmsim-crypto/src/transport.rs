//! Wrapping secrets for the trip between two Regions (docs/ARCHITECTURE.md, "Rules that keep it
//! correct" and "The envelope"): static-static ECDH(P-384) → HKDF-SHA-384 → AES-256-GCM.
//!
//! Each Region holds one [`TransportKeyPair`]; its public key is certified by the partition's
//! trust anchor ([`crate::TrustAnchor`]). Material sealed by the source Region can be opened only
//! by the destination Region, which re-wraps it under its own domain key.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use elliptic_curve::ecdh::diffie_hellman;
use hkdf::Hkdf;
use p384::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rand::{CryptoRng, RngCore};
use sha2::Sha384;
use zeroize::Zeroizing;

use crate::aead::{open_detached, seal_appending, NONCE_LEN, TAG_LEN};
use crate::encoding::{prefixed_fields_u16, put_field_u32};
use crate::key_der::{ec_secret_key, PrivateDer};
use crate::public_key::PublicInner;
use crate::{AsymmetricSpec, CryptoError, PublicKey, SecretBytes};

/// First byte of every sealed secret, so that a future format can be told apart.
const TRANSPORT_FORMAT_V1: u8 = 0x01;
/// Domain separation of the HKDF info and of the associated data.
const TRANSPORT_LABEL: &[u8] = b"kmsim/transport/v1";
const SALT_LEN: usize = 32;
/// Format byte + salt + nonce.
const HEADER_LEN: usize = 1 + SALT_LEN + NONCE_LEN;

/// The most peer keys whose ECDH secret a key pair keeps (a topology has a few Regions).
const SHARED_CACHE_MAX: usize = 64;

/// A Region's P-384 transport key pair. The private half is stored wrapped under the Region's
/// domain key; the public half is what the trust anchor certifies. Redacted `Debug`.
///
/// The static-static ECDH secret with each peer key is computed once and kept in memory (wiped
/// on drop, like the private key it derives from): every message still gets its own AES key
/// from HKDF with a fresh salt, and the scalar multiplication leaves the per-message path.
pub struct TransportKeyPair {
    secret: p384::SecretKey,
    shared: Mutex<HashMap<Vec<u8>, SecretBytes>>,
}

impl TransportKeyPair {
    /// A fresh key pair (the launcher or a Region's first start does this).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> TransportKeyPair {
        Self::new(p384::SecretKey::random(rng))
    }

    /// The private key as PKCS#8 DER, to be domain-wrapped.
    pub fn to_pkcs8_der(&self) -> SecretBytes {
        p384_pkcs8(&self.secret)
    }

    /// Parses what [`TransportKeyPair::to_pkcs8_der`] wrote; a key on another curve is
    /// [`CryptoError::KeySpecMismatch`], garbage [`CryptoError::InvalidPrivateKey`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<TransportKeyPair, CryptoError> {
        p384_from_der(der).map(Self::new)
    }

    fn new(secret: p384::SecretKey) -> TransportKeyPair {
        TransportKeyPair {
            secret,
            shared: Mutex::new(HashMap::new()),
        }
    }

    /// The public key as DER SubjectPublicKeyInfo, for the certificate.
    pub fn public_key_der(&self) -> Vec<u8> {
        p384_spki(&self.secret.public_key())
    }

    /// The raw ECDH secret with a peer's public key; both sides of a pair compute the same.
    /// Computed on first use per peer key, then taken from memory.
    fn shared_secret(&self, peer_public_der: &[u8]) -> Result<SecretBytes, CryptoError> {
        let mut cache = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(z) = cache.get(peer_public_der) {
            return Ok(z.clone());
        }
        let z = self.compute_shared_secret(peer_public_der)?;
        if cache.len() >= SHARED_CACHE_MAX {
            cache.clear();
        }
        cache.insert(peer_public_der.to_vec(), z.clone());
        Ok(z)
    }

    fn compute_shared_secret(&self, peer_public_der: &[u8]) -> Result<SecretBytes, CryptoError> {
        let peer = PublicKey::from_spki_der(AsymmetricSpec::EccNistP384, peer_public_der)?;
        match peer.inner() {
            PublicInner::P384(point) => Ok(SecretBytes::from_slice(
                diffie_hellman(self.secret.to_nonzero_scalar(), point.as_affine())
                    .raw_secret_bytes(),
            )),
            // from_spki_der decoded it as a P-384 key.
            _ => Err(CryptoError::InvalidPublicKey),
        }
    }
}

impl fmt::Debug for TransportKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransportKeyPair(<redacted>)")
    }
}

/// What a sealed secret is bound to. Every field is authenticated: opening with any other value
/// of any field fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportAad<'a> {
    /// The KMS key the secret belongs to.
    pub key_id: &'a str,
    /// The sending Region.
    pub source: &'a str,
    /// The receiving Region.
    pub destination: &'a str,
    /// The key-material (or shared-property) version the message carries.
    pub version: u64,
    /// The caller's serialized message fields, so that the whole message is authenticated with
    /// the secret.
    pub context: &'a [u8],
}

impl TransportAad<'_> {
    /// `b"kmsim/transport/v1"` ‖ u16 len + key_id ‖ u16 len + source ‖ u16 len + destination ‖
    /// u64 BE version ‖ u32 len + context.
    fn encode(&self) -> Vec<u8> {
        let mut out = prefixed_fields_u16(
            TRANSPORT_LABEL,
            &[
                self.key_id.as_bytes(),
                self.source.as_bytes(),
                self.destination.as_bytes(),
            ],
        );
        out.reserve(8 + 4 + self.context.len());
        out.extend_from_slice(&self.version.to_be_bytes());
        put_field_u32(&mut out, self.context);
        out
    }

    /// HKDF info: `b"kmsim/transport/v1"` ‖ u16 len + source ‖ u16 len + destination, so that a
    /// key derived for one direction is never the key of the other.
    fn kdf_info(&self) -> Vec<u8> {
        prefixed_fields_u16(
            TRANSPORT_LABEL,
            &[self.source.as_bytes(), self.destination.as_bytes()],
        )
    }
}

/// Seals `secret` from `sender` to the Region whose transport public key is
/// `recipient_public_der`, bound to `aad`.
///
/// Z = ECDH(sender, recipient) (P-384, x-coordinate); K = HKDF-SHA-384(salt = 32 random bytes,
/// IKM = Z, info = [`TransportAad`] source and destination) → 32 bytes; AES-256-GCM under K with
/// a random nonce and the encoded `aad` as associated data. Output: `[0]=0x01`, `[1..33]` salt,
/// `[33..45]` nonce, `[45..]` ciphertext ‖ 16-byte tag. The random salt makes every K fresh, so
/// a static key pair never reuses a key and nonce.
pub fn seal_transport(
    sender: &TransportKeyPair,
    recipient_public_der: &[u8],
    aad: &TransportAad<'_>,
    secret: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, CryptoError> {
    let shared = sender.shared_secret(recipient_public_der)?;
    let mut out = Vec::with_capacity(HEADER_LEN + secret.len() + TAG_LEN);
    out.push(TRANSPORT_FORMAT_V1);
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    out.extend_from_slice(&salt);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    out.extend_from_slice(&nonce);
    let key = derive_key(&shared, &salt, aad);
    // Only beyond the AES-GCM limit of 64 GiB; `seal_appending` wipes the buffer then.
    seal_appending(&key, &nonce, &aad.encode(), secret, &mut out).map_err(|_| {
        CryptoError::PlaintextTooLarge {
            actual: secret.len(),
        }
    })?;
    Ok(out)
}

/// Opens what [`seal_transport`] made, with the recipient's key pair and the sender's certified
/// public key. Any other sender or recipient key, any change of any `aad` field and any changed,
/// missing or extra byte gives [`CryptoError::TransportOpenFailed`]; a sender key that is no
/// P-384 SPKI gives [`CryptoError::InvalidPublicKey`] / [`CryptoError::KeySpecMismatch`].
pub fn open_transport(
    recipient: &TransportKeyPair,
    sender_public_der: &[u8],
    aad: &TransportAad<'_>,
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let failed = CryptoError::TransportOpenFailed;
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != TRANSPORT_FORMAT_V1 {
        return Err(failed);
    }
    let shared = recipient.shared_secret(sender_public_der)?;
    let salt = &sealed[1..1 + SALT_LEN];
    let nonce: &[u8; NONCE_LEN] = sealed[1 + SALT_LEN..HEADER_LEN]
        .try_into()
        .map_err(|_| failed.clone())?;
    let key = derive_key(&shared, salt, aad);
    open_detached(&key, nonce, &aad.encode(), &sealed[HEADER_LEN..])
        .map(SecretBytes::from)
        .map_err(|_| failed)
}

/// HKDF-SHA-384 of the shared secret into the AES-256 key of one message.
fn derive_key(shared: &SecretBytes, salt: &[u8], aad: &TransportAad<'_>) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha384>::new(Some(salt), shared.expose())
        .expand(&aad.kdf_info(), &mut *key)
        .expect("invariant: 32 bytes is far below the HKDF-SHA-384 output limit");
    key
}

/// PKCS#8 DER of a P-384 secret key (shared with the trust anchor).
pub(crate) fn p384_pkcs8(secret: &p384::SecretKey) -> SecretBytes {
    let document = secret
        .to_pkcs8_der()
        .expect("invariant: a p-384 key always encodes as PKCS#8");
    SecretBytes::from_slice(document.as_bytes())
}

/// Reads a P-384 private key in any form [`crate::PrivateKey::from_pkcs8_der`] accepts.
pub(crate) fn p384_from_der(der: &[u8]) -> Result<p384::SecretKey, CryptoError> {
    let parsed = PrivateDer::parse(der)?;
    parsed.check_spec(AsymmetricSpec::EccNistP384)?;
    match parsed {
        PrivateDer::Ec { sec1, .. } => ec_secret_key::<p384::NistP384>(sec1),
        _ => Err(CryptoError::InvalidPrivateKey),
    }
}

/// SPKI DER of a P-384 public key.
pub(crate) fn p384_spki(public: &p384::PublicKey) -> Vec<u8> {
    public
        .to_public_key_der()
        .expect("invariant: a p-384 public key always encodes as SPKI")
        .into_vec()
}

#[cfg(test)]
mod tests;
