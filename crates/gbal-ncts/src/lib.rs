//! NCTS messages for gbal: the IE034 gbal sends (builder and CD034A validator), the IE037,
//! IE906 and IE917 replies (parsers, and builders for the GMS simulator), and XML hardening.
//!
//! Every document is checked against the rules of its XSD (element order, cardinality,
//! lengths, patterns, `xs:token` whitespace) by gbal's own validator before a value is read.

mod cursor;
mod declaration;
pub mod document;
pub mod error;
pub mod header;
pub mod ie034;
pub mod inspect;
pub mod kind;
pub mod reply;
pub mod schema;
mod sequence;
mod token;
pub mod validate;
mod xml_chars;

pub use document::{Document, Node};
pub use error::SchemaError;
pub use header::{Header, wrap_transit_request};
pub use ie034::{Ie034, QueriedGuarantee, ReceivedIe034, parse_ie034};
pub use inspect::{Message, inspect};
pub use kind::MessageKind;
pub use reply::{Ie037, Ie906, Ie917, Reply, UnwritableAmount, parse_reply};
pub use validate::{Limits, validate, validate_any};
