//! The tracker's PostgreSQL connections: a small pool of its own.
//!
//! Why not `sqlx::PgPool`: it pings every connection when it is released, one extra round
//! trip per statement. The tracker's operations are mostly single statements, so that
//! doubled the messages the shared database handles and nearly doubled the client's CPU
//! per request (`docs/performance.md`: about 110 us against 61 us with this pool). This pool
//! instead trusts a connection that just completed a statement, and checks the rest:
//!
//! - at most `max_connections` connections, handed out first come first served;
//! - a connection idle for a second or more is pinged before use, and one idle for ten
//!   minutes is closed;
//! - a connection is reused only after its statement completed or the database refused it
//!   with an ordinary error; after any other error, or if the operation was cancelled half
//!   way, it is discarded;
//! - getting a connection (waiting for a free slot, connecting, retrying a refused connection
//!   with backoff) gives up at the acquire timeout: the operation is `Unavailable`.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use gbal_core::TrackerError;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::error::{from_sqlx, is_unavailable};

/// Connections idle at least this long are pinged before use: they are the ones a restart
/// or a network cut may have killed while nobody looked.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Connections idle this long are closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The PostgreSQL connections of a `PgTracker` (see [the module](self) for why it
/// is not `sqlx::PgPool`).
#[derive(Debug)]
pub struct PgConnections {
    options: PgConnectOptions,
    acquire_timeout: Duration,
    max: u32,
    slots: Semaphore,
    /// Most recently used last.
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    conn: PgConnection,
    since: Instant,
}

impl PgConnections {
    /// A pool that connects lazily, with a background task closing long-idle connections.
    /// Needs a Tokio runtime.
    pub(crate) fn new(options: PgConnectOptions, max: u32, acquire_timeout: Duration) -> Arc<Self> {
        let max = max.max(1);
        let pool = Arc::new(Self {
            options,
            acquire_timeout,
            max,
            slots: Semaphore::new(max as usize),
            idle: Mutex::new(Vec::new()),
        });
        tokio::spawn(reap(Arc::downgrade(&pool)));
        pool
    }

    /// Open connections: idle plus in use.
    pub fn size(&self) -> u32 {
        let idle = u32::try_from(self.num_idle()).unwrap_or(u32::MAX);
        let in_use = u32::try_from(self.slots.available_permits())
            .map_or(0, |free| self.max.saturating_sub(free));
        idle.saturating_add(if self.slots.is_closed() { 0 } else { in_use })
    }

    /// Connections waiting, idle, for an operation.
    pub fn num_idle(&self) -> usize {
        self.lock().len()
    }

    /// Closes the pool: further operations fail (`Unavailable`), idle connections are closed
    /// now and the ones in use as they come back. For a graceful shutdown.
    pub async fn close(&self) {
        self.slots.close();
        let idle: Vec<Idle> = std::mem::take(&mut *self.lock());
        for Idle { conn, .. } in idle {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
        }
    }

    /// A connection, within the acquire timeout.
    pub(crate) async fn acquire(&self) -> Result<Lease<'_>, TrackerError> {
        self.try_acquire().await.map_err(from_sqlx)
    }

    async fn try_acquire(&self) -> Result<Lease<'_>, sqlx::Error> {
        let deadline = Instant::now() + self.acquire_timeout;
        let slot = tokio::time::timeout_at(deadline, self.slots.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        while let Some(idle) = self.pop_idle() {
            let Idle { mut conn, since } = idle;
            if since.elapsed() >= IDLE_TIMEOUT {
                close(conn);
                continue;
            }
            if since.elapsed() >= PING_IDLE_AFTER {
                match tokio::time::timeout_at(deadline, conn.ping()).await {
                    Ok(Ok(())) => {}
                    // Dead or silent: try the next one, or a new one.
                    _ => continue,
                }
            }
            return Ok(Lease::new(self, slot, conn));
        }
        let conn = self.connect(deadline).await?;
        Ok(Lease::new(self, slot, conn))
    }

    async fn connect(&self, deadline: Instant) -> Result<PgConnection, sqlx::Error> {
        let mut backoff = Duration::from_millis(10);
        loop {
            match tokio::time::timeout_at(deadline, self.options.connect()).await {
                Ok(Ok(conn)) => return Ok(conn),
                // The server is (re)starting: worth retrying until the deadline.
                Ok(Err(sqlx::Error::Io(e)))
                    if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("57P03") => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
            }
            if Instant::now() + backoff >= deadline {
                return Err(sqlx::Error::PoolTimedOut);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    fn pop_idle(&self) -> Option<Idle> {
        self.lock().pop()
    }

    fn push_idle(&self, conn: PgConnection) {
        if self.slots.is_closed() {
            close(conn);
            return;
        }
        self.lock().push(Idle {
            conn,
            since: Instant::now(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // A Vec of connections cannot be left half-changed by a panicking holder.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for PgConnections {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.lock());
        for Idle { conn, .. } in idle {
            close(conn);
        }
    }
}

/// Closes `conn` politely in the background when a runtime is there; drops it otherwise.
fn close(conn: PgConnection) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
        });
    }
}

/// Closes connections idle for [`IDLE_TIMEOUT`], until the pool is gone.
async fn reap(pool: Weak<PgConnections>) {
    loop {
        tokio::time::sleep(IDLE_TIMEOUT / 10).await;
        let Some(pool) = pool.upgrade() else { return };
        let stale: Vec<Idle> = {
            let mut idle = pool.lock();
            // Oldest first: the stale ones are a prefix.
            let keep_from = idle
                .iter()
                .position(|i| i.since.elapsed() < IDLE_TIMEOUT)
                .unwrap_or(idle.len());
            idle.drain(..keep_from).collect()
        };
        for Idle { conn, .. } in stale {
            close(conn);
        }
    }
}

/// A connection in use, returned to the pool when dropped, unless it broke or was dropped
/// half way through a statement (an error, a cancelled operation): then it is discarded.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    pool: &'a PgConnections,
    conn: Option<PgConnection>,
    /// A statement was started on the connection and its result not yet checked.
    in_flight: bool,
    /// The connection failed in a way that makes it unusable.
    broken: bool,
    _slot: SemaphorePermit<'a>,
}

impl<'a> Lease<'a> {
    fn new(pool: &'a PgConnections, slot: SemaphorePermit<'a>, conn: PgConnection) -> Self {
        Self {
            pool,
            conn: Some(conn),
            in_flight: false,
            broken: false,
            _slot: slot,
        }
    }

    /// The connection, to run one statement on; pass its result to [`Lease::check`].
    pub fn conn(&mut self) -> &mut PgConnection {
        self.in_flight = true;
        self.conn
            .as_mut()
            .expect("a lease holds its connection until it is dropped")
    }

    /// The statement's result, as a tracker result. The connection stays usable after
    /// success or an error the database answered (a unique violation, say); any other
    /// error breaks it.
    pub fn check<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, TrackerError> {
        self.in_flight = false;
        result.map_err(|error| {
            self.broken |= match &error {
                sqlx::Error::Database(e) => is_unavailable(e.as_ref()),
                _ => true,
            };
            from_sqlx(error)
        })
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.in_flight || self.broken {
                // Possibly mid-statement or dead: dropping closes the socket and the server
                // ends the session.
                drop(conn);
            } else {
                self.pool.push_idle(conn);
            }
        }
    }
}
