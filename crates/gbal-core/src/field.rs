//! Field-level validation errors shared by the request types.
//!
//! API v1 reports every broken rule of every field, in a fixed order, with a stable code, a
//! message and a reason; the texts live here so that every layer reports them the same way.

use std::fmt;

/// One broken rule of one request field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    /// Stable machine-readable code, e.g. `INVALID_ACCESS_CODE`.
    pub code: &'static str,
    /// The field-level message, e.g. `Invalid access code value`.
    pub message: &'static str,
    /// Which rule was broken, e.g. `Access code must be 4 characters in length`.
    pub reason: &'static str,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

/// The broken rules of one field, in the order they were checked (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// The rules v1 applies to its free-text identifiers: not empty, at most `max` characters,
/// ASCII letters and digits only. An empty value breaks only the first rule.
pub(crate) struct TextRules {
    pub code: &'static str,
    pub message: &'static str,
    pub empty: &'static str,
    pub max: usize,
    pub too_long: &'static str,
    pub not_alphanumeric: &'static str,
}

impl TextRules {
    pub(crate) fn check(&self, value: &str) -> Result<(), FieldErrors> {
        let error = |reason| FieldError {
            code: self.code,
            message: self.message,
            reason,
        };
        let mut errors = Vec::new();
        if value.is_empty() {
            errors.push(error(self.empty));
        } else {
            if value.chars().count() > self.max {
                errors.push(error(self.too_long));
            }
            if !is_ascii_alphanumeric(value) {
                errors.push(error(self.not_alphanumeric));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors(errors))
        }
    }
}

pub(crate) fn is_ascii_alphanumeric(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_alphanumeric())
}
