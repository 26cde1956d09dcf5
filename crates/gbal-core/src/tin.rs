//! The principal's trader identification number (EORI/TIN).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::{FieldErrors, TextRules};

const RULES: TextRules = TextRules {
    code: "INVALID_TAX_IDENTIFIER",
    message: "Invalid tax identifier value",
    empty: "Tax identifier must not be empty",
    max: Tin::MAX_LEN,
    too_long: "Tax identifier has a maximum length of 17 characters",
    not_alphanumeric: "Tax identifier must be alphanumeric",
};

/// A trader identification number: 1 to 17 ASCII letters and digits (TINRC159 / TINOTG59).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tin(String);

impl Tin {
    /// The longest TIN NCTS accepts.
    pub const MAX_LEN: usize = 17;

    /// Parses a TIN, reporting every broken rule in the order API v1 lists them.
    pub fn parse(value: &str) -> Result<Self, FieldErrors> {
        RULES.check(value)?;
        Ok(Self(value.to_owned()))
    }

    /// The TIN as sent to GMS.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two-letter country prefix of an EORI (`GB`, `XI`, ...), when it has one.
    pub fn country_prefix(&self) -> Option<&str> {
        let prefix = self.0.get(..2)?;
        prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase())
            .then_some(prefix)
    }
}

impl fmt::Display for Tin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Tin {
    type Error = FieldErrors;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RULES.check(&value)?;
        Ok(Self(value))
    }
}

impl From<Tin> for String {
    fn from(value: Tin) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(value: &str) -> Vec<&'static str> {
        match Tin::parse(value) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.reason).collect(),
        }
    }

    #[test]
    fn accepts_up_to_17_letters_and_digits() {
        assert_eq!(
            Tin::parse("GB954131533000")
                .map(|t| t.to_string())
                .ok()
                .as_deref(),
            Some("GB954131533000")
        );
        assert!(Tin::parse(&"A".repeat(17)).is_ok());
        assert!(Tin::parse("1").is_ok());
    }

    #[test]
    fn boundary_18_is_too_long() {
        assert_eq!(
            reasons(&"A".repeat(18)),
            ["Tax identifier has a maximum length of 17 characters"]
        );
    }

    #[test]
    fn empty_reports_only_the_empty_rule() {
        assert_eq!(reasons(""), ["Tax identifier must not be empty"]);
    }

    #[test]
    fn reports_length_then_alphanumeric() {
        assert_eq!(
            reasons("GB123456789001920319203####"),
            [
                "Tax identifier has a maximum length of 17 characters",
                "Tax identifier must be alphanumeric"
            ]
        );
    }

    #[test]
    fn refuses_non_ascii_letters_and_symbols() {
        for bad in ["GBé12", "GB 12", "GB-12", "GB١٢", "€"] {
            assert_eq!(
                reasons(bad),
                ["Tax identifier must be alphanumeric"],
                "{bad}"
            );
        }
    }

    #[test]
    fn every_error_carries_the_field_code() {
        let errors = Tin::parse("").unwrap_err();
        assert!(
            errors.0.iter().all(|e| e.code == "INVALID_TAX_IDENTIFIER"
                && e.message == "Invalid tax identifier value")
        );
    }

    #[test]
    fn country_prefix() {
        assert_eq!(
            Tin::parse("XI123")
                .ok()
                .and_then(|t| t.country_prefix().map(str::to_owned))
                .as_deref(),
            Some("XI")
        );
        assert_eq!(
            Tin::parse("12345")
                .ok()
                .and_then(|t| t.country_prefix().map(str::to_owned)),
            None
        );
    }

    #[test]
    fn serde_round_trip_refuses_invalid() {
        let tin: Tin = serde_json::from_str("\"GB1\"").unwrap();
        assert_eq!(serde_json::to_string(&tin).unwrap(), "\"GB1\"");
        assert!(serde_json::from_str::<Tin>("\"GB-1\"").is_err());
    }
}
