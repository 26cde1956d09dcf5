//! The XML declaration (`<?xml version="1.0" encoding="UTF-8"?>`), checked as libxml checks
//! it.

use crate::xml_chars::is_xml_space;

/// Checks the pseudo-attributes after `<?xml`, as libxml does: `version` is `1.` followed
/// by digits; the encoding, if named, must be UTF-8.
pub(crate) fn parse_declaration(content: &str) -> Result<(), String> {
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
