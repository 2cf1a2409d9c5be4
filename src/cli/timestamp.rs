//! Reading the API's timestamps as Unix seconds, only to tell whether a key has expired.
//! Accepts RFC 3339 and its common relaxations (a space for `T`, no offset meaning UTC, a bare
//! date) and a JSON number of seconds; anything else is `None`, and the caller then does not
//! claim the key has expired.

use serde_json::Value;

pub fn unix_seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|x| x as i64)),
        Value::String(s) => parse(s),
        _ => None,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut seconds = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = time {
        let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
            Some(i) => (&time[..i], &time[i..]),
            None => (time, ""),
        };
        let clock = clock.split('.').next()?;
        let mut hms = clock.splitn(3, ':');
        let (h, mi) = (number(hms.next()?)?, number(hms.next()?)?);
        let sec = hms.next().map_or(Some(0), number)?;
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        seconds += h * 3600 + mi * 60 + sec;
        seconds -= match offset.as_bytes().first() {
            None | Some(b'Z' | b'z') => 0,
            Some(sign) => {
                let (oh, om) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
                let o = number(oh)? * 3600 + number(om)? * 60;
                if *sign == b'-' { -o } else { o }
            }
        };
    }
    Some(seconds)
}

fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
        return None;
    }
    s.parse().ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_and_its_relaxations() {
        assert_eq!(unix_seconds(&json!("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(
            unix_seconds(&json!("2024-02-29T12:30:15Z")),
            Some(1_709_209_815)
        );
        assert_eq!(
            unix_seconds(&json!("2024-02-29T12:30:15.123456+00:00")),
            Some(1_709_209_815)
        );
        assert_eq!(
            unix_seconds(&json!("2024-02-29T14:30:15+02:00")),
            Some(1_709_209_815)
        );
        assert_eq!(
            unix_seconds(&json!("2024-02-29T07:00:15-05:30")),
            Some(1_709_209_815)
        );
        assert_eq!(
            unix_seconds(&json!("2024-02-29 12:30:15")),
            Some(1_709_209_815)
        );
        assert_eq!(unix_seconds(&json!("2024-02-29")), Some(1_709_164_800));
        assert_eq!(unix_seconds(&json!(1_709_209_815)), Some(1_709_209_815));
        assert_eq!(unix_seconds(&json!(1.5)), Some(1));
    }

    #[test]
    fn anything_else_is_unknown() {
        for bad in [
            "",
            "never",
            "2024-13-01",
            "2024-02-30x",
            "2024-02-29T25:00:00Z",
            "12:00",
        ] {
            assert_eq!(unix_seconds(&json!(bad)), None, "{bad}");
        }
        assert_eq!(unix_seconds(&json!(null)), None);
        assert_eq!(unix_seconds(&json!(true)), None);
    }
}
