//! When a rate-limited OpenAI provider says it resets, from the headers other than `Retry-After`:
//! OpenAI's `x-ratelimit-reset-requests` / `-tokens` (durations such as `1s`, `6m0s`, `20ms`),
//! paired with `x-ratelimit-remaining-*` to tell which limit ran out. Read only on a 429.

/// What a 429's rate-limit headers say, gathered header by header.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reset {
    /// Seconds until each limit resets: requests, tokens.
    reset: [Option<f64>; 2],
    /// Whether each limit is exhausted (`remaining: 0`).
    empty: [bool; 2],
}

impl Reset {
    /// Takes one response header (name compared case-insensitively).
    pub fn observe(&mut self, name: &[u8], value: &[u8]) {
        let Some(rest) = strip_prefix_ci(name, b"x-ratelimit-") else {
            return;
        };
        let (field, which) = if let Some(w) = strip_prefix_ci(rest, b"reset-") {
            (0, w)
        } else if let Some(w) = strip_prefix_ci(rest, b"remaining-") {
            (1, w)
        } else {
            return;
        };
        let i = if which.eq_ignore_ascii_case(b"requests") {
            0
        } else if which.eq_ignore_ascii_case(b"tokens") {
            1
        } else {
            return;
        };
        let value = std::str::from_utf8(value).unwrap_or("").trim();
        if field == 0 {
            self.reset[i] = duration_secs(value);
        } else {
            self.empty[i] = value.parse::<u64>() == Ok(0);
        }
    }

    /// Whole seconds to wait (at least 1): the reset of the exhausted limit(s), else the
    /// sooner of the two resets given; `None` when the headers named none.
    pub fn wait_secs(&self) -> Option<u64> {
        let exhausted = (0..2)
            .filter(|&i| self.empty[i])
            .filter_map(|i| self.reset[i])
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
        let any = self
            .reset
            .iter()
            .flatten()
            .fold(None, |m: Option<f64>, &s| Some(m.map_or(s, |m| m.min(s))));
        exhausted.or(any).map(|s| (s.ceil() as u64).max(1))
    }
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// `1s`, `6m0s`, `1h2m3.5s`, `20ms`, or plain seconds; `None` if it is none of these.
fn duration_secs(v: &str) -> Option<f64> {
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then_some(s);
    }
    let mut total = 0.0;
    let mut rest = v;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let number: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return None;
        };
        total += number * unit;
        rest = &rest[len..];
    }
    (!v.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset(headers: &[(&str, &str)]) -> Option<u64> {
        let mut r = Reset::default();
        for (k, v) in headers {
            r.observe(k.as_bytes(), v.as_bytes());
        }
        r.wait_secs()
    }

    #[test]
    fn durations_in_openai_form() {
        assert_eq!(duration_secs("1s"), Some(1.0));
        assert_eq!(duration_secs("6m0s"), Some(360.0));
        assert_eq!(duration_secs("20ms"), Some(0.02));
        assert_eq!(duration_secs("1h2m3.5s"), Some(3723.5));
        assert_eq!(duration_secs("7"), Some(7.0));
        for bad in ["", "s", "1x", "-1", "1s2", "NaN"] {
            assert_eq!(duration_secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_exhausted_limit_decides() {
        let h = [
            ("X-RateLimit-Reset-Requests", "2s"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "1500"),
        ];
        assert_eq!(reset(&h), Some(2));
        let h = [
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-reset-tokens", "90s"),
            ("x-ratelimit-remaining-tokens", "0"),
        ];
        assert_eq!(reset(&h), Some(90));
        // Neither says it ran out: the sooner reset, rounded up, at least a second.
        let h = [
            ("x-ratelimit-reset-requests", "250ms"),
            ("x-ratelimit-reset-tokens", "3s"),
        ];
        assert_eq!(reset(&h), Some(1));
        assert_eq!(reset(&[("x-ratelimit-limit-requests", "500")]), None);
        assert_eq!(reset(&[]), None);
    }
}
