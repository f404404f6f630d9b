//! A point in time as Unix milliseconds, the only time type the core sees, and the strict RFC 3339
//! text that configuration, trust roots and waivers write it in.

use chrono::{DateTime, NaiveDateTime};

/// Milliseconds since the Unix epoch (UTC). Read it from a `Clock`, never from the system directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Builds a timestamp from Unix milliseconds.
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    /// The timestamp as Unix milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self`, saturating, never negative.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// RFC 3339 in UTC with milliseconds: `2026-11-26T05:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match DateTime::from_timestamp_millis(self.0) {
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            // Out of chrono's range (hundreds of millennia away): the raw number still orders.
            None => self.0.to_string(),
        }
    }

    /// Parses an RFC 3339 time (any offset), as [`Timestamp::to_rfc3339`] writes it.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| Timestamp(t.timestamp_millis()))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` strictly: RFC 3339 in UTC only, upper-case `T` and
    /// `Z`, one to nine fraction digits, truncated to milliseconds. Offsets other than `Z` are
    /// refused so that one instant has few spellings; what signed documents and waivers hold.
    pub fn parse_rfc3339_strict(text: &str) -> Option<Timestamp> {
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
        Some(Timestamp(parsed.and_utc().timestamp_millis()))
    }

    /// The text [`Timestamp::parse_rfc3339_strict`] reads back to `self`: whole seconds when there
    /// are no milliseconds (`2027-11-26T00:00:00Z`), three fraction digits otherwise. `None`
    /// outside years 0 to 9999.
    pub fn to_rfc3339_strict(self) -> Option<String> {
        let t = DateTime::from_timestamp_millis(self.0)?;
        let text = if t.timestamp_subsec_millis() == 0 {
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        };
        Timestamp::parse_rfc3339_strict(&text).filter(|back| *back == self).map(|_| text)
    }

    /// This timestamp moved forward by `millis`, saturating.
    pub fn plus_millis(self, millis: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(millis).unwrap_or(i64::MAX)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Timestamp;
    use expect_test::{Expect, expect};

    #[test]
    fn rfc3339() {
        assert_eq!(Timestamp::from_millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(1_795_669_200_123).to_rfc3339(), "2026-11-26T05:00:00.123Z");
        let t = Timestamp::from_millis(1_795_669_200_123);
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-26T06:00:00.123+01:00"), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    fn check(input: &str, expect: Expect) {
        let actual = match Timestamp::parse_rfc3339_strict(input) {
            Some(t) => format!("{} {}", t.as_millis(), t.to_rfc3339_strict().unwrap()),
            None => "refused".to_owned(),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn rfc3339_strict() {
        check("2027-11-26T00:00:00Z", expect!["1827187200000 2027-11-26T00:00:00Z"]);
        check("1970-01-01T00:00:00Z", expect!["0 1970-01-01T00:00:00Z"]);
        check("2026-11-26T05:00:00Z", expect!["1795669200000 2026-11-26T05:00:00Z"]);
        check("2026-11-26T05:00:00.123Z", expect!["1795669200123 2026-11-26T05:00:00.123Z"]);
        check("2026-11-26T05:00:00.1234Z", expect!["1795669200123 2026-11-26T05:00:00.123Z"]);
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
        check("2026-11-26", expect!["refused"]);
        check("", expect!["refused"]);
        check("2026-11-26T05:00:00Zé", expect!["refused"]);
    }

    proptest::proptest! {
        #[test]
        fn strict_format_then_parse_is_identity(millis in -62_167_219_200_000i64..253_402_300_799_999) {
            let t = Timestamp::from_millis(millis);
            let text = t.to_rfc3339_strict().unwrap();
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339_strict(&text), Some(t));
        }

        #[test]
        fn strict_parse_never_panics(s in ".{0,40}") {
            let _ = Timestamp::parse_rfc3339_strict(&s);
        }
    }
}
