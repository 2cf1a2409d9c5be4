//! AWS Signature Version 4, as pure functions: the canonical request, the string to sign, the
//! derived signing key and the `Authorization` value, plus the `x-amz-date` clock format. No
//! I/O, no clock: the caller passes the time. Checked against AWS's published SigV4 test suite.
//!
//! The canonical URI re-encodes every path segment of the path *as sent* (all services but S3
//! do this), so a Bedrock model id `…-v1:0` written `…-v1%3A0` in the request line is signed
//! as `…-v1%253A0`. Query pairs are taken as sent (already encoded) and sorted.

use ring::{digest, hmac};

/// Credentials to sign with.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// A temporary credential's token, sent (and signed) as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
}

/// One request to sign. `headers` must hold every header to sign (`host` and `x-amz-date`
/// included); names may be in any case, values are trimmed and their inner runs of spaces
/// folded, as the canonical form wants.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as the request line carries it (`/model/x%3A0/converse`).
    pub path: &'a str,
    /// The query as the request line carries it, without `?` (empty when there is none).
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// The payload's SHA-256, lowercase hex ([`hex_sha256`]).
    pub payload_hash: &'a str,
}

/// Where and when a signature is valid.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// `YYYYMMDDTHHMMSSZ` ([`amz_date`]); its first 8 characters are the date stamp.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl Scope<'_> {
    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }

    /// `20150830/us-east-1/service/aws4_request`.
    pub fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of `data`, lowercase hex (the hashed payload, the hashed canonical request).
pub fn hex_sha256(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// URI-encodes `s` as SigV4 wants: everything but RFC 3986's unreserved characters, with
/// uppercase hex; `/` too unless `keep_slash`.
fn uri_encode(out: &mut String, s: &str, keep_slash: bool) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else if b == b'/' && keep_slash {
            out.push('/');
        } else {
            out.push('%');
            out.push(b"0123456789ABCDEF"[(b >> 4) as usize] as char);
            out.push(b"0123456789ABCDEF"[(b & 15) as usize] as char);
        }
    }
}

/// The canonical URI of a path as sent: each segment encoded again (`/` kept), `/` for an
/// empty path.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(path.len() + 8);
    uri_encode(&mut out, path, true);
    out
}

/// The canonical query: its `name=value` pairs sorted by name, then value (a pair without `=`
/// gets an empty value).
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 1);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A header value in canonical form: trimmed, runs of spaces folded to one.
fn fold_spaces(value: &str, out: &mut String) {
    let mut space = false;
    for c in value.trim().chars() {
        if c == ' ' {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
}

/// The canonical headers block (`name:value\n` each, sorted by lowercase name; values of one
/// name joined by commas) and the signed-headers list (`host;x-amz-date`).
pub fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut sorted: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), *v))
        .collect();
    // Stable: values of a repeated name keep their order.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut block = String::new();
    let mut signed = String::new();
    let mut last: Option<&str> = None;
    for (name, value) in &sorted {
        if last == Some(name.as_str()) {
            block.pop(); // the newline: this value joins the previous one
            block.push(',');
        } else {
            if last.is_some() {
                signed.push(';');
            }
            signed.push_str(name);
            block.push_str(name);
            block.push(':');
        }
        fold_spaces(value, &mut block);
        block.push('\n');
        last = Some(name.as_str());
    }
    (block, signed)
}

/// The canonical request and its signed-headers list.
pub fn canonical_request(r: &Request<'_>) -> (String, String) {
    let (headers, signed) = canonical_headers(r.headers);
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method,
        canonical_uri(r.path),
        canonical_query(r.query),
        headers,
        signed,
        r.payload_hash
    );
    (creq, signed)
}

/// The string to sign for a canonical request.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date,
        scope.credential_scope(),
        hex_sha256(canonical_request.as_bytes())
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

/// The signing key: the secret, HMAC-chained through date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, scope: &Scope<'_>) -> [u8; 32] {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac_sha256(k_secret.as_bytes(), scope.date().as_bytes());
    let k_region = hmac_sha256(k_date.as_ref(), scope.region.as_bytes());
    let k_service = hmac_sha256(k_region.as_ref(), scope.service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"aws4_request");
    let mut key = [0; 32];
    key.copy_from_slice(k_signing.as_ref());
    key
}

/// The signature of a string to sign, lowercase hex.
pub fn signature(secret: &str, scope: &Scope<'_>, string_to_sign: &str) -> String {
    hex(hmac_sha256(&signing_key(secret, scope), string_to_sign.as_bytes()).as_ref())
}

/// The `Authorization` header value for `r`.
pub fn authorization(creds: &Credentials<'_>, scope: &Scope<'_>, r: &Request<'_>) -> String {
    let (creq, signed) = canonical_request(r);
    let sig = signature(
        creds.secret_access_key,
        scope,
        &string_to_sign(scope, &creq),
    );
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={sig}",
        creds.access_key_id,
        scope.credential_scope()
    )
}

// === time ===

/// The civil date (year, month 1–12, day 1–31) of a count of days since 1970-01-01 (the
/// proleptic Gregorian calendar, counted in 400-year eras of 146,097 days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ` (UTC), the `x-amz-date` form.
pub fn amz_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Unix seconds as the `YYYYMMDD` date stamp of the credential scope.
pub fn date_stamp(unix: u64) -> String {
    amz_date(unix)[..8].to_string()
}

#[cfg(test)]
mod tests;
