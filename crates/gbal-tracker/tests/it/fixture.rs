//! Requests, outcomes and times the tests are made of.

use gbal_core::outcome::{Balance, ErrorType, NctsError};
use gbal_core::{
    ApiVersion, BalanceRequestId, CallerId, Grn, NewBalanceRequest, Outcome, Tin, UniqueReference,
};
use time::OffsetDateTime;

/// Now, to the microsecond (what the stores keep).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .expect("a whole number of microseconds")
}

/// A caller.
pub fn caller(name: &str) -> CallerId {
    CallerId::parse(name).expect("a valid caller")
}

/// A pending v1 request by `client-1`, made at `at`, expiring an hour later.
pub fn request_at(at: OffsetDateTime) -> NewBalanceRequest {
    NewBalanceRequest {
        id: BalanceRequestId::new(),
        message_ref: UniqueReference::random(),
        caller: caller("client-1"),
        api_version: ApiVersion::V1,
        grn: Grn::parse_v1("21GB3300BE0001067A001017").expect("a valid GRN"),
        tin: Some(Tin::parse("GB12345678900").expect("a valid TIN")),
        requested_at: at,
        expires_at: at + time::Duration::HOUR,
    }
}

/// A request made at `at` that expires at `expires_at`.
pub fn request_expiring(at: OffsetDateTime, expires_at: OffsetDateTime) -> NewBalanceRequest {
    NewBalanceRequest {
        expires_at,
        ..request_at(at)
    }
}

/// A balance in GBP.
pub fn balance(amount: &str) -> Outcome {
    Outcome::Success(Balance {
        amount: amount.parse().expect("a valid amount"),
        currency: "GBP".parse().expect("a valid currency"),
    })
}

/// An IE906 with the observed "unknown GRN" errors.
pub fn functional_error() -> Outcome {
    Outcome::FunctionalError {
        errors: vec![
            NctsError::new(
                ErrorType::INCORRECT,
                "GRR(1).Guarantee reference number (GRN)",
            ),
            NctsError::new(ErrorType::INCORRECT, "GRR(1).OTG(1).TIN"),
            NctsError::with_reason(
                ErrorType::UNSUPPORTED,
                "GRR(1).GQY(1).Query identifier",
                "R261",
            ),
        ],
    }
}

/// An IE917.
pub fn xml_error() -> Outcome {
    Outcome::XmlError {
        errors: vec![NctsError::new(ErrorType::INCORRECT, "RC1.TIN")],
    }
}
