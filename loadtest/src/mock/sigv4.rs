//! AWS Signature Version 4, written for the mock's Bedrock routes: [`verify`] recomputes the
//! signature of a request as received and compares it with the one in its `Authorization`
//! header; [`authorization`] signs a request the same way, for tests that play a client.
//!
//! The canonical request follows the rules for services other than S3: each path segment is
//! URI-encoded once more (the path is taken as sent, so a `%3A` in it becomes `%253A`), query
//! parameters are decoded, re-encoded and sorted, the signed headers' values are trimmed with
//! inner runs of spaces collapsed, and the payload hash is the SHA-256 of the body. Nothing here
//! normalises `.` or `..` segments; Bedrock paths have none.

use ring::{digest, hmac};

/// The keys the mock checks signatures with (`--aws-access-key-id` and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, requests must carry it as `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// The service name a Bedrock request's credential scope must name.
pub(crate) const SERVICE: &str = "bedrock";

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hmac(key: &[u8], data: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
}

/// Percent-encodes every byte but the unreserved ones (and `/` when `keep_slash`).
fn encode(out: &mut String, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
}

fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            encode(&mut ek, &decode(k), false);
            encode(&mut ev, &decode(v), false);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined.join("&")
}

/// The values of header `name` (lowercase) joined by commas, each trimmed and with inner runs
/// of spaces collapsed.
fn header_value(headers: &[(String, String)], name: &str) -> String {
    let values: Vec<String> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    values.join(",")
}

/// One request's parts as signed.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent: path and, after `?`, the query.
    pub target: &'a str,
    /// Header names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The hex signature of `req` over the `signed` headers (lowercase, sorted), for a credential
/// scope of `date/region/service` and the `x-amz-date` timestamp `amz_date`.
pub fn signature(
    secret: &str,
    scope: (&str, &str, &str),
    amz_date: &str,
    req: &Request,
    signed: &[&str],
) -> String {
    let (path, query) = req.target.split_once('?').unwrap_or((req.target, ""));
    let mut uri = String::with_capacity(path.len() + 16);
    encode(&mut uri, path.as_bytes(), true);
    let mut creq = format!("{}\n{uri}\n{}\n", req.method, canonical_query(query));
    for name in signed {
        creq.push_str(name);
        creq.push(':');
        creq.push_str(&header_value(req.headers, name));
        creq.push('\n');
    }
    creq.push('\n');
    creq.push_str(&signed.join(";"));
    creq.push('\n');
    creq.push_str(&sha256_hex(req.body));
    let (date, region, service) = scope;
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(creq.as_bytes())
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k = hmac(k.as_ref(), region);
    let k = hmac(k.as_ref(), service);
    let k = hmac(k.as_ref(), "aws4_request");
    hex(hmac(k.as_ref(), &to_sign).as_ref())
}

/// An `Authorization` value for `req` signing all of its headers, for tests playing a client;
/// `req.headers` must hold `x-amz-date` (its first 8 characters are the scope's date).
pub fn authorization(keys: &AwsKeys, region: &str, service: &str, req: &Request) -> String {
    let amz_date = header_value(req.headers, "x-amz-date");
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let date = amz_date.get(..8).unwrap_or("");
    let sig = signature(
        &keys.secret_access_key,
        (date, region, service),
        &amz_date,
        req,
        &signed,
    );
    format!(
        "{ALGORITHM} Credential={}/{date}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={sig}",
        keys.access_key_id,
        signed.join(";")
    )
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Parsed<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed: Vec<&'a str>,
    signature: &'a str,
}

fn parse(auth: &str) -> Option<Parsed<'_>> {
    let rest = auth.strip_prefix(ALGORITHM)?.trim_start();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return None,
        }
    }
    let mut c = cred?.split('/');
    let p = Parsed {
        key_id: c.next()?,
        date: c.next()?,
        region: c.next()?,
        service: c.next()?,
        signed: signed?.split(';').collect(),
        signature: sig?,
    };
    (c.next() == Some("aws4_request") && c.next().is_none()).then_some(p)
}

/// The message of the mock's 403 when a signature does not match.
pub(crate) const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Checks `req`'s signature: without `keys`, only that it claims one (`AWS4-HMAC-SHA256`).
/// The error is the message of a 403 `InvalidSignatureException`.
pub(crate) fn verify(keys: Option<&AwsKeys>, req: &Request) -> Result<(), String> {
    let auth = header_value(req.headers, "authorization");
    if !auth.starts_with(ALGORITHM) {
        return Err("mock: missing AWS4-HMAC-SHA256 Authorization header".into());
    }
    let Some(keys) = keys else { return Ok(()) };
    let p = parse(&auth).ok_or("mock: malformed AWS4-HMAC-SHA256 Authorization header")?;
    if p.key_id != keys.access_key_id {
        return Err(format!("mock: unknown access key id {:?}", p.key_id));
    }
    if p.service != SERVICE {
        return Err(format!(
            "mock: credential scope names service {:?}, not {SERVICE}",
            p.service
        ));
    }
    let amz_date = header_value(req.headers, "x-amz-date");
    if !amz_date.starts_with(p.date) || !p.signed.contains(&"x-amz-date") {
        return Err("mock: x-amz-date missing, unsigned or not the scope's date".into());
    }
    if !p.signed.contains(&"host") {
        return Err("mock: the host header is not signed".into());
    }
    if let Some(token) = &keys.session_token
        && header_value(req.headers, "x-amz-security-token") != *token
    {
        return Err("mock: missing or wrong x-amz-security-token".into());
    }
    let want = signature(
        &keys.secret_access_key,
        (p.date, p.region, p.service),
        &amz_date,
        req,
        &p.signed,
    );
    if want == p.signature {
        Ok(())
    } else {
        Err(MISMATCH.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite_keys() -> AwsKeys {
        AwsKeys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// AWS's published SigV4 test suite: get-vanilla, post-vanilla and a query that must be
    /// sorted (get-vanilla-query-order-key-case).
    #[test]
    fn aws_test_suite_vectors() {
        let h = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        let cases = [
            (
                "GET",
                "/",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "POST",
                "/",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "GET",
                "/?Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ];
        for (method, target, want) in cases {
            let req = Request {
                method,
                target,
                headers: &h,
                body: b"",
            };
            let auth = authorization(&suite_keys(), "us-east-1", "service", &req);
            assert_eq!(
                auth,
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={want}"
                ),
                "{method} {target}"
            );
        }
    }

    #[test]
    fn canonical_parts() {
        let mut s = String::new();
        encode(&mut s, b"/model/a.b-c%3A0/converse", true);
        assert_eq!(s, "/model/a.b-c%253A0/converse");
        assert_eq!(canonical_query("b=2&a=x%20y&a=1&c"), "a=1&a=x%20y&b=2&c=");
        let h = headers(&[("X-A", "  a   b "), ("x-a", "c")]);
        assert_eq!(header_value(&h, "x-a"), "a b,c");
    }

    #[test]
    fn bedrock_request_verifies_and_tampering_fails() {
        let keys = AwsKeys {
            session_token: Some("tok".into()),
            ..suite_keys()
        };
        let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
        let mut h = headers(&[
            ("host", "bedrock-runtime.us-west-2.amazonaws.com"),
            ("content-type", "application/json"),
            ("x-amz-date", "20240101T000000Z"),
            ("x-amz-security-token", "tok"),
        ]);
        let target = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
        let req = Request {
            method: "POST",
            target,
            headers: &h,
            body,
        };
        let auth = authorization(&keys, "us-west-2", SERVICE, &req);
        h.push(("authorization".into(), auth.clone()));
        let ok = |h: &[(String, String)], body: &[u8], target: &str| {
            let req = Request {
                method: "POST",
                target,
                headers: h,
                body,
            };
            verify(Some(&keys), &req)
        };
        assert_eq!(ok(&h, body, target), Ok(()));
        assert_eq!(ok(&h, b"{}", target), Err(MISMATCH.into()));
        let other = "/model/anthropic.claude-3-haiku-20240307-v1:0/converse";
        assert_eq!(ok(&h, body, other), Err(MISMATCH.into()));
        // Without keys, only the scheme is checked.
        let req = Request {
            method: "POST",
            target,
            headers: &h,
            body: b"",
        };
        assert_eq!(verify(None, &req), Ok(()));
        let bare = headers(&[("authorization", "Bearer x")]);
        let req = Request {
            method: "POST",
            target,
            headers: &bare,
            body: b"",
        };
        assert!(verify(None, &req).is_err());
        h.retain(|(k, _)| k != "x-amz-security-token");
        assert!(ok(&h, body, target).unwrap_err().contains("security-token"));
    }
}
