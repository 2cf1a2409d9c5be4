//! The upstream request head every protocol shares: request line (with the vendor's URL style),
//! host, framing, accept, the vendor's auth header and the provider's extra headers.

use super::family::{Auth, PathStyle};
use crate::config::{Origin, Provider, Secret};
use crate::json;

/// Writes `GET {base}{path}` with the vendor's auth and the provider's headers (a health
/// check's models list; Azure's is account-wide, under `/openai`).
pub fn write_get(
    out: &mut Vec<u8>,
    provider: &Provider,
    api_key: Option<&Secret>,
    origin: &Origin,
    path: &str,
) {
    request_line(out, "GET", provider, origin, path, None);
    out.extend_from_slice(b"\r\naccept: application/json");
    auth_and_extras(out, provider, api_key);
}

/// Writes `POST … HTTP/1.1` and the headers, up to and including the blank line.
/// `path` is the protocol's path under the base URL (`/chat/completions`, `/v1/messages`);
/// `model` is the target model (Azure puts it in the URL as the deployment); `api_key` the
/// target's own credentials or the provider's.
#[allow(clippy::too_many_arguments)]
pub fn write(
    out: &mut Vec<u8>,
    provider: &Provider,
    api_key: Option<&Secret>,
    origin: &Origin,
    path: &str,
    model: &str,
    content_length: usize,
    stream: bool,
) {
    request_line(out, "POST", provider, origin, path, Some(model));
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    json::push_u64(out, content_length as u64);
    out.extend_from_slice(if stream {
        b"\r\naccept: text/event-stream".as_slice()
    } else {
        b"\r\naccept: application/json"
    });
    auth_and_extras(out, provider, api_key);
}

/// `METHOD {base}{vendor prefix}{path}?api-version=… HTTP/1.1` and the host header. Azure puts
/// its paths under `/openai`, and a model's under `/openai/deployments/{deployment}`.
fn request_line(
    out: &mut Vec<u8>,
    method: &str,
    provider: &Provider,
    origin: &Origin,
    path: &str,
    deployment: Option<&str>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(provider.base_path.as_bytes());
    if provider.vendor.path == PathStyle::AzureDeployment {
        out.extend_from_slice(b"/openai");
        if let Some(d) = deployment {
            out.extend_from_slice(b"/deployments/");
            push_path_segment(out, d);
        }
    }
    out.extend_from_slice(path.as_bytes());
    if let Some(v) = &provider.api_version {
        out.extend_from_slice(b"?api-version=");
        push_path_segment(out, v);
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(origin.authority.as_bytes());
}

/// The user agent, the vendor's auth header, the provider's own headers and the blank line.
fn auth_and_extras(out: &mut Vec<u8>, provider: &Provider, api_key: Option<&Secret>) {
    out.extend_from_slice(b"\r\nuser-agent: shardgate/");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    if let Some(key) = api_key {
        match provider.vendor.auth {
            Auth::Bearer => out.extend_from_slice(b"\r\nauthorization: Bearer "),
            Auth::Header(name) => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
            }
        }
        out.extend_from_slice(key.expose().as_bytes());
    }
    for (name, value) in &provider.headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn push_path_segment(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(b"0123456789ABCDEF"[(b >> 4) as usize]);
            out.push(b"0123456789ABCDEF"[(b & 15) as usize]);
        }
    }
}
