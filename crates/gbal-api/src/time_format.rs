//! Timestamps as API v1 writes them: RFC 3339 in UTC with `Z`, fractional seconds only when
//! they are not zero (and then without trailing zeros).

use time::{OffsetDateTime, UtcOffset};

/// `2021-09-14T09:52:15Z`, or `2021-09-14T09:52:15.5Z`.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let nanos = at.nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn whole_and_fractional_seconds() {
        assert_eq!(
            rfc3339(datetime!(2021-09-14 09:52:15 UTC)),
            "2021-09-14T09:52:15Z"
        );
        assert_eq!(
            rfc3339(datetime!(2021-09-14 09:52:15.5 UTC)),
            "2021-09-14T09:52:15.5Z"
        );
        assert_eq!(
            rfc3339(datetime!(2021-09-14 09:52:15.000123 UTC)),
            "2021-09-14T09:52:15.000123Z"
        );
        assert_eq!(
            rfc3339(datetime!(2021-09-14 10:52:15 +01:00)),
            "2021-09-14T09:52:15Z"
        );
    }
}
