//! The header every NCTS message starts with, and the small XML writer the builders share.

use std::fmt::Write as _;

use gbal_core::UniqueReference;
use time::{OffsetDateTime, UtcOffset};

/// The fields of the message header that change from message to message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// MesSenMES3.
    pub sender: String,
    /// MesRecMES6.
    pub recipient: String,
    /// DatOfPreMES9 and TimOfPreMES10, written in UTC.
    pub prepared_at: OffsetDateTime,
    /// IntConRefMES11 and MesIdeMES19.
    pub message_ref: UniqueReference,
}

/// Syntax identifier (SynIdeMES1).
pub const SYNTAX_ID: &str = "UNOC";
/// Syntax version (SynVerNumMES2).
pub const SYNTAX_VERSION: &str = "3";

/// Appends `<name>text</name>`, escaping the text.
pub(crate) fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

pub(crate) fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

pub(crate) fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// `yyyyMMdd` of an instant in UTC.
pub fn format_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let mut s = String::with_capacity(8);
    let _ = write!(
        s,
        "{:04}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    );
    s
}

/// `HHmm` of an instant in UTC.
pub fn format_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let mut s = String::with_capacity(4);
    let _ = write!(s, "{:02}{:02}", at.hour(), at.minute());
    s
}

impl Header {
    /// Writes the mandatory header elements up to and including MesTypMES20.
    pub(crate) fn write(&self, out: &mut String, message_type: &str) {
        element(out, "SynIdeMES1", SYNTAX_ID);
        element(out, "SynVerNumMES2", SYNTAX_VERSION);
        element(out, "MesSenMES3", &self.sender);
        element(out, "MesRecMES6", &self.recipient);
        element(out, "DatOfPreMES9", &format_date(self.prepared_at));
        element(out, "TimOfPreMES10", &format_time(self.prepared_at));
        element(out, "IntConRefMES11", self.message_ref.as_str());
        element(out, "MesIdeMES19", self.message_ref.as_str());
        element(out, "MesTypMES20", message_type);
    }
}

/// Wraps a message in the `<transitRequest>` element it travels in.
pub fn wrap_transit_request(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 33);
    out.push_str("<transitRequest>");
    out.push_str(message);
    out.push_str("</transitRequest>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates_and_times_are_utc() {
        let at = datetime!(2021-09-14 23:52:15 -02:00);
        assert_eq!(format_date(at), "20210915");
        assert_eq!(format_time(at), "0152");
        assert_eq!(format_time(datetime!(2021-01-02 00:05 UTC)), "0005");
    }

    #[test]
    fn text_is_escaped() {
        let mut out = String::new();
        element(&mut out, "A", "x<&>y");
        assert_eq!(out, "<A>x&lt;&amp;&gt;y</A>");
    }
}
