//! Windows a limit counts in: fixed, aligned spans of wall-clock time (a UTC second, minute,
//! hour or day; a budget's period of N days or a calendar month), numbered so that two shards
//! agree on which window "now" is without talking.

/// A limit's counting window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// Seconds, aligned to the unix epoch: 1 (per second), 60, 3600, 86400.
    Secs(u32),
    /// `N` days, from midnight at a fixed offset from UTC (minutes; 0 is UTC). 1: the day; 7:
    /// ISO weeks (from Monday); other N: blocks of N days since 1970-01-01.
    Days(u32, i32),
    /// Calendar months, at a fixed offset from UTC (minutes).
    Month(i32),
    /// No window: a gauge (concurrent requests) or a lifetime budget.
    Forever,
}

const DAY_MS: i64 = 86_400_000;

impl Window {
    /// The number of the window holding `now_ms`, modulo 2^24 (the pool packs it in 24 bits;
    /// only equality matters, and a slot untouched for 2^24 windows is the only way to alias).
    pub fn index(self, now_ms: i64) -> u32 {
        let local = now_ms + self.offset_ms();
        let n = match self {
            Window::Secs(s) => now_ms.div_euclid(i64::from(s.max(1)) * 1000),
            Window::Days(7, _) => (local.div_euclid(DAY_MS) + 3).div_euclid(7),
            Window::Days(d, _) => local.div_euclid(DAY_MS).div_euclid(i64::from(d.max(1))),
            Window::Month(_) => {
                let (y, m, _) = crate::observe::time::civil(local);
                y * 12 + m - 1
            }
            Window::Forever => 0,
        };
        (n as u64 & 0xff_ffff) as u32
    }

    fn offset_ms(self) -> i64 {
        match self {
            Window::Days(_, o) | Window::Month(o) => i64::from(o) * 60_000,
            Window::Secs(_) | Window::Forever => 0,
        }
    }

    /// When the window holding `now_ms` began and ends (unix ms); `None` for `Forever`.
    pub fn bounds(self, now_ms: i64) -> Option<(i64, i64)> {
        let off = self.offset_ms();
        self.local_bounds(now_ms + off)
            .map(|(a, b)| (a - off, b - off))
    }

    /// [`Window::bounds`] on the local clock (`now` already shifted by the offset).
    fn local_bounds(self, now_ms: i64) -> Option<(i64, i64)> {
        let span = |start: i64, len: i64| Some((start, start + len));
        match self {
            Window::Secs(s) => {
                let len = i64::from(s.max(1)) * 1000;
                span(now_ms.div_euclid(len) * len, len)
            }
            Window::Days(7, _) => {
                let week = (now_ms.div_euclid(DAY_MS) + 3).div_euclid(7);
                span((week * 7 - 3) * DAY_MS, 7 * DAY_MS)
            }
            Window::Days(d, _) => {
                let len = i64::from(d.max(1)) * DAY_MS;
                span(now_ms.div_euclid(len) * len, len)
            }
            Window::Month(_) => {
                let (y, m, _) = crate::observe::time::civil(now_ms);
                let start = crate::observe::time::from_civil(y, m, 1);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Some((start, crate::observe::time::from_civil(ny, nm, 1)))
            }
            Window::Forever => None,
        }
    }

    /// Milliseconds until the window holding `now_ms` ends.
    pub fn left_ms(self, now_ms: i64) -> Option<i64> {
        self.bounds(now_ms).map(|(_, end)| end - now_ms)
    }

    /// A budget period as LiteLLM writes it: `1d`, `7d`, `30d`, `1mo`, `12h`, `2w`; days and
    /// months begin at midnight `offset_min` minutes from UTC.
    pub fn parse_period(text: &str, offset_min: i32) -> Option<Window> {
        let t = text.trim();
        if let Some(n) = t.strip_suffix("mo") {
            return (n.parse::<u32>().ok()? == 1).then_some(Window::Month(offset_min));
        }
        let secs = crate::store::time::parse_duration(t)?;
        match secs {
            s if s % 86_400 == 0 => Some(Window::Days(u32::try_from(s / 86_400).ok()?, offset_min)),
            s if 86_400 % s == 0 => Some(Window::Secs(s as u32)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::time::parse_iso8601;

    fn at(iso: &str) -> i64 {
        parse_iso8601(iso).unwrap()
    }

    #[test]
    fn windows_are_aligned_in_utc() {
        let now = at("2026-12-02T15:04:05Z");
        assert_eq!(
            Window::Secs(60).bounds(now),
            Some((at("2026-12-02T15:04:00Z"), at("2026-12-02T15:05:00Z")))
        );
        assert_eq!(
            Window::Days(1, 0).bounds(now),
            Some((at("2026-12-02T00:00:00Z"), at("2026-12-03T00:00:00Z")))
        );
        // 2026-12-02 is a Wednesday: its ISO week began on Monday the 30th of November.
        assert_eq!(
            Window::Days(7, 0).bounds(now),
            Some((at("2026-11-30T00:00:00Z"), at("2026-12-07T00:00:00Z")))
        );
        assert_eq!(
            Window::Month(0).bounds(now),
            Some((at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z")))
        );
        assert_eq!(
            Window::Month(0).left_ms(at("2026-12-31T23:59:59Z")),
            Some(1000)
        );
        assert_eq!(Window::Forever.bounds(now), None);
        assert_ne!(
            Window::Secs(60).index(now),
            Window::Secs(60).index(now + 60_000)
        );
        assert_eq!(
            Window::Days(7, 0).index(at("2026-11-30T00:00:00Z")),
            Window::Days(7, 0).index(at("2026-12-06T23:59:59Z"))
        );
    }

    #[test]
    fn periods_parse_as_litellm_writes_them() {
        assert_eq!(Window::parse_period("1mo", 0), Some(Window::Month(0)));
        assert_eq!(Window::parse_period("30d", 60), Some(Window::Days(30, 60)));
        assert_eq!(Window::parse_period("2w", 0), Some(Window::Days(14, 0)));
        assert_eq!(Window::parse_period("1h", 0), Some(Window::Secs(3600)));
        assert_eq!(Window::parse_period("7h", 0), None, "does not divide a day");
        assert_eq!(Window::parse_period("2mo", 0), None);
    }

    #[test]
    fn a_configured_offset_moves_midnight() {
        // 2026-12-02T20:00Z is already the 3rd at UTC+05:30 (01:30), and still the 2nd at -08:00.
        let now = at("2026-12-02T20:00:00Z");
        let ist = Window::Days(1, 330).bounds(now).unwrap();
        assert_eq!(
            ist,
            (at("2026-12-02T18:30:00Z"), at("2026-12-03T18:30:00Z"))
        );
        let pst = Window::Days(1, -480).bounds(now).unwrap();
        assert_eq!(
            pst,
            (at("2026-12-02T08:00:00Z"), at("2026-12-03T08:00:00Z"))
        );
        assert_ne!(
            Window::Days(1, 330).index(now),
            Window::Days(1, 0).index(now)
        );
        let month = Window::Month(330)
            .bounds(at("2026-11-30T19:00:00Z"))
            .unwrap();
        assert_eq!(
            month.0,
            at("2026-11-30T18:30:00Z"),
            "December began at local midnight"
        );
    }
}
