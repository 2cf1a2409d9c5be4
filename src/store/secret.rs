//! Key secrets and ids, drawn from the OS CSPRNG.
//!
//! A secret is "sk-" and 32 random bytes in URL-safe base64 without padding (43 chars). It is
//! handed out once; the store keeps only its SHA-256 hash (`crate::auth::digest`) and a hint
//! showing its last four characters. Ids are not secret: random only so they never collide.

use ring::rand::{SecureRandom, SystemRandom};

use super::{Fault, StoreError};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| StoreError::new(Fault::Io, "the OS random number generator failed"))?;
    Ok(out)
}

/// URL-safe base64 (RFC 4648 §5) without padding.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// A new key secret.
pub(super) fn new_secret() -> Result<String, StoreError> {
    Ok(format!("sk-{}", base64url(&random::<32>()?)))
}

/// A new id: `prefix` and 20 lowercase hex chars.
pub(super) fn new_id(prefix: &str) -> Result<String, StoreError> {
    let mut id = String::with_capacity(prefix.len() + 20);
    id.push_str(prefix);
    for b in random::<10>()? {
        id.push_str(&format!("{b:02x}"));
    }
    Ok(id)
}

/// The masked form shown in listings: "sk-...wxyz".
pub(super) fn hint(secret: &str) -> String {
    let tail: String = {
        let mut rev: Vec<char> = secret.chars().rev().take(4).collect();
        rev.reverse();
        rev.into_iter().collect()
    };
    format!("sk-...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64url(plain.as_bytes()), encoded);
        }
        // The URL-safe alphabet: '-' and '_' where standard base64 has '+' and '/'.
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0xff; 32]).len(), 43);
    }

    #[test]
    fn secrets_are_sk_and_43_url_safe_chars_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let s = new_secret().unwrap();
            let body = s.strip_prefix("sk-").expect("sk- prefix");
            assert_eq!(body.len(), 43, "{s}");
            assert!(
                body.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn ids_are_prefix_and_20_hex_chars() {
        let id = new_id("key_").unwrap();
        let hex = id.strip_prefix("key_").unwrap();
        assert_eq!(hex.len(), 20);
        assert!(hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(new_id("key_").unwrap(), id);
    }

    #[test]
    fn hint_shows_the_last_four_chars() {
        assert_eq!(hint("sk-abcdefwxyz"), "sk-...wxyz");
        assert_eq!(hint("ab"), "sk-...ab");
    }
}
