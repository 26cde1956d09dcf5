//! What GMS answered: a balance, functional errors (IE906) or XML errors (IE917).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::amount::{Amount, Currency};

/// An NCTS error type (ErrTypER11): two digits, 0 to 99.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct ErrorType(u8);

/// A number above 99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an NCTS error type has two digits")]
pub struct InvalidErrorType;

impl ErrorType {
    /// 12: incorrect value.
    pub const INCORRECT: Self = Self(12);
    /// 14: unknown or unsupported value.
    pub const UNSUPPORTED: Self = Self(14);
    /// 26: duplicate detected; GMS also uses it for the per-TIN query limit.
    pub const DUPLICATE_OR_LIMIT: Self = Self(26);

    /// Wraps a number from 0 to 99.
    pub fn new(value: u8) -> Result<Self, InvalidErrorType> {
        if value <= 99 {
            Ok(Self(value))
        } else {
            Err(InvalidErrorType)
        }
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for ErrorType {
    type Error = InvalidErrorType;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ErrorType> for u8 {
    fn from(value: ErrorType) -> Self {
        value.0
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorType({})", self.0)
    }
}

/// One FUNERRER1 of an IE906 or IE917: type, pointer and optional reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NctsError {
    /// ErrTypER11.
    pub error_type: ErrorType,
    /// ErrPoiER12: which element of the IE034 was wrong.
    pub error_pointer: String,
    /// ErrReaER13, when GMS gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
}

impl NctsError {
    /// An error without a reason.
    pub fn new(error_type: ErrorType, pointer: impl Into<String>) -> Self {
        Self {
            error_type,
            error_pointer: pointer.into(),
            error_reason: None,
        }
    }

    /// An error with a reason code.
    pub fn with_reason(
        error_type: ErrorType,
        pointer: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            error_type,
            error_pointer: pointer.into(),
            error_reason: Some(reason.into()),
        }
    }

    /// Whether this is `type` at `pointer`, whatever the reason.
    pub fn is(&self, error_type: ErrorType, pointer: &str) -> bool {
        self.error_type == error_type && self.error_pointer == pointer
    }
}

/// The balance of a guarantee as GMS reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The balance (BalEXP3).
    pub amount: Amount,
    /// Its currency (CurEXP4).
    pub currency: Currency,
}

/// The terminal answer to a balance request.
///
/// It has no serde form of its own: each API version and each store writes it in its own
/// shape, and the amount must never pass through a buffered (float) representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An IE037 with a balance.
    Success(Balance),
    /// An IE906: GMS refused the query.
    FunctionalError {
        /// Every FUNERRER1, in order (never empty).
        errors: Vec<NctsError>,
    },
    /// An IE917: GMS could not read the IE034.
    XmlError {
        /// The FUNERRER1 (never empty).
        errors: Vec<NctsError>,
    },
}

impl Outcome {
    /// The status name stored and reported: `SUCCESS`, `FUNCTIONAL_ERROR` or `XML_ERROR`.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Success(_) => "SUCCESS",
            Outcome::FunctionalError { .. } => "FUNCTIONAL_ERROR",
            Outcome::XmlError { .. } => "XML_ERROR",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_has_two_digits() {
        assert!(ErrorType::new(99).is_ok());
        assert!(ErrorType::new(100).is_err());
        assert!(serde_json::from_str::<ErrorType>("100").is_err());
    }

    #[test]
    fn error_json_shape() {
        let errors = vec![
            NctsError::with_reason(
                ErrorType::UNSUPPORTED,
                "GRR(1).GQY(1).Query identifier",
                "R261",
            ),
            NctsError::new(ErrorType::INCORRECT, "RC1.TIN"),
        ];
        let json = serde_json::to_string(&errors).unwrap();
        assert_eq!(
            json,
            r#"[{"errorType":14,"errorPointer":"GRR(1).GQY(1).Query identifier","errorReason":"R261"},{"errorType":12,"errorPointer":"RC1.TIN"}]"#
        );
        assert_eq!(
            serde_json::from_str::<Vec<NctsError>>(&json).unwrap(),
            errors
        );
    }

    #[test]
    fn balance_json_keeps_exact_digits() {
        let balance = Balance {
            amount: "12345678.90".parse().unwrap(),
            currency: "GBP".parse().unwrap(),
        };
        let json = serde_json::to_string(&balance).unwrap();
        assert_eq!(json, r#"{"amount":12345678.9,"currency":"GBP"}"#);
        assert_eq!(serde_json::from_str::<Balance>(&json).unwrap(), balance);
        let outcome = Outcome::Success(balance);
        assert_eq!(outcome.status(), "SUCCESS");
    }
}
