//! [`Tracker`] on PostgreSQL: the production store, one database shared by every replica.
//!
//! Completions are announced with `pg_notify` on the completion channel
//! ([`COMPLETION_CHANNEL`](crate::COMPLETION_CHANNEL)) in the statement that records
//! them; each [`PgTracker`] keeps one listening connection of its own that wakes the
//! waiters of its process, reconnecting by itself when it drops.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gbal_core::{
    BalanceRequest, BalanceRequestId, CallerId, Completion, CompletionWatch, LockOutcome,
    MessageId, NewBalanceRequest, Outcome, PendingRequests, ReplyMatch, Tracker, TrackerError,
    lock_then_insert,
};
use sqlx::FromRow;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::connections::PgConnections;
use crate::error::timed_out;
use crate::listener::{Listener, completion_channel};
use crate::lock::held_until;
use crate::row::{OutcomeColumns, StoredRequest, pending_requests};
use crate::waiters::{self, Waiters};

/// The PostgreSQL migrations (`migrations/postgres`).
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// How a pool connects to PostgreSQL (`[database]` of the binary's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// The most connections the tracker opens (the listener has one more of its own).
    pub max_connections: u32,
    /// How long an operation may wait for a connection; past it the store is `Unavailable`.
    pub acquire_timeout: Duration,
    /// How long a statement may run (server-side `statement_timeout`, and a client-side
    /// bound on top of `acquire_timeout`).
    pub statement_timeout: Duration,
}

// Whose clock: every statement reads "now" as `COALESCE($n, now())`. The tracker binds NULL
// there (the database's clock, the same for every replica; see [`TimeSource`]), or the time
// its caller passed, for tests that set the time themselves. Times written into rows follow
// the same rule: a request's `requested_at` and `expires_at` (its lifetime kept), a lock's
// expiry, a completion's time.
//
// How the statements find their rows. Each lookup has one index to use: the id, the message
// id or the lock key; the expiry index is the expiry job's alone, so where a lookup also
// compares the expiry it does so as `expires_at + interval '0' > $n`, which no index serves.
// Together with `enable_seqscan = off` on the tracker's sessions ([`SESSION_ENABLE_SEQSCAN`])
// this keeps every cached plan on the right index, including plans made while the table was
// empty (when every path costs nothing and the planner may pick any).

/// The columns of a request, as [`StoredRequest`] reads them.
macro_rules! request_columns {
    () => {
        "id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at, \
         completed_at, status, balance::text AS balance, currency, errors::text AS errors"
    };
}

/// Records a pending request: `$8` and `$9` its times, or NULL for the database's now and
/// now plus `$10`, its lifetime in microseconds.
const INSERT: &str = "INSERT INTO balance_requests \
     (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8::timestamptz, now()), \
     COALESCE($9::timestamptz, now() + $10::bigint * interval '1 microsecond'))";

/// [`INSERT`] of a request already answered (`$11`-`$14` the outcome, `$15` when, or NULL for
/// the database's now), with no notification: nobody waits for it.
const INSERT_COMPLETED: &str = "INSERT INTO balance_requests \
     (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at, \
     status, balance, currency, errors, completed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8::timestamptz, now()), \
     COALESCE($9::timestamptz, now() + $10::bigint * interval '1 microsecond'), \
     $11, $12::numeric, $13, $14::jsonb, COALESCE($15::timestamptz, now()))";

/// Records the first outcome of a live request and announces it, in one statement (so in one
/// transaction): the notification is sent if and only if the update commits. `$7` and `$8`,
/// when not null, are what the request must match (`ReplyMatch`): its GRN in ASCII upper
/// case (`upper` under the "C" collation changes ASCII letters only, whatever the database's
/// locale), or its message ref.
const COMPLETE: &str = concat!(
    "WITH done AS (UPDATE balance_requests \
     SET status = $2, balance = $3::numeric, currency = $4, errors = $5::jsonb, \
     completed_at = COALESCE($6::timestamptz, now()) \
     WHERE message_id = $1 AND expires_at + interval '0' > COALESCE($6::timestamptz, now()) \
     AND status IS NULL \
     AND ($7::text IS NULL OR upper(grn COLLATE \"C\") = $7) \
     AND ($8::text IS NULL OR message_ref = $8) RETURNING *) \
     SELECT ",
    request_columns!(),
    " FROM done, LATERAL pg_notify('",
    completion_channel!(),
    "', done.id::text) AS notified"
);

const BY_MESSAGE_ID: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE message_id = $1 \
     AND expires_at + interval '0' > COALESCE($2::timestamptz, now())"
);

const BY_ID_FOR_CALLER: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE id = $1 AND caller = $2 \
     AND expires_at + interval '0' > COALESCE($3::timestamptz, now())"
);

/// A live request by id (a wait's reads).
const BY_ID: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE id = $1 \
     AND expires_at + interval '0' > COALESCE($2::timestamptz, now())"
);

/// Takes a free or lapsed lock `$1` at `$2` for `$3` microseconds on behalf of `$4` (or
/// nobody); a held lock is left alone. The answer's first column is the expiry of the lock
/// taken, NULL when it is held. Nothing durable depends on the lock alone, so its commit does
/// not wait for the WAL to reach the disk (`synchronous_commit` off for this transaction
/// only): a crash may lose the lock, never an answer; a durable commit after it (a request
/// recorded under it) flushes it too, the WAL being written in order.
const TAKE_LOCK: &str = "WITH taken AS (\
     INSERT INTO request_locks (key, expires_at, owner) \
     VALUES ($1, COALESCE($2::timestamptz, now()) + $3::bigint * interval '1 microsecond', $4) \
     ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner \
     WHERE request_locks.expires_at <= COALESCE($2::timestamptz, now()) RETURNING expires_at) \
     SELECT (SELECT expires_at FROM taken), set_config('synchronous_commit', 'off', true)";

/// A lock's expiry, and the now it is measured against (`$2`, or the database's).
const LOCK_HOLDER: &str = "SELECT expires_at, COALESCE($2::timestamptz, now()) \
     FROM request_locks WHERE key = $1";

/// Frees lock `$1` if it is held on behalf of `$2`, and removes request `$3` if it is still
/// pending, in one statement (so in one transaction); answers how many of each went.
const RELEASE: &str = "WITH freed AS (\
     DELETE FROM request_locks WHERE key = $1 AND owner = $2 RETURNING key), \
     removed AS (\
     DELETE FROM balance_requests WHERE id = $3 AND status IS NULL RETURNING id) \
     SELECT (SELECT count(*) FROM freed), (SELECT count(*) FROM removed)";

/// [`TAKE_LOCK`] (on behalf of the request) and, only if the lock was taken, [`INSERT`]
/// (`$4`-`$13`), in one statement, durable.
/// A request whose id or message id exists is skipped, not an error, so the lock stays taken.
/// A held lock's expiry is read by a second statement: reading it here too would put a scan
/// of `request_locks` in every check's statement, and a plan made while the table was empty
/// scans it sequentially (measured: a third of the statement's rate as the table grew).
const LOCK_AND_INSERT: &str = "WITH locked AS (\
     INSERT INTO request_locks (key, expires_at, owner) \
     VALUES ($1, COALESCE($2::timestamptz, now()) + $3::bigint * interval '1 microsecond', \
     $4::uuid) \
     ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner \
     WHERE request_locks.expires_at <= COALESCE($2::timestamptz, now()) RETURNING expires_at), \
     recorded AS (\
     INSERT INTO balance_requests \
     (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at) \
     SELECT $4::uuid, $5::bytea, $6::text, $7::text, $8::smallint, $9::text, $10::text, \
     COALESCE($11::timestamptz, now()), \
     COALESCE($12::timestamptz, now() + $13::bigint * interval '1 microsecond') \
     WHERE EXISTS (SELECT 1 FROM locked) \
     ON CONFLICT DO NOTHING RETURNING id) \
     SELECT EXISTS (SELECT 1 FROM locked), EXISTS (SELECT 1 FROM recorded)";

const EXPIRE_REQUESTS: &str = "DELETE FROM balance_requests WHERE id IN \
     (SELECT id FROM balance_requests WHERE expires_at <= COALESCE($1::timestamptz, now()) \
      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

const EXPIRE_LOCKS: &str = "DELETE FROM request_locks WHERE key IN \
     (SELECT key FROM request_locks WHERE expires_at <= COALESCE($1::timestamptz, now()) \
      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// The live requests without an outcome: how many, and when the oldest was made. It reads
/// every live request through the expiry index (no index tells the pending ones apart: one
/// on `status` would make every completing update write all the indexes, measured at 9%
/// fewer requests per second), about 0.3 us a row.
const PENDING: &str = "SELECT count(*), min(requested_at), COALESCE($1::timestamptz, now()) \
     FROM balance_requests WHERE expires_at > COALESCE($1::timestamptz, now()) AND status IS NULL";

/// The SQL of one request's hot path, for comparisons with `pgbench`: taking its lock and
/// recording it, then completing it (with the notification). Wherever a statement takes a
/// now (`$n` of type `timestamptz`), NULL means the database's `now()`.
pub mod sql {
    /// Takes a lock and records a request under it: `$1` key, `$2` now, `$3` the lock's TTL
    /// in microseconds, `$4`-`$12` the request's nine columns, id to expiry (`$11`, `$12`
    /// NULL: now, and now plus `$13`, the request's lifetime in microseconds).
    pub const LOCK_AND_INSERT: &str = super::LOCK_AND_INSERT;
    /// Takes a lock alone, committed without waiting for the disk: `$1` key, `$2` now, `$3`
    /// TTL in microseconds, `$4` the owner or NULL.
    pub const TAKE_LOCK: &str = super::TAKE_LOCK;
    /// Records a request already answered: `$1`-`$10` as [`LOCK_AND_INSERT`]'s `$4`-`$13`,
    /// `$11`-`$14` the outcome, `$15` when (NULL: now).
    pub const INSERT_COMPLETED: &str = super::INSERT_COMPLETED;
    /// Frees a lock held on behalf of `$2` and removes the pending request `$3`: `$1` key.
    pub const RELEASE: &str = super::RELEASE;
    /// Completes a request and notifies: `$1` message id, `$2`-`$5` outcome, `$6` now, `$7`
    /// the GRN in upper case or null, `$8` the message ref or null.
    pub const COMPLETE: &str = super::COMPLETE;
    /// Reads a live request by message id: `$1` message id, `$2` now.
    pub const BY_MESSAGE_ID: &str = super::BY_MESSAGE_ID;
    /// Reads a caller's live request: `$1` id, `$2` caller, `$3` now.
    pub const BY_ID_FOR_CALLER: &str = super::BY_ID_FOR_CALLER;
    /// Reads a live request by id: `$1` id, `$2` now.
    pub const BY_ID: &str = super::BY_ID;
    /// Reads a lock's expiry and the now it is measured against: `$1` key, `$2` now.
    pub const LOCK_HOLDER: &str = super::LOCK_HOLDER;
    /// Deletes a batch of expired requests: `$1` now, `$2` batch size.
    pub const EXPIRE_REQUESTS: &str = super::EXPIRE_REQUESTS;
    /// Deletes a batch of lapsed locks: `$1` now, `$2` batch size.
    pub const EXPIRE_LOCKS: &str = super::EXPIRE_LOCKS;
    /// Counts the live requests without an outcome, and reads the oldest one's time: `$1`
    /// now.
    pub const PENDING: &str = super::PENDING;
}

#[derive(FromRow)]
struct PgRequestRow {
    id: Uuid,
    message_id: Vec<u8>,
    message_ref: String,
    caller: String,
    api_version: i16,
    grn: String,
    tin: Option<String>,
    requested_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
    status: Option<String>,
    balance: Option<String>,
    currency: Option<String>,
    errors: Option<String>,
}

impl TryFrom<PgRequestRow> for BalanceRequest {
    type Error = TrackerError;

    fn try_from(r: PgRequestRow) -> Result<Self, Self::Error> {
        StoredRequest {
            id: r.id,
            message_id: r.message_id,
            message_ref: r.message_ref,
            caller: r.caller,
            api_version: r.api_version,
            grn: r.grn,
            tin: r.tin,
            requested_at: r.requested_at,
            expires_at: r.expires_at,
            completed_at: r.completed_at,
            status: r.status,
            balance: r.balance,
            currency: r.currency,
            errors: r.errors,
        }
        .try_into()
    }
}

fn decode(row: Option<PgRequestRow>) -> Result<Option<BalanceRequest>, TrackerError> {
    row.map(BalanceRequest::try_from).transpose()
}

/// Whose clock a [`PgTracker`] measures lock windows and expiry by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeSource {
    /// The database's (`now()`, the start of the statement's transaction): one clock for
    /// every replica, so that theirs need not agree. The times callers pass are ignored;
    /// the durations they imply (a TTL, a request's lifetime) are kept.
    #[default]
    Database,
    /// The times callers pass, as the other stores take them: for tests that set the time
    /// themselves.
    Caller,
}

/// The request tracker on PostgreSQL. Cheap to clone; clones share the connections, the
/// listener and the waiters. The listener stops when the last clone is dropped.
#[derive(Clone)]
pub struct PgTracker {
    conns: Arc<PgConnections>,
    waiters: Arc<Waiters>,
    listener: Arc<Listener>,
    /// The longest an operation may take before it is `Unavailable`.
    op_timeout: Duration,
    time: TimeSource,
}

impl fmt::Debug for PgTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTracker")
            .field("connections", &self.conns.size())
            .field("waiting", &self.waiters.len())
            .field("listening", &self.listener.is_listening())
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl PgTracker {
    /// A tracker on the database at `url`, with up to `config.max_connections` connections
    /// (made lazily: this never waits for the database; an operation that cannot get a
    /// connection fails with [`TrackerError::Unavailable`] after `config.acquire_timeout`),
    /// and its listener started. Errors only on a malformed URL. Needs a Tokio runtime.
    pub fn connect(url: &str, config: &PgConfig) -> Result<Self, TrackerError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| TrackerError::Other(format!("the database URL is not valid: {e}")))?;
        Ok(Self::connect_with(options, config))
    }

    /// [`PgTracker::connect`] with connect options already parsed.
    pub fn connect_with(options: PgConnectOptions, config: &PgConfig) -> Self {
        let options = session_options(options, config);
        let conns = PgConnections::new(
            options.clone(),
            config.max_connections,
            config.acquire_timeout,
        );
        let waiters = Arc::new(Waiters::default());
        let listener = Arc::new(Listener::start(
            options,
            config.acquire_timeout,
            Arc::clone(&waiters),
        ));
        Self {
            conns,
            waiters,
            listener,
            op_timeout: config.acquire_timeout + config.statement_timeout,
            time: TimeSource::Database,
        }
    }

    /// The same tracker, measuring time by `time` (the database's clock unless told).
    pub fn with_time_source(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }

    /// What a statement is given for a time the caller passed: the time itself, or NULL for
    /// the database's now.
    fn at(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self.time {
            TimeSource::Database => None,
            TimeSource::Caller => Some(t),
        }
    }

    /// Applies the pending migrations ([`PG_MIGRATOR`]); safe to run from several replicas
    /// (they take turns on an advisory lock). Not bounded by the statement timeout: a
    /// migration, or the wait for another replica's, may take longer.
    pub async fn migrate(&self) -> Result<(), TrackerError> {
        let mut lease = self.conns.acquire().await?;
        let unbounded = sqlx::query("SET statement_timeout = 0")
            .execute(lease.conn())
            .await;
        lease.check(unbounded)?;
        // `run_direct` on the connection itself: `run` goes through `Acquire`, whose
        // lifetimes make the future unprovably `Send` for callers that spawn it.
        let result = PG_MIGRATOR.run_direct(None, lease.conn(), false).await;
        if let Err(error) = result {
            // The lease is dropped in flight, so the connection is discarded.
            return Err(TrackerError::Other(format!("migration failed: {error}")));
        }
        lease.check(Ok(()))?;
        // Back to the session's own timeout before the connection serves requests again.
        let reset = sqlx::query("RESET statement_timeout")
            .execute(lease.conn())
            .await;
        lease.check(reset)?;
        Ok(())
    }

    /// Resolves once the listener is subscribed, so completions from other replicas wake
    /// this one without waiting for the final re-read. Before that (and while it
    /// reconnects), waits still end with the answer, only later.
    pub async fn until_listening(&self) {
        self.listener.until_listening().await;
    }

    /// How many requests this process is waiting on.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// The tracker's connections (for pool gauges, and to close them at shutdown).
    pub fn pool(&self) -> &PgConnections {
        &self.conns
    }

    /// Runs `fut`, giving up with `Unavailable` after the operation deadline, so that a
    /// silent network never hangs a caller.
    async fn bounded<T>(
        &self,
        fut: impl Future<Output = Result<T, TrackerError>>,
    ) -> Result<T, TrackerError> {
        tokio::time::timeout(self.op_timeout, fut)
            .await
            .unwrap_or_else(|_| Err(timed_out(self.op_timeout)))
    }

    /// [`Tracker::complete`], or [`Tracker::complete_matching`] when `expected` is given.
    async fn complete_checked(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        expected: Option<&ReplyMatch>,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        let columns = OutcomeColumns::of(outcome)?;
        let (grn, message_ref) = match expected {
            None => (None, None),
            Some(ReplyMatch::Grn(grn)) => (Some(grn.to_ascii_uppercase()), None),
            Some(ReplyMatch::MessageRef(reference)) => (None, Some(reference.as_str())),
        };
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            // A second attempt covers a row that turned up between the update and the read.
            for _ in 0..2 {
                let stored = sqlx::query_as::<_, PgRequestRow>(COMPLETE)
                    .bind(message_id.as_bytes().as_slice())
                    .bind(columns.status)
                    .bind(columns.balance.as_deref())
                    .bind(columns.currency.as_deref())
                    .bind(columns.errors.as_deref())
                    .bind(self.at(completed_at))
                    .bind(grn.as_deref())
                    .bind(message_ref)
                    .fetch_optional(lease.conn())
                    .await;
                if let Some(request) = decode(lease.check(stored)?)? {
                    // Local waiters take the request as it is, with no read and no wait for
                    // the notification's round trip.
                    self.waiters.complete(&request);
                    return Ok(Completion::Stored(request));
                }
                let current = sqlx::query_as::<_, PgRequestRow>(BY_MESSAGE_ID)
                    .bind(message_id.as_bytes().as_slice())
                    .bind(self.at(completed_at))
                    .fetch_optional(lease.conn())
                    .await;
                match decode(lease.check(current)?)? {
                    None => return Ok(Completion::NotFound),
                    Some(request) => match &request.outcome {
                        Some(existing) if existing == outcome => {
                            return Ok(Completion::Duplicate(request));
                        }
                        Some(_) => return Ok(Completion::Conflict(request)),
                        None if expected.is_some_and(|e| !e.matches(&request)) => {
                            return Ok(Completion::Unmatched(request));
                        }
                        None => continue,
                    },
                }
            }
            Ok(Completion::NotFound)
        })
        .await
    }

    /// The request `id` if it is live at `now`.
    async fn read(
        &self,
        id: BalanceRequestId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let row = sqlx::query_as::<_, PgRequestRow>(BY_ID)
                .bind(id.as_uuid())
                .bind(self.at(now))
                .fetch_optional(lease.conn())
                .await;
            decode(lease.check(row)?)
        })
        .await
    }
}

impl PgTracker {
    /// Takes lock `key` on behalf of `owner` (or nobody) unless someone holds it.
    async fn take_lock(
        &self,
        key: &str,
        owner: Option<BalanceRequestId>,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        let ttl_micros = micros(ttl)?;
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            // A second attempt covers a holder that lapsed and was deleted in between.
            for _ in 0..2 {
                let taken = sqlx::query_as::<_, (Option<OffsetDateTime>, String)>(TAKE_LOCK)
                    .bind(key)
                    .bind(self.at(now))
                    .bind(ttl_micros)
                    .bind(owner.map(|id| *id.as_uuid()))
                    .fetch_one(lease.conn())
                    .await;
                if lease.check(taken)?.0.is_some() {
                    return Ok(LockOutcome::Acquired);
                }
                let holder = sqlx::query_as::<_, (OffsetDateTime, OffsetDateTime)>(LOCK_HOLDER)
                    .bind(key)
                    .bind(self.at(now))
                    .fetch_optional(lease.conn())
                    .await;
                if let Some((expires_at, now)) = lease.check(holder)? {
                    return Ok(held_until(expires_at, now));
                }
            }
            Err(TrackerError::Other(format!(
                "lock {key:?} is neither free nor held"
            )))
        })
        .await
    }
}

/// `enable_seqscan` on the tracker's connections. Every statement of the tracker finds its
/// rows through an index (id, message id, lock key, expiry), but a prepared statement's
/// cached plan is made from the table's size at the time: one made while the table was empty
/// (a new database, or one the expiry job and vacuum emptied) scans it sequentially, and
/// keeps doing so as the table grows until the next `ANALYZE`. Measured: the completing
/// statement planned on an empty table took 1.9 ms at 20,000 rows, scanning all of them.
/// With sequential scans off, the planner takes an index whatever the table's size (and
/// the statements leave it one to take; see the note above the statements).
pub const SESSION_ENABLE_SEQSCAN: &str = "off";

/// `options` with the name and the session settings of the tracker's connections: its
/// `statement_timeout`, and `enable_seqscan` ([`SESSION_ENABLE_SEQSCAN`]).
pub fn session_options(options: PgConnectOptions, config: &PgConfig) -> PgConnectOptions {
    options.application_name(APPLICATION_NAME).options([
        (
            "statement_timeout",
            config.statement_timeout.as_millis().to_string(),
        ),
        ("enable_seqscan", SESSION_ENABLE_SEQSCAN.to_owned()),
    ])
}

/// The application name the tracker's connections show in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "gbal";

/// A duration in whole microseconds, as the statements take TTLs and lifetimes.
fn micros(d: Duration) -> Result<i64, TrackerError> {
    i64::try_from(d.as_micros())
        .map_err(|_| TrackerError::Other(format!("the duration {d:?} is out of range")))
}

/// A request's lifetime, `expires_at - requested_at`, in microseconds (zero if negative).
fn lifetime(request: &NewBalanceRequest) -> Result<i64, TrackerError> {
    micros(
        (request.expires_at - request.requested_at)
            .try_into()
            .unwrap_or_default(),
    )
}

/// Binds a new request's columns, in the order every inserting statement lists them:
/// id, message id, message ref, caller, API version, GRN, TIN, requested at, expires at,
/// lifetime (times through [`PgTracker::at`]).
macro_rules! bind_new_request {
    ($query:expr, $tracker:expr, $request:expr, $lifetime:expr) => {
        $query
            .bind($request.id.as_uuid())
            .bind($request.message_id().as_bytes().as_slice())
            .bind($request.message_ref.as_str())
            .bind($request.caller.as_str())
            .bind($request.api_version.number())
            .bind($request.grn.as_str())
            .bind($request.tin.as_ref().map(|t| t.as_str()))
            .bind($tracker.at($request.requested_at))
            .bind($tracker.at($request.expires_at))
            .bind($lifetime)
    };
}

#[async_trait]
impl Tracker for PgTracker {
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError> {
        let lifetime = lifetime(request)?;
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let done = bind_new_request!(sqlx::query(INSERT), self, request, lifetime)
                .execute(lease.conn())
                .await;
            lease.check(done)?;
            Ok(())
        })
        .await
    }

    async fn insert_completed(
        &self,
        request: &NewBalanceRequest,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<(), TrackerError> {
        let lifetime = lifetime(request)?;
        let columns = OutcomeColumns::of(outcome)?;
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let done = bind_new_request!(sqlx::query(INSERT_COMPLETED), self, request, lifetime)
                .bind(columns.status)
                .bind(columns.balance.as_deref())
                .bind(columns.currency.as_deref())
                .bind(columns.errors.as_deref())
                .bind(self.at(completed_at))
                .execute(lease.conn())
                .await;
            lease.check(done)?;
            Ok(())
        })
        .await
    }

    async fn lock_and_insert(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
        request: &NewBalanceRequest,
    ) -> Result<LockOutcome, TrackerError> {
        let ttl_micros = micros(ttl)?;
        let lifetime = lifetime(request)?;
        let answer = self
            .bounded(async {
                let mut lease = self.conns.acquire().await?;
                let row = bind_new_request!(
                    sqlx::query_as::<_, (bool, bool)>(LOCK_AND_INSERT)
                        .bind(key)
                        .bind(self.at(now))
                        .bind(ttl_micros),
                    self,
                    request,
                    lifetime
                )
                .fetch_one(lease.conn())
                .await;
                lease.check(row)
            })
            .await?;
        match answer {
            (true, true) => Ok(LockOutcome::Acquired),
            (true, false) => Err(TrackerError::DuplicateId),
            // Held (or it lapsed since): the one-step path reads the holder's expiry, or
            // takes the lock after all.
            (false, _) => lock_then_insert(self, key, now, ttl, request).await,
        }
    }

    async fn complete(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        self.complete_checked(message_id, outcome, None, completed_at)
            .await
    }

    async fn complete_matching(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        expected: &ReplyMatch,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        self.complete_checked(message_id, outcome, Some(expected), completed_at)
            .await
    }

    async fn get(
        &self,
        id: BalanceRequestId,
        caller: &CallerId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let row = sqlx::query_as::<_, PgRequestRow>(BY_ID_FOR_CALLER)
                .bind(id.as_uuid())
                .bind(caller.as_str())
                .bind(self.at(now))
                .fetch_optional(lease.conn())
                .await;
            decode(lease.check(row)?)
        })
        .await
    }

    async fn get_by_message_id(
        &self,
        message_id: MessageId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let row = sqlx::query_as::<_, PgRequestRow>(BY_MESSAGE_ID)
                .bind(message_id.as_bytes().as_slice())
                .bind(self.at(now))
                .fetch_optional(lease.conn())
                .await;
            decode(lease.check(row)?)
        })
        .await
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
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let done = sqlx::query_as::<_, (i64, i64)>(RELEASE)
                .bind(key)
                .bind(owner.as_uuid())
                .bind(request.map(|id| *id.as_uuid()))
                .fetch_one(lease.conn())
                .await;
            lease.check(done)?;
            Ok(())
        })
        .await
    }

    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let requests = sqlx::query(EXPIRE_REQUESTS)
                .bind(self.at(now))
                .bind(i64::from(batch))
                .execute(lease.conn())
                .await;
            let requests = lease.check(requests)?.rows_affected();
            let locks = sqlx::query(EXPIRE_LOCKS)
                .bind(self.at(now))
                .bind(i64::from(batch))
                .execute(lease.conn())
                .await;
            let locks = lease.check(locks)?.rows_affected();
            Ok(requests + locks)
        })
        .await
    }

    async fn ping(&self) -> Result<(), TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let done = sqlx::query("SELECT 1").execute(lease.conn()).await;
            lease.check(done)?;
            Ok(())
        })
        .await
    }

    async fn pending(&self, now: OffsetDateTime) -> Result<PendingRequests, TrackerError> {
        let (count, oldest, now) = self
            .bounded(async {
                let mut lease = self.conns.acquire().await?;
                let row =
                    sqlx::query_as::<_, (i64, Option<OffsetDateTime>, OffsetDateTime)>(PENDING)
                        .bind(self.at(now))
                        .fetch_one(lease.conn())
                        .await;
                lease.check(row)
            })
            .await?;
        Ok(pending_requests(count, oldest, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_connecting() {
        let config = PgConfig {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            PgTracker::connect("postgres://gbal@localhost:port/gbal", &config),
            Err(TrackerError::Other(_))
        ));
    }
}
