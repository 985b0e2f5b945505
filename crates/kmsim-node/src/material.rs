//! The in-memory cache of unwrapped key material. Material is stored wrapped under the
//! Region's domain key everywhere (Raft log, RocksDB, snapshots); a node unwraps a version the
//! first time it needs it and keeps it in memory only.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kmsim_core::ids::{KeyId, Scope};
use kmsim_core::key::MaterialVersion;
use kmsim_core::KmsError;
use kmsim_crypto::{unwrap_secret, wrap_secret, DomainKey, KeyMaterial, WrapAad};

use crate::entropy::Entropy;

/// The purpose string bound into the wrap of key material.
pub const MATERIAL_PURPOSE: &str = "key-material";

/// Unwrapped material by key, then version.
pub struct MaterialCache {
    domain: DomainKey,
    scope: Scope,
    cache: RwLock<HashMap<KeyId, HashMap<u32, Arc<KeyMaterial>>>>,
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

    fn aad<'a>(&'a self, key_id: &'a KeyId, version: u32) -> WrapAad<'a> {
        WrapAad {
            purpose: MATERIAL_PURPOSE,
            region: self.scope.region.as_str(),
            key_id: key_id.as_str(),
            version,
        }
    }

    /// Wraps fresh material for a new key version (done by the proposing node).
    pub fn wrap(
        &self,
        key_id: &KeyId,
        version: u32,
        material: &KeyMaterial,
        rng: &Entropy,
    ) -> Vec<u8> {
        wrap_secret(
            &self.domain,
            material.expose(),
            &self.aad(key_id, version),
            &mut rng.rng(),
        )
    }

    /// The unwrapped material of one version, from the cache or by unwrapping it.
    pub fn get(&self, key_id: &KeyId, m: &MaterialVersion) -> Result<Arc<KeyMaterial>, KmsError> {
        // The hot path: a read lock and two lookups, no allocation.
        if let Some(found) = self
            .cache
            .read()
            .expect("invariant: lock not poisoned")
            .get(key_id)
            .and_then(|versions| versions.get(&m.version))
        {
            return Ok(found.clone());
        }
        let plain = unwrap_secret(&self.domain, &m.wrapped, &self.aad(key_id, m.version)).map_err(|_| {
            // The domain key does not open material that this Region stored: a wrong key file
            // or a corrupted record. Never a client error.
            tracing::error!(key_id = %key_id, version = m.version, "stored key material does not unwrap");
            KmsError::Internal("stored key material could not be unwrapped".into())
        })?;
        let material =
            Arc::new(KeyMaterial::from_bytes(&plain).map_err(|_| {
                KmsError::Internal("stored key material has the wrong length".into())
            })?);
        self.cache
            .write()
            .expect("invariant: lock not poisoned")
            .entry(key_id.clone())
            .or_default()
            .insert(m.version, material.clone());
        Ok(material)
    }

    /// Drops the cached material of a deleted key.
    pub fn forget(&self, key_id: &KeyId) {
        self.cache
            .write()
            .expect("invariant: lock not poisoned")
            .remove(key_id);
    }
}
