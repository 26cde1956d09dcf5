//! Validation of NCTS messages against the static schema tables, without libxml.
//!
//! One pass over quick-xml's low-level events checks well-formedness the way xmllint
//! judges it and validates the four message schemas at the same time, building a small
//! arena ([`Document`]) of the elements it accepted. Element names are `&'static str` from
//! the tables and values are ranges into one `String`, so a valid message costs a handful
//! of allocations whatever its size.
//!
//! Error policy: well-formedness errors are fatal (xmllint stops there too) and end the
//! pass; schema errors are collected and the pass goes on, so one call reports every
//! problem it can. After an ordering error inside a parent, that parent's sequence is no
//! longer checked, but values elsewhere still are.
//!
//! Hardening: input larger than [`Limits::max_bytes`] is refused before parsing, nesting
//! deeper than [`Limits::max_depth`] stops the pass, any DOCTYPE (and so any entity
//! declaration) is refused, only UTF-8 is accepted, and no input can make it panic.

use std::fmt;
use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::kind::MessageKind;
use crate::schema::{self, Content, ElementDecl, SimpleType};

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

/// A validated message: the elements as an arena, values collapsed.
#[derive(Debug, Clone)]
pub struct Document {
    kind: MessageKind,
    nodes: Vec<NodeData>,
    values: String,
}

#[derive(Debug, Clone)]
struct NodeData {
    name: &'static str,
    value: Range<u32>,
    first_child: u32,
    next_sibling: u32,
    line: u32,
    column: u32,
}

const NONE: u32 = u32::MAX;

impl Document {
    /// Which message this is.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The message root element (inside the `transitRequest` wrapper, if there was one).
    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            index: 0,
        }
    }

    fn data(&self, index: u32) -> Option<&NodeData> {
        self.nodes.get(usize::try_from(index).ok()?)
    }
}

/// One element of a [`Document`].
#[derive(Clone, Copy)]
pub struct Node<'a> {
    doc: &'a Document,
    index: u32,
}

impl<'a> Node<'a> {
    /// The element name.
    pub fn name(&self) -> &'static str {
        self.doc.data(self.index).map_or("", |n| n.name)
    }

    /// The collapsed value of a simple-type element; `""` for a complex one.
    pub fn text(&self) -> &'a str {
        let doc = self.doc;
        doc.data(self.index)
            .and_then(|n| {
                let range =
                    usize::try_from(n.value.start).ok()?..usize::try_from(n.value.end).ok()?;
                doc.values.get(range)
            })
            .unwrap_or("")
    }

    /// The child elements, in document order.
    pub fn children(&self) -> impl Iterator<Item = Node<'a>> + 'a {
        let doc = self.doc;
        let first = doc.data(self.index).map_or(NONE, |n| n.first_child);
        std::iter::successors(
            (first != NONE).then_some(Node { doc, index: first }),
            move |node| {
                let next = doc.data(node.index).map_or(NONE, |n| n.next_sibling);
                (next != NONE).then_some(Node { doc, index: next })
            },
        )
    }

    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<Node<'a>> {
        self.children().find(|child| child.name() == name)
    }

    /// The value of the first child element called `name`.
    pub fn child_text(&self, name: &str) -> Option<&'a str> {
        self.child(name).map(|child| child.text())
    }

    /// Line of the element's start tag.
    pub fn line(&self) -> u32 {
        self.doc.data(self.index).map_or(0, |n| n.line)
    }

    /// Column (in characters) of the `<` of the element's start tag.
    pub fn column(&self) -> u32 {
        self.doc.data(self.index).map_or(0, |n| n.column)
    }
}

impl fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .field("text", &self.text())
            .field("line", &self.line())
            .field("column", &self.column())
            .finish()
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
/// Beyond this many errors the pass stops; a megabyte of garbage should not cost more.
const MAX_ERRORS: usize = 100;

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

/// Why the pass stopped early; the error itself is already recorded.
struct Stop;
type Step = Result<(), Stop>;

/// Collected errors, capped at [`MAX_ERRORS`].
#[derive(Default)]
struct Errors(Vec<SchemaError>);

impl Errors {
    /// Records a schema error; the pass goes on unless the cap is reached.
    fn push(&mut self, (line, column): (u32, u32), message: String) -> Step {
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
    fn fatal(&mut self, (line, column): (u32, u32), message: String) -> Step {
        self.0.push(SchemaError {
            line,
            column,
            message,
        });
        Err(Stop)
    }
}

/// Turns byte offsets into 1-based line and column (in characters), moving forward.
#[derive(Clone, Copy)]
struct Cursor {
    offset: usize,
    line: u32,
    column: u32,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            offset: 0,
            line: 1,
            column: 1,
        }
    }
}

impl Cursor {
    fn at(&mut self, text: &str, offset: usize) -> (u32, u32) {
        if offset < self.offset {
            *self = Cursor::default();
        }
        let bytes = text.as_bytes();
        let end = offset.min(bytes.len());
        let span = bytes.get(self.offset..end).unwrap_or_default();
        // Fast path without CR: count LFs, then characters after the last one.
        if !span.contains(&b'\r') {
            let is_char_start = |b: &u8| b & 0xC0 != 0x80;
            let lines = span.iter().filter(|&&b| b == b'\n').count();
            let tail = match span.iter().rposition(|&b| b == b'\n') {
                Some(lf) => {
                    self.line = self
                        .line
                        .saturating_add(u32::try_from(lines).unwrap_or(u32::MAX));
                    self.column = 1;
                    span.get(lf + 1..).unwrap_or_default()
                }
                None => span,
            };
            let chars = tail.iter().filter(|b| is_char_start(b)).count();
            self.column = self
                .column
                .saturating_add(u32::try_from(chars).unwrap_or(u32::MAX));
            self.offset = end;
            return (self.line, self.column);
        }
        for i in self.offset..end {
            match bytes.get(i) {
                Some(b'\n') => self.newline(),
                // A CR alone ends a line; in CR LF the LF does.
                Some(b'\r') if bytes.get(i + 1) != Some(&b'\n') => self.newline(),
                Some(b'\r') => {}
                Some(&b) if b & 0xC0 != 0x80 => self.column = self.column.saturating_add(1),
                _ => {}
            }
        }
        self.offset = end;
        (self.line, self.column)
    }

    fn newline(&mut self) {
        self.line = self.line.saturating_add(1);
        self.column = 1;
    }
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

struct Validator<'x, 'l> {
    text: &'x str,
    expected: Option<MessageKind>,
    limits: &'l Limits,
    cursor: Cursor,
    errors: Errors,
    stack: Vec<Frame>,
    nodes: Vec<NodeData>,
    values: String,
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
            nodes: Vec::with_capacity(text.len() / 40 + 4),
            values: String::with_capacity(text.len() / 3),
            kind: None,
            root_seen: false,
        }
    }

    fn pos(&mut self, offset: usize) -> (u32, u32) {
        self.cursor.at(self.text, offset)
    }

    fn finish(self) -> Result<Document, Vec<SchemaError>> {
        match self.kind {
            Some(kind) if self.errors.0.is_empty() => Ok(Document {
                kind,
                nodes: self.nodes,
                values: self.values,
            }),
            _ if self.errors.0.is_empty() => Err(vec![SchemaError {
                line: 1,
                column: 1,
                message: "no message element found".to_owned(),
            }]),
            _ => Err(self.errors.0),
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
                    Some(child) => Ok(content_frame(child, self.values.len())),
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
                Ok(content_frame(schema::message(kind), self.values.len()))
            }
            (Some(kind), Some(expected)) if kind == expected => {
                self.kind = Some(kind);
                Ok(content_frame(schema::message(kind), self.values.len()))
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

    fn new_node(&mut self, name: &'static str, (line, column): (u32, u32)) -> u32 {
        let index = u32::try_from(self.nodes.len()).unwrap_or(NONE);
        let empty = u32::try_from(self.values.len()).unwrap_or(0);
        self.nodes.push(NodeData {
            name,
            value: empty..empty,
            first_child: NONE,
            next_sibling: NONE,
            line,
            column,
        });
        // Known elements only open under a complex parent (or as the message root).
        if let Some(parent) = self.stack.last_mut().filter(|f| f.node != NONE) {
            let link = if parent.last_child == NONE {
                self.nodes
                    .get_mut(parent.node as usize)
                    .map(|n| &mut n.first_child)
            } else {
                self.nodes
                    .get_mut(parent.last_child as usize)
                    .map(|n| &mut n.next_sibling)
            };
            if let Some(link) = link {
                *link = index;
            }
            parent.last_child = index;
        }
        index
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
                let value_end = self.values.len();
                let node = self.nodes.get_mut(frame.node as usize);
                let position = node.as_ref().map_or((0, 0), |n| (n.line, n.column));
                if let Some(node) = node {
                    node.value = u32::try_from(value_start).unwrap_or(0)
                        ..u32::try_from(value_end).unwrap_or(0);
                }
                if checkable {
                    let value = self.values.get(value_start..value_end).unwrap_or_default();
                    if let Some(message) = check_value(decl.name, ty, value) {
                        self.errors.push(position, message)?;
                    }
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
                push_collapsed(&mut self.values, *value_start, pending_space, raw);
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
                    &mut self.values,
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
                push_collapsed(&mut self.values, *value_start, pending_space, content);
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

/// The progress of a complex element's `xs:sequence`.
struct Sequence {
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
    fn new(children: &'static [ElementDecl]) -> Self {
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
    fn place(
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
    fn finish(&self, parent: &str, position: (u32, u32), errors: &mut Errors) -> Step {
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

/// The length and pattern facets of `ty` on a collapsed value.
fn check_value(element: &str, ty: &SimpleType, value: &str) -> Option<String> {
    let chars = value.chars().count();
    if !ty.length.allows(chars) {
        let rule = match ty.length {
            schema::Length::Exactly(n) => format!("exactly {n} required"),
            schema::Length::AtMost(n) => format!("at most {n} allowed"),
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
fn push_collapsed(values: &mut String, start: usize, pending_space: &mut bool, raw: &str) {
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

/// The character a reference (`lt`, `#65`, `#x41`, ... without `&` and `;`) stands for.
fn decode_reference(name: &str) -> Option<char> {
    let code = match name {
        "lt" => return Some('<'),
        "gt" => return Some('>'),
        "amp" => return Some('&'),
        "apos" => return Some('\''),
        "quot" => return Some('"'),
        _ => {
            if let Some(hex) = name.strip_prefix("#x") {
                if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                u32::from_str_radix(hex, 16).ok()?
            } else {
                let dec = name.strip_prefix('#')?;
                if dec.is_empty() || !dec.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                dec.parse::<u32>().ok()?
            }
        }
    };
    char::from_u32(code).filter(|&c| is_xml_char(c))
}

/// XML 1.0 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML `S`: the only characters the parser and `xs:token` treat as whitespace.
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_xml_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// XML 1.0 (fifth edition) `Name`.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// Whether `xmlns:{prefix}` is accepted as a namespace declaration. The prefix should be an
/// NCName, but libxml recovers from `xmlns:a:` and `xmlns:a:b` (a non-fatal namespace
/// error), so after the first colon comes nothing or a `Name`.
fn is_namespace_prefix(prefix: &str) -> bool {
    let (ncname, rest) = prefix.split_once(':').unwrap_or((prefix, ""));
    is_name(ncname) && (rest.is_empty() || is_name(rest))
}

/// Checks the pseudo-attributes after `<?xml`, as libxml does: `version` is `1.` followed
/// by digits; the encoding, if named, must be UTF-8.
fn parse_declaration(content: &str) -> Result<(), String> {
    let mut rest = content;
    let version = pseudo_attribute(&mut rest, "version", true)?.unwrap_or_default();
    let version_ok = version
        .strip_prefix("1.")
        .is_some_and(|minor| minor.bytes().all(|b| b.is_ascii_digit()));
    if !version_ok {
        return Err(format!("unsupported version {version:?}"));
    }
    if let Some(encoding) = pseudo_attribute(&mut rest, "encoding", false)? {
        let mut chars = encoding.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !well_formed {
            return Err(format!("invalid encoding name {encoding:?}"));
        }
        if !encoding.eq_ignore_ascii_case("UTF-8") && !encoding.eq_ignore_ascii_case("UTF8") {
            return Err(format!("encoding {encoding} is not supported, only UTF-8"));
        }
    }
    if let Some(standalone) = pseudo_attribute(&mut rest, "standalone", false)?
        && standalone != "yes"
        && standalone != "no"
    {
        return Err(format!(
            "standalone must be 'yes' or 'no', not {standalone:?}"
        ));
    }
    if !rest.trim_start_matches(is_xml_space).is_empty() {
        return Err("'?>' expected".to_owned());
    }
    Ok(())
}

/// Reads ` name = "value"` from the front of `rest`; `Ok(None)` if an optional one is absent.
fn pseudo_attribute<'a>(
    rest: &mut &'a str,
    name: &str,
    required: bool,
) -> Result<Option<&'a str>, String> {
    let trimmed = rest.trim_start_matches(is_xml_space);
    let had_space = trimmed.len() != rest.len();
    let Some(after) = trimmed.strip_prefix(name) else {
        return if required {
            Err(format!("{name} expected"))
        } else {
            Ok(None)
        };
    };
    if !had_space {
        return Err(format!("whitespace needed before {name}"));
    }
    let after = after.trim_start_matches(is_xml_space);
    let after = after
        .strip_prefix('=')
        .ok_or_else(|| format!("'=' expected after {name}"))?;
    let after = after.trim_start_matches(is_xml_space);
    let quote = after
        .chars()
        .next()
        .filter(|&c| c == '"' || c == '\'')
        .ok_or_else(|| format!("quoted value expected for {name}"))?;
    let body = after.get(1..).unwrap_or_default();
    let close = body
        .find(quote)
        .ok_or_else(|| format!("value of {name} is not closed"))?;
    *rest = body.get(close + 1..).unwrap_or_default();
    Ok(body.get(..close))
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

/// A value quoted for a message, shortened if long.
fn quote(value: &str) -> String {
    const SHOWN: usize = 40;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("'{}…'", value.get(..cut).unwrap_or_default()),
        None => format!("'{value}'"),
    }
}

/// A reader position as an offset into `text`.
fn offset(position: u64, text: &str) -> usize {
    usize::try_from(position).map_or(text.len(), |p| p.min(text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IE034: &str = "<CD034A>
  <SynIdeMES1>UNOC</SynIdeMES1>
  <SynVerNumMES2>3</SynVerNumMES2>
  <MesSenMES3>MDTP-GUA-614070cf24ee48e6a18997d1</MesSenMES3>
  <MesRecMES6>NTA.GB</MesRecMES6>
  <DatOfPreMES9>20210914</DatOfPreMES9>
  <TimOfPreMES10>0952</TimOfPreMES10>
  <IntConRefMES11>jh8v8a7z7hzmq3</IntConRefMES11>
  <MesIdeMES19>jh8v8a7z7hzmq3</MesIdeMES19>
  <MesTypMES20>GB034A</MesTypMES20>
  <GUAREF2>
    <GuaRefNumGRNREF21>22GB0000010000313</GuaRefNumGRNREF21>
    <GUAQUE>
      <QueIdeQUE1>2</QueIdeQUE1>
    </GUAQUE>
    <ACCDOC728>
      <AccCodCOD729>AC01</AccCodCOD729>
    </ACCDOC728>
  </GUAREF2>
</CD034A>
";

    fn check(xml: &str) -> Result<Document, Vec<SchemaError>> {
        validate(xml.as_bytes(), MessageKind::Ie034, &Limits::default())
    }

    fn messages(xml: &str) -> Vec<String> {
        match check(xml) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn reference_dir() -> std::path::PathBuf {
        let dir = std::env::var_os("GBAL_XSD_DIR").map_or_else(
            || {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/reference/xsd")
            },
            std::path::PathBuf::from,
        );
        assert!(
            dir.is_dir(),
            "reference XSD directory {} is missing",
            dir.display()
        );
        dir
    }

    #[test]
    fn valid_document_builds_the_tree() {
        let doc = check(IE034).expect("valid");
        assert_eq!(doc.kind(), MessageKind::Ie034);
        let root = doc.root();
        assert_eq!(root.name(), "CD034A");
        assert_eq!(root.text(), "");
        assert_eq!((root.line(), root.column()), (1, 1));
        assert_eq!(root.child_text("MesTypMES20"), Some("GB034A"));
        let guaref = root.child("GUAREF2").expect("GUAREF2");
        assert_eq!((guaref.line(), guaref.column()), (11, 3));
        let names: Vec<_> = guaref.children().map(|n| n.name()).collect();
        assert_eq!(names, ["GuaRefNumGRNREF21", "GUAQUE", "ACCDOC728"]);
        assert_eq!(
            guaref
                .child("ACCDOC728")
                .and_then(|n| n.child_text("AccCodCOD729")),
            Some("AC01")
        );
        assert_eq!(root.children().count(), 10);
        assert!(root.child("TRAPRIRC1").is_none());
    }

    #[test]
    fn tokens_are_collapsed_before_the_facets() {
        let xml = IE034
            .replace("<SynIdeMES1>UNOC<", "<SynIdeMES1>\n\t UNOC&#13;<")
            .replace(
                "MDTP-GUA-614070cf24ee48e6a18997d1",
                "  MDTP \t\r\n GUA <!-- c --> x<![CDATA[ y  ]]>&#32;",
            );
        let doc = check(&xml).expect("valid");
        assert_eq!(doc.root().child_text("SynIdeMES1"), Some("UNOC"));
        assert_eq!(doc.root().child_text("MesSenMES3"), Some("MDTP GUA x y"));

        let mut values = String::from("xx");
        let mut pending = false;
        for chunk in ["  a", " b  ", "c", "\t", "d  "] {
            push_collapsed(&mut values, 2, &mut pending, chunk);
        }
        assert_eq!(values, "xxa b c d");
    }

    #[test]
    fn length_counts_collapsed_characters() {
        let value = format!("A    B{}", "x".repeat(32));
        assert!(check(&IE034.replace("MDTP-GUA-614070cf24ee48e6a18997d1", &value)).is_ok());
        let errors = messages(&IE034.replace("MDTP-GUA-614070cf24ee48e6a18997d1", &"x".repeat(36)));
        assert_eq!(
            errors,
            ["line 4, column 3: MesSenMES3: value has 36 characters, at most 35 allowed"]
        );
        // A code point outside the BMP is one character.
        assert!(check(&IE034.replace(">AC01<", ">A\u{1F600}C1<")).is_ok());
    }

    #[test]
    fn pattern_errors_quote_the_value_and_pattern() {
        let errors = messages(&IE034.replace("20210914", "ABC12345"));
        assert_eq!(
            errors,
            ["line 6, column 3: DatOfPreMES9: value 'ABC12345' does not match [0-9]{6,8}"]
        );
    }

    #[test]
    fn missing_extra_and_misplaced_elements() {
        let errors = messages(&IE034.replace("  <MesTypMES20>GB034A</MesTypMES20>\n", ""));
        assert_eq!(
            errors,
            ["line 10, column 3: element MesTypMES20 is missing, expected after MesIdeMES19"]
        );
        let errors = messages(&IE034.replace("<SynIdeMES1>UNOC</SynIdeMES1>", ""));
        assert_eq!(
            errors,
            [
                "line 3, column 3: element SynIdeMES1 is missing, expected as the first child of CD034A"
            ]
        );
        let errors = messages(&IE034.replace(
            "<MesTypMES20>GB034A</MesTypMES20>",
            "<MesTypMES20>GB034A</MesTypMES20><MesTypMES20>GB034A</MesTypMES20>",
        ));
        assert_eq!(
            errors,
            ["line 10, column 36: element MesTypMES20 occurs more than once in CD034A"]
        );
        let errors = messages(&IE034.replace("<MesTypMES20>GB034A</MesTypMES20>", "<Foo/>"));
        assert_eq!(
            errors,
            ["line 10, column 3: unexpected element Foo in CD034A"]
        );
        let errors = messages(&IE034.replace(
            "<MesTypMES20>GB034A</MesTypMES20>",
            "<MesTypMES20>GB034A</MesTypMES20><SynIdeMES1>x</SynIdeMES1>",
        ));
        assert_eq!(
            errors,
            [
                "line 10, column 36: element SynIdeMES1 is out of order in CD034A: it must come before MesTypMES20",
                "line 10, column 36: SynIdeMES1: value has 1 character, exactly 4 required"
            ]
        );
        // Missing at the end of a parent is reported at its end tag.
        let errors = messages(&IE034.replace("<QueIdeQUE1>2</QueIdeQUE1>", ""));
        assert_eq!(
            errors,
            [
                "line 15, column 5: element QueIdeQUE1 is missing, expected as the first child of GUAQUE"
            ]
        );
    }

    #[test]
    fn too_many_repetitions() {
        let guaref = IE034
            .split_once("  <GUAREF2>")
            .and_then(|(_, rest)| rest.split_once("</CD034A>"))
            .map(|(body, _)| format!("<GUAREF2>{body}"))
            .expect("GUAREF2");
        let head = IE034
            .split_once("  <GUAREF2>")
            .map(|(h, _)| h)
            .expect("head");
        let doc = |n: usize| format!("{head}{}</CD034A>", guaref.repeat(n));
        assert!(check(&doc(99)).is_ok());
        let errors = check(&doc(100)).expect_err("100 GUAREF2");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .contains("element GUAREF2 occurs more than 99 times"),
            "{errors:?}"
        );
    }

    #[test]
    fn text_in_complex_and_children_in_simple_elements() {
        let errors = messages(&IE034.replace("<GUAREF2>", "<GUAREF2>oops"));
        assert_eq!(
            errors,
            ["line 11, column 12: element GUAREF2 must not contain text, found 'oops'"]
        );
        assert!(
            check(&IE034.replace("<GUAREF2>", "<GUAREF2>&#32;&#10;<!-- c --><?pi x?>")).is_ok()
        );
        assert!(check(&IE034.replace("<GUAREF2>", "<GUAREF2><![CDATA[ ]]>")).is_err());
        let errors = messages(&IE034.replace(">UNOC<", ">UN<b/>OC<"));
        assert_eq!(
            errors,
            [
                "line 2, column 17: element b is not allowed inside SynIdeMES1, which holds a simple value"
            ]
        );
    }

    #[test]
    fn doctype_is_refused() {
        let xml = format!("<!DOCTYPE x [<!ENTITY a \"b\">]>\n{IE034}");
        let errors = messages(&xml);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("line 1, column 1: DOCTYPE"),
            "{errors:?}"
        );
        assert!(check(&format!("<!DOCTYPE CD034A>{IE034}")).is_err());
    }

    #[test]
    fn size_and_depth_limits() {
        let limits = Limits {
            max_bytes: 100,
            max_depth: 16,
        };
        let errors = validate(IE034.as_bytes(), MessageKind::Ie034, &limits).expect_err("too big");
        assert!(
            errors[0]
                .message
                .contains("more than the limit of 100 bytes"),
            "{errors:?}"
        );

        let deep = format!("{}{}", "<CD034A>".repeat(17), "</CD034A>".repeat(17));
        let errors = messages(&deep);
        assert!(
            errors
                .last()
                .is_some_and(|e| e.ends_with("elements are nested deeper than 16 levels")),
            "{errors:?}"
        );
        let limits = Limits {
            max_bytes: 1 << 20,
            max_depth: 2,
        };
        let errors = validate(IE034.as_bytes(), MessageKind::Ie034, &limits).expect_err("deep");
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].column), (12, 5));
        // A huge, deep input is refused quickly and without a stack overflow.
        let huge = "<a>".repeat(300_000);
        assert!(validate(huge.as_bytes(), MessageKind::Ie034, &Limits::default()).is_err());
    }

    #[test]
    fn namespaces_and_attributes() {
        let errors = messages(&IE034.replace("<CD034A>", "<CD034A xmlns=\"urn:x\">"));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("declares the default namespace"),
            "{errors:?}"
        );
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xmlns=\"\">")).is_ok());
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xmlns:p='urn:x' >")).is_ok());
        let errors = messages(&IE034.replace("<SynIdeMES1>", "<SynIdeMES1 id=\"1\">"));
        assert_eq!(
            errors,
            ["line 2, column 15: attribute id is not allowed on element SynIdeMES1"]
        );
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xml:lang=\"en\">")).is_err());
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xmlns:p=\"a\"xmlns:q=\"b\">")).is_err());
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xmlns:p=\"a\" xmlns:p=\"a\">")).is_err());
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xmlns:p=\"a<b\">")).is_err());
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xmlns:p=\"a&b;\">")).is_err());
        assert!(check(&IE034.replace("<CD034A>", "<CD034A xmlns:p=\"a&amp;b\">")).is_ok());
        let prefixed = IE034
            .replace("<CD034A>", "<CD034A xmlns:p=\"urn:x\">")
            .replace("SynIdeMES1>", "p:SynIdeMES1>");
        assert!(check(&prefixed).is_err());
    }

    #[test]
    fn transit_request_wrapper_is_accepted() {
        let xml = format!("<transitRequest>\n{IE034}</transitRequest>\n");
        let doc = check(&xml).expect("wrapped");
        assert_eq!(doc.root().name(), "CD034A");
        assert_eq!((doc.root().line(), doc.root().column()), (2, 1));
        let errors = messages(&format!("<transitRequest>{IE034}{IE034}</transitRequest>"));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("holds exactly one message")),
            "{errors:?}"
        );
        assert!(check("<transitRequest></transitRequest>").is_err());
        assert!(check(&format!("<transitRequest a=\"1\">{IE034}</transitRequest>")).is_err());
    }

    #[test]
    fn root_must_match_the_expected_kind() {
        let errors = validate(IE034.as_bytes(), MessageKind::Ie037, &Limits::default())
            .expect_err("wrong kind");
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["line 1, column 1: root element CD034A does not match the expected CD037A"]
        );
        let doc = validate_any(IE034.as_bytes(), &Limits::default()).expect("any");
        assert_eq!(doc.kind(), MessageKind::Ie034);
        assert!(validate_any(b"<Foo/>", &Limits::default()).is_err());
    }

    #[test]
    fn well_formedness() {
        let bad = [
            "",
            "   ",
            "<CD034A>",
            "x<CD034A/>",
            &format!("{IE034}<CD034A/>"),
            &format!("{IE034}x"),
            &format!("{IE034}&#32;"),
            &IE034.replace("</CD034A>", "</CD034B>"),
            &IE034.replace("AC01", "AC]]>1"),
            &IE034.replace("AC01", "AC\u{c}1"),
            &IE034.replace("AC01", "AC\u{fffe}1"),
            &IE034.replace("AC01", "AC&#0;1"),
            &IE034.replace("AC01", "AC&#xD800;1"),
            &IE034.replace("AC01", "AC&#X41;1"),
            &IE034.replace("AC01", "AC&#x+41;1"),
            &IE034.replace("AC01", "AC&#99999999999;1"),
            &IE034.replace("AC01", "AC&nbsp;1"),
            &IE034.replace("AC01", "AC&amp1"),
            &format!("<!-- a -- b -->{IE034}"),
            &format!("<!-- a --->{IE034}"),
            &format!("<?XML x?>{IE034}"),
            &format!("<? x?>{IE034}"),
            &format!(" <?xml version=\"1.0\"?>{IE034}"),
            &format!("<?xml version=\"2.0\"?>{IE034}"),
            &format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{IE034}"),
            &format!("<?xml version=\"1.0\"encoding=\"UTF-8\"?>{IE034}"),
            &format!("<?xml encoding=\"UTF-8\" version=\"1.0\"?>{IE034}"),
            &format!("<?xml version=\"1.0\" standalone=\"maybe\"?>{IE034}"),
            &format!("<![CDATA[x]]>{IE034}"),
        ];
        for xml in bad {
            assert!(check(xml).is_err(), "accepted: {xml:?}");
        }
        let good = [
            format!("\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\" standalone='no' ?>{IE034}"),
            format!("<?xml version=\"1.10\"?>\n<!-- c --><?xml-stylesheet x?>{IE034}<?p:x?>\n"),
            IE034.replace("AC01", "AC&#x31;&#x0031;"),
            IE034.replace("\n", "\r\n"),
            IE034.replace("</CD034A>", "</CD034A \n>"),
        ];
        for xml in &good {
            assert!(
                check(xml).is_ok(),
                "refused: {xml:?}: {:?}",
                check(xml).err()
            );
        }
        let errors = validate(
            b"<CD034A>\xff</CD034A>",
            MessageKind::Ie034,
            &Limits::default(),
        )
        .expect_err("not UTF-8");
        assert_eq!((errors[0].line, errors[0].column), (1, 9));
    }

    #[test]
    fn columns_count_characters_and_lines_count_cr() {
        let xml = IE034.replace(
            "<SynIdeMES1>UNOC</SynIdeMES1>",
            "<!--éé--><SynIdeMES1>UNOCX</SynIdeMES1>",
        );
        let errors = check(&xml).expect_err("5 chars");
        assert_eq!((errors[0].line, errors[0].column), (2, 12));
        let errors = check(&xml.replace('\n', "\r")).expect_err("5 chars");
        assert_eq!((errors[0].line, errors[0].column), (2, 12));
    }

    #[test]
    fn invalid_examples_point_at_the_bad_element() {
        let dir = reference_dir().join("examples/invalid");
        let read = |name: &str| std::fs::read(dir.join(name)).expect("example file");
        let limits = Limits::default();

        let errors = validate(
            &read("IE034-access-code-5-chars.xml"),
            MessageKind::Ie034,
            &limits,
        )
        .expect_err("5 chars");
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["line 23, column 7: AccCodCOD729: value has 5 characters, exactly 4 required"]
        );
        let errors = validate(&read("IE034-bad-date.xml"), MessageKind::Ie034, &limits)
            .expect_err("bad date");
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["line 6, column 3: DatOfPreMES9: value 'ABC12345' does not match [0-9]{6,8}"]
        );
        let errors = validate(
            &read("IE037-missing-MesTypMES20.xml"),
            MessageKind::Ie037,
            &limits,
        )
        .expect_err("missing");
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["line 11, column 3: element MesTypMES20 is missing, expected after MesIdeMES19"]
        );
        let errors = validate(
            &read("IE037-negative-balance.xml"),
            MessageKind::Ie037,
            &limits,
        )
        .expect_err("negative");
        assert_eq!((errors[0].line, errors[0].column), (28, 7));
        let errors = validate(
            &read("IE906-test-fixture-style-too-long-fields.xml"),
            MessageKind::Ie906,
            &limits,
        )
        .expect_err("too long");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            validate(
                &read("IE037-no-BalEXP3-schema-valid-but-unparseable.xml"),
                MessageKind::Ie037,
                &limits
            )
            .is_ok()
        );
    }

    #[test]
    fn valid_examples_pass() {
        let dir = reference_dir().join("examples");
        for (file, kind) in [
            ("IE034-example.xml", MessageKind::Ie034),
            ("IE037-example.xml", MessageKind::Ie037),
            ("IE906-example.xml", MessageKind::Ie906),
            (
                "IE906-unsupported-guarantee-type-example.xml",
                MessageKind::Ie906,
            ),
            ("IE917-example.xml", MessageKind::Ie917),
            ("IE034-wire-body-example.txt", MessageKind::Ie034),
        ] {
            let xml = std::fs::read(dir.join(file)).expect("example file");
            let doc = validate(&xml, kind, &Limits::default());
            assert!(doc.is_ok(), "{file}: {:?}", doc.err());
        }
    }
}
