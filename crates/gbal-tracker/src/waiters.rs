//! Who in this process waits for which request, and how they are woken.
//!
//! A waiter registers before it first reads the request (or, for a request this process is
//! about to submit, before the submission), so a wake-up that comes in between is not lost: a
//! `watch` channel remembers that it changed. A wake-up either carries the completed request
//! (a completion recorded by this process) or asks the waiter to read it again (a
//! notification from elsewhere, or a reconnection). Entries go when their last waiter does.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gbal_core::{BalanceRequest, BalanceRequestId, TrackerError};
use tokio::sync::watch;
use tokio::time::Instant;

/// The latest news about one request.
#[derive(Debug, Clone, Default)]
enum Signal {
    /// Nothing yet.
    #[default]
    Nothing,
    /// Something may have changed: read the request again.
    Reread,
    /// The request as its completion left it.
    Completed(Arc<BalanceRequest>),
}

type Map = HashMap<BalanceRequestId, watch::Sender<Signal>>;

/// The requests waited on in this process.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    by_id: Mutex<Map>,
}

impl Waiters {
    /// Starts waiting for `id`; wake-ups from now on are seen by the returned waiter.
    pub fn register(self: &Arc<Self>, id: BalanceRequestId) -> Waiter {
        let mut map = self.lock();
        let rx = map
            .entry(id)
            .or_insert_with(|| watch::channel(Signal::Nothing).0)
            .subscribe();
        Waiter {
            waiters: Arc::clone(self),
            id,
            rx: Some(rx),
        }
    }

    /// Hands the completed `request` to whoever waits for it in this process.
    pub fn complete(&self, request: &BalanceRequest) {
        if let Some(tx) = self.lock().get(&request.id) {
            tx.send_replace(Signal::Completed(Arc::new(request.clone())));
        }
    }

    /// Asks whoever waits for `id` in this process to read it again.
    pub fn wake(&self, id: BalanceRequestId) {
        if let Some(tx) = self.lock().get(&id) {
            tx.send_if_modified(reread);
        }
    }

    /// Asks every waiter to read its request again (after notifications may have been
    /// missed).
    pub fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_if_modified(reread);
        }
    }

    /// How many requests are waited on.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // The map stays consistent whatever a panicking holder was doing.
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A completion already handed over is never replaced by a request to read again.
fn reread(signal: &mut Signal) -> bool {
    if matches!(signal, Signal::Completed(_)) {
        return false;
    }
    *signal = Signal::Reread;
    true
}

/// One registered wait; unregisters when dropped.
#[derive(Debug)]
pub(crate) struct Waiter {
    waiters: Arc<Waiters>,
    id: BalanceRequestId,
    rx: Option<watch::Receiver<Signal>>,
}

impl Waiter {
    /// Resolves at the next wake-up for this request: with the request when the wake-up
    /// carried it, `None` when the request should be read again.
    async fn woken(&mut self) -> Option<BalanceRequest> {
        let rx = self.rx.as_mut()?;
        // The sender outlives its receivers, so an error cannot happen; if it did, reading
        // again is the safe answer.
        let _ = rx.changed().await;
        match &*rx.borrow_and_update() {
            Signal::Completed(request) => Some(BalanceRequest::clone(request)),
            Signal::Nothing | Signal::Reread => None,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut map = self.waiters.lock();
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&self.id);
        }
    }
}

/// Waits for request `id` to complete: reads it, then waits as [`wait_registered`] does.
pub(crate) async fn wait_for_completion<F, Fut>(
    waiters: &Arc<Waiters>,
    id: BalanceRequestId,
    timeout: Duration,
    read: F,
) -> Result<Option<BalanceRequest>, TrackerError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<BalanceRequest>, TrackerError>>,
{
    let deadline = Instant::now() + timeout;
    let waiter = waiters.register(id);
    match read().await? {
        None => return Ok(None),
        Some(request) if request.is_completed() => return Ok(Some(request)),
        Some(_) => {}
    }
    wait_registered(waiter, deadline, read).await
}

/// Waits with a waiter registered before anything could complete its request: takes a
/// completion handed over, reads the request at each request to read again until it is
/// completed or gone, and reads it once more at `deadline` if none of that ended the wait.
pub(crate) async fn wait_registered<F, Fut>(
    mut waiter: Waiter,
    deadline: Instant,
    read: F,
) -> Result<Option<BalanceRequest>, TrackerError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<BalanceRequest>, TrackerError>>,
{
    while let Ok(woken) = tokio::time::timeout_at(deadline, waiter.woken()).await {
        if let Some(request) = woken {
            return Ok(Some(request));
        }
        match read().await? {
            None => return Ok(None),
            Some(request) if request.is_completed() => return Ok(Some(request)),
            Some(_) => {}
        }
    }
    // The wait is over; this read catches a completion whose wake-up never came.
    let last = read().await;
    drop(waiter);
    last
}

/// Starts a [`gbal_core::CompletionWatch`] on `id`, reading the request with `read`.
pub(crate) fn watch<'a, F, Fut>(
    waiters: &Arc<Waiters>,
    id: BalanceRequestId,
    read: F,
) -> Box<dyn gbal_core::CompletionWatch + 'a>
where
    F: Fn() -> Fut + Send + 'a,
    Fut: Future<Output = Result<Option<BalanceRequest>, TrackerError>> + Send + 'a,
{
    Box::new(Watch {
        waiter: waiters.register(id),
        read,
    })
}

/// A [`gbal_core::CompletionWatch`] over a registered waiter and a way to read the request.
struct Watch<F> {
    waiter: Waiter,
    read: F,
}

impl<F> std::fmt::Debug for Watch<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("waiter", &self.waiter)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<F, Fut> gbal_core::CompletionWatch for Watch<F>
where
    F: Fn() -> Fut + Send,
    Fut: Future<Output = Result<Option<BalanceRequest>, TrackerError>> + Send,
{
    async fn wait(
        self: Box<Self>,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        let Watch { waiter, read } = *self;
        wait_registered(waiter, Instant::now() + timeout, read).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost() {
        let waiters = Arc::new(Waiters::default());
        let id = BalanceRequestId::new();
        let mut waiter = waiters.register(id);
        waiters.wake(id);
        let woken = tokio::time::timeout(Duration::from_secs(1), waiter.woken())
            .await
            .expect("woken");
        assert_eq!(woken, None, "a plain wake-up asks for a read");
    }

    #[tokio::test]
    async fn a_completion_handed_over_outlives_later_wake_ups() {
        let waiters = Arc::new(Waiters::default());
        let new = gbal_core::NewBalanceRequest {
            id: BalanceRequestId::new(),
            message_ref: gbal_core::UniqueReference::random(),
            caller: gbal_core::CallerId::parse("client-1").unwrap(),
            api_version: gbal_core::ApiVersion::V2,
            grn: gbal_core::Grn::parse_v1("GRN1").unwrap(),
            tin: None,
            requested_at: time::OffsetDateTime::UNIX_EPOCH,
            expires_at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::HOUR,
        };
        let request = BalanceRequest::pending(&new);
        let mut waiter = waiters.register(new.id);
        waiters.complete(&request);
        // A notification of the same completion, and a reconnection, come after it.
        waiters.wake(new.id);
        waiters.wake_all();
        let woken = tokio::time::timeout(Duration::from_secs(1), waiter.woken())
            .await
            .expect("woken");
        assert_eq!(woken, Some(request));
        // Nobody waits for another request: handing it over does nothing.
        waiters.complete(&BalanceRequest {
            id: BalanceRequestId::new(),
            ..BalanceRequest::pending(&new)
        });
        assert_eq!(waiters.len(), 1);
    }

    #[tokio::test]
    async fn entries_go_with_their_last_waiter() {
        let waiters = Arc::new(Waiters::default());
        let id = BalanceRequestId::new();
        let a = waiters.register(id);
        let b = waiters.register(id);
        assert_eq!(waiters.len(), 1);
        drop(a);
        assert_eq!(waiters.len(), 1);
        drop(b);
        assert_eq!(waiters.len(), 0);
        waiters.wake(id);
        waiters.wake_all();
    }
}
