//! The content model of a complex element: its `xs:sequence` of child declarations, matched
//! one child at a time as the validation pass meets them.

use crate::error::{Errors, Step, Stop};
use crate::schema::ElementDecl;

/// The progress of a complex element's `xs:sequence`.
pub(crate) struct Sequence {
    children: &'static [ElementDecl],
    /// Index in `children` of the last matched declaration (0 before any).
    pos: usize,
    /// Occurrences of `children[pos]` so far.
    count: u16,
    /// An ordering error happened: the rest of this sequence is not checked.
    broken: bool,
    /// Name of the last child that matched.
    last_present: Option<&'static str>,
}

impl Sequence {
    /// A sequence of `children` before its first child.
    pub(crate) fn new(children: &'static [ElementDecl]) -> Self {
        Sequence {
            children,
            pos: 0,
            count: 0,
            broken: false,
            last_present: None,
        }
    }

    /// Places a child named `name`, reporting what it reveals (missing elements before it,
    /// one too many, out of order, unknown). Returns its declaration if the name is known
    /// here, so that its content is still checked.
    pub(crate) fn place(
        &mut self,
        name: &str,
        parent: &str,
        position: (u32, u32),
        errors: &mut Errors,
    ) -> Result<Option<&'static ElementDecl>, Stop> {
        let children = self.children;
        // The next sibling is usually at or just after the current position.
        let index = children
            .iter()
            .skip(self.pos)
            .position(|d| d.name == name)
            .map(|i| i + self.pos)
            .or_else(|| children.iter().take(self.pos).position(|d| d.name == name));
        let Some((index, decl)) = index.and_then(|i| Some((i, children.get(i)?))) else {
            self.broken = true;
            let hint = if name.contains(':') {
                " (prefixed names are not allowed: the messages use no namespace)"
            } else {
                ""
            };
            errors.push(
                position,
                format!("unexpected element {name} in {parent}{hint}"),
            )?;
            return Ok(None);
        };
        if self.broken {
            return Ok(Some(decl));
        }
        if index == self.pos && self.count > 0 {
            if self.count < decl.max_occurs {
                self.count += 1;
            } else if decl.max_occurs == 1 {
                errors.push(
                    position,
                    format!("element {name} occurs more than once in {parent}"),
                )?;
            } else {
                let max = decl.max_occurs;
                errors.push(
                    position,
                    format!("element {name} occurs more than {max} times in {parent}"),
                )?;
            }
        } else if index >= self.pos {
            self.report_missing(index, parent, position, errors)?;
            self.pos = index;
            self.count = 1;
            self.last_present = Some(decl.name);
        } else {
            self.broken = true;
            let before = children.get(self.pos).map_or("", |d| d.name);
            errors.push(
                position,
                format!("element {name} is out of order in {parent}: it must come before {before}"),
            )?;
        }
        Ok(Some(decl))
    }

    /// At the parent's end tag: every required element left must have appeared.
    pub(crate) fn finish(&self, parent: &str, position: (u32, u32), errors: &mut Errors) -> Step {
        if self.broken {
            return Ok(());
        }
        self.report_missing(self.children.len(), parent, position, errors)
    }

    /// Reports the required declarations skipped when moving on to `target`.
    fn report_missing(
        &self,
        target: usize,
        parent: &str,
        position: (u32, u32),
        errors: &mut Errors,
    ) -> Step {
        let skipped = self.children.iter().enumerate().take(target).skip(self.pos);
        for (i, decl) in skipped {
            let present = if i == self.pos { self.count } else { 0 };
            if present >= decl.min_occurs {
                continue;
            }
            let message = match self.last_present {
                Some(previous) => {
                    format!(
                        "element {} is missing, expected after {previous}",
                        decl.name
                    )
                }
                None => format!(
                    "element {} is missing, expected as the first child of {parent}",
                    decl.name
                ),
            };
            errors.push(position, message)?;
        }
        Ok(())
    }
}
