//! GMS adapters behind `gbal_core::Gms`, and the GMS simulator.
//!
//! - [`NctsXmlGms`] (`ncts-xml`): posts the IE034 to GMS; the reply arrives later on gbal's
//!   internal listener.
//! - [`EisJsonGms`] (`eis-json`, phase 5): the access-code and balance calls on the GB or XI
//!   EIS instance; answers at once.
//! - [`simulator`]: DESIGN.md's GMS rules over a dataset, in process ([`EmbeddedSimulator`])
//!   or as a standalone HTTP server speaking both protocols ([`serve_simulator`]).
//!
//! Both HTTP adapters retry only what is safe to resend (no connection, 503), within a count
//! and a time budget, and stop calling for a cool-down after consecutive failures. Every
//! submit is measured as `gbal_gms_call_duration_seconds` and counted as
//! `gbal_gms_calls_total`, labelled by `transport` and `outcome`. The access code goes into
//! the request body and nowhere else: never into a log line, an error or a metric.

mod breaker;
pub mod call_metrics;
pub mod eis_json;
pub mod ncts_xml;
pub mod simulator;
mod upstream;

pub use breaker::{BREAKER_OPEN, BreakerConfig};
pub use eis_json::{EisJsonConfig, EisJsonGms};
pub use ncts_xml::{NctsXmlConfig, NctsXmlGms};
pub use reqwest::Url;
pub use simulator::{
    Dataset, EmbeddedConfig, EmbeddedSimulator, QueryLimit, SimulatorConfig, serve_simulator,
};
pub use upstream::{BearerToken, ClientError, RetryPolicy, UpstreamConfig};
