//! gbal-api's tests: every row of API.md in process, and the flows over real HTTP.

mod support;

mod audit;
mod auth;
mod cluster;
mod connections;
mod contract;
mod failures;
mod fairness;
mod http_flow;
mod jwks;
mod labels;
mod openapi;
mod pg_flow;
mod probes;
mod readiness;
mod reply;
mod secrets;
mod service;
mod trace;
mod v1;
mod v2;
