//! Reading the API's timestamps as Unix seconds, only to tell whether a key has expired: the
//! ISO 8601 UTC form the API writes, or a JSON number of seconds; anything else is `None`, and
//! the caller then does not claim the key has expired.

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

/// What the admin API writes (`2026-12-02T15:04:05Z`), to whole seconds.
fn parse(s: &str) -> Option<i64> {
    crate::observe::time::parse_iso8601(s.trim()).map(|ms| ms.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_api_form_and_numbers() {
        assert_eq!(unix_seconds(&json!("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(
            unix_seconds(&json!("2024-02-29T12:30:15Z")),
            Some(1_709_209_815)
        );
        assert_eq!(
            unix_seconds(&json!("2024-02-29T12:30:15.123456+00:00")),
            Some(1_709_209_815)
        );
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
