//! Audit events: one structured record per outcome of a balance check and per GMS reply
//! received, delivered apart from the logs ([`Audit`]).
//!
//! An event says what happened ([`EventType`]), when, to whom (the caller, the API version,
//! the balance request id, the GRN, the TIN of a v1 query), what came of it (the balance, the
//! NCTS error types, the limit that refused it) and which HTTP exchange it was (its request
//! id). No event holds the access code: [`AuditEvent`] has no field that could take it, and
//! the NCTS errors it carries are their type and pointer only, never a value.
//!
//! Sinks ([`AuditSink`]): the logging target [`AUDIT_TARGET`] (the default; the binary writes
//! each event there as one JSON line, whatever the log format), an HTTP endpoint fed from a
//! bounded queue by a background task ([`AuditDelivery`]), or nothing. Recording never waits:
//! the event is serialised once and logged or queued at once; a full queue drops it and
//! counts it (`gbal_audit_events_dropped_total`), so an audit endpoint that is down or slow
//! never slows or fails a check.

use std::fmt::Display;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::Response;
use gbal_core::{
    Amount, ApiVersion, BalanceQuery, BalanceRequest, BalanceRequestId, CallerId, CheckError,
    CheckOutcome, Clock, Currency, NctsError, Outcome,
};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, StartError};
use crate::time_format::rfc3339;

/// The tracing target audit events are logged on, apart from every other line.
pub const AUDIT_TARGET: &str = "gbal::audit";

/// The field of the [`AUDIT_TARGET`] event that holds the event's JSON.
pub const AUDIT_FIELD: &str = "audit";

/// What an event records: the outcome of a check, or what became of a reply. Serialised in
/// upper snake case (`SUCCESS`, `REPLY_ACCEPTED`), a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// GMS answered with a balance (IE037).
    Success,
    /// GMS refused the query (IE906), the GMS query limit included.
    FunctionalError,
    /// GMS could not read the query (IE917).
    XmlError,
    /// A limit refused the check: the caller's rate or requests in flight, the replica's
    /// requests in flight, or the once-a-minute lock (see `limit`).
    RateLimited,
    /// The request was refused before the check began: `Accept` (406), the body's media type
    /// (415), size (413) or shape (400), or its fields (400).
    InvalidRequest,
    /// GMS (or the request store) could not be reached, or refused or garbled the exchange:
    /// 503 or 502.
    GmsUnavailable,
    /// No answer in time: v1's 202 (pending), 504, or a check that never ended (the timeout
    /// layer's 503, or its caller went away: 499).
    TimedOut,
    /// A failure of gbal's own: 500.
    InternalError,
    /// A reply completed its request.
    ReplyAccepted,
    /// A reply repeated the outcome its request already had.
    ReplyDuplicate,
    /// A reply differed from the outcome its request already had (409).
    ReplyConflict,
    /// A reply named no live request (404).
    ReplyUnknownRecipient,
    /// A reply that was malformed, failed its schema or named another request (400).
    ReplyInvalid,
    /// A reply that could not be recorded because the request store failed (503 or 500).
    ReplyFailed,
}

/// One audit event. Every field but `eventType`, `time` and `httpStatus` is left out when it
/// has no value; none can hold an access code.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// What happened.
    pub event_type: EventType,
    /// When (RFC 3339, UTC).
    pub time: OffsetDateTime,
    /// The status gbal answered the exchange with.
    pub http_status: u16,
    /// The authenticated caller (a check), or the caller of the request a reply matched.
    pub caller: Option<&'a str>,
    /// The API version of the check (or of the request a reply matched).
    pub api_version: Option<ApiVersion>,
    /// The balance request, when one exists.
    pub balance_request_id: Option<BalanceRequestId>,
    /// The guarantee reference number.
    pub grn: Option<&'a str>,
    /// The TIN of a v1 query.
    pub tax_identifier: Option<&'a str>,
    /// A balance GMS answered.
    pub balance: Option<(&'a Amount, &'a Currency)>,
    /// The error types and pointers GMS answered with (IE906, IE917).
    pub errors: Option<&'a [NctsError]>,
    /// The limit that refused a check: `client`, `client_in_flight`, `replica_in_flight`,
    /// `lock`.
    pub limit: Option<&'static str>,
    /// The error code gbal answered with (`BAD_REQUEST`, `SCHEMA_VALIDATION`...), for a
    /// refusal.
    pub code: Option<&'static str>,
    /// The reply's message type (`IE037`, `IE906`, `IE917`).
    pub message_type: Option<&'static str>,
    /// The recipient a reply was posted to, when it has the form of one of gbal's.
    pub recipient: Option<&'a str>,
    /// The request id of the HTTP exchange (`X-Request-ID`).
    pub http_request_id: Option<&'a str>,
}

impl<'a> AuditEvent<'a> {
    /// An event of `event_type` at `time`, answered `http_status`, with nothing else yet.
    pub fn new(event_type: EventType, time: OffsetDateTime, http_status: u16) -> Self {
        Self {
            event_type,
            time,
            http_status,
            caller: None,
            api_version: None,
            balance_request_id: None,
            grn: None,
            tax_identifier: None,
            balance: None,
            errors: None,
            limit: None,
            code: None,
            message_type: None,
            recipient: None,
            http_request_id: None,
        }
    }

    /// The event of a check by `caller` through `api_version` that ended with `result`:
    /// its type, the request's id and what GMS answered. The caller, GRN, TIN, status and
    /// request id are the handler's to add.
    pub(crate) fn of_check(
        result: &'a Result<CheckOutcome, CheckError>,
        time: OffsetDateTime,
        http_status: u16,
    ) -> Self {
        let mut event = Self::new(EventType::InternalError, time, http_status);
        match result {
            Ok(CheckOutcome::Completed(answered)) => {
                event.balance_request_id = Some(answered.request().id);
                event.with_outcome(answered.outcome());
            }
            Ok(CheckOutcome::Pending(request)) => {
                event.event_type = EventType::TimedOut;
                event.balance_request_id = Some(request.id);
            }
            Err(CheckError::RateLimited { .. }) => {
                event.event_type = EventType::RateLimited;
                event.limit = Some("lock");
            }
            Err(CheckError::Unavailable { .. } | CheckError::BadGateway(_)) => {
                event.event_type = EventType::GmsUnavailable;
            }
            Err(CheckError::GmsTimedOut) => event.event_type = EventType::TimedOut,
            Err(CheckError::Expired(id)) => {
                event.event_type = EventType::TimedOut;
                event.balance_request_id = Some(*id);
            }
            Err(CheckError::Internal(_)) => event.event_type = EventType::InternalError,
        }
        event
    }

    /// Sets the type and details of what GMS answered.
    pub(crate) fn with_outcome(&mut self, outcome: &'a Outcome) {
        match outcome {
            Outcome::Success(balance) => {
                self.event_type = EventType::Success;
                self.balance = Some((&balance.amount, &balance.currency));
            }
            Outcome::FunctionalError { errors } => {
                self.event_type = EventType::FunctionalError;
                self.errors = Some(errors);
            }
            Outcome::XmlError { errors } => {
                self.event_type = EventType::XmlError;
                self.errors = Some(errors);
            }
        }
    }

    /// Sets who asked and about what, from the request a reply matched.
    pub(crate) fn with_request(&mut self, request: &'a BalanceRequest) {
        self.balance_request_id = Some(request.id);
        self.caller = Some(request.caller.as_str());
        self.api_version = Some(request.api_version);
        self.grn = Some(request.grn.as_str());
        self.tax_identifier = request.tin.as_ref().map(|t| t.as_str());
    }

    /// Sets the code of the error gbal answered with.
    pub(crate) fn with_error(&mut self, error: &ApiError) {
        self.code = Some(error.code());
    }

    /// The event as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            // Serialising strings and numbers cannot fail; should it, the type survives.
            format!(
                r#"{{"eventType":"{}","serializationError":"{e}"}}"#,
                self.event_type.as_str()
            )
        })
    }
}

impl EventType {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Success => "SUCCESS",
            EventType::FunctionalError => "FUNCTIONAL_ERROR",
            EventType::XmlError => "XML_ERROR",
            EventType::RateLimited => "RATE_LIMITED",
            EventType::InvalidRequest => "INVALID_REQUEST",
            EventType::GmsUnavailable => "GMS_UNAVAILABLE",
            EventType::TimedOut => "TIMED_OUT",
            EventType::InternalError => "INTERNAL_ERROR",
            EventType::ReplyAccepted => "REPLY_ACCEPTED",
            EventType::ReplyDuplicate => "REPLY_DUPLICATE",
            EventType::ReplyConflict => "REPLY_CONFLICT",
            EventType::ReplyUnknownRecipient => "REPLY_UNKNOWN_RECIPIENT",
            EventType::ReplyInvalid => "REPLY_INVALID",
            EventType::ReplyFailed => "REPLY_FAILED",
        }
    }
}

/// `value` through its `Display`.
struct Shown<T>(T);

impl<T: Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// NCTS errors as `[{"errorType": 12, "errorPointer": "..."}]`.
struct Errors<'a>(&'a [NctsError]);

impl Serialize for Errors<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for error in self.0 {
            seq.serialize_element(&ErrorItem(error))?;
        }
        seq.end()
    }
}

struct ErrorItem<'a>(&'a NctsError);

impl Serialize for ErrorItem<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut item = serializer.serialize_struct("NctsError", 2)?;
        item.serialize_field("errorType", &self.0.error_type.get())?;
        item.serialize_field("errorPointer", &self.0.error_pointer)?;
        item.end()
    }
}

impl Serialize for AuditEvent<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("AuditEvent", 16)?;
        out.serialize_field("eventType", &self.event_type)?;
        out.serialize_field("time", &rfc3339(self.time))?;
        out.serialize_field("httpStatus", &self.http_status)?;
        macro_rules! optional {
            ($name:literal, $value:expr) => {
                match $value {
                    Some(value) => out.serialize_field($name, &value)?,
                    None => out.skip_field($name)?,
                }
            };
        }
        optional!("caller", self.caller);
        optional!("apiVersion", self.api_version.map(ApiVersion::number));
        optional!("balanceRequestId", self.balance_request_id.map(Shown));
        optional!("grn", self.grn);
        optional!("taxIdentifier", self.tax_identifier);
        optional!("balance", self.balance.map(|(amount, _)| amount));
        optional!("currency", self.balance.map(|(_, currency)| currency));
        optional!("errors", self.errors.map(Errors));
        optional!("limit", self.limit);
        optional!("code", self.code);
        optional!("messageType", self.message_type);
        optional!("recipient", self.recipient);
        optional!("httpRequestId", self.http_request_id);
        out.end()
    }
}

/// Where audit events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// Nowhere.
    Off,
    /// The logging target [`AUDIT_TARGET`], one JSON object per event.
    Log,
    /// POSTed in batches to an HTTP endpoint.
    Http(AuditHttpConfig),
}

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

/// Who asked what: the parts of a check's event its handler knows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    /// The authenticated caller.
    pub caller: &'a CallerId,
    /// The API version of the route.
    pub api_version: ApiVersion,
    /// The query, once it was read.
    pub query: Option<&'a BalanceQuery>,
    /// The request id of the HTTP exchange.
    pub http_request_id: Option<&'a str>,
}

impl<'a> Asked<'a> {
    fn fill(&self, event: &mut AuditEvent<'a>) {
        event.caller = Some(self.caller.as_str());
        event.api_version = Some(self.api_version);
        event.http_request_id = self.http_request_id;
        if let Some(query) = self.query {
            event.grn = Some(query.grn.as_str());
            event.tax_identifier = query.tin.as_ref().map(|t| t.as_str());
        }
    }
}

/// The `httpStatus` of a check that never ended because its caller went away (nginx's
/// "client closed request"): no answer was sent.
pub(crate) const CALLER_WENT_AWAY: u16 = 499;

/// A check under way: dropped before [`Unfinished::ended`], it records that the check never
/// ended (`TIMED_OUT`): answered 503 by the timeout layer's last resort when its deadline had
/// passed, else its caller went away ([`CALLER_WENT_AWAY`]). Holds only borrows: free unless
/// it fires.
pub(crate) struct Unfinished<'a> {
    audit: &'a Audit,
    clock: &'a dyn Clock,
    asked: Asked<'a>,
    deadline: Instant,
    ended: bool,
}

impl<'a> Unfinished<'a> {
    /// A check asked by `asked`, to be answered by `deadline`.
    pub(crate) fn new(
        audit: &'a Audit,
        clock: &'a dyn Clock,
        asked: Asked<'a>,
        deadline: Instant,
    ) -> Self {
        Self {
            audit,
            clock,
            asked,
            deadline,
            ended: false,
        }
    }

    /// The check ended: its own event says how.
    pub(crate) fn ended(mut self) {
        self.ended = true;
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.ended || !self.audit.is_on() {
            return;
        }
        let timed_out = Instant::now() >= self.deadline;
        let status = if timed_out {
            StatusCode::SERVICE_UNAVAILABLE.as_u16()
        } else {
            CALLER_WENT_AWAY
        };
        let mut event = AuditEvent::new(EventType::TimedOut, self.clock.now(), status);
        self.asked.fill(&mut event);
        if timed_out {
            event.code = Some("SERVICE_UNAVAILABLE");
        }
        self.audit.record(&event);
    }
}

/// The status of a handler's answer.
pub(crate) fn status_of(answer: &Result<Response, ApiError>) -> u16 {
    match answer {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.status().as_u16(),
    }
}

/// Records audit events into the configured sink without ever waiting. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    sink: Sink,
}

#[derive(Debug, Clone)]
enum Sink {
    Off,
    Log,
    Http(mpsc::Sender<String>),
}

/// Why an event was not delivered: the `reason` label of `gbal_audit_events_dropped_total`.
mod dropped {
    /// The HTTP sink's queue was full.
    pub(super) const QUEUE_FULL: &str = "queue_full";
    /// Every attempt at its batch failed.
    pub(super) const DELIVERY_FAILED: &str = "delivery_failed";
    /// Still queued when the process stopped and the final flush ran out of time, or
    /// recorded after delivery stopped.
    pub(super) const SHUTDOWN: &str = "shutdown";
}

fn count_dropped(reason: &'static str, events: usize) {
    metrics::counter!("gbal_audit_events_dropped_total", "reason" => reason)
        .increment(events as u64);
}

impl Audit {
    /// An audit that records nothing.
    pub fn off() -> Self {
        Self { sink: Sink::Off }
    }

    /// An audit that logs each event on [`AUDIT_TARGET`].
    pub fn log() -> Self {
        Self { sink: Sink::Log }
    }

    /// An audit for `sink`, with the delivery task to run for the HTTP sink.
    pub fn new(sink: &AuditSink) -> Result<(Self, Option<AuditDelivery>), StartError> {
        match sink {
            AuditSink::Off => Ok((Self::off(), None)),
            AuditSink::Log => Ok((Self::log(), None)),
            AuditSink::Http(config) => {
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
                for reason in [
                    dropped::QUEUE_FULL,
                    dropped::DELIVERY_FAILED,
                    dropped::SHUTDOWN,
                ] {
                    count_dropped(reason, 0);
                }
                metrics::counter!("gbal_audit_events_delivered_total").increment(0);
                Ok((
                    Self {
                        sink: Sink::Http(sender),
                    },
                    Some(AuditDelivery {
                        receiver,
                        client,
                        config: config.clone(),
                    }),
                ))
            }
        }
    }

    /// Whether events go anywhere.
    pub(crate) fn is_on(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// Records the event of a check that ended with `result` and was answered `answer`.
    pub(crate) fn check(
        &self,
        time: OffsetDateTime,
        asked: &Asked<'_>,
        result: &Result<CheckOutcome, CheckError>,
        answer: &Result<Response, ApiError>,
    ) {
        if self.is_on() {
            let mut event = AuditEvent::of_check(result, time, status_of(answer));
            asked.fill(&mut event);
            if let Err(error) = answer {
                event.with_error(error);
            }
            self.record(&event);
        }
    }

    /// Records the event of a check refused before it began (`INVALID_REQUEST`).
    pub(crate) fn invalid(&self, time: OffsetDateTime, asked: &Asked<'_>, error: &ApiError) {
        if self.is_on() {
            let status = error.status().as_u16();
            let mut event = AuditEvent::new(EventType::InvalidRequest, time, status);
            asked.fill(&mut event);
            event.with_error(error);
            self.record(&event);
        }
    }

    /// Records `event`: logs it, or queues it for the HTTP sink (dropping and counting it
    /// when the queue is full). Never waits.
    pub fn record(&self, event: &AuditEvent<'_>) {
        match &self.sink {
            Sink::Off => {}
            Sink::Log => {
                if tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
                    let json = event.to_json();
                    tracing::info!(target: AUDIT_TARGET, audit = json.as_str());
                }
            }
            Sink::Http(sender) => match sender.try_send(event.to_json()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => count_dropped(dropped::QUEUE_FULL, 1),
                Err(mpsc::error::TrySendError::Closed(_)) => count_dropped(dropped::SHUTDOWN, 1),
            },
        }
    }
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
                    count_dropped(dropped::DELIVERY_FAILED, now.len());
                }
                Err(_) => {
                    tracing::warn!(
                        events = left.len(),
                        "audit events still queued when the shutdown flush ran out of time"
                    );
                    count_dropped(dropped::SHUTDOWN, left.len());
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
                    return count_dropped(dropped::DELIVERY_FAILED, batch.len());
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
    use gbal_core::{ErrorType, Grn};
    use serde_json::Value;

    #[test]
    fn an_event_serialises_its_fields_in_camel_case_and_leaves_out_the_empty_ones() {
        let time = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut event = AuditEvent::new(EventType::FunctionalError, time, 400);
        let errors = [NctsError::new(
            ErrorType::INCORRECT,
            "GRR(1).ACC(1).Access code",
        )];
        let grn = Grn::parse_v1("26GB0000010000021").unwrap();
        event.caller = Some("trader");
        event.api_version = Some(ApiVersion::V1);
        event.grn = Some(grn.as_str());
        event.tax_identifier = Some("GB954131533000");
        event.errors = Some(&errors);
        event.http_request_id = Some("req-1");
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "eventType": "FUNCTIONAL_ERROR",
                "time": "2023-11-14T22:13:20Z",
                "httpStatus": 400,
                "caller": "trader",
                "apiVersion": 1,
                "grn": "26GB0000010000021",
                "taxIdentifier": "GB954131533000",
                "errors": [{"errorType": 12, "errorPointer": "GRR(1).ACC(1).Access code"}],
                "httpRequestId": "req-1",
            })
        );
    }

    #[test]
    fn a_check_that_never_ended_is_timed_out_by_the_timeout_layer_or_its_caller() {
        let (logs, _guard) = gbal_testkit::logs::capture();
        let (audit, clock) = (Audit::log(), gbal_core::SystemClock);
        let caller = CallerId::parse("trader").unwrap();
        let asked = Asked {
            caller: &caller,
            api_version: ApiVersion::V2,
            query: None,
            http_request_id: Some("req-9"),
        };
        let hour = Duration::from_secs(3600);
        Unfinished::new(&audit, &clock, asked, Instant::now() + hour).ended();
        assert_eq!(logs.text(), "", "an ended check records nothing of its own");
        drop(Unfinished::new(&audit, &clock, asked, Instant::now()));
        drop(Unfinished::new(
            &audit,
            &clock,
            asked,
            Instant::now() + hour,
        ));
        let lines: Vec<Value> = logs
            .text()
            .lines()
            .map(|l| {
                let quoted = l.strip_prefix("INFO gbal::audit: audit=").expect(l);
                serde_json::from_str(&serde_json::from_str::<String>(quoted).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(lines.len(), 2);
        for (line, status) in lines.iter().zip([503, 499]) {
            assert_eq!(line["eventType"], "TIMED_OUT");
            assert_eq!(line["httpStatus"], status);
            assert_eq!(line["caller"], "trader");
            assert_eq!(line["httpRequestId"], "req-9");
        }
        assert_eq!(lines[0]["code"], "SERVICE_UNAVAILABLE");
        assert!(lines[1].get("code").is_none());
    }

    #[test]
    fn event_type_names_are_stable() {
        for t in [
            EventType::Success,
            EventType::FunctionalError,
            EventType::XmlError,
            EventType::RateLimited,
            EventType::InvalidRequest,
            EventType::GmsUnavailable,
            EventType::TimedOut,
            EventType::InternalError,
            EventType::ReplyAccepted,
            EventType::ReplyDuplicate,
            EventType::ReplyConflict,
            EventType::ReplyUnknownRecipient,
            EventType::ReplyInvalid,
            EventType::ReplyFailed,
        ] {
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::String(t.as_str().to_owned())
            );
        }
    }

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
