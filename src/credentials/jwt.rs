//! Google service-account keys and the signed JWT (RS256) a token endpoint exchanges for an
//! access token (RFC 7523's `jwt-bearer` grant). Pure: reading the key and signing, no I/O.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// The scope every Vertex AI call needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long a signed assertion is valid (Google's maximum).
pub const LIFETIME_S: u64 = 3600;

/// The parts of a service-account JSON key file the exchange uses.
pub struct ServiceAccount {
    pub client_email: String,
    pub key_id: Option<String>,
    pub token_uri: String,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceAccount({})", self.client_email)
    }
}

#[derive(serde::Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccount {
    /// Reads a key file's JSON: its `private_key` is a PKCS#8 PEM block.
    pub fn parse(json: &[u8]) -> Result<ServiceAccount, String> {
        let f: KeyFile = serde_json::from_slice(json)
            .map_err(|e| format!("not a service-account key file: {e}"))?;
        if let Some(kind) = f.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(format!("a key of type {kind:?}, not service_account"));
        }
        let der = pem_body(&f.private_key).ok_or("private_key is not a PEM block")?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("private_key is not an RSA PKCS#8 key: {e}"))?;
        Ok(ServiceAccount {
            client_email: f.client_email,
            key_id: f.private_key_id,
            token_uri: f
                .token_uri
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            key,
        })
    }

    /// A signed assertion issued at `now` (unix seconds), for this key's token endpoint.
    pub fn assertion(&self, now: u64) -> String {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.as_str().into();
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + LIFETIME_S,
        });
        let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0; self.key.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, jwt.as_bytes(), &mut sig)
            .expect("an RSA key signs any message");
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(sig));
        jwt
    }

    /// The public key, DER (for tests that verify an assertion).
    pub fn public_key(&self) -> &[u8] {
        use ring::signature::KeyPair;
        self.key.public_key().as_ref()
    }
}

/// The bytes of the first PEM block in `text`.
fn pem_body(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN ")?;
    let body = &text[start..];
    let body = &body[body.find('\n')? + 1..];
    let end = body.find("-----END ")?;
    let b64: String = body[..end].split_whitespace().collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    /// A throwaway 2048-bit key made for these tests (never used anywhere else).
    pub(crate) fn key_file(token_uri: &str) -> String {
        let pem = include_str!("../../tests/fixtures/vertex/service_account_key.pem");
        serde_json::json!({
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "kid-1",
            "private_key": pem,
            "client_email": "gw@test-project.iam.gserviceaccount.com",
            "token_uri": token_uri,
        })
        .to_string()
    }

    #[test]
    fn an_assertion_is_signed_with_the_key_and_names_the_endpoint() {
        let sa = ServiceAccount::parse(key_file("http://127.0.0.1:1/token").as_bytes()).unwrap();
        let jwt = sa.assertion(1_700_000_000);
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid-1");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "gw@test-project.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:1/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], 1_700_003_600u64);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, sa.public_key())
            .verify(signed.as_bytes(), &sig)
            .expect("the signature verifies with the key's public half");
        let mut tampered = signed.into_bytes();
        tampered[3] ^= 1;
        assert!(
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, sa.public_key())
                .verify(&tampered, &sig)
                .is_err()
        );
    }

    #[test]
    fn bad_key_files_say_what_is_wrong() {
        assert!(
            ServiceAccount::parse(b"{}")
                .unwrap_err()
                .contains("not a service-account")
        );
        let user = r#"{"type":"authorized_user","client_email":"a","private_key":"x"}"#;
        assert!(
            ServiceAccount::parse(user.as_bytes())
                .unwrap_err()
                .contains("authorized_user")
        );
        let nopem = r#"{"client_email":"a","private_key":"nope"}"#;
        assert!(
            ServiceAccount::parse(nopem.as_bytes())
                .unwrap_err()
                .contains("PEM")
        );
    }
}
