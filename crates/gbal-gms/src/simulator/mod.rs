//! The GMS simulator: the rules of DESIGN.md "GMS rules" over a dataset, run in process
//! ([`EmbeddedSimulator`]) or as a standalone HTTP server ([`serve_simulator`]).

mod dataset;
mod embedded;
mod replies;
mod rules;
mod server;

pub use dataset::{Behaviour, Dataset, DatasetError, Guarantee, Trader, parse_duration};
pub use embedded::{EmbeddedConfig, EmbeddedSimulator};
pub use rules::{
    Delivery, GuaranteeQuery, QueryLimit, SimulatedAnswer, SimulatedReply, TinUsage, answer,
    simulated_xml_error,
};
pub use server::{MAX_MESSAGE_BYTES, SimulatorConfig, serve_simulator};
