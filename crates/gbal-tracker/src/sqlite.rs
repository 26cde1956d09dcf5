//! [`Tracker`] on SQLite: the embedded store for a single process, used when no database is
//! configured. Waiters are woken in-process; a file database runs in WAL mode.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gbal_core::{
    BalanceRequest, BalanceRequestId, CallerId, Completion, CompletionWatch, LockOutcome,
    MessageId, NewBalanceRequest, Outcome, PendingRequests, Tracker, TrackerError,
};
use sqlx::FromRow;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::from_sqlx;
use crate::lock::{held_until, lock_expiry};
use crate::row::{OutcomeColumns, StoredRequest, from_micros, pending_requests, to_micros};
use crate::waiters::{self, Waiters};

/// The SQLite migrations (`migrations/sqlite`).
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Where `gbal serve` keeps its requests when no database is configured.
pub const DEFAULT_SQLITE_PATH: &str = "data/gbal.sqlite";

/// How long a statement waits for another connection's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an operation waits for a connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

// The statements are runtime strings, not sqlx's compile-checked query macros: the macros
// check a crate against one database (one `DATABASE_URL`, or one set of query data), which for
// this crate is PostgreSQL's (`postgres.rs`). The tracker suite runs these on SQLite instead.

macro_rules! request_columns {
    () => {
        "id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at, \
         completed_at, status, balance, currency, errors"
    };
}

const INSERT: &str = "INSERT INTO balance_requests \
     (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const INSERT_COMPLETED: &str = "INSERT INTO balance_requests \
     (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at, \
     status, balance, currency, errors, completed_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const COMPLETE: &str = concat!(
    "UPDATE balance_requests \
     SET status = ?2, balance = ?3, currency = ?4, errors = ?5, completed_at = ?6 \
     WHERE message_id = ?1 AND expires_at > ?6 AND status IS NULL RETURNING ",
    request_columns!()
);

const BY_MESSAGE_ID: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE message_id = ?1 AND expires_at > ?2"
);

const BY_ID_FOR_CALLER: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE id = ?1 AND caller = ?2 AND expires_at > ?3"
);

const BY_ID: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE id = ?1 AND expires_at > ?2"
);

const TAKE_LOCK: &str = "INSERT INTO request_locks (key, expires_at, owner) VALUES (?1, ?3, ?4) \
     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, owner = excluded.owner \
     WHERE request_locks.expires_at <= ?2 RETURNING expires_at";

const FREE_LOCK: &str = "DELETE FROM request_locks WHERE key = ?1 AND owner = ?2";

const REMOVE_PENDING: &str = "DELETE FROM balance_requests WHERE id = ?1 AND status IS NULL";

const LOCK_HOLDER: &str = "SELECT expires_at FROM request_locks WHERE key = ?1";

const EXPIRE_REQUESTS: &str = "DELETE FROM balance_requests WHERE id IN \
     (SELECT id FROM balance_requests WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";

const EXPIRE_LOCKS: &str = "DELETE FROM request_locks WHERE key IN \
     (SELECT key FROM request_locks WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";

const PENDING: &str = "SELECT count(*), min(requested_at) FROM balance_requests \
     WHERE expires_at > ?1 AND status IS NULL";

/// A SQLite database as a `sqlite:` URL names it, read as sqlx reads it: `sqlite://<path>` or
/// `sqlite:<path>` (relative to the working folder; `sqlite:///<path>` from the root), or
/// `sqlite::memory:`, with sqlx's query options (`mode`: `ro`, `rw`, `rwc`, `memory`;
/// `cache`, `immutable`, `vfs`).
#[derive(Debug, Clone)]
pub struct SqliteUrl {
    options: SqliteConnectOptions,
    /// `sqlite::memory:` or `mode=memory`.
    in_memory: bool,
    /// No `mode` given: the file and its folder are made when missing, as gbal's default
    /// database is (sqlx alone would make nothing).
    create: bool,
}

impl SqliteUrl {
    /// Reads `url`; [`TrackerError::Other`] when it is not a `sqlite:` URL sqlx can read (the
    /// message never holds the URL).
    pub fn parse(url: &str) -> Result<Self, TrackerError> {
        let invalid = |why: String| TrackerError::Other(format!("not a SQLite URL: {why}"));
        if !url.starts_with("sqlite:") {
            return Err(invalid("it does not begin with sqlite:".to_owned()));
        }
        let options: SqliteConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| invalid(e.to_string()))?;
        // What sqlx's reading keys on, read the same way.
        let rest = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mode = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("mode="))
            .next_back();
        Ok(Self {
            options,
            in_memory: database == ":memory:" || mode == Some("memory"),
            create: mode.is_none(),
        })
    }

    /// The database file; `None` for a database in memory.
    pub fn path(&self) -> Option<&Path> {
        (!self.in_memory).then(|| self.options.get_filename())
    }
}

/// Makes the folder of the database file `path`, if it has one and it is missing.
fn create_folder(path: &Path) -> Result<(), TrackerError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            TrackerError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    Ok(())
}

#[derive(FromRow)]
struct SqliteRequestRow {
    id: Uuid,
    message_id: Vec<u8>,
    message_ref: String,
    caller: String,
    api_version: i16,
    grn: String,
    tin: Option<String>,
    requested_at: i64,
    expires_at: i64,
    completed_at: Option<i64>,
    status: Option<String>,
    balance: Option<String>,
    currency: Option<String>,
    errors: Option<String>,
}

impl TryFrom<SqliteRequestRow> for BalanceRequest {
    type Error = TrackerError;

    fn try_from(r: SqliteRequestRow) -> Result<Self, Self::Error> {
        StoredRequest {
            id: r.id,
            message_id: r.message_id,
            message_ref: r.message_ref,
            caller: r.caller,
            api_version: r.api_version,
            grn: r.grn,
            tin: r.tin,
            requested_at: from_micros(r.requested_at)?,
            expires_at: from_micros(r.expires_at)?,
            completed_at: r.completed_at.map(from_micros).transpose()?,
            status: r.status,
            balance: r.balance,
            currency: r.currency,
            errors: r.errors,
        }
        .try_into()
    }
}

fn decode(row: Option<SqliteRequestRow>) -> Result<Option<BalanceRequest>, TrackerError> {
    row.map(BalanceRequest::try_from).transpose()
}

/// The request tracker on SQLite. Cheap to clone; clones share the pool and the waiters.
#[derive(Clone)]
pub struct SqliteTracker {
    pool: SqlitePool,
    waiters: Arc<Waiters>,
}

impl fmt::Debug for SqliteTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTracker")
            .field("pool_size", &self.pool.size())
            .field("waiting", &self.waiters.len())
            .finish_non_exhaustive()
    }
}

impl SqliteTracker {
    /// Opens (creating it and its folder if missing) the database file at `path`, in WAL
    /// mode. Does not migrate: call [`SqliteTracker::migrate`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, TrackerError> {
        let path = path.as_ref();
        create_folder(path)?;
        Self::open_file(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
    }

    /// Opens the database `url` names: a file in WAL mode (with [`SqliteTracker::open`]'s
    /// folder and file made when missing, unless the URL gives a `mode`), or a database in
    /// memory held by one connection, as [`SqliteTracker::in_memory`]'s. Does not migrate.
    pub async fn open_url(url: &SqliteUrl) -> Result<Self, TrackerError> {
        if url.in_memory {
            return Self::open_memory(url.options.clone()).await;
        }
        let mut options = url.options.clone();
        if url.create {
            create_folder(options.get_filename())?;
            options = options.create_if_missing(true);
        }
        Self::open_file(options).await
    }

    /// A file database with `options`, in WAL mode.
    async fn open_file(options: SqliteConnectOptions) -> Result<Self, TrackerError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(from_sqlx)?;
        Ok(Self::new(pool))
    }

    /// A fresh, migrated database in memory (`sqlite::memory:`), gone when the tracker is
    /// dropped: for tests and trials. One connection, kept open, holds it.
    pub async fn in_memory() -> Result<Self, TrackerError> {
        let tracker = Self::open_memory(SqliteConnectOptions::new().in_memory(true)).await?;
        tracker.migrate().await?;
        Ok(tracker)
    }

    /// A database in memory with `options`, held by one connection that is never closed (the
    /// database goes with its last connection).
    async fn open_memory(options: SqliteConnectOptions) -> Result<Self, TrackerError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(from_sqlx)?;
        Ok(Self::new(pool))
    }

    /// A tracker on `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            waiters: Arc::new(Waiters::default()),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the pending migrations ([`SQLITE_MIGRATOR`]).
    pub async fn migrate(&self) -> Result<(), TrackerError> {
        SQLITE_MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| TrackerError::Other(format!("migration failed: {e}")))
    }

    /// How many requests this process is waiting on.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// The request `id` if it is live at `now`.
    async fn read(
        &self,
        id: BalanceRequestId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        let row = sqlx::query_as::<_, SqliteRequestRow>(BY_ID)
            .bind(id.as_uuid())
            .bind(to_micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        decode(row)
    }
}

impl SqliteTracker {
    /// Takes lock `key` on behalf of `owner` (or nobody) unless someone holds it.
    async fn take_lock(
        &self,
        key: &str,
        owner: Option<BalanceRequestId>,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        let until = to_micros(lock_expiry(now, ttl)?);
        let now_micros = to_micros(now);
        for _ in 0..2 {
            let taken: Option<i64> = sqlx::query_scalar(TAKE_LOCK)
                .bind(key)
                .bind(now_micros)
                .bind(until)
                .bind(owner.map(|id| *id.as_uuid()))
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
            if taken.is_some() {
                return Ok(LockOutcome::Acquired);
            }
            let holder: Option<i64> = sqlx::query_scalar(LOCK_HOLDER)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
            if let Some(expires_at) = holder {
                return Ok(held_until(from_micros(expires_at)?, now));
            }
        }
        Err(TrackerError::Other(format!(
            "lock {key:?} is neither free nor held"
        )))
    }
}

/// Binds a new request's columns, in the order both inserting statements list them: id,
/// message id, message ref, caller, API version, GRN, TIN, requested at, expires at.
macro_rules! bind_new_request {
    ($query:expr, $request:expr) => {
        $query
            .bind($request.id.as_uuid())
            .bind($request.message_id().as_bytes().as_slice())
            .bind($request.message_ref.as_str())
            .bind($request.caller.as_str())
            .bind($request.api_version.number())
            .bind($request.grn.as_str())
            .bind($request.tin.as_ref().map(|t| t.as_str()))
            .bind(to_micros($request.requested_at))
            .bind(to_micros($request.expires_at))
    };
}

#[async_trait]
impl Tracker for SqliteTracker {
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError> {
        bind_new_request!(sqlx::query(INSERT), request)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn insert_completed(
        &self,
        request: &NewBalanceRequest,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<(), TrackerError> {
        let columns = OutcomeColumns::of(outcome)?;
        bind_new_request!(sqlx::query(INSERT_COMPLETED), request)
            .bind(columns.status)
            .bind(columns.balance.as_deref())
            .bind(columns.currency.as_deref())
            .bind(columns.errors.as_deref())
            .bind(to_micros(completed_at))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn complete(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        let columns = OutcomeColumns::of(outcome)?;
        for _ in 0..2 {
            let stored = sqlx::query_as::<_, SqliteRequestRow>(COMPLETE)
                .bind(message_id.as_bytes().as_slice())
                .bind(columns.status)
                .bind(columns.balance.as_deref())
                .bind(columns.currency.as_deref())
                .bind(columns.errors.as_deref())
                .bind(to_micros(completed_at))
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
            if let Some(request) = decode(stored)? {
                self.waiters.complete(&request);
                return Ok(Completion::Stored(request));
            }
            let current = sqlx::query_as::<_, SqliteRequestRow>(BY_MESSAGE_ID)
                .bind(message_id.as_bytes().as_slice())
                .bind(to_micros(completed_at))
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
            match decode(current)? {
                None => return Ok(Completion::NotFound),
                Some(request) => match &request.outcome {
                    Some(existing) if existing == outcome => {
                        return Ok(Completion::Duplicate(request));
                    }
                    Some(_) => return Ok(Completion::Conflict(request)),
                    None => continue,
                },
            }
        }
        Ok(Completion::NotFound)
    }

    async fn get(
        &self,
        id: BalanceRequestId,
        caller: &CallerId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        let row = sqlx::query_as::<_, SqliteRequestRow>(BY_ID_FOR_CALLER)
            .bind(id.as_uuid())
            .bind(caller.as_str())
            .bind(to_micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        decode(row)
    }

    async fn get_by_message_id(
        &self,
        message_id: MessageId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        let row = sqlx::query_as::<_, SqliteRequestRow>(BY_MESSAGE_ID)
            .bind(message_id.as_bytes().as_slice())
            .bind(to_micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        decode(row)
    }

    async fn wait_for_completion(
        &self,
        id: BalanceRequestId,
        now: OffsetDateTime,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        let started = std::time::Instant::now();
        waiters::wait_for_completion(&self.waiters, id, timeout, || {
            self.read(id, now + started.elapsed())
        })
        .await
    }

    fn watch<'a>(
        &'a self,
        id: BalanceRequestId,
        now: OffsetDateTime,
    ) -> Box<dyn CompletionWatch + 'a> {
        let started = std::time::Instant::now();
        waiters::watch(&self.waiters, id, move || {
            self.read(id, now + started.elapsed())
        })
    }

    async fn lock(
        &self,
        key: &str,
        owner: BalanceRequestId,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        self.take_lock(key, Some(owner), now, ttl).await
    }

    async fn acquire_lock(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        self.take_lock(key, None, now, ttl).await
    }

    async fn release(
        &self,
        key: &str,
        owner: BalanceRequestId,
        request: Option<BalanceRequestId>,
    ) -> Result<(), TrackerError> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        sqlx::query(FREE_LOCK)
            .bind(key)
            .bind(owner.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        if let Some(id) = request {
            sqlx::query(REMOVE_PENDING)
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)
    }

    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError> {
        let now = to_micros(now);
        let requests = sqlx::query(EXPIRE_REQUESTS)
            .bind(now)
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        let locks = sqlx::query(EXPIRE_LOCKS)
            .bind(now)
            .bind(i64::from(batch))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        Ok(requests + locks)
    }

    async fn ping(&self) -> Result<(), TrackerError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn pending(&self, now: OffsetDateTime) -> Result<PendingRequests, TrackerError> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(PENDING)
            .bind(to_micros(now))
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(pending_requests(
            count,
            oldest.map(from_micros).transpose()?,
            now,
        ))
    }
}
