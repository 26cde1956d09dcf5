//! gbal-ncts integration tests (one binary; each module is a group of tests).

mod differential;
mod examples;
mod ie034_xmllint;
mod reply_builders;
mod support;
mod validator;
