//! Who in this process waits for which request, and how they are woken.
//!
//! A waiter registers before it first reads the request, so a wake-up that comes between that
//! read and the wait is not lost (a `watch` channel remembers that it changed). Entries go
//! when their last waiter does.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gbal_core::{BalanceRequest, BalanceRequestId, TrackerError};
use tokio::sync::watch;
use tokio::time::Instant;

/// The requests waited on in this process.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    by_id: Mutex<HashMap<BalanceRequestId, watch::Sender<u64>>>,
}

impl Waiters {
    /// Starts waiting for `id`; wake-ups from now on are seen by the returned waiter.
    pub fn register(self: &Arc<Self>, id: BalanceRequestId) -> Waiter {
        let mut map = self.lock();
        let rx = map
            .entry(id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Waiter {
            waiters: Arc::clone(self),
            id,
            rx: Some(rx),
        }
    }

    /// Wakes whoever waits for `id` in this process.
    pub fn wake(&self, id: BalanceRequestId) {
        if let Some(tx) = self.lock().get(&id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every waiter, so each reads its request again (after notifications may have
    /// been missed).
    pub fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// How many requests are waited on.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BalanceRequestId, watch::Sender<u64>>> {
        // The map stays consistent whatever a panicking holder was doing.
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One registered wait; unregisters when dropped.
#[derive(Debug)]
pub(crate) struct Waiter {
    waiters: Arc<Waiters>,
    id: BalanceRequestId,
    rx: Option<watch::Receiver<u64>>,
}

impl Waiter {
    /// Resolves at the next wake-up for this request.
    async fn woken(&mut self) {
        match self.rx.as_mut() {
            Some(rx) => {
                // The sender outlives its receivers, so an error cannot happen; if it did,
                // reading again is the safe answer.
                let _ = rx.changed().await;
            }
            None => std::future::pending().await,
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

/// Waits for request `id` to complete: reads it, then reads again at each wake-up until it
/// is completed, gone, or `timeout` passes, and always reads once more at the end.
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
    let mut waiter = waiters.register(id);
    loop {
        match read().await? {
            None => return Ok(None),
            Some(request) if request.is_completed() => return Ok(Some(request)),
            Some(_) => {}
        }
        if tokio::time::timeout_at(deadline, waiter.woken())
            .await
            .is_err()
        {
            break;
        }
    }
    // The wait is over; this read catches a completion whose wake-up never came.
    let last = read().await;
    drop(waiter);
    last
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
        tokio::time::timeout(Duration::from_secs(1), waiter.woken())
            .await
            .expect("woken");
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
