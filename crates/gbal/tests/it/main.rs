//! Black-box tests of the `gbal` binary: each runs the real executable.

mod attacks;
mod audit;
mod configs;
mod faults;
mod observability;
mod process;
mod replicas;
mod serve;
mod sqlite;
mod telemetry;
mod tools;
