//! The guarantee's access code: a secret that never leaves gbal except in the IE034.

use std::fmt;

use crate::field::{FieldError, FieldErrors, is_ascii_alphanumeric};

const CODE: &str = "INVALID_ACCESS_CODE";
const MESSAGE: &str = "Invalid access code value";

/// A guarantee access code: exactly 4 ASCII letters or digits.
///
/// Its `Debug` and `Display` never show the value, and it implements neither `Serialize`
/// nor `Clone`-to-string conversions, so it cannot reach a log, a row or an error body by
/// accident. Only [`AccessCode::expose`] gives the value, for the message sent to GMS.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessCode(String);

impl AccessCode {
    /// The only length NCTS accepts.
    pub const LEN: usize = 4;

    /// Parses an access code, reporting every broken rule in the order API v1 lists them.
    pub fn parse(value: &str) -> Result<Self, FieldErrors> {
        let error = |reason| FieldError {
            code: CODE,
            message: MESSAGE,
            reason,
        };
        let mut errors = Vec::new();
        if value.chars().count() != Self::LEN {
            errors.push(error("Access code must be 4 characters in length"));
        }
        if !is_ascii_alphanumeric(value) {
            errors.push(error("Access code must be alphanumeric"));
        }
        if errors.is_empty() {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldErrors(errors))
        }
    }

    /// The secret value, for building the message to GMS and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with a stored code the way GMS does: without regard to case.
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Debug for AccessCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessCode(****)")
    }
}

impl fmt::Display for AccessCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(value: &str) -> Vec<&'static str> {
        AccessCode::parse(value)
            .err()
            .map(|e| e.0.iter().map(|e| e.reason).collect())
            .unwrap_or_default()
    }

    #[test]
    fn exactly_four_letters_or_digits() {
        assert!(AccessCode::parse("AC01").is_ok());
        assert!(AccessCode::parse("ab12").is_ok());
        assert_eq!(
            reasons("ABC"),
            ["Access code must be 4 characters in length"]
        );
        assert_eq!(
            reasons("ABCDE"),
            ["Access code must be 4 characters in length"]
        );
        assert_eq!(reasons(""), ["Access code must be 4 characters in length"]);
        assert_eq!(reasons("AB-1"), ["Access code must be alphanumeric"]);
        assert_eq!(
            reasons("ÉB12"),
            ["Access code must be alphanumeric"],
            "non-ASCII letters are refused"
        );
        assert_eq!(
            reasons("#"),
            [
                "Access code must be 4 characters in length",
                "Access code must be alphanumeric"
            ]
        );
    }

    #[test]
    fn never_shows_its_value() {
        let code = AccessCode::parse("ZQ93").unwrap();
        assert!(!format!("{code:?}").contains("ZQ93"));
        assert!(!format!("{code}").contains("ZQ93"));
        assert!(!format!("{:?}", Some(&code)).contains("ZQ93"));
        assert_eq!(code.expose(), "ZQ93");
    }

    #[test]
    fn matches_without_regard_to_case() {
        let code = AccessCode::parse("ac01").unwrap();
        assert!(code.matches("AC01"));
        assert!(code.matches("aC01"));
        assert!(!code.matches("AC02"));
        assert!(!code.matches("AC0"));
    }

    #[test]
    fn errors_do_not_echo_the_value() {
        let err = AccessCode::parse("SECRET").unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
    }
}
