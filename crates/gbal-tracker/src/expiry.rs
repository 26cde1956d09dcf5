//! The expiry job: deletes expired requests and lapsed locks in bounded batches. It needs no
//! leader: every replica may run it, since each batch skips the rows another job holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gbal_core::{Clock, Tracker, TrackerError};
use time::OffsetDateTime;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Runs the expiry job every `interval` (the first sweep at once) until `cancel` fires, and
/// returns how many rows it deleted. Errors are logged and the job goes on.
pub async fn run_expiry(
    tracker: Arc<dyn Tracker>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: u32,
    cancel: CancellationToken,
) -> u64 {
    let deleted = AtomicU64::new(0);
    run_expiry_counting(tracker, clock, interval, batch, cancel, &deleted).await
}

/// [`run_expiry`], adding every deleted row (requests and locks) to `deleted` as each batch
/// goes, so that a metrics exporter can read the running total; returns what it added.
pub async fn run_expiry_counting(
    tracker: Arc<dyn Tracker>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: u32,
    cancel: CancellationToken,
    deleted: &AtomicU64,
) -> u64 {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut total = 0;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let now = clock.now();
        let mut swept = 0;
        let result = sweep(tracker.as_ref(), now, batch, &cancel, |n| {
            swept += n;
            deleted.fetch_add(n, Ordering::Relaxed);
        })
        .await;
        total += swept;
        match result {
            Ok(()) if swept > 0 => {
                tracing::info!(deleted = swept, "expired requests and locks deleted");
            }
            Ok(()) => tracing::debug!("nothing expired"),
            Err(error) => tracing::warn!(
                %error,
                deleted = swept,
                "the expiry sweep failed; it will run again at the next interval"
            ),
        }
    }
    total
}

/// Deletes what expired at `now`, `batch` rows of each table at a time, until a batch comes
/// back short; returns how many rows went.
pub async fn expire_all(
    tracker: &dyn Tracker,
    now: OffsetDateTime,
    batch: u32,
) -> Result<u64, TrackerError> {
    let mut total = 0;
    sweep(tracker, now, batch, &CancellationToken::new(), |n| {
        total += n
    })
    .await?;
    Ok(total)
}

async fn sweep(
    tracker: &dyn Tracker,
    now: OffsetDateTime,
    batch: u32,
    cancel: &CancellationToken,
    mut on_batch: impl FnMut(u64),
) -> Result<(), TrackerError> {
    let batch = batch.max(1);
    while !cancel.is_cancelled() {
        let n = tracker.expire(now, batch).await?;
        on_batch(n);
        // `n` counts both tables: below `batch`, neither was full.
        if n < u64::from(batch) {
            break;
        }
    }
    Ok(())
}
