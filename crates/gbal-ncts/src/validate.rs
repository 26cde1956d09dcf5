//! Validation of NCTS messages against the static schema tables, without libxml.
//!
//! One pass over quick-xml's low-level events checks well-formedness the way xmllint
//! judges it and validates the four message schemas at the same time, building the arena
//! ([`Document`]) of the elements it accepted. Each complex element's content model is
//! matched by its sequence (`sequence.rs`), each value by its type's facets (`token.rs`).
//!
//! Error policy: well-formedness errors are fatal (xmllint stops there too) and end the
//! pass; schema errors are collected and the pass goes on, so one call reports every
//! problem it can. After an ordering error inside a parent, that parent's sequence is no
//! longer checked, but values elsewhere still are.
//!
//! Hardening: input larger than [`Limits::max_bytes`] is refused before parsing, nesting
//! deeper than [`Limits::max_depth`] stops the pass, any DOCTYPE (and so any entity
//! declaration) is refused, only UTF-8 is accepted, and no input can make it panic.

use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::cursor::Cursor;
use crate::declaration::parse_declaration;
use crate::document::{Arena, Document, NONE};
use crate::error::{Errors, SchemaError, Step, Stop};
use crate::kind::MessageKind;
use crate::schema::{self, Content, ElementDecl, SimpleType};
use crate::sequence::Sequence;
use crate::token::{check_value, push_collapsed, quote};
use crate::xml_chars::{
    decode_reference, is_name, is_namespace_prefix, is_xml_space, is_xml_space_byte,
};

/// Resource limits applied before and during parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting (the optional wrapper counts).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_depth: 16,
        }
    }
}

/// Validates `xml` as a message of kind `expected` (optionally inside `<transitRequest>`).
pub fn validate(
    xml: &[u8],
    expected: MessageKind,
    limits: &Limits,
) -> Result<Document, Vec<SchemaError>> {
    run(xml, Some(expected), limits)
}

/// Validates `xml` as whichever of the four messages its root element names.
pub fn validate_any(xml: &[u8], limits: &Limits) -> Result<Document, Vec<SchemaError>> {
    run(xml, None, limits)
}

/// The optional element around the message root.
const WRAPPER: &str = "transitRequest";

fn run(
    xml: &[u8],
    expected: Option<MessageKind>,
    limits: &Limits,
) -> Result<Document, Vec<SchemaError>> {
    if xml.len() > limits.max_bytes {
        return Err(vec![SchemaError {
            line: 1,
            column: 1,
            message: format!(
                "input is {} bytes, more than the limit of {} bytes",
                xml.len(),
                limits.max_bytes
            ),
        }]);
    }
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    let text = match std::str::from_utf8(xml) {
        Ok(text) => text,
        Err(e) => {
            let valid = xml.get(..e.valid_up_to()).unwrap_or_default();
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            let (line, column) = Cursor::default().at(prefix, prefix.len());
            return Err(vec![SchemaError {
                line,
                column,
                message: "input is not valid UTF-8 (only UTF-8 is accepted)".to_owned(),
            }]);
        }
    };
    let mut validator = Validator::new(text, expected, limits);
    // Errors are already recorded when a step stops the pass.
    let _ = validator.check_chars().and_then(|()| validator.parse());
    validator.finish()
}

/// An open element.
struct Frame {
    /// Byte range of the raw start-tag name, to match the end tag.
    name: Range<usize>,
    /// Its node in the arena, or [`NONE`].
    node: u32,
    /// Its last child node so far, or [`NONE`].
    last_child: u32,
    kind: FrameKind,
}

enum FrameKind {
    /// `<transitRequest>` around the message.
    Wrapper { has_message: bool },
    /// A complex element and where its sequence has got to.
    Complex {
        decl: &'static ElementDecl,
        sequence: Sequence,
    },
    /// A simple-type element collecting its collapsed value.
    Simple {
        decl: &'static ElementDecl,
        ty: &'static SimpleType,
        value_start: usize,
        pending_space: bool,
        /// False once a child element appeared (already reported).
        checkable: bool,
    },
    /// An element that is not validated (unknown, or content of one); only well-formedness.
    Skip,
}

/// One validation pass over a document.
struct Validator<'x, 'l> {
    text: &'x str,
    expected: Option<MessageKind>,
    limits: &'l Limits,
    cursor: Cursor,
    errors: Errors,
    stack: Vec<Frame>,
    arena: Arena,
    kind: Option<MessageKind>,
    root_seen: bool,
}

impl<'x, 'l> Validator<'x, 'l> {
    fn new(text: &'x str, expected: Option<MessageKind>, limits: &'l Limits) -> Self {
        Validator {
            text,
            expected,
            limits,
            cursor: Cursor::default(),
            errors: Errors::default(),
            stack: Vec::with_capacity(8),
            arena: Arena::for_text(text.len()),
            kind: None,
            root_seen: false,
        }
    }

    fn pos(&mut self, offset: usize) -> (u32, u32) {
        self.cursor.at(self.text, offset)
    }

    fn finish(self) -> Result<Document, Vec<SchemaError>> {
        match self.kind {
            Some(kind) if self.errors.is_empty() => Ok(self.arena.into_document(kind)),
            _ if self.errors.is_empty() => Err(vec![SchemaError {
                line: 1,
                column: 1,
                message: "no message element found".to_owned(),
            }]),
            _ => Err(self.errors.into_vec()),
        }
    }

    /// Every character must match the XML 1.0 `Char` production. Characters from
    /// references are checked where they are decoded.
    fn check_chars(&mut self) -> Step {
        let bytes = self.text.as_bytes();
        // Branch-free first pass (it vectorises); the exact scan runs only on a suspect byte.
        let suspect = bytes.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF)
        });
        if !suspect {
            return Ok(());
        }
        for (i, &b) in bytes.iter().enumerate() {
            let bad = match b {
                b'\t' | b'\n' | b'\r' => None,
                0..0x20 => Some(u32::from(b)),
                // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
                0xEF if bytes.get(i + 1) == Some(&0xBF) => match bytes.get(i + 2) {
                    Some(0xBE) => Some(0xFFFE),
                    Some(0xBF) => Some(0xFFFF),
                    _ => None,
                },
                _ => None,
            };
            if let Some(code) = bad {
                let at = self.pos(i);
                return self
                    .errors
                    .fatal(at, format!("character U+{code:04X} is not allowed in XML"));
            }
        }
        Ok(())
    }

    fn parse(&mut self) -> Step {
        let text = self.text;
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = false; // checked here, against our own stack
        config.check_comments = true;
        let mut first = true;
        loop {
            let start = offset(reader.buffer_position(), text);
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    let at = self.pos(offset(reader.error_position(), text));
                    return self.errors.fatal(at, format!("malformed XML: {e}"));
                }
            };
            let end = offset(reader.buffer_position(), text);
            let raw = text.get(start..end).unwrap_or_default();
            let is_first = std::mem::take(&mut first);
            match event {
                Event::Start(_) => self.start_tag(start, raw, false)?,
                Event::Empty(_) => self.start_tag(start, raw, true)?,
                Event::End(_) => self.end_tag(start, raw)?,
                Event::Text(_) => self.text(start, raw)?,
                Event::GeneralRef(_) => self.reference(start, raw)?,
                Event::CData(_) => self.cdata(start, raw)?,
                Event::Comment(_) => {}
                Event::PI(_) => self.processing_instruction(start, raw)?,
                Event::Decl(_) if is_first && start == 0 => self.declaration(raw)?,
                Event::Decl(_) => {
                    let at = self.pos(start);
                    return self.errors.fatal(
                        at,
                        "an XML declaration is allowed only at the start of the document"
                            .to_owned(),
                    );
                }
                Event::DocType(_) => {
                    let at = self.pos(start);
                    return self.errors.fatal(
                        at,
                        "DOCTYPE declarations (and so entity declarations) are not allowed"
                            .to_owned(),
                    );
                }
                Event::Eof => return self.eof(start),
            }
        }
    }

    fn eof(&mut self, at: usize) -> Step {
        let at = self.pos(at);
        if let Some(frame) = self.stack.last() {
            let name = self.text.get(frame.name.clone()).unwrap_or_default();
            return self.errors.fatal(
                at,
                format!("unexpected end of input: element {name} is not closed"),
            );
        }
        if !self.root_seen {
            return self
                .errors
                .fatal(at, "the document has no root element".to_owned());
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Elements

    fn start_tag(&mut self, at: usize, raw: &'x str, empty: bool) -> Step {
        let inner = raw.strip_prefix('<').unwrap_or(raw);
        let inner = if empty {
            inner.strip_suffix("/>")
        } else {
            inner.strip_suffix('>')
        };
        let inner = inner.unwrap_or_default();
        let name_len = inner
            .bytes()
            .position(is_xml_space_byte)
            .unwrap_or(inner.len());
        let (name, attributes) = inner.split_at_checked(name_len).unwrap_or((inner, ""));
        let name_range = at + 1..at + 1 + name.len();
        let position = self.pos(at);

        if self.stack.len() >= self.limits.max_depth {
            return self.errors.fatal(
                position,
                format!(
                    "elements are nested deeper than {} levels",
                    self.limits.max_depth
                ),
            );
        }
        let kind = self.open_element(name, position)?;
        let checked = !matches!(kind, FrameKind::Skip);
        self.check_attributes(name, attributes, at + 1 + name.len(), checked)?;

        let node = match &kind {
            FrameKind::Complex { decl, .. } | FrameKind::Simple { decl, .. } => {
                self.new_node(decl.name, position)
            }
            _ => NONE,
        };
        self.stack.push(Frame {
            name: name_range,
            node,
            last_child: NONE,
            kind,
        });
        if empty {
            self.close_element(at)
        } else {
            Ok(())
        }
    }

    /// Decides what the new element is, reporting schema errors about its place.
    fn open_element(&mut self, name: &'x str, position: (u32, u32)) -> Result<FrameKind, Stop> {
        let Some(parent) = self.stack.last_mut() else {
            if self.root_seen {
                return self
                    .errors
                    .fatal(
                        position,
                        format!("extra content after the root element: element {name}"),
                    )
                    .map(|()| FrameKind::Skip);
            }
            self.root_seen = true;
            if name == WRAPPER {
                return Ok(FrameKind::Wrapper { has_message: false });
            }
            return self.open_message(name, position);
        };
        let errors = &mut self.errors;
        match &mut parent.kind {
            FrameKind::Wrapper { has_message: true } => {
                errors.push(
                    position,
                    format!("unexpected element {name}: {WRAPPER} holds exactly one message"),
                )?;
                Ok(FrameKind::Skip)
            }
            FrameKind::Wrapper { has_message } => {
                *has_message = true;
                self.open_message(name, position)
            }
            FrameKind::Simple {
                decl, checkable, ..
            } => {
                *checkable = false;
                errors.push(
                    position,
                    format!(
                        "element {name} is not allowed inside {}, which holds a simple value",
                        decl.name
                    ),
                )?;
                Ok(FrameKind::Skip)
            }
            FrameKind::Skip => Ok(FrameKind::Skip),
            FrameKind::Complex { decl, sequence } => {
                match sequence.place(name, decl.name, position, errors)? {
                    Some(child) => Ok(content_frame(child, self.arena.values_len())),
                    None => Ok(FrameKind::Skip),
                }
            }
        }
    }

    fn open_message(&mut self, name: &str, position: (u32, u32)) -> Result<FrameKind, Stop> {
        let found = MessageKind::from_root(name);
        match (found, self.expected) {
            (Some(kind), None) => {
                self.kind = Some(kind);
                Ok(content_frame(
                    schema::message(kind),
                    self.arena.values_len(),
                ))
            }
            (Some(kind), Some(expected)) if kind == expected => {
                self.kind = Some(kind);
                Ok(content_frame(
                    schema::message(kind),
                    self.arena.values_len(),
                ))
            }
            (_, Some(expected)) => {
                self.errors.push(
                    position,
                    format!(
                        "root element {name} does not match the expected {}",
                        expected.root()
                    ),
                )?;
                Ok(FrameKind::Skip)
            }
            (None, None) => {
                self.errors.push(
                    position,
                    format!(
                        "unknown root element {name}: expected CD034A, CD037A, CD906A or CC917A, \
                         optionally inside {WRAPPER}"
                    ),
                )?;
                Ok(FrameKind::Skip)
            }
        }
    }

    fn new_node(&mut self, name: &'static str, position: (u32, u32)) -> u32 {
        // Known elements only open under a complex parent (or as the message root).
        let parent = self
            .stack
            .last_mut()
            .filter(|f| f.node != NONE)
            .map(|f| (f.node, &mut f.last_child));
        self.arena.add(name, position, parent)
    }

    fn end_tag(&mut self, at: usize, raw: &str) -> Step {
        let name = raw.get(2..raw.len().saturating_sub(1)).unwrap_or_default();
        let name = name.trim_end_matches(is_xml_space);
        let open = self
            .stack
            .last()
            .map(|frame| self.text.get(frame.name.clone()).unwrap_or_default());
        match open {
            Some(open) if open == name => self.close_element(at),
            Some(open) => {
                let position = self.pos(at);
                self.errors.fatal(
                    position,
                    format!("end tag </{name}> does not match the start tag <{open}>"),
                )
            }
            None => {
                let position = self.pos(at);
                self.errors.fatal(
                    position,
                    format!("end tag </{name}> has no matching start tag"),
                )
            }
        }
    }

    /// Closes the innermost element; `at` is its end tag (or its empty-element tag).
    fn close_element(&mut self, at: usize) -> Step {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        match frame.kind {
            FrameKind::Complex { decl, sequence } => {
                let position = self.pos(at);
                sequence.finish(decl.name, position, &mut self.errors)?;
            }
            FrameKind::Simple {
                decl,
                ty,
                value_start,
                checkable,
                ..
            } => {
                let (position, value) = self.arena.end_value(frame.node, value_start);
                if checkable && let Some(message) = check_value(decl.name, ty, value) {
                    self.errors.push(position, message)?;
                }
            }
            FrameKind::Wrapper { has_message: false } => {
                let position = self.pos(at);
                self.errors
                    .push(position, format!("{WRAPPER} holds no message"))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn check_attributes(
        &mut self,
        element: &str,
        attributes: &'x str,
        at: usize,
        checked: bool,
    ) -> Step {
        let mut rest = attributes;
        let mut offset = at;
        let mut seen: Vec<&str> = Vec::new();
        loop {
            let trimmed = rest.trim_start_matches(is_xml_space);
            let had_space = trimmed.len() != rest.len();
            offset += rest.len() - trimmed.len();
            rest = trimmed;
            if rest.is_empty() {
                return Ok(());
            }
            let attr_at = offset;
            let malformed = |v: &mut Self, what: &str| {
                let position = v.pos(attr_at);
                v.errors.fatal(
                    position,
                    format!("malformed attribute on element {element}: {what}"),
                )
            };
            if !had_space {
                return malformed(self, "attributes must be separated by whitespace");
            }
            let name_len = rest
                .find(|c| c == '=' || is_xml_space(c))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at_checked(name_len).unwrap_or((rest, ""));
            if !is_name(name) {
                return malformed(self, &format!("invalid attribute name {name:?}"));
            }
            let after = after.trim_start_matches(is_xml_space);
            let Some(after) = after.strip_prefix('=') else {
                return malformed(self, &format!("attribute {name} has no value"));
            };
            let after = after.trim_start_matches(is_xml_space);
            let Some(quote) = after.chars().next().filter(|&c| c == '"' || c == '\'') else {
                return malformed(
                    self,
                    &format!("the value of attribute {name} is not quoted"),
                );
            };
            let body = after.get(1..).unwrap_or_default();
            let Some(close) = body.find(quote) else {
                return malformed(
                    self,
                    &format!("the value of attribute {name} is not closed"),
                );
            };
            let value = body.get(..close).unwrap_or_default();
            if value.contains('<') {
                return malformed(self, &format!("'<' in the value of attribute {name}"));
            }
            let mut refs = value;
            while let Some(amp) = refs.find('&') {
                let tail = refs.get(amp + 1..).unwrap_or_default();
                let reference = tail.find(';').and_then(|semi| tail.get(..semi));
                if reference.and_then(decode_reference).is_none() {
                    return malformed(
                        self,
                        &format!("invalid reference in the value of attribute {name}"),
                    );
                }
                refs = tail;
            }
            if seen.contains(&name) {
                return malformed(self, &format!("attribute {name} appears twice"));
            }
            seen.push(name);
            if checked {
                let problem = if name == "xmlns" {
                    (!value.is_empty()).then(|| {
                        format!(
                            "element {element} declares the default namespace \"{value}\": \
                             the messages use no namespace"
                        )
                    })
                } else if let Some(prefix) = name.strip_prefix("xmlns:") {
                    (!is_namespace_prefix(prefix)).then(|| {
                        format!("invalid namespace prefix {prefix:?} on element {element}")
                    })
                } else {
                    Some(format!(
                        "attribute {name} is not allowed on element {element}"
                    ))
                };
                if let Some(problem) = problem {
                    let position = self.pos(attr_at);
                    self.errors.push(position, problem)?;
                }
            }
            // Skip past the closing quote.
            let consumed = rest.len() - body.len() + close + 1;
            offset += consumed;
            rest = rest.get(consumed..).unwrap_or_default();
        }
    }

    // -----------------------------------------------------------------------------------
    // Character data

    fn text(&mut self, at: usize, raw: &str) -> Step {
        if let Some(i) = find_cdata_end(raw.as_bytes()) {
            let position = self.pos(at + i);
            return self.errors.fatal(
                position,
                "the sequence ']]>' is not allowed in text".to_owned(),
            );
        }
        let first_char = raw.bytes().position(|b| !is_xml_space_byte(b));
        let Some(frame) = self.stack.last_mut() else {
            return match first_char {
                Some(i) => {
                    let position = self.pos(at + i);
                    self.errors.fatal(
                        position,
                        "text is not allowed outside the root element".to_owned(),
                    )
                }
                None => Ok(()),
            };
        };
        match &mut frame.kind {
            FrameKind::Simple {
                value_start,
                pending_space,
                ..
            } => {
                push_collapsed(self.arena.values_mut(), *value_start, pending_space, raw);
                Ok(())
            }
            FrameKind::Skip => Ok(()),
            kind => match first_char {
                Some(i) => {
                    let name = element_name(kind);
                    let shown = quote(
                        raw.get(i..)
                            .unwrap_or_default()
                            .trim_end_matches(is_xml_space),
                    );
                    let position = self.pos(at + i);
                    self.errors.push(
                        position,
                        format!("element {name} must not contain text, found {shown}"),
                    )
                }
                None => Ok(()),
            },
        }
    }

    fn reference(&mut self, at: usize, raw: &str) -> Step {
        let name = raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default();
        let Some(c) = decode_reference(name) else {
            let position = self.pos(at);
            let message = if name.starts_with('#') {
                format!("invalid character reference &{name};")
            } else {
                format!("undefined entity &{name}; (only the five predefined entities are allowed)")
            };
            return self.errors.fatal(position, message);
        };
        let Some(frame) = self.stack.last_mut() else {
            let position = self.pos(at);
            return self.errors.fatal(
                position,
                "a reference is not allowed outside the root element".to_owned(),
            );
        };
        match &mut frame.kind {
            FrameKind::Simple {
                value_start,
                pending_space,
                ..
            } => {
                let mut buf = [0; 4];
                push_collapsed(
                    self.arena.values_mut(),
                    *value_start,
                    pending_space,
                    c.encode_utf8(&mut buf),
                );
                Ok(())
            }
            FrameKind::Skip => Ok(()),
            _ if is_xml_space(c) => Ok(()),
            kind => {
                let name = element_name(kind);
                let position = self.pos(at);
                self.errors.push(
                    position,
                    format!("element {name} must not contain text, found {raw}"),
                )
            }
        }
    }

    fn cdata(&mut self, at: usize, raw: &str) -> Step {
        let content = raw
            .strip_prefix("<![CDATA[")
            .and_then(|r| r.strip_suffix("]]>"))
            .unwrap_or_default();
        let Some(frame) = self.stack.last_mut() else {
            let position = self.pos(at);
            return self.errors.fatal(
                position,
                "a CDATA section is not allowed outside the root element".to_owned(),
            );
        };
        match &mut frame.kind {
            FrameKind::Simple {
                value_start,
                pending_space,
                ..
            } => {
                push_collapsed(
                    self.arena.values_mut(),
                    *value_start,
                    pending_space,
                    content,
                );
                Ok(())
            }
            FrameKind::Skip => Ok(()),
            // xmllint refuses any CDATA section in element-only content, even a blank one.
            kind => {
                let name = element_name(kind);
                let position = self.pos(at);
                self.errors.push(
                    position,
                    format!(
                        "element {name} must not contain a CDATA section (element-only content)"
                    ),
                )
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Prolog

    fn processing_instruction(&mut self, at: usize, raw: &str) -> Step {
        let content = raw
            .strip_prefix("<?")
            .and_then(|r| r.strip_suffix("?>"))
            .unwrap_or_default();
        let target_len = content.find(is_xml_space).unwrap_or(content.len());
        let target = content.get(..target_len).unwrap_or_default();
        let problem = if !is_name(target) {
            Some(format!(
                "processing instruction has an invalid target {target:?}"
            ))
        } else if target.eq_ignore_ascii_case("xml") {
            Some(format!(
                "processing instruction target {target} is reserved"
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => {
                let position = self.pos(at);
                self.errors.fatal(position, problem)
            }
            None => Ok(()),
        }
    }

    /// `<?xml version="1.x" encoding="UTF-8" standalone="yes|no"?>`, in that order.
    fn declaration(&mut self, raw: &str) -> Step {
        let content = raw
            .strip_prefix("<?xml")
            .and_then(|r| r.strip_suffix("?>"))
            .unwrap_or_default();
        match parse_declaration(content) {
            Ok(()) => Ok(()),
            Err(problem) => self
                .errors
                .fatal((1, 1), format!("XML declaration: {problem}")),
        }
    }
}

/// The frame for the content of an element declared by `decl`.
fn content_frame(decl: &'static ElementDecl, value_start: usize) -> FrameKind {
    match decl.content {
        Content::Complex(children) => FrameKind::Complex {
            decl,
            sequence: Sequence::new(children),
        },
        Content::Simple(ty) => FrameKind::Simple {
            decl,
            ty,
            value_start,
            pending_space: false,
            checkable: true,
        },
    }
}

fn element_name(kind: &FrameKind) -> &'static str {
    match kind {
        FrameKind::Wrapper { .. } => WRAPPER,
        FrameKind::Complex { decl, .. } | FrameKind::Simple { decl, .. } => decl.name,
        FrameKind::Skip => "",
    }
}

/// The offset of the first `]]>`, which text may not contain.
fn find_cdata_end(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = bytes.get(from..)?.iter().position(|&b| b == b'>') {
        let gt = from + i;
        if gt >= 2 && bytes.get(gt - 2..gt) == Some(b"]]") {
            return Some(gt - 2);
        }
        from = gt + 1;
    }
    None
}

/// A reader position as an offset into `text`.
fn offset(position: u64, text: &str) -> usize {
    usize::try_from(position).map_or(text.len(), |p| p.min(text.len()))
}
