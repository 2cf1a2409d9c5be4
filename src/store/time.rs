//! Durations as the admin API takes them: LiteLLM's "30s", "15m", "12h", "7d", "2w", "1mo".
//! (Times are unix milliseconds inside and ISO 8601 outside: [`crate::observe::time`].)

/// A LiteLLM duration — a positive whole number and a unit, `s`, `m`, `h`, `d`, `w` or `mo` — in
/// seconds. `None` if malformed or too large to add to a unix-ms time.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        // LiteLLM's month; a fixed 30 days here (a budget's calendar-month reset is the
        // limits' business, which keep `budget_duration` as written).
        "mo" => 30 * 86_400,
        _ => return None,
    };
    let n: i64 = digits.parse().ok().filter(|&n| n > 0)?;
    // Bounded so `now_ms + secs * 1000` cannot overflow: 10^15 s is ~31 million years.
    n.checked_mul(unit_secs)
        .filter(|&s| s <= 1_000_000_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        assert_eq!(parse_duration(" 1h "), Some(3600));
        assert_eq!(parse_duration("1mo"), Some(2_592_000));
        for bad in [
            "",
            "h",
            "1",
            "0s",
            "-1h",
            "1.5h",
            "1H",
            "1 h",
            "1m0",
            "1hh",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
