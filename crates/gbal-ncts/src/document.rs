//! A validated message as a small arena: elements linked first-child / next-sibling, their
//! collapsed values as ranges into one `String`. Element names are `&'static str` from the
//! schema tables, so a document costs a handful of allocations whatever its size.

use std::fmt;
use std::ops::Range;

use crate::kind::MessageKind;

/// A validated message: the elements as an arena, values collapsed.
#[derive(Debug, Clone)]
pub struct Document {
    kind: MessageKind,
    nodes: Vec<NodeData>,
    values: String,
}

/// One element in the arena.
#[derive(Debug, Clone)]
struct NodeData {
    name: &'static str,
    value: Range<u32>,
    first_child: u32,
    next_sibling: u32,
    line: u32,
    column: u32,
}

/// "No node": the absent child, sibling or parent link.
pub(crate) const NONE: u32 = u32::MAX;

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

/// The nodes and values of a document while a validation pass builds it.
pub(crate) struct Arena {
    nodes: Vec<NodeData>,
    values: String,
}

impl Arena {
    /// An empty arena sized for a message of `text_len` bytes.
    pub(crate) fn for_text(text_len: usize) -> Self {
        Arena {
            nodes: Vec::with_capacity(text_len / 40 + 4),
            values: String::with_capacity(text_len / 3),
        }
    }

    /// The collapsed values so far; a simple element appends its value at the end.
    pub(crate) fn values_mut(&mut self) -> &mut String {
        &mut self.values
    }

    /// Where the next value will start.
    pub(crate) fn values_len(&self) -> usize {
        self.values.len()
    }

    /// Adds an element at `(line, column)` and returns its index. `parent` is the parent's
    /// index and its last child so far (updated here), when the element has a parent in the
    /// arena.
    pub(crate) fn add(
        &mut self,
        name: &'static str,
        (line, column): (u32, u32),
        parent: Option<(u32, &mut u32)>,
    ) -> u32 {
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
        if let Some((parent, last_child)) = parent {
            let link = if *last_child == NONE {
                self.nodes
                    .get_mut(parent as usize)
                    .map(|n| &mut n.first_child)
            } else {
                self.nodes
                    .get_mut(*last_child as usize)
                    .map(|n| &mut n.next_sibling)
            };
            if let Some(link) = link {
                *link = index;
            }
            *last_child = index;
        }
        index
    }

    /// Ends the value of simple element `node`, which began at `start` in the values: returns
    /// the element's position and its collapsed value.
    pub(crate) fn end_value(&mut self, node: u32, start: usize) -> ((u32, u32), &str) {
        let end = self.values.len();
        let data = self.nodes.get_mut(node as usize);
        let position = data.as_ref().map_or((0, 0), |n| (n.line, n.column));
        if let Some(data) = data {
            data.value = u32::try_from(start).unwrap_or(0)..u32::try_from(end).unwrap_or(0);
        }
        (position, self.values.get(start..end).unwrap_or_default())
    }

    /// The finished document of kind `kind`.
    pub(crate) fn into_document(self, kind: MessageKind) -> Document {
        Document {
            kind,
            nodes: self.nodes,
            values: self.values,
        }
    }
}
