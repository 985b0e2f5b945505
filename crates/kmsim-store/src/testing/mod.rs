//! Test helpers shared with engine crates (feature `testing`).
//!
//! - [`CounterApp`]: a tiny deterministic [`Application`](crate::Application).
//! - [`run_openraft_suite`]: openraft's storage test suite over fresh stores on any engine.

mod counter_app;
mod suite;

pub use counter_app::CounterApp;
pub use suite::run_openraft_suite;
pub use suite::SUITE_CASES;
