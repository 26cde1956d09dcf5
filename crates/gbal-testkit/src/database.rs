//! A fresh PostgreSQL database per test, on the server `DATABASE_URL` names (default
//! [`DEFAULT_SERVER_URL`]): `<prefix>_<random>`, created for the test and dropped after it.
//!
//! PostgreSQL tests are never skipped: a server that does not answer, or a role that may not
//! create databases, fails the test with a message that says so. Every step on the server is
//! bounded in time, so a test never hangs on it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gbal_tracker::{PG_MIGRATOR, PgConfig, PgTracker};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

/// The server the tests use when `DATABASE_URL` is unset.
pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long connecting to the server, creating, migrating or dropping a database may take.
const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// PostgreSQL's `insufficient_privilege`.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// The server tests run against: `DATABASE_URL`, else [`DEFAULT_SERVER_URL`].
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned())
}

/// `url` with another database name; user, password, host, port and parameters kept.
pub fn url_with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path.split_once('?').map(|(_, query)| query);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` with another host and port (to go through a proxy); user, password, database and
/// parameters kept.
pub fn url_with_address(url: &str, host: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let mut out = format!("{scheme}://");
    if let Some((user, _)) = authority.rsplit_once('@') {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(&format!("{host}:{port}"));
    if let Some(path) = path {
        out.push('/');
        out.push_str(path);
    }
    out
}

/// `url` without its password, to show in a message.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, tail)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}@{tail}")
        }
        None => url.to_owned(),
    }
}

/// `step`, or a panic naming `what` once [`SERVER_TIMEOUT`] has passed.
async fn bounded<T>(what: &str, step: impl Future<Output = T>) -> T {
    tokio::time::timeout(SERVER_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {SERVER_TIMEOUT:?}"))
}

/// The settings of the tests' PostgreSQL trackers: a small pool (the server is shared),
/// patient timeouts (the machine is busy).
pub fn tracker_config() -> PgConfig {
    PgConfig {
        max_connections: 5,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
    }
}

/// A database of the test's own on the server. Dropped by [`TestDatabase::drop_database`]
/// (which [`with_database`] calls whatever the test did), or else when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name, `<prefix>_<random>`.
    pub name: String,
    /// A URL to it, with the server URL's user, password and parameters.
    pub url: String,
    server: String,
    admin: PgPool,
    dropped: AtomicBool,
}

impl TestDatabase {
    /// Creates an empty database named `<prefix>_<random>`.
    pub async fn create(prefix: &str) -> Self {
        let server = server_url();
        let admin = bounded(
            "connecting to PostgreSQL",
            PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(SERVER_TIMEOUT)
                .connect(&server),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at DATABASE_URL ({}) must answer: {e}; PostgreSQL tests are never \
                 skipped",
                shown(&server)
            )
        });
        let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        let created = bounded(
            "CREATE DATABASE",
            admin.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))),
        )
        .await;
        if let Err(error) = created {
            let code = error.as_database_error().and_then(|e| e.code());
            if code.as_deref() == Some(INSUFFICIENT_PRIVILEGE) {
                panic!(
                    "the role of DATABASE_URL ({}) may not create databases: every PostgreSQL \
                     test makes one of its own. Grant it CREATEDB or name another role. {error}",
                    shown(&server)
                );
            }
            panic!("CREATE DATABASE {name} on {}: {error}", shown(&server));
        }
        Self {
            url: url_with_database(&server, &name),
            name,
            server,
            admin,
            dropped: AtomicBool::new(false),
        }
    }

    /// Creates a database named `<prefix>_<random>` with gbal's PostgreSQL migrations applied.
    pub async fn migrated(prefix: &str) -> Self {
        let db = Self::create(prefix).await;
        db.migrate().await;
        db
    }

    /// Applies gbal's PostgreSQL migrations (`PG_MIGRATOR`).
    pub async fn migrate(&self) {
        let pool = self.pool().await;
        bounded("the migrations", PG_MIGRATOR.run(&pool))
            .await
            .expect("the migrations apply");
        pool.close().await;
    }

    /// A small pool on this database, to look behind gbal's back.
    pub async fn pool(&self) -> PgPool {
        bounded(
            "connecting to the test database",
            PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(SERVER_TIMEOUT)
                .connect(&self.url),
        )
        .await
        .expect("connect to the test database")
    }

    /// A tracker (one replica) on this database with [`tracker_config`], once it listens for
    /// completions.
    pub async fn tracker(&self) -> PgTracker {
        self.tracker_with(&tracker_config()).await
    }

    /// A tracker (one replica) on this database with `config`, once it listens.
    pub async fn tracker_with(&self, config: &PgConfig) -> PgTracker {
        let tracker = PgTracker::connect(&self.url, config).expect("a valid database URL");
        bounded("the tracker's LISTEN", tracker.until_listening()).await;
        tracker
    }

    /// Drops the database, whoever is still connected to it. A failure is reported, not
    /// raised: the test's own verdict matters more.
    pub async fn drop_database(&self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            return;
        }
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        match tokio::time::timeout(SERVER_TIMEOUT, self.admin.execute(AssertSqlSafe(statement)))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.name),
            Err(_) => eprintln!("dropping test database {} timed out", self.name),
        }
        self.admin.close().await;
    }
}

impl Drop for TestDatabase {
    /// A database nobody dropped (the test panicked before it could) is dropped here, on a
    /// runtime of its own: the test's runtime may be gone or single-threaded.
    fn drop(&mut self) {
        if self.dropped.load(Ordering::SeqCst) {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database on");
            runtime.block_on(async move {
                use sqlx::Connection as _;
                let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let dropped = tokio::time::timeout(SERVER_TIMEOUT, async {
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    admin.execute(AssertSqlSafe(statement)).await?;
                    admin.close().await
                })
                .await;
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop test database {name}: {dropped:?}");
                }
            });
        });
        let _ = dropping.join();
    }
}

/// Runs `test` with a fresh, empty database named `<prefix>_<random>`, bounded by `limit`,
/// and drops the database afterwards whatever happens (panic or timeout); returns what the
/// test returned. The test's panic is the caller's panic.
pub async fn with_database<F, Fut, T>(prefix: &str, limit: Duration, test: F) -> T
where
    F: FnOnce(Arc<TestDatabase>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    run(TestDatabase::create(prefix).await, limit, test).await
}

/// [`with_database`] on a database with gbal's PostgreSQL migrations applied.
pub async fn with_migrated_database<F, Fut, T>(prefix: &str, limit: Duration, test: F) -> T
where
    F: FnOnce(Arc<TestDatabase>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    run(TestDatabase::migrated(prefix).await, limit, test).await
}

async fn run<F, Fut, T>(db: TestDatabase, limit: Duration, test: F) -> T
where
    F: FnOnce(Arc<TestDatabase>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let db = Arc::new(db);
    let task = tokio::spawn(test(Arc::clone(&db)));
    let abort = task.abort_handle();
    let outcome = tokio::time::timeout(limit, task).await;
    if outcome.is_err() {
        abort.abort();
        // Let the aborted task drop what it started (processes, pools) before the database goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    db.drop_database().await;
    match outcome {
        Err(_) => panic!("the test did not finish within {limit:?}"),
        Ok(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Ok(Err(error)) => panic!("the test task failed: {error}"),
        Ok(Ok(value)) => value,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    async fn exists(name: &str) -> bool {
        let server = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server_url())
            .await
            .expect("the test server");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&server)
            .await
            .expect("count databases");
        server.close().await;
        count == 1
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_is_made_for_the_test_and_dropped_after_it_whatever_happens() {
        let seen = Arc::new(Mutex::new(String::new()));
        let name = Arc::clone(&seen);
        let rows =
            with_migrated_database("gbal_testkit", Duration::from_secs(60), |db| async move {
                assert!(db.name.starts_with("gbal_testkit_"), "{}", db.name);
                assert!(exists(&db.name).await);
                let pool = db.pool().await;
                let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM balance_requests")
                    .fetch_one(&pool)
                    .await
                    .expect("the migrated table");
                pool.close().await;
                *name.lock().unwrap() = db.name.clone();
                rows
            })
            .await;
        assert_eq!(rows, 0, "the test's value comes back");
        let name = seen.lock().unwrap().clone();
        assert!(
            !name.is_empty() && !exists(&name).await,
            "{name} is dropped"
        );

        // A test that panics: its database goes, and its panic is the caller's.
        let name = Arc::clone(&seen);
        let panicked = tokio::spawn(with_database::<_, _, ()>(
            "gbal_testkit",
            Duration::from_secs(60),
            |db| async move {
                *name.lock().unwrap() = db.name.clone();
                panic!("the test fails");
            },
        ))
        .await
        .expect_err("the test's panic");
        assert!(panicked.is_panic());
        let name = seen.lock().unwrap().clone();
        assert!(!exists(&name).await, "{name} is dropped after a panic");

        // A test that overruns its limit fails, and its database goes.
        let name = Arc::clone(&seen);
        let overran = tokio::spawn(with_database(
            "gbal_testkit",
            Duration::from_millis(300),
            |db| async move {
                *name.lock().unwrap() = db.name.clone();
                std::future::pending::<()>().await;
            },
        ))
        .await
        .expect_err("a timeout is a failure");
        assert!(overran.is_panic());
        let name = seen.lock().unwrap().clone();
        assert!(!exists(&name).await, "{name} is dropped after a timeout");

        // A database nobody dropped goes with its value.
        let db = TestDatabase::migrated("gbal_testkit").await;
        let name = db.name.clone();
        assert!(exists(&name).await);
        drop(db);
        assert!(!exists(&name).await, "{name} is dropped with its value");
    }

    #[test]
    fn urls_keep_what_they_do_not_replace() {
        let url = "postgres://u:p@db.example:6543/postgres?sslmode=disable";
        assert_eq!(
            url_with_database(url, "gbal_x"),
            "postgres://u:p@db.example:6543/gbal_x?sslmode=disable"
        );
        assert_eq!(
            url_with_address(url, "127.0.0.1", 7000),
            "postgres://u:p@127.0.0.1:7000/postgres?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://h", "d"),
            "postgres://h/d".to_owned()
        );
        assert_eq!(url_with_address("postgres://h:1", "x", 2), "postgres://x:2");
        assert_eq!(
            shown(url),
            "postgres://u@db.example:6543/postgres?sslmode=disable"
        );
    }
}
