//! Test helpers shared with engine crates (feature `testing`).
//!
//! - [`CounterApp`]: a tiny deterministic [`Application`](crate::Application).
//! - [`run_openraft_suite`]: openraft's storage test suite over fresh stores on any engine.
//! - [`check_views`]: the view part of the engine contract, on any engine.

mod counter_app;
mod suite;
mod views;

pub use counter_app::CounterApp;
pub use suite::run_openraft_suite;
pub use suite::SUITE_CASES;
pub use views::check_views;
