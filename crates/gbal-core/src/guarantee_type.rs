//! Guarantee types (GuaTypREF22).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The type of a guarantee: one character, a digit or an upper-case letter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GuaranteeType(u8);

/// Text that is not a single digit or upper-case letter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a guarantee type (one digit or upper-case letter)")]
pub struct InvalidGuaranteeType;

impl GuaranteeType {
    /// 0: guarantee waiver.
    pub const WAIVER: Self = Self(b'0');
    /// 1: comprehensive guarantee.
    pub const COMPREHENSIVE: Self = Self(b'1');
    /// 2: individual guarantee by a guarantor's undertaking.
    pub const INDIVIDUAL_UNDERTAKING: Self = Self(b'2');
    /// 4: individual guarantee in vouchers.
    pub const INDIVIDUAL_VOUCHERS: Self = Self(b'4');
    /// 9: individual guarantee for multiple usage.
    pub const INDIVIDUAL_MULTIPLE_USAGE: Self = Self(b'9');

    /// Whether GMS keeps a balance for this type (0, 1 and 9 only).
    pub fn has_balance(self) -> bool {
        matches!(self.0, b'0' | b'1' | b'9')
    }

    /// The code character.
    pub fn code(self) -> char {
        char::from(self.0)
    }
}

impl FromStr for GuaranteeType {
    type Err = InvalidGuaranteeType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            &[c] if c.is_ascii_digit() || c.is_ascii_uppercase() => Ok(Self(c)),
            _ => Err(InvalidGuaranteeType),
        }
    }
}

impl TryFrom<String> for GuaranteeType {
    type Error = InvalidGuaranteeType;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<GuaranteeType> for String {
    fn from(value: GuaranteeType) -> Self {
        value.code().to_string()
    }
}

impl fmt::Display for GuaranteeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl fmt::Debug for GuaranteeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GuaranteeType({})", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_0_1_and_9_have_a_balance() {
        let with: Vec<char> = "0123456789ABZ"
            .chars()
            .filter(|c| {
                c.to_string()
                    .parse::<GuaranteeType>()
                    .unwrap()
                    .has_balance()
            })
            .collect();
        assert_eq!(with, ['0', '1', '9']);
        assert!(!GuaranteeType::INDIVIDUAL_UNDERTAKING.has_balance());
        assert!(!GuaranteeType::INDIVIDUAL_VOUCHERS.has_balance());
    }

    #[test]
    fn parses_one_character() {
        for bad in ["", "10", "a", "-", "é"] {
            assert!(bad.parse::<GuaranteeType>().is_err(), "{bad:?}");
        }
        assert_eq!(
            serde_json::from_str::<GuaranteeType>("\"9\"").ok(),
            Some(GuaranteeType::INDIVIDUAL_MULTIPLE_USAGE)
        );
    }
}
