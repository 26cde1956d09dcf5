//! What both HTTP adapters share: their configuration, and one exchange with GMS guarded by a
//! circuit breaker and retried only where resending is safe.
//!
//! Error policy: an exchange ends either with GMS's answer (any status, for the adapter to
//! read) or with a [`GmsError`] that already says what the caller should do and whether the
//! query can have reached GMS: `Unavailable` (it did not: connection refused or a retryable
//! status after the retry budget, the breaker open, or no time left before the check's
//! deadline), `TimedOut` or `Interrupted` (no retry: GMS may have acted). No attempt starts,
//! and none runs, past the check's deadline. An `Unavailable` says when to come back: the
//! breaker's remaining cool-down when it is open, else a second.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use std::time::Instant as StdInstant;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use gbal_core::GmsError;
use http::{HeaderMap, StatusCode};
use reqwest::{Client, RequestBuilder, Url};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tokio::time::Instant;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::breaker::{BreakerConfig, CircuitBreaker};

/// The largest answer body read from GMS; GMS answers are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// When to try again after GMS could not be reached while the breaker stays closed.
const RETRY_SOON: Duration = Duration::from_secs(1);

/// A bearer token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps a token read from configuration.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        gbal_core::secret::constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(****)")
    }
}

/// How a failed exchange is retried: exponential back-off with jitter, bounded in count and in
/// total time. The binary fills it in from `[gms.retry]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: usize,
    /// The first delay.
    pub min_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// No retry starts later than this after the first attempt did.
    pub total: Duration,
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}

/// One GMS endpoint: where, with which token, and how patiently. The binary fills it in from
/// `[gms]`.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The URL (ncts-xml: the URL the IE034 is posted to; eis-json: the instance's base URL).
    pub url: Url,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: BearerToken,
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for one whole request and its answer.
    pub request_timeout: Duration,
    /// When to resend.
    pub retry: RetryPolicy,
    /// When to stop trying for a while.
    pub breaker: BreakerConfig,
}

/// The HTTP client could not be built (TLS set-up).
#[derive(Debug, thiserror::Error)]
#[error("the HTTP client for GMS could not be built: {0}")]
pub struct ClientError(String);

/// What GMS answered to one exchange.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

#[derive(Debug)]
enum AttemptError {
    /// No connection: the request never reached GMS, so resending is safe.
    Connect(String),
    /// A status GMS uses to say it did not act (503): resending is safe.
    Retryable {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    TimedOut,
    /// Anything else (a reset connection, a body that broke off): GMS may have acted.
    Failed(String),
}

impl AttemptError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Retryable { .. })
    }
}

/// One GMS endpoint with its client, retry policy and breaker.
#[derive(Debug)]
pub(crate) struct Upstream {
    client: Client,
    config: UpstreamConfig,
    breaker: CircuitBreaker,
    transport: &'static str,
}

impl Upstream {
    pub(crate) fn new(
        config: UpstreamConfig,
        transport: &'static str,
    ) -> Result<Self, ClientError> {
        let client = Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // A redirect is not an answer GMS gives; never resend a query elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        Ok(Self {
            client,
            breaker: CircuitBreaker::new(config.breaker, transport),
            config,
            transport,
        })
    }

    pub(crate) fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// When trying this endpoint again makes sense: the breaker's remaining cool-down when it
    /// is open, else `hint` (GMS's own `Retry-After`), else a second.
    pub(crate) fn retry_after(&self, hint: Option<Duration>) -> Duration {
        self.breaker.open_for().or(hint).unwrap_or(RETRY_SOON)
    }

    /// Sends the request `build` makes (once per attempt, so that per-attempt headers such as
    /// a `Date` are fresh; each attempt gets its own `X-Correlation-Id`), retrying connection
    /// failures and the `retry_on` statuses, never past `deadline`.
    pub(crate) async fn exchange(
        &self,
        call: &'static str,
        retry_on: &[StatusCode],
        deadline: Option<StdInstant>,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, GmsError> {
        let left = || deadline.map(|d| d.saturating_duration_since(StdInstant::now()));
        if left().is_some_and(|left| left.is_zero()) {
            return Err(GmsError::Unavailable {
                retry_after: RETRY_SOON,
                reason: format!("{call}: no time was left to send it"),
            });
        }
        let permit = self.breaker.acquire().map_err(|retry_after| {
            warn!(
                transport = self.transport,
                call,
                retry_after_ms = retry_after.as_millis() as u64,
                "GMS circuit open: call refused"
            );
            GmsError::Unavailable {
                retry_after,
                reason: format!("the {} circuit breaker is open", self.transport),
            }
        })?;
        let started = Instant::now();
        let attempts = AtomicU32::new(0);
        let total = self.config.retry.total;
        let result = (|| async {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            // The attempt ends by the deadline, however long the transport would wait.
            let timeout = left().map_or(self.config.request_timeout, |left| {
                left.min(self.config.request_timeout)
            });
            self.attempt(call, attempt, retry_on, timeout, &build).await
        })
        .retry(self.config.retry.backoff())
        .when(AttemptError::is_transient)
        .adjust(|error, delay| {
            // A 503 may say when to come back; never sooner than the back-off would.
            let delay = match (delay, error) {
                (Some(d), AttemptError::Retryable { retry_after: Some(r), .. }) => Some(d.max(*r)),
                (d, _) => d,
            }?;
            let in_budget = started.elapsed() + delay <= total;
            // A retry that could not start before the deadline is not made.
            let in_time = left().is_none_or(|left| delay < left);
            (in_budget && in_time).then_some(delay)
        })
        .notify(|error, delay| {
            warn!(transport = self.transport, call, error = ?error, delay_ms = delay.as_millis() as u64, "GMS call failed, retrying");
        })
        .await;

        let server_trouble = match &result {
            Ok(answer) => answer.status.is_server_error(),
            Err(_) => true,
        };
        permit.record(!server_trouble);
        let tries = attempts.load(Ordering::Relaxed);
        match result {
            Ok(answer) => Ok(answer),
            Err(AttemptError::TimedOut) => Err(GmsError::TimedOut),
            Err(AttemptError::Connect(reason)) => Err(GmsError::Unavailable {
                retry_after: self.retry_after(None),
                reason: format!("{call}: no connection after {tries} attempt(s): {reason}"),
            }),
            Err(AttemptError::Retryable {
                status,
                retry_after,
            }) => Err(GmsError::Unavailable {
                retry_after: self.retry_after(retry_after),
                reason: format!("{call}: HTTP {} after {tries} attempt(s)", status.as_u16()),
            }),
            Err(AttemptError::Failed(reason)) => {
                Err(GmsError::Interrupted(format!("{call}: {reason}")))
            }
        }
    }

    async fn attempt(
        &self,
        call: &'static str,
        attempt: u32,
        retry_on: &[StatusCode],
        timeout: Duration,
        build: &impl Fn() -> RequestBuilder,
    ) -> Result<Answer, AttemptError> {
        let correlation_id = Uuid::new_v4().to_string();
        let request = build()
            .header("X-Correlation-Id", &correlation_id)
            .timeout(timeout);
        let sent = Instant::now();
        let response = request.send().await.map_err(|e| {
            let error = classify(&e);
            warn!(transport = self.transport, call, attempt, correlation_id, error = %error_chain(&e), "GMS call failed");
            error
        })?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_body(response).await.map_err(|e| {
            warn!(transport = self.transport, call, attempt, correlation_id, status = status.as_u16(), error = ?e, "GMS answer could not be read");
            e
        })?;
        debug!(
            transport = self.transport,
            call,
            attempt,
            correlation_id,
            status = status.as_u16(),
            elapsed_ms = sent.elapsed().as_millis() as u64,
            "GMS answered"
        );
        if retry_on.contains(&status) {
            return Err(AttemptError::Retryable {
                status,
                retry_after,
            });
        }
        Ok(Answer { status, body })
    }
}

/// What a non-2xx status GMS ended an exchange with means: its 4xx refuse the exchange, its
/// 5xx say it cannot serve now, anything else (1xx, 3xx) is not an answer gbal can read.
pub(crate) fn status_error(status: StatusCode, call: &str, retry_after: Duration) -> GmsError {
    if status.is_client_error() {
        GmsError::Rejected {
            status: status.as_u16(),
        }
    } else if status.is_server_error() {
        GmsError::Unavailable {
            retry_after,
            reason: format!("{call}: HTTP {}", status.as_u16()),
        }
    } else {
        GmsError::Garbled(format!("{call}: unexpected HTTP {}", status.as_u16()))
    }
}

/// A header value from the caller's context, when it is one HTTP allows.
pub(crate) fn propagated(name: &str, value: Option<&str>) -> Option<http::HeaderValue> {
    let value = value?;
    match http::HeaderValue::from_str(value) {
        Ok(v) if value.len() <= 512 => Some(v),
        _ => {
            warn!(
                header = name,
                "not propagating a header value HTTP does not allow"
            );
            None
        }
    }
}

fn classify(e: &reqwest::Error) -> AttemptError {
    // A connect timeout is both: the request never left, so it is a connection failure.
    if e.is_connect() {
        AttemptError::Connect(error_chain(e))
    } else if e.is_timeout() {
        AttemptError::TimedOut
    } else {
        AttemptError::Failed(error_chain(e))
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Bytes, AttemptError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(AttemptError::Failed(format!(
                        "answer body larger than {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(e) if e.is_timeout() => return Err(AttemptError::TimedOut),
            Err(e) => return Err(AttemptError::Failed(error_chain(&e))),
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not worth a parser here).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// An error and its sources, one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

const RFC_1123: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);
const EIS_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
);

/// The RFC 1123 form of an instant (`Tue, 14 Sep 2021 09:52:15 GMT`), in UTC.
pub(crate) fn rfc1123(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(RFC_1123)
        .unwrap_or_default()
}

/// The date form EIS expects: RFC 1123 with a literal ` UTC` (`Wed, 23 Aug 2023 12:39:31 UTC`).
pub(crate) fn eis_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(EIS_DATE)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates() {
        assert_eq!(
            rfc1123(datetime!(2021-09-14 11:52:15 +02:00)),
            "Tue, 14 Sep 2021 09:52:15 GMT"
        );
        assert_eq!(
            eis_date(datetime!(2023-08-23 12:39:31 UTC)),
            "Wed, 23 Aug 2023 12:39:31 UTC"
        );
        assert_eq!(
            rfc1123(datetime!(2026-01-05 01:02:03 UTC)),
            "Mon, 05 Jan 2026 01:02:03 GMT"
        );
    }

    #[test]
    fn tokens_compare_and_hide() {
        let t = BearerToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret!"));
        assert!(!t.matches("S3cret"));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn retry_after_in_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            http::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
