//! Times in waivers and policy inputs: RFC 3339 in UTC with a `Z`, read into a [`Timestamp`].

use airlock_model::Timestamp;
use chrono::NaiveDateTime;

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

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times() {
        let millis = |s: &str| parse_time(s).map(|t| t.as_millis());
        assert_eq!(millis("2026-11-26T05:00:00Z"), Some(1_795_669_200_000));
        assert_eq!(millis("2026-11-26T05:00:00.1234Z"), Some(1_795_669_200_123));
        for refused in ["2026-11-26T05:00:00+00:00", "2026-11-26t05:00:00z", "2026-02-30T00:00:00Z", "", "2026-11-26"] {
            assert_eq!(millis(refused), None, "{refused}");
        }
    }
}
