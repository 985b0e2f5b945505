//! The in-memory cache of unwrapped key material, and the other secrets a Region seals under
//! its domain key (grant tokens, import tokens).
//!
//! Material is stored wrapped under the Region's domain key everywhere (Raft log, RocksDB,
//! snapshots); a node unwraps a version the first time it needs it, parses it for its key
//! family (an AES key, an HMAC key, or a parsed RSA/ECC private key, so the hot path never
//! re-parses DER) and keeps it in memory only, in a least-recently-used cache of a configured
//! number of keys (`[caches] material_keys`). Every node evicts a key's material when an
//! applied command takes material away from it (the key deleted, imported material deleted or
//! expired, versions dropped by a synchronization): see `app.rs`.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

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

/// Unwrapped material by key, then version, for at most a configured number of keys; and the
/// Region's domain key for wrapping.
pub struct MaterialCache {
    domain: DomainKey,
    scope: Scope,
    /// A mutex, not a read-write lock: a hit moves the key to the front. It is held only for a
    /// lookup or an insert, never while material is unwrapped or used.
    cache: Mutex<LruCache<KeyId, HashMap<u32, Arc<Unwrapped>>>>,
}

impl MaterialCache {
    /// A cache that unwraps with this Region's domain key and holds the material of at most
    /// `capacity` keys (the least recently used is evicted first).
    pub fn new(domain: DomainKey, scope: Scope, capacity: NonZeroUsize) -> MaterialCache {
        MaterialCache {
            domain,
            scope,
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<KeyId, HashMap<u32, Arc<Unwrapped>>>> {
        self.cache.lock().expect("invariant: lock not poisoned")
    }

    /// How many keys have material in the cache now.
    pub fn len(&self) -> usize {
        self.cache().len()
    }

    /// True when no key has material in the cache.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys the cache holds.
    pub fn capacity(&self) -> usize {
        self.cap().get()
    }

    /// True when the cache holds material of `key_id`.
    pub fn holds(&self, key_id: &KeyId) -> bool {
        self.cache().contains(key_id)
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
        // The hot path: one short lock and two lookups, no allocation.
        if let Some(found) = self
            .cache()
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
        // Inserting may evict the least recently used key: its material is dropped (and wiped,
        // once no call still uses it) after the lock is released.
        let evicted = {
            let mut cache = self.cache();
            match cache.get_mut(&key.key_id) {
                Some(versions) => {
                    versions.insert(version, material.clone());
                    None
                }
                None => cache.push(
                    key.key_id.clone(),
                    HashMap::from([(version, material.clone())]),
                ),
            }
        };
        drop(evicted);
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

    /// Drops every key's material (the state was replaced whole, by a snapshot).
    pub fn clear(&self) {
        let empty = LruCache::new(self.cap());
        let gone = std::mem::replace(&mut *self.cache(), empty);
        drop(gone);
    }

    fn cap(&self) -> NonZeroUsize {
        self.cache().cap()
    }

    /// Drops the cached material of a key (deleted, or some of its material deleted). Called on
    /// every node when such a command is applied.
    pub fn forget(&self, key_id: &KeyId) {
        // Dropped after the lock is released.
        let gone = self.cache().pop(key_id);
        drop(gone);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kmsim_core::ids::{AccountId, Partition, Region};
    use kmsim_core::key::{
        KeyState, KeyUsage, Origin, RegionalMaterial, RegionalProps, RotationConfig, SharedProps,
        SyncBook,
    };

    use super::*;

    fn cache(capacity: usize) -> MaterialCache {
        let scope = Scope {
            partition: Partition::parse("aws").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
        };
        MaterialCache::new(
            DomainKey::generate(&mut rand::rngs::OsRng),
            scope,
            NonZeroUsize::new(capacity).unwrap(),
        )
    }

    /// A symmetric key `n` with material versions `versions`, wrapped by `cache`.
    fn key(cache: &MaterialCache, n: u8, versions: &[u32]) -> KeyRecord {
        let key_id = KeyId::single_region_from_bytes([n; 16]);
        let materials = versions
            .iter()
            .map(|v| {
                let wrapped = cache.wrap(&key_id, *v, &[n; 32], &Entropy);
                (
                    *v,
                    RegionalMaterial {
                        wrapped,
                        import: None,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        KeyRecord {
            key_id,
            shared: SharedProps {
                key_spec: KeySpec::SymmetricDefault,
                key_usage: KeyUsage::EncryptDecrypt,
                origin: Origin::AwsKms,
                mrk: None,
                materials: Vec::new(),
                current_version: versions.last().copied(),
                public_key: None,
                rotation: RotationConfig::default(),
            },
            regional: RegionalProps {
                creation_ms: 0,
                description: String::new(),
                state: KeyState::Enabled,
                deletion_ms: None,
                pending_window_days: None,
                policy: String::new(),
                tags: Vec::new(),
                materials,
                sync: SyncBook::default(),
            },
        }
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_evicts_the_least_recently_used_key() {
        let c = cache(2);
        assert_eq!((c.len(), c.capacity()), (0, 2));
        let (a, b, d) = (key(&c, 1, &[1, 2]), key(&c, 2, &[1]), key(&c, 3, &[1]));
        // Two versions of one key count as one key.
        c.get(&a, 1).unwrap();
        c.get(&a, 2).unwrap();
        c.get(&b, 1).unwrap();
        assert_eq!(c.len(), 2);
        // Using `a` makes `b` the least recently used: `d` evicts it.
        c.get(&a, 1).unwrap();
        c.get(&d, 1).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c.holds(&a.key_id) && c.holds(&d.key_id) && !c.holds(&b.key_id));
        // An evicted key is unwrapped again, to the same material.
        let Unwrapped::Aes(again) = &*c.get(&b, 1).unwrap() else {
            panic!("symmetric material");
        };
        assert_eq!(again.expose(), &[2; 32]);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn forget_and_clear_drop_cached_material() {
        let c = cache(10);
        let (a, b) = (key(&c, 1, &[1]), key(&c, 2, &[1]));
        let held = c.get(&a, 1).unwrap();
        c.get(&b, 1).unwrap();
        c.forget(&a.key_id);
        assert!(!c.holds(&a.key_id) && c.holds(&b.key_id));
        assert_eq!(c.len(), 1);
        // A call still using the material keeps its own reference; the cache no longer does.
        assert_eq!(Arc::strong_count(&held), 1);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.capacity(), 10);
    }

    #[test]
    fn a_version_the_key_no_longer_holds_is_never_served_from_the_cache() {
        let c = cache(10);
        let a = key(&c, 1, &[1]);
        c.get(&a, 1).unwrap();
        let mut deleted = a.clone();
        deleted.regional.materials.clear();
        assert!(c.get(&deleted, 1).is_err());
    }
}
