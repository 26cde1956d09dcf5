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
    MessageId, NewBalanceRequest, Outcome, ReplyMatch, Tracker, TrackerError, lock_then_insert,
};
use sqlx::FromRow;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::connections::PgConnections;
use crate::error::timed_out;
use crate::listener::{Listener, completion_channel};
use crate::lock::{held_until, lock_expiry};
use crate::row::{OutcomeColumns, StoredRequest};
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

const INSERT: &str = "INSERT INTO balance_requests \
     (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Records the first outcome of a live request and announces it, in one statement (so in one
/// transaction): the notification is sent if and only if the update commits. `$7` and `$8`,
/// when not null, are what the request must match (`ReplyMatch`): its GRN in ASCII upper
/// case (`upper` under the "C" collation changes ASCII letters only, whatever the database's
/// locale), or its message ref.
const COMPLETE: &str = concat!(
    "WITH done AS (UPDATE balance_requests \
     SET status = $2, balance = $3::numeric, currency = $4, errors = $5::jsonb, completed_at = $6 \
     WHERE message_id = $1 AND expires_at + interval '0' > $6 AND status IS NULL \
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
    " FROM balance_requests WHERE message_id = $1 AND expires_at + interval '0' > $2"
);

const BY_ID_FOR_CALLER: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE id = $1 AND caller = $2 AND expires_at + interval '0' > $3"
);

const BY_ID: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM balance_requests WHERE id = $1"
);

/// Takes a free or lapsed lock; a held lock is left alone (and no row comes back).
const TAKE_LOCK: &str = "INSERT INTO request_locks (key, expires_at) VALUES ($1, $3) \
     ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at \
     WHERE request_locks.expires_at <= $2 RETURNING expires_at";

const LOCK_HOLDER: &str = "SELECT expires_at FROM request_locks WHERE key = $1";

/// [`TAKE_LOCK`] and, only if the lock was taken, [`INSERT`] (`$4`-`$12`), in one statement.
/// A request whose id or message id exists is skipped, not an error, so the lock stays taken.
/// A held lock's expiry is read by a second statement: reading it here too would put a scan
/// of `request_locks` in every check's statement, and a plan made while the table was empty
/// scans it sequentially (measured: a third of the statement's rate as the table grew).
const LOCK_AND_INSERT: &str = "WITH locked AS (\
     INSERT INTO request_locks (key, expires_at) VALUES ($1, $3) \
     ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at \
     WHERE request_locks.expires_at <= $2 RETURNING expires_at), \
     recorded AS (\
     INSERT INTO balance_requests \
     (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at) \
     SELECT $4::uuid, $5::bytea, $6::text, $7::text, $8::smallint, $9::text, $10::text, \
     $11::timestamptz, $12::timestamptz WHERE EXISTS (SELECT 1 FROM locked) \
     ON CONFLICT DO NOTHING RETURNING id) \
     SELECT EXISTS (SELECT 1 FROM locked), EXISTS (SELECT 1 FROM recorded)";

const EXPIRE_REQUESTS: &str = "DELETE FROM balance_requests WHERE id IN \
     (SELECT id FROM balance_requests WHERE expires_at <= $1 \
      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

const EXPIRE_LOCKS: &str = "DELETE FROM request_locks WHERE key IN \
     (SELECT key FROM request_locks WHERE expires_at <= $1 \
      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// The SQL of one request's hot path, for comparisons with `pgbench`: taking its lock and
/// recording it, then completing it (with the notification).
pub mod sql {
    /// Takes a lock and records a request under it: `$1` key, `$2` now, `$3` lock expiry,
    /// `$4`-`$12` the request's nine columns, id to expiry.
    pub const LOCK_AND_INSERT: &str = super::LOCK_AND_INSERT;
    /// Completes a request and notifies: `$1` message id, `$2`-`$5` outcome, `$6` now, `$7`
    /// the GRN in upper case or null, `$8` the message ref or null.
    pub const COMPLETE: &str = super::COMPLETE;
    /// Reads a live request by message id: `$1` message id, `$2` now.
    pub const BY_MESSAGE_ID: &str = super::BY_MESSAGE_ID;
    /// Reads a caller's live request: `$1` id, `$2` caller, `$3` now.
    pub const BY_ID_FOR_CALLER: &str = super::BY_ID_FOR_CALLER;
    /// Reads a request by id: `$1` id.
    pub const BY_ID: &str = super::BY_ID;
    /// Reads a lock's expiry: `$1` key.
    pub const LOCK_HOLDER: &str = super::LOCK_HOLDER;
    /// Deletes a batch of expired requests: `$1` now, `$2` batch size.
    pub const EXPIRE_REQUESTS: &str = super::EXPIRE_REQUESTS;
    /// Deletes a batch of lapsed locks: `$1` now, `$2` batch size.
    pub const EXPIRE_LOCKS: &str = super::EXPIRE_LOCKS;
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

/// The request tracker on PostgreSQL. Cheap to clone; clones share the connections, the
/// listener and the waiters. The listener stops when the last clone is dropped.
#[derive(Clone)]
pub struct PgTracker {
    conns: Arc<PgConnections>,
    waiters: Arc<Waiters>,
    listener: Arc<Listener>,
    /// The longest an operation may take before it is `Unavailable`.
    op_timeout: Duration,
}

impl fmt::Debug for PgTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTracker")
            .field("connections", &self.conns.size())
            .field("waiting", &self.waiters.len())
            .field("listening", &self.listener.is_listening())
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
                    .bind(completed_at)
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
                    .bind(completed_at)
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

    async fn read(&self, id: BalanceRequestId) -> Result<Option<BalanceRequest>, TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let row = sqlx::query_as::<_, PgRequestRow>(BY_ID)
                .bind(id.as_uuid())
                .fetch_optional(lease.conn())
                .await;
            decode(lease.check(row)?)
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

#[async_trait]
impl Tracker for PgTracker {
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let done = sqlx::query(INSERT)
                .bind(request.id.as_uuid())
                .bind(request.message_id().as_bytes().as_slice())
                .bind(request.message_ref.as_str())
                .bind(request.caller.as_str())
                .bind(request.api_version.number())
                .bind(request.grn.as_str())
                .bind(request.tin.as_ref().map(|t| t.as_str()))
                .bind(request.requested_at)
                .bind(request.expires_at)
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
        let until = lock_expiry(now, ttl)?;
        let answer = self
            .bounded(async {
                let mut lease = self.conns.acquire().await?;
                let row = sqlx::query_as::<_, (bool, bool)>(LOCK_AND_INSERT)
                    .bind(key)
                    .bind(now)
                    .bind(until)
                    .bind(request.id.as_uuid())
                    .bind(request.message_id().as_bytes().as_slice())
                    .bind(request.message_ref.as_str())
                    .bind(request.caller.as_str())
                    .bind(request.api_version.number())
                    .bind(request.grn.as_str())
                    .bind(request.tin.as_ref().map(|t| t.as_str()))
                    .bind(request.requested_at)
                    .bind(request.expires_at)
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
                .bind(now)
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
                .bind(now)
                .fetch_optional(lease.conn())
                .await;
            decode(lease.check(row)?)
        })
        .await
    }

    async fn wait_for_completion(
        &self,
        id: BalanceRequestId,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        waiters::wait_for_completion(&self.waiters, id, timeout, || self.read(id)).await
    }

    fn watch<'a>(&'a self, id: BalanceRequestId) -> Box<dyn CompletionWatch + 'a> {
        waiters::watch(&self.waiters, id, move || self.read(id))
    }

    async fn acquire_lock(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        let until = lock_expiry(now, ttl)?;
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            // A second attempt covers a holder that lapsed and was deleted in between.
            for _ in 0..2 {
                let taken = sqlx::query_scalar::<_, OffsetDateTime>(TAKE_LOCK)
                    .bind(key)
                    .bind(now)
                    .bind(until)
                    .fetch_optional(lease.conn())
                    .await;
                if lease.check(taken)?.is_some() {
                    return Ok(LockOutcome::Acquired);
                }
                let holder = sqlx::query_scalar::<_, OffsetDateTime>(LOCK_HOLDER)
                    .bind(key)
                    .fetch_optional(lease.conn())
                    .await;
                if let Some(expires_at) = lease.check(holder)? {
                    return Ok(held_until(expires_at, now));
                }
            }
            Err(TrackerError::Other(format!(
                "lock {key:?} is neither free nor held"
            )))
        })
        .await
    }

    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError> {
        self.bounded(async {
            let mut lease = self.conns.acquire().await?;
            let requests = sqlx::query(EXPIRE_REQUESTS)
                .bind(now)
                .bind(i64::from(batch))
                .execute(lease.conn())
                .await;
            let requests = lease.check(requests)?.rows_affected();
            let locks = sqlx::query(EXPIRE_LOCKS)
                .bind(now)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::COMPLETION_CHANNEL;

    #[test]
    fn the_completing_statement_notifies_on_the_channel() {
        assert!(COMPLETE.contains(&format!("pg_notify('{COMPLETION_CHANNEL}'")));
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
