//! [`NodeSampler`]: a node's scrape-time figures, read from its applied state, its material
//! cache, its fault table and its storage engine.

use std::sync::Arc;

use kmsim_core::key::KeyState;
use kmsim_store::KvEngine;

use super::{Sample, Sampler};
use crate::faults::FaultTable;
use crate::kms::KmsApi;

/// The sources of one node's [`Sample`].
pub struct NodeSampler<E: KvEngine> {
    /// The node's KMS: its applied state, material cache, and the Regions it synchronizes with.
    pub api: Arc<KmsApi>,
    /// The node's injected faults.
    pub faults: Arc<FaultTable>,
    /// The node's storage engine.
    pub engine: Arc<E>,
}

impl<E: KvEngine> Sampler for NodeSampler<E> {
    fn sample(&self) -> Sample {
        let region = &self.api.scope.region;
        // Key counts are kept by state with the keys; a state that cannot be read is
        // sampled as empty (the failure is logged where it happens).
        let (counts, pending) = self
            .api
            .read(|s| {
                let by_state = s.keys_by_state();
                let counts: Vec<u64> = KeyState::ALL
                    .iter()
                    .map(|st| by_state.get(st).copied().unwrap_or(0))
                    .collect();
                let pending = match self.api.sync {
                    Some(_) => crate::sync::task::pending_by_destination(s, region),
                    None => Default::default(),
                };
                (counts, pending)
            })
            .unwrap_or_else(|_| (vec![0; KeyState::ALL.len()], Default::default()));
        // Every Region this one synchronizes with, zeros included, in a stable order.
        let sync_pending = match self.api.sync {
            Some(_) => self
                .api
                .regions
                .keys()
                .filter(|r| r.as_str() != region.as_str() && !self.api.unsynchronized.contains(*r))
                .map(|r| {
                    let n = pending
                        .iter()
                        .find(|(d, _)| d.as_str() == r.as_str())
                        .map_or(0, |(_, n)| *n);
                    (r.clone(), n)
                })
                .collect(),
            None => Vec::new(),
        };
        Sample {
            keys: KeyState::ALL
                .iter()
                .zip(counts)
                .map(|(st, n)| (st.as_str(), n))
                .collect(),
            material_cache_entries: self.api.materials.len() as u64,
            authz_decisions: {
                let d = self.api.policies.decision_stats();
                super::AuthzDecisions {
                    hits: d.hits,
                    misses: d.misses,
                    uncacheable: d.uncacheable,
                    entries: d.entries,
                }
            },
            faults_active: self.faults.list().len() as u64,
            sync_pending,
            engine: self.engine.stats(),
        }
    }
}
