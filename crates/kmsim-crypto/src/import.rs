//! Importing key material: the RSA wrapping key of GetParametersForImport, the unwrapping of
//! ImportKeyMaterial, and the commitment that names imported material across Regions.

use std::fmt;

use aes_kw::KekAes256;
use pkcs8::EncodePrivateKey;
use rand::{CryptoRng, RngCore};
use rsa::pkcs8::EncodePublicKey;
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::encoding::prefixed_fields_u16;
use crate::hash::HashAlg;
use crate::hex::encode_into;
use crate::key_der::{rsa_bits, PrivateDer};
use crate::{rsa_padding, CryptoError, ImportWrappingAlgorithm, SecretBytes};

/// Domain separation of [`material_commitment`] from every other SHA-256 use.
const COMMITMENT_PREFIX: &[u8] = b"kmsim/key-material-id/v1";
/// Length of the ephemeral AES key inside RSA_AES_KEY_WRAP_*: AWS uses AES-256.
const EPHEMERAL_KEY_LEN: usize = 32;
/// The RFC 5649 integrity-check value prefix adds 8 bytes, and the shortest wrap is two blocks.
const KWP_MIN_LEN: usize = 16;
/// AES key wrap works on 8-byte semiblocks.
const KWP_SEMIBLOCK: usize = 8;

/// The RSA key pair of GetParametersForImport; callers receive the public half and send back
/// material wrapped under it. Redacted `Debug`, wiped on drop (by `rsa`).
pub struct ImportWrappingKey {
    key: RsaPrivateKey,
}

impl ImportWrappingKey {
    /// A fresh wrapping key of `bits` (2048, 3072 or 4096, the WrappingKeySpec values; anything
    /// else is [`CryptoError::UnsupportedKeySize`]).
    pub fn generate(
        bits: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<ImportWrappingKey, CryptoError> {
        check_bits(bits)?;
        RsaPrivateKey::new(rng, bits)
            .map(|key| Self { key })
            .map_err(|_| CryptoError::PrimitiveFailed {
                operation: "rsa key generation",
            })
    }

    /// Parses what [`ImportWrappingKey::to_pkcs8_der`] wrote (RSA PKCS#8; a PKCS#1 key is read
    /// too). Only 2048, 3072 and 4096-bit keys are wrapping keys.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<ImportWrappingKey, CryptoError> {
        match PrivateDer::parse(der)? {
            PrivateDer::Rsa(key) => {
                check_bits(rsa_bits(&*key))?;
                Ok(Self { key: *key })
            }
            PrivateDer::Ec { .. } | PrivateDer::Other(_) => Err(CryptoError::InvalidPrivateKey),
        }
    }

    /// The private key as PKCS#8 DER, for storing it (domain-wrapped) until the import token
    /// expires.
    pub fn to_pkcs8_der(&self) -> SecretBytes {
        let document = self
            .key
            .to_pkcs8_der()
            .expect("invariant: a parsed rsa key always encodes as PKCS#8");
        SecretBytes::from_slice(document.as_bytes())
    }

    /// The public key as DER SubjectPublicKeyInfo: the `PublicKey` of GetParametersForImport.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key
            .to_public_key()
            .to_public_key_der()
            .expect("invariant: an rsa public key always encodes as SPKI")
            .into_vec()
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        rsa_bits(&self.key)
    }

    /// Unwraps `encrypted` (the EncryptedKeyMaterial of ImportKeyMaterial) with `alg`:
    ///
    /// - `RSAES_OAEP_SHA_1/256`: the material itself, OAEP-encrypted (MGF1 with the same hash).
    /// - `RSA_AES_KEY_WRAP_SHA_1/256` (PKCS#11 `CKM_RSA_AES_KEY_WRAP`): the first modulus-length
    ///   bytes are an OAEP-encrypted ephemeral AES-256 key, the rest is the material under AES key
    ///   wrap with padding (RFC 5649) with that key. `openssl pkeyutl -encrypt -pkeyopt
    ///   rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256` of the AES
    ///   key followed by `openssl enc -id-aes256-wrap-pad -K <hex> -iv A65959A6` of the material
    ///   makes one.
    ///
    /// Every failure (length, OAEP, ephemeral key size, key-wrap integrity) is the same
    /// [`CryptoError::InvalidCiphertext`], so that the error tells an attacker nothing. Never
    /// panics. The caller checks the material's length and form for the key's spec.
    pub fn unwrap_import(
        &self,
        alg: ImportWrappingAlgorithm,
        encrypted: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let invalid = CryptoError::InvalidCiphertext;
        match alg {
            ImportWrappingAlgorithm::RsaesOaepSha1 => {
                rsa_padding::oaep_decrypt(&self.key, HashAlg::Sha1, encrypted)
            }
            ImportWrappingAlgorithm::RsaesOaepSha256 => {
                rsa_padding::oaep_decrypt(&self.key, HashAlg::Sha256, encrypted)
            }
            ImportWrappingAlgorithm::RsaAesKeyWrapSha1 => {
                self.unwrap_key_wrap(HashAlg::Sha1, encrypted)
            }
            ImportWrappingAlgorithm::RsaAesKeyWrapSha256 => {
                self.unwrap_key_wrap(HashAlg::Sha256, encrypted)
            }
        }
        .map_err(|_| invalid)
    }

    fn unwrap_key_wrap(&self, hash: HashAlg, encrypted: &[u8]) -> Result<SecretBytes, CryptoError> {
        let invalid = CryptoError::InvalidCiphertext;
        let modulus_len = self.bits().div_ceil(8);
        if encrypted.len() < modulus_len + KWP_MIN_LEN {
            return Err(invalid);
        }
        let (wrapped_key, wrapped_material) = encrypted.split_at(modulus_len);
        if wrapped_material.len() % KWP_SEMIBLOCK != 0 {
            return Err(invalid);
        }
        let ephemeral = rsa_padding::oaep_decrypt(&self.key, hash, wrapped_key)?;
        let ephemeral: &[u8; EPHEMERAL_KEY_LEN] =
            ephemeral.expose().try_into().map_err(|_| invalid.clone())?;
        // `Kek` holds the expanded AES key, which the `aes` crate's `zeroize` feature wipes.
        let kek = KekAes256::new(ephemeral.into());
        let mut material = Zeroizing::new(vec![0u8; wrapped_material.len() - KWP_SEMIBLOCK]);
        let len = kek
            .unwrap_with_padding(wrapped_material, &mut material)
            .map_err(|_| invalid)?
            .len();
        // Truncating keeps the allocation, so the padding bytes are wiped with the rest.
        material.truncate(len);
        Ok(SecretBytes::from(material))
    }
}

impl fmt::Debug for ImportWrappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportWrappingKey")
            .field("bits", &self.bits())
            .field("key", &"<redacted>")
            .finish()
    }
}

fn check_bits(bits: usize) -> Result<(), CryptoError> {
    if matches!(bits, 2048 | 3072 | 4096) {
        Ok(())
    } else {
        Err(CryptoError::UnsupportedKeySize { bits })
    }
}

/// The KeyMaterialId of any material (imported or generated): 64 lowercase hex characters of
/// SHA-256(`b"kmsim/key-material-id/v1"` ‖ u16 BE len ‖ `key_id` ‖ `material`).
///
/// Another Region importing material into a replica of the same multi-Region key computes the
/// same id exactly when it received the same material, so the material never has to cross
/// Regions to be compared. A plain hash commitment suffices because the material is a secret of
/// at least 128 bits (AES-256 keys, HMAC keys of at least 28 bytes, private keys): it cannot be
/// guessed and checked against the id, and SHA-256's preimage and collision resistance make the id
/// bind exactly one material. Binding the key id keeps the ids of one material imported into two
/// unrelated keys apart, so ids reveal no reuse across keys.
pub fn material_commitment(key_id: &str, material: &[u8]) -> String {
    let prefix = prefixed_fields_u16(COMMITMENT_PREFIX, &[key_id.as_bytes()]);
    let digest = Sha256::new()
        .chain_update(&prefix)
        .chain_update(material)
        .finalize();
    let mut out = String::with_capacity(64);
    encode_into(&digest, &mut out);
    out
}

#[cfg(test)]
mod tests;
