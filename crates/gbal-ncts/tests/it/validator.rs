//! The validator on hand-written variations of one IE034: the tree it builds, `xs:token`
//! collapsing, facets, content models, limits, namespaces, the wrapper and
//! well-formedness, each error with its exact text and position.

use gbal_ncts::{Document, Limits, MessageKind, SchemaError, validate, validate_any};

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
        ["line 3, column 3: element SynIdeMES1 is missing, expected as the first child of CD034A"]
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
        ["line 15, column 5: element QueIdeQUE1 is missing, expected as the first child of GUAQUE"]
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
    assert!(check(&IE034.replace("<GUAREF2>", "<GUAREF2>&#32;&#10;<!-- c --><?pi x?>")).is_ok());
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
    let errors =
        validate(IE034.as_bytes(), MessageKind::Ie037, &Limits::default()).expect_err("wrong kind");
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
