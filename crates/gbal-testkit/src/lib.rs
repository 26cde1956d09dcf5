//! What every gbal crate's tests share. A dev-dependency only: no library of gbal depends on
//! it, and it is never published.
//!
//! - [`database`]: a fresh PostgreSQL database per test, dropped after it;
//! - [`clock`]: a clock the test sets and moves;
//! - [`logs`] and [`metrics`]: log and metrics capture;
//! - [`fake_tracker`]: one fake tracker over a real one, with injected failures, hangs,
//!   delays or held locks, counting calls;
//! - [`gms_rules`]: the IE906 error sets GMS answers, written out independently of gbal's table;
//! - [`reference`]: the reference material kept in the repository (schemas, examples);
//! - [`pgbench`]: `pgbench` running the tracker's per-request SQL, for the benchmarks;
//! - [`pg_bin`]: PostgreSQL's own programs, for the tests that run a server of their own;
//! - [`defaults`]: gbal's built-in configuration, `config/default.toml`;
//! - [`wait`]: waiting for an observable condition with a deadline, instead of sleeping.

pub mod clock;
pub mod database;
pub mod defaults;
pub mod fake_tracker;
pub mod gms_rules;
pub mod logs;
pub mod metrics;
pub mod pg_bin;
pub mod pgbench;
pub mod reference;
pub mod wait;

pub use clock::TestClock;
pub use database::{TestDatabase, with_database, with_migrated_database};
pub use fake_tracker::{FakeTracker, Method, Times};
pub use wait::{
    eventually, eventually_blocking, eventually_some, eventually_some_blocking,
    eventually_some_every, until, until_blocking,
};
