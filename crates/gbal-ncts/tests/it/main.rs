//! gbal-ncts integration tests (one binary; each module is a group of tests).

mod differential;
mod support;
