//! The character classes of XML 1.0 (fifth edition): `Char`, `S`, `Name`, and what a
//! character or entity reference stands for.

/// The character a reference (`lt`, `#65`, `#x41`, ... without `&` and `;`) stands for.
pub(crate) fn decode_reference(name: &str) -> Option<char> {
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
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// [`is_xml_space`] for a byte.
pub(crate) fn is_xml_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// XML 1.0 `NameStartChar`.
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 `NameChar`.
fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// XML 1.0 (fifth edition) `Name`.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// Whether `xmlns:{prefix}` is accepted as a namespace declaration. The prefix should be an
/// NCName, but libxml recovers from `xmlns:a:` and `xmlns:a:b` (a non-fatal namespace
/// error), so after the first colon comes nothing or a `Name`.
pub(crate) fn is_namespace_prefix(prefix: &str) -> bool {
    let (ncname, rest) = prefix.split_once(':').unwrap_or((prefix, ""));
    is_name(ncname) && (rest.is_empty() || is_name(rest))
}
