//! What a validation pass reports: [`SchemaError`], and the capped collection of them the
//! pass fills in.

/// One problem found in a document, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SchemaError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// What is wrong, naming the element and the rule.
    pub message: String,
}

/// Beyond this many errors the pass stops; a megabyte of garbage should not cost more.
const MAX_ERRORS: usize = 100;

/// Why the pass stopped early; the error itself is already recorded.
pub(crate) struct Stop;
pub(crate) type Step = Result<(), Stop>;

/// Collected errors, capped at [`MAX_ERRORS`].
#[derive(Default)]
pub(crate) struct Errors(Vec<SchemaError>);

impl Errors {
    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, in the order they were found.
    pub(crate) fn into_vec(self) -> Vec<SchemaError> {
        self.0
    }

    /// Records a schema error; the pass goes on unless the cap is reached.
    pub(crate) fn push(&mut self, (line, column): (u32, u32), message: String) -> Step {
        if self.0.len() >= MAX_ERRORS {
            self.0.push(SchemaError {
                line,
                column,
                message: format!("more than {MAX_ERRORS} errors, validation stopped"),
            });
            return Err(Stop);
        }
        self.0.push(SchemaError {
            line,
            column,
            message,
        });
        Ok(())
    }

    /// Records an error that ends the pass (a well-formedness error or a limit).
    pub(crate) fn fatal(&mut self, (line, column): (u32, u32), message: String) -> Step {
        self.0.push(SchemaError {
            line,
            column,
            message,
        });
        Err(Stop)
    }
}
