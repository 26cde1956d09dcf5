//! gbal's built-in configuration, `config/default.toml`: the one source of defaults, read by
//! the tests that take a setting as `gbal serve` would with no configuration. Each crate's
//! tests turn these values into its own settings types.

use std::time::Duration;

/// The text of `config/default.toml`, as compiled into the binary.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// The value of a dotted key, e.g. `gms.sender_prefix`; panics when the file has no such key.
#[track_caller]
pub fn value(key: &str) -> toml::Value {
    let table: toml::Table = DEFAULT_TOML.parse().expect("config/default.toml is TOML");
    key.split('.')
        .try_fold(toml::Value::Table(table), |v, part| v.get(part).cloned())
        .unwrap_or_else(|| panic!("config/default.toml has no {key}"))
}

/// A string setting.
#[track_caller]
pub fn string(key: &str) -> String {
    value(key)
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
        .to_owned()
}

/// A list of strings.
#[track_caller]
pub fn strings(key: &str) -> Vec<String> {
    value(key)
        .as_array()
        .unwrap_or_else(|| panic!("{key} is a list"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{key} holds strings"))
                .to_owned()
        })
        .collect()
}

/// An integer setting, in the type the caller needs.
#[track_caller]
pub fn integer<T: TryFrom<i64>>(key: &str) -> T {
    value(key)
        .as_integer()
        .and_then(|i| T::try_from(i).ok())
        .unwrap_or_else(|| panic!("{key} is an integer in range"))
}

/// A duration setting (`"15s"`, `"100ms"`, ...), read as gbal reads it.
#[track_caller]
pub fn duration(key: &str) -> Duration {
    gbal_core::duration::parse(&string(key)).unwrap_or_else(|e| panic!("{key} is a duration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_of_setting() {
        assert_eq!(string("gms.sender_prefix"), "MDTP-GUA-");
        assert_eq!(integer::<u32>("public.body_limit"), 16_384);
        assert_eq!(duration("balance.lock_ttl"), Duration::from_secs(60));
        assert_eq!(strings("auth.algorithms"), ["RS256", "ES256"]);
    }

    #[test]
    #[should_panic(expected = "config/default.toml has no balance.nothing")]
    fn a_missing_key_fails_naming_it() {
        value("balance.nothing");
    }
}
