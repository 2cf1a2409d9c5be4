//! Wall-clock times as text: ISO 8601 UTC (`2026-12-02T15:04:05Z`), for API bodies, error
//! messages and the CLI. No time-zone database: the gateway speaks UTC only.

/// Formats unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (seconds precision).
pub fn iso8601(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses what [`iso8601`] writes (and a fractional-seconds or `+00:00` variant) back to unix
/// milliseconds.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let first3: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        ms = first3.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    if !(rest == "Z" || rest == "+00:00") || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + ms)
}

/// The UTC (year, month 1-12, day) of unix milliseconds.
pub fn civil(unix_ms: i64) -> (i64, i64, i64) {
    civil_from_days(unix_ms.div_euclid(86_400_000))
}

/// Unix milliseconds of a UTC date's midnight.
pub fn from_civil(y: i64, m: i64, d: i64) -> i64 {
    days_from_civil(y, m, d) * 86_400_000
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_days_follow_the_calendar() {
        fn month_len(y: i64, m: i64) -> i64 {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            }
        }
        let mut prev = civil_from_days(-800_000);
        for day in -799_999..800_000 {
            let (y, m, d) = civil_from_days(day);
            let expected = if prev.2 < month_len(prev.0, prev.1) {
                (prev.0, prev.1, prev.2 + 1)
            } else if prev.1 < 12 {
                (prev.0, prev.1 + 1, 1)
            } else {
                (prev.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {day}");
            assert_eq!(days_from_civil(y, m, d), day);
            prev = (y, m, d);
        }
    }

    #[test]
    fn known_dates_both_ways() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_764_687_845_000, "2025-12-02T15:04:05Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (-1_000, "1969-12-31T23:59:59Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00Z"),
        ] {
            assert_eq!(iso8601(ms), text);
            assert_eq!(parse_iso8601(text), Some(ms), "{text}");
        }
        assert_eq!(
            parse_iso8601("2025-12-02T15:04:05.250Z"),
            Some(1_764_687_845_250)
        );
        assert_eq!(
            parse_iso8601("2025-12-02T15:04:05+00:00"),
            Some(1_764_687_845_000)
        );
        for bad in [
            "",
            "2025-13-02T15:04:05Z",
            "2025-12-02 15:04:05Z",
            "2025-12-02T15:04:05",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
