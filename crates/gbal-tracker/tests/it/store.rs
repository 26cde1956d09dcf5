//! Fresh stores for each test: a PostgreSQL database of its own (created, migrated, dropped
//! afterwards, even when the test panics), a SQLite file in a temporary folder, or SQLite in
//! memory.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gbal_core::Tracker;
use gbal_tracker::{PG_MIGRATOR, PgConfig, PgTracker, SqliteTracker};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

/// The server tests run against: `DATABASE_URL`, else the local default. Never skipped.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The pool settings of test trackers: small (the server is shared), patient (the machine is
/// busy).
pub fn test_config() -> PgConfig {
    PgConfig {
        max_connections: 5,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
    }
}

/// `url` with another host, port and database; user, password and parameters kept.
pub fn url_with(url: &str, host: &str, port: u16, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path.split_once('?').map(|(_, q)| q);
    let user = authority.rsplit_once('@').map(|(u, _)| u);
    let mut out = format!("{scheme}://");
    if let Some(user) = user {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(&format!("{host}:{port}/{database}"));
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A PostgreSQL database of the test's own.
#[derive(Debug)]
pub struct PgDb {
    /// Its name.
    pub name: String,
    /// A URL to it.
    pub url: String,
    admin: PgPool,
}

impl PgDb {
    /// Creates and migrates a database named `gbal_test_<random>`.
    pub async fn create() -> Self {
        let admin_url = database_url();
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at DATABASE_URL must answer: {e}"));
        let name = format!("gbal_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("the role may create databases");
        let options: PgConnectOptions = admin_url.parse().expect("a valid DATABASE_URL");
        let url = url_with(&admin_url, options.get_host(), options.get_port(), &name);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect to the test database");
        PG_MIGRATOR.run(&pool).await.expect("migrations apply");
        pool.close().await;
        Self { name, url, admin }
    }

    /// A tracker (one replica) on this database, listening.
    pub async fn tracker(&self) -> PgTracker {
        let tracker = PgTracker::connect(&self.url, &test_config()).expect("a valid URL");
        tokio::time::timeout(Duration::from_secs(10), tracker.until_listening())
            .await
            .expect("the listener subscribes");
        tracker
    }

    /// A plain pool on this database, to look behind the tracker's back.
    pub async fn raw_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    async fn drop_database(&self) {
        let dropped = self
            .admin
            .execute(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await;
        if let Err(error) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
        self.admin.close().await;
    }
}

/// Runs `test` with a fresh database, and drops the database afterwards whatever happens.
pub async fn with_pg<F, Fut>(test: F)
where
    F: FnOnce(Arc<PgDb>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(PgDb::create().await);
    let outcome = tokio::spawn(test(Arc::clone(&db))).await;
    db.drop_database().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Factory: runs a suite test on a PostgreSQL tracker of its own.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Tracker>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_pg(|db| async move {
        let tracker: Arc<dyn Tracker> = Arc::new(db.tracker().await);
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
