//! gbal's built-in configuration, `config/default.toml` (the one source of defaults), for the
//! settings these tests take as `gbal serve` would with no configuration (read by
//! `gbal_testkit::defaults`).

use gbal_gms::{Dataset, EmbeddedConfig, NctsXmlConfig, QueryLimit, UpstreamConfig};
use gbal_testkit::defaults::{integer, string};

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
