//! Configuration durations: gbal-core's duration syntax with serde.

use std::fmt;
use std::time::Duration;

pub use gbal_core::duration::{InvalidDuration, format, parse};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from and written to configuration in human form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

/// The longest duration any configuration key takes. Nothing gbal times needs more; a longer
/// timer never fires in practice, and a far longer one would overflow the clock arithmetic
/// that uses it (a panic, not an error). Keys with tighter bounds check them in their section.
pub const MAX_CONFIG_DURATION: Duration = Duration::from_secs(30 * 86_400);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let d = parse(&text).map_err(serde::de::Error::custom)?;
        if d > MAX_CONFIG_DURATION {
            return Err(serde::de::Error::custom(format!(
                "'{}' is longer than {}, the longest duration gbal's configuration takes",
                text.chars().take(40).collect::<String>(),
                format(MAX_CONFIG_DURATION)
            )));
        }
        Ok(HumanDuration(d))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(self.0))
    }
}
