//! One `LISTEN` connection per `PgTracker`: it turns completion notifications from
//! any replica into wake-ups of this process's waiters, and reconnects by itself, with
//! backoff, when its connection drops. After every (re)connection it wakes every waiter, so
//! each reads its request again: notifications sent while it was away are lost.

use std::sync::Arc;
use std::time::Duration;

use gbal_core::BalanceRequestId;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::waiters::Waiters;

/// The notification channel completions are announced on; the payload is the request id.
/// The completing statement (`src/postgres/complete.sql`) names it as a literal, since
/// sqlx's query macros read a statement whole from its file; a test checks they agree.
pub const COMPLETION_CHANNEL: &str = "gbal_request_completed";

/// First wait after a failed connection; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The application name the listening connection shows in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "gbal-listener";

/// A running listener; it stops when dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    listening: watch::Receiver<bool>,
    _stop: DropGuard,
}

impl Listener {
    /// Starts listening on a connection of its own, made with `options`.
    pub fn start(
        options: PgConnectOptions,
        acquire_timeout: Duration,
        waiters: Arc<Waiters>,
    ) -> Self {
        let options = options.application_name(LISTENER_APPLICATION_NAME);
        // `PgListener` wants a pool: one connection, never shared with requests.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        let (tx, listening) = watch::channel(false);
        let cancel = CancellationToken::new();
        tokio::spawn(run(own, waiters, tx, cancel.clone()));
        Self {
            listening,
            _stop: cancel.drop_guard(),
        }
    }

    /// Whether the listener is subscribed right now.
    pub fn is_listening(&self) -> bool {
        *self.listening.borrow()
    }

    /// Resolves once the listener is subscribed.
    pub async fn until_listening(&self) {
        let mut rx = self.listening.clone();
        // An error means the task ended (only when stopping); nothing to wait for then.
        let _ = rx.wait_for(|listening| *listening).await;
    }
}

async fn run(
    pool: PgPool,
    waiters: Arc<Waiters>,
    listening: watch::Sender<bool>,
    cancel: CancellationToken,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let subscribed = tokio::select! {
            () = cancel.cancelled() => break,
            subscribed = subscribe(&pool) => subscribed,
        };
        let mut listener = match subscribed {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "cannot listen for completions");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        listening.send_replace(true);
        tracing::debug!(channel = COMPLETION_CHANNEL, "listening for completions");
        // Anything announced while we were not listening is lost: every waiter reads again.
        waiters.wake_all();
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => break,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(notification)) => {
                    match notification.payload().parse::<BalanceRequestId>() {
                        Ok(id) => waiters.wake(id),
                        Err(_) => tracing::warn!(
                            payload = notification.payload(),
                            "ignoring a completion notification that names no request"
                        ),
                    }
                }
                Ok(None) => {
                    tracing::warn!("the completion listener lost its connection; reconnecting");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "the completion listener failed; reconnecting");
                    break;
                }
            }
        }
        listening.send_replace(false);
        if cancel.is_cancelled() {
            break;
        }
    }
    pool.close().await;
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // We reconnect ourselves, so that we know when to wake every waiter.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(COMPLETION_CHANNEL).await?;
    Ok(listener)
}
