//! Money: exact decimal amounts and ISO currency codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// An exact decimal amount, kept as an integer and a number of decimal places.
///
/// Trailing fractional zeros are dropped when it is made (`50000.00` is `50000`), so equal
/// amounts are equal values. It is written to JSON as a number with exactly these digits,
/// never through a float.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    units: i128,
    scale: u8,
}

/// Text that is not a plain decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal amount: {0}")]
pub struct InvalidAmount(String);

impl Amount {
    /// The most decimal places an amount may have.
    pub const MAX_SCALE: u8 = 18;
    const MAX_DIGITS: usize = 36;

    /// Builds `units / 10^scale`, normalised.
    pub fn new(units: i128, scale: u8) -> Result<Self, InvalidAmount> {
        if scale > Self::MAX_SCALE {
            return Err(InvalidAmount(format!("{units}e-{scale}")));
        }
        let mut amount = Self { units, scale };
        while amount.scale > 0 && amount.units % 10 == 0 {
            amount.units /= 10;
            amount.scale -= 1;
        }
        Ok(amount)
    }

    /// The integer part times 10^scale.
    pub fn units(&self) -> i128 {
        self.units
    }

    /// Decimal places after normalisation.
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.units < 0
    }
}

impl FromStr for Amount {
    type Err = InvalidAmount;

    /// Parses `-?[0-9]+(\.[0-9]+)?`; no exponent, no sign `+`, no spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidAmount(s.chars().take(40).collect());
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !all_digits(int)
            || !all_digits(frac)
            || (digits.contains('.') && frac.is_empty())
            || int.len() + frac.len() > Self::MAX_DIGITS
            || frac.len() > usize::from(Self::MAX_SCALE)
        {
            return Err(invalid());
        }
        let mut units: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units * 10 + i128::from(b - b'0');
        }
        if negative {
            units = -units;
        }
        Self::new(units, frac.len() as u8)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let pow = 10u128.pow(u32::from(self.scale));
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / pow,
            abs % pow,
            width = usize::from(self.scale)
        )
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: &RawValue = Deserialize::deserialize(deserializer)?;
        raw.get().parse().map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

/// Text that is not three upper-case letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a currency code of three upper-case letters")]
pub struct InvalidCurrency;

impl Currency {
    /// The code.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for Currency {
    type Err = InvalidCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(InvalidCurrency),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn amount(s: &str) -> Amount {
        s.parse().unwrap()
    }

    #[test]
    fn drops_trailing_zeros() {
        assert_eq!(amount("50000.00").to_string(), "50000");
        assert_eq!(amount("12345678.90").to_string(), "12345678.9");
        assert_eq!(amount("1212211848.45").to_string(), "1212211848.45");
        assert_eq!(amount("0.00").to_string(), "0");
        assert_eq!(amount("0.05").to_string(), "0.05");
        assert_eq!(amount("-5.10").to_string(), "-5.1");
        assert_eq!(amount("50000.00"), amount("50000"));
    }

    #[test]
    fn json_is_an_exact_number() {
        let json = serde_json::to_string(&amount("12345678.90")).unwrap();
        assert_eq!(json, "12345678.9");
        // More digits than an f64 holds survive untouched.
        let big = amount("123456789012345678901234.56");
        assert_eq!(
            serde_json::to_string(&big).unwrap(),
            "123456789012345678901234.56"
        );
        assert_eq!(
            serde_json::from_str::<Amount>("123456789012345678901234.56").unwrap(),
            big
        );
    }

    #[test]
    fn refuses_non_decimals() {
        for bad in [
            "", "-", ".5", "5.", "1e3", "+1", " 1", "1 ", "1,5", "0x10", "1.2.3", "NaN", "١",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?}");
        }
        assert!("\"5\"".parse::<Amount>().is_err());
        assert!(
            serde_json::from_str::<Amount>("\"5\"").is_err(),
            "a JSON string is not a number"
        );
        assert!(serde_json::from_str::<Amount>("1e3").is_err());
    }

    #[test]
    fn currency_is_three_upper_case_letters() {
        assert_eq!(
            "GBP".parse::<Currency>().map(|c| c.to_string()),
            Ok("GBP".to_owned())
        );
        for bad in ["", "GB", "GBPX", "gbp", "G1P", "GÉP"] {
            assert!(bad.parse::<Currency>().is_err(), "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&"EUR".parse::<Currency>().unwrap()).unwrap(),
            "\"EUR\""
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(units in any::<i64>(), scale in 0u8..=6) {
            let a = Amount::new(i128::from(units), scale).unwrap();
            prop_assert_eq!(a.to_string().parse::<Amount>(), Ok(a));
            let json = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), a);
            prop_assert!(!a.to_string().contains('.') || !a.to_string().ends_with('0'));
        }
    }
}
