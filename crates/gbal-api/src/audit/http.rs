//! The HTTP sink: its settings, and the background task that POSTs queued events in batches
//! with bounded retries, counting what it drops.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::StartError;

/// The HTTP sink's settings (`[audit]` of the binary's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHttpConfig {
    /// Where batches are POSTed (a JSON array of events per request).
    pub url: reqwest::Url,
    /// The bearer token sent with each batch, if any.
    pub token: Option<String>,
    /// Most events waiting to be sent; past it new events are dropped and counted.
    pub queue: usize,
    /// Most events per POST.
    pub batch_size: usize,
    /// How long a batch that is not full waits for more events before it is sent.
    pub flush_interval: Duration,
    /// Further attempts after a POST fails (a network error, a timeout or a status other
    /// than 2xx), with growing delays; then the batch is dropped and counted.
    pub retries: u32,
    /// How long one POST may take.
    pub timeout: Duration,
}

/// The most events the HTTP sink's queue may hold.
pub const MAX_AUDIT_QUEUE: usize = 1_000_000;
/// The most further attempts at one batch.
pub const MAX_AUDIT_RETRIES: u32 = 10;
/// The longest flush interval and POST timeout (the final flush at shutdown takes up to one
/// timeout).
pub const MAX_AUDIT_WAIT: Duration = Duration::from_secs(60);

impl AuditHttpConfig {
    /// Checks the values the sink relies on; the error names the setting (`queue`,
    /// `batch_size`, `flush_interval`, `retries`, `timeout`).
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.queue == 0 || self.queue > MAX_AUDIT_QUEUE {
            return Err(("queue", "must be 1 to 1000000"));
        }
        if self.batch_size == 0 || self.batch_size > self.queue {
            return Err(("batch_size", "must be at least 1 and at most queue"));
        }
        if self.flush_interval.is_zero() || self.flush_interval > MAX_AUDIT_WAIT {
            return Err(("flush_interval", "must be above 0 and at most 60s"));
        }
        if self.retries > MAX_AUDIT_RETRIES {
            return Err(("retries", "must be at most 10"));
        }
        if self.timeout.is_zero() || self.timeout > MAX_AUDIT_WAIT {
            return Err(("timeout", "must be above 0 and at most 60s"));
        }
        Ok(())
    }
}

// Why an event was not delivered: the `reason` label of `gbal_audit_events_dropped_total`.
/// The HTTP sink's queue was full.
pub(super) const QUEUE_FULL: &str = "queue_full";
/// Every attempt at its batch failed.
pub(super) const DELIVERY_FAILED: &str = "delivery_failed";
/// Still queued when the process stopped and the final flush ran out of time, or recorded
/// after delivery stopped.
pub(super) const SHUTDOWN: &str = "shutdown";

/// Counts `events` dropped for `reason`.
pub(super) fn dropped(reason: &'static str, events: usize) {
    metrics::counter!("gbal_audit_events_dropped_total", "reason" => reason)
        .increment(events as u64);
}

/// The HTTP sink's background delivery: takes events from the queue and POSTs them in
/// batches. Run it with [`AuditDelivery::run`].
#[derive(Debug)]
pub struct AuditDelivery {
    receiver: mpsc::Receiver<String>,
    client: reqwest::Client,
    config: AuditHttpConfig,
}

impl AuditDelivery {
    /// The queue of an HTTP sink with these settings, and the delivery that empties it.
    pub(super) fn new(
        config: &AuditHttpConfig,
    ) -> Result<(mpsc::Sender<String>, Self), StartError> {
        config
            .validate()
            .map_err(|(setting, reason)| StartError::InvalidSetting {
                setting,
                reason: reason.to_owned(),
            })?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StartError::InvalidSetting {
                setting: "http_url",
                reason: format!("no HTTP client: {e}"),
            })?;
        let (sender, receiver) = mpsc::channel(config.queue);
        // Published from the start, so a dashboard sees zero rather than nothing.
        for reason in [QUEUE_FULL, DELIVERY_FAILED, SHUTDOWN] {
            dropped(reason, 0);
        }
        metrics::counter!("gbal_audit_events_delivered_total").increment(0);
        let delivery = Self {
            receiver,
            client,
            config: config.clone(),
        };
        Ok((sender, delivery))
    }

    /// Sends batches until `stop` is cancelled (the batch being sent then gets no further
    /// attempt), then what is still queued, within one more `timeout` (what is left after
    /// that is dropped and counted).
    pub async fn run(mut self, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(self.config.batch_size);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                received = self.receiver.recv_many(&mut batch, self.config.batch_size) => {
                    if received == 0 {
                        break;
                    }
                }
            }
            // Waits for a full batch, but no longer than the flush interval.
            let full_by = tokio::time::Instant::now() + self.config.flush_interval;
            while batch.len() < self.config.batch_size {
                let room = self.config.batch_size - batch.len();
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep_until(full_by) => break,
                    received = self.receiver.recv_many(&mut batch, room) => {
                        if received == 0 {
                            break;
                        }
                    }
                }
            }
            self.deliver(&batch, &stop).await;
            batch.clear();
        }
        self.flush(batch).await;
    }

    /// The final flush: what was taken and what is still queued, within one `timeout`.
    async fn flush(mut self, mut batch: Vec<String>) {
        self.receiver.close();
        while let Ok(event) = self.receiver.try_recv() {
            batch.push(event);
        }
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let mut left = batch.as_slice();
        while !left.is_empty() {
            let (now, later) = left.split_at(left.len().min(self.config.batch_size));
            let sent = tokio::time::timeout_at(deadline, self.post(now)).await;
            match sent {
                Ok(Ok(())) => delivered(now.len()),
                Ok(Err(error)) => {
                    tracing::warn!(events = now.len(), error = %error, "audit events could not be delivered at shutdown");
                    dropped(DELIVERY_FAILED, now.len());
                }
                Err(_) => {
                    tracing::warn!(
                        events = left.len(),
                        "audit events still queued when the shutdown flush ran out of time"
                    );
                    dropped(SHUTDOWN, left.len());
                    return;
                }
            }
            left = later;
        }
    }

    /// POSTs one batch, trying again with growing delays; drops and counts it when every
    /// attempt failed. A stop cuts the delays short (the batch gets one last attempt).
    async fn deliver(&self, batch: &[String], stop: &CancellationToken) {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            match self.post(batch).await {
                Ok(()) => return delivered(batch.len()),
                Err(error) if attempt >= self.config.retries || stop.is_cancelled() => {
                    tracing::warn!(events = batch.len(), error = %error, "audit events could not be delivered; dropped");
                    return dropped(DELIVERY_FAILED, batch.len());
                }
                Err(error) => {
                    tracing::debug!(error = %error, attempt, "audit delivery failed; trying again");
                }
            }
            attempt += 1;
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// One POST of `batch` as a JSON array.
    async fn post(&self, batch: &[String]) -> Result<(), String> {
        let mut body = String::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 1);
        body.push('[');
        for (i, event) in batch.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(event);
        }
        body.push(']');
        let mut request = self
            .client
            .post(self.config.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the audit endpoint answered {status}"))
        }
    }
}

fn delivered(events: usize) {
    metrics::counter!("gbal_audit_events_delivered_total").increment(events as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_settings_are_bounded() {
        let good = AuditHttpConfig {
            url: "http://127.0.0.1:9/audit".parse().unwrap(),
            token: None,
            queue: 100,
            batch_size: 10,
            flush_interval: Duration::from_secs(1),
            retries: 3,
            timeout: Duration::from_secs(5),
        };
        assert_eq!(good.validate(), Ok(()));
        let field = |change: fn(&mut AuditHttpConfig)| {
            let mut c = good.clone();
            change(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(field(|c| c.queue = 0), "queue");
        assert_eq!(field(|c| c.queue = MAX_AUDIT_QUEUE + 1), "queue");
        assert_eq!(field(|c| c.batch_size = 0), "batch_size");
        assert_eq!(field(|c| c.batch_size = 101), "batch_size");
        assert_eq!(
            field(|c| c.flush_interval = Duration::ZERO),
            "flush_interval"
        );
        assert_eq!(field(|c| c.retries = 11), "retries");
        assert_eq!(field(|c| c.timeout = Duration::ZERO), "timeout");
        assert_eq!(field(|c| c.timeout = Duration::from_secs(61)), "timeout");
        assert_eq!(
            field(|c| c.flush_interval = Duration::from_secs(61)),
            "flush_interval"
        );
    }
}
