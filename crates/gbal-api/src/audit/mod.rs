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
//!
//! The event and its JSON are in `event`, the HTTP sink's settings and delivery in `http`.

mod event;
mod http;

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use gbal_core::{ApiVersion, BalanceQuery, CallerId, CheckError, CheckOutcome, Clock};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::error::{ApiError, StartError};

pub use event::{AuditEvent, EventType};
pub use http::{
    AuditDelivery, AuditHttpConfig, MAX_AUDIT_QUEUE, MAX_AUDIT_RETRIES, MAX_AUDIT_WAIT,
};

/// The tracing target audit events are logged on, apart from every other line.
pub const AUDIT_TARGET: &str = "gbal::audit";

/// The field of the [`AUDIT_TARGET`] event that holds the event's JSON.
pub const AUDIT_FIELD: &str = "audit";

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
                let (sender, delivery) = AuditDelivery::new(config)?;
                Ok((
                    Self {
                        sink: Sink::Http(sender),
                    },
                    Some(delivery),
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
                Err(mpsc::error::TrySendError::Full(_)) => http::dropped(http::QUEUE_FULL, 1),
                Err(mpsc::error::TrySendError::Closed(_)) => http::dropped(http::SHUTDOWN, 1),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;

    use super::*;

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
}
