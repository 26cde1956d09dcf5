//! The gbal binary's library: configuration, the subcommands, and the wiring of the crates
//! into one process.

pub mod check;
pub mod cli;
pub mod config;
pub mod duration;
pub mod gms_sim;
pub mod healthcheck;
pub mod ncts;
pub mod pending;
pub mod serve;
pub mod signals;
pub mod telemetry;
pub mod token;
