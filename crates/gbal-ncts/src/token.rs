//! Simple values: `xs:token` whitespace collapsing, and the length and pattern facets
//! applied to the collapsed value.

use crate::schema::{Length, SimpleType};

/// The length and pattern facets of `ty` on a collapsed value.
pub(crate) fn check_value(element: &str, ty: &SimpleType, value: &str) -> Option<String> {
    let chars = value.chars().count();
    if !ty.length.allows(chars) {
        let rule = match ty.length {
            Length::Exactly(n) => format!("exactly {n} required"),
            Length::AtMost(n) => format!("at most {n} allowed"),
        };
        let unit = if chars == 1 {
            "character"
        } else {
            "characters"
        };
        return Some(format!("{element}: value has {chars} {unit}, {rule}"));
    }
    if !ty.pattern.matches(value) {
        return Some(format!(
            "{element}: value {} does not match {}",
            quote(value),
            ty.pattern
        ));
    }
    None
}

/// Appends `raw` to a token value being built from `start`, collapsing whitespace: runs
/// become one space, leading and trailing ones go (a pending space is only written before
/// the next non-space character).
pub(crate) fn push_collapsed(
    values: &mut String,
    start: usize,
    pending_space: &mut bool,
    raw: &str,
) {
    let mut first = true;
    for word in raw.split([' ', '\t', '\n', '\r']) {
        if !first && values.len() > start {
            *pending_space = true;
        }
        first = false;
        if !word.is_empty() {
            if std::mem::take(pending_space) {
                values.push(' ');
            }
            values.push_str(word);
        }
    }
}

/// A value quoted for a message, shortened if long.
pub(crate) fn quote(value: &str) -> String {
    const SHOWN: usize = 40;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("'{}…'", value.get(..cut).unwrap_or_default()),
        None => format!("'{value}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapsing_joins_chunks_with_one_space() {
        let mut values = String::from("xx");
        let mut pending = false;
        for chunk in ["  a", " b  ", "c", "\t", "d  "] {
            push_collapsed(&mut values, 2, &mut pending, chunk);
        }
        assert_eq!(values, "xxa b c d");
    }
}
