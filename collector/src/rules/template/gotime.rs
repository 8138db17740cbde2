//! Go's `time.Time` as templates show it: `String()` and `Format(layout)` with Go's reference
//! layout (`Mon Jan 2 15:04:05 MST 2006`), always in UTC, which is how Prometheus' `toTime`
//! and `humanizeTimestamp` present times.

/// A time broken down into its UTC calendar fields.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// 0 = Sunday, as Go's `time.Weekday`.
    weekday: u32,
    /// 1-based day of the year.
    yday: u32,
}

/// Splits nanoseconds since the epoch into UTC calendar fields (the proleptic Gregorian
/// calendar, as Go uses; Howard Hinnant's `civil_from_days`).
fn civil(unix_nanos: i128) -> Civil {
    let secs = unix_nanos.div_euclid(1_000_000_000) as i64;
    let nanos = unix_nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const BEFORE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = BEFORE[(month - 1) as usize] + day + u32::from(leap && month > 2);
    Civil {
        year,
        month,
        day,
        hour: of_day / 3600,
        minute: (of_day / 60) % 60,
        second: of_day % 60,
        nanos,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(super) fn string(unix_nanos: i128) -> String {
    format(unix_nanos, "2006-01-02 15:04:05.999999999 -0700 MST")
}

/// One element of a layout: literal text or a field.
enum Chunk<'a> {
    Lit(&'a str),
    Std(Std),
}

#[derive(Clone, Copy)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    LowerPm,
    Tz,
    /// Numeric zone offsets; `iso` prints `Z` for UTC. The width selects the form.
    NumTz {
        iso: bool,
        form: &'static str,
    },
    /// Fractional seconds with `n` digits; `trim` (the `9` form) drops trailing zeros.
    Frac {
        sep: char,
        n: usize,
        trim: bool,
    },
}

/// Go's `nextStdChunk`: finds the next layout element.
fn chunks(layout: &str) -> Vec<Chunk<'_>> {
    let b = layout.as_bytes();
    let mut out = Vec::new();
    let mut lit = 0;
    let mut i = 0;
    while i < b.len() {
        let rest = &layout[i..];
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if rest.starts_with("January") => Some((Std::LongMonth, 7)),
            b'J' if rest.starts_with("Jan") => Some((Std::Month, 3)),
            b'M' if rest.starts_with("Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if rest.starts_with("Mon") => Some((Std::WeekDay, 3)),
            b'M' if rest.starts_with("MST") => Some((Std::Tz, 3)),
            b'0' if rest.starts_with("002") => Some((Std::ZeroYearDay, 3)),
            b'0' => match b.get(i + 1) {
                Some(b'1') => Some((Std::ZeroMonth, 2)),
                Some(b'2') => Some((Std::ZeroDay, 2)),
                Some(b'3') => Some((Std::ZeroHour12, 2)),
                Some(b'4') => Some((Std::ZeroMinute, 2)),
                Some(b'5') => Some((Std::ZeroSecond, 2)),
                Some(b'6') => Some((Std::Year, 2)),
                _ => None,
            },
            b'1' if rest.starts_with("15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if rest.starts_with("2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if rest.starts_with("_2006") => {
                // Go keeps the underscore as text and reads the year.
                out.push(Chunk::Lit(&layout[lit..i + 1]));
                lit = i + 1;
                i += 1;
                continue;
            }
            b'_' if rest.starts_with("__2") => Some((Std::UnderYearDay, 3)),
            b'_' if rest.starts_with("_2") => Some((Std::UnderDay, 2)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if rest.starts_with("PM") => Some((Std::Pm, 2)),
            b'p' if rest.starts_with("pm") => Some((Std::LowerPm, 2)),
            b'-' | b'Z' => {
                let iso = b[i] == b'Z';
                let body = &rest[1..];
                ["07:00:00", "070000", "07:00", "0700", "07"]
                    .into_iter()
                    .find(|f| body.starts_with(f))
                    .map(|f| (Std::NumTz { iso, form: f }, f.len() + 1))
            }
            b'.' | b',' => {
                let digit = b.get(i + 1).copied();
                match digit {
                    Some(d @ (b'0' | b'9')) => {
                        let mut j = i + 1;
                        while j < b.len() && b[j] == d {
                            j += 1;
                        }
                        // Only when the run is not followed by another digit.
                        if j < b.len() && b[j].is_ascii_digit() {
                            None
                        } else {
                            Some((
                                Std::Frac {
                                    sep: b[i] as char,
                                    n: j - i - 1,
                                    trim: d == b'9',
                                },
                                j - i,
                            ))
                        }
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match found {
            Some((std, len)) => {
                if lit < i {
                    out.push(Chunk::Lit(&layout[lit..i]));
                }
                out.push(Chunk::Std(std));
                i += len;
                lit = i;
            }
            None => {
                // Advance by a whole character so slices stay on UTF-8 boundaries.
                i += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    if lit < b.len() {
        out.push(Chunk::Lit(&layout[lit..]));
    }
    out
}

/// Go's `Time.Format(layout)` for a UTC time.
pub(super) fn format(unix_nanos: i128, layout: &str) -> String {
    let c = civil(unix_nanos);
    let mut out = String::new();
    let hour12 = match c.hour % 12 {
        0 => 12,
        h => h,
    };
    for chunk in chunks(layout) {
        match chunk {
            Chunk::Lit(s) => out.push_str(s),
            Chunk::Std(std) => {
                let s = match std {
                    Std::LongMonth => MONTHS[(c.month - 1) as usize].to_owned(),
                    Std::Month => MONTHS[(c.month - 1) as usize][..3].to_owned(),
                    Std::NumMonth => c.month.to_string(),
                    Std::ZeroMonth => format!("{:02}", c.month),
                    Std::LongWeekDay => DAYS[c.weekday as usize].to_owned(),
                    Std::WeekDay => DAYS[c.weekday as usize][..3].to_owned(),
                    Std::Day => c.day.to_string(),
                    Std::UnderDay => format!("{:>2}", c.day),
                    Std::ZeroDay => format!("{:02}", c.day),
                    Std::UnderYearDay => format!("{:>3}", c.yday),
                    Std::ZeroYearDay => format!("{:03}", c.yday),
                    Std::Hour => format!("{:02}", c.hour),
                    Std::Hour12 => hour12.to_string(),
                    Std::ZeroHour12 => format!("{hour12:02}"),
                    Std::Minute => c.minute.to_string(),
                    Std::ZeroMinute => format!("{:02}", c.minute),
                    Std::Second => c.second.to_string(),
                    Std::ZeroSecond => format!("{:02}", c.second),
                    Std::LongYear => {
                        if c.year < 0 {
                            format!("-{:04}", -c.year)
                        } else {
                            format!("{:04}", c.year)
                        }
                    }
                    Std::Year => format!("{:02}", c.year.rem_euclid(100)),
                    Std::Pm => if c.hour >= 12 { "PM" } else { "AM" }.to_owned(),
                    Std::LowerPm => if c.hour >= 12 { "pm" } else { "am" }.to_owned(),
                    Std::Tz => "UTC".to_owned(),
                    Std::NumTz { iso: true, .. } => "Z".to_owned(),
                    Std::NumTz { iso: false, form } => match form {
                        "07:00:00" => "+00:00:00",
                        "070000" => "+000000",
                        "07:00" => "+00:00",
                        "0700" => "+0000",
                        _ => "+00",
                    }
                    .to_owned(),
                    Std::Frac { sep, n, trim } => {
                        let digits = format!("{:09}", c.nanos);
                        let digits = &digits[..n.min(9)];
                        if trim {
                            let t = digits.trim_end_matches('0');
                            if t.is_empty() {
                                String::new()
                            } else {
                                format!("{sep}{t}")
                            }
                        } else {
                            format!("{sep}{digits}")
                        }
                    }
                };
                out.push_str(&s);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i128 = 1_000_000_000;

    #[test]
    fn string_matches_go() {
        assert_eq!(string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            string(1_700_000_000 * NS + 500_000_000),
            "2023-11-14 22:13:20.5 +0000 UTC"
        );
        assert_eq!(string(-NS), "1969-12-31 23:59:59 +0000 UTC");
        // Go's zero time, which Alertmanager shows for a firing alert's EndsAt.
        assert_eq!(
            string(-62_135_596_800 * NS),
            "0001-01-01 00:00:00 +0000 UTC"
        );
    }

    #[test]
    fn layouts_match_go() {
        let t = 1_700_000_000 * NS + 123_456_789;
        for (layout, want) in [
            ("2006-01-02", "2023-11-14"),
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Tue Nov 14 22:13:20 UTC 2023",
            ),
            (
                "Monday, January 2, 2006 3:04PM",
                "Tuesday, November 14, 2023 10:13PM",
            ),
            ("02/01/06 03:04:05.000 pm", "14/11/23 10:13:20.123 pm"),
            ("15:04:05.999999", "22:13:20.123456"),
            ("2006-01-02T15:04:05Z07:00", "2023-11-14T22:13:20Z"),
            ("-0700 -07:00 -07", "+0000 +00:00 +00"),
            ("day 002 of 2006", "day 318 of 2023"),
            ("literal ÿ text", "literal ÿ text"),
        ] {
            assert_eq!(format(t, layout), want, "{layout}");
        }
    }
}
