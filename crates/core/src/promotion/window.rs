//! Weekly change windows: the days and local hours, in an IANA time zone, during which
//! promotions into a stage may commit.

use airlock_model::Timestamp;
use chrono::{DateTime, Datelike, Days, NaiveTime, Offset, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

/// How far ahead [`ChangeWindow::next_open`] looks: a week and a day.
const SEARCH_DAYS: u64 = 8;
const MILLIS_PER_HOUR: i64 = 3_600_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// The days of the week in order from Monday, with the short and long names config may use.
const WEEK: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "monday"),
    (Weekday::Tue, "tue", "tuesday"),
    (Weekday::Wed, "wed", "wednesday"),
    (Weekday::Thu, "thu", "thursday"),
    (Weekday::Fri, "fri", "friday"),
    (Weekday::Sat, "sat", "saturday"),
    (Weekday::Sun, "sun", "sunday"),
];

/// The window as written in config:
///
/// ```toml
/// days = ["mon", "tue", "wed", "thu", "fri"]
/// start = "09:00"
/// end = "17:00"
/// timezone = "Europe/Berlin"
/// ```
///
/// Days are English day names, short (`mon`) or long (`monday`). Times are 24-hour `HH:MM`;
/// `end` may be `24:00` and must be after `start`, since a window does not cross midnight (write
/// two windows instead). `timezone` is an IANA name and defaults to `UTC`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// The days the window opens on.
    pub days: Vec<String>,
    /// When it opens, local `HH:MM`, inclusive.
    pub start: String,
    /// When it closes, local `HH:MM` up to `24:00`, exclusive.
    pub end: String,
    /// The IANA time zone `start` and `end` are in; `UTC` when absent.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// Why a [`WindowSpec`] is not a valid window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(
        "a change window lists no days; list at least one in `days`, such as `days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]`"
    )]
    NoDays,
    #[error("`{day}` is not a day of the week; write one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`")]
    UnknownDay { day: String },
    #[error("`{day}` is listed twice in a change window's `days`; list each day once")]
    DuplicateDay { day: String },
    #[error(
        "change window `{field}` `{value}` is not a time of day; write 24-hour `HH:MM` from `00:00` to `24:00`, such as `09:00`"
    )]
    BadTime { field: &'static str, value: String },
    #[error(
        "change window end `{end}` is not after its start `{start}`; a window does not cross midnight, so write two windows, such as `22:00`-`24:00` and `00:00`-`06:00` on the next day"
    )]
    EndNotAfterStart { start: String, end: String },
    #[error("`{zone}` is not a known IANA time zone; write a name such as `Europe/Berlin` or `UTC`")]
    UnknownTimeZone { zone: String },
}

/// A weekly window during which promotions into a stage may commit, in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeWindow {
    /// Whether the window opens on each day, Monday first.
    days: [bool; 7],
    /// Minutes after local midnight at which it opens, `0..=1439`.
    start: u16,
    /// Minutes after local midnight at which it closes, after `start`, at most `1440`.
    end: u16,
    zone: Tz,
}

impl ChangeWindow {
    /// Checks and parses a window as written in config.
    pub fn parse(spec: &WindowSpec) -> Result<ChangeWindow, WindowError> {
        if spec.days.is_empty() {
            return Err(WindowError::NoDays);
        }
        let mut days = [false; 7];
        for written in &spec.days {
            let unknown = || WindowError::UnknownDay { day: written.clone() };
            let day = parse_day(written).ok_or_else(unknown)?;
            match days.get_mut(day_index(day)) {
                Some(seen) if *seen => return Err(WindowError::DuplicateDay { day: written.clone() }),
                Some(seen) => *seen = true,
                None => return Err(unknown()),
            }
        }
        let start = parse_time("start", &spec.start)?;
        let end = parse_time("end", &spec.end)?;
        if end <= start {
            return Err(WindowError::EndNotAfterStart { start: spec.start.clone(), end: spec.end.clone() });
        }
        let zone_name = spec.timezone.as_deref().unwrap_or("UTC");
        let zone = zone_name.parse::<Tz>().map_err(|_| WindowError::UnknownTimeZone { zone: zone_name.to_owned() })?;
        Ok(ChangeWindow { days, start, end, zone })
    }

    /// Whether `at` falls inside the window (start inclusive, end exclusive), on the window's
    /// days and hours in its time zone at that instant.
    pub fn contains(&self, at: Timestamp) -> bool {
        let Some(local) = self.local(at) else {
            return false;
        };
        let minute = local.num_seconds_from_midnight() / 60;
        self.opens_on(local.weekday()) && u32::from(self.start) <= minute && minute < u32::from(self.end)
    }

    /// The first instant at or after `at` at which the window is open: `at` itself when it is
    /// open now, else the next opening. `None` only when there is none within eight days (a
    /// window whose every day falls into a daylight-saving gap).
    ///
    /// Where `start` does not exist locally (a daylight-saving gap) the window opens when the
    /// clocks have moved past it; where it exists twice, at the first that is not yet past.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.contains(at) {
            return Some(at);
        }
        let from = at.as_millis();
        let horizon = from.checked_add(MILLIS_PER_DAY.checked_mul(i64::try_from(SEARCH_DAYS).ok()?)?)?;

        // The window opens either when the local clock reaches `start` on one of its days, or
        // when the clock is set into the window (a daylight-saving change).
        let mut candidates = Vec::new();
        let start = NaiveTime::from_hms_opt(u32::from(self.start / 60), u32::from(self.start % 60), 0)?;
        // A day early: clocks set back across midnight can return to the day before.
        let first_day = self.local(at)?.date_naive().checked_sub_days(Days::new(1))?;
        for offset in 0..=SEARCH_DAYS.saturating_add(1) {
            let Some(day) = first_day.checked_add_days(Days::new(offset)) else {
                break;
            };
            if self.opens_on(day.weekday()) {
                let opening = self.zone.from_local_datetime(&day.and_time(start));
                candidates.extend(opening.earliest().map(|t| t.timestamp_millis()));
                candidates.extend(opening.latest().map(|t| t.timestamp_millis()));
            }
        }
        candidates.extend(self.transitions(from, horizon));

        candidates
            .into_iter()
            .filter(|&t| from < t && t <= horizon && self.contains(Timestamp::from_millis(t)))
            .min()
            .map(Timestamp::from_millis)
    }

    /// The window as a person reads it: `mon-fri 09:00-17:00 Europe/Berlin`.
    pub fn describe(&self) -> String {
        // Runs of consecutive days, as indexes from Monday.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (index, _) in self.days.iter().enumerate().filter(|(_, open)| **open) {
            match runs.last_mut() {
                Some(run) if run.1.checked_add(1) == Some(index) => run.1 = index,
                _ => runs.push((index, index)),
            }
        }
        let name = |index: usize| WEEK.get(index).map_or("?", |(_, short, _)| short);
        let mut days = Vec::new();
        for (first, last) in runs {
            if last.saturating_sub(first) >= 2 {
                days.push(format!("{}-{}", name(first), name(last)));
            } else {
                days.extend((first..=last).map(|index| name(index).to_owned()));
            }
        }
        format!("{} {}-{} {}", days.join(","), format_time(self.start), format_time(self.end), self.zone.name())
    }

    fn opens_on(&self, day: Weekday) -> bool {
        self.days.get(day_index(day)).copied().unwrap_or(false)
    }

    /// `at` on the window's local clock; `None` out of chrono's range (hundreds of millennia).
    fn local(&self, at: Timestamp) -> Option<DateTime<Tz>> {
        DateTime::from_timestamp_millis(at.as_millis()).map(|t| t.with_timezone(&self.zone))
    }

    /// The offset from UTC of the window's zone at Unix milliseconds `millis`, in seconds.
    fn offset_at(&self, millis: i64) -> Option<i32> {
        self.local(Timestamp::from_millis(millis)).map(|t| t.offset().fix().local_minus_utc())
    }

    /// The instants in `(from, to]` at which the zone's offset changes. Checks hourly and
    /// bisects where it changed: tz database changes are months apart, never within an hour.
    fn transitions(&self, from: i64, to: i64) -> Vec<i64> {
        let mut found = Vec::new();
        let mut before = from;
        let Some(mut offset) = self.offset_at(before) else {
            return found;
        };
        while before < to {
            let after = before.saturating_add(MILLIS_PER_HOUR).min(to);
            let Some(next) = self.offset_at(after) else {
                break;
            };
            if next != offset {
                // The offset is `offset` at `low` and something else at `high`.
                let (mut low, mut high) = (before, after);
                while high.saturating_sub(low) > 1 {
                    let middle = low.saturating_add(high.saturating_sub(low) / 2);
                    if self.offset_at(middle) == Some(offset) {
                        low = middle;
                    } else {
                        high = middle;
                    }
                }
                found.push(high);
            }
            offset = next;
            before = after;
        }
        found
    }
}

/// Whether `at` is inside any of `windows`; an empty list means always open.
pub fn open_at(windows: &[ChangeWindow], at: Timestamp) -> bool {
    windows.is_empty() || windows.iter().any(|window| window.contains(at))
}

/// The earliest instant at or after `at` at which any of `windows` is open; `None` when the list
/// is empty (always open, so there is nothing to wait for) or none opens within eight days.
pub fn next_open(windows: &[ChangeWindow], at: Timestamp) -> Option<Timestamp> {
    windows.iter().filter_map(|window| window.next_open(at)).min()
}

fn day_index(day: Weekday) -> usize {
    day.num_days_from_monday() as usize
}

fn parse_day(written: &str) -> Option<Weekday> {
    let lower = written.to_ascii_lowercase();
    WEEK.iter().find(|(_, short, long)| lower == *short || lower == *long).map(|(day, _, _)| *day)
}

/// Parses `HH:MM` from `00:00` to `24:00` into minutes after midnight.
fn parse_time(field: &'static str, text: &str) -> Result<u16, WindowError> {
    let bad = || WindowError::BadTime { field, value: text.to_owned() };
    let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
    let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return Err(bad());
    }
    let hours: u16 = hours.parse().map_err(|_| bad())?;
    let minutes: u16 = minutes.parse().map_err(|_| bad())?;
    if hours > 24 || minutes > 59 || (hours == 24 && minutes != 0) {
        return Err(bad());
    }
    hours.checked_mul(60).and_then(|h| h.checked_add(minutes)).ok_or_else(bad)
}

fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn spec(days: &[&str], start: &str, end: &str, timezone: Option<&str>) -> WindowSpec {
        WindowSpec {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.to_owned(),
            end: end.to_owned(),
            timezone: timezone.map(str::to_owned),
        }
    }

    fn window(days: &[&str], start: &str, end: &str, timezone: Option<&str>) -> ChangeWindow {
        ChangeWindow::parse(&spec(days, start, end, timezone)).unwrap()
    }

    fn weekdays_utc() -> ChangeWindow {
        window(&["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00", None)
    }

    #[test]
    fn weekdays_in_utc() {
        let w = weekdays_utc();
        // 2026-03-23 is a Monday.
        assert!(w.contains(at("2026-03-23T12:00:00Z")));
        assert!(w.contains(at("2026-03-27T12:00:00Z")));
        assert!(!w.contains(at("2026-03-28T12:00:00Z")), "saturday");
        assert!(!w.contains(at("2026-03-29T12:00:00Z")), "sunday");
        assert!(!w.contains(at("2026-03-23T08:00:00Z")), "before hours");
        assert!(!w.contains(at("2026-03-23T20:00:00Z")), "after hours");
        // Any offset in the input denotes the same instant.
        assert!(w.contains(at("2026-03-23T13:00:00+02:00")));
    }

    #[test]
    fn boundaries() {
        let w = weekdays_utc();
        assert!(!w.contains(at("2026-03-23T08:59:59.999Z")));
        assert!(w.contains(at("2026-03-23T09:00:00Z")), "start is inclusive");
        assert!(w.contains(at("2026-03-23T16:59:59.999Z")));
        assert!(!w.contains(at("2026-03-23T17:00:00Z")), "end is exclusive");

        let evening = window(&["mon"], "22:00", "24:00", None);
        assert!(!evening.contains(at("2026-03-23T21:59:59.999Z")));
        assert!(evening.contains(at("2026-03-23T22:00:00Z")));
        assert!(evening.contains(at("2026-03-23T23:59:59.999Z")));
        assert!(!evening.contains(at("2026-03-24T00:00:00Z")), "24:00 is the next day's midnight");

        let whole_day = window(&["sun"], "00:00", "24:00", None);
        assert!(whole_day.contains(at("2026-03-29T00:00:00Z")));
        assert!(!whole_day.contains(at("2026-03-28T23:59:59.999Z")));
    }

    #[test]
    fn day_names() {
        let long = window(&["Monday", "friday"], "09:00", "10:00", None);
        assert_eq!(long, window(&["mon", "fri"], "09:00", "10:00", None));
    }

    #[test]
    fn berlin_across_spring_forward() {
        let w = window(&["sun"], "09:00", "10:00", Some("Europe/Berlin"));
        // Sunday 2026-03-22, CET (UTC+1).
        assert!(!w.contains(at("2026-03-22T07:59:59Z")));
        assert!(w.contains(at("2026-03-22T08:00:00Z")));
        assert!(w.contains(at("2026-03-22T08:59:59Z")));
        assert!(!w.contains(at("2026-03-22T09:00:00Z")));
        // Sunday 2026-03-29, CEST (UTC+2) from 01:00 UTC.
        assert!(!w.contains(at("2026-03-29T06:59:59Z")));
        assert!(w.contains(at("2026-03-29T07:00:00Z")));
        assert!(w.contains(at("2026-03-29T07:59:59Z")));
        assert!(!w.contains(at("2026-03-29T08:00:00Z")));

        assert_eq!(w.next_open(at("2026-03-22T10:00:00Z")), Some(at("2026-03-29T07:00:00Z")));
    }

    #[test]
    fn start_in_a_daylight_saving_gap() {
        // 02:00-03:00 does not exist in Berlin on 2026-03-29: a window 02:30-04:00 opens when the
        // clocks jump to 03:00 (01:00 UTC).
        let w = window(&["sun"], "02:30", "04:00", Some("Europe/Berlin"));
        assert_eq!(w.next_open(at("2026-03-28T12:00:00Z")), Some(at("2026-03-29T01:00:00Z")));
        // A window wholly inside the gap skips that Sunday.
        let gone = window(&["sun"], "02:00", "03:00", Some("Europe/Berlin"));
        assert_eq!(gone.next_open(at("2026-03-28T12:00:00Z")), Some(at("2026-04-05T00:00:00Z")));
    }

    #[test]
    fn start_in_a_daylight_saving_overlap() {
        // 02:00-03:00 happens twice in Berlin on 2026-10-25: CEST 00:00-01:00 UTC, CET 01:00-02:00.
        let w = window(&["sun"], "02:30", "02:45", Some("Europe/Berlin"));
        assert_eq!(w.next_open(at("2026-10-24T12:00:00Z")), Some(at("2026-10-25T00:30:00Z")));
        assert_eq!(w.next_open(at("2026-10-25T00:50:00Z")), Some(at("2026-10-25T01:30:00Z")));
        // Set back into the window from after its end: it opens again at the change itself.
        let early = window(&["sun"], "01:00", "02:30", Some("Europe/Berlin"));
        assert!(!early.contains(at("2026-10-25T00:45:00Z")), "02:45 CEST");
        assert_eq!(early.next_open(at("2026-10-25T00:45:00Z")), Some(at("2026-10-25T01:00:00Z")));
    }

    #[test]
    fn next_open_from_closed_and_open() {
        let w = weekdays_utc();
        // Friday evening: Monday morning.
        assert_eq!(w.next_open(at("2026-03-27T18:00:00Z")), Some(at("2026-03-30T09:00:00Z")));
        // Open now: now.
        let now = at("2026-03-27T10:11:12.345Z");
        assert_eq!(w.next_open(now), Some(now));
        // Early on a weekday: that morning.
        assert_eq!(w.next_open(at("2026-03-25T03:00:00Z")), Some(at("2026-03-25T09:00:00Z")));
        // Right at the end: the next morning.
        assert_eq!(w.next_open(at("2026-03-25T17:00:00Z")), Some(at("2026-03-26T09:00:00Z")));

        let berlin = window(&["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00", Some("Europe/Berlin"));
        assert_eq!(berlin.next_open(at("2026-03-27T18:00:00Z")), Some(at("2026-03-30T07:00:00Z")));
        // Once a week, a week ahead.
        let weekly = window(&["wed"], "09:00", "10:00", None);
        assert_eq!(weekly.next_open(at("2026-03-25T10:00:00Z")), Some(at("2026-04-01T09:00:00Z")));
    }

    #[test]
    fn window_lists() {
        let morning = window(&["mon"], "09:00", "10:00", None);
        let afternoon = window(&["mon"], "14:00", "15:00", None);
        let both = [morning, afternoon];
        assert!(open_at(&[], at("2026-03-28T03:00:00Z")), "no windows: always open");
        assert!(open_at(&both, at("2026-03-23T14:30:00Z")));
        assert!(!open_at(&both, at("2026-03-23T12:00:00Z")));
        assert_eq!(next_open(&both, at("2026-03-23T12:00:00Z")), Some(at("2026-03-23T14:00:00Z")));
        assert_eq!(next_open(&both, at("2026-03-23T08:00:00Z")), Some(at("2026-03-23T09:00:00Z")));
        assert_eq!(next_open(&[], at("2026-03-23T12:00:00Z")), None);
    }

    #[test]
    fn describe() {
        assert_eq!(weekdays_utc().describe(), "mon-fri 09:00-17:00 UTC");
        assert_eq!(
            window(&["wed", "mon", "tue"], "09:00", "24:00", Some("Europe/Berlin")).describe(),
            "mon-wed 09:00-24:00 Europe/Berlin"
        );
        assert_eq!(
            window(&["sun", "sat", "mon", "wed", "thu"], "00:00", "06:30", None).describe(),
            "mon,wed,thu,sat,sun 00:00-06:30 UTC"
        );
    }

    #[test]
    fn errors() {
        let err = |s: WindowSpec| ChangeWindow::parse(&s).unwrap_err();
        assert_eq!(err(spec(&[], "09:00", "17:00", None)), WindowError::NoDays);
        assert_eq!(err(spec(&["mon", "fry"], "09:00", "17:00", None)), WindowError::UnknownDay { day: "fry".into() });
        assert_eq!(
            err(spec(&["mon", "monday"], "09:00", "17:00", None)),
            WindowError::DuplicateDay { day: "monday".into() }
        );
        for bad in ["9:00", "09:0", "0900", "09:00:00", "25:00", "09:60", "24:01", "-1:00", "+9:00", "", "ab:cd"] {
            assert_eq!(
                err(spec(&["mon"], bad, "17:00", None)),
                WindowError::BadTime { field: "start", value: bad.into() },
                "{bad}"
            );
        }
        assert_eq!(
            err(spec(&["mon"], "09:00", "24:30", None)),
            WindowError::BadTime { field: "end", value: "24:30".into() }
        );
        assert_eq!(
            err(spec(&["mon"], "17:00", "09:00", None)),
            WindowError::EndNotAfterStart { start: "17:00".into(), end: "09:00".into() }
        );
        assert_eq!(
            err(spec(&["mon"], "09:00", "09:00", None)),
            WindowError::EndNotAfterStart { start: "09:00".into(), end: "09:00".into() }
        );
        assert_eq!(
            err(spec(&["mon"], "24:00", "24:00", None)),
            WindowError::EndNotAfterStart { start: "24:00".into(), end: "24:00".into() }
        );
        assert_eq!(
            err(spec(&["mon"], "09:00", "17:00", Some("Mars/Olympus"))),
            WindowError::UnknownTimeZone { zone: "Mars/Olympus".into() }
        );
    }

    #[test]
    fn error_messages() {
        expect_test::expect![[
            r#"`fry` is not a day of the week; write one of `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`"#
        ]]
        .assert_eq(&WindowError::UnknownDay { day: "fry".into() }.to_string());
    }

    #[test]
    fn spec_from_config() {
        let spec: WindowSpec = serde_json::from_str(r#"{"days": ["sat"], "start": "10:00", "end": "12:00"}"#).unwrap();
        assert_eq!(ChangeWindow::parse(&spec).unwrap().describe(), "sat 10:00-12:00 UTC");
        assert!(
            serde_json::from_str::<WindowSpec>(r#"{"days": ["sat"], "start": "10:00", "end": "12:00", "tz": "UTC"}"#)
                .is_err()
        );
    }
}
