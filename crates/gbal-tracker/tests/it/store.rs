//! Fresh stores for each test: a PostgreSQL database of its own (gbal-testkit's: created,
//! migrated, dropped afterwards, even when the test panics or overruns), a SQLite file in a
//! temporary folder, or SQLite in memory.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gbal_core::Tracker;
use gbal_testkit::database::{TestDatabase, with_migrated_database};
use gbal_tracker::{SqliteTracker, TimeSource};

/// How long a PostgreSQL test may run: within nextest's deadline, so that a test that hangs
/// still drops its database.
const PG_TEST_LIMIT: Duration = Duration::from_secs(180);

/// Runs `test` with a fresh, migrated database named `gbal_test_<random>`, and drops the
/// database afterwards whatever happens.
pub async fn with_pg<F, Fut>(test: F)
where
    F: FnOnce(Arc<TestDatabase>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_migrated_database("gbal_test", PG_TEST_LIMIT, test).await;
}

/// Factory: runs a suite test on a PostgreSQL tracker of its own, taking the times the test
/// passes (as the other stores do) instead of the database's clock; `clock.rs` checks the
/// database's clock.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Tracker>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_pg(|db| async move {
        let tracker = db.tracker().await.with_time_source(TimeSource::Caller);
        let tracker: Arc<dyn Tracker> = Arc::new(tracker);
        test(tracker).await;
    })
    .await;
}

/// Factory: runs a suite test on a SQLite file (WAL, several connections) of its own.
pub async fn on_sqlite_file<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Tracker>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary folder");
    // A folder that does not exist yet: opening creates it.
    let tracker = SqliteTracker::open(dir.path().join("data").join("gbal.sqlite"))
        .await
        .expect("open the SQLite file");
    tracker.migrate().await.expect("migrations apply");
    test(Arc::new(tracker)).await;
}

/// Factory: runs a suite test on SQLite in memory.
pub async fn on_sqlite_memory<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Tracker>) -> Fut,
    Fut: Future<Output = ()>,
{
    let tracker = SqliteTracker::in_memory().await.expect("SQLite in memory");
    test(Arc::new(tracker)).await;
}
