//! gbal's HTTP front door: the public API (v1 and v2, probes, the OpenAPI document) and the
//! internal listener (GMS replies, Prometheus metrics).
//!
//! Handlers are thin: extractors authenticate the caller (`auth`), check the version asked
//! for (`accept`) and read the body (`body`); the handler parses the fields into domain types,
//! applies the in-process rate limits (`limit`), calls [`gbal_core::BalanceService`] and maps
//! the result to the version's answer. Every refusal is one [`ApiError`] with one
//! `IntoResponse` (`error`). The layer order is written down in `middleware`.

mod accept;
mod auth;
mod body;
mod check;
mod config;
mod error;
mod hal;
mod limit;
mod metric;
mod middleware;
pub mod openapi;
mod probe;
mod reply;
mod serve;
mod state;
mod time_format;
mod v1;
mod v2;

pub use auth::Caller;
pub use body::{v1_query, v2_query};
pub use config::{
    ApiConfig, AuthConfig, DEFAULT_BASE_PATH, DEFAULT_RECIPIENT_PREFIX, DEFAULT_SCOPE, KeySource,
    RateLimitConfig, ReplyConfig,
};
pub use error::ApiError;
pub use reply::TrackerReplySink;
pub use serve::{internal_router, public_router, serve};
pub use state::{AppState, MetricsRender, StartError};
