//! Guarantee reference numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::{FieldErrors, TextRules};

const V1_RULES: TextRules = TextRules {
    code: "INVALID_GUARANTEE_REFERENCE",
    message: "Invalid guarantee reference value",
    empty: "Guarantee reference must not be empty",
    max: Grn::MAX_LEN,
    too_long: "Guarantee reference has a maximum length of 24 characters",
    not_alphanumeric: "Guarantee reference must be alphanumeric",
};

/// The country whose GMS holds a guarantee, from characters 3-4 of its GRN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Country {
    /// Great Britain.
    #[serde(rename = "GB")]
    Gb,
    /// Northern Ireland.
    #[serde(rename = "XI")]
    Xi,
}

impl Country {
    /// The two-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Country::Gb => "GB",
            Country::Xi => "XI",
        }
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a GRN was refused by the API v2 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrnV2Error {
    /// Not `^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[0-9]$`.
    #[error("The guarantee reference number is not in the correct format.")]
    Malformed,
    /// Well-formed, but characters 3-4 are neither `GB` nor `XI`.
    #[error("The guarantee reference number must be for a GB or XI guarantee.")]
    NotGbOrXi,
}

/// A guarantee reference number (GuaRefNumGRNREF21).
///
/// API v1 accepts 1 to 24 ASCII letters and digits; API v2 accepts only the 17-character
/// structured form of a GB or XI guarantee. Either way, a `Grn` only exists valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Grn(String);

impl Grn {
    /// The longest GRN NCTS accepts.
    pub const MAX_LEN: usize = 24;

    /// Parses a GRN with the v1 rules, reporting every broken rule in order.
    pub fn parse_v1(value: &str) -> Result<Self, FieldErrors> {
        V1_RULES.check(value)?;
        Ok(Self(value.to_owned()))
    }

    /// Parses a GRN with the stricter v2 rules: `^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[0-9]$`, GB or XI.
    pub fn parse_v2(value: &str) -> Result<Self, GrnV2Error> {
        let b = value.as_bytes();
        let well_formed = b.len() == 17
            && b[..2].iter().all(u8::is_ascii_digit)
            && b[2..4].iter().all(u8::is_ascii_uppercase)
            && b[4..16]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && b[16].is_ascii_digit();
        if !well_formed {
            return Err(GrnV2Error::Malformed);
        }
        let grn = Self(value.to_owned());
        match grn.country() {
            Some(_) => Ok(grn),
            None => Err(GrnV2Error::NotGbOrXi),
        }
    }

    /// The GRN as sent to GMS.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country of the guarantee when characters 3-4 are `GB` or `XI`.
    pub fn country(&self) -> Option<Country> {
        match self.0.get(2..4)? {
            "GB" => Some(Country::Gb),
            "XI" => Some(Country::Xi),
            _ => None,
        }
    }
}

impl fmt::Display for Grn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Grn {
    type Error = FieldErrors;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        V1_RULES.check(&value)?;
        Ok(Self(value))
    }
}

impl From<Grn> for String {
    fn from(value: Grn) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_reasons(value: &str) -> Vec<&'static str> {
        Grn::parse_v1(value)
            .err()
            .map(|e| e.0.iter().map(|e| e.reason).collect())
            .unwrap_or_default()
    }

    #[test]
    fn v1_accepts_1_to_24_letters_and_digits() {
        assert!(Grn::parse_v1("22GB0000010000313").is_ok());
        assert!(Grn::parse_v1("a").is_ok());
        assert!(Grn::parse_v1(&"9".repeat(24)).is_ok());
        assert!(
            Grn::parse_v1("22gb0000010000313").is_ok(),
            "v1 allows lower case"
        );
    }

    #[test]
    fn v1_boundary_25_is_too_long() {
        assert_eq!(
            v1_reasons(&"9".repeat(25)),
            ["Guarantee reference has a maximum length of 24 characters"]
        );
    }

    #[test]
    fn v1_empty_and_symbols() {
        assert_eq!(v1_reasons(""), ["Guarantee reference must not be empty"]);
        assert_eq!(
            v1_reasons("##############"),
            ["Guarantee reference must be alphanumeric"]
        );
        assert_eq!(
            v1_reasons("22GBé"),
            ["Guarantee reference must be alphanumeric"]
        );
        assert_eq!(
            v1_reasons(&"#".repeat(25)),
            [
                "Guarantee reference has a maximum length of 24 characters",
                "Guarantee reference must be alphanumeric"
            ]
        );
    }

    #[test]
    fn v1_length_counts_characters_not_bytes() {
        // 24 two-byte letters: too long is not reported, only the alphabet rule.
        assert_eq!(
            v1_reasons(&"é".repeat(24)),
            ["Guarantee reference must be alphanumeric"]
        );
    }

    #[test]
    fn v2_accepts_gb_and_xi() {
        assert_eq!(
            Grn::parse_v2("22GB0000010000313").map(|g| g.country()),
            Ok(Some(Country::Gb))
        );
        assert_eq!(
            Grn::parse_v2("23XI00000100003A3").map(|g| g.country()),
            Ok(Some(Country::Xi))
        );
    }

    #[test]
    fn v2_refuses_other_countries_as_such() {
        assert_eq!(
            Grn::parse_v2("22FR0000010000313"),
            Err(GrnV2Error::NotGbOrXi)
        );
    }

    #[test]
    fn v2_refuses_malformed() {
        for bad in [
            "",
            "22GB000001000031",         // 16
            "22GB00000100003133",       // 18
            "22GB0000010000313A123456", // 24-character voucher form
            "22gb0000010000313",        // lower-case country
            "2XGB0000010000313",        // year not digits
            "22GB000001000031X",        // last not a digit
            "22GB00000a0000313",        // lower case in the body
            "22GB0000010000313 ",
            "22GÉ0000010000313",
        ] {
            assert_eq!(Grn::parse_v2(bad), Err(GrnV2Error::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn v2_messages_are_the_contracts() {
        assert_eq!(
            GrnV2Error::Malformed.to_string(),
            "The guarantee reference number is not in the correct format."
        );
        assert_eq!(
            GrnV2Error::NotGbOrXi.to_string(),
            "The guarantee reference number must be for a GB or XI guarantee."
        );
    }

    #[test]
    fn country_of_v1_grn() {
        assert_eq!(
            Grn::parse_v1("22XI1").ok().and_then(|g| g.country()),
            Some(Country::Xi)
        );
        assert_eq!(Grn::parse_v1("22FR1").ok().and_then(|g| g.country()), None);
        assert_eq!(Grn::parse_v1("2").ok().and_then(|g| g.country()), None);
    }
}
