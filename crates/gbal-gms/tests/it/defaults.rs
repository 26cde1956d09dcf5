//! gbal's built-in configuration, `config/default.toml` (the one source of defaults), for the
//! settings these tests take as `gbal serve` would with no configuration.

use gbal_gms::{Dataset, EmbeddedConfig, NctsXmlConfig, QueryLimit, UpstreamConfig};

const DEFAULT_TOML: &str = include_str!("../../../../config/default.toml");

/// The value of a dotted key, e.g. `gms.sender_prefix`.
fn value(key: &str) -> toml::Value {
    let table: toml::Table = DEFAULT_TOML.parse().expect("config/default.toml is TOML");
    key.split('.')
        .try_fold(toml::Value::Table(table), |v, part| v.get(part).cloned())
        .unwrap_or_else(|| panic!("config/default.toml has no {key}"))
}

/// A string setting.
pub fn string(key: &str) -> String {
    value(key)
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
        .to_owned()
}

/// An integer setting.
pub fn integer(key: &str) -> u32 {
    let v = value(key).as_integer();
    v.and_then(|i| u32::try_from(i).ok())
        .unwrap_or_else(|| panic!("{key} is a u32"))
}

/// The prefix of gbal's recipient ids.
pub fn sender_prefix() -> String {
    string("gms.sender_prefix")
}

/// The simulator's per-TIN query limit.
pub fn query_limit() -> QueryLimit {
    QueryLimit::per_day(integer("simulator.query_limit"))
}

/// The embedded simulator over `dataset`.
pub fn embedded(dataset: Dataset) -> EmbeddedConfig {
    EmbeddedConfig {
        dataset,
        query_limit: query_limit(),
        sender_prefix: sender_prefix(),
        recipient_office: string("gms.recipient"),
    }
}

/// The ncts-xml adapter reaching `upstream`.
pub fn ncts_xml(upstream: UpstreamConfig) -> NctsXmlConfig {
    NctsXmlConfig {
        upstream,
        sender_prefix: sender_prefix(),
        recipient_office: string("gms.recipient"),
    }
}
