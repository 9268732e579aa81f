//! Timestamps of the generic `csv` and `parquet` logs: numbers in a unit, or ISO-8601 text, to
//! canonical unix seconds.
//!
//! A text timestamp (a `csv` cell, or a value of a Parquet string column) is read by
//! [`parse_timestamp`], deterministically per value under `timestamp_format = "auto"`:
//! 1. an integer (`978300760`, `-5`) is a number in `timestamp_unit`;
//! 2. else, text that starts with four digits and `-` (`2000-12-31...`) is ISO-8601;
//! 3. else, a finite decimal number as Rust or pandas writes it (`978300760.0`, `9.783e8`) is a
//!    number in `timestamp_unit`;
//! 4. anything else (empty, `NaN`, `inf`, words) is an error.
//!
//! `timestamp_format = "unix"` accepts only 1 and 3, `"iso8601"` only 2.
//!
//! Numbers are converted to seconds rounding down (toward negative infinity): a fractional part is
//! dropped (`978300760.9` is `978300760`), `978300760999` in `ms` is `978300760`.
//!
//! ISO-8601 (the extended format only): `YYYY-MM-DD`, optionally followed by `T` (or `t`, or one
//! space, as pandas writes) and `hh:mm` or `hh:mm:ss`, optionally with a fraction of a second
//! (`.` or `,` and 1 or more digits; dropped, i.e. rounded down), then optionally `Z` / `z` or an
//! offset `+hh:mm`, `-hh:mm`, `+hhmm` or `+hh`. **Without an offset the time is UTC.** A date
//! alone is midnight UTC. Dates are checked (`2001-02-30` is an error: February 2001 has 28
//! days); hours are `00`-`23`, minutes and seconds `00`-`59` (no leap second `60`, no `24:00`).
//!
//! Whatever the form, the resulting seconds must lie in `0..=`[`MAX_TIMESTAMP_SECS`]
//! (1970-01-01 to 2100-01-01, checked after the conversion); a number after 2100 gives an error
//! that names the unit it probably is in (`timestamp_unit = "ms"`, ...).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// The latest accepted timestamp: 2100-01-01T00:00:00Z in unix seconds. Anything later is almost
/// surely milliseconds (or micro/nanoseconds) given as seconds.
pub const MAX_TIMESTAMP_SECS: i64 = 4_102_444_800;

/// The unit of numeric timestamps in a generic log (`timestamp_unit`, default `s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TimestampUnit {
    /// Unix seconds (`"s"`).
    #[default]
    #[serde(rename = "s")]
    Seconds,
    /// Unix milliseconds (`"ms"`).
    #[serde(rename = "ms")]
    Milliseconds,
    /// Unix microseconds (`"us"`).
    #[serde(rename = "us")]
    Microseconds,
    /// Unix nanoseconds (`"ns"`).
    #[serde(rename = "ns")]
    Nanoseconds,
}

impl TimestampUnit {
    /// Every unit, coarsest first.
    pub const ALL: [TimestampUnit; 4] = [
        TimestampUnit::Seconds,
        TimestampUnit::Milliseconds,
        TimestampUnit::Microseconds,
        TimestampUnit::Nanoseconds,
    ];

    /// The name in configs: `s`, `ms`, `us`, `ns`.
    pub fn name(self) -> &'static str {
        match self {
            TimestampUnit::Seconds => "s",
            TimestampUnit::Milliseconds => "ms",
            TimestampUnit::Microseconds => "us",
            TimestampUnit::Nanoseconds => "ns",
        }
    }

    /// The unit in words (`seconds`, `milliseconds`, ...).
    pub fn words(self) -> &'static str {
        match self {
            TimestampUnit::Seconds => "seconds",
            TimestampUnit::Milliseconds => "milliseconds",
            TimestampUnit::Microseconds => "microseconds",
            TimestampUnit::Nanoseconds => "nanoseconds",
        }
    }

    /// How many of this unit make one second.
    pub fn per_second(self) -> i64 {
        match self {
            TimestampUnit::Seconds => 1,
            TimestampUnit::Milliseconds => 1_000,
            TimestampUnit::Microseconds => 1_000_000,
            TimestampUnit::Nanoseconds => 1_000_000_000,
        }
    }
}

impl fmt::Display for TimestampUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TimestampUnit {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|u| u.name() == s)
            .ok_or_else(|| {
                DataError::config(
                    "columns",
                    format!("timestamp_unit must be s, ms, us or ns, got '{s}'"),
                )
            })
    }
}

/// Which text forms a timestamp may take (`timestamp_format`, default `auto`; see the module
/// docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampFormat {
    /// Numbers and ISO-8601 text, decided per value.
    #[default]
    Auto,
    /// Numbers only (integers or decimals, in `timestamp_unit`).
    Unix,
    /// ISO-8601 dates and date-times only.
    Iso8601,
}

impl TimestampFormat {
    /// The name in configs: `auto`, `unix`, `iso8601`.
    pub fn name(self) -> &'static str {
        match self {
            TimestampFormat::Auto => "auto",
            TimestampFormat::Unix => "unix",
            TimestampFormat::Iso8601 => "iso8601",
        }
    }
}

impl fmt::Display for TimestampFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TimestampFormat {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        [
            TimestampFormat::Auto,
            TimestampFormat::Unix,
            TimestampFormat::Iso8601,
        ]
        .into_iter()
        .find(|f| f.name() == s)
        .ok_or_else(|| {
            DataError::config(
                "columns",
                format!("timestamp_format must be auto, unix or iso8601, got '{s}'"),
            )
        })
    }
}

/// Parses one text timestamp (see the module docs) into unix seconds in
/// `0..=`[`MAX_TIMESTAMP_SECS`]. The error is a message without the location (the caller adds
/// file, line and column).
pub fn parse_timestamp(
    text: &str,
    unit: TimestampUnit,
    format: TimestampFormat,
) -> std::result::Result<i64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(
            "empty timestamp (a missing value: pandas writes NaN / NaT as an empty field)".into(),
        );
    }
    if let Ok(v) = s.parse::<i64>() {
        if format == TimestampFormat::Iso8601 {
            return Err(format!(
                "'{s}' is a number, but timestamp_format = \"iso8601\" (use \"auto\" or \"unix\" \
                 for unix times)"
            ));
        }
        return integer_seconds(v, unit, s);
    }
    if looks_like_iso(s) {
        if format == TimestampFormat::Unix {
            return Err(format!(
                "'{s}' is an ISO-8601 date, but timestamp_format = \"unix\" (use \"auto\" or \
                 \"iso8601\")"
            ));
        }
        let secs = parse_iso8601(s)?;
        return iso_range(secs, s);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            if format == TimestampFormat::Iso8601 {
                return Err(format!(
                    "'{s}' is a number, but timestamp_format = \"iso8601\" (use \"auto\" or \
                     \"unix\" for unix times)"
                ));
            }
            float_seconds(v, unit, s)
        }
        Ok(_) => Err(format!(
            "'{s}' is not a finite number (a timestamp must be a number or an ISO-8601 date)"
        )),
        Err(_) => Err(format!(
            "'{s}' is not a timestamp (expected a unix time such as 978300760 or 978300760.0, \
             or an ISO-8601 date or date-time such as 2000-12-31 or 2000-12-31T22:12:40Z)"
        )),
    }
}

/// An integer in `unit` as range-checked seconds (rounded down); `shown` is the value as given.
pub fn integer_seconds(
    v: i64,
    unit: TimestampUnit,
    shown: &str,
) -> std::result::Result<i64, String> {
    let secs = v.div_euclid(unit.per_second());
    numeric_range(Some(secs), v as f64, unit, shown)
}

/// A finite float in `unit` as range-checked seconds (rounded down); `shown` is the value as given.
pub fn float_seconds(v: f64, unit: TimestampUnit, shown: &str) -> std::result::Result<i64, String> {
    if !v.is_finite() {
        return Err(format!("{shown} is not a finite number"));
    }
    let w = v.floor();
    // i64 holds [-2^63, 2^63): outside, the value is out of range anyway.
    let limit = -(i64::MIN as f64); // 2^63, exact in f64
    let secs = (-limit..limit)
        .contains(&w)
        .then(|| (w as i64).div_euclid(unit.per_second()));
    numeric_range(secs, v, unit, shown)
}

/// The range check of a numeric timestamp, after its conversion to seconds (`None`: beyond i64;
/// `raw` tells its sign).
fn numeric_range(
    secs: Option<i64>,
    raw: f64,
    unit: TimestampUnit,
    shown: &str,
) -> std::result::Result<i64, String> {
    match secs {
        Some(s) if (0..=MAX_TIMESTAMP_SECS).contains(&s) => return Ok(s),
        Some(s) if s < 0 => {}
        None if raw < 0.0 => {}
        _ => {
            // The coarsest finer unit in which the value would be before 2100.
            let mut x = raw / unit.per_second() as f64;
            let mut guess = None;
            for u in TimestampUnit::ALL {
                if u.per_second() <= unit.per_second() {
                    continue;
                }
                x /= 1000.0;
                if x <= MAX_TIMESTAMP_SECS as f64 {
                    guess = Some(u);
                    break;
                }
            }
            return Err(match guess {
                Some(g) => format!(
                    "timestamp {shown} read as {} is after 2100-01-01; it looks like {} given as \
                     {}: set timestamp_unit = \"{}\" in the column mapping (timestamp_unit={} with \
                     --columns)",
                    unit.words(),
                    g.words(),
                    unit.words(),
                    g.name(),
                    g.name()
                ),
                None => format!(
                    "timestamp {shown} read as {} is after 2100-01-01, even as nanoseconds \
                     (timestamp_unit = \"s\" | \"ms\" | \"us\" | \"ns\")",
                    unit.words()
                ),
            });
        }
    }
    Err(format!(
        "timestamp {shown} is negative (expected unix time since 1970, in {})",
        unit.words()
    ))
}

fn iso_range(secs: i64, shown: &str) -> std::result::Result<i64, String> {
    if secs < 0 {
        Err(format!(
            "timestamp '{shown}' is before 1970-01-01T00:00:00Z (timestamps must lie between \
             1970 and 2100)"
        ))
    } else if secs > MAX_TIMESTAMP_SECS {
        Err(format!(
            "timestamp '{shown}' is after 2100-01-01T00:00:00Z (timestamps must lie between \
             1970 and 2100)"
        ))
    } else {
        Ok(secs)
    }
}

/// Whether `s` starts like an ISO-8601 date (`YYYY-`): such text is never a number.
fn looks_like_iso(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// The value of `b` when it is all ASCII digits (and not empty), else `None`.
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0')),
    )
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

/// Parses an ISO-8601 date or date-time (see the module docs) into unix seconds, rounded down;
/// not range-checked.
pub fn parse_iso8601(s: &str) -> std::result::Result<i64, String> {
    let shape = || {
        format!(
            "'{s}' is not an ISO-8601 date or date-time (expected YYYY-MM-DD, optionally \
             followed by T or a space and hh:mm[:ss[.fff]], then optionally Z or +hh:mm)"
        )
    };
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(shape());
    }
    let (Some(y), Some(m), Some(d)) = (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return Err(shape());
    };
    if !(1..=12).contains(&m) {
        return Err(format!("'{s}' is not a valid date: month {m} is not 1-12"));
    }
    let dim = days_in_month(y, m);
    if !(1..=dim).contains(&d) {
        return Err(format!(
            "'{s}' is not a valid date: {} {y} has {dim} days",
            MONTHS[(m - 1) as usize]
        ));
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    let rest = &b[10..];
    if rest.is_empty() {
        return Ok(secs);
    }
    if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 6 || rest[3] != b':' {
        return Err(shape());
    }
    let (Some(hh), Some(mm)) = (digits(&rest[1..3]), digits(&rest[4..6])) else {
        return Err(shape());
    };
    let mut k = 6;
    let mut ss = 0;
    if rest.get(k) == Some(&b':') {
        ss = rest.get(k + 1..k + 3).and_then(digits).ok_or_else(shape)?;
        k += 3;
        if matches!(rest.get(k), Some(b'.') | Some(b',')) {
            let n = rest[k + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 {
                return Err(shape());
            }
            k += 1 + n;
        }
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return Err(format!(
            "'{s}' is not a valid time of day (hours 00-23, minutes and seconds 00-59)"
        ));
    }
    secs += hh * 3_600 + mm * 60 + ss;
    let zone = &rest[k..];
    let offset = match zone {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (oh, om) = match tail {
                [h1, h2] => (digits(&[*h1, *h2]), Some(0)),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2]), digits(&[*m1, *m2]))
                }
                _ => (None, None),
            };
            let (Some(oh), Some(om)) = (oh, om) else {
                return Err(shape());
            };
            if oh > 23 || om > 59 {
                return Err(format!(
                    "'{s}' has an invalid UTC offset (hours 00-23, minutes 00-59)"
                ));
            }
            let o = oh * 3_600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(shape()),
    };
    // Local time = UTC + offset.
    Ok(secs - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: TimestampUnit = TimestampUnit::Seconds;
    const AUTO: TimestampFormat = TimestampFormat::Auto;

    #[test]
    fn iso8601_forms_agree_with_known_unix_times() {
        // ml-1m's first rating: 978300760 = 2000-12-31T22:12:40Z.
        for s in [
            "2000-12-31T22:12:40",
            "2000-12-31 22:12:40",
            "2000-12-31t22:12:40Z",
            "2000-12-31T22:12:40z",
            "2000-12-31T22:12:40.999999999",
            "2000-12-31 22:12:40,5",
            "2000-12-31T22:12:40+00:00",
            "2000-12-31T22:12:40-00:00",
            "2001-01-01T00:12:40+02:00",
            "2001-01-01T00:12:40.123+0200",
            "2000-12-31T21:12:40-01",
            "2000-12-31T17:42:40-04:30",
            "  2000-12-31T22:12:40Z  ",
        ] {
            assert_eq!(parse_timestamp(s, S, AUTO), Ok(978_300_760), "{s}");
        }
        assert_eq!(
            parse_timestamp("2000-12-31T22:12", S, AUTO),
            Ok(978_300_720)
        );
        assert_eq!(parse_timestamp("2000-12-31", S, AUTO), Ok(978_220_800));
        assert_eq!(parse_timestamp("1970-01-01", S, AUTO), Ok(0));
        assert_eq!(parse_timestamp("2000-02-29", S, AUTO), Ok(951_782_400));
        assert_eq!(
            parse_timestamp("2100-01-01T00:00:00Z", S, AUTO),
            Ok(MAX_TIMESTAMP_SECS)
        );
        // Every day from 1970 to 2100 against a running count.
        let mut day = 0;
        for y in 1970..2100 {
            for m in 1..=12 {
                for d in 1..=days_in_month(y, m) {
                    assert_eq!(days_from_civil(y, m, d), day, "{y}-{m}-{d}");
                    day += 1;
                }
            }
        }
    }

    #[test]
    fn iso8601_errors_are_precise() {
        for (s, what) in [
            ("2001-02-30", "February 2001 has 28 days"),
            ("1900-02-29", "February 1900 has 28 days"),
            ("2001-13-01", "month 13"),
            ("2001-00-10", "month 0"),
            ("2001-04-31", "April 2001 has 30 days"),
            ("2001-01-01T24:00:00", "time of day"),
            ("2001-01-01T23:60", "time of day"),
            ("2001-01-01T23:59:60", "time of day"),
            ("2001-01-01T23:59:59+24:00", "UTC offset"),
            ("2001-01-01T23", "not an ISO-8601"),
            ("2001-01-01T23:59:5", "not an ISO-8601"),
            ("2001-01-01T23:59:59.", "not an ISO-8601"),
            ("2001-01-01T23:59:59 Z", "not an ISO-8601"),
            ("2001-01-01T23:59:59+1", "not an ISO-8601"),
            ("2001-01-01X", "not an ISO-8601"),
            ("2001-1-01", "not an ISO-8601"),
            ("2001-01-01T23:59:59+01:00:00", "not an ISO-8601"),
            ("2001-01-01T23:59:59é", "not an ISO-8601"),
            ("1969-12-31T23:59:59Z", "before 1970"),
            ("2100-01-01T00:00:01Z", "after 2100"),
            ("9999-12-31", "after 2100"),
        ] {
            let e = parse_timestamp(s, S, AUTO).unwrap_err();
            assert!(e.contains(what), "{s}: {what}: {e}");
        }
    }

    #[test]
    fn numbers_in_units_round_down_and_are_range_checked_after_conversion() {
        let ms = TimestampUnit::Milliseconds;
        assert_eq!(parse_timestamp("978300760", S, AUTO), Ok(978_300_760));
        assert_eq!(parse_timestamp("978300760.0", S, AUTO), Ok(978_300_760));
        assert_eq!(parse_timestamp("978300760.9", S, AUTO), Ok(978_300_760));
        assert_eq!(parse_timestamp("9.783e8", S, AUTO), Ok(978_300_000));
        assert_eq!(parse_timestamp("+7", S, AUTO), Ok(7));
        assert_eq!(parse_timestamp("-0", S, AUTO), Ok(0));
        assert_eq!(parse_timestamp("978300760999", ms, AUTO), Ok(978_300_760));
        assert_eq!(parse_timestamp("978300760999.0", ms, AUTO), Ok(978_300_760));
        assert_eq!(
            parse_timestamp("978300760123456", TimestampUnit::Microseconds, AUTO),
            Ok(978_300_760)
        );
        assert_eq!(
            parse_timestamp("978300760123456789", TimestampUnit::Nanoseconds, AUTO),
            Ok(978_300_760)
        );
        assert_eq!(
            parse_timestamp("4102444800999", ms, AUTO),
            Ok(MAX_TIMESTAMP_SECS)
        );
        // Milliseconds given as seconds: the error suggests the unit.
        let e = parse_timestamp("978300760000", S, AUTO).unwrap_err();
        assert!(
            e.contains("looks like milliseconds") && e.contains("timestamp_unit = \"ms\""),
            "{e}"
        );
        let e = parse_timestamp("978300760000000.0", S, AUTO).unwrap_err();
        assert!(e.contains("timestamp_unit = \"us\""), "{e}");
        let e = parse_timestamp("978300760000000000", ms, AUTO).unwrap_err();
        assert!(e.contains("timestamp_unit = \"ns\""), "{e}");
        let e = parse_timestamp("1e300", S, AUTO).unwrap_err();
        assert!(e.contains("even as nanoseconds"), "{e}");
        let e = parse_timestamp("99999999999999999999", S, AUTO).unwrap_err();
        assert!(e.contains("after 2100"), "{e}");
        for s in ["-1", "-0.5", "-1e300"] {
            let e = parse_timestamp(s, S, AUTO).unwrap_err();
            assert!(e.contains("negative"), "{s}: {e}");
        }
        let e = parse_timestamp("-1", ms, AUTO).unwrap_err();
        assert!(e.contains("milliseconds"), "{e}");
        for s in ["NaN", "nan", "inf", "-inf", "infinity"] {
            let e = parse_timestamp(s, S, AUTO).unwrap_err();
            assert!(e.contains("not a finite number"), "{s}: {e}");
        }
        for s in ["", "  "] {
            assert!(parse_timestamp(s, S, AUTO).unwrap_err().contains("empty"));
        }
        for s in ["x", "12:00", "31/12/2000", "0x10", "1_000"] {
            let e = parse_timestamp(s, S, AUTO).unwrap_err();
            assert!(e.contains("is not a timestamp"), "{s}: {e}");
        }
    }

    #[test]
    fn explicit_formats_refuse_the_other_form() {
        let unix = TimestampFormat::Unix;
        let iso = TimestampFormat::Iso8601;
        assert_eq!(parse_timestamp("5", S, unix), Ok(5));
        assert_eq!(parse_timestamp("5.5", S, unix), Ok(5));
        assert!(parse_timestamp("2000-12-31", S, unix)
            .unwrap_err()
            .contains("timestamp_format = \"unix\""));
        assert_eq!(parse_timestamp("2000-12-31", S, iso), Ok(978_220_800));
        for s in ["5", "5.5"] {
            let e = parse_timestamp(s, S, iso).unwrap_err();
            assert!(e.contains("timestamp_format = \"iso8601\""), "{s}: {e}");
        }
        assert_eq!("ms".parse::<TimestampUnit>().unwrap().per_second(), 1_000);
        assert_eq!(
            "iso8601".parse::<TimestampFormat>().unwrap(),
            TimestampFormat::Iso8601
        );
        assert!("sec".parse::<TimestampUnit>().is_err());
        assert!("iso".parse::<TimestampFormat>().is_err());
    }
}
