//! [`MemKvEngine`]: a [`KvEngine`] over a `BTreeMap`, for unit tests and simulations.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::RwLock;

use crate::engine::KvEngine;
use crate::engine::KvPair;
use crate::engine::KvRead;
use crate::engine::WriteOp;
use crate::error::StoreError;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory [`KvEngine`]. Clones share the same map, so a test can drop its stores and
/// "restart" on the same engine; `durable` is meaningless here and ignored.
#[derive(Clone, Debug, Default)]
pub struct MemKvEngine {
    /// The data; one lock makes every batch atomic.
    map: Arc<RwLock<Map>>,
}

impl MemKvEngine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored pairs.
    pub fn len(&self) -> Result<usize, StoreError> {
        Ok(self.read()?.len())
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.read()?.is_empty())
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, Map>, StoreError> {
        self.map
            .read()
            .map_err(|_| StoreError::Poisoned { what: "mem engine" })
    }
}

/// Bounds of a key range, as `BTreeMap::range` takes them.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The half-open key range `[from, to)`, or `None` when it is empty (`BTreeMap::range` panics
/// on inverted ranges).
fn bounds<'a>(from: &'a [u8], to: &'a [u8]) -> Option<KeyBounds<'a>> {
    (from < to).then_some((Bound::Included(from), Bound::Excluded(to)))
}

fn map_get(map: &Map, key: &[u8]) -> Option<Vec<u8>> {
    map.get(key).cloned()
}

fn map_scan(map: &Map, from: &[u8], to: &[u8], limit: usize) -> Vec<KvPair> {
    let Some(range) = bounds(from, to) else {
        return Vec::new();
    };
    map.range::<[u8], _>(range)
        .take(limit)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A [`MemKvEngine::view`]: a copy of the map (the engine is for tests; a copy is the
/// simplest view that later writes cannot reach).
struct MemView(Map);

impl KvRead for MemView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(map_get(&self.0, key))
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        Ok(map_scan(&self.0, from, to, limit))
    }
}

impl KvRead for MemKvEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(map_get(&*self.read()?, key))
    }

    fn scan(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        Ok(map_scan(&*self.read()?, from, to, limit))
    }
}

impl KvEngine for MemKvEngine {
    fn write(&self, ops: Vec<WriteOp>, _durable: bool) -> Result<(), StoreError> {
        let mut map = self
            .map
            .write()
            .map_err(|_| StoreError::Poisoned { what: "mem engine" })?;
        for op in ops {
            match op {
                WriteOp::Put { key, value } => {
                    map.insert(key, value);
                }
                WriteOp::Delete { key } => {
                    map.remove(&key);
                }
                WriteOp::DeleteRange { from, to } => {
                    let Some(range) = bounds(&from, &to) else {
                        continue;
                    };
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>(range)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn view(&self) -> Result<Box<dyn KvRead + '_>, StoreError> {
        Ok(Box::new(MemView(self.read()?.clone())))
    }

    fn last_in_range(&self, from: &[u8], to: &[u8]) -> Result<Option<KvPair>, StoreError> {
        let Some(range) = bounds(from, to) else {
            return Ok(None);
        };
        let map = self.read()?;
        Ok(map
            .range::<[u8], _>(range)
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &[u8], v: &[u8]) -> WriteOp {
        WriteOp::Put {
            key: k.to_vec(),
            value: v.to_vec(),
        }
    }

    #[test]
    fn scan_respects_bounds_and_limit() -> Result<(), StoreError> {
        let e = MemKvEngine::new();
        e.write(
            vec![
                put(b"a", b"1"),
                put(b"b", b"2"),
                put(b"c", b"3"),
                put(b"d", b"4"),
            ],
            false,
        )?;
        let keys = |v: Vec<KvPair>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(e.scan(b"b", b"d", 10)?),
            vec![b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(
            keys(e.scan(b"a", b"z", 2)?),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert!(e.scan(b"d", b"b", 10)?.is_empty());
        assert!(e.scan(b"b", b"b", 10)?.is_empty());
        assert_eq!(
            e.last_in_range(b"a", b"d")?.map(|p| p.0),
            Some(b"c".to_vec())
        );
        assert_eq!(e.last_in_range(b"x", b"z")?, None);
        Ok(())
    }

    #[test]
    fn batch_ops_apply_in_order() -> Result<(), StoreError> {
        let e = MemKvEngine::new();
        e.write(
            vec![
                put(b"a", b"1"),
                put(b"b", b"2"),
                put(b"c", b"3"),
                WriteOp::DeleteRange {
                    from: b"a".to_vec(),
                    to: b"c".to_vec(),
                },
                put(b"b", b"new"),
                WriteOp::Delete { key: b"c".to_vec() },
                WriteOp::DeleteRange {
                    from: b"z".to_vec(),
                    to: b"a".to_vec(),
                },
            ],
            true,
        )?;
        assert_eq!(e.get(b"a")?, None);
        assert_eq!(e.get(b"b")?, Some(b"new".to_vec()));
        assert_eq!(e.get(b"c")?, None);
        assert_eq!(e.len()?, 1);
        Ok(())
    }

    #[test]
    fn a_view_keeps_reading_the_engine_as_it_was() -> Result<(), StoreError> {
        crate::testing::check_views(&MemKvEngine::new())
    }

    #[test]
    fn clones_share_the_map() -> Result<(), StoreError> {
        let e = MemKvEngine::new();
        let restarted = e.clone();
        e.write(vec![put(b"k", b"v")], true)?;
        assert_eq!(restarted.get(b"k")?, Some(b"v".to_vec()));
        Ok(())
    }

    #[test]
    fn default_last_in_range_pages_through_scan() -> Result<(), StoreError> {
        /// An engine that only has `scan`, to exercise the trait's default `last_in_range`.
        struct ScanOnly(MemKvEngine);
        impl KvRead for ScanOnly {
            fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                self.0.get(key)
            }
            fn scan(
                &self,
                from: &[u8],
                to: &[u8],
                limit: usize,
            ) -> Result<Vec<KvPair>, StoreError> {
                self.0.scan(from, to, limit)
            }
        }
        impl KvEngine for ScanOnly {
            fn write(&self, ops: Vec<WriteOp>, durable: bool) -> Result<(), StoreError> {
                self.0.write(ops, durable)
            }
            fn view(&self) -> Result<Box<dyn KvRead + '_>, StoreError> {
                self.0.view()
            }
        }
        let e = ScanOnly(MemKvEngine::new());
        let ops = (0u32..3000).map(|i| put(&i.to_be_bytes(), b"v")).collect();
        e.write(ops, false)?;
        let last = e.last_in_range(&0u32.to_be_bytes(), &2500u32.to_be_bytes())?;
        assert_eq!(last.map(|p| p.0), Some(2499u32.to_be_bytes().to_vec()));
        assert_eq!(
            e.last_in_range(&5000u32.to_be_bytes(), &6000u32.to_be_bytes())?,
            None
        );
        Ok(())
    }
}
