//! The audit event and its JSON: camel-case fields, the empty ones left out, serialised in one
//! pass without copying what it borrows.

use std::fmt::Display;

use gbal_core::{
    Amount, ApiVersion, BalanceRequest, BalanceRequestId, CheckError, CheckOutcome, Currency,
    NctsError, Outcome,
};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::time_format::rfc3339;

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
                event.event_type = match answered.outcome() {
                    Outcome::Success(_) => EventType::Success,
                    Outcome::FunctionalError { .. } => EventType::FunctionalError,
                    Outcome::XmlError { .. } => EventType::XmlError,
                };
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

    /// Sets the details of what GMS answered: its balance or its errors.
    pub(crate) fn with_outcome(&mut self, outcome: &'a Outcome) {
        match outcome {
            Outcome::Success(balance) => {
                self.balance = Some((&balance.amount, &balance.currency));
            }
            Outcome::FunctionalError { errors } | Outcome::XmlError { errors } => {
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

#[cfg(test)]
mod tests {
    use gbal_core::{ErrorType, Grn};

    use super::*;

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
}
