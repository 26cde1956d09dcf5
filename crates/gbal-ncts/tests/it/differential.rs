//! Differential test: gbal's validator and `xmllint --schema` must agree on every document.
//!
//! A seeded generator builds documents of all four kinds from the schema tables: valid ones
//! with random optional elements, values and formatting (whitespace that collapses away,
//! comments, CDATA, character references), and mutated ones (elements dropped, repeated,
//! swapped or unknown, values one character off or breaking their pattern, text where only
//! elements may be, and well-formedness breakage). xmllint judges each against the real XSD.
//! Set `GBAL_DIFF_SEED` to replay a run and `GBAL_DIFF_CASES` to change the count per kind.
//!
//! A second test checks the tables themselves against the XSD files, fact by fact.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::time::Instant;

use gbal_ncts::schema::{self, Content, ElementDecl, Length, Pattern, SimpleType};
use gbal_ncts::{Limits, MessageKind, validate, validate_any};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use gbal_testkit::reference;

use crate::support::xmllint_verdicts;

/// Documents per message kind unless `GBAL_DIFF_CASES` says otherwise.
const CASES_PER_KIND: usize = 1250;

#[test]
fn gbal_agrees_with_xmllint() {
    let seed = std::env::var("GBAL_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            nanos as u64
        });
    let cases = std::env::var("GBAL_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES_PER_KIND);
    eprintln!("differential: seed {seed} (GBAL_DIFF_SEED={seed} replays it), {cases} per kind");
    let started = Instant::now();
    let limits = Limits::default();
    let mut rng = Rng::new(seed);
    let mut mismatches = Vec::new();
    let mut total = 0;
    let mut accepted = 0;
    for kind in MessageKind::ALL {
        let cases: Vec<Case> = (0..cases).map(|_| generate(&mut rng, kind)).collect();
        let docs: Vec<String> = cases.iter().map(|c| c.xmllint_doc.clone()).collect();
        let expected = xmllint_verdicts(kind, &docs);
        for (case, xmllint) in cases.iter().zip(expected) {
            total += 1;
            assert!(
                case.gbal_doc.len() < limits.max_bytes,
                "generated document too large"
            );
            let result = if case.any_kind {
                validate_any(case.gbal_doc.as_bytes(), &limits)
            } else {
                validate(case.gbal_doc.as_bytes(), kind, &limits)
            };
            if let Ok(doc) = &result {
                assert_eq!(doc.kind(), kind);
                assert_eq!(doc.root().name(), kind.root());
            }
            let gbal = result.is_ok();
            accepted += usize::from(gbal);
            if gbal != xmllint {
                mismatches.push((
                    kind,
                    case.gbal_doc.clone(),
                    case.mutations.clone(),
                    xmllint,
                    result.err().unwrap_or_default(),
                ));
            }
        }
    }
    eprintln!(
        "differential: {total} documents ({accepted} valid) agreed in {:.1?}, {} mismatches",
        started.elapsed(),
        mismatches.len()
    );
    if !mismatches.is_empty() {
        let mut report = String::new();
        for (kind, doc, mutations, xmllint, errors) in mismatches.iter().take(5) {
            let doc: String = doc.chars().take(6000).collect();
            let _ = writeln!(
                report,
                "---- {kind:?} [{}]: xmllint says {}, gbal says {}\n{doc}\n-- gbal errors: {errors:#?}\n",
                mutations.join(", "),
                verdict(*xmllint),
                verdict(!*xmllint),
            );
        }
        panic!(
            "{} of {total} documents judged differently by gbal and xmllint (seed {seed}; \
             rerun with GBAL_DIFF_SEED={seed}):\n{report}",
            mismatches.len()
        );
    }
    // Both outcomes must be well represented, or the test proves little.
    assert!(
        total < 400 || (accepted > total / 5 && accepted < total * 4 / 5),
        "{accepted} of {total} valid"
    );
}

fn verdict(valid: bool) -> &'static str {
    if valid { "valid" } else { "invalid" }
}

// ---------------------------------------------------------------------------------------
// Generator

/// A small deterministic PRNG (SplitMix64): the seed alone reproduces a run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

/// One generated document: what gbal sees (possibly wrapped) and what xmllint sees.
struct Case {
    gbal_doc: String,
    xmllint_doc: String,
    any_kind: bool,
    mutations: Vec<&'static str>,
}

/// An element being generated. `decl` is `None` for elements the schema does not know.
#[derive(Clone)]
struct El {
    name: String,
    decl: Option<&'static ElementDecl>,
    attrs: String,
    body: Body,
    /// Markup appended verbatim after the value or the children.
    raw_tail: String,
    end_name: Option<String>,
}

#[derive(Clone)]
enum Body {
    Value(String),
    Children(Vec<Item>),
}

#[derive(Clone)]
enum Item {
    El(El),
    /// Verbatim markup among the children (comments, text, unknown elements...).
    Raw(String),
}

fn generate(rng: &mut Rng, kind: MessageKind) -> Case {
    let mut root = build(rng, schema::message(kind));
    let mut mutations = Vec::new();
    let mut prolog = String::new();
    let mut epilog = String::new();
    if !rng.one_in(3) {
        for _ in 0..rng.range(1, 2) {
            mutations.push(mutate(rng, &mut root, &mut prolog, &mut epilog));
        }
    }
    if prolog.is_empty() {
        prolog = rng
            .pick_str(&[
                "",
                "",
                "",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<?xml version='1.0'?>",
                "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>\r\n",
                "<!-- balance -->\n",
                "\n\t<?gbal note?>\n",
            ])
            .to_string();
    }
    if epilog.is_empty() {
        epilog = rng
            .pick_str(&["", "\n", "\n<!-- end -->\n", " \r\n\t", "<?done?>"])
            .to_string();
    }
    let style = *rng.pick(&[Style::Pretty, Style::Pretty, Style::Compact, Style::Messy]);
    let mut body = String::new();
    render(rng, &root, 0, style, &mut body);
    let xmllint_doc = format!("{prolog}{body}{epilog}");
    // The wrapper is gbal's addition: xmllint sees the bare message.
    let gbal_doc = if rng.one_in(20) && !prolog.starts_with(['<', '\u{feff}']) {
        mutations.push("wrapped");
        format!("{prolog}<transitRequest>{body}</transitRequest>{epilog}")
    } else {
        xmllint_doc.clone()
    };
    Case {
        gbal_doc,
        xmllint_doc,
        any_kind: rng.one_in(8),
        mutations,
    }
}

/// A valid element for `decl`, with random optional content.
fn build(rng: &mut Rng, decl: &'static ElementDecl) -> El {
    let body = match decl.content {
        Content::Simple(ty) => Body::Value(valid_value(rng, ty)),
        Content::Complex(children) => {
            let mut items = Vec::new();
            for child in children {
                let most = child.max_occurs.min(3) as usize;
                let count = if child.min_occurs == 0 {
                    if rng.one_in(2) { 0 } else { rng.range(1, most) }
                } else {
                    rng.range(
                        child.min_occurs as usize,
                        most.max(child.min_occurs as usize),
                    )
                };
                for _ in 0..count {
                    items.push(Item::El(build(rng, child)));
                }
            }
            Body::Children(items)
        }
    };
    El {
        name: decl.name.to_owned(),
        decl: Some(decl),
        attrs: String::new(),
        body,
        raw_tail: String::new(),
        end_name: None,
    }
}

const TEXT_POOL: &[char] = &[
    'A', 'B', 'C', 'G', 'K', 'M', 'N', 'T', 'X', 'Z', 'a', 'b', 'e', 'h', 'q', 'x', 'z', '0', '1',
    '2', '5', '7', '9', '-', '.', '/', '(', ')', '&', '<', '>', '"', '\'', '|', ':', ',', '+', '_',
    '#', 'é', 'ß', 'ü', '中', '😀', '\u{a0}', '\u{2003}',
];

/// `len` characters from [`TEXT_POOL`], with single inner spaces, so the text is already
/// collapsed and has exactly `len` characters.
fn text(rng: &mut Rng, len: usize) -> String {
    let mut out = String::new();
    let mut previous_space = true;
    for i in 0..len {
        if i > 0 && i + 1 < len && !previous_space && rng.one_in(6) {
            out.push(' ');
            previous_space = true;
        } else {
            out.push(*rng.pick(TEXT_POOL));
            previous_space = false;
        }
    }
    out
}

fn digits(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

fn letters(rng: &mut Rng, len: usize) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..len).map(|_| char::from(*rng.pick(LETTERS))).collect()
}

fn length_between(rng: &mut Rng, min: usize, max: usize) -> usize {
    match rng.below(4) {
        0 | 1 => rng.range(min, max.min(min + 9)),
        2 => max,
        _ => rng.range(min, max),
    }
}

fn valid_value(rng: &mut Rng, ty: &SimpleType) -> String {
    match ty.pattern {
        Pattern::AnyChars { min, max } => {
            let len = length_between(rng, min.into(), max.into());
            text(rng, len)
        }
        Pattern::Letters(n) => letters(rng, n.into()),
        Pattern::NoDigits => rng
            .pick_str(&["A", "z", "|", "é", "😀", "\u{a0}", "-", "&", "<"])
            .to_string(),
        Pattern::Digits { min, max } => {
            let len = rng.range(min.into(), max.into());
            digits(rng, len)
        }
        Pattern::Time => {
            let hour = rng.below(24);
            let minute = rng.below(60);
            format!("{hour:02}{minute:02}")
        }
        Pattern::Date => {
            let year = rng.range(1000, 2999);
            let month = rng.range(1, 12);
            let day = rng.range(1, 31);
            if rng.one_in(10) {
                // The pattern's `[1|2]` class also takes a literal '|'.
                format!("{year}{month:02}|{}", rng.below(10))
            } else {
                format!("{year}{month:02}{day:02}")
            }
        }
        Pattern::Decimal => match rng.below(5) {
            0 => "0".to_owned(),
            1 => {
                let frac = rng.range(1, 2);
                format!("0.{}", digits(rng, frac))
            }
            2 | 3 => {
                let frac = rng.range(1, 2);
                let int = rng.range(1, 15 - frac);
                format!(
                    "{}{}.{}",
                    rng.range(1, 9),
                    digits(rng, int - 1),
                    digits(rng, frac)
                )
            }
            _ => {
                let int = length_between(rng, 1, 15);
                format!("{}{}", rng.range(1, 9), digits(rng, int - 1))
            }
        },
    }
}

/// A value that is probably invalid for `ty`, or a tricky valid one.
fn odd_value(rng: &mut Rng, ty: &SimpleType) -> (String, &'static str) {
    let limit = match ty.length {
        Length::Exactly(n) | Length::AtMost(n) => usize::from(n),
    };
    let same_kind = |rng: &mut Rng, len: usize| match ty.pattern {
        Pattern::Letters(_) => letters(rng, len),
        Pattern::NoDigits => "ab".chars().take(len).collect(),
        Pattern::Digits { .. } | Pattern::Time | Pattern::Date => digits(rng, len),
        Pattern::Decimal => format!("1{}", digits(rng, len.saturating_sub(1))),
        Pattern::AnyChars { .. } => text(rng, len),
    };
    match rng.below(6) {
        0 => (same_kind(rng, limit + 1), "value one character too long"),
        1 => {
            let short = match ty.length {
                Length::Exactly(n) => usize::from(n) - 1,
                Length::AtMost(_) => match ty.pattern {
                    Pattern::Digits { min, .. } => usize::from(min) - 1,
                    _ => 0,
                },
            };
            (same_kind(rng, short), "value one character too short")
        }
        2 => {
            let mut value = valid_value(rng, ty);
            let at = rng.below(value.chars().count().max(1));
            let replacement = match ty.pattern {
                Pattern::Letters(_) => '1',
                Pattern::NoDigits => '5',
                Pattern::Decimal => *rng.pick(&['-', ',', 'a', '.']),
                _ => 'a',
            };
            value = value
                .chars()
                .enumerate()
                .map(|(i, c)| if i == at { replacement } else { c })
                .collect();
            (value, "value with a character breaking the pattern")
        }
        3 => {
            let value = match ty.pattern {
                Pattern::Time => rng
                    .pick_str(&["2400", "1960", "2360", "0099", "3000", "0000", "2359"])
                    .to_string(),
                Pattern::Date => rng
                    .pick(&[
                        "20211301", "20210001", "20210100", "20210132", "20210231", "2021|011",
                        "202101|9", "30000101", "19991231", "2021013|",
                    ])
                    .to_string(),
                Pattern::Decimal => rng
                    .pick(&[
                        "-5.00",
                        "01",
                        "00",
                        "1.",
                        ".5",
                        "1.234",
                        "0.555",
                        "1234567890123456",
                        "123456789012345",
                        "12345678901234.5",
                        "123456789012345.5",
                        "+1",
                        "1e3",
                        "1 2",
                        "0.0",
                        "9.99",
                    ])
                    .to_string(),
                _ => valid_value(rng, ty),
            };
            (value, "value at a pattern boundary")
        }
        4 => {
            let value = valid_value(rng, ty);
            (format!(" \t\n{value}\r\n "), "value padded with whitespace")
        }
        _ => {
            let value = valid_value(rng, ty);
            (format!("{value}{value}"), "value doubled")
        }
    }
}

/// Paths (child indexes) to every element below the root.
fn paths(el: &El, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    if let Body::Children(items) = &el.body {
        for (i, item) in items.iter().enumerate() {
            if let Item::El(child) = item {
                prefix.push(i);
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
    }
}

fn get<'a>(root: &'a El, path: &[usize]) -> &'a El {
    let mut el = root;
    for &i in path {
        if let Body::Children(items) = &el.body
            && let Item::El(child) = &items[i]
        {
            el = child;
        }
    }
    el
}

fn at_path<'a>(root: &'a mut El, path: &[usize]) -> &'a mut El {
    let mut el = root;
    for &i in path {
        el = match &mut el.body {
            Body::Children(items) => match &mut items[i] {
                Item::El(child) => child,
                Item::Raw(_) => unreachable!("paths only lead to elements"),
            },
            Body::Value(_) => unreachable!("paths only lead through complex elements"),
        };
    }
    el
}

fn children_of<'a>(root: &'a mut El, parent: &[usize]) -> &'a mut Vec<Item> {
    match &mut at_path(root, parent).body {
        Body::Children(items) => items,
        Body::Value(_) => unreachable!("parent of an element is complex"),
    }
}

/// Applies one random mutation and names it.
fn mutate(rng: &mut Rng, root: &mut El, prolog: &mut String, epilog: &mut String) -> &'static str {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    let path = rng.pick(&all).clone();
    let (parent, index) = path.split_at(path.len() - 1);
    let index = index[0];
    let (simple, complex): (Vec<&Vec<usize>>, Vec<&Vec<usize>>) = all
        .iter()
        .partition(|p| matches!(get(root, p).body, Body::Value(_)));
    match rng.below(26) {
        0..=2 => {
            children_of(root, parent).remove(index);
            "element dropped"
        }
        3 | 4 => {
            let items = children_of(root, parent);
            let copy = items[index].clone();
            items.insert(index + 1, copy);
            "element repeated"
        }
        5 => {
            // Repeat an element to exactly one more than its maxOccurs, when that stays small.
            let items = children_of(root, parent);
            let Item::El(el) = &items[index] else {
                return "nothing";
            };
            let Some(max) = el
                .decl
                .map(|d| usize::from(d.max_occurs))
                .filter(|&m| m < 1000)
            else {
                return "nothing";
            };
            let name = el.name.clone();
            let copy = items[index].clone();
            let present = items
                .iter()
                .filter(|i| matches!(i, Item::El(e) if e.name == name))
                .count();
            let beyond = rng.one_in(2);
            let target = if beyond { max + 1 } else { max };
            for _ in present..target {
                items.insert(index, copy.clone());
            }
            if beyond {
                "repeated beyond maxOccurs"
            } else {
                "repeated up to maxOccurs"
            }
        }
        6 | 7 => {
            let items = children_of(root, parent);
            if index + 1 < items.len() {
                items.swap(index, index + 1);
            }
            "siblings swapped"
        }
        8..=13 => {
            let Some(path) = (!simple.is_empty()).then(|| (*rng.pick(&simple)).clone()) else {
                return "nothing";
            };
            let el = at_path(root, &path);
            let Some(Content::Simple(ty)) = el.decl.map(|d| d.content) else {
                return "nothing";
            };
            let (value, what) = odd_value(rng, ty);
            el.body = Body::Value(value);
            what
        }
        14 => {
            let target = if complex.is_empty() || rng.one_in(3) {
                parent.to_vec()
            } else {
                (*rng.pick(&complex)).clone()
            };
            let items = children_of(root, &target);
            let at = rng.below(items.len() + 1);
            let unknown = rng.pick_str(&[
                "<Foo>x</Foo>",
                "<Unknown/>",
                "<synIdeMES1>UNOC</synIdeMES1>",
                "<p:X xmlns:p=\"urn:x\"/>",
            ]);
            items.insert(at, Item::Raw(unknown.to_string()));
            "unknown element inserted"
        }
        15 => {
            let target = if complex.is_empty() {
                Vec::new()
            } else {
                (*rng.pick(&complex)).clone()
            };
            let items = children_of(root, &target);
            let at = rng.below(items.len() + 1);
            let markup = rng.pick(&[
                "junk",
                " x ",
                "&amp;",
                "&#32;&#9;&#10;&#13;",
                "<![CDATA[ ]]>",
                "<![CDATA[]]>",
                "<!-- fine -->",
                "<?pi fine?>",
                "\u{a0}",
                " \t\r\n ",
            ]);
            items.insert(at, Item::Raw(markup.to_string()));
            "text or markup inserted in a complex element"
        }
        16 => {
            let Some(path) = (!simple.is_empty()).then(|| (*rng.pick(&simple)).clone()) else {
                return "nothing";
            };
            let el = at_path(root, &path);
            el.raw_tail = rng
                .pick_str(&[
                    "<b/>",
                    "&nbsp;",
                    "&#1;",
                    "&#xFFFE;",
                    "&#x1F600;",
                    "]]>",
                    "\u{1}",
                    "<!---->",
                    "<!-- a -- b -->",
                    "<?x?>",
                    "<![CDATA[<&>]]>",
                    "&#X41;",
                    "&#65;",
                ])
                .to_string();
            "markup appended to a value"
        }
        17 | 18 => {
            let target = if rng.one_in(4) { &[][..] } else { &path[..] };
            let el = at_path(root, target);
            el.attrs = rng
                .pick_str(&[
                    " id=\"1\"",
                    " xmlns:p=\"urn:x\"",
                    " xmlns:p='urn:x' xmlns:q=\"\"",
                    " xmlns=\"\"",
                    " xmlns=\"urn:x\"",
                    " xml:lang=\"en\"",
                    " xmlns:p=\"a<b\"",
                    " xmlns:p=\"a\"xmlns:q=\"b\"",
                    " xmlns:p=\"a\" xmlns:p=\"a\"",
                    " xmlns:p=\"a&amp;b&#x20;\"",
                    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"false\"",
                    " \n",
                ])
                .to_string();
            "attribute added"
        }
        19 => {
            let el = at_path(root, &path);
            el.end_name = Some(el.name.to_lowercase());
            "end tag misspelt"
        }
        20 => {
            *prolog = rng
                .pick_str(&[
                    "<?xml version=\"1.1\"?>",
                    "<?xml version=\"1.\"?>",
                    "<?xml version=\"2.0\"?>",
                    "<?xml version=\"1.0\" encoding=\"UTF8\"?>",
                    "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
                    "<?xml version=\"1.0\"encoding=\"UTF-8\"?>",
                    "<?xml encoding=\"UTF-8\" version=\"1.0\"?>",
                    "<?xml version=\"1.0\" standalone=\"maybe\"?>",
                    " <?xml version=\"1.0\"?>",
                    "<?XML x?>",
                    "<?xml-stylesheet href=\"x\"?>",
                    "<!-- a -- b -->",
                    "<!-- ok --->",
                    "x",
                    "&#32;",
                    "<![CDATA[]]>",
                ])
                .to_string();
            "prolog changed"
        }
        21 => {
            *epilog = rng
                .pick_str(&[
                    "x",
                    "<CD034A/>",
                    "&#32;",
                    "<!-- ok -->",
                    "<![CDATA[x]]>",
                    "<?pi?>",
                    "\u{feff}",
                ])
                .to_string();
            "epilog changed"
        }
        22 => {
            root.end_name = Some(String::new());
            "root left unclosed"
        }
        23 => {
            let el = at_path(root, &path);
            el.name = format!("{}X", el.name);
            el.decl = None;
            "element renamed"
        }
        _ => {
            // Whitespace and comments inside a value are fine for tokens.
            let Some(path) = (!simple.is_empty()).then(|| (*rng.pick(&simple)).clone()) else {
                return "nothing";
            };
            let el = at_path(root, &path);
            if let Body::Value(value) = &mut el.body {
                *value = format!("\n  {value}  \t");
            }
            el.raw_tail = rng
                .pick_str(&["<!-- c -->", "<?pi?>", "&#32;", "<![CDATA[ ]]>"])
                .to_string();
            "whitespace around a value"
        }
    }
}

#[derive(Clone, Copy)]
enum Style {
    Pretty,
    Compact,
    Messy,
}

fn separator(rng: &mut Rng, style: Style, depth: usize, out: &mut String) {
    match style {
        Style::Pretty => {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
        Style::Compact => {}
        Style::Messy => {
            for _ in 0..rng.below(4) {
                out.push_str(rng.pick_str(&[" ", "\t", "\n", "\r\n", "\r"]));
            }
        }
    }
}

fn render(rng: &mut Rng, el: &El, depth: usize, style: Style, out: &mut String) {
    out.push('<');
    out.push_str(&el.name);
    out.push_str(&el.attrs);
    let end_name = el.end_name.as_deref().unwrap_or(&el.name);
    match &el.body {
        Body::Value(value) => {
            if value.is_empty() && el.raw_tail.is_empty() && rng.one_in(3) {
                out.push_str("/>");
                return;
            }
            out.push('>');
            render_value(rng, value, out);
            out.push_str(&el.raw_tail);
        }
        Body::Children(items) => {
            if items.is_empty() && el.raw_tail.is_empty() && rng.one_in(2) {
                out.push_str("/>");
                return;
            }
            out.push('>');
            for item in items {
                separator(rng, style, depth + 1, out);
                if rng.one_in(40) {
                    out.push_str(rng.pick_str(&["<!-- note -->", "<?pi data?>", "&#32;"]));
                }
                match item {
                    Item::El(child) => render(rng, child, depth + 1, style, out),
                    Item::Raw(markup) => out.push_str(markup),
                }
            }
            out.push_str(&el.raw_tail);
            separator(rng, style, depth, out);
        }
    }
    if el.end_name.as_deref() == Some("") {
        return;
    }
    out.push_str("</");
    out.push_str(end_name);
    out.push('>');
}

/// Writes a value with random but equivalent spelling: whitespace runs, references,
/// CDATA sections and comments, all of which collapse back to `value`.
fn render_value(rng: &mut Rng, value: &str, out: &mut String) {
    if rng.one_in(5) {
        out.push_str(rng.pick_str(&[" ", "\n    ", "\t", "&#32;", "\r\n", "&#10;"]));
    }
    if rng.one_in(8) && !value.contains("]]>") {
        out.push_str("<![CDATA[");
        out.push_str(value);
        out.push_str("]]>");
    } else {
        for c in value.chars() {
            if rng.one_in(60) {
                out.push_str(rng.pick_str(&["<!---->", "<?pi?>", "<![CDATA[]]>"]));
            }
            match c {
                ' ' if rng.one_in(4) => {
                    for _ in 0..rng.range(1, 3) {
                        out.push_str(rng.pick_str(&[
                            " ", "\t", "\n", "\r\n", "&#9;", "&#10;", "&#13;", "&#32;", "&#x20;",
                        ]));
                    }
                }
                '&' => out.push_str(rng.pick_str(&["&amp;", "&#38;", "&#x26;"])),
                '<' => out.push_str(rng.pick_str(&["&lt;", "&#60;"])),
                '>' => out.push_str(rng.pick_str(&[">", "&gt;"])),
                '"' => out.push_str(rng.pick_str(&["\"", "&quot;"])),
                '\'' => out.push_str(rng.pick_str(&["'", "&apos;"])),
                c if rng.one_in(30) => {
                    let _ = write!(out, "&#x{:X};", u32::from(c));
                }
                c => out.push(c),
            }
        }
    }
    if rng.one_in(5) {
        out.push_str(rng.pick_str(&[" ", "\n  ", "\t\t", "&#13;"]));
    }
}

// ---------------------------------------------------------------------------------------
// The tables against the XSD files

#[derive(Debug)]
struct XsdElement {
    name: String,
    type_name: String,
    min: u16,
    max: u16,
}

#[derive(Debug, Default)]
struct XsdSimpleType {
    base: String,
    facets: Vec<(String, String)>,
}

#[derive(Default)]
struct Xsd {
    roots: HashMap<String, String>,
    complex: HashMap<String, Vec<XsdElement>>,
    simple: HashMap<String, XsdSimpleType>,
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .map(|a| a.value.into_owned())
}

fn read_xsd(xsd: &mut Xsd, file: &str) {
    let path = reference::xsd(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = Reader::from_str(&text);
    let mut depth = 0;
    let mut complex: Option<String> = None;
    let mut simple: Option<String> = None;
    loop {
        let (e, empty) = match reader.read_event().expect("well-formed XSD") {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth -= 1;
                if depth == 1 {
                    complex = None;
                    simple = None;
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let tag = e.name().into_inner().to_owned();
        match tag.as_str() {
            "xs:element" if depth == 1 => {
                let name = attribute(&e, "name").expect("name");
                if let Some(type_name) = attribute(&e, "type") {
                    xsd.roots.insert(name, type_name);
                }
            }
            "xs:element" => {
                if let Some(owner) = &complex {
                    let occurs = |a| attribute(&e, a).map_or(1, |v| v.parse().expect("occurs"));
                    xsd.complex
                        .entry(owner.clone())
                        .or_default()
                        .push(XsdElement {
                            name: attribute(&e, "name").expect("name"),
                            type_name: attribute(&e, "type").expect("type"),
                            min: occurs("minOccurs"),
                            max: occurs("maxOccurs"),
                        });
                }
            }
            "xs:complexType" if depth == 1 => {
                let name = attribute(&e, "name").expect("name");
                xsd.complex.entry(name.clone()).or_default();
                complex = Some(name);
            }
            "xs:simpleType" if depth == 1 => {
                let name = attribute(&e, "name").expect("name");
                xsd.simple.entry(name.clone()).or_default();
                simple = Some(name);
            }
            "xs:choice" | "xs:all" | "xs:any" | "xs:attribute" | "xs:group" | "xs:extension"
                if complex.is_some() =>
            {
                panic!(
                    "{file}: {tag} in complex type {complex:?}: the validator only knows sequences"
                );
            }
            "xs:restriction" => {
                if let Some(owner) = &simple {
                    let t = xsd.simple.entry(owner.clone()).or_default();
                    t.base = attribute(&e, "base").expect("base");
                }
            }
            "xs:length" | "xs:maxLength" | "xs:minLength" | "xs:pattern" | "xs:enumeration"
            | "xs:whiteSpace" | "xs:minInclusive" | "xs:maxInclusive" | "xs:totalDigits"
            | "xs:fractionDigits" => {
                if let Some(owner) = &simple {
                    let t = xsd.simple.entry(owner.clone()).or_default();
                    let value = attribute(&e, "value").expect("value");
                    t.facets
                        .push((tag.trim_start_matches("xs:").to_owned(), value));
                }
            }
            _ => {}
        }
        if !empty {
            depth += 1;
        }
    }
}

fn compare_element(xsd: &Xsd, decl: &ElementDecl, type_name: &str, path: &str) {
    match decl.content {
        Content::Complex(children) => {
            let expected = xsd
                .complex
                .get(type_name)
                .unwrap_or_else(|| panic!("{path}: no complex type {type_name}"));
            let ours: Vec<_> = children
                .iter()
                .map(|c| (c.name, c.min_occurs, c.max_occurs))
                .collect();
            let theirs: Vec<_> = expected
                .iter()
                .map(|c| (c.name.as_str(), c.min, c.max))
                .collect();
            assert_eq!(ours, theirs, "{path}: children, minOccurs, maxOccurs");
            for (child, x) in children.iter().zip(expected) {
                compare_element(xsd, child, &x.type_name, &format!("{path}/{}", child.name));
            }
        }
        Content::Simple(ty) => {
            assert_eq!(ty.name, type_name, "{path}: simple type");
            let expected = xsd
                .simple
                .get(type_name)
                .unwrap_or_else(|| panic!("{path}: no simple type {type_name}"));
            let length = match ty.length {
                Length::Exactly(n) => ("length".to_owned(), n.to_string()),
                Length::AtMost(n) => ("maxLength".to_owned(), n.to_string()),
            };
            let ours = vec![length, ("pattern".to_owned(), ty.pattern.to_string())];
            assert_eq!(ours, expected.facets, "{path}: facets of {type_name}");
            // The base must be a facet-free restriction of xs:token.
            let base = xsd
                .simple
                .get(&expected.base)
                .unwrap_or_else(|| panic!("{path}: no base type {}", expected.base));
            assert_eq!(
                base.base, "xs:token",
                "{path}: {} derives from xs:token",
                expected.base
            );
            assert!(
                base.facets.is_empty(),
                "{path}: {} has facets",
                expected.base
            );
        }
    }
}

#[test]
fn tables_match_the_xsds() {
    for kind in MessageKind::ALL {
        let mut xsd = Xsd::default();
        read_xsd(&mut xsd, &format!("{}.xsd", kind.root()));
        read_xsd(&mut xsd, "simple_types.xsd");
        let root = schema::message(kind);
        let root_type = xsd
            .roots
            .get(kind.root())
            .expect("root element declared")
            .clone();
        compare_element(&xsd, root, &root_type, kind.root());
    }
}
