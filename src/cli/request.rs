//! The HTTP request an invocation makes: its action's route, with the operand and the flag
//! fields as a JSON body (POST) or as a percent-encoded query (GET). It adds nothing the
//! user did not give, so an update changes only the fields named on the command line.

use serde_json::{Map, Value};

use super::args::Invocation;
use super::client::{Method, Request};
use super::command::Operands;

pub fn build(inv: &Invocation) -> Request {
    let action = inv.action;
    let operand = match action.operands {
        Operands::None => None,
        Operands::One => Some(Value::String(inv.operands[0].clone())),
        Operands::Many => Some(Value::Array(
            inv.operands.iter().cloned().map(Value::String).collect(),
        )),
    };
    match action.method {
        Method::Get => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            let given = operand
                .iter()
                .map(|v| (action.operand_field, v))
                .chain(inv.fields.iter().map(|(k, v)| (k.as_str(), v)));
            for (name, v) in given {
                match v {
                    Value::Array(items) => {
                        pairs.extend(items.iter().map(|i| (name.to_string(), query_value(i))))
                    }
                    v => pairs.push((name.to_string(), query_value(v))),
                }
            }
            pairs.extend(
                action
                    .fixed_query
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
            let mut target = action.path.to_string();
            for (i, (k, v)) in pairs.iter().enumerate() {
                target.push(if i == 0 { '?' } else { '&' });
                target.push_str(&percent_encode(k));
                target.push('=');
                target.push_str(&percent_encode(v));
            }
            Request {
                method: Method::Get,
                target,
                body: None,
            }
        }
        Method::Post => {
            let mut body = Map::new();
            if let Some(v) = operand {
                body.insert(action.operand_field.to_string(), v);
            }
            body.extend(inv.fields.clone());
            Request {
                method: Method::Post,
                target: action.path.to_string(),
                body: Some(Value::Object(body).to_string().into_bytes()),
            }
        }
    }
}

fn query_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Encodes every byte but RFC 3986's unreserved ones, so any value is safe in a query.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args;

    fn request(line: &str) -> Request {
        let args: Vec<String> = line.split(' ').map(String::from).collect();
        build(&args::parse(&args).unwrap())
    }

    fn body(r: &Request) -> Value {
        serde_json::from_slice(r.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("key_AB-1.2~z"), "key_AB-1.2~z");
        assert_eq!(
            percent_encode("a b&c=d/e?f#g+h%"),
            "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn get_puts_operand_then_flags_then_fixed_parameters_in_the_query() {
        let r = request("keys list --team t&1");
        assert_eq!(
            (r.method, r.target.as_str(), r.body),
            (Method::Get, "/key/list?team_id=t%261&size=1000", None)
        );
        assert_eq!(request("keys list").target, "/key/list?size=1000");
        assert_eq!(request("keys info key/ab").target, "/key/info?key=key%2Fab");
        assert_eq!(request("teams info t1").target, "/team/info?team_id=t1");
        assert_eq!(request("teams list --json").target, "/team/list");
    }

    #[test]
    fn post_sends_the_operand_and_only_the_given_fields() {
        let r = request("keys update k1 --rpm 5 --models a,b");
        assert_eq!((r.method, r.target.as_str()), (Method::Post, "/key/update"));
        assert_eq!(
            body(&r),
            serde_json::json!({"key": "k1", "rpm_limit": 5, "models": ["a", "b"]})
        );
        assert_eq!(
            body(&request("keys delete k1 k2")),
            serde_json::json!({"keys": ["k1", "k2"]})
        );
        assert_eq!(body(&request("keys create")), serde_json::json!({}));
        assert_eq!(
            body(&request("teams delete t1")),
            serde_json::json!({"team_ids": ["t1"]})
        );
    }
}
