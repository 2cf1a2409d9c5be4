//! Query strings of the GET endpoints: names checked against the endpoint's list (a typo is
//! refused, as in bodies), values percent-decoded, an empty value read as absent (so
//! `?team_id=&page=1` filters on nothing).

use super::failure::Failure;

/// Decodes `%XX` escapes and `+` (a space) in a query name or value.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    decode(text, true)
}

/// Decodes `%XX` escapes in a path segment (where `+` is itself).
pub(super) fn path_decode(text: &str) -> Option<String> {
    decode(text, false)
}

fn decode(text: &str, plus_is_space: bool) -> Option<String> {
    let (bytes, mut out, mut i) = (text.as_bytes(), Vec::with_capacity(text.len()), 0);
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A query string whose parameter names have been checked. An empty value reads as absent.
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query: &str, endpoint: &str, allowed: &[&str]) -> Result<Query, Failure> {
        let mut pairs = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = percent_decode(name).unwrap_or_else(|| name.to_owned());
            if !allowed.contains(&name.as_str()) {
                let message = format!(
                    "unknown query parameter {name:?} for {endpoint}; its parameters are: {}",
                    allowed.join(", ")
                );
                return Err(Failure::invalid("unknown_field", Some(&name), message));
            }
            let value = percent_decode(value).ok_or_else(|| {
                Failure::field(
                    &name,
                    format!("{name} is not a valid percent-encoded value"),
                )
            })?;
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    /// The last value given for `name`, if not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        let found = self.pairs.iter().rev().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str, Failure> {
        self.get(name).ok_or_else(|| Failure::required(name))
    }

    /// A whole number of at least 1, or `default`.
    pub fn positive(&self, name: &str, default: u64) -> Result<u64, Failure> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().ok().filter(|&n: &u64| n >= 1).ok_or_else(|| {
                Failure::field(
                    name,
                    format!("{name} must be a whole number of 1 or more, not {v:?}"),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_refuse_unknown_parameters() {
        let q = Query::parse(
            "key=sk-a%2Bb&page=2&team_id=",
            "/t",
            &["key", "page", "team_id"],
        )
        .unwrap();
        assert_eq!(q.get("key"), Some("sk-a+b"));
        assert_eq!(q.get("team_id"), None);
        assert_eq!(q.positive("page", 1).unwrap(), 2);
        assert_eq!(q.positive("size", 100).unwrap(), 100);
        let err = Query::parse("kye=1", "/t", &["key"]).err().unwrap();
        assert_eq!(
            (err.code, err.param.as_deref()),
            ("unknown_field", Some("kye"))
        );
        assert_eq!(
            Query::parse("key=%zz", "/t", &["key"]).err().unwrap().code,
            "invalid_field"
        );
        let zero = Query::parse("page=0", "/t", &["page"]).unwrap();
        assert_eq!(zero.positive("page", 1).unwrap_err().code, "invalid_field");
        assert_eq!(percent_decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
        assert_eq!(path_decode("a+b%2Fc").as_deref(), Some("a+b/c"));
    }
}
