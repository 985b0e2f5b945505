//! The in-memory cache of unwrapped key material, and the other secrets a Region seals under
//! its domain key (grant tokens, import tokens).
//!
//! Material is stored wrapped under the Region's domain key everywhere (Raft log, RocksDB,
//! snapshots); a node unwraps a version the first time it needs it, parses it for its key
//! family (an AES key, an HMAC key, or a parsed RSA/ECC private key, so the hot path never
//! re-parses DER) and keeps it in memory only.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kmsim_core::ids::{KeyId, Scope};
use kmsim_core::key::{KeyFamily, KeyRecord, KeySpec};
use kmsim_core::KmsError;
use kmsim_crypto::{
    unwrap_secret, wrap_secret, AsymmetricSpec, DomainKey, KeyMaterial, PrivateKey, SecretBytes,
    WrapAad,
};

use crate::entropy::Entropy;

/// The purpose string bound into the wrap of key material.
pub const MATERIAL_PURPOSE: &str = "key-material";

/// One unwrapped material version, ready to use.
pub enum Unwrapped {
    /// `SYMMETRIC_DEFAULT`: AES-256 material.
    Aes(KeyMaterial),
    /// `HMAC_*`: the HMAC key.
    Hmac(SecretBytes),
    /// `RSA_*` / `ECC_*`: the parsed private key (boxed: it is large, and the cache holds
    /// mostly AES keys).
    Private(Box<PrivateKey>),
}

/// The crypto crate's spec of an asymmetric key spec.
pub fn asymmetric_spec(spec: KeySpec) -> Option<AsymmetricSpec> {
    AsymmetricSpec::from_wire_name(spec.as_str())
}

/// Parses raw material (as stored, after unwrapping) for a key of `spec`. Also the check that
/// imported material has the form the key needs.
pub fn parse_material(spec: KeySpec, raw: &[u8]) -> Result<Unwrapped, String> {
    match spec.family() {
        KeyFamily::Symmetric => KeyMaterial::from_bytes(raw)
            .map(Unwrapped::Aes)
            .map_err(|_| "symmetric key material must be exactly 32 bytes".to_string()),
        KeyFamily::Hmac => {
            let range = crate::kms::specs::hmac_spec(spec)
                .map(|h| h.import_len_range())
                .ok_or_else(|| format!("{spec} is not an HMAC key spec"))?;
            if range.contains(&raw.len()) {
                Ok(Unwrapped::Hmac(SecretBytes::from_slice(raw)))
            } else {
                Err(format!(
                    "{spec} key material must be {} to {} bytes long",
                    range.start(),
                    range.end()
                ))
            }
        }
        KeyFamily::Rsa | KeyFamily::Ecc => {
            let a = asymmetric_spec(spec).ok_or_else(|| format!("{spec} is not supported"))?;
            PrivateKey::from_pkcs8_der(a, raw)
                .map(|k| Unwrapped::Private(Box::new(k)))
                .map_err(|_| {
                    format!("the key material is not a {spec} private key in DER (PKCS#8)")
                })
        }
        KeyFamily::Unsupported => Err(format!("{spec} is not supported")),
    }
}

/// Unwrapped material by key, then version; and the Region's domain key for wrapping.
pub struct MaterialCache {
    domain: DomainKey,
    scope: Scope,
    cache: RwLock<HashMap<KeyId, HashMap<u32, Arc<Unwrapped>>>>,
}

impl MaterialCache {
    /// A cache that unwraps with this Region's domain key.
    pub fn new(domain: DomainKey, scope: Scope) -> MaterialCache {
        MaterialCache {
            domain,
            scope,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn aad<'a>(&'a self, purpose: &'a str, key_id: &'a str, version: u32) -> WrapAad<'a> {
        WrapAad {
            purpose,
            region: self.scope.region.as_str(),
            key_id,
            version,
        }
    }

    /// The Region's domain key (for the other secrets it wraps, e.g. the transport key).
    pub fn domain(&self) -> &DomainKey {
        &self.domain
    }

    /// Wraps material for one key version (done by the proposing node, before the command
    /// enters the Raft log).
    pub fn wrap(&self, key_id: &KeyId, version: u32, material: &[u8], rng: &Entropy) -> Vec<u8> {
        self.seal(MATERIAL_PURPOSE, key_id.as_str(), version, material, rng)
    }

    /// Wraps any Region secret under the domain key, bound to `purpose`, `owner` and `version`.
    pub fn seal(
        &self,
        purpose: &str,
        owner: &str,
        version: u32,
        secret: &[u8],
        rng: &Entropy,
    ) -> Vec<u8> {
        wrap_secret(
            &self.domain,
            secret,
            &self.aad(purpose, owner, version),
            &mut rng.rng(),
        )
    }

    /// Reverses [`MaterialCache::seal`]; `None` when the bytes were not sealed by this Region
    /// with this binding.
    pub fn open(
        &self,
        purpose: &str,
        owner: &str,
        version: u32,
        sealed: &[u8],
    ) -> Option<SecretBytes> {
        unwrap_secret(&self.domain, sealed, &self.aad(purpose, owner, version))
            .ok()
            .map(SecretBytes::from)
    }

    /// The unwrapped material of one version of `key`, from the cache or by unwrapping it.
    pub fn get(&self, key: &KeyRecord, version: u32) -> Result<Arc<Unwrapped>, KmsError> {
        // Material this Region no longer holds (deleted or expired imported material) is never
        // served from the cache, even if a node still has it unwrapped.
        let stored = key.regional.materials.get(&version).ok_or_else(|| {
            KmsError::Internal(format!(
                "key {} has no material version {version} in this Region",
                key.key_id
            ))
        })?;
        // The hot path: a read lock and two lookups, no allocation.
        if let Some(found) = self
            .cache
            .read()
            .expect("invariant: lock not poisoned")
            .get(&key.key_id)
            .and_then(|versions| versions.get(&version))
        {
            return Ok(found.clone());
        }
        let plain = unwrap_secret(
            &self.domain,
            &stored.wrapped,
            &self.aad(MATERIAL_PURPOSE, key.key_id.as_str(), version),
        )
        .map_err(|_| {
            // The domain key does not open material that this Region stored: a wrong key file
            // or a corrupted record. Never a client error.
            tracing::error!(key_id = %key.key_id, version, "stored key material does not unwrap");
            KmsError::Internal("stored key material could not be unwrapped".into())
        })?;
        let material = Arc::new(parse_material(key.shared.key_spec, &plain).map_err(|e| {
            tracing::error!(key_id = %key.key_id, version, "stored key material does not parse");
            KmsError::Internal(format!("stored key material is unusable: {e}"))
        })?);
        self.cache
            .write()
            .expect("invariant: lock not poisoned")
            .entry(key.key_id.clone())
            .or_default()
            .insert(version, material.clone());
        Ok(material)
    }

    /// The raw bytes of one stored version, unwrapped but not cached (the admin test hook that
    /// lets leak tests know what to search for).
    pub fn unwrap_raw(&self, key: &KeyRecord, version: u32) -> Result<SecretBytes, KmsError> {
        let stored = key.regional.materials.get(&version).ok_or_else(|| {
            KmsError::NotFound(format!("no material version {version} in this Region"))
        })?;
        unwrap_secret(
            &self.domain,
            &stored.wrapped,
            &self.aad(MATERIAL_PURPOSE, key.key_id.as_str(), version),
        )
        .map(SecretBytes::from)
        .map_err(|_| KmsError::Internal("stored key material could not be unwrapped".into()))
    }

    /// Drops the cached material of a key (deleted, or its imported material deleted).
    pub fn forget(&self, key_id: &KeyId) {
        self.cache
            .write()
            .expect("invariant: lock not poisoned")
            .remove(key_id);
    }
}
