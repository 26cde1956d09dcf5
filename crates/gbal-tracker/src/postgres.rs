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
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::connections::PgConnections;
use crate::error::timed_out;
use crate::listener::Listener;
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

// The statements are written once each, in `src/postgres/*.sql`: sqlx's query macros
// (`query_file!` and its kin) check them against the schema at compile time (against the
// committed query data in `.sqlx/` when offline; `scripts/sqlx-prepare` writes it), and the
// constants below are the same text, for `pgbench` and for the plan tests. The macros take
// their SQL as a literal or a file, never as a constant: hence files, named in both places.
// A parameter read as `numeric` or `jsonb` is passed as text and cast (`$n::text::numeric`),
// as the tracker keeps both as text on the Rust side. Columns the macros cannot prove
// non-null (an expression, a column of a CTE) are named `"name!"` where they never are null.

/// Records a pending request: `$8` and `$9` its times, or NULL for the database's now and
/// now plus `$10`, its lifetime in microseconds.
const INSERT: &str = include_str!("postgres/insert.sql");

/// [`INSERT`] of a request already answered (`$11`-`$14` the outcome, `$15` when, or NULL for
/// the database's now), with no notification: nobody waits for it.
const INSERT_COMPLETED: &str = include_str!("postgres/insert_completed.sql");

/// Records the first outcome of a live request and announces it, in one statement (so in one
/// transaction): the notification is sent if and only if the update commits. `$7` and `$8`,
/// when not null, are what the request must match (`ReplyMatch`): its GRN in ASCII upper
/// case (`upper` under the "C" collation changes ASCII letters only, whatever the database's
/// locale), or its message ref. The channel is [`COMPLETION_CHANNEL`](crate::COMPLETION_CHANNEL),
/// written out as a literal (the statement is a file the query macro reads); a test checks
/// the two agree.
const COMPLETE: &str = include_str!("postgres/complete.sql");

const BY_MESSAGE_ID: &str = include_str!("postgres/by_message_id.sql");

const BY_ID_FOR_CALLER: &str = include_str!("postgres/by_id_for_caller.sql");

/// A live request by id (a wait's reads).
const BY_ID: &str = include_str!("postgres/by_id.sql");

/// Takes a free or lapsed lock `$1` at `$2` for `$3` microseconds on behalf of `$4` (or
/// nobody); a held lock is left alone. The answer's first column is the expiry of the lock
/// taken, NULL when it is held. Nothing durable depends on the lock alone, so its commit does
/// not wait for the WAL to reach the disk (`synchronous_commit` off for this transaction
/// only): a crash may lose the lock, never an answer; a durable commit after it (a request
/// recorded under it) flushes it too, the WAL being written in order.
const TAKE_LOCK: &str = include_str!("postgres/take_lock.sql");

/// A lock's expiry, and the now it is measured against (`$2`, or the database's).
const LOCK_HOLDER: &str = include_str!("postgres/lock_holder.sql");

/// Frees lock `$1` if it is held on behalf of `$2`, and removes request `$3` if it is still
/// pending, in one statement (so in one transaction); answers how many of each went.
const RELEASE: &str = include_str!("postgres/release.sql");

/// [`TAKE_LOCK`] (on behalf of the request) and, only if the lock was taken, [`INSERT`]
/// (`$4`-`$13`), in one statement, durable.
/// A request whose id or message id exists is skipped, not an error, so the lock stays taken.
/// A held lock's expiry is read by a second statement: reading it here too would put a scan
/// of `request_locks` in every check's statement, and a plan made while the table was empty
/// scans it sequentially (measured: a third of the statement's rate as the table grew).
const LOCK_AND_INSERT: &str = include_str!("postgres/lock_and_insert.sql");

const EXPIRE_REQUESTS: &str = include_str!("postgres/expire_requests.sql");

const EXPIRE_LOCKS: &str = include_str!("postgres/expire_locks.sql");

/// The live requests without an outcome: how many, and when the oldest was made. It reads
/// every live request through the expiry index (no index tells the pending ones apart: one
/// on `status` would make every completing update write all the indexes, measured at 9%
/// fewer requests per second), about 0.3 us a row.
const PENDING: &str = include_str!("postgres/pending.sql");

/// The SQL of one request's hot path, for comparisons with `pgbench`: taking its lock and
/// recording it, then completing it (with the notification). Wherever a statement takes a
/// now (`$n` of type `timestamptz`), NULL means the database's `now()`.
pub mod sql {
    /// Takes a lock and records a request under it: `$1` key, `$2` now, `$3` the lock's TTL
    /// in microseconds, `$4`-`$12` the request's nine columns, id to expiry (`$11`, `$12`
    /// NULL: now, and now plus `$13`, the request's lifetime in microseconds).
    pub const LOCK_AND_INSERT: &str = super::LOCK_AND_INSERT;
    /// Records a pending request: `$1`-`$10` as [`LOCK_AND_INSERT`]'s `$4`-`$13`.
    pub const INSERT: &str = super::INSERT;
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

/// A request's row as the statements read it (the query macros check the columns' names and
/// types against these fields).
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
        let unbounded = sqlx::query!("SET statement_timeout = 0")
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
        let reset = sqlx::query!("RESET statement_timeout")
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
                let stored = sqlx::query_file_as!(
                    PgRequestRow,
                    "src/postgres/complete.sql",
                    message_id.as_bytes().as_slice(),
                    columns.status,
                    columns.balance.as_deref(),
                    columns.currency.as_deref(),
                    columns.errors.as_deref(),
                    self.at(completed_at),
                    grn.as_deref(),
                    message_ref,
                )
                .fetch_optional(lease.conn())
                .await;
                if let Some(request) = decode(lease.check(stored)?)? {
                    // Local waiters take the request as it is, with no read and no wait for
                    // the notification's round trip.
                    self.waiters.complete(&request);
                    return Ok(Completion::Stored(request));
                }
                let current = sqlx::query_file_as!(
                    PgRequestRow,
                    "src/postgres/by_message_id.sql",
                    message_id.as_bytes().as_slice(),
                    self.at(completed_at),
                )
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
            let row = sqlx::query_file_as!(
                PgRequestRow,
                "src/postgres/by_id.sql",
                id.as_uuid(),
                self.at(now),
            )
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
                let taken = sqlx::query_file!(
                    "src/postgres/take_lock.sql",
                    key,
                    self.at(now),
                    ttl_micros,
                    owner.map(|id| *id.as_uuid()),
                )
                .fetch_one(lease.conn())
                .await;
                if lease.check(taken)?.taken_until.is_some() {
                    return Ok(LockOutcome::Acquired);
                }
                let holder = sqlx::query_file!("src/postgres/lock_holder.sql", key, self.at(now))
                    .fetch_optional(lease.conn())
                    .await;
                if let Some(holder) = lease.check(holder)? {
                    return Ok(held_until(holder.expires_at, holder.now));
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

/// sqlx's query macro `$macro` on `$head` (its statement, and the arguments before the
/// request's) with a new request's columns as the next arguments, in the order every
/// inserting statement lists them: id, message id, message ref, caller, API version, GRN,
/// TIN, requested at, expires at, lifetime (times through [`PgTracker::at`]); then `$tail`.
/// The message id is the caller's: the query borrows it.
macro_rules! query_new_request {
    (
        $macro:ident!($($head:tt)*),
        $tracker:expr,
        $request:expr,
        $message_id:expr,
        $lifetime:expr
        $(, $tail:expr)* $(,)?
    ) => {
        sqlx::$macro!(
            $($head)*,
            $request.id.as_uuid(),
            $message_id.as_bytes().as_slice(),
            $request.message_ref.as_str(),
            $request.caller.as_str(),
            $request.api_version.number(),
            $request.grn.as_str(),
            $request.tin.as_ref().map(|t| t.as_str()),
            $tracker.at($request.requested_at),
            $tracker.at($request.expires_at),
            $lifetime,
            $($tail),*
        )
    };
}

#[async_trait]
impl Tracker for PgTracker {
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError> {
        let lifetime = lifetime(request)?;
        let message_id = request.message_id();
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let done = query_new_request!(
                query_file!("src/postgres/insert.sql"),
                self,
                request,
                message_id,
                lifetime
            )
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
        let message_id = request.message_id();
        let columns = OutcomeColumns::of(outcome)?;
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let done = query_new_request!(
                query_file!("src/postgres/insert_completed.sql"),
                self,
                request,
                message_id,
                lifetime,
                columns.status,
                columns.balance.as_deref(),
                columns.currency.as_deref(),
                columns.errors.as_deref(),
                self.at(completed_at),
            )
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
        let message_id = request.message_id();
        let answer = self
            .bounded(async {
                let mut lease = self.conns.acquire().await?;
                let row = query_new_request!(
                    query_file!(
                        "src/postgres/lock_and_insert.sql",
                        key,
                        self.at(now),
                        ttl_micros
                    ),
                    self,
                    request,
                    message_id,
                    lifetime
                )
                .fetch_one(lease.conn())
                .await;
                lease.check(row)
            })
            .await?;
        match (answer.locked, answer.recorded) {
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
            let row = sqlx::query_file_as!(
                PgRequestRow,
                "src/postgres/by_id_for_caller.sql",
                id.as_uuid(),
                caller.as_str(),
                self.at(now),
            )
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
            let row = sqlx::query_file_as!(
                PgRequestRow,
                "src/postgres/by_message_id.sql",
                message_id.as_bytes().as_slice(),
                self.at(now),
            )
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
            let done = sqlx::query_file!(
                "src/postgres/release.sql",
                key,
                owner.as_uuid(),
                request.map(|id| *id.as_uuid()),
            )
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
            let requests = sqlx::query_file!(
                "src/postgres/expire_requests.sql",
                self.at(now),
                i64::from(batch),
            )
            .execute(lease.conn())
            .await;
            let requests = lease.check(requests)?.rows_affected();
            let locks = sqlx::query_file!(
                "src/postgres/expire_locks.sql",
                self.at(now),
                i64::from(batch),
            )
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
            let done = sqlx::query!("SELECT 1 AS alive")
                .fetch_one(lease.conn())
                .await;
            lease.check(done)?;
            Ok(())
        })
        .await
    }

    async fn pending(&self, now: OffsetDateTime) -> Result<PendingRequests, TrackerError> {
        let pending = self
            .bounded(async {
                let mut lease = self.conns.acquire().await?;
                let row = sqlx::query_file!("src/postgres/pending.sql", self.at(now))
                    .fetch_one(lease.conn())
                    .await;
                lease.check(row)
            })
            .await?;
        Ok(pending_requests(pending.count, pending.oldest, pending.now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_are_announced_on_the_channel_the_listener_listens_on() {
        let notify = format!("pg_notify('{}', done.id::text)", crate::COMPLETION_CHANNEL);
        assert!(sql::COMPLETE.contains(&notify), "{}", sql::COMPLETE);
    }

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
