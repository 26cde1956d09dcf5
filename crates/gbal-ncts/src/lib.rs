//! NCTS messages.

pub mod schema;
pub mod validate;

pub use validate::{Document, Limits, MessageKind, Node, SchemaError, validate, validate_any};
