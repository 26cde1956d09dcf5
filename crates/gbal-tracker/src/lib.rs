//! gbal's request tracker: [`gbal_core::Tracker`] on PostgreSQL ([`PgTracker`], the
//! production store shared by every replica) and on SQLite ([`SqliteTracker`], the embedded
//! default), the cluster-wide request locks, completion wake-ups across replicas, and the
//! expiry job ([`run_expiry`]).
//!
//! Both stores keep times to the microsecond, never return a request past its `expires_at`
//! from any read (`get`, `get_by_message_id`, and the reads of `wait_for_completion` and of a
//! watch), and record only the first terminal outcome of a request. PostgreSQL measures lock
//! windows and expiry by the database's clock ([`TimeSource::Database`]), so the replicas'
//! clocks need not agree; SQLite, one process, by the times it is given.
//!
//! Errors: a store that cannot be reached or does not answer in time is
//! [`gbal_core::TrackerError::Unavailable`] (a PostgreSQL operation gives up after the pool's
//! acquire timeout when it cannot connect, and never runs past acquire timeout + statement
//! timeout); an id or message id recorded twice is `DuplicateId`.

pub mod connections;
mod error;
pub mod expiry;
mod listener;
mod lock;
mod lock_mirror;
pub mod postgres;
mod row;
pub mod sqlite;
mod waiters;

pub use connections::PgConnections;
pub use expiry::{expire_all, run_expiry, run_expiry_counting};
pub use listener::{COMPLETION_CHANNEL, LISTENER_APPLICATION_NAME};
pub use lock_mirror::{LockMirror, MirrorCounts};
pub use postgres::{APPLICATION_NAME, PG_MIGRATOR, PgConfig, PgTracker, TimeSource};
pub use sqlite::{DEFAULT_SQLITE_PATH, SQLITE_MIGRATOR, SqliteTracker, SqliteUrl};
