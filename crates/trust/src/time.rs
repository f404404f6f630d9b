//! Times in a trust root: RFC 3339 in UTC with a `Z`, read into a [`Timestamp`] of milliseconds.

use airlock_model::Timestamp;
use chrono::{DateTime, NaiveDateTime};

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (RFC 3339, UTC only, upper-case `T` and `Z`, one to
/// nine fraction digits, truncated to milliseconds). Offsets other than `Z` are refused so that
/// one instant has few spellings.
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let body = text.strip_suffix('Z')?;
    let (seconds, fraction) = match body.split_once('.') {
        Some((seconds, fraction)) => (seconds, Some(fraction)),
        None => (body, None),
    };
    let shape = seconds.len() == 19
        && seconds.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    let fraction_ok = fraction.is_none_or(|f| (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()));
    if !shape || !fraction_ok {
        return None;
    }
    let parsed = NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(Timestamp::from_millis(parsed.and_utc().timestamp_millis()))
}

/// The text [`parse_time`] reads back to `time`: whole seconds when there are no milliseconds
/// (`2027-11-26T00:00:00Z`), three fraction digits otherwise. `None` outside years 0 to 9999.
pub(crate) fn format_time(time: Timestamp) -> Option<String> {
    let t = DateTime::from_timestamp_millis(time.as_millis())?;
    let text = if t.timestamp_subsec_millis() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    };
    parse_time(&text).filter(|back| *back == time).map(|_| text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(input: &str, expect: Expect) {
        let actual = match parse_time(input) {
            Some(t) => format!("{} {}", t.as_millis(), format_time(t).unwrap()),
            None => "refused".to_owned(),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn times() {
        check("2027-11-26T00:00:00Z", expect!["1827187200000 2027-11-26T00:00:00Z"]);
        check("1970-01-01T00:00:00Z", expect!["0 1970-01-01T00:00:00Z"]);
        check("2026-11-26T05:00:00.123Z", expect!["1795669200123 2026-11-26T05:00:00.123Z"]);
        check("2026-11-26T05:00:00.1234567Z", expect!["1795669200123 2026-11-26T05:00:00.123Z"]);
        check("2026-11-26T05:00:00.5Z", expect!["1795669200500 2026-11-26T05:00:00.500Z"]);
        check("2026-11-26T05:00:00+00:00", expect!["refused"]);
        check("2026-11-26t05:00:00z", expect!["refused"]);
        check("2026-11-26 05:00:00Z", expect!["refused"]);
        check("2026-11-26T05:00:00.Z", expect!["refused"]);
        check("2026-11-26T05:00:00.1234567890Z", expect!["refused"]);
        check("2026-02-30T00:00:00Z", expect!["refused"]);
        check("2026-1-26T05:00:00Z", expect!["refused"]);
        check("+2026-11-26T05:00:00Z", expect!["refused"]);
        check("2026-11-26T05:00:00", expect!["refused"]);
        check("", expect!["refused"]);
        check("2026-11-26T05:00:00Zé", expect!["refused"]);
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(millis in -62_167_219_200_000i64..253_402_300_799_999) {
            let t = Timestamp::from_millis(millis);
            let text = format_time(t).unwrap();
            proptest::prop_assert_eq!(parse_time(&text), Some(t));
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_time(&s);
        }
    }
}
