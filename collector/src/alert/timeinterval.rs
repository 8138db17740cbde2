//! Alertmanager's time intervals (`timeinterval` package of Alertmanager 0.25): the entries of
//! `time_intervals` (and the legacy `mute_time_intervals`) that routes name in
//! `mute_time_intervals` and `active_time_intervals`, and whether an instant falls inside one.
//!
//! An entry restricts any of `times` (`start_time`/`end_time` as `HH:MM`, end exclusive,
//! `24:00` allowed), `weekdays` (`monday:friday`), `days_of_month` (`1:7`, `-1` is the last
//! day), `months` (`january:march` or `1:3`) and `years` (`2024:2025`), in a `location` (an
//! IANA time zone from the system's database; UTC when absent). An instant is inside an entry
//! when it satisfies every restriction the entry has; a named interval is a list of entries
//! and contains the instant when any entry does. Parsing accepts exactly what Alertmanager
//! accepts, with its messages (for instance, month numbers are not range-checked there, so
//! `months: ['13']` is valid and never matches).
//!
//! `amconfig` walks the YAML and calls the `parse_*` functions on each value; the dispatcher
//! calls [`TimeInterval::contains`] with `now` as a parameter. Pure, except that
//! [`parse_location`] reads the system time-zone database.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A half-open range of minutes in the day: `[start_minute, end_minute)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

/// An inclusive range of weekdays (0 = Sunday), days of month (negative counts from the end),
/// months (1 = January) or years.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InclusiveRange {
    pub begin: i32,
    pub end: i32,
}

/// One entry of a named time interval. A `None` field does not restrict; `Some(vec![])` (an
/// empty list written in the file) matches nothing, as in Alertmanager, where a non-nil empty
/// slice finds no range that contains the instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeInterval {
    pub times: Option<Vec<TimeRange>>,
    pub weekdays: Option<Vec<InclusiveRange>>,
    pub days_of_month: Option<Vec<InclusiveRange>>,
    pub months: Option<Vec<InclusiveRange>>,
    pub years: Option<Vec<InclusiveRange>>,
    /// The time zone the other fields are read in; UTC when `None` (Alertmanager evaluates
    /// intervals on `now.UTC()`).
    pub location: Option<TimeZone>,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Go's `strconv.Atoi`, with its error text.
fn atoi(s: &str) -> Result<i32, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i32>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

/// Alertmanager's `stringableRangeFromString`: lower-cases the input, then reads `a` or `a:b`
/// with `member` turning each side into a number.
fn range_from_string(
    input: &str,
    member: impl Fn(&str) -> Result<i32, String>,
) -> Result<InclusiveRange, String> {
    let input = input.to_lowercase();
    if input.contains(':') {
        let parts: Vec<&str> = input.split(':').collect();
        let [begin, end] = parts.as_slice() else {
            return Err(format!("couldn't parse range {input}, invalid format"));
        };
        Ok(InclusiveRange {
            begin: member(begin)?,
            end: member(end)?,
        })
    } else {
        let v = member(&input)?;
        Ok(InclusiveRange { begin: v, end: v })
    }
}

/// A `weekdays` entry: `monday` or `monday:friday` (names only, any case).
pub fn parse_weekday_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, |name| {
        WEEKDAYS
            .iter()
            .position(|d| *d == name)
            .map(|i| i as i32)
            .ok_or_else(|| format!("{name} is not a valid weekday"))
    })?;
    if r.begin > r.end {
        return Err("start day cannot be before end day".to_owned());
    }
    Ok(r)
}

/// A `days_of_month` entry: `1`, `1:7`, `-1` (the last day), `-7:-1`.
pub fn parse_day_of_month_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, atoi)?;
    for v in [r.begin, r.end] {
        if v == 0 || !(-31..=31).contains(&v) {
            return Err(format!("{v} is not a valid day of the month: out of range"));
        }
    }
    if r.begin < 0 && r.end > 0 {
        return Err("end day must be negative if start day is negative".to_owned());
    }
    // Alertmanager compares negative days as if the month had 28 days.
    let check = |v: i32| if v < 0 { 28 + v } else { v };
    if check(r.begin) > check(r.end) {
        return Err(format!(
            "end day {} is always before start day {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

/// A `months` entry: names (`january:march`) or numbers (`1:3`). Numbers are not range-checked,
/// as in Alertmanager.
pub fn parse_month_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, |name| match MONTHS.iter().position(|m| *m == name) {
        Some(i) => Ok(i as i32 + 1),
        None => name
            .parse::<i32>()
            .map_err(|_| format!("{name} is not a valid month")),
    })?;
    if r.begin > r.end {
        let name = |v: i32| {
            usize::try_from(v - 1)
                .ok()
                .and_then(|i| MONTHS.get(i))
                .copied()
                .unwrap_or("")
        };
        return Err(format!(
            "end month {} is before start month {}",
            name(r.end),
            name(r.begin)
        ));
    }
    Ok(r)
}

/// A `years` entry: `2024` or `2024:2026`.
pub fn parse_year_range(s: &str) -> Result<InclusiveRange, String> {
    let r = range_from_string(s, atoi)?;
    if r.begin > r.end {
        return Err(format!(
            "end year {} is before start year {}",
            r.end, r.begin
        ));
    }
    Ok(r)
}

/// `HH:MM` from `00:00` to `23:59`, or `24:00`, as minutes in the day.
pub fn parse_time_of_day(s: &str) -> Result<u32, String> {
    let invalid = || format!("couldn't parse timestamp {s}, invalid format");
    let b = s.as_bytes();
    if s == "24:00" {
        return Ok(24 * 60);
    }
    // ^(([01][0-9])|(2[0-3])):[0-5][0-9]$
    if b.len() != 5
        || b[2] != b':'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let hours = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    let minutes = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
    if hours > 23 || minutes > 59 {
        return Err(invalid());
    }
    Ok(hours * 60 + minutes)
}

/// A `times` entry from its `start_time` and `end_time` (empty when absent).
pub fn parse_time_range(start: &str, end: &str) -> Result<TimeRange, String> {
    if start.is_empty() || end.is_empty() {
        return Err("both start and end times must be provided".to_owned());
    }
    let start_minute = parse_time_of_day(start)?;
    let end_minute = parse_time_of_day(end)?;
    if start_minute >= end_minute {
        return Err("start time cannot be equal or greater than end time".to_owned());
    }
    Ok(TimeRange {
        start_minute,
        end_minute,
    })
}

/// A `location`: Go's `time.LoadLocation` names: `""` and `UTC` are UTC, `Local` the system's
/// zone, anything else an IANA name from the system's time-zone database.
pub fn parse_location(name: &str) -> Result<TimeZone, String> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(TimeZone::system()),
        _ => TimeZone::get(name).map_err(|_| format!("unknown time zone {name}")),
    }
}

/// Whether any range contains `v`; `None` (no restriction) always does.
fn restricts(
    ranges: &Option<Vec<InclusiveRange>>,
    contains: impl Fn(&InclusiveRange) -> bool,
) -> bool {
    ranges.as_ref().is_none_or(|rs| rs.iter().any(contains))
}

impl TimeInterval {
    /// Whether the instant (ms since the epoch) is inside this entry: Alertmanager's
    /// `TimeInterval.ContainsTime`. Instants outside jiff's range are never inside.
    pub fn contains(&self, instant_ms: i64) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(instant_ms) else {
            return false;
        };
        let tz = self.location.clone().unwrap_or(TimeZone::UTC);
        let t = ts.to_zoned(tz);
        let minute_of_day = i32::from(t.hour()) * 60 + i32::from(t.minute());
        if let Some(times) = &self.times
            && !times.iter().any(|r| {
                minute_of_day >= r.start_minute as i32 && minute_of_day < r.end_minute as i32
            })
        {
            return false;
        }
        let day = i32::from(t.day());
        let days_in_month = i32::from(t.date().days_in_month());
        let in_days = restricts(&self.days_of_month, |r| {
            let begin = if r.begin < 0 {
                days_in_month + r.begin + 1
            } else {
                r.begin
            };
            let end = if r.end < 0 {
                days_in_month + r.end + 1
            } else {
                r.end
            };
            // A range starting after the month's last day (e.g. 31 in April) skips the month.
            if begin > days_in_month {
                return false;
            }
            let begin = begin.clamp(-days_in_month, days_in_month);
            let end = end.clamp(-days_in_month, days_in_month);
            day >= begin && day <= end
        });
        if !in_days {
            return false;
        }
        let month = i32::from(t.month());
        if !restricts(&self.months, |r| month >= r.begin && month <= r.end) {
            return false;
        }
        let weekday = i32::from(t.weekday().to_sunday_zero_offset());
        if !restricts(&self.weekdays, |r| weekday >= r.begin && weekday <= r.end) {
            return false;
        }
        let year = i32::from(t.year());
        restricts(&self.years, |r| year >= r.begin && year <= r.end)
    }
}

/// Whether any entry of a named interval contains the instant.
pub fn any_contains(intervals: &[TimeInterval], instant_ms: i64) -> bool {
    intervals.iter().any(|ti| ti.contains(instant_ms))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn r(begin: i32, end: i32) -> InclusiveRange {
        InclusiveRange { begin, end }
    }

    #[test]
    fn parses_times_like_alertmanager() {
        assert_eq!(parse_time_of_day("00:00"), Ok(0));
        assert_eq!(parse_time_of_day("09:30"), Ok(570));
        assert_eq!(parse_time_of_day("23:59"), Ok(1439));
        assert_eq!(parse_time_of_day("24:00"), Ok(1440));
        for bad in [
            "24:01", "9:30", "09:60", "25:00", "0930", "09:3a", "", "09:30:00", "２3:00",
        ] {
            assert_eq!(
                parse_time_of_day(bad),
                Err(format!("couldn't parse timestamp {bad}, invalid format")),
                "{bad}"
            );
        }
        assert_eq!(
            parse_time_range("09:00", "17:00"),
            Ok(TimeRange {
                start_minute: 540,
                end_minute: 1020
            })
        );
        assert_eq!(
            parse_time_range("17:00", "09:00").unwrap_err(),
            "start time cannot be equal or greater than end time"
        );
        assert_eq!(
            parse_time_range("", "09:00").unwrap_err(),
            "both start and end times must be provided"
        );
    }

    #[test]
    fn parses_ranges_like_alertmanager() {
        assert_eq!(parse_weekday_range("Monday:FRIDAY"), Ok(r(1, 5)));
        assert_eq!(parse_weekday_range("sunday"), Ok(r(0, 0)));
        assert_eq!(
            parse_weekday_range("friday:monday").unwrap_err(),
            "start day cannot be before end day"
        );
        assert_eq!(
            parse_weekday_range("mon").unwrap_err(),
            "mon is not a valid weekday"
        );
        assert_eq!(
            parse_weekday_range("monday:tuesday:friday").unwrap_err(),
            "couldn't parse range monday:tuesday:friday, invalid format"
        );

        assert_eq!(parse_day_of_month_range("1:7"), Ok(r(1, 7)));
        assert_eq!(parse_day_of_month_range("-7:-1"), Ok(r(-7, -1)));
        assert_eq!(parse_day_of_month_range("20:-1"), Ok(r(20, -1)));
        assert_eq!(
            parse_day_of_month_range("0").unwrap_err(),
            "0 is not a valid day of the month: out of range"
        );
        assert_eq!(
            parse_day_of_month_range("1:32").unwrap_err(),
            "32 is not a valid day of the month: out of range"
        );
        assert_eq!(
            parse_day_of_month_range("-1:5").unwrap_err(),
            "end day must be negative if start day is negative"
        );
        assert_eq!(
            parse_day_of_month_range("10:5").unwrap_err(),
            "end day 5 is always before start day 10"
        );
        assert_eq!(
            parse_day_of_month_range("-1:-7").unwrap_err(),
            "end day -7 is always before start day -1"
        );
        assert_eq!(
            parse_day_of_month_range("x").unwrap_err(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );

        assert_eq!(parse_month_range("January:march"), Ok(r(1, 3)));
        assert_eq!(parse_month_range("2:4"), Ok(r(2, 4)));
        assert_eq!(parse_month_range("13"), Ok(r(13, 13)));
        assert_eq!(
            parse_month_range("march:january").unwrap_err(),
            "end month january is before start month march"
        );
        assert_eq!(
            parse_month_range("jan").unwrap_err(),
            "jan is not a valid month"
        );

        assert_eq!(parse_year_range("2024:2026"), Ok(r(2024, 2026)));
        assert_eq!(parse_year_range("+2024"), Ok(r(2024, 2024)));
        assert_eq!(
            parse_year_range("2026:2024").unwrap_err(),
            "end year 2024 is before start year 2026"
        );
    }

    #[test]
    fn locations() {
        assert_eq!(parse_location("UTC"), Ok(TimeZone::UTC));
        assert_eq!(parse_location(""), Ok(TimeZone::UTC));
        assert!(parse_location("Europe/Berlin").is_ok());
        assert_eq!(
            parse_location("Mars/Olympus").unwrap_err(),
            "unknown time zone Mars/Olympus"
        );
    }

    #[test]
    fn business_hours_in_a_time_zone() {
        let ti = TimeInterval {
            times: Some(vec![parse_time_range("09:00", "17:00").unwrap()]),
            weekdays: Some(vec![parse_weekday_range("monday:friday").unwrap()]),
            location: Some(parse_location("Europe/Berlin").unwrap()),
            ..TimeInterval::default()
        };
        // Monday 2024-01-15: 09:00 in Berlin is 08:00 UTC.
        assert!(!ti.contains(ms("2024-01-15T07:59:59Z")));
        assert!(ti.contains(ms("2024-01-15T08:00:00Z")));
        assert!(ti.contains(ms("2024-01-15T15:59:59Z")));
        // The end is exclusive.
        assert!(!ti.contains(ms("2024-01-15T16:00:00Z")));
        // Saturday.
        assert!(!ti.contains(ms("2024-01-20T10:00:00Z")));
        // Summer time: 09:00 in Berlin is 07:00 UTC.
        assert!(ti.contains(ms("2024-07-15T07:00:00Z")));
        // Without a location the same fields are read in UTC.
        let utc = TimeInterval {
            location: None,
            ..ti.clone()
        };
        assert!(!utc.contains(ms("2024-01-15T08:30:00Z")));
        assert!(utc.contains(ms("2024-01-15T09:00:00Z")));
    }

    #[test]
    fn days_of_month_from_the_end() {
        let last_week = TimeInterval {
            days_of_month: Some(vec![parse_day_of_month_range("-7:-1").unwrap()]),
            ..TimeInterval::default()
        };
        // February 2024 has 29 days: -7 is the 23rd.
        assert!(!last_week.contains(ms("2024-02-22T12:00:00Z")));
        assert!(last_week.contains(ms("2024-02-23T00:00:00Z")));
        assert!(last_week.contains(ms("2024-02-29T23:59:59Z")));
        // 2023 has 28: -7 is the 22nd.
        assert!(last_week.contains(ms("2023-02-22T00:00:00Z")));
        let last_day = TimeInterval {
            days_of_month: Some(vec![r(-1, -1)]),
            ..TimeInterval::default()
        };
        assert!(last_day.contains(ms("2024-04-30T10:00:00Z")));
        assert!(!last_day.contains(ms("2024-04-29T10:00:00Z")));
        // The 31st does not exist in April: that range skips the month.
        let thirty_first = TimeInterval {
            days_of_month: Some(vec![r(31, 31)]),
            ..TimeInterval::default()
        };
        assert!(!thirty_first.contains(ms("2024-04-30T10:00:00Z")));
        assert!(thirty_first.contains(ms("2024-05-31T10:00:00Z")));
        // 25 to the end of the month, written with a negative end.
        let tail = TimeInterval {
            days_of_month: Some(vec![parse_day_of_month_range("25:-1").unwrap()]),
            ..TimeInterval::default()
        };
        assert!(tail.contains(ms("2024-02-29T10:00:00Z")));
        assert!(!tail.contains(ms("2024-02-24T10:00:00Z")));
    }

    #[test]
    fn months_years_and_empty_lists() {
        let ti = TimeInterval {
            months: Some(vec![parse_month_range("december").unwrap(), r(1, 2)]),
            years: Some(vec![parse_year_range("2024:2025").unwrap()]),
            ..TimeInterval::default()
        };
        assert!(ti.contains(ms("2024-12-24T00:00:00Z")));
        assert!(ti.contains(ms("2025-02-01T00:00:00Z")));
        assert!(!ti.contains(ms("2025-03-01T00:00:00Z")));
        assert!(!ti.contains(ms("2026-01-01T00:00:00Z")));
        // No restriction at all: always.
        assert!(TimeInterval::default().contains(0));
        // An empty list restricts to nothing.
        let empty = TimeInterval {
            weekdays: Some(vec![]),
            ..TimeInterval::default()
        };
        assert!(!empty.contains(ms("2024-01-15T10:00:00Z")));
        assert!(any_contains(&[empty.clone(), TimeInterval::default()], 0));
        assert!(!any_contains(&[empty], 0));
        assert!(!any_contains(&[], 0));
        // Instants beyond jiff's range are never inside.
        assert!(!TimeInterval::default().contains(i64::MAX));
    }
}
