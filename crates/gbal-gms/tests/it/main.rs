//! Integration tests of the GMS adapters and the simulator: one binary, one module per subject.

mod call_metrics;
mod defaults;
mod eis_json;
mod embedded;
mod logs;
mod ncts_xml;
mod over_http;
mod sandbox_doc;
mod simulator_server;
mod support;
