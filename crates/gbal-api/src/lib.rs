//! gbal's HTTP front door: the public API (v1 and v2, probes, the OpenAPI document) and the
//! internal listener (GMS replies, Prometheus metrics).
//!
//! Handlers are thin: extractors authenticate the caller and take its request permit
//! (`auth`), check the version asked for (`accept`) and read the query (`body`) or the GMS
//! reply (`reply_message`); the handler calls [`gbal_core::BalanceService`] once and maps the
//! result to its version's answer. Every refusal is one [`ApiError`] with one `IntoResponse`
//! (`error`). The layer order is written down in `middleware`.
//!
//! The modules form layers, each importing only from the ones below it:
//! 1. settings, errors and plain helpers: `config`, `error`, `metric`, `time_format`, `hal`;
//! 2. what the handlers share: `authenticator`, `limit`, `audit`, `state`;
//! 3. extractors and layers: `accept`, `auth`, `body`, `reply_message`, `middleware`;
//! 4. handlers: `v1`, `v2`, `probe`, `reply`;
//! 5. routes: `openapi` (the documented public routes), `serve` (both routers and the server).

mod accept;
mod audit;
mod auth;
mod authenticator;
mod body;
mod config;
mod deadline;
mod error;
mod hal;
mod limit;
mod metric;
mod middleware;
pub mod openapi;
mod post;
mod probe;
mod reply;
mod reply_message;
mod serve;
mod state;
mod time_format;
mod v1;
mod v2;

pub use audit::{
    AUDIT_FIELD, AUDIT_TARGET, Audit, AuditDelivery, AuditEvent, AuditHttpConfig, AuditSink,
    EventType, MAX_AUDIT_QUEUE, MAX_AUDIT_RETRIES, MAX_AUDIT_WAIT,
};
pub use body::{v1_query, v2_query};
pub use config::{
    ApiConfig, AuthConfig, ConnectionLimits, InvalidSetting, KeySource, Listener, RateLimitConfig,
    ReplyConfig, Setting,
};
pub use error::{ApiError, StartError};
pub use reply::TrackerReplySink;
pub use serve::{internal_router, public_router, serve};
pub use state::{AppState, MetricsRender};
