//! [`run_openraft_suite`]: openraft's `testing::Suite` over stores on any [`KvEngine`].

use std::sync::Arc;
use std::sync::RwLock;

use openraft::testing::StoreBuilder;
use openraft::testing::Suite;
use openraft::ErrorSubject;
use openraft::ErrorVerb;

use super::CounterApp;
use crate::engine::KvEngine;
use crate::error::StoreError;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;
use crate::types::StorageError;
use crate::types::TypeConfig;

/// Number of cases `Suite::test_all` runs in openraft 0.9.25 (its `test_store` list).
pub const SUITE_CASES: usize = 35;

/// Builds fresh stores from a user-supplied engine factory for each suite case.
struct EngineStoreBuilder<F> {
    /// Returns a guard (kept alive for the case, e.g. a temp dir) and an empty engine.
    new_engine: F,
}

impl<E, G, F> StoreBuilder<TypeConfig, LogStore<E>, StateMachineStore<E, CounterApp>, G>
    for EngineStoreBuilder<F>
where
    E: KvEngine,
    G: Send + Sync,
    F: Fn() -> Result<(G, E), StoreError> + Send + Sync,
{
    async fn build(
        &self,
    ) -> Result<(G, LogStore<E>, StateMachineStore<E, CounterApp>), StorageError> {
        let (guard, engine) = (self.new_engine)()
            .map_err(|e| e.into_storage_error(ErrorSubject::Store, ErrorVerb::Write))?;
        let engine = Arc::new(engine);
        let log_store = LogStore::new(Arc::clone(&engine));
        let app = Arc::new(RwLock::new(CounterApp::new()));
        let sm = StateMachineStore::new(engine, app)
            .map_err(|e| e.into_storage_error(ErrorSubject::StateMachine, ErrorVerb::Read))?;
        Ok((guard, log_store, sm))
    }
}

/// Runs openraft's storage suite ([`SUITE_CASES`] cases) against a [`LogStore`] and a
/// [`StateMachineStore`] hosting [`CounterApp`], each case on a fresh engine from
/// `new_engine`.
///
/// `new_engine` returns a guard dropped after the case (hold a temp dir there) and an empty
/// engine.
///
/// This is a blocking function, not `async`: openraft's suite starts its own tokio runtime per
/// case and would panic inside another runtime. Call it from a plain `#[test]`.
// The error is openraft's own `StorageError`, as `Suite::test_all` returns it.
#[allow(clippy::result_large_err)]
pub fn run_openraft_suite<E, G, F>(new_engine: F) -> Result<(), StorageError>
where
    E: KvEngine,
    G: Send + Sync,
    F: Fn() -> Result<(G, E), StoreError> + Send + Sync,
{
    Suite::test_all(EngineStoreBuilder { new_engine })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem_engine::MemKvEngine;

    #[test]
    fn openraft_suite_passes_on_the_mem_engine() {
        run_openraft_suite(|| Ok(((), MemKvEngine::new()))).expect("openraft storage suite");
    }
}
