//! When a rate-limited Anthropic provider says it resets, from the headers other than
//! `Retry-After`: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`
//! (RFC 3339 times), paired with `…-remaining` to tell which limit ran out. Read only on a 429.

use crate::observe::time::parse_iso8601;

const PREFIX: &str = "anthropic-ratelimit-";

/// Whole seconds to wait (at least 1) from `now_ms`: the latest reset among the exhausted
/// limits, else the soonest reset given; `None` when the headers name no reset.
pub fn wait_secs(headers: &[(String, String)], now_ms: i64) -> Option<u64> {
    let field = |name: &str, suffix: &str| -> Option<String> {
        name.strip_prefix(PREFIX)?
            .strip_suffix(suffix)
            .map(str::to_owned)
    };
    let mut exhausted = None::<i64>;
    let mut soonest = None::<i64>;
    for (name, value) in headers {
        let Some(limit) = field(name, "-reset") else {
            continue;
        };
        let Some(at) = parse_iso8601(value.trim()) else {
            continue;
        };
        soonest = Some(soonest.map_or(at, |s| s.min(at)));
        let remaining = format!("{PREFIX}{limit}-remaining");
        let empty = headers
            .iter()
            .any(|(n, v)| *n == remaining && v.trim().parse::<u64>() == Ok(0));
        if empty {
            exhausted = Some(exhausted.map_or(at, |e| e.max(at)));
        }
    }
    let at = exhausted.or(soonest)?;
    let ms = (at - now_ms).max(0) as u64;
    Some(ms.div_ceil(1000).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_exhausted_limit_decides() {
        let now = parse_iso8601("2026-12-02T10:00:00Z").unwrap();
        let headers = h(&[
            ("anthropic-ratelimit-requests-remaining", "12"),
            ("anthropic-ratelimit-requests-reset", "2026-12-02T10:00:02Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "0"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2026-12-02T10:00:30Z",
            ),
        ]);
        assert_eq!(wait_secs(&headers, now), Some(30));
        // Nothing exhausted: the soonest reset.
        let headers = h(&[
            ("anthropic-ratelimit-requests-reset", "2026-12-02T10:00:05Z"),
            ("anthropic-ratelimit-tokens-reset", "2026-12-02T10:01:00Z"),
        ]);
        assert_eq!(wait_secs(&headers, now), Some(5));
        // A reset already past still waits a second; none given, no answer.
        let past = h(&[("anthropic-ratelimit-tokens-reset", "2026-12-02T09:59:00Z")]);
        assert_eq!(wait_secs(&past, now), Some(1));
        let bad = h(&[("anthropic-ratelimit-tokens-reset", "soon")]);
        assert_eq!(wait_secs(&bad, now), None);
        assert_eq!(wait_secs(&[], now), None);
    }
}
