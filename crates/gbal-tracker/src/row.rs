//! A request as both stores keep it: column values, and their conversion to and from the
//! domain types. Times are kept to the microsecond.

use gbal_core::outcome::{Balance, NctsError};
use gbal_core::request::CallerId;
use gbal_core::{
    Amount, ApiVersion, BalanceRequest, BalanceRequestId, Currency, Grn, MessageId, Outcome,
    PendingRequests, Tin, TrackerError,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// The status names, as stored.
const SUCCESS: &str = "SUCCESS";
const FUNCTIONAL_ERROR: &str = "FUNCTIONAL_ERROR";
const XML_ERROR: &str = "XML_ERROR";

/// One stored request, column by column.
#[derive(Debug)]
pub(crate) struct StoredRequest {
    pub id: Uuid,
    pub message_id: Vec<u8>,
    pub message_ref: String,
    pub caller: String,
    pub api_version: i16,
    pub grn: String,
    pub tin: Option<String>,
    pub requested_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub status: Option<String>,
    /// The amount as decimal text: it never passes through a float.
    pub balance: Option<String>,
    pub currency: Option<String>,
    /// `Vec<NctsError>` as JSON text.
    pub errors: Option<String>,
}

impl TryFrom<StoredRequest> for BalanceRequest {
    type Error = TrackerError;

    fn try_from(row: StoredRequest) -> Result<Self, Self::Error> {
        let id = BalanceRequestId::from_uuid(row.id);
        let corrupt = |what: &str| TrackerError::Corrupt(format!("request {id}: {what}"));
        let message_id = <[u8; MessageId::LEN]>::try_from(row.message_id.as_slice())
            .map(MessageId::from_bytes)
            .map_err(|_| corrupt("message id is not 12 bytes"))?;
        if message_id != id.message_id() {
            return Err(corrupt("message id does not match the id"));
        }
        let outcome = match row.status.as_deref() {
            None => None,
            Some(status) => Some(
                outcome(
                    status,
                    row.balance.as_deref(),
                    row.currency.as_deref(),
                    row.errors.as_deref(),
                )
                .map_err(|what| corrupt(&what))?,
            ),
        };
        Ok(BalanceRequest {
            id,
            message_id,
            message_ref: row
                .message_ref
                .parse()
                .map_err(|_| corrupt("bad message reference"))?,
            caller: CallerId::parse(&row.caller).map_err(|_| corrupt("bad caller"))?,
            api_version: ApiVersion::from_number(row.api_version)
                .ok_or_else(|| corrupt("bad API version"))?,
            // v1's rules accept every GRN v2 accepts.
            grn: Grn::parse_v1(&row.grn).map_err(|_| corrupt("bad GRN"))?,
            tin: row
                .tin
                .as_deref()
                .map(Tin::parse)
                .transpose()
                .map_err(|_| corrupt("bad TIN"))?,
            requested_at: row.requested_at,
            expires_at: row.expires_at,
            completed_at: row.completed_at,
            outcome,
        })
    }
}

fn outcome(
    status: &str,
    balance: Option<&str>,
    currency: Option<&str>,
    errors: Option<&str>,
) -> Result<Outcome, String> {
    let errors = || -> Result<Vec<NctsError>, String> {
        let json = errors.ok_or("errors missing")?;
        serde_json::from_str(json).map_err(|e| format!("bad errors: {e}"))
    };
    match status {
        SUCCESS => {
            let amount: Amount = balance
                .ok_or("balance missing")?
                .parse()
                .map_err(|e| format!("bad balance: {e}"))?;
            let currency: Currency = currency
                .ok_or("currency missing")?
                .parse()
                .map_err(|e| format!("bad currency: {e}"))?;
            Ok(Outcome::Success(Balance { amount, currency }))
        }
        FUNCTIONAL_ERROR => Ok(Outcome::FunctionalError { errors: errors()? }),
        XML_ERROR => Ok(Outcome::XmlError { errors: errors()? }),
        other => Err(format!("unknown status {other:?}")),
    }
}

/// An outcome as the values of the outcome columns.
#[derive(Debug)]
pub(crate) struct OutcomeColumns {
    pub status: &'static str,
    pub balance: Option<String>,
    pub currency: Option<String>,
    pub errors: Option<String>,
}

impl OutcomeColumns {
    /// The columns for `outcome`.
    pub fn of(outcome: &Outcome) -> Result<Self, TrackerError> {
        let json = |errors: &Vec<NctsError>| {
            serde_json::to_string(errors)
                .map(Some)
                .map_err(|e| TrackerError::Other(format!("cannot write errors as JSON: {e}")))
        };
        Ok(match outcome {
            Outcome::Success(balance) => Self {
                status: SUCCESS,
                balance: Some(balance.amount.to_string()),
                currency: Some(balance.currency.to_string()),
                errors: None,
            },
            Outcome::FunctionalError { errors } => Self {
                status: FUNCTIONAL_ERROR,
                balance: None,
                currency: None,
                errors: json(errors)?,
            },
            Outcome::XmlError { errors } => Self {
                status: XML_ERROR,
                balance: None,
                currency: None,
                errors: json(errors)?,
            },
        })
    }
}

/// Microseconds since the Unix epoch (SQLite keeps times as integers).
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    // Truncates like PostgreSQL's timestamptz; i64 microseconds reach far past year 9999.
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000)).unwrap_or(i64::MAX)
}

/// The time `micros` microseconds after the Unix epoch.
pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, TrackerError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| TrackerError::Corrupt(format!("bad time {micros}: {e}")))
}

/// The pending requests from what both stores' count reads: how many, and the oldest one's
/// time, aged at `now` (never below zero, whichever clock made the request).
pub(crate) fn pending_requests(
    count: i64,
    oldest: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> PendingRequests {
    PendingRequests {
        count: u64::try_from(count).unwrap_or(0),
        oldest_age: oldest.map(|t| (now - t).try_into().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gbal_core::outcome::ErrorType;

    #[test]
    fn outcomes_round_trip_through_columns() {
        let outcomes = [
            Outcome::Success(Balance {
                amount: "12345678.90".parse().unwrap(),
                currency: "GBP".parse().unwrap(),
            }),
            Outcome::FunctionalError {
                errors: vec![NctsError::with_reason(
                    ErrorType::UNSUPPORTED,
                    "GRR(1).GQY(1).Query identifier",
                    "R261",
                )],
            },
            Outcome::XmlError {
                errors: vec![NctsError::new(ErrorType::INCORRECT, "RC1.TIN")],
            },
        ];
        for o in outcomes {
            let c = OutcomeColumns::of(&o).unwrap();
            let back = outcome(
                c.status,
                c.balance.as_deref(),
                c.currency.as_deref(),
                c.errors.as_deref(),
            )
            .unwrap();
            assert_eq!(back, o);
        }
        let c = OutcomeColumns::of(&Outcome::Success(Balance {
            amount: "12345678.90".parse().unwrap(),
            currency: "GBP".parse().unwrap(),
        }))
        .unwrap();
        assert_eq!(c.balance.as_deref(), Some("12345678.9"));
    }

    #[test]
    fn unknown_status_is_refused() {
        assert!(outcome("MAYBE", None, None, None).is_err());
        assert!(outcome(SUCCESS, None, Some("GBP"), None).is_err());
    }

    #[test]
    fn micros_round_trip() {
        let t = time::macros::datetime!(2026-11-05 10:11:12.345678 UTC);
        assert_eq!(from_micros(to_micros(t)).unwrap(), t);
        let with_nanos = time::macros::datetime!(2026-11-05 10:11:12.345678999 UTC);
        assert_eq!(from_micros(to_micros(with_nanos)).unwrap(), t);
    }
}
