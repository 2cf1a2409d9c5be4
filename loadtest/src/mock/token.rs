//! A Google OAuth token endpoint (`POST /token`), for the gateway's service-account flow: the
//! form's `grant_type` must be the JWT-bearer grant and its `assertion` a JWT whose claims name
//! an issuer, this endpoint as audience, a scope, and an expiry after its issue time. The
//! signature is not checked (the gateway's unit tests verify it with the key's public half);
//! each good exchange mints a new `mock-token-N`, valid for an hour.

use std::sync::atomic::{AtomicU64, Ordering};

static MINTED: AtomicU64 = AtomicU64::new(0);

fn form_value(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| unescape(v))
    })
}

fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(x) => {
                        out.push(x);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unpadded base64url.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Checks an exchange; `Ok` is the token answer's body, `Err` the OAuth error's.
pub fn exchange(body: &[u8]) -> Result<String, String> {
    let form = String::from_utf8_lossy(body);
    let bad = |why: &str| {
        serde_json::json!({"error": "invalid_grant", "error_description": why}).to_string()
    };
    if form_value(&form, "grant_type").as_deref()
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err(bad("grant_type must be the JWT-bearer grant"));
    }
    let assertion = form_value(&form, "assertion").ok_or_else(|| bad("no assertion"))?;
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 || parts[2].is_empty() {
        return Err(bad("the assertion is not a signed JWT"));
    }
    let header: serde_json::Value = base64url(parts[0])
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("the JWT header is not JSON"))?;
    if header["alg"] != "RS256" {
        return Err(bad("the JWT must be signed with RS256"));
    }
    let claims: serde_json::Value = base64url(parts[1])
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("the JWT claims are not JSON"))?;
    let aud = claims["aud"].as_str().unwrap_or("");
    let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
    if claims["iss"].as_str().is_none_or(str::is_empty)
        || !aud.ends_with("/token")
        || claims["scope"].as_str().is_none_or(str::is_empty)
        || !matches!((iat, exp), (Some(i), Some(e)) if e > i && e - i <= 3600)
    {
        return Err(bad(
            "the JWT claims need iss, aud (this endpoint), scope, iat and exp",
        ));
    }
    let n = MINTED.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(serde_json::json!({
        "access_token": format!("mock-token-{n}"),
        "expires_in": 3600,
        "token_type": "Bearer",
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &serde_json::Value) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = v.to_string().into_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn a_good_assertion_gets_a_token_and_a_bad_one_an_oauth_error() {
        let header = b64(&serde_json::json!({"alg":"RS256","typ":"JWT"}));
        let claims = b64(
            &serde_json::json!({"iss":"sa@p.iam","aud":"http://127.0.0.1:1/token",
            "scope":"https://www.googleapis.com/auth/cloud-platform","iat":100,"exp":3700}),
        );
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={header}.{claims}.c2ln"
        );
        let ok: serde_json::Value =
            serde_json::from_str(&exchange(form.as_bytes()).unwrap()).unwrap();
        assert!(
            ok["access_token"]
                .as_str()
                .unwrap()
                .starts_with("mock-token-")
        );
        assert_eq!(ok["expires_in"], 3600);
        let unsigned = form.replace(".c2ln", ".");
        assert!(
            exchange(unsigned.as_bytes())
                .unwrap_err()
                .contains("signed")
        );
        assert!(
            exchange(b"grant_type=password")
                .unwrap_err()
                .contains("grant_type")
        );
        let late =
            b64(&serde_json::json!({"iss":"a","aud":"x/token","scope":"s","iat":100,"exp":99999}));
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={header}.{late}.c2ln"
        );
        assert!(exchange(form.as_bytes()).unwrap_err().contains("claims"));
    }
}
